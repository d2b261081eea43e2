//! Graph rewrites (dask's `dask.optimization`): `inline`,
//! `inline_constants`, `inline_functions`, `fuse` give graphs with fewer
//! keys that compute the same values, on raw graphs and a `Delayed`'s.

use rdask::graph::{key, lit};
use rdask::prelude::*;
use rdask::{ErrorKind, Graph, GraphArg, Key};
use std::sync::atomic::{AtomicUsize, Ordering};

fn keys(g: &Graph) -> Vec<String> {
    let mut k: Vec<String> = g.keys().map(|k| k.to_string()).collect();
    k.sort();
    k
}

fn split(s: String) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}
fn count(word: String, words: Vec<String>) -> usize {
    words.iter().filter(|w| **w == word).count()
}
fn len(words: Vec<String>) -> usize {
    words.len()
}
fn format(template: String, n: usize, word: String, total: usize) -> String {
    template
        .replacen("{}", &n.to_string(), 1)
        .replacen("{}", &word, 1)
        .replacen("{}", &total.to_string(), 1)
}
fn shout(s: String) -> String {
    s.to_uppercase()
}

/// dask's optimize.rst word count, step by step: each rewrite keeps the
/// results and drops the keys dask's does.
#[test]
fn the_word_count_of_dasks_optimisation_docs() {
    let template = "{} of {} in {}".to_string();
    let dsk = graph! {
        "words" => "apple orange apple pear orange pear pear".to_string(),
        "nwords" => (len, (split, "words")),
        "val1" => "orange".to_string(),
        "val2" => "apple".to_string(),
        "val3" => "pear".to_string(),
        "count1" => (count, "val1", (split, "words")),
        "count2" => (count, "val2", (split, "words")),
        "count3" => (count, "val3", (split, "words")),
        "format1" => (format, lit(template.clone()), "count1", "val1", "nwords"),
        "format2" => (format, lit(template.clone()), "count2", "val2", "nwords"),
        "format3" => (format, lit(template), "count3", "val3", "nwords"),
        "print1" => (shout, "format1"),
        "print2" => (shout, "format2"),
        "print3" => (shout, "format3"),
    };
    let outputs = ["print1", "print2"];
    let want = ["2 OF ORANGE IN 7", "2 OF APPLE IN 7"];
    let dsk1 = dsk.cull(&outputs);
    assert_eq!(dsk1.len(), 10);
    // Constants go into their users; the keys stay until culled.
    let dsk2 = dsk1.inline_constants();
    assert_eq!(dsk2.len(), 10);
    assert!(dsk2.dependencies("count1").is_empty());
    assert_eq!(
        dsk2.dependencies("format1"),
        [Key::from("count1"), Key::from("nwords")]
    );
    let dsk2 = dsk2.cull(&outputs);
    assert_eq!(
        keys(&dsk2),
        ["count1", "count2", "format1", "format2", "nwords", "print1", "print2"]
    );
    // `len` (nwords) is cheap: into each format task, and gone.
    let dsk3 = dsk2.inline_functions(&outputs, &["len"]);
    assert_eq!(
        keys(&dsk3),
        ["count1", "count2", "format1", "format2", "print1", "print2"]
    );
    // count -> format -> print chains: one key each.
    let dsk4 = dsk3.fuse(&outputs);
    assert_eq!(keys(&dsk4), ["print1", "print2"]);
    for (g, name) in [
        (&dsk1, "culled"),
        (&dsk2, "inlined"),
        (&dsk3, "functions"),
        (&dsk4, "fused"),
    ] {
        for s in [Scheduler::Sync, Scheduler::threads(2)] {
            let got = rdask::get_many::<String>(g, &outputs.map(Key::from)).unwrap();
            let got2 = rdask::get_many_with::<String>(g, &outputs.map(Key::from), &s).unwrap();
            assert_eq!(got, want, "{name}");
            assert_eq!(got2, want, "{name} on {s}");
        }
    }
    // The original graph is untouched.
    assert_eq!(dsk.len(), 14);
    assert_eq!(
        rdask::get::<String>(&dsk, "print3").unwrap(),
        "3 OF PEAR IN 7"
    );
}

/// Runs of `counted_inc`, which only one test uses (tests run at once).
static RUNS: AtomicUsize = AtomicUsize::new(0);

fn counted_inc(x: i64) -> i64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    x + 1
}

