//! Building lazy graphs: `#[delayed]` argument forms, borrowed parameters,
//! `value`, `map`, operators, `split`, keys (prefixes, names, purity),
//! `graph()`, `to_dot()` and `persist()`. Every computation runs on each
//! scheduler.

use rdask::prelude::*;
use rdask::Key;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn schedulers() -> Vec<Scheduler> {
    vec![
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::threads(0),
    ]
}

/// A value that counts how often it is cloned (per instance family, so tests
/// running in parallel do not see each other's clones).
struct Counted {
    v: i64,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            v: self.v,
            clones: self.clones.clone(),
        }
    }
}

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[delayed]
fn add_ref(a: &i64, b: &i64) -> i64 {
    a + b
}

#[delayed]
fn total(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[delayed]
fn total_ref(xs: &Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[delayed]
fn total_slice(xs: &[i64]) -> i64 {
    xs.iter().sum()
}

#[delayed]
fn half(x: f64) -> f64 {
    x / 2.0
}

#[delayed]
fn widen(x: f32, y: u8, z: usize) -> f64 {
    f64::from(x) + f64::from(y) + z as f64
}

#[delayed]
fn shout(s: &str) -> String {
    s.to_uppercase()
}

#[delayed]
fn forty_two() -> i64 {
    42
}

#[delayed]
fn make_counted(v: i64, clones: Arc<AtomicUsize>) -> Counted {
    Counted { v, clones }
}

#[delayed]
fn peek(c: &Counted) -> i64 {
    c.v
}

#[delayed]
fn peek_both(a: &Counted, b: &Counted) -> i64 {
    a.v * 10 + b.v
}

#[delayed]
fn six(x: i64) -> (i64, String, f64, bool, Vec<i64>, char) {
    (
        x,
        x.to_string(),
        x as f64 / 2.0,
        x % 2 == 0,
        vec![x; 2],
        'z',
    )
}

#[delayed]
fn two(x: i64) -> (i64, String) {
    (x, format!("#{x}"))
}

#[delayed]
fn three(x: i64) -> (i64, i64, i64) {
    (x, x + 1, x + 2)
}

#[delayed]
fn four(x: i64) -> (u8, i64, i64, String) {
    (1, x, -x, "four".into())
}

#[delayed]
fn five(x: i64) -> (i64, i64, i64, i64, i64) {
    (x, 2 * x, 3 * x, 4 * x, 5 * x)
}

#[delayed(name = "loader")]
fn load_named(x: i64) -> i64 {
    x
}

#[delayed(pure)]
fn pure_add(a: i64, b: i64) -> i64 {
    a + b
}

#[delayed(pure)]
fn pure_add_other(a: i64, b: i64) -> i64 {
    a + b
}

#[delayed(pure)]
fn pure_f(x: f64) -> f64 {
    x * 3.0
}

#[delayed(pure)]
fn pure_str(s: &str, n: i64) -> String {
    format!("{s}{n}")
}

#[delayed(pure)]
fn pure_sum(xs: Vec<i64>) -> i64 {
    xs.iter().sum()
}

#[delayed(pure, name = "fit")]
fn pure_named(x: i64) -> i64 {
    x * 2
}

static PURE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[delayed(pure)]
fn pure_counted(x: i64) -> i64 {
    PURE_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 7
}

static PERSIST_CALLS: AtomicUsize = AtomicUsize::new(0);

#[delayed]
fn expensive(x: i64) -> i64 {
    PERSIST_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 100
}

#[test]
// The `&plain` forms are what is under test.
#[allow(clippy::needless_borrows_for_generic_args)]
fn argument_forms_of_a_by_value_parameter() {
    for s in schedulers() {
        let d = inc(1);
        let plain = 5_i64;
        let results = rdask::compute_with(
            &[
                inc(10),                 // literal
                inc(plain),              // plain P
                inc(&plain),             // plain &P (copied into the graph)
                inc(d.clone()),          // Delayed<P>
                inc(&d),                 // &Delayed<P>
                add(&d, 100),            // mixed
                add(rdask::value(7), d), // value(x)
            ],
            &s,
        )
        .unwrap();
        assert_eq!(results, vec![11, 6, 6, 3, 3, 102, 9], "{s}");
    }
}

#[test]
fn argument_forms_of_a_vec_parameter() {
    for s in schedulers() {
        let xs: Vec<Delayed<i64>> = (1..=4).map(inc).collect(); // 2 3 4 5 = 14
        let outs = [
            total(xs.clone()),               // Vec<Delayed<X>>
            total(&xs[..]),                  // &[Delayed<X>]
            total(&xs),                      // &Vec<Delayed<X>>
            total(vec![1, 2, 3]),            // plain Vec<X>
            total(rdask::value(vec![4, 5])), // Delayed<Vec<X>>
            total([xs[0].clone(), xs[3].clone()]),
            total(Vec::<Delayed<i64>>::new()),
            total_ref(&xs),   // &Vec<X> parameter fed by a list of Delayed
            total_slice(&xs), // &[X] parameter
            total_slice(vec![10, 20]),
        ];
        let got = rdask::compute_with(&outs, &s).unwrap();
        assert_eq!(got, vec![14, 14, 14, 6, 9, 7, 0, 14, 14, 30], "{s}");
    }
}

#[test]
fn literal_numbers_and_str_parameters() {
    for s in schedulers() {
        let (h, w) =
            rdask::with_scheduler(s.clone(), || compute!(half(3.0), widen(1.5, 2, 3))).unwrap();
        assert_eq!((h, w), (1.5, 6.5), "{s}");
        let owned = String::from("abc");
        let ds = rdask::value(String::from("xyz"));
        let got = rdask::compute_with(
            &[
                shout("lit"),
                shout(owned.clone()),
                shout(&owned),
                shout(&ds),
                shout(ds.clone()),
            ],
            &s,
        )
        .unwrap();
        assert_eq!(got, ["LIT", "ABC", "ABC", "XYZ", "XYZ"], "{s}");
        assert_eq!(forty_two().compute_with(&s).unwrap(), 42);
    }
}

#[test]
fn borrowed_parameters_get_a_reference_not_a_clone() {
    for s in schedulers() {
        let clones = Arc::new(AtomicUsize::new(0));
        // From a task: two borrowers and an output that is itself a borrow.
        let c = make_counted(4, clones.clone());
        let (a, b, both) = rdask::with_scheduler(s.clone(), || {
            compute!(peek(&c), peek(c.clone()), peek_both(&c, &c))
        })
        .unwrap();
        assert_eq!((a, b, both), (4, 4, 44), "{s}");
        assert_eq!(
            clones.load(Ordering::SeqCst),
            0,
            "{s}: a task's value was cloned"
        );

        // From `value(x)`: a graph constant handed out by reference.
        let v = rdask::value(Counted {
            v: 9,
            clones: clones.clone(),
        });
        assert_eq!(peek(&v).compute_with(&s).unwrap(), 9);
        assert_eq!(peek_both(&v, v.clone()).compute_with(&s).unwrap(), 99);
        assert_eq!(clones.load(Ordering::SeqCst), 0, "{s}: value() was cloned");

        // A plain argument moved in is never cloned; `&P` is copied once,
        // when the graph is built, never when it runs.
        let plain = Counted {
            v: 3,
            clones: clones.clone(),
        };
        let d = peek(plain);
        assert_eq!(clones.load(Ordering::SeqCst), 0);
        assert_eq!(d.compute_with(&s).unwrap(), 3);
        assert_eq!(d.compute_with(&s).unwrap(), 3);
        assert_eq!(clones.load(Ordering::SeqCst), 0, "{s}: constant was cloned");
        let plain = Counted {
            v: 5,
            clones: clones.clone(),
        };
        let d = peek(&plain);
        assert_eq!(clones.load(Ordering::SeqCst), 1);
        assert_eq!(d.compute_with(&s).unwrap(), 5);
        assert_eq!(clones.load(Ordering::SeqCst), 1, "{s}");
    }
}

#[test]
// The `&plain` forms are what is under test.
#[allow(clippy::needless_borrows_for_generic_args)]
fn borrowed_parameters_accept_every_form() {
    for s in schedulers() {
        let d = inc(1); // 2
        let plain = 10_i64;
        let got = rdask::compute_with(
            &[
                add_ref(1, 2),
                add_ref(&plain, plain),
                add_ref(&d, d.clone()),
                add_ref(&d, rdask::value(5)),
            ],
            &s,
        )
        .unwrap();
        assert_eq!(got, vec![3, 20, 4, 7], "{s}");
    }
}

#[test]
fn value_and_map() {
    for s in schedulers() {
        let v = rdask::value(vec![1_i64, 2, 3]);
        let len = v.map(|xs: Vec<i64>| xs.len());
        let text = v
            .map(|xs: Vec<i64>| xs.iter().sum::<i64>())
            .map(|n: i64| format!("sum={n}"));
        let (l, t, orig) = rdask::with_scheduler(s.clone(), || compute!(len, text, v)).unwrap();
        assert_eq!((l, t.as_str(), orig), (3, "sum=6", vec![1, 2, 3]), "{s}");
        // `map` of a task's result, and a value computed twice.
        let m = inc(4).map(|x: i64| x * x);
        assert_eq!(m.compute_with(&s).unwrap(), 25);
        assert_eq!(m.compute_with(&s).unwrap(), 25);
        // A map closure that captures state.
        let offset = 1000;
        assert_eq!(
            m.map(move |x: i64| x + offset).compute_with(&s).unwrap(),
            1025
        );
    }
}

#[test]
fn arithmetic_operators_owned_and_borrowed() {
    for s in schedulers() {
        let a = rdask::value(17_i64);
        let b = inc(4); // 5
        let outs = vec![
            &a + &b, // 22
            &a - &b, // 12
            &a * &b, // 85
            &a / &b, // 3
            &a % &b, // 2
            -&a,     // -17
            a.clone() + b.clone(),
            a.clone() - &b,
            &a * b.clone(),
            -a.clone(),
            &a + 3, // scalar on the right
            3 - &a, // scalar on the left
            a.clone() * 2,
            100 / a.clone(),
            &a % 4,
            40 % &a,
        ];
        let got = rdask::compute_with(&outs, &s).unwrap();
        assert_eq!(
            got,
            vec![22, 12, 85, 3, 2, -17, 22, 12, 85, -17, 20, -14, 34, 5, 1, 6],
            "{s}"
        );
    }
}

#[test]
fn float_operators() {
    for s in schedulers() {
        let x = half(5.0); // 2.5
        let outs = vec![&x + 0.5, 10.0 - &x, &x * &x, 1.0 / &x, -&x, &x % 1.0];
        let got = rdask::compute_with(&outs, &s).unwrap();
        assert_eq!(got, vec![3.0, 7.5, 6.25, 0.4, -2.5, 0.5], "{s}");
    }
}

#[test]
fn bit_and_logic_operators() {
    for s in schedulers() {
        let a = rdask::value(0b1100_u32);
        let b = rdask::value(0b1010_u32);
        let outs = vec![
            &a & &b,
            &a | &b,
            &a ^ &b,
            !&a,
            a.clone() & 0b0100,
            0b0001 | b.clone(),
            &a ^ 0xff,
            &a << 2,
            &a >> 2_u32,
            1_u32 << &a,
        ];
        let got = rdask::compute_with(&outs, &s).unwrap();
        assert_eq!(
            got,
            vec![
                0b1000,
                0b1110,
                0b0110,
                !0b1100,
                0b0100,
                0b1011,
                0xff ^ 0b1100,
                0b11_0000,
                0b11,
                1 << 12
            ],
            "{s}"
        );
        let t = rdask::value(true);
        let f = rdask::value(false);
        let bools = vec![
            !&t,
            &t & &f,
            &t | &f,
            &t ^ true,
            false | f.clone(),
            !f.clone(),
        ];
        let got = rdask::compute_with(&bools, &s).unwrap();
        assert_eq!(got, vec![false, false, true, false, false, true], "{s}");
    }
}

#[test]
fn operators_build_one_task_each_and_share_operands() {
    let a = inc(1);
    let sum = &a + &a; // one `inc`, used twice
    let g = sum.graph();
    assert_eq!(g.len(), 2, "{g:?}"); // inc (its literal is inline) and add
    for s in schedulers() {
        assert_eq!(sum.compute_with(&s).unwrap(), 4, "{s}");
    }
}

#[test]
fn split_tuples_of_two_to_six() {
    for s in schedulers() {
        let (a, b) = two(3).split();
        assert_eq!(
            rdask::with_scheduler(s.clone(), || compute!(a, b)).unwrap(),
            (3, "#3".to_string())
        );
        let (a, b, c) = three(1).split();
        assert_eq!(rdask::compute_with(&[a, b, c], &s).unwrap(), vec![1, 2, 3]);
        let (a, b, c, d) = four(2).split();
        assert_eq!(
            rdask::with_scheduler(s.clone(), || compute!(a, b, c, d)).unwrap(),
            (1, 2, -2, "four".to_string()),
            "{s}"
        );
        let (a, b, c, d, e) = five(2).split();
        assert_eq!(
            rdask::compute_with(&[a, b, c, d, e], &s).unwrap(),
            vec![2, 4, 6, 8, 10]
        );
        let (a, b, c, d, e, f) = six(4).split();
        // Each part on its own, and all together.
        assert_eq!(e.compute_with(&s).unwrap(), vec![4, 4]);
        let all = rdask::with_scheduler(s.clone(), || compute!(a, b, c, d, e, f)).unwrap();
        assert_eq!(all, (4, "4".to_string(), 2.0, true, vec![4, 4], 'z'), "{s}");
        // Parts feed further tasks.
        let (x, y, z) = three(10).split();
        assert_eq!(total(vec![x, y, z]).compute_with(&s).unwrap(), 33, "{s}");
    }
}

#[test]
fn keys_have_the_function_name_as_prefix() {
    let a = inc(1);
    let b = inc(1);
    assert_eq!(a.key().prefix(), "inc");
    assert!(a.key().to_string().starts_with("inc-"), "{}", a.key());
    assert_ne!(a.key(), b.key(), "non-pure calls must get distinct keys");
    let n = load_named(1);
    assert_eq!(n.key().prefix(), "loader");
    assert!(n.key().to_string().starts_with("loader-"), "{}", n.key());
    let p = pure_named(1);
    assert_eq!(p.key().prefix(), "fit");
    assert!(p.key().to_string().starts_with("fit-"), "{}", p.key());
    assert_eq!(p.key(), pure_named(1).key());
    // Keys are cheap handles that compare and hash by content.
    let set: HashSet<Key> = [a.key().clone(), a.key().clone(), b.key().clone()].into();
    assert_eq!(set.len(), 2);
    assert_eq!(Key::from(a.key().to_string()), *a.key());
}

#[test]
fn pure_keys_depend_on_arguments_only() {
    assert_eq!(pure_add(1, 2).key(), pure_add(1, 2).key());
    assert_ne!(pure_add(1, 2).key(), pure_add(2, 1).key());
    assert_ne!(pure_add(1, 2).key(), pure_add(1, 3).key());
    // The function is part of the key.
    assert_ne!(pure_add(1, 2).key(), pure_add_other(1, 2).key());
    // Floats, by value.
    assert_eq!(pure_f(1.5).key(), pure_f(1.5).key());
    assert_ne!(pure_f(1.5).key(), pure_f(2.5).key());
    assert_ne!(pure_f(0.1 + 0.2).key(), pure_f(0.3).key());
    assert_eq!(pure_f(f64::NAN).key(), pure_f(f64::NAN).key());
    // Strings, in every form.
    let s = String::from("ab");
    assert_eq!(pure_str("ab", 1).key(), pure_str(s.clone(), 1).key());
    assert_eq!(pure_str("ab", 1).key(), pure_str(&s, 1).key());
    assert_ne!(pure_str("ab", 1).key(), pure_str("ba", 1).key());
    assert_ne!(pure_str("a", 1).key(), pure_str("ab", 1).key());
    // Delayed arguments, by key.
    let x = inc(1);
    let y = inc(1);
    assert_eq!(pure_add(&x, 1).key(), pure_add(x.clone(), 1).key());
    assert_ne!(pure_add(&x, 1).key(), pure_add(&y, 1).key());
    let p = pure_add(1, 1);
    assert_eq!(pure_add(&p, 1).key(), pure_add(pure_add(1, 1), 1).key());
    // Lists.
    assert_eq!(
        pure_sum(vec![x.clone(), y.clone()]).key(),
        pure_sum(&[x.clone(), y.clone()][..]).key()
    );
    assert_ne!(
        pure_sum(vec![x.clone(), y.clone()]).key(),
        pure_sum(vec![y.clone(), x.clone()]).key()
    );
    assert_eq!(pure_sum(vec![1, 2]).key(), pure_sum(vec![1, 2]).key());
    assert_ne!(pure_sum(vec![1, 2]).key(), pure_sum(vec![1, 2, 0]).key());
    assert_eq!(pure_add(1, 2).key().prefix(), "pure_add");
}

#[delayed(pure)]
fn pure_ident<T: Clone + Send + Sync + 'static>(x: T) -> T {
    x
}

#[delayed(pure)]
fn pure_type_of<T: Send + Sync + 'static>(_x: T) -> String {
    std::any::type_name::<T>().to_string()
}

