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
//!         const PATH: &str = "my_crate::mean@LINE:COLUMN";
//!         static INFO: FnInfo = FnInfo {
//!             name: "mean", prefix: "mean", path: PATH,
//!             remote: Some(__rdask_remote),   // None for a generic function
//!         };
//!         // Not generic: how a worker process runs it (when its types are
//!         // serde), registered under PATH.
//!         struct Apply; fn __rdask_remote() -> Option<RemoteFns> { .. }
//!         inventory::submit!(RemoteEntry { path: PATH, fns: __rdask_remote });
//!         register the copy functions of Vec<f64>, usize and f64 (once);
//!         call(&INFO, [xs.into_arg(by_ref = true, ..), k.into_arg(..)], __rdask_run, clone_fn)
//!     }
//! }
//! ```
//! Calling `mean` runs nothing: it builds one node and returns its handle.
//!
//! [`expand`] lists the steps; each writes one of the pieces above.

use super::parse::DelayedFn;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, GenericParam, Generics, Ident};

/// The code for `f`: the steps below, each writing one piece of the
/// outline above, put together in its order.
pub fn expand(f: DelayedFn) -> TokenStream {
    let cx = Cx::new(f);
    let wrapper_sig = cx.wrapper_sig();
    let original = cx.original();
    let adapter = cx.adapter();
    let info = cx.fn_info();
    let remote = cx.remote_items();
    let register = cx.register_types();
    let call = cx.call_site();
    let (rt, output) = (&cx.rt, &cx.f.output);
    let in_trait_impl = cx.trait_impl_marker();
    quote! {
        #in_trait_impl
        #wrapper_sig {
            #original

            {
            #[allow(unused_imports)]
            use #rt::{
                ProbeClone as _, ProbeNoClone as _, ProbeTakeClone as _, ProbeTakeNone as _,
                ProbeTakeOwned as _,
            };

            #adapter
            #info
            #remote
            // How to copy the result, if it must be shared.
            let __rdask_clone = (&&#rt::probe::<#output>()).clone_fn();
            #register
            #call
            }
        }
    }
}

/// What the steps share: the checked function, and the names and generics
/// the generated items agree on.
struct Cx {
    f: DelayedFn,
    /// The runtime support the generated code calls.
    rt: TokenStream,
    /// The wrapper's and the adapter's generics: the type and const
    /// parameters, each bounded `Send + Sync + 'static` (lifetimes only ever
    /// qualify borrowed parameters, which the graph stores owned).
    generics: Generics,
    /// `::<T, N>` naming those parameters, or nothing.
    turbofish: TokenStream,
    /// The wrapper's parameters, one per parameter of the function.
    arg_names: Vec<Ident>,
    /// The adapter's locals, one per parameter of the function.
    locals: Vec<Ident>,
}

impl Cx {
    fn new(f: DelayedFn) -> Cx {
        let generics = wrapper_generics(&f.item.sig.generics);
        let turbofish = turbofish(&generics);
        let n = f.params.len();
        Cx {
            rt: quote!(::rdask::__private),
            generics,
            turbofish,
            arg_names: (0..n).map(|i| format_ident!("__rdask_arg{}", i)).collect(),
            locals: (0..n).map(|i| format_ident!("__rdask_p{}", i)).collect(),
            f,
        }
    }

    /// Whether the function has type or const parameters: then each
    /// instance is a different function, with no one path or static of its
    /// own.
    fn generic(&self) -> bool {
        !self.generics.params.is_empty()
    }

    /// The lazy wrapper's head: the user's name and visibility, the
    /// attributes that describe it, its generics with the value bounds, each
    /// parameter `P` taken as `impl IntoArg<P>` (`IntoPureArg` for `pure`,
    /// which must hash it), and `Delayed<R>` returned.
    /// An item beside the wrapper whose only use is its name: in a trait
    /// `impl` (where the wrapper cannot go, since its `impl IntoArg`
    /// parameters are generic), rustc reports it as "not a member of trait"
    /// with that name, which says what is wrong in the user's terms. An
    /// attribute cannot see whether it is in a trait `impl`; elsewhere the
    /// constant is hidden and unused.
    fn trait_impl_marker(&self) -> TokenStream {
        let name = &self.f.item.sig.ident;
        let marker = quote::format_ident!(
            "{}__is_delayed__a_trait_method_cannot_be__call_a_delayed_free_function_from_it",
            name,
            span = name.span()
        );
        quote! {
            #[doc(hidden)]
            #[allow(non_upper_case_globals, dead_code)]
            const #marker: () = ();
        }
    }

