use rdask::prelude::*;

#[delayed]
fn parse(s: &str) -> Result<i32, Box<dyn std::error::Error>> {
    Ok(s.parse()?)
}

fn main() {
    let _ = parse("1");
}
