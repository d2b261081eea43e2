use rdask::prelude::*;

#[delayed]
async fn fetch(url: String) -> usize {
    url.len()
}

fn main() {
    let _ = fetch("https://example.com".to_string());
}
