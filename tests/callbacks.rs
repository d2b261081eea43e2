//! Callbacks: order and counts on success and failure, `finish` always,
//! panicking callbacks, scoping, and nested computations.

use rdask::callbacks::{register, with_callbacks, Callback};
use rdask::prelude::*;
use rdask::{Compute, ErrorKind, Key};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Callback for Log {
    fn start(&self, tasks: usize) {
        self.0.lock().unwrap().push(format!("start {tasks}"));
    }
    fn pretask(&self, key: &Key, _worker: usize) {
        self.0.lock().unwrap().push(format!("pre {}", key.prefix()));
    }
    fn posttask(&self, key: &Key, _worker: usize, _took: Duration, ok: bool) {
        self.0
            .lock()
            .unwrap()
            .push(format!("post {} {ok}", key.prefix()));
    }
    fn finish(&self, ok: bool) {
        self.0.lock().unwrap().push(format!("finish {ok}"));
    }
}

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[delayed]
fn fail(x: i64) -> Result<i64, String> {
    Err(format!("no {x}"))
}

#[delayed]
fn nested(x: i64) -> i64 {
    inc(x).compute().unwrap()
}

fn schedulers() -> Vec<Scheduler> {
    vec![Scheduler::Sync, Scheduler::threads(2)]
}

#[test]
fn order_and_counts_on_success() {
    for s in schedulers() {
        let log = Arc::new(Log::default());
        let d = inc(inc(1));
        let out = Compute::new(std::slice::from_ref(&d))
            .scheduler(s.clone())
            .callback(log.clone())
            .run()
            .unwrap();
        assert_eq!(out, vec![3]);
        assert_eq!(
            log.events(),
            [
                "start 2",
                "pre inc",
                "post inc true",
                "pre inc",
                "post inc true",
                "finish true"
            ],
            "{s}"
        );
    }
}

#[test]
fn failures_are_reported_and_finish_still_runs() {
    for s in schedulers() {
        let log = Arc::new(Log::default());
        let d = inc(fail(1));
        let e = Compute::new(std::slice::from_ref(&d))
            .scheduler(s.clone())
            .callback(log.clone())
            .run()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task);
        let events = log.events();
        assert_eq!(events.first().map(String::as_str), Some("start 2"));
        assert!(
            events.contains(&"post fail false".to_string()),
            "{events:?}"
        );
        assert!(
            !events.iter().any(|e| e.starts_with("pre inc")),
            "{events:?}"
        );
        assert_eq!(events.last().map(String::as_str), Some("finish false"));
    }
}

struct Panicky(&'static str);

impl Callback for Panicky {
    fn start(&self, _: usize) {
        if self.0 == "start" {
            panic!("boom in start");
        }
    }
    fn pretask(&self, _: &Key, _: usize) {
        if self.0 == "pretask" {
            panic!("boom in pretask");
        }
    }
    fn posttask(&self, _: &Key, _: usize, _: Duration, _: bool) {
        if self.0 == "posttask" {
            panic!("boom in posttask");
        }
    }
    fn finish(&self, _: bool) {
        if self.0 == "finish" {
            panic!("boom in finish");
        }
    }
}

#[test]
fn a_panicking_callback_is_an_error_not_an_abort() {
    for s in schedulers() {
        for when in ["start", "pretask", "posttask", "finish"] {
            let log = Arc::new(Log::default());
            let d = inc(1);
            let e = Compute::new(std::slice::from_ref(&d))
                .scheduler(s.clone())
                .callback(Arc::new(Panicky(when)))
                .callback(log.clone())
                .run()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Callback, "{when} on {s}");
            assert!(e.to_string().contains(when), "{e}");
            // The other callback still saw the end.
            assert!(log.events().last().unwrap().starts_with("finish"), "{when}");
        }
        // The scheduler is fine afterwards.
        assert_eq!(inc(1).compute_with(&s).unwrap(), 2);
    }
}

#[test]
fn scoped_and_registered_callbacks_and_nesting() {
    for s in schedulers() {
        let scoped = Arc::new(Log::default());
        let d = inc(nested(1));
        let out = with_callbacks(vec![scoped.clone()], || d.compute_with(&s)).unwrap();
        assert_eq!(out, 3);
        // Two tasks of the outer computation; the nested compute's task is
        // part of `nested` and fires nothing here.
        let pre = scoped
            .events()
            .iter()
            .filter(|e| e.starts_with("pre"))
            .count();
        assert_eq!(pre, 2, "{:?}", scoped.events());
        assert_eq!(
            scoped
                .events()
                .iter()
                .filter(|e| e.starts_with("start"))
                .count(),
            1
        );

        // Outside the scope, nothing fires.
        let before = scoped.events().len();
        inc(1).compute_with(&s).unwrap();
        assert_eq!(scoped.events().len(), before);
    }

    // Registered callbacks see every computation of the process (other
    // tests run at the same time, so count only this one's task).
    let global = Arc::new(Log::default());
    let mine = |log: &Log| {
        log.events()
            .iter()
            .filter(|e| e.as_str() == "pre only_global")
            .count()
    };
    let reg = register(global.clone());
    only_global(1).compute().unwrap();
    assert_eq!(mine(&global), 1, "{:?}", global.events());
    drop(reg);
    only_global(1).compute().unwrap();
    assert_eq!(mine(&global), 1);
}

#[delayed]
fn only_global(x: i64) -> i64 {
    x
}

/// Sees the graph (`start_state`) and every result (`result`).
#[derive(Default)]
struct Seen {
    graph: Mutex<Vec<(String, Vec<usize>)>>,
    outputs: Mutex<Vec<usize>>,
    events: Mutex<Vec<String>>,
}

