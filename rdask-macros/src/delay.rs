//! `delay!(f(a, b))`: a lazy call of a function that is not annotated.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Error, Expr};

/// The most arguments `delay!` takes.
const MAX_ARGS: usize = 8;

pub fn delay(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(t) => t,
        Err(e) => e.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let expr: Expr = syn::parse2(input)?;
    let call = match expr {
        Expr::Call(call) => call,
        Expr::MethodCall(m) => {
            return Err(Error::new(
                m.method.span(),
                "delay! cannot call a method on a value: write the path form, \
                 `delay!(Type::method(receiver, args..))`",
            ))
        }
        other => {
            return Err(Error::new(
                other.span(),
                "delay! expects a function call: `delay!(f(a, b))`",
            ))
        }
    };
    let n = call.args.len();
    if n > MAX_ARGS {
        return Err(Error::new(
            call.args.span(),
            format!("delay! takes at most {MAX_ARGS} arguments; group them in a tuple or struct"),
        ));
    }
    let name = match &*call.func {
        Expr::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_else(|| "call".into()),
        _ => "lambda".to_string(),
    };
    let entry = format_ident!("delay{}", n);
    let func = &call.func;
    let args = call.args.iter();
    Ok(quote! {
        ::rdask::__private::#entry(#func, #name, #(#args,)* |__rdask_probe| {
            #[allow(unused_imports)]
            use ::rdask::__private::{ProbeClone as _, ProbeNoClone as _};
            (&&__rdask_probe).clone_fn()
        })
    })
}
