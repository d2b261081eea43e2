//! Parsing and checking `#[delayed(..)]` and the function it is on.
//!
//! Everything that can be wrong is found here and reported on the user's
//! token; [`expand`](super::expand) only writes code for a valid model.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Error, FnArg, GenericArgument, Ident, ItemFn, LitStr, Pat, PathArguments, ReturnType, Token,
    Type,
};

/// The attribute's options.
#[derive(Default)]
pub struct Options {
    pub pure: bool,
    pub name: Option<LitStr>,
    pub fallible: Option<Span>,
    pub infallible: Option<Span>,
    pub remote: Option<Span>,
}

const KNOWN: &str =
    "expected `pure`, `name = \"..\"`, `fallible`, `infallible` or `remote`";

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut opts = Options::default();
        let items = Punctuated::<OptionItem, Token![,]>::parse_terminated(input)?;
        for item in items {
            let dup = |what: &str| Error::new(item.ident.span(), format!("`{what}` given twice"));
            match (item.ident.to_string().as_str(), item.value) {
                ("pure", None) if opts.pure => return Err(dup("pure")),
                ("pure", None) => opts.pure = true,
                ("fallible", None) if opts.fallible.is_some() => return Err(dup("fallible")),
                ("fallible", None) => opts.fallible = Some(item.ident.span()),
                ("infallible", None) if opts.infallible.is_some() => return Err(dup("infallible")),
                ("infallible", None) => opts.infallible = Some(item.ident.span()),
                ("remote", None) if opts.remote.is_some() => return Err(dup("remote")),
                ("remote", None) => opts.remote = Some(item.ident.span()),
                ("name", Some(_)) if opts.name.is_some() => return Err(dup("name")),
                ("name", Some(lit)) => {
                    if lit.value().is_empty() {
                        return Err(Error::new(lit.span(), "the key prefix cannot be empty"));
                    }
                    opts.name = Some(lit)
                }
                ("name", None) => {
                    return Err(Error::new(
                        item.ident.span(),
                        "`name` needs a value: `name = \"prefix\"`",
                    ))
                }
                ("pure" | "fallible" | "infallible" | "remote", Some(lit)) => {
                    return Err(Error::new(
                        lit.span(),
                        format!("`{}` takes no value", item.ident),
                    ))
                }
                (other, _) => {
                    return Err(Error::new(
                        item.ident.span(),
                        format!("unknown #[delayed] option `{other}`: {KNOWN}"),
                    ))
                }
            }
        }
        if let (Some(_), Some(inf)) = (opts.fallible, opts.infallible) {
            return Err(Error::new(
                inf,
                "`fallible` and `infallible` contradict each other: choose one",
            ));
        }
        Ok(opts)
    }
}

struct OptionItem {
    ident: Ident,
    value: Option<LitStr>,
}

impl Parse for OptionItem {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let ident: Ident = input
            .parse()
            .map_err(|e| Error::new(e.span(), format!("bad #[delayed] option: {KNOWN}")))?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<LitStr>().map_err(|e| {
                Error::new(e.span(), "expected a string literal: `name = \"prefix\"`")
            })?)
        } else {
            None
        };
        Ok(OptionItem { ident, value })
    }
}

/// One parameter of the function.
pub struct Param {
    /// The type the graph stores (`&P` -> `P`, `&str` -> `String`, `&[T]` ->
    /// `Vec<T>`).
    pub stored: Type,
    /// The function takes it by reference.
    pub by_ref: bool,
}

/// A checked `#[delayed]` function.
pub struct DelayedFn {
    pub opts: Options,
    pub item: ItemFn,
    pub params: Vec<Param>,
    /// The value type of the returned `Delayed`.
    pub output: Type,
    /// An `Err` fails the computation.
    pub fallible: bool,
}