fn plain_inc(x: i64) -> i64 {
    x + 1
}
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[test]
fn an_inlined_key_stays_and_its_users_share_one_copy_of_its_task() {
    let dsk = graph! {
        "x" => 1_i64,
        "y" => (counted_inc, "x"),
        "z" => (add, "y", "y"),
        "w" => (add, "y", "z"),
    };
    let inlined = dsk.inline(&["y"]);
    assert_eq!(keys(&inlined), ["w", "x", "y", "z"]);
    assert_eq!(inlined.dependencies("z"), [Key::from("x")]);
    assert_eq!(inlined.dependencies("w"), [Key::from("x"), Key::from("z")]);
    let before = RUNS.load(Ordering::SeqCst);
    assert_eq!(rdask::get::<i64>(&inlined, "w").unwrap(), 6);
    assert_eq!(
        RUNS.load(Ordering::SeqCst) - before,
        1,
        "one copy of y's task"
    );
    // Inlining a key that is not there changes nothing.
    assert_eq!(dsk.inline(&["nope"]).dependencies("z"), [Key::from("y")]);
}

fn fail_on_two(x: i64) -> i64 {
    assert_ne!(x, 2, "two");
    x
}

#[test]
fn a_fused_chain_keeps_its_tasks_keys_in_errors_and_forks_stay() {
    let dsk = graph! {
        "a" => 1_i64,
        "b" => (plain_inc, "a"),
        "c" => (fail_on_two, "b"),
        "d" => (plain_inc, "c"),
        "e" => (plain_inc, "d"),
        "f" => (plain_inc, "d"),
    };
    let fused = dsk.fuse(&["e", "f"]);
    // d has two users: it stays, and b and c go into it.
    assert_eq!(keys(&fused), ["a", "d", "e", "f"]);
    let err = rdask::get::<i64>(&fused, "e").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert_eq!(err.key(), Some(&Key::from("c")), "{err}");
    // Kept keys are not fused away.
    assert_eq!(keys(&dsk.fuse(&["b", "e", "f"])), ["a", "b", "d", "e", "f"]);
}

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed]
fn both(a: i64, b: i64) -> i64 {
    a + b
}

#[test]
fn a_delayed_graph_fuses_and_feeds_delayed_calls() {
    let x = inc(inc(inc(1)));
    let y = both(x.clone(), inc(10));
    let g = y.graph();
    assert_eq!(g.len(), 5);
    let fused = g.fuse(&[y.key().clone()]);
    // `both` has two inputs, so each chain fuses into its last link.
    assert_eq!(fused.len(), 3);
    let back = rdask::Delayed::<i64>::from_graph(&fused, y.key().clone());
    assert_eq!(inc(back).compute().unwrap(), 16);
}

#[test]
fn deep_chains_and_nesting_rewrite_without_recursion() {
    let n = 200_000;
    let mut dsk = Graph::new();
    dsk.insert_value("k0", 0_i64);
    for i in 1..=n {
        dsk.insert_task(
            format!("k{i}"),
            add,
            (key(format!("k{}", i - 1)), lit(1_i64)),
        );
    }
    let last = format!("k{n}");
    let fused = dsk.fuse(&[last.as_str()]);
    assert_eq!(keys(&fused), ["k0", last.as_str()]);
    assert_eq!(rdask::get::<i64>(&fused, last.as_str()).unwrap(), n as i64);
    let consts = fused.inline_constants();
    assert!(consts.dependencies(last.as_str()).is_empty());
    assert_eq!(rdask::get::<i64>(&consts, last.as_str()).unwrap(), n as i64);

    // A task nested 100,000 deep whose innermost input is a key to inline.
    let mut arg = key("x");
    for _ in 0..100_000 {
        arg = GraphArg::task(add, (arg, lit(1_i64)));
    }
    let mut nested = Graph::new();
    nested
        .insert_value("x", 5_i64)
        .insert_task("top", add, (arg, lit(0_i64)));
    let inlined = nested.inline_constants();
    assert!(inlined.dependencies("top").is_empty());
    assert_eq!(rdask::get::<i64>(&inlined, "top").unwrap(), 100_005);
}

#[test]
fn a_cycle_is_left_for_get_to_report() {
    let dsk = graph! {
        "a" => (add, "b", lit(1_i64)),
        "b" => (add, "a", lit(1_i64)),
        "c" => (add, "a", lit(1_i64)),
    };
    for g in [dsk.fuse(&["c"]), dsk.inline(&["a"]), dsk.inline_constants()] {
        let err = rdask::get::<i64>(&g, "c").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cycle, "{err}");
    }
}
