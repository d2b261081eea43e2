//! Parsing and checking `#[delayed(..)]` and the function it is on.
//!
//! Everything that can be wrong is found here and reported on the user's
//! token; [`expand`](super::expand) only writes code for a valid model.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, Expr, ExprLit, FnArg, GenericArgument, GenericParam, Ident, ItemFn, Lit,
    LitStr, Pat, PatType, PathArguments, PathSegment, ReturnType, Signature, Token, Type,
};

/// The attribute's options.
#[derive(Default)]
pub struct Options {
    pub pure: bool,
    pub name: Option<LitStr>,
    pub fallible: Option<Span>,
    pub infallible: Option<Span>,
    pub remote: Option<Span>,
    /// `retries = N`: a `u32` expression.
    pub retries: Option<Expr>,
    /// `priority = P`: an `i32` expression.
    pub priority: Option<Expr>,
    /// `timeout_ms = T`: a `u64` expression.
    pub timeout_ms: Option<Expr>,
    /// `resources(name = amount, ..)`.
    pub resources: Option<Vec<(Ident, Expr)>>,
    /// `cache`: pure, and kept in an attached cache.
    pub cache: Option<Span>,
    /// `version = N`: a `u32` expression (with `cache`).
    pub version: Option<Expr>,
}

const KNOWN: &str = "expected `pure`, `name = \"..\"`, `fallible`, `infallible`, `remote`, \
                     `cache`, `version = N`, `retries = N`, `priority = P`, `timeout_ms = T` or \
                     `resources(name = amount, ..)`";

