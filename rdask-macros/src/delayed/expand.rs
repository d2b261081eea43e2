//! Writing the code for a checked `#[delayed]` function.
//!
//! ```text
//! #[delayed] fn mean(xs: &Vec<f64>, k: usize) -> f64 { BODY }
//! ```
//! becomes, in outline:
//! ```text
//! fn mean(xs: impl IntoArg<Vec<f64>>, k: impl IntoArg<usize>) -> Delayed<f64> {
//!     fn __rdask_inner(xs: &Vec<f64>, k: usize) -> f64 { BODY }      // the original
//!     {   // out of BODY's sight: it sees the names it would without the attribute
//!         fn __rdask_run(args: &mut Args) -> Result<Value, BoxError> {   // the adapter
//!             let k = args.take::<usize>(1)?;                            // owned first,
//!             let xs = args.get::<Vec<f64>>(0)?;                         // then borrowed
//!             ret(__rdask_inner(xs, k))
//!         }
//!         static INFO: FnInfo = FnInfo { name: "mean", prefix: "mean", path: "crate::mean" };
//!         call(&INFO, [xs.into_arg(by_ref = true, ..), k.into_arg(..)], __rdask_run, clone_fn)
//!     }
//! }
//! ```
//! Calling `mean` runs nothing: it builds one node and returns its handle.

use super::parse::DelayedFn;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{GenericParam, Ident, ItemFn};

