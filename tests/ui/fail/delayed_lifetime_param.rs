use rdask::prelude::*;
use std::borrow::Cow;

#[delayed]
fn size<'a>(s: Cow<'a, str>) -> usize {
    s.len()
}

struct View<'a>(&'a [u8]);

#[delayed]
fn view(bytes: &Vec<u8>) -> View<'_> {
    View(bytes)
}

fn main() {
    let _ = size(Cow::Borrowed("abc"));
    let _ = view(&vec![1]);
}
