//! Arguments that nest `Delayed`s in the parameter's shape (dask's
//! `traverse`): tuples, `Option`, `Vec<Vec<_>>` and `HashMap`, each
//! computed on every scheduler.

use rdask::prelude::*;
use rdask::ErrorKind;
use std::collections::HashMap;

fn schedulers() -> Vec<Scheduler> {
    vec![Scheduler::Sync, Scheduler::threads(2)]
}

#[delayed]
fn num(x: i64) -> i64 {
    x
}

#[delayed]
fn text(s: &str) -> String {
    s.to_string()
}

#[delayed]
fn pair(p: (i64, String)) -> String {
    format!("{}:{}", p.0, p.1)
}

#[delayed]
fn borrowed_pair(p: &(i64, String)) -> String {
    format!("{}:{}", p.0, p.1)
}

#[delayed]
fn triple(p: (i64, i64, String)) -> String {
    format!("{}+{}={}", p.0, p.1, p.2)
}

#[delayed]
fn quad(p: (i64, i64, i64, i64)) -> i64 {
    p.0 * 1000 + p.1 * 100 + p.2 * 10 + p.3
}

#[delayed]
fn or_zero(x: Option<i64>) -> i64 {
    x.unwrap_or(0)
}

#[delayed]
fn grid(rows: Vec<Vec<i64>>) -> Vec<i64> {
    rows.iter().map(|r| r.iter().sum()).collect()
}

#[delayed]
fn summary(m: HashMap<String, i64>) -> Vec<(String, i64)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v
}

#[delayed(pure)]
fn pure_pair(p: (i64, i64)) -> i64 {
    p.0 - p.1
}

#[delayed]
fn check(x: i64) -> Result<i64, String> {
    if x < 0 {
        Err(format!("negative {x}"))
    } else {
        Ok(x)
    }
}

/// Not `Clone`: it can only be moved into its one consumer.
struct Token(i64);

#[delayed]
fn token(x: i64) -> Token {
    Token(x)
}

#[delayed]
fn join_tokens(p: (Token, Token)) -> i64 {
    p.0 .0 * 10 + p.1 .0
}

#[test]
fn tuples_of_delayeds() {
    for s in schedulers() {
        assert_eq!(pair((num(1), text("a"))).compute_with(&s).unwrap(), "1:a");
        assert_eq!(
            borrowed_pair((num(2), text("b"))).compute_with(&s).unwrap(),
            "2:b"
        );
        assert_eq!(
            triple((num(1), num(2), text("3")))
                .compute_with(&s)
                .unwrap(),
            "1+2=3"
        );
        assert_eq!(
            quad((num(1), num(2), num(3), num(4)))
                .compute_with(&s)
                .unwrap(),
            1234
        );
    }
}

#[test]
fn tuples_mixing_plain_values_and_delayeds() {
    for s in schedulers() {
        assert_eq!(
            pair((num(7), "x".to_string())).compute_with(&s).unwrap(),
            "7:x"
        );
        assert_eq!(pair((8, text("y"))).compute_with(&s).unwrap(), "8:y");
        assert_eq!(
            triple((1, num(2), "3".to_string()))
                .compute_with(&s)
                .unwrap(),
            "1+2=3"
        );
        assert_eq!(quad((num(1), 2, num(3), 4)).compute_with(&s).unwrap(), 1234);
        // A plain part is a constant: the graph runs again the same.
        let d = quad((5, 6, 7, num(8)));
        assert_eq!(d.compute_with(&s).unwrap(), 5678);
        assert_eq!(d.compute_with(&s).unwrap(), 5678);
    }
}

#[test]
fn a_shared_input_inside_a_tuple() {
    for s in schedulers() {
        let x = num(3);
        let both = quad((x.clone(), x.clone(), num(0), x));
        assert_eq!(both.compute_with(&s).unwrap(), 3303);
    }
}

#[test]
fn values_move_into_the_tuple() {
    for s in schedulers() {
        let d = join_tokens((token(4), token(2)));
        assert_eq!(d.compute_with(&s).unwrap(), 42);
    }
}

