//! `delay!(f(a, b))`: a lazy call of a function that is not annotated.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::{Error, Expr};

/// The most arguments `delay!` takes.
const MAX_ARGS: usize = 8;

pub fn delay(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(t) => t,
        Err(e) => e.to_compile_error(),
    }
}

const USAGE: &str = "delay! expects a function call: `delay!(f(a, b))`";

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    if input.is_empty() {
        return Err(Error::new(Span::call_site(), USAGE));
    }
    let expr: Expr = syn::parse2(input)?;
    let call = match expr {
        Expr::Call(call) => call,
        Expr::MethodCall(m) => {
            let receiver = match &*m.receiver {
                Expr::Path(p) => p.to_token_stream().to_string().replace(' ', ""),
                _ => "receiver".to_string(),
            };
            let method = &m.method;
            let more = if m.args.is_empty() { "" } else { ", .." };
            return Err(Error::new(
                method.span(),
                format!(
                    "delay! cannot call a method on a value: write it as a path call, \
                     `delay!(Type::{method}({receiver}{more}))` with the receiver's type for \
                     `Type` (arguments are passed by value), or, when `{receiver}` is a \
                     `Delayed`, map it: `{receiver}.map(|v: T| v.{method}({more_map}))`",
                    more_map = if m.args.is_empty() { "" } else { ".." },
                ),
            ));
        }
        other => return Err(Error::new_spanned(other, USAGE)),
    };
    let n = call.args.len();
    if n > MAX_ARGS {
        return Err(Error::new_spanned(
            &call.args,
            format!(
                "delay! takes at most {MAX_ARGS} arguments, not {n}; group them in a tuple or \
                 struct"
            ),
        ));
    }
    // `(|x: i64| x + 1)(a)` needs its parentheses as a call, not as an
    // argument (where they would draw an `unused_parens` warning).
    let mut func = &*call.func;
    while let Expr::Paren(p) = func {
        func = &p.expr;
    }
    let name = match func {
        Expr::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_else(|| "call".into()),
        _ => "lambda".to_string(),
    };
    let entry = format_ident!("delay{}", n);
    let args = call.args.iter();
    Ok(quote! {
        ::rdask::requires::#entry(#func, &#name, #(#args,)* |__rdask_probe| {
            #[allow(unused_imports)]
            use ::rdask::__private::{ProbeClone as _, ProbeNoClone as _};
            (&&__rdask_probe).clone_fn()
        })
    })
}
