//! A `#[delayed]` body sees the names it would see without the attribute:
//! what the macro adds does not shadow the user's items.
#![deny(warnings)]
#![allow(non_upper_case_globals)]
use rdask::prelude::*;

static __RDASK_PATH: &str = "mine";
const __RDASK_INFO: i32 = 40;

fn __rdask_run(x: i32) -> i32 {
    x * 10
}

#[delayed]
fn uses_items(x: i32) -> String {
    format!("{}{}", __RDASK_PATH, __rdask_run(x) + __RDASK_INFO)
}

#[deprecated(note = "callers are told, the generated code is not")]
#[delayed]
fn old(x: i32) -> i32 {
    x
}

#[allow(deprecated)]
fn main() {
    assert_eq!(uses_items(2).compute().unwrap(), "mine60");
    assert_eq!(old(3).compute().unwrap(), 3);
}
