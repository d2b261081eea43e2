//! `#[derive(Tokenize)]`: user types as plain arguments of pure functions.
//! Equal values name one task; any difference that is hashed (a field, a
//! variant) names another; skipped fields do not count.

use rdask::prelude::*;
use std::marker::PhantomData;

#[derive(Clone, Debug, PartialEq, Tokenize)]
struct Params {
    alpha: f64,
    folds: u32,
    name: String,
    #[tokenize(skip)]
    note: String,
}

#[derive(Clone, rdask::Tokenize)]
struct Pair(i64, #[tokenize(skip)] u8, i64);

#[derive(Clone, Tokenize)]
struct Unit;

#[derive(Clone, Tokenize)]
enum Shape {
    Circle(u32),
    Square(u32),
    Rect {
        w: u32,
        h: u32,
    },
    Empty,
    Labelled {
        side: u32,
        #[tokenize(skip)]
        label: String,
    },
}

#[derive(Clone, Tokenize)]
struct Tagged<T, U> {
    value: T,
    rest: Vec<U>,
    #[tokenize(skip)]
    kind: PhantomData<fn() -> U>,
}

#[derive(Clone, Tokenize)]
enum Either<L, R> {
    Left(L),
    Right(R),
}

#[delayed(pure)]
fn fit(p: Params) -> f64 {
    p.alpha * f64::from(p.folds)
}

#[delayed(pure)]
fn pair_sum(p: Pair) -> i64 {
    p.0 + p.2
}

#[delayed(pure)]
fn pair_middle(p: Pair) -> u8 {
    p.1
}

#[delayed(pure)]
fn label(s: Shape) -> String {
    match s {
        Shape::Labelled { label, .. } => label,
        _ => String::new(),
    }
}

#[delayed(pure)]
fn unit(_u: Unit) -> i64 {
    1
}

#[delayed(pure)]
fn area(s: Shape) -> u32 {
    match s {
        Shape::Circle(r) => 3 * r * r,
        Shape::Square(a) => a * a,
        Shape::Rect { w, h } => w * h,
        Shape::Empty => 0,
        Shape::Labelled { side, .. } => side * side,
    }
}

#[delayed(pure)]
fn tagged_len(t: Tagged<i64, String>) -> usize {
    t.rest.len() + t.value as usize
}

#[delayed(pure)]
fn either(e: Either<i64, String>) -> String {
    match e {
        Either::Left(x) => x.to_string(),
        Either::Right(s) => s,
    }
}

fn params(alpha: f64, folds: u32, name: &str, note: &str) -> Params {
    Params {
        alpha,
        folds,
        name: name.into(),
        note: note.into(),
    }
}

#[test]
fn equal_structs_give_equal_keys() {
    let p = params(0.5, 4, "a", "x");
    assert_eq!(fit(p.clone()).key(), fit(p.clone()).key());
    assert_eq!(fit(&p).key(), fit(params(0.5, 4, "a", "x")).key());
    assert_eq!(pair_sum(Pair(1, 0, 2)).key(), pair_sum(Pair(1, 0, 2)).key());
    assert_eq!(unit(Unit).key(), unit(Unit).key());
}

#[test]
fn different_fields_give_different_keys() {
    let k = fit(params(0.5, 4, "a", "x")).key().clone();
    assert_ne!(k, *fit(params(0.25, 4, "a", "x")).key());
    assert_ne!(k, *fit(params(0.5, 5, "a", "x")).key());
    assert_ne!(k, *fit(params(0.5, 4, "b", "x")).key());
    // Tuple structs, field by field and in order.
    assert_ne!(pair_sum(Pair(1, 0, 2)).key(), pair_sum(Pair(2, 0, 1)).key());
    assert_ne!(pair_sum(Pair(1, 0, 2)).key(), pair_sum(Pair(1, 0, 3)).key());
}

#[test]
fn skipped_fields_do_not_change_the_key() {
    assert_eq!(
        fit(params(0.5, 4, "a", "x")).key(),
        fit(params(0.5, 4, "a", "another note")).key()
    );
    assert_eq!(pair_sum(Pair(1, 0, 2)).key(), pair_sum(Pair(1, 9, 2)).key());
    let labelled = |label: &str| Shape::Labelled {
        side: 2,
        label: label.into(),
    };
    assert_eq!(area(labelled("a")).key(), area(labelled("b")).key());
    // Left out of the key, not out of the value.
    assert_eq!(pair_middle(Pair(1, 9, 2)).compute().unwrap(), 9);
    assert_eq!(label(labelled("b")).compute().unwrap(), "b");
}

#[test]
fn enums_hash_the_variant_and_its_fields() {
    assert_eq!(area(Shape::Circle(2)).key(), area(Shape::Circle(2)).key());
    assert_eq!(
        area(Shape::Rect { w: 2, h: 3 }).key(),
        area(Shape::Rect { w: 2, h: 3 }).key()
    );
    assert_eq!(area(Shape::Empty).key(), area(Shape::Empty).key());
    // Another variant with equal fields is another value.
    assert_ne!(area(Shape::Circle(2)).key(), area(Shape::Square(2)).key());
    assert_ne!(
        area(Shape::Square(2)).key(),
        area(Shape::Labelled {
            side: 2,
            label: String::new()
        })
        .key()
    );
    // Same variant, other fields.
    assert_ne!(area(Shape::Circle(2)).key(), area(Shape::Circle(3)).key());
    assert_ne!(
        area(Shape::Rect { w: 2, h: 3 }).key(),
        area(Shape::Rect { w: 3, h: 2 }).key()
    );
    assert_ne!(area(Shape::Empty).key(), area(Shape::Circle(0)).key());
}

#[test]
fn generic_types_get_tokenize_bounds() {
    let t = |value: i64, rest: &[&str]| Tagged::<i64, String> {
        value,
        rest: rest.iter().map(|s| s.to_string()).collect(),
        kind: PhantomData,
    };
    assert_eq!(
        tagged_len(t(1, &["a"])).key(),
        tagged_len(t(1, &["a"])).key()
    );
    assert_ne!(
        tagged_len(t(1, &["a"])).key(),
        tagged_len(t(2, &["a"])).key()
    );
    assert_ne!(
        tagged_len(t(1, &["a"])).key(),
        tagged_len(t(1, &["b"])).key()
    );
    assert_eq!(either(Either::Left(1)).key(), either(Either::Left(1)).key());
    assert_ne!(
        either(Either::Left(1)).key(),
        either(Either::Right("1".into())).key()
    );
}

#[test]
fn equal_pure_calls_run_once() {
    let a = area(Shape::Rect { w: 2, h: 3 });
    let b = area(Shape::Rect { w: 2, h: 3 });
    let c = area(Shape::Square(3));
    let total = delay!(u32::wrapping_add(&a, &b));
    assert_eq!(compute!(total, c).unwrap(), (12, 9));
    assert_eq!(a.key(), b.key());
    assert_eq!(fit(params(0.5, 4, "a", "x")).compute().unwrap(), 2.0);
    assert_eq!(
        tagged_len(Tagged {
            value: 1,
            rest: vec!["a".into()],
            kind: PhantomData,
        })
        .compute()
        .unwrap(),
        2
    );
    assert_eq!(either(Either::Right("r".into())).compute().unwrap(), "r");
}

/// The derive and the trait are one name: `use rdask::Tokenize` brings both.
mod one_import {
    use rdask::Tokenize;
    use std::hash::{DefaultHasher, Hasher};

    #[derive(Tokenize)]
    struct Point {
        x: i32,
        y: i32,
    }

    fn hash(t: &impl Tokenize) -> u64 {
        let mut h = DefaultHasher::new();
        t.tokenize(&mut h);
        h.finish()
    }

    #[test]
    fn derive_and_trait_come_together() {
        assert_eq!(hash(&Point { x: 1, y: 2 }), hash(&Point { x: 1, y: 2 }));
        assert_ne!(hash(&Point { x: 1, y: 2 }), hash(&Point { x: 2, y: 1 }));
        // Fields in declaration order, as a tuple would hash them.
        assert_eq!(hash(&Point { x: 1, y: 2 }), hash(&(1_i32, 2_i32)));
    }
}