impl DelayedFn {
    pub fn check(opts: Options, item: ItemFn) -> syn::Result<DelayedFn> {
        let sig = &item.sig;
        let mut errors: Vec<Error> = Vec::new();
        if let Some(t) = &sig.asyncness {
            errors.push(Error::new(
                t.span(),
                "#[delayed] cannot be used on an `async fn`: a task is a plain function; make it \
                 a `fn` and block on the future inside it (for example with a runtime's \
                 `block_on`)",
            ));
        }
        if let Some(t) = &sig.constness {
            errors.push(Error::new(
                t.span(),
                "#[delayed] cannot be used on a `const fn`: remove `const`",
            ));
        }
        if let Some(t) = &sig.unsafety {
            errors.push(Error::new(
                t.span(),
                "#[delayed] cannot be used on an `unsafe fn`: wrap the unsafe call in a safe \
                 function and annotate that",
            ));
        }
        if let Some(abi) = &sig.abi {
            errors.push(Error::new(
                abi.span(),
                "#[delayed] cannot be used on an `extern` function",
            ));
        }
        if let Some(v) = &sig.variadic {
            errors.push(Error::new(
                v.span(),
                "#[delayed] functions cannot be variadic",
            ));
        }
        if let Some(span) = opts.remote {
            let generic = sig
                .generics
                .params
                .iter()
                .any(|p| !matches!(p, syn::GenericParam::Lifetime(_)));
            if generic {
                errors.push(Error::new(
                    span,
                    "`remote` needs a non-generic function: a worker process finds the \
                     function by its path, which a generic function does not have",
                ));
            }
        }
        let mut params = Vec::new();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(r) => errors.push(Error::new(
                    r.self_token.span(),
                    "#[delayed] cannot be used on a method that takes `self`: make it a free \
                     function that takes the value as a parameter, or call it lazily with \
                     `delay!(Type::method(value, ..))`",
                )),
                FnArg::Typed(pt) => {
                    if let Pat::Ident(pi) = &*pt.pat {
                        if let Some(r) = &pi.by_ref {
                            errors.push(Error::new(r.span(), "`ref` bindings are not supported"));
                        }
                    }
                    match param(&pt.ty) {
                        Ok(p) => params.push(p),
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        let (output, fallible) = match output(&opts, &sig.output) {
            Ok(o) => o,
            Err(e) => {
                errors.push(e);
                (syn::parse_quote!(()), false)
            }
        };
        let mut errors = errors.into_iter();
        if let Some(mut first) = errors.next() {
            for e in errors {
                first.combine(e);
            }
            return Err(first);
        }
        Ok(DelayedFn {
            opts,
            item,
            params,
            output,
            fallible,
        })
    }
}

fn param(ty: &Type) -> syn::Result<Param> {
    match ty {
        Type::Reference(r) => {
            if let Some(m) = &r.mutability {
                return Err(Error::new(
                    m.span(),
                    "#[delayed] parameters cannot be `&mut`: a task may not change a value that \
                     other tasks share; take it by value and return the changed value",
                ));
            }
            let stored = match &*r.elem {
                Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
                    syn::parse_quote_spanned!(r.elem.span()=> ::std::string::String)
                }
                Type::Slice(s) => {
                    let elem = &s.elem;
                    syn::parse_quote_spanned!(r.elem.span()=> ::std::vec::Vec<#elem>)
                }
                other => {
                    no_impl_trait(other)?;
                    other.clone()
                }
            };
            Ok(Param {
                stored,
                by_ref: true,
            })
        }
        other => {
            no_impl_trait(other)?;
            Ok(Param {
                stored: other.clone(),
                by_ref: false,
            })
        }
    }
}

fn no_impl_trait(ty: &Type) -> syn::Result<()> {
    if let Type::ImplTrait(t) = ty {
        return Err(Error::new(
            t.impl_token.span(),
            "#[delayed] parameters cannot be `impl Trait`: the graph stores arguments, so their \
             type must be named; use a generic parameter or a concrete type",
        ));
    }
    Ok(())
}

fn output(opts: &Options, ret: &ReturnType) -> syn::Result<(Type, bool)> {
    let ty = match ret {
        ReturnType::Default => {
            if let Some(span) = opts.fallible {
                return Err(Error::new(
                    span,
                    "`fallible` needs a function that returns a `Result`",
                ));
            }
            return Ok((syn::parse_quote!(()), false));
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    if let Type::ImplTrait(t) = ty {
        return Err(Error::new(
            t.impl_token.span(),
            "#[delayed] functions cannot return `impl Trait`: the result is stored in the graph, \
             so its type must be named",
        ));
    }
    let last = match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    };
    let spelled_result = last.is_some_and(|s| s.ident == "Result");
    let fallible = opts.infallible.is_none() && (spelled_result || opts.fallible.is_some());
    if !fallible {
        return Ok((ty.clone(), false));
    }
    let first_type = last.and_then(|seg| match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    });
    match first_type {
        Some(t) => Ok((t, true)),
        None => Err(Error::new(
            ty.span(),
            "cannot find the value type of this `Result`: a fallible #[delayed] function must \
             return `Result<T, E>` or an alias whose first type argument is `T`; add \
             `#[delayed(infallible)]` to keep the `Result` as the value",
        )),
    }
}
