//! Raw task graphs (dask's "custom graphs"): `graph!`, the builder, `get`,
//! and `Graph` as inspectable data.

use rdask::graph::{key, lit};
use rdask::prelude::*;
use rdask::{ErrorKind, Graph, GraphArg, Key};

fn add(a: i64, b: i64) -> i64 {
    a + b
}
fn inc(a: i64) -> i64 {
    a + 1
}
fn sum(v: Vec<i64>) -> i64 {
    v.iter().sum()
}
fn sizes(v: Vec<Vec<i64>>) -> Vec<usize> {
    v.iter().map(Vec::len).collect()
}
fn concat(a: String, b: String) -> String {
    a + &b
}

fn schedulers() -> Vec<Scheduler> {
    vec![
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::threads(0),
    ]
}

#[test]
fn seed_example_on_every_scheduler() {
    let dsk = graph! {
        "a" => 1_i64,
        "b" => 2_i64,
        "c" => (add, "a", "b"),
        "d" => (sum, ["a", "b", "c"]),
    };
    for s in schedulers() {
        assert_eq!(rdask::get_with::<i64>(&dsk, "c", &s).unwrap(), 3, "{s}");
        assert_eq!(rdask::get_with::<i64>(&dsk, "d", &s).unwrap(), 6, "{s}");
        let many = rdask::get_many_with::<i64>(&dsk, &["a", "b", "c"], &s).unwrap();
        assert_eq!(many, vec![1, 2, 3]);
    }
    assert_eq!(rdask::get::<i64>(&dsk, "d").unwrap(), 6);
    assert_eq!(
        rdask::get_many::<i64>(&dsk, &["d", "d"]).unwrap(),
        vec![6, 6]
    );
}

#[test]
fn nested_tasks_lists_and_closures() {
    let dsk = graph! {
        "x" => 1_i64,
        "y" => 10_i64,
        "z" => (add, (inc, "x"), "y"),
        "w" => (sizes, [["x"], ["y", "z"], []]),
        "v" => (|a: i64| a * 3, "z"),
    };
    let _ = &dsk;
    for s in schedulers() {
        assert_eq!(rdask::get_with::<i64>(&dsk, "z", &s).unwrap(), 12);
        assert_eq!(
            rdask::get_with::<Vec<usize>>(&dsk, "w", &s).unwrap(),
            vec![1, 2, 0]
        );
        assert_eq!(rdask::get_with::<i64>(&dsk, "v", &s).unwrap(), 36);
    }
    assert_eq!(dsk.dependencies("z"), vec![Key::from("x"), Key::from("y")]);
}

fn zero() -> i64 {
    0
}

#[test]
fn tuple_keys_like_dask_arrays() {
    let dsk = graph! {
        ("x", 0) => 5_i64,
        ("x", 1) => (inc, ("x", 0)),
        ("y",) => (add, ("x", 0), ("x", 1)),
        "u" => (zero,),
    };
    assert!(dsk.contains(("x", 1)));
    assert_eq!(rdask::get::<i64>(&dsk, ("y",)).unwrap(), 11);
    assert_eq!(rdask::get::<i64>(&dsk, Key::from(("x", 1))).unwrap(), 6);
    assert_eq!(Key::from(("x", 0, 1)).to_string(), "('x', 0, 1)");
    assert_eq!(
        dsk.dependencies(("y",)),
        vec![Key::from(("x", 0)), Key::from(("x", 1))]
    );
    // Negative indices are indices too.
    let dsk = graph! { ("x", -1) => 1_i64, "y" => (inc, ("x", -1)) };
    assert_eq!(rdask::get::<i64>(&dsk, "y").unwrap(), 2);
}