impl Options {
    /// Reads `#[delayed(..)]`'s options. Every mistake is reported, and the
    /// options that were understood are still returned, so that the function
    /// is expanded anyway and its call sites get no follow-on errors.
    pub fn parse(attr: TokenStream) -> (Options, Option<Error>) {
        let mut opts = Options::default();
        let parser = Punctuated::<OptionItem, Token![,]>::parse_terminated;
        let items = match parser.parse2(attr) {
            Ok(items) => items,
            Err(e) => return (opts, Some(e)),
        };
        let mut errors = Vec::new();
        for item in items {
            let dup = |what: &str| Error::new(item.ident.span(), format!("`{what}` given twice"));
            if let Some(list) = item.list {
                match item.ident.to_string().as_str() {
                    "resources" if opts.resources.is_some() => errors.push(dup("resources")),
                    "resources" if list.is_empty() => errors.push(Error::new(
                        item.ident.span(),
                        "`resources(..)` needs at least one `name = amount`",
                    )),
                    "resources" => opts.resources = Some(list),
                    other => errors.push(Error::new(
                        item.ident.span(),
                        format!("`{other}(..)` is not an option: {KNOWN}"),
                    )),
                }
                continue;
            }
            match (item.ident.to_string().as_str(), item.value) {
                ("pure", None) if opts.pure => errors.push(dup("pure")),
                ("pure", None) => opts.pure = true,
                ("fallible", None) if opts.fallible.is_some() => errors.push(dup("fallible")),
                ("fallible", None) => opts.fallible = Some(item.ident.span()),
                ("infallible", None) if opts.infallible.is_some() => errors.push(dup("infallible")),
                ("infallible", None) => opts.infallible = Some(item.ident.span()),
                ("remote", None) if opts.remote.is_some() => errors.push(dup("remote")),
                ("remote", None) => opts.remote = Some(item.ident.span()),
                ("cache", None) if opts.cache.is_some() => errors.push(dup("cache")),
                ("cache", None) => opts.cache = Some(item.ident.span()),
                ("version", Some(_)) if opts.version.is_some() => errors.push(dup("version")),
                ("version", Some(v)) => opts.version = Some(v),
                ("version", None) => errors.push(Error::new(
                    item.ident.span(),
                    "`version` needs a value: `version = 2`",
                )),
                ("name", Some(_)) if opts.name.is_some() => errors.push(dup("name")),
                ("name", Some(value)) => match name_value(value) {
                    Ok(lit) => opts.name = Some(lit),
                    Err(e) => errors.push(e),
                },
                ("name", None) => errors.push(Error::new(
                    item.ident.span(),
                    "`name` needs a value: `name = \"prefix\"`",
                )),
                ("retries", Some(_)) if opts.retries.is_some() => errors.push(dup("retries")),
                ("retries", Some(v)) => opts.retries = Some(v),
                ("priority", Some(_)) if opts.priority.is_some() => errors.push(dup("priority")),
                ("priority", Some(v)) => opts.priority = Some(v),
                ("timeout_ms", Some(_)) if opts.timeout_ms.is_some() => {
                    errors.push(dup("timeout_ms"))
                }
                ("timeout_ms", Some(v)) => opts.timeout_ms = Some(v),
                (what @ ("retries" | "priority" | "timeout_ms"), None) => errors.push(Error::new(
                    item.ident.span(),
                    format!("`{what}` needs a value: `{what} = ..`"),
                )),
                ("resources", _) => errors.push(Error::new(
                    item.ident.span(),
                    "resources are written `resources(gpu = 1, mem_gb = 4.0)`",
                )),
                ("pure" | "fallible" | "infallible" | "remote" | "cache", Some(value)) => errors
                    .push(Error::new_spanned(
                        value,
                        format!(
                            "`{}` takes no value: write `{}` alone",
                            item.ident, item.ident
                        ),
                    )),
                ("nout", _) => errors.push(Error::new(
                    item.ident.span(),
                    "`nout` is not needed: a function that returns a tuple gives a \
                     `Delayed<(A, B, ..)>`, and `.split()` (trait `rdask::Split`) makes one \
                     `Delayed` per element",
                )),
                ("dask_key_name" | "key_name" | "key", _) => errors.push(Error::new(
                    item.ident.span(),
                    "a key per call is not an option of the function: name the call, \
                     `f(x).named(\"key\")`; `name = \"prefix\"` sets the prefix of every \
                     call's key",
                )),
                (other, _) => errors.push(Error::new(
                    item.ident.span(),
                    format!("unknown #[delayed] option `{other}`: {KNOWN}"),
                )),
            }
        }
        if let (Some(v), None) = (&opts.version, opts.cache) {
            errors.push(Error::new_spanned(
                v,
                "`version` numbers a cached function's entries: add `cache`",
            ));
        }
        // A cached function is pure (its key hashes its inputs), and its
        // types must be serde (entries are stored encoded): checked as
        // `remote` checks them, on `cache`.
        if let Some(span) = opts.cache {
            opts.pure = true;
            opts.remote.get_or_insert(span);
        }
        if let (Some(_), Some(inf)) = (opts.fallible, opts.infallible) {
            errors.push(Error::new(
                inf,
                "`fallible` and `infallible` contradict each other: choose one",
            ));
            // Neither, then: the return type decides.
            opts.fallible = None;
            opts.infallible = None;
        }
        (opts, combine(errors))
    }
}

/// The value of `name = ..`: a string literal, not empty.
fn name_value(value: Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().is_empty() => Err(Error::new(
            lit.span(),
            "the key prefix cannot be empty: give a name, or leave `name` out to use the \
             function's name",
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(Error::new_spanned(
            other,
            "expected a string literal: `name = \"prefix\"`",
        )),
    }
}

/// All of `errors` as one (reported together), or `None`.
pub fn combine(errors: impl IntoIterator<Item = Error>) -> Option<Error> {
    errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    })
}

struct OptionItem {
    ident: Ident,
    value: Option<Expr>,
    /// `ident(a = x, b = y)`.
    list: Option<Vec<(Ident, Expr)>>,
}

impl Parse for OptionItem {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if let Ok(lit) = input.fork().parse::<LitStr>() {
            return Err(Error::new(
                lit.span(),
                format!("a key prefix is written `name = {}`", lit.to_token_stream()),
            ));
        }
        let ident: Ident = input
            .parse()
            .map_err(|e| Error::new(e.span(), format!("bad #[delayed] option: {KNOWN}")))?;
        if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            let pairs = Punctuated::<NameValue, Token![,]>::parse_terminated(&content)?;
            let list = pairs.into_iter().map(|p| (p.name, p.value)).collect();
            return Ok(OptionItem {
                ident,
                value: None,
                list: Some(list),
            });
        }
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        Ok(OptionItem {
            ident,
            value,
            list: None,
        })
    }
}

