//! `#[delayed]`: parse and check ([`parse`]), then write code ([`expand`]).

mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::ToTokens;

pub fn delayed(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            // Not a function (or not one syn can read): say so and keep the
            // item so that other errors and IDEs still see it.
            let msg = syn::Error::new(e.span(), format!("#[delayed] goes on a free function: {e}"));
            let mut out = msg.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    let checked = syn::parse2::<parse::Options>(attr)
        .and_then(|opts| parse::DelayedFn::check(opts, func.clone()));
    match checked {
        Ok(f) => expand::expand(f),
        Err(e) => {
            // The original function is re-emitted beside the error, so its
            // body is still type-checked and IDEs keep working.
            let mut out = e.to_compile_error();
            out.extend(func.into_token_stream());
            out
        }
    }
}