#[delayed(pure)]
fn pure_nth<const N: usize>(x: u8) -> usize {
    N + usize::from(x)
}

/// Instances of a generic pure function are different functions, even on
/// arguments of the same bytes; calls of one instance still dedupe.
#[test]
fn pure_keys_of_generic_functions_name_the_instance() {
    assert_ne!(pure_ident(1_u32).key(), pure_ident(1_i32).key());
    assert_ne!(pure_ident(1.0_f32).key(), pure_ident(0x3f80_0000_u32).key());
    assert_ne!(
        pure_ident("ab".to_string()).key(),
        pure_ident(vec![b'a', b'b']).key()
    );
    assert_eq!(pure_ident(1_u32).key(), pure_ident(1_u32).key());
    assert_ne!(pure_nth::<1>(0).key(), pure_nth::<2>(0).key());
    let (a, b) = compute!(pure_type_of(true), pure_type_of(1_u8)).unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("bool", "u8"));
    let (x, y) = compute!(pure_ident(1_u32), pure_ident(1_i32)).unwrap();
    assert_eq!((x, y), (1_u32, 1_i32));
    assert_eq!(
        compute!(pure_nth::<1>(1), pure_nth::<5>(1)).unwrap(),
        (2, 6)
    );
}

#[test]
fn equal_pure_calls_are_one_task() {
    for s in schedulers() {
        // An argument unique to this scheduler, so the count is ours.
        let arg = 1_000 + PURE_CALLS.load(Ordering::SeqCst) as i64;
        let before = PURE_CALLS.load(Ordering::SeqCst);
        let a = pure_counted(arg);
        let b = pure_counted(arg);
        let c = pure_counted(arg + 1);
        let (x, y, z) = rdask::with_scheduler(s.clone(), || compute!(a, b, c)).unwrap();
        assert_eq!((x, y, z), (7 * arg, 7 * arg, 7 * (arg + 1)));
        assert_eq!(
            PURE_CALLS.load(Ordering::SeqCst) - before,
            2,
            "{s}: two equal pure calls ran twice"
        );
        // Merged into one graph node.
        let both = pure_add(pure_counted(arg), pure_counted(arg));
        assert_eq!(both.graph().len(), 2, "{:?}", both.graph());
    }
}