/// `name = amount` inside `resources(..)`.
struct NameValue {
    name: Ident,
    value: Expr,
}

impl Parse for NameValue {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        let eq = input.parse::<Token![=]>();
        if eq.is_err() {
            return Err(Error::new(
                name.span(),
                format!("a resource is written `{name} = amount`"),
            ));
        }
        Ok(NameValue {
            name,
            value: input.parse()?,
        })
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
    /// The error type, where the return type spells it (`Result<T, E>`).
    pub error: Option<Type>,
}

impl DelayedFn {
    /// Runs every check, in this order, and reports all their errors
    /// together (each on the user's token); a function that passes them all
    /// is the model [`expand`](super::expand) writes code for.
    pub fn check(opts: Options, item: ItemFn) -> syn::Result<DelayedFn> {
        let sig = &item.sig;
        let mut errors: Vec<Error> = Vec::new();
        check_qualifiers(sig, &mut errors);
        check_symbol_attrs(&item.attrs, &mut errors);
        check_variadic(sig, &mut errors);
        check_remote(&opts, sig, &mut errors);
        let params = check_params(sig, &mut errors);
        let (output, fallible, error) = check_output(&opts, sig, &mut errors);
        if let Some(e) = combine(errors) {
            return Err(e);
        }
        Ok(DelayedFn {
            opts,
            item,
            params,
            output,
            fallible,
            error,
        })
    }
}

/// A task is a plain, safe Rust function: no `async`, `const`, `unsafe` or
/// `extern`, each refused with what to write instead.
fn check_qualifiers(sig: &Signature, errors: &mut Vec<Error>) {
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
            "#[delayed] cannot be used on an `extern` function: a task is a plain Rust \
             function; annotate a plain function and call it from the `extern` one",
        ));
    }
}

/// No `#[no_mangle]` or `#[export_name]`: the symbol would be the generated
/// inner function's, not the lazy wrapper's the user calls.
fn check_symbol_attrs(attrs: &[Attribute], errors: &mut Vec<Error>) {
    for a in attrs {
        let p = a.path();
        let names = |n: &str| {
            p.is_ident(n)
                // Edition 2024's `#[unsafe(no_mangle)]`.
                || (p.is_ident("unsafe") && a.meta.to_token_stream().to_string().contains(n))
        };
        if names("no_mangle") || names("export_name") {
            errors.push(Error::new_spanned(
                a,
                "#[delayed] functions cannot set their symbol name: the lazy wrapper is \
                 not the function whose body you wrote; export a plain function instead",
            ));
        }
    }
}

/// No `...`: the graph stores a fixed list of arguments.
fn check_variadic(sig: &Signature, errors: &mut Vec<Error>) {
    if let Some(v) = &sig.variadic {
        errors.push(Error::new(
            v.span(),
            "#[delayed] functions cannot be variadic",
        ));
    }
}

/// `remote` needs a non-generic function; said on the option.
fn check_remote(opts: &Options, sig: &Signature, errors: &mut Vec<Error>) {
    let Some(span) = opts.remote else { return };
    let mut params = sig.generics.params.iter();
    let generic = params.any(|p| !matches!(p, GenericParam::Lifetime(_)));
    if generic {
        errors.push(Error::new(
            span,
            "`remote` needs a non-generic function: a worker process finds the function by \
             its path, which a generic function does not have",
        ));
    }
}

