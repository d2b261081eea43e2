//! A 1,000,000-long chain builds, computes on Sync and threads(2), and drops
//! without overflowing the stack; so does a chain of `map`s never computed.
//! Each test runs on a thread with a small stack, so that any recursion
//! proportional to the chain's length fails here.

use rdask::prelude::*;

const N: usize = 1_000_000;

#[delayed]
fn inc(x: u64) -> u64 {
    x + 1
}

/// Runs `f` on a thread with a 1 MiB stack (less than the default).
fn small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn million_inc_chain_builds_computes_and_drops() {
    small_stack(|| {
        let mut d = inc(0);
        for _ in 1..N {
            d = inc(d);
        }
        assert_eq!(d.compute_with(&Scheduler::Sync).unwrap(), N as u64);
        assert_eq!(d.compute_with(&Scheduler::threads(2)).unwrap(), N as u64);
        drop(d);
    });
}

#[test]
fn million_map_chain_drops_without_computing() {
    small_stack(|| {
        let mut d = rdask::value(0_u64);
        for _ in 0..N {
            d = d.map(|x: u64| x + 1);
        }
        assert!(d.key().to_string().starts_with("map-"));
        drop(d);
    });
}

#[test]
fn million_operator_chain_computes_and_drops() {
    small_stack(|| {
        let mut d = rdask::value(0_u64);
        for _ in 0..N {
            d = &d + 1;
        }
        assert_eq!(d.compute_with(&Scheduler::threads(2)).unwrap(), N as u64);
        drop(d);
    });
}

#[delayed]
fn first(xs: Vec<u64>) -> u64 {
    xs[0] + 1
}

/// A chain through list arguments (`Vec<Delayed<X>>`): each list's items
/// join the drop's own stack like a plain input, or its drop would recurse
/// once per link.
#[test]
fn chain_through_list_arguments_drops_without_recursion() {
    small_stack(|| {
        let mut d = rdask::value(0_u64);
        for _ in 0..N / 4 {
            d = first(vec![d]);
        }
        assert!(d.key().to_string().starts_with("first-"));
        drop(d);
    });
}