impl Callback for Seen {
    fn start_state(&self, graph: &rdask::callbacks::TaskGraph<'_>) {
        let mut g = self.graph.lock().unwrap();
        for t in 0..graph.len() {
            g.push((graph.name(t).to_string(), graph.dependencies(t)));
        }
        *self.outputs.lock().unwrap() = graph.outputs();
        self.events.lock().unwrap().push("start_state".into());
    }
    fn start(&self, _tasks: usize) {
        self.events.lock().unwrap().push("start".into());
    }
    fn result(&self, key: &Key, result: &rdask::callbacks::TaskResult<'_>) {
        let shown = match (result.get::<Vec<i64>>(), result.get::<i64>()) {
            (Some(v), _) => format!("{v:?}"),
            (_, Some(x)) => x.to_string(),
            _ => "?".into(),
        };
        let line = format!("result {} {shown} {}", key.prefix(), result.type_name());
        self.events.lock().unwrap().push(line);
    }
    fn posttask(&self, key: &Key, _worker: usize, _took: Duration, ok: bool) {
        let line = format!("post {} {ok}", key.prefix());
        self.events.lock().unwrap().push(line);
    }
}

#[delayed]
fn range(n: i64) -> Vec<i64> {
    (0..n).collect()
}

#[delayed]
fn sum_of(v: &Vec<i64>) -> i64 {
    v.iter().sum()
}

#[delayed]
fn len_of(v: Vec<i64>) -> i64 {
    v.len() as i64
}

#[test]
fn callbacks_see_the_graph_and_each_result() {
    let all = [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(2),
    ];
    for s in all {
        let seen = Arc::new(Seen::default());
        let v = range(4);
        let out = Compute::new(&[sum_of(&v), len_of(v)])
            .scheduler(s.clone())
            .callback(seen.clone())
            .run()
            .unwrap();
        assert_eq!(out, [6, 4], "{s}");
        let graph = seen.graph.lock().unwrap().clone();
        let range_at = graph.iter().position(|(n, _)| n == "range").unwrap();
        let mut names: Vec<_> = graph.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("len_of", vec![range_at]),
                ("range", vec![]),
                ("sum_of", vec![range_at])
            ],
            "{s}"
        );
        assert_eq!(seen.outputs.lock().unwrap().len(), 2, "{s}");
        let events = seen.events.lock().unwrap().clone();
        assert_eq!(events[..2], ["start_state", "start"], "{s}");
        let vec_type = std::any::type_name::<Vec<i64>>();
        let made = events
            .iter()
            .position(|e| e.starts_with("result range"))
            .unwrap();
        assert_eq!(
            events[made],
            format!("result range [0, 1, 2, 3] {vec_type}"),
            "{s}"
        );
        assert_eq!(events[made + 1], "post range true", "{s}");
        assert!(
            events.contains(&"result sum_of 6 i64".to_string()),
            "{s}: {events:?}"
        );
        assert!(
            events.contains(&"result len_of 4 i64".to_string()),
            "{s}: {events:?}"
        );
    }
}

#[test]
fn a_failed_task_has_no_result() {
    let seen = Arc::new(Seen::default());
    let err = Compute::new(&[inc(fail(1))])
        .callback(seen.clone())
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Task);
    let events = seen.events.lock().unwrap().clone();
    assert!(
        events.contains(&"post fail false".to_string()),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("result")),
        "{events:?}"
    );
}

#[delayed]
fn fill(n: usize) -> Vec<u8> {
    vec![7; n]
}

#[delayed]
fn both(a: Vec<u8>, b: Vec<u8>) -> usize {
    a.len() + b.len()
}

#[test]
fn the_cache_profiler_weighs_results_and_when_they_are_let_go() {
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(2),
    ] {
        let prof = Arc::new(rdask::CacheProfiler::new());
        let x = both(fill(1000), fill(8000));
        let out = Compute::new(&[x])
            .scheduler(s.clone())
            .callback(prof.clone())
            .run()
            .unwrap();
        assert_eq!(out, [9000], "{s}");
        let records = prof.records();
        let by = |name: &str| {
            records
                .iter()
                .filter(|r| r.name == name)
                .collect::<Vec<_>>()
        };
        let fills = by("fill");
        let [sum] = by("both")[..] else {
            panic!("{s}: {records:?}")
        };
        assert_eq!(fills.len(), 2, "{s}");
        let mut sizes: Vec<f64> = fills.iter().map(|r| r.metric).collect();
        sizes.sort_by(f64::total_cmp);
        // A Vec and its buffer; a worker's result over 4 KiB stays
        // encoded here and weighs its bytes (a 2-byte length, then the bytes).
        let expect = match s {
            Scheduler::Processes(_) => [1000.0 + 24.0, 8000.0 + 2.0],
            _ => [1000.0 + 24.0, 8000.0 + 24.0],
        };
        assert_eq!(sizes, expect, "{s}");
        for f in &fills {
            // Held until `both` started, which is before it ended.
            assert!(
                f.cached <= f.freed && f.freed <= sum.cached,
                "{s}: {records:?}"
            );
        }
        assert_eq!(sum.freed, sum.cached.max(sum.freed), "{s}");
        // Both fills are held together at the peak, never the sum with them.
        assert_eq!(prof.peak(), expect[0] + expect[1], "{s}");
        let counted = rdask::CacheProfiler::with_metric(|_| 1.0);
        let counted = Arc::new(counted);
        Compute::new(&[both(fill(1), fill(2))])
            .scheduler(s.clone())
            .callback(counted.clone())
            .run()
            .unwrap();
        assert_eq!(counted.records().len(), 3, "{s}");
        assert_eq!(counted.peak(), 2.0, "{s}");
    }
}