/// Each parameter: not a receiver, not a `ref` binding, and of a type the
/// graph can store ([`param`]). Returns the parameters that passed.
fn check_params(sig: &Signature, errors: &mut Vec<Error>) -> Vec<Param> {
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => errors.push(Error::new_spanned(r, receiver_error(r))),
            FnArg::Typed(pt) => {
                errors.extend(ref_binding_error(pt));
                match param(&pt.ty) {
                    Ok(p) => params.push(p),
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    params
}

/// A `ref` or `ref mut` binding, refused on `ref (mut)` with the parameter
/// to write instead.
fn ref_binding_error(pt: &PatType) -> Option<Error> {
    let Pat::Ident(pi) = &*pt.pat else {
        return None;
    };
    let r = pi.by_ref.as_ref()?;
    let (ident, ty) = (&pi.ident, type_text(&pt.ty));
    let msg = match &pi.mutability {
        None => format!(
            "#[delayed] parameters cannot be `ref` bindings: to borrow the argument without \
             copying it, make the parameter a reference (`{ident}: &{ty}`)"
        ),
        Some(_) => format!(
            "#[delayed] parameters cannot be `ref mut` bindings: the task gets its own value, \
             so write `mut {ident}: {ty}`"
        ),
    };
    let m = &pi.mutability;
    Some(Error::new_spanned(quote::quote!(#r #m), msg))
}

/// The return type: one the graph can store ([`output`]). On an error, the
/// rest of the checks go on with `()`.
fn check_output(
    opts: &Options,
    sig: &Signature,
    errors: &mut Vec<Error>,
) -> (Type, bool, Option<Type>) {
    output(opts, &sig.output).unwrap_or_else(|e| {
        errors.push(e);
        (syn::parse_quote!(()), false, None)
    })
}

/// A type as the user would write it in a message (`Vec<f64>`, not
/// `Vec < f64 >`).
fn type_text(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (" ,", ","),
    ] {
        text = text.replace(from, to);
    }
    text.replace("& ", "&")
}

/// What to write instead of a method: a free function whose parameter
/// stands for the receiver.
fn receiver_error(r: &syn::Receiver) -> String {
    let head = "#[delayed] cannot be used on a method";
    match (&r.reference, &r.mutability) {
        (Some(_), None) => format!(
            "{head}: make it a free function with a parameter `this: &Type` in place of `&self` \
             (a `&` parameter borrows the value the graph stores, without copying it)"
        ),
        (Some(_), Some(_)) => format!(
            "{head}, and a task may not change a value that other tasks share: make it a free \
             function that takes `this: Type` in place of `&mut self` and returns the changed \
             value"
        ),
        (None, _) => format!(
            "{head}: make it a free function with a parameter `this: Type` in place of `self`, \
             or call the method lazily with `delay!(Type::method(value, ..))`"
        ),
    }
}

fn param(ty: &Type) -> syn::Result<Param> {
    match ty {
        Type::Reference(r) => {
            no_impl_trait(&r.elem)?;
            if let Some(m) = &r.mutability {
                let and = &r.and_token;
                return Err(Error::new_spanned(
                    quote::quote!(#and #m),
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
                    no_borrow(other, PARAM_BORROW)?;
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
            no_borrow(other, PARAM_BORROW)?;
            Ok(Param {
                stored: other.clone(),
                by_ref: false,
            })
        }
    }
}

const PARAM_BORROW: &str = "#[delayed] parameters cannot hold a borrow: the graph keeps \
     arguments after the call returns, so their types must be `'static`; use an owned type, or \
     take the parameter by reference (`&T`) to borrow the value the graph stores";

const RETURN_BORROW: &str = "#[delayed] functions cannot return a borrow: the result is stored \
     in the graph, so its type must be `'static`; return an owned type";

/// Refuses a type that names a lifetime other than `'static` (`Cow<'a, str>`,
/// `Foo<'_>`), with the error on that lifetime: the wrapper, which has no
/// lifetime parameters, could not even name it.
fn no_borrow(ty: &Type, msg: &str) -> syn::Result<()> {
    fn find(tokens: TokenStream) -> Option<TokenStream> {
        let mut iter = tokens.into_iter().peekable();
        while let Some(tt) = iter.next() {
            match tt {
                TokenTree::Group(g) => {
                    if let Some(found) = find(g.stream()) {
                        return Some(found);
                    }
                }
                TokenTree::Punct(p) if p.as_char() == '\'' => {
                    if let Some(TokenTree::Ident(id)) = iter.peek() {
                        if id != "static" {
                            return Some(TokenStream::from_iter([
                                TokenTree::Punct(p),
                                TokenTree::Ident(id.clone()),
                            ]));
                        }
                    }
                }
                _ => {}
            }
        }
        None
    }
    match find(ty.to_token_stream()) {
        Some(lifetime) => Err(Error::new_spanned(lifetime, msg)),
        None => Ok(()),
    }
}

fn no_impl_trait(ty: &Type) -> syn::Result<()> {
    const MSG: &str = "#[delayed] parameters cannot be `impl Trait`: the graph stores \
                       arguments, so their type must be named; use a generic parameter or a \
                       concrete type";
    if let Type::ImplTrait(t) = ty {
        return Err(Error::new_spanned(t, MSG));
    }
    match find_impl(ty.to_token_stream()) {
        Some(span) => Err(Error::new(span, MSG)),
        None => Ok(()),
    }
}

/// The first `impl` inside a type (`Vec<impl Display>`), at any depth:
/// in a type the keyword only ever starts an `impl Trait`.
fn find_impl(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|tt| match tt {
        TokenTree::Ident(id) if id == "impl" => Some(id.span()),
        TokenTree::Group(g) => find_impl(g.stream()),
        _ => None,
    })
}

/// The value type of the returned `Delayed`, whether the function is
/// fallible, and its error type where spelled. The first thing wrong is
/// the error.
fn output(opts: &Options, ret: &ReturnType) -> syn::Result<(Type, bool, Option<Type>)> {
    let ty = match ret {
        ReturnType::Default => {
            if let Some(span) = opts.fallible {
                return Err(Error::new(
                    span,
                    "`fallible` needs a function that returns a `Result`",
                ));
            }
            return Ok((syn::parse_quote!(()), false, None));
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    storable_return(ty)?;
    let last = match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    };
    let spelled_result = last.is_some_and(|s| s.ident == "Result");
    let fallible = opts.infallible.is_none() && (spelled_result || opts.fallible.is_some());
    if !fallible {
        return Ok((ty.clone(), false, None));
    }
    let (value, error) = result_types(ty, last, spelled_result)?;
    Ok((value, true, error))
}

/// A return type the graph can store: named (not `impl Trait`), a value
/// (not `!`), and `'static`.
fn storable_return(ty: &Type) -> syn::Result<()> {
    const IMPL: &str = "#[delayed] functions cannot return `impl Trait`: the result is stored \
                        in the graph, so its type must be named";
    if let Type::ImplTrait(t) = ty {
        return Err(Error::new_spanned(t, IMPL));
    }
    if let Some(span) = find_impl(ty.to_token_stream()) {
        return Err(Error::new(span, IMPL));
    }
    if let Type::Never(t) = ty {
        return Err(Error::new_spanned(
            t,
            "#[delayed] functions must return a value: a task that never returns has no result \
             for the graph to store; return `()` (or a `Result`) and panic inside",
        ));
    }
    no_borrow(ty, RETURN_BORROW)
}

/// A fallible return type's value type (its first type argument) and error
/// type (the second, where `Result<T, E>` is spelled out: an alias may not
/// name it). `last` is the type's last path segment.
fn result_types(
    ty: &Type,
    last: Option<&PathSegment>,
    spelled_result: bool,
) -> syn::Result<(Type, Option<Type>)> {
    let types: Vec<Type> = last
        .map(|seg| match &seg.arguments {
            PathArguments::AngleBracketed(a) => a
                .args
                .iter()
                .filter_map(|g| match g {
                    GenericArgument::Type(t) => Some(t.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let error = match (spelled_result, &types[..]) {
        (true, [_, e]) => Some(e.clone()),
        _ => None,
    };
    match types.into_iter().next() {
        Some(t) => Ok((t, error)),
        None if spelled_result => Err(Error::new_spanned(
            ty,
            "cannot find the value type of this `Result`: a fallible #[delayed] function must \
             return `Result<T, E>` or an alias whose first type argument is `T`; spell the \
             value type out (`Result<(), fmt::Error>`), or add `#[delayed(infallible)]` to keep \
             the `Result` as the value",
        )),
        None => Err(Error::new_spanned(
            ty,
            "#[delayed(fallible)] needs a return type whose first type argument is the value \
             type, as in `Result<T, E>` or `MyResult<T>`; this one has none: spell it out, or \
             remove `fallible`",
        )),
    }
}