#[test]
fn graph_contains_every_reachable_key() {
    let v = rdask::value(3_i64);
    let a = inc(&v);
    let b = add(&a, rdask::value(4));
    let c = total(vec![a.clone(), b.clone(), inc(0)]);
    let m = c.map(|x: i64| x * 2);
    let (p, q) = two(&m).split();
    let out = add(p, q.map(|s: String| s.len() as i64));
    let g = out.graph();
    for k in [v.key(), a.key(), b.key(), c.key(), m.key(), out.key()] {
        assert!(g.contains(k.clone()), "graph lacks {k}: {g:?}");
    }
    // value(4) and inc(0) have no handle here: find them by prefix.
    let values = g.keys().filter(|k| k.prefix() == "value").count();
    assert_eq!(values, 2, "{g:?}");
    assert_eq!(g.keys().filter(|k| k.prefix() == "inc").count(), 2);
    let keys: HashSet<String> = g.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys.len(), g.len(), "duplicate keys");
    // Only what `b` needs.
    let gb = b.graph();
    assert_eq!(gb.len(), 4, "{gb:?}"); // value(3), inc, value(4), add
    assert!(!gb.contains(c.key().clone()));
    // The graph computes by key, to the same result.
    for s in schedulers() {
        let expected = out.compute_with(&s).unwrap();
        let got = rdask::get_with::<i64>(&g, out.key().clone(), &s).unwrap();
        assert_eq!(got, expected, "{s}");
    }
    // dependencies follow the edges.
    assert_eq!(g.dependencies(a.key().clone()), vec![v.key().clone()]);
}