#[test]
fn options_of_delayeds() {
    for s in schedulers() {
        assert_eq!(or_zero(Some(num(5))).compute_with(&s).unwrap(), 5);
        assert_eq!(or_zero(None::<Delayed<i64>>).compute_with(&s).unwrap(), 0);
    }
}

#[test]
fn nested_vecs_of_delayeds() {
    for s in schedulers() {
        let rows = vec![vec![num(1), num(2)], vec![], vec![num(3), num(4), num(5)]];
        assert_eq!(grid(rows).compute_with(&s).unwrap(), vec![3, 0, 12]);
        assert_eq!(
            grid(Vec::<Vec<Delayed<i64>>>::new())
                .compute_with(&s)
                .unwrap(),
            Vec::<i64>::new()
        );
    }
}

#[test]
fn maps_of_delayeds() {
    for s in schedulers() {
        let m: HashMap<String, Delayed<i64>> =
            (0..5).map(|i| (format!("k{i}"), num(i * i))).collect();
        let got = summary(m).compute_with(&s).unwrap();
        let want: Vec<(String, i64)> = (0..5).map(|i| (format!("k{i}"), i * i)).collect();
        assert_eq!(got, want);
        assert_eq!(
            summary(HashMap::<String, Delayed<i64>>::new())
                .compute_with(&s)
                .unwrap(),
            vec![]
        );
    }
}

#[test]
fn pure_calls_with_a_tuple_of_delayeds() {
    let (a, b) = (num(9), num(4));
    let key = |d: Delayed<i64>| d.key().clone();
    let k1 = key(pure_pair((a.clone(), b.clone())));
    assert_eq!(k1, key(pure_pair((a.clone(), b.clone()))));
    assert_ne!(k1, key(pure_pair((b.clone(), a.clone()))));
    // A plain part hashes by content.
    let k4 = key(pure_pair((a.clone(), 4)));
    assert_eq!(k4, key(pure_pair((a.clone(), 4))));
    assert_ne!(k4, key(pure_pair((a.clone(), 5))));
    for s in schedulers() {
        assert_eq!(
            pure_pair((a.clone(), b.clone())).compute_with(&s).unwrap(),
            5
        );
        assert_eq!(pure_pair((a.clone(), 1)).compute_with(&s).unwrap(), 8);
    }
}

#[test]
fn a_failing_part_fails_the_consumer_with_its_key() {
    for s in schedulers() {
        let bad = check(-1);
        let key = bad.key().clone();
        let e = pair((bad, text("a"))).compute_with(&s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task, "{s}");
        assert_eq!(e.key(), Some(&key), "{s}");

        let bad = check(-2);
        let key = bad.key().clone();
        let e = or_zero(Some(bad)).compute_with(&s).unwrap_err();
        assert_eq!(e.key(), Some(&key), "{s}");

        let bad = check(-3);
        let key = bad.key().clone();
        let e = grid(vec![vec![check(1)], vec![check(2), bad]])
            .compute_with(&s)
            .unwrap_err();
        assert_eq!(e.key(), Some(&key), "{s}");

        let bad = check(-4);
        let key = bad.key().clone();
        let m: HashMap<i32, Delayed<i64>> = [(1, check(1)), (2, bad)].into_iter().collect();
        let e = keys_sum(m).compute_with(&s).unwrap_err();
        assert_eq!(e.key(), Some(&key), "{s}");
    }
}

#[delayed]
fn keys_sum(m: HashMap<i32, i64>) -> i64 {
    m.iter().map(|(k, v)| i64::from(*k) + v).sum()
}

#[test]
fn maps_with_non_string_keys() {
    for s in schedulers() {
        let m: HashMap<i32, Delayed<i64>> = [(1, num(10)), (2, num(20))].into_iter().collect();
        assert_eq!(keys_sum(m).compute_with(&s).unwrap(), 33);
    }
}
