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
