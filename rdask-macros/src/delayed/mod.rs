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
    // Mistakes in the options alone still leave a function to expand (with
    // the options that were understood): its callers then see no follow-on
    // errors from a signature they did not expect.
    let (opts, opts_error) = parse::Options::parse(attr);
    match parse::DelayedFn::check(opts, func.clone()) {
        Ok(f) => {
            let mut out = opts_error.map(|e| e.to_compile_error()).unwrap_or_default();
            out.extend(expand::expand(f));
            out
        }
        Err(e) => {
            // The original function is re-emitted beside the error, so its
            // body is still type-checked, its callers find it, and IDEs keep
            // working.
            let e = parse::combine(opts_error.into_iter().chain([e])).expect("an error");
            let mut out = e.to_compile_error();
            out.extend(func.into_token_stream());
            out
        }
    }
}