    fn wrapper_sig(&self) -> TokenStream {
        let (rt, output, item) = (&self.rt, &self.f.output, &self.f.item);
        let (vis, name) = (&item.vis, &item.sig.ident);
        let outer_attrs = item.attrs.iter().filter(|a| is_any(a, WRAPPER_ATTRS));
        let (impl_generics, _, where_clause) = self.generics.split_for_impl();
        let into = if self.f.opts.pure {
            quote!(#rt::IntoPureArg)
        } else {
            quote!(#rt::IntoArg)
        };
        let inputs = self.f.params.iter().zip(&self.arg_names).map(|(p, a)| {
            let stored = &p.stored;
            quote_spanned!(stored.span()=> #a: impl #into<#stored>)
        });
        quote! {
            #(#outer_attrs)*
            // The value bounds rdask adds sit in a where clause, whichever way
            // the user wrote theirs.
            #[allow(clippy::multiple_bound_locations)]
            #vis fn #name #impl_generics (#(#inputs),*) -> ::rdask::Delayed<#output> #where_clause
        }
    }

    /// The original function, renamed `__rdask_inner`, with the attributes
    /// that are not the wrapper's alone. It sits alone in the wrapper's
    /// body, so that its body sees the names it would see without the
    /// attribute (what rdask adds is in an inner block, out of its sight).
    fn original(&self) -> TokenStream {
        let item = &self.f.item;
        let inner_attrs = item.attrs.iter().filter(|a| !is_any(a, WRAPPER_ONLY_ATTRS));
        let mut inner_sig = item.sig.clone();
        inner_sig.ident = Ident::new("__rdask_inner", Span::call_site());
        let block = &item.block;
        quote! {
            #(#inner_attrs)*
            #[allow(clippy::too_many_arguments, clippy::ptr_arg)]
            #inner_sig #block
        }
    }

    /// The adapter `__rdask_run`, the function a node runs: it checks that
    /// the signature's types can be values, takes the arguments out of the
    /// node's inputs, calls the original and boxes its result.
    fn adapter(&self) -> TokenStream {
        let (rt, turbofish) = (&self.rt, &self.turbofish);
        let (impl_generics, _, where_clause) = self.generics.split_for_impl();
        let checks = self.value_checks();
        let args = self.adapter_args();
        let ret = self.ret();
        let locals = &self.locals;
        quote! {
            #[allow(unused_variables, clippy::multiple_bound_locations)]
            fn __rdask_run #impl_generics (
                __rdask_args: &mut #rt::Args<'_>,
            ) -> ::core::result::Result<#rt::Value, #rt::BoxError> #where_clause {
                #checks
                #args
                #ret(__rdask_inner #turbofish (#(#locals),*))
            }
        }
    }

    /// The adapter's first statements: values must be able to cross threads,
    /// said on the user's types. They come first, so that the adapter's own
    /// uses of the same types add no second error for the same type (rustc
    /// reports one error per type and bound in a function body).
    fn value_checks(&self) -> TokenStream {
        let f = &self.f;
        let values = f.params.iter().map(|p| &p.stored);
        let values = values.chain(std::iter::once(&f.output));
        let checks =
            values.map(|t| quote_spanned!(t.span()=> ::rdask::requires::value_type::<#t>();));
        // The error type must convert into a `BoxError`: said on it.
        let error = f.error.iter();
        let error =
            error.map(|e| quote_spanned!(e.span()=> ::rdask::requires::error_type::<#e>();));
        quote!(#(#checks)* #(#error)*)
    }

    /// The adapter taking its arguments out: owned ones first, then
    /// borrowed ones (a borrow of the inputs must not be alive while another
    /// argument is taken out).
    fn adapter_args(&self) -> TokenStream {
        let rt = &self.rt;
        let params = self.f.params.iter().zip(&self.locals).enumerate();
        let takes = params
            .clone()
            .filter(|(_, (p, _))| !p.by_ref)
            .map(|(i, (p, l))| {
                let s = &p.stored;
                // A `Clone` parameter copies a shared constant itself.
                quote_spanned!(s.span()=> let #l = (&&&#rt::probe::<#s>()).take(__rdask_args, #i)?;)
            });
        let gets = params.filter(|(_, (p, _))| p.by_ref).map(|(i, (p, l))| {
            let s = &p.stored;
            quote_spanned!(s.span()=> let #l = __rdask_args.get::<#s>(#i)?;)
        });
        quote!(#(#takes)* #(#gets)*)
    }

    /// What turns the original's result into the adapter's: `ret`, or
    /// `requires::fallible_result` (an `Err` fails the computation). Spanned on the
    /// return type, so that an error about it (not `Send`, ...) points
    /// there and not at the attribute.
    fn ret(&self) -> TokenStream {
        let (rt, output) = (&self.rt, &self.f.output);
        if self.f.fallible {
            // On the error type where it is spelled (the value type is
            // checked on its own, in `value_checks`).
            let error = self.f.error.as_ref();
            let span = error.map_or_else(|| output.span(), |e| e.span());
            quote_spanned!(span=> ::rdask::requires::fallible_result::<#output, _>)
        } else {
            quote_spanned!(output.span()=> #rt::ret::<#output>)
        }
    }

    /// The node's description `__RDASK_INFO`, and `__RDASK_PATH`, where the
    /// function is defined: unique even for two associated functions of one
    /// name in one module (pure keys and worker lookup use it). A
    /// non-generic function points at its remote entry ([`remote_items`]).
    ///
    /// [`remote_items`]: Cx::remote_items
    fn fn_info(&self) -> TokenStream {
        let rt = &self.rt;
        let name_str = self.f.item.sig.ident.to_string();
        let prefix = self.f.opts.name.as_ref();
        let prefix = prefix.map_or_else(|| name_str.clone(), |l| l.value());
        let remote = if self.generic() {
            quote!(::core::option::Option::None)
        } else {
            quote!(::core::option::Option::Some(__rdask_remote))
        };
        let annot = self.annotations();
        let cache = self.cache_spec();
        quote! {
            const __RDASK_PATH: &str = ::core::concat!(
                ::core::module_path!(), "::", #name_str, "@", ::core::line!(), ":", ::core::column!()
            );
            static __RDASK_INFO: #rt::FnInfo = #rt::FnInfo {
                name: #name_str,
                prefix: #prefix,
                path: __RDASK_PATH,
                remote: #remote,
                annot: #annot,
                cache: #cache,
            };
        }
    }

    /// `cache`: the function's version and a hash of its tokens (its whole
    /// definition: an edited body or signature never reads an old entry).
    fn cache_spec(&self) -> TokenStream {
        let rt = &self.rt;
        if self.f.opts.cache.is_none() {
            return quote!(::core::option::Option::None);
        }
        let tokens = tokens_hash(&self.f.item);
        let version = match &self.f.opts.version {
            Some(v) => quote_spanned!(v.span()=> { let v: u32 = #v; v }),
            None => quote!(0),
        };
        quote!(::core::option::Option::Some(#rt::CacheSpec { tokens: #tokens, version: #version }))
    }

    // (`tokens_hash` below.)

    /// `retries`, `priority`, `timeout_ms` and `resources`, each checked
    /// against its type on the user's own expression.
    fn annotations(&self) -> TokenStream {
        let rt = &self.rt;
        let o = &self.f.opts;
        let typed = |e: &Option<syn::Expr>, ty: TokenStream| match e {
            Some(e) => {
                quote_spanned!(e.span()=> ::core::option::Option::Some({ let v: #ty = #e; v }))
            }
            None => quote!(::core::option::Option::None),
        };
        let retries = typed(&o.retries, quote!(u32));
        let priority = typed(&o.priority, quote!(i32));
        let timeout = typed(&o.timeout_ms, quote!(u64));
        let resources = match &o.resources {
            Some(list) => {
                let items = list.iter().map(|(name, amount)| {
                    let name = name.to_string();
                    // `gpu = 1` means one: an integer literal is read as an
                    // `f64` one; anything else must be an `f64`.
                    let amount = match amount {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Int(int),
                            ..
                        }) => {
                            let f = syn::LitFloat::new(
                                &format!("{}f64", int.base10_digits()),
                                int.span(),
                            );
                            quote!(#f)
                        }
                        other => quote_spanned!(other.span()=> { let v: f64 = #other; v }),
                    };
                    quote!((#name, #amount))
                });
                quote!(::core::option::Option::Some(&[#(#items),*]))
            }
            None => quote!(::core::option::Option::None),
        };
        quote!(#rt::Annotations::__of(#retries, #priority, #timeout, #resources))
    }

    /// For worker processes: a non-generic function registers itself by
    /// path (`__rdask_remote`, submitted to the registry), and runs remotely
    /// when its types turn out to be serde. `#[delayed(remote)]` makes not
    /// serde a compile error, on the option. Generic functions write
    /// nothing: they always run in the calling process.
    fn remote_items(&self) -> TokenStream {
        if self.generic() {
            return quote!();
        }
        let (rt, output, locals) = (&self.rt, &self.f.output, &self.locals);
        let stored = self.f.params.iter().map(|p| &p.stored);
        let result = self.remote_result();
        let force = self.f.opts.remote;
        let force = force.map(
            |span| quote_spanned!(span=> let _ = ::rdask::requires::remote_fns::<__RdaskApply>;),
        );
        quote! {
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
        }
    }

    /// The body of the worker's `apply`: the original called on the
    /// decoded parameters (borrowed where it borrows), its error boxed.
    fn remote_result(&self) -> TokenStream {
        let call_args = self.f.params.iter().zip(&self.locals).map(|(p, l)| {
            if p.by_ref {
                quote!(&#l)
            } else {
                quote!(#l)
            }
        });
        if self.f.fallible {
            // Spanned on the error type where it is spelled: an error about
            // it points there.
            let error = self.f.error.as_ref();
            let span = error.map_or_else(Span::call_site, |e| e.span());
            quote_spanned!(span=> __rdask_inner(#(#call_args),*).map_err(::rdask::requires::TaskError::into_box))
        } else {
            quote!(::core::result::Result::Ok(__rdask_inner(#(#call_args),*)))
        }
    }

    /// Records the copy functions of the signature's types once, so values
    /// of these types can be copied wherever a generic producer (a `map`
    /// closure, a `split` part) could not say how. Generic functions skip
    /// this: one static would serve every instantiation.
    fn register_types(&self) -> TokenStream {
        if self.generic() {
            return quote!();
        }
        let rt = &self.rt;
        let types = self.f.params.iter().map(|p| &p.stored);
        let types = types.chain(std::iter::once(&self.f.output));
        quote! {
            static __RDASK_TYPES: ::std::sync::Once = ::std::sync::Once::new();
            __RDASK_TYPES.call_once(|| {
                #((&&#rt::probe::<#types>()).register();)*
            });
        }
    }

    /// The call itself: each argument becomes a graph input (the consumer's
    /// parameter type says how to copy it if it must be shared), and one
    /// node is added, keyed by a hash of the call when `pure`
    /// ([`pure_token`]).
    ///
    /// [`pure_token`]: Cx::pure_token
    fn call_site(&self) -> TokenStream {
        let (rt, output, turbofish) = (&self.rt, &self.f.output, &self.turbofish);
        let args = self.f.params.iter().zip(&self.arg_names).map(|(p, a)| {
            let (s, by_ref) = (&p.stored, p.by_ref);
            quote_spanned!(s.span()=>
                #rt::IntoArg::<#s>::into_arg(#a, #by_ref, (&&#rt::probe::<#s>()).clone_fn())
            )
        });
        // The arguments' array's length, spelled out: `call` takes the array
        // whole (see `NodeRef::make_array`).
        let arity = self.f.params.len();
        // An annotated function tells the planner there is something to
        // read (unannotated calls pay nothing for annotations).
        let o = &self.f.opts;
        let note = (o.retries.is_some()
            || o.priority.is_some()
            || o.timeout_ms.is_some()
            || o.resources.is_some())
        .then(|| quote!(#rt::Annotations::__seen(&__RDASK_INFO.annot);));
        if self.f.opts.pure {
            let token = self.pure_token();
            quote! {
                #note
                #token
                let __rdask_args = [#(#args),*];
                #rt::call_pure::<#output, #arity>(&__RDASK_INFO, __rdask_args, __rdask_run #turbofish, __rdask_clone, __rdask_token)
            }
        } else {
            quote! {
                #note
                let __rdask_args = [#(#args),*];
                #rt::call::<#output, #arity>(&__RDASK_INFO, __rdask_args, __rdask_run #turbofish, __rdask_clone)
            }
        }
    }

    /// A `pure` call's key, `__rdask_token`: a hash of the function's path,
    /// of the instance's name for a generic function (its instances are
    /// different functions: `f(1_u32)` and `f(1_i32)`, equal bytes, must
    /// not be one task), and of the arguments.
    fn pure_token(&self) -> TokenStream {
        let (rt, turbofish) = (&self.rt, &self.turbofish);
        let tokens = self.f.params.iter().zip(&self.arg_names).map(|(p, a)| {
            let s = &p.stored;
            quote_spanned!(s.span()=> #rt::IntoPureArg::<#s>::token(&#a, &mut __rdask_hasher);)
        });
        let instance = self.generic().then(|| {
            quote! {
                ::core::hash::Hasher::write(
                    &mut __rdask_hasher,
                    ::core::any::type_name_of_val(&__rdask_run #turbofish).as_bytes(),
                );
            }
        });
        quote! {
            let mut __rdask_hasher = #rt::pure_hasher(&__RDASK_INFO);
            #instance
            #(#tokens)*
            let __rdask_token = ::core::hash::Hasher::finish(&__rdask_hasher);
        }
    }
}

/// The wrapper's and the adapter's generics ([`Cx::generics`]): the
/// function's without its lifetimes, each type parameter bounded
/// `Send + Sync + 'static` in the where clause.
fn wrapper_generics(generics: &Generics) -> Generics {
    let mut generics = generics.clone();
    generics.params = generics
        .params
        .into_iter()
        .filter(|p| !matches!(p, GenericParam::Lifetime(_)))
        .collect();
    let type_params: Vec<Ident> = generics.type_params().map(|t| t.ident.clone()).collect();
    let wc = generics.make_where_clause();
    for t in &type_params {
        wc.predicates
            .push(syn::parse_quote!(#t: ::core::marker::Send + ::core::marker::Sync + 'static));
    }
    generics
}

/// `::<T, N>` naming the type and const parameters of `generics` (which has
/// no lifetimes left), or nothing: how the adapter calls the original, and
/// the call site the adapter, for the same instance.
fn turbofish(generics: &Generics) -> TokenStream {
    let args: Vec<TokenStream> = generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.to_token_stream()),
            GenericParam::Const(c) => Some(c.ident.to_token_stream()),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#args),*>)
    }
}

/// The attributes the wrapper carries: docs, cfg and lint levels describe
/// it too, and what its callers are told (`deprecated`, `must_use`) is said
/// on it.
const WRAPPER_ATTRS: &[&str] = &[
    "doc",
    "cfg",
    "allow",
    "warn",
    "deny",
    "expect",
    "deprecated",
    "must_use",
];

/// The attributes for the wrapper alone; the original keeps every other.
const WRAPPER_ONLY_ATTRS: &[&str] = &["doc", "deprecated", "must_use"];

fn is_any(a: &Attribute, names: &[&str]) -> bool {
    names.iter().any(|n| a.path().is_ident(n))
}

/// FNV-1a of a function's tokens as written (attributes, signature, body):
/// what a cache entry of it is tied to.
fn tokens_hash(item: &syn::ItemFn) -> u64 {
    item.to_token_stream()
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::tokens_hash;
    use syn::parse_quote;

    #[test]
    fn an_edited_body_or_signature_changes_the_tokens_hash() {
        let f: syn::ItemFn = parse_quote!(
            fn f(x: u64) -> u64 {
                x + 1
            }
        );
        let same: syn::ItemFn = parse_quote!(
            fn f(x: u64) -> u64 {
                x + 1
            }
        );
        let body: syn::ItemFn = parse_quote!(
            fn f(x: u64) -> u64 {
                x + 2
            }
        );
        let sig: syn::ItemFn = parse_quote!(
            fn f(x: u32) -> u64 {
                x + 1
            }
        );
        assert_eq!(tokens_hash(&f), tokens_hash(&same), "layout is not an edit");
        assert_ne!(tokens_hash(&f), tokens_hash(&body));
        assert_ne!(tokens_hash(&f), tokens_hash(&sig));
    }
}
