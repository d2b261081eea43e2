//! `graph! { key => value_or_task, .. }`: dask's custom-graph syntax.
//!
//! Expands to the `rdask::Graph` builder calls, one per entry:
//! `"c" => (add, "a", "b")` becomes `g.insert_task("c", add, (<a>, <b>))`
//! where each task argument is rewritten by [`task_arg`].

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprTuple, Lit, Token};

struct Entry {
    key: Expr,
    value: Expr,
}

impl Parse for Entry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Expr = input.parse()?;
        input
            .parse::<Token![=>]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `=>` after the key: `\"a\" => 1`"))?;
        let value: Expr = input.parse()?;
        Ok(Entry { key, value })
    }
}

pub fn graph(input: TokenStream) -> TokenStream {
    let entries =
        match syn::parse::Parser::parse2(Punctuated::<Entry, Token![,]>::parse_terminated, input) {
            Ok(e) => e,
            Err(e) => return e.to_compile_error(),
        };
    if let Some(e) = duplicate_key(&entries) {
        return e.to_compile_error();
    }
    let inserts = entries.iter().map(|Entry { key, value }| {
        let k = quote_spanned!(key.span()=> ::rdask::Key::from(#key));
        if let Some((f, args)) = as_task(value) {
            let args = args.iter().map(task_arg);
            quote_spanned!(value.span()=> __rdask_graph.insert_task(#k, #f, (#(#args,)*));)
        } else if let Some(target) = explicit_call(value, "key") {
            quote_spanned!(value.span()=> __rdask_graph.insert_alias(#k, #target);)
        } else if let Some(v) = explicit_call(value, "lit") {
            // A value, as it is (a value is never taken for a key anyway).
            quote_spanned!(value.span()=> __rdask_graph.insert_value(#k, #v);)
        } else {
            quote_spanned!(value.span()=> __rdask_graph.insert_value(#k, #value);)
        }
    });
    quote! {{
        #[allow(unused_mut)]
        let mut __rdask_graph = ::rdask::Graph::new();
        #(#inserts)*
        __rdask_graph
    }}
}

/// The second of two entries with one literal key (a string, or a tuple of
/// literals): the later would silently replace the earlier, as in a Python
/// dict, which in a graph written out by hand is a typo.
fn duplicate_key(entries: &Punctuated<Entry, Token![,]>) -> Option<syn::Error> {
    let mut seen: Vec<String> = Vec::new();
    for Entry { key, .. } in entries {
        let Some(text) = literal_key(key) else {
            continue;
        };
        if seen.contains(&text) {
            return Some(syn::Error::new_spanned(
                key,
                format!(
                    "duplicate key {text} in graph!: an entry above has it already (a later \
                     entry would silently replace it)"
                ),
            ));
        }
        seen.push(text);
    }
    None
}

/// A key written as literals only, as text: `"a"`, `("x", 0)`.
fn literal_key(key: &Expr) -> Option<String> {
    match key {
        Expr::Lit(l) => Some(quote!(#l).to_string()),
        Expr::Tuple(t) if t.elems.iter().all(|e| literal_key(e).is_some()) => {
            Some(quote!(#t).to_string())
        }
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            literal_key(&u.expr).map(|x| format!("-{x}"))
        }
        _ => None,
    }
}

/// `(f, args..)` where `f` is a path or a closure: a task.
fn as_task(e: &Expr) -> Option<(&Expr, Vec<&Expr>)> {
    let Expr::Tuple(ExprTuple { elems, .. }) = e else {
        return None;
    };
    let mut it = elems.iter();
    let f = it.next()?;
    let callable = match f {
        Expr::Path(_) | Expr::Closure(_) => true,
        Expr::Paren(p) => matches!(&*p.expr, Expr::Closure(_)),
        _ => false,
    };
    callable.then(|| (f, it.collect()))
}

/// The argument of `name(..)` when `e` is a call of the bare `name`.
fn explicit_call<'a>(e: &'a Expr, name: &str) -> Option<&'a Expr> {
    let Expr::Call(c) = e else { return None };
    let Expr::Path(p) = &*c.func else { return None };
    if p.path.is_ident(name) && c.args.len() == 1 {
        c.args.first()
    } else {
        None
    }
}

/// The longest tuple taken for a key inside a task: a name and four
/// indices. Runtime tuple keys stop at the same length: the `tuple_keys!`
/// lines of `rdask-core/src/key.rs` (`impl From<(S, A, B, C, D)> for Key`).
/// A longer tuple is a literal here; `tests/raw_graph.rs`
/// (`tuple_keys_up_to_the_longest`) and `tests/ui/fail/graph_tuple_key_too_long.rs`
/// fail if the two lengths differ.
const MAX_TUPLE_KEY_LEN: usize = 5;

/// One argument inside a task, by dask's rules: a string (or a tuple of a
/// string and integers) is a key if the graph has it, else itself; `[..]`
/// is a list; a nested `(f, ..)` is a task; `key(..)` and `lit(..)` are
/// explicit; anything else is a literal.
fn task_arg(e: &&Expr) -> TokenStream {
    let rt = quote!(::rdask::__private);
    let e: &Expr = e;
    if let Expr::Lit(l) = e {
        if let Lit::Str(s) = &l.lit {
            return quote_spanned!(e.span()=> #rt::maybe_key(#s));
        }
    }
    if let Expr::Array(a) = e {
        let items = a.elems.iter().map(|x| task_arg(&x));
        return quote_spanned!(e.span()=> #rt::arg(::std::vec![#(#items),*]));
    }
    if let Some((f, args)) = as_task(e) {
        let args = args.iter().map(task_arg);
        return quote_spanned!(e.span()=> #rt::GraphArg::task(#f, (#(#args,)*)));
    }
    if let Expr::Tuple(t) = e {
        let mut it = t.elems.iter();
        let named = matches!(it.next(), Some(Expr::Lit(l)) if matches!(l.lit, Lit::Str(_)));
        let int = |x: &Expr| matches!(x, Expr::Lit(l) if matches!(l.lit, Lit::Int(_)));
        let indices = it.all(|x| match x {
            // `-1`: a negative index.
            Expr::Unary(u) => matches!(u.op, syn::UnOp::Neg(_)) && int(&u.expr),
            x => int(x),
        });
        if named && indices && t.elems.len() <= MAX_TUPLE_KEY_LEN {
            return quote_spanned!(e.span()=> #rt::maybe_key_tuple(#e));
        }
    }
    if let Some(k) = explicit_call(e, "key") {
        return quote_spanned!(e.span()=> ::rdask::graph::key(#k));
    }
    if let Some(v) = explicit_call(e, "lit") {
        return quote_spanned!(e.span()=> ::rdask::graph::lit(#v));
    }
    quote_spanned!(e.span()=> #rt::literal(#e))
}