pub fn expand(f: DelayedFn) -> TokenStream {
    let DelayedFn {
        opts,
        item,
        params,
        output,
        fallible,
        error,
    } = f;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let name = &sig.ident;
    let name_str = name.to_string();
    let prefix = opts
        .name
        .as_ref()
        .map(|l| l.value())
        .unwrap_or_else(|| name_str.clone());
    let rt = quote!(::rdask::__private);

    // Docs, cfg and lint levels describe the wrapper too, and what its
    // callers are told (`deprecated`, `must_use`) the wrapper alone; the
    // rest stays on the original.
    let is = |a: &&syn::Attribute, names: &[&str]| names.iter().any(|n| a.path().is_ident(n));
    let outer_attrs: Vec<_> = attrs
        .iter()
        .filter(|a| {
            is(
                a,
                &[
                    "doc",
                    "cfg",
                    "allow",
                    "warn",
                    "deny",
                    "expect",
                    "deprecated",
                    "must_use",
                ],
            )
        })
        .collect();
    let inner_attrs: Vec<_> = attrs
        .iter()
        .filter(|a| !is(a, &["doc", "deprecated", "must_use"]))
        .collect();

    // The wrapper's generics: the type and const parameters (lifetimes only
    // ever qualify borrowed parameters, which the graph stores owned).
    let mut generics = sig.generics.clone();
    generics.params = generics
        .params
        .into_iter()
        .filter(|p| !matches!(p, GenericParam::Lifetime(_)))
        .collect();
    let type_params: Vec<Ident> = generics.type_params().map(|t| t.ident.clone()).collect();
    {
        let wc = generics.make_where_clause();
        for t in &type_params {
            wc.predicates
                .push(syn::parse_quote!(#t: ::core::marker::Send + ::core::marker::Sync + 'static));
        }
    }
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    let turbofish_args: Vec<TokenStream> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.to_token_stream()),
            GenericParam::Const(c) => Some(c.ident.to_token_stream()),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let turbofish = if turbofish_args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#turbofish_args),*>)
    };

    let arg_names: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__rdask_arg{}", i))
        .collect();
    let into = if opts.pure {
        quote!(#rt::IntoPureArg)
    } else {
        quote!(#rt::IntoArg)
    };
    let wrapper_inputs = params.iter().zip(&arg_names).map(|(p, a)| {
        let stored = &p.stored;
        quote_spanned!(stored.span()=> #a: impl #into<#stored>)
    });

    // The adapter: owned arguments first, then borrowed ones (a borrow of
    // `args` must not be alive while another argument is taken out).
    let locals: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__rdask_p{}", i))
        .collect();
    let takes = params
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.by_ref)
        .map(|(i, p)| {
            let (l, s) = (&locals[i], &p.stored);
            // A `Clone` parameter copies a shared constant itself.
            quote_spanned!(s.span()=> let #l = (&&&#rt::probe::<#s>()).take(__rdask_args, #i)?;)
        });
    let gets = params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.by_ref)
        .map(|(i, p)| {
            let (l, s) = (&locals[i], &p.stored);
            quote_spanned!(s.span()=> let #l = __rdask_args.get::<#s>(#i)?;)
        });
    // Spanned on the return type, so that an error about it (not `Send`,
    // ...) points there and not at the attribute.
    let ret = if fallible {
        // On the error type where it is spelled (the value type is checked
        // on its own, above).
        let span = error.as_ref().map_or_else(|| output.span(), |e| e.span());
        quote_spanned!(span=> #rt::ret_fallible::<#output, _>)
    } else {
        quote_spanned!(output.span()=> #rt::ret::<#output>)
    };

    // Each argument becomes a graph input; the consumer's parameter type says
    // how to copy it if it must be shared.
    let args = params.iter().zip(&arg_names).map(|(p, a)| {
        let (s, by_ref) = (&p.stored, p.by_ref);
        quote_spanned!(s.span()=>
            #rt::IntoArg::<#s>::into_arg(#a, #by_ref, (&&#rt::probe::<#s>()).clone_fn())
        )
    });
    let tokens = params.iter().zip(&arg_names).map(|(p, a)| {
        let s = &p.stored;
        quote_spanned!(s.span()=> #rt::IntoPureArg::<#s>::token(&#a, &mut __rdask_hasher);)
    });
    // A generic function's instances are different functions: the
    // instance's name (its type arguments) goes into the key too, or
    // `f(1_u32)` and `f(1_i32)` (equal bytes) would be one task.
    let instance = if turbofish_args.is_empty() {
        quote!()
    } else {
        quote! {
            ::core::hash::Hasher::write(
                &mut __rdask_hasher,
                ::core::any::type_name_of_val(&__rdask_run #turbofish).as_bytes(),
            );
        }
    };
    let call = if opts.pure {
        quote! {
            let mut __rdask_hasher = #rt::pure_hasher(&__RDASK_INFO);
            #instance
            #(#tokens)*
            let __rdask_token = ::core::hash::Hasher::finish(&__rdask_hasher);
            let __rdask_args = [#(#args),*];
            #rt::call_pure::<#output>(&__RDASK_INFO, __rdask_args, __rdask_run #turbofish, __rdask_clone, __rdask_token)
        }
    } else {
        quote! {
            let __rdask_args = [#(#args),*];
            #rt::call::<#output>(&__RDASK_INFO, __rdask_args, __rdask_run #turbofish, __rdask_clone)
        }
    };

    // Values must be able to cross threads: say so on the user's types. The
    // checks come first in the adapter, whose own uses of the same types
    // then add no second error for the same type (rustc reports one error
    // per type and bound in a function body).
    let checks = params
        .iter()
        .map(|p| &p.stored)
        .chain(std::iter::once(&output))
        .map(|t| quote_spanned!(t.span()=> #rt::assert_value::<#t>();))
        // The error type must convert into a `BoxError`: said on it.
        .chain(
            error
                .iter()
                .map(|e| quote_spanned!(e.span()=> #rt::assert_error::<#e>();)),
        );

    // Worker processes: a non-generic function registers itself by path,
    // and runs remotely when its types turn out to be serde.
    let (remote_items, remote_field) = if generics.params.is_empty() {
        let stored = params.iter().map(|p| &p.stored);
        let call_args =
            params.iter().zip(&locals).map(
                |(p, l)| {
                    if p.by_ref {
                        quote!(&#l)
                    } else {
                        quote!(#l)
                    }
                },
            );
        let result = if fallible {
            // Spanned on the error type where it is spelled: an error about
            // it points there.
            let span = error.as_ref().map_or_else(Span::call_site, |e| e.span());
            quote_spanned!(span=> __rdask_inner(#(#call_args),*).map_err(#rt::TaskError::into_box))
        } else {
            quote!(::core::result::Result::Ok(__rdask_inner(#(#call_args),*)))
        };
        // `#[delayed(remote)]`: not serde is a compile error, on the option.
        let force = opts
            .remote
            .map(|span| quote_spanned!(span=> let _ = #rt::remote_fns::<__RdaskApply>;));
        let items = quote! {
            struct __RdaskApply;
            impl #rt::Apply for __RdaskApply {
                type Params = (#(#stored,)*);
                type Out = #output;
                #[allow(unused_variables, clippy::unused_unit)]
                fn apply(
                    __rdask_params: Self::Params,
                ) -> ::core::result::Result<Self::Out, #rt::BoxError> {
                    let (#(#locals,)*) = __rdask_params;
                    #result
                }
            }
            fn __rdask_remote() -> ::core::option::Option<#rt::RemoteFns> {
                #[allow(unused_imports)]
                use #rt::{ProbeLocal as _, ProbeRemote as _};
                #force
                (&&#rt::RemoteProbe::<__RdaskApply>::new()).remote_fns()
            }
            #rt::inventory::submit! {
                #rt::RemoteEntry {
                    path: __RDASK_PATH,
                    fns: __rdask_remote,
                }
            }
        };
        (items, quote!(::core::option::Option::Some(__rdask_remote)))
    } else {
        (quote!(), quote!(::core::option::Option::None))
    };

    // Record the copy functions of the signature's types once, so values
    // of these types can be copied wherever a generic producer (a `map`
    // closure, a `split` part) could not say how. (Generic functions skip
    // this: one static would serve every instantiation.)
    let register = if generics.params.is_empty() {
        let types = params
            .iter()
            .map(|p| &p.stored)
            .chain(std::iter::once(&output));
        quote! {
            static __RDASK_TYPES: ::std::sync::Once = ::std::sync::Once::new();
            __RDASK_TYPES.call_once(|| {
                #((&&#rt::probe::<#types>()).register();)*
            });
        }
    } else {
        quote!()
    };

    let mut inner_sig = sig.clone();
    inner_sig.ident = Ident::new("__rdask_inner", Span::call_site());
    let inner_inputs: Vec<TokenStream> = locals.iter().map(|l| quote!(#l)).collect();
    let output_ty = &output;

    quote! {
        #(#outer_attrs)*
        // The value bounds rdask adds sit in a where clause, whichever way
        // the user wrote theirs.
        #[allow(clippy::multiple_bound_locations)]
        #vis fn #name #impl_generics (#(#wrapper_inputs),*) -> ::rdask::Delayed<#output_ty> #where_clause {
            // The original, alone in this block: its body sees the names it
            // would see without the attribute (what rdask adds is in the
            // inner block below, out of its sight).
            #(#inner_attrs)*
            #[allow(clippy::too_many_arguments, clippy::ptr_arg)]
            #inner_sig #block

            {
            #[allow(unused_imports)]
            use #rt::{
                ProbeClone as _, ProbeNoClone as _, ProbeTakeClone as _, ProbeTakeNone as _,
                ProbeTakeOwned as _,
            };

            #[allow(unused_variables, clippy::multiple_bound_locations)]
            fn __rdask_run #impl_generics (
                __rdask_args: &mut #rt::Args<'_>,
            ) -> ::core::result::Result<#rt::Value, #rt::BoxError> #where_clause {
                #(#checks)*
                #(#takes)*
                #(#gets)*
                #ret(__rdask_inner #turbofish (#(#inner_inputs),*))
            }

            // Where the function is defined: unique even for two associated
            // functions of one name in one module (pure keys and worker
            // lookup use it).
            const __RDASK_PATH: &str = ::core::concat!(
                ::core::module_path!(), "::", #name_str, "@", ::core::line!(), ":", ::core::column!()
            );
            static __RDASK_INFO: #rt::FnInfo = #rt::FnInfo {
                name: #name_str,
                prefix: #prefix,
                path: __RDASK_PATH,
                remote: #remote_field,
            };
            #remote_items
            let __rdask_clone = (&&#rt::probe::<#output_ty>()).clone_fn();
            #register
            #call
            }
        }
    }
}