#[test]
fn to_dot_mentions_every_key() {
    let a = inc(1);
    let b = add(&a, rdask::value(2));
    let dot = b.to_dot();
    assert!(dot.starts_with("digraph"), "{dot}");
    for k in b.graph().keys() {
        assert!(dot.contains(&k.to_string()), "{k} missing from {dot}");
    }
    assert!(dot.contains("->"), "{dot}");
    assert!(dot.contains("inc"), "{dot}");
}

#[test]
fn persist_keeps_the_key_and_does_not_recompute() {
    // `expensive` is called by this test only, one scheduler at a time.
    for s in schedulers() {
        let calls = || PERSIST_CALLS.load(Ordering::SeqCst);
        let d = expensive(3);
        let before = calls();
        let p = rdask::with_scheduler(s.clone(), || d.persist()).unwrap();
        assert_eq!(calls(), before + 1, "{s}: persist computes once");
        assert_eq!(p.key(), d.key(), "{s}");
        let g = p.graph();
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(g.contains(d.key().clone()));
        // Later computations of the persisted value, and of tasks built on
        // it, do not call `expensive` again.
        assert_eq!(p.compute_with(&s).unwrap(), 300);
        let later = add(&p, 5);
        let again = inc(&p);
        let got = rdask::with_scheduler(s.clone(), || compute!(later, again, p)).unwrap();
        assert_eq!(got, (305, 301, 300), "{s}");
        assert_eq!(
            calls(),
            before + 1,
            "{s}: the persisted value was recomputed"
        );
        // The original still computes (dask keeps it lazy).
        assert_eq!(d.compute_with(&s).unwrap(), 300);
        assert_eq!(calls(), before + 2, "{s}");
        // A persisted `map` result.
        let mapped = Arc::new(AtomicUsize::new(0));
        let m2 = mapped.clone();
        let counted = rdask::value(5_i64).map(move |x: i64| {
            m2.fetch_add(1, Ordering::SeqCst);
            x
        });
        let pm = rdask::with_scheduler(s.clone(), || counted.persist()).unwrap();
        assert_eq!(add(&pm, &pm).compute_with(&s).unwrap(), 10);
        assert_eq!(mapped.load(Ordering::SeqCst), 1, "{s}");
    }
}

#[delayed]
fn fails_named(x: i64) -> Result<i64, String> {
    Err(format!("no {x}"))
}

/// `named` gives a call the key a user chose (dask's `dask_key_name`):
/// errors, graphs and the key itself use it; a handle shared elsewhere is
/// named through a task of its own, which passes the value on.
#[test]
fn a_call_can_be_given_its_own_key() {
    let e = fails_named(1).named("load-a").compute().unwrap_err();
    assert_eq!(e.key(), Some(&rdask::Key::from("load-a")), "{e}");

    let x = rdask::value(2_i64);
    let y = x.clone().named("two");
    assert_eq!(y.key(), &rdask::Key::from("two"));
    assert_ne!(x.key(), y.key(), "the shared handle keeps its key");
    let keys = y.graph().keys().map(|k| k.to_string()).collect::<Vec<_>>();
    assert!(keys.contains(&"two".to_string()), "{keys:?}");
    assert!(keys.contains(&x.key().to_string()), "{keys:?}");
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        assert_eq!(y.compute_with(&s).unwrap(), 2);
        assert_eq!((&y + 1).compute_with(&s).unwrap(), 3);
    }
}
