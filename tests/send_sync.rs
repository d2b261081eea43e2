//! `Delayed<T>`, `Graph`, `Key`, `Scheduler` and `Error` are `Send + Sync`;
//! `Delayed<T>` and `Graph` are `Clone`. The assertions are checked at
//! compile time; the tests also move the handles across threads for real.

use rdask::prelude::*;
use rdask::{Error, ErrorKind, Graph, Key};
use std::cell::Cell;
use std::rc::Rc;

const fn send_sync<T: Send + Sync + ?Sized>() {}
const fn clone<T: Clone>() {}
const fn static_error<T: std::error::Error + Send + Sync + 'static>() {}

const _: () = {
    send_sync::<Delayed<i64>>();
    send_sync::<Delayed<Vec<String>>>();
    // A handle holds no `T`, so it is Send + Sync whatever `T` is.
    send_sync::<Delayed<Rc<i32>>>();
    send_sync::<Delayed<Cell<u8>>>();
    send_sync::<Delayed<*const u8>>();
    send_sync::<Graph>();
    send_sync::<Key>();
    send_sync::<Scheduler>();
    send_sync::<Error>();
    send_sync::<ErrorKind>();
    send_sync::<rdask::Result<Delayed<i64>>>();
    clone::<Delayed<i64>>();
    clone::<Delayed<Rc<i32>>>();
    clone::<Delayed<Cell<u8>>>();
    clone::<Graph>();
    clone::<Key>();
    clone::<Scheduler>();
    static_error::<Error>();
};

#[delayed]
fn inc(x: i64) -> i64 {
    x + 1
}

#[test]
fn handles_cross_threads() {
    let d = inc(inc(1));
    let g = d.graph();
    let k = d.key().clone();
    let s = Scheduler::threads(2);
    let e = "bogus".parse::<Scheduler>().unwrap_err();
    let (d2, g2, k2) = (d.clone(), g.clone(), k.clone());
    let shared = std::sync::Arc::new((d.clone(), g.clone(), s.clone()));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let (d, g, s) = &*shared;
                let a = d.compute_with(s).unwrap();
                let b = rdask::get_with::<i64>(g, d.key().clone(), &Scheduler::Sync).unwrap();
                (a, b)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), (3, 3));
    }
    let moved = std::thread::spawn(move || {
        assert_eq!(e.kind(), ErrorKind::Scheduler);
        (d2.compute_with(&s).unwrap(), g2.len(), k2)
    })
    .join()
    .unwrap();
    assert_eq!(moved, (3, 2, k));
}

#[test]
fn clones_are_the_same_task() {
    let d = inc(1);
    let c = d.clone();
    assert_eq!(d.key(), c.key());
    let g = d.graph();
    let g2 = g.clone();
    assert_eq!(g.keys().collect::<Vec<_>>(), g2.keys().collect::<Vec<_>>());
    let both = &d + &c;
    // One `inc` task, shared.
    assert_eq!(both.graph().len(), 2);
    assert_eq!(both.compute_with(&Scheduler::Sync).unwrap(), 4);
}
