use rdask::prelude::*;

#[delayed]
fn load(path: String) -> Vec<f64> {
    vec![path.len() as f64, 1.0, 2.0]
}
#[delayed]
fn clean(data: Vec<f64>) -> Vec<f64> {
    data.into_iter().map(|x| x * 2.0).collect()
}
#[delayed]
fn analyze(parts: Vec<Vec<f64>>) -> f64 {
    parts.iter().flatten().sum()
}
#[delayed]
fn mean_of(data: &Vec<f64>) -> f64 {
    data.iter().sum::<f64>() / data.len() as f64
}
#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}
#[delayed(pure, name = "padd")]
fn padd(a: i64, b: f64) -> f64 {
    a as f64 + b
}
#[delayed]
fn parse(s: &str) -> Result<i64, std::num::ParseIntError> {
    s.parse()
}
#[delayed]
fn pair(x: i64) -> (i64, String) {
    (x, x.to_string())
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}
fn sum(v: Vec<i64>) -> i64 {
    v.iter().sum()
}

#[test]
fn smoke() {
    let loads: Vec<Delayed<Vec<f64>>> = ["a", "b", "c"]
        .iter()
        .map(|p| load(p.to_string()))
        .collect();
    let cleaned: Vec<_> = loads.iter().map(clean).collect();
    let total: Delayed<f64> = analyze(cleaned);
    let m = mean_of(&loads[0]);
    let (t, mm) = compute!(total, m).unwrap();
    assert_eq!(t, 24.0);
    assert!((mm - 4.0 / 3.0).abs() < 1e-9);
    assert_eq!(inc(1).compute().unwrap(), 2);
    let a = padd(1, 2.5);
    let b = padd(1, 2.5);
    assert_eq!(a.key(), b.key());
    assert_eq!(parse("12").compute().unwrap(), 12);
    let e = parse("x").compute().unwrap_err();
    assert_eq!(e.kind(), rdask::ErrorKind::Task);
    assert!(std::error::Error::source(&e).is_some());
    let d = delay!(add(1, inc(2)));
    assert_eq!(d.compute().unwrap(), 4);
    let x = inc(1);
    let y = 10 - &x + (&x * 2);
    assert_eq!(y.compute_with(&Scheduler::Sync).unwrap(), 12);
    let (p0, p1) = pair(5).split();
    assert_eq!(compute!(p0, p1).unwrap(), (5, "5".to_string()));
    let dsk = graph! {
        "a" => 1_i64,
        "b" => 2_i64,
        "c" => (add, "a", "b"),
        "d" => (sum, ["a", "b", "c"]),
    };
    assert_eq!(rdask::get::<i64>(&dsk, "c").unwrap(), 3);
    assert_eq!(rdask::get::<i64>(&dsk, "d").unwrap(), 6);
    assert_eq!(
        rdask::get_many::<i64>(&dsk, &["a", "b", "c"]).unwrap(),
        vec![1, 2, 3]
    );
    let v = rdask::compute_with(&[inc(1), inc(2)], &Scheduler::threads(2)).unwrap();
    assert_eq!(v, vec![2, 3]);
}