fn last_index(t: (&'static str, i32, i32, i32, i32, i32)) -> i64 {
    t.5.into()
}

/// A name and four indices is the longest tuple key, at run time (the
/// `From` impls for `Key`) and in `graph!` (its `MAX_TUPLE_KEY_LEN`); this
/// test and `tests/ui/fail/graph_tuple_key_too_long.rs` fail if the two
/// disagree.
#[test]
fn tuple_keys_up_to_the_longest() {
    let dsk = graph! {
        ("x", 0, 1, 2, 3) => 5_i64,
        "y" => (inc, ("x", 0, 1, 2, 3)),
        // One index more is not a key in a task: it is a literal.
        "z" => (last_index, ("x", 0, 1, 2, 3, 4)),
    };
    assert_eq!(rdask::get::<i64>(&dsk, "y").unwrap(), 6);
    assert_eq!(rdask::get::<i64>(&dsk, "z").unwrap(), 4);
    assert_eq!(dsk.dependencies("y"), vec![Key::from(("x", 0, 1, 2, 3))]);
    assert!(dsk.dependencies("z").is_empty());
}

#[test]
fn strings_that_are_not_keys_are_literals() {
    let dsk = graph! {
        "a" => "hello".to_string(),
        "b" => (concat, "a", " world"),
        "c" => (concat, lit("a"), key("a")),
        "d" => key("b"),
    };
    assert_eq!(rdask::get::<String>(&dsk, "b").unwrap(), "hello world");
    // `lit(..)` as an entry's value is that value.
    let g = graph! { "v" => lit("xyz"), "n" => lit(5_i64) };
    assert_eq!(rdask::get::<String>(&g, "v").unwrap(), "xyz");
    assert_eq!(rdask::get::<i64>(&g, "n").unwrap(), 5);
    assert_eq!(rdask::get::<String>(&dsk, "c").unwrap(), "ahello");
    assert_eq!(rdask::get::<String>(&dsk, "d").unwrap(), "hello world");
    assert_eq!(dsk.dependencies("b"), vec![Key::from("a")]);
    assert_eq!(dsk.dependencies("c"), vec![Key::from("a")]);
}

#[test]
fn the_builder_is_what_the_macro_writes() {
    let mut g = Graph::new();
    assert!(g.is_empty());
    g.insert_value("a", 1_i64)
        .insert_value("b", 2_i64)
        .insert_task("c", add, (key("a"), key("b")))
        .insert_task("d", sum, (vec![key("a"), key("c"), lit(100_i64)],))
        .insert_alias("e", "d");
    assert_eq!(g.len(), 5);
    assert_eq!(
        g.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(rdask::get::<i64>(&g, "e").unwrap(), 104);
    // The macro writes the same graph.
    let m = graph! {
        "a" => 1_i64,
        "b" => 2_i64,
        "c" => (add, "a", "b"),
        "d" => (sum, ["a", "c", lit(100_i64)]),
        "e" => key("d"),
    };
    assert_eq!(m.keys().collect::<Vec<_>>(), g.keys().collect::<Vec<_>>());
    for k in ["a", "b", "c", "d", "e"] {
        assert_eq!(m.dependencies(k), g.dependencies(k), "{k}");
    }
    assert_eq!(m.to_dot(), g.to_dot());
    assert_eq!(rdask::get::<i64>(&m, "e").unwrap(), 104);
    assert!(g.remove("e"));
    assert!(!g.contains("e"));
}

#[test]
fn missing_keys_are_errors_naming_the_key() {
    let dsk = graph! { "a" => 1_i64, "c" => (add, "a", key("nope")) };
    for s in schedulers() {
        let e = rdask::get_with::<i64>(&dsk, "c", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingKey);
        assert_eq!(e.key(), Some(&Key::from("nope")));
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(e.to_string().contains("`c`"), "{e}");
        let e = rdask::get_with::<i64>(&dsk, "zz", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingKey);
    }
    let alias = graph! { "b" => key("a") };
    assert_eq!(
        rdask::get::<i64>(&alias, "b").unwrap_err().kind(),
        ErrorKind::MissingKey
    );
}

#[test]
fn cycles_are_errors_naming_the_keys() {
    let dsk = graph! {
        "a" => (inc, "c"),
        "b" => (inc, "a"),
        "c" => (inc, "b"),
        "d" => (inc, "a"),
    };
    for s in schedulers() {
        let e = rdask::get_with::<i64>(&dsk, "d", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cycle);
        let msg = e.to_string();
        for k in ["`a`", "`b`", "`c`"] {
            assert!(msg.contains(k), "{msg}");
        }
        assert!(!msg.contains("`d`"), "{msg}");
    }
    let selfloop = graph! { "a" => (inc, key("a")) };
    assert_eq!(
        rdask::get::<i64>(&selfloop, "a").unwrap_err().kind(),
        ErrorKind::Cycle
    );
}

/// A cycle of up to 12 keys is named whole; a longer one by its first and
/// last five, with the count of those left out.
#[test]
fn long_cycles_are_named_by_their_ends() {
    let ring = |n: usize| {
        let mut g = Graph::new();
        for i in 0..n {
            g.insert_task(format!("r{i}"), inc, (key(format!("r{}", (i + 1) % n)),));
        }
        let e = rdask::get_with::<i64>(&g, "r0", &Scheduler::Sync).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cycle);
        e.to_string()
    };
    let names = |ks: &[usize]| {
        ks.iter()
            .map(|i| format!("`r{i}`"))
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    let twelve: Vec<usize> = (0..12).chain([0]).collect();
    assert!(ring(12).ends_with(&format!("the graph has a cycle: {}", names(&twelve))));
    let long = format!(
        "the graph has a cycle: {} -> ... (10 more) ... -> {}",
        names(&[0, 1, 2, 3, 4]),
        names(&[15, 16, 17, 18, 19, 0])
    );
    let got = ring(20);
    assert!(got.ends_with(&long), "{got}");
}

#[test]
fn wrong_types_are_errors_naming_both_types() {
    let dsk = graph! {
        "s" => "text".to_string(),
        "n" => 1_i64,
        "bad" => (inc, "s"),
        "badlist" => (sum, ["n", "s"]),
    };
    for s in schedulers() {
        let e = rdask::get_with::<i64>(&dsk, "bad", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Type);
        assert_eq!(e.key(), Some(&Key::from("bad")));
        let msg = e.to_string();
        assert!(msg.contains("i64") && msg.contains("String"), "{msg}");
        let e = rdask::get_with::<i64>(&dsk, "badlist", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Type, "{e}");
        // The output asked for with the wrong type.
        let e = rdask::get_with::<String>(&dsk, "n", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Type);
        assert!(e.to_string().contains("i64"), "{e}");
    }
}

#[test]
fn raw_task_errors_do_not_hang_or_leak() {
    fn boom(_: i64) -> i64 {
        panic!("boom in a raw task")
    }
    let dsk = graph! { "a" => 1_i64, "b" => (boom, "a"), "c" => (inc, "b") };
    for s in schedulers() {
        let e = rdask::get_with::<i64>(&dsk, "c", &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(e.key(), Some(&Key::from("b")));
        assert_eq!(rdask::get_with::<i64>(&dsk, "a", &s).unwrap(), 1);
    }
}

#[test]
fn cull_keeps_only_what_is_needed() {
    let dsk = graph! {
        "a" => 1_i64,
        "b" => 2_i64,
        "c" => (add, "a", "b"),
        "unused" => (inc, "b"),
        "d" => (inc, "c"),
    };
    let culled = dsk.cull(&["d"]);
    assert_eq!(
        culled.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
    assert_eq!(rdask::get::<i64>(&culled, "d").unwrap(), 4);
    assert!(dsk.cull(&["nope"]).is_empty());
}

#[test]
fn dot_names_every_key_and_edge() {
    let dsk = graph! { "a" => 1_i64, "b" => (inc, "a") };
    let dot = dsk.to_dot();
    assert!(dot.starts_with("digraph"));
    assert!(dot.contains("\"a\" -> \"b\""), "{dot}");
    assert!(dot.contains("inc"), "{dot}");
}

#[rdask::delayed]
fn dinc(x: i64) -> i64 {
    x + 1
}

#[test]
fn a_delayed_graph_is_a_raw_graph() {
    let a = dinc(1);
    let b = dinc(&a);
    let c = &b * 10;
    let g = c.graph();
    assert_eq!(g.len(), 3); // two incs and a mul; the literals are inline
    for k in [a.key(), b.key(), c.key()] {
        assert!(g.contains(k));
    }
    assert_eq!(g.dependencies(b.key()), vec![a.key().clone()]);
    for s in schedulers() {
        assert_eq!(rdask::get_with::<i64>(&g, c.key().clone(), &s).unwrap(), 30);
    }
    // Other code can replace a node of the graph by key.
    let mut g2 = g.clone();
    g2.insert_value(a.key().clone(), 100_i64);
    assert_eq!(rdask::get::<i64>(&g2, c.key().clone()).unwrap(), 1010);
    // The string form of a generated key finds it too.
    assert_eq!(rdask::get::<i64>(&g, b.key().to_string()).unwrap(), 3);
}

/// The number in a fresh generated key: where the key counter is now.
fn counter_now() -> u64 {
    let k = Key::unique(&"probe").to_string();
    k.rsplit('-').next().unwrap().parse().unwrap()
}

/// A nested task `(f, args...)` has no key of its own (as in dask): a key
/// of the graph spelled like the one shown for it (`task-N`) must not
/// stand in for it.
#[test]
fn a_nested_task_is_not_replaced_by_a_key_spelled_like_it() {
    let before = counter_now();
    let mut g = graph! { "x" => 1_i64, "z" => (add, (inc, "x"), "x") };
    let after = counter_now();
    for n in before..=after {
        g.insert_value(format!("task-{n}"), 100_i64);
    }
    assert_eq!(g.dependencies("z"), vec![Key::from("x")]);
    for s in schedulers() {
        assert_eq!(rdask::get_with::<i64>(&g, "z", &s).unwrap(), 3, "{s}");
    }
}

fn sum3(v: Vec<Vec<Vec<i64>>>) -> i64 {
    v.iter().flatten().flatten().sum()
}

fn sum4(v: Vec<Vec<Vec<Vec<i64>>>>) -> i64 {
    v.iter().flatten().flatten().flatten().sum()
}

/// Lists nest as in dask's spec, up to four deep for a `Vec<Vec<Vec<Vec<T>>>>`.
#[test]
fn lists_nest_up_to_four_deep() {
    let g = graph! {
        "a" => 1_i64,
        "b" => 2_i64,
        "three" => (sum3, [[["a"]], [["b", "a"]]]),
        "four" => (sum4, [[[["a", "b"]]], [[["b"]], [["a"]]]]),
    };
    for s in schedulers() {
        assert_eq!(rdask::get_with::<i64>(&g, "three", &s).unwrap(), 4, "{s}");
        assert_eq!(rdask::get_with::<i64>(&g, "four", &s).unwrap(), 6, "{s}");
    }
}

/// A list nested deeper than any parameter takes is a clear error, however
/// deep (no recursion that deep), and such lists drop without recursion,
/// in a graph or on their own.
#[test]
fn lists_nested_too_deep_are_an_error_not_a_stack_overflow() {
    let nest = |depth: usize| {
        let mut a: GraphArg = key("x");
        for _ in 0..depth {
            a = GraphArg::from(vec![a]);
        }
        a
    };
    for depth in [5, 100_000] {
        let mut g = Graph::new();
        g.insert_value("x", 0_i64);
        g.insert_task("y", sum, (nest(depth),));
        let e = rdask::get::<i64>(&g, "y").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Type, "{depth}: {e}");
        assert_eq!(e.key(), Some(&Key::from("y")), "{depth}: {e}");
        assert!(e.to_string().contains("more than 4 deep"), "{depth}: {e}");
    }
    drop(nest(1_000_000));
}

/// `get!` computes keys of different types together; a wrong type names
/// its key, and a count of keys that is not the tuple's is a clear error.
#[test]
fn keys_of_different_types_come_back_as_a_tuple() {
    fn show(x: i64) -> String {
        format!("<{x}>")
    }
    let g = graph! { "a" => 1_i64, "s" => (show, "a") };
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let (a, text): (i64, String) =
            rdask::get_tuple_with(&g, &["a".into(), "s".into()], &s).unwrap();
        assert_eq!((a, text.as_str()), (1, "<1>"));
    }
    let (text,): (String,) = rdask::get!(&g, "s").unwrap();
    assert_eq!(text, "<1>");
    let wrong: rdask::Result<(i64, i64)> = rdask::get!(&g, "a", "s");
    let e = wrong.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Type, "{e}");
    assert_eq!(e.key(), Some(&rdask::Key::from("s")), "{e}");
    let short: rdask::Result<(i64, String, i64)> = rdask::get!(&g, "a", "s");
    assert!(short.unwrap_err().to_string().contains("one key per value"));
}

#[test]
fn from_graph_feeds_delayed_calls_and_keeps_the_graphs_errors() {
    fn inc(x: i64) -> i64 {
        x + 1
    }
    fn bad(_x: i64) -> i64 {
        panic!("bad input")
    }
    #[delayed]
    fn double(x: i64) -> i64 {
        x * 2
    }
    let g = graph! { "a" => 1_i64, "b" => (inc, "a"), "c" => (bad, "a") };
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(1),
    ] {
        let b = Delayed::<i64>::from_graph(&g, "b");
        assert_eq!(double(&b).compute_with(&s).unwrap(), 4, "{s}");
        let e = double(Delayed::<i64>::from_graph(&g, "c"))
            .compute_with(&s)
            .unwrap_err();
        assert_eq!(e.kind(), rdask::ErrorKind::Panic, "{s}: {e}");
        assert_eq!(e.key().map(|k| k.to_string()).as_deref(), Some("c"), "{s}");
        let e = Delayed::<i64>::from_graph(&g, "nope")
            .compute_with(&s)
            .unwrap_err();
        assert_eq!(e.kind(), rdask::ErrorKind::MissingKey, "{s}");
    }
}
