//! `run_each` / `get_each`: keep going after failures. (Random DAGs against
//! a reference are in `proptest_dag.rs`.)

use rdask::prelude::*;
use rdask::{CancelToken, Compute, ErrorKind};

#[delayed]
fn check(x: u64) -> Result<u64, String> {
    if x % 3 == 0 {
        Err(format!("{x} is a multiple of 3"))
    } else {
        Ok(x)
    }
}

#[delayed]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Not `Clone`: a failed consumer must still give its inputs back, or a
/// healthy consumer of the same value would have to copy it.
struct Big(Vec<u64>);

#[delayed]
fn big(x: u64) -> Big {
    Big(vec![x; 4])
}

#[delayed]
fn sum_big(b: Big) -> u64 {
    b.0.iter().sum()
}

#[delayed]
fn len_big(b: &Big, gate: u64) -> u64 {
    b.0.len() as u64 + gate
}

#[test]
fn only_what_depends_on_a_failure_fails() {
    for s in [
        Scheduler::Sync,
        Scheduler::threads(2),
        Scheduler::processes(2),
    ] {
        let xs: Vec<_> = (1..=6).map(check).collect();
        // 3 and 6 fail; sums of neighbours fail where either side does.
        let outs: Vec<_> = xs.windows(2).map(|w| add(&w[0], &w[1])).collect();
        let each = Compute::new(&outs).scheduler(s.clone()).run_each();
        let got: Vec<Option<u64>> = each.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(got, [Some(3), None, None, Some(9), None], "{s}");
        let e = each[1].as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Task);
        assert_eq!(e.key(), Some(xs[2].key()), "{s}: {e}");
        // The same failure reaches outputs 1 and 2: both say so.
        assert_eq!(each[2].as_ref().unwrap_err().key(), Some(xs[2].key()));
        assert!(each[4]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("6 is a multiple of 3"));
        // Without keep-going, the first failure is the computation's.
        assert!(Compute::new(&outs).scheduler(s).run().is_err());
    }
}

#[test]
fn a_failed_consumer_gives_a_non_clone_input_back() {
    for s in [Scheduler::Sync, Scheduler::threads(2)] {
        let b = big(2);
        // `len_big` borrows `b`, then fails through its gate; `sum_big`
        // takes `b` by value and must get to move it.
        let failing = len_big(&b, check(3));
        let outs = vec![failing, sum_big(b)];
        let each = Compute::new(&outs).scheduler(s.clone()).run_each();
        assert!(each[0].is_err(), "{s}");
        assert_eq!(
            each[1].as_ref().ok(),
            Some(&8),
            "{s}: {:?}",
            each[1].as_ref().err()
        );
    }
}

#[test]
fn with_no_failure_it_is_run() {
    let outs: Vec<_> = (1..=5).map(|i| add(i, i)).collect();
    let each: Vec<u64> = Compute::new(&outs)
        .run_each()
        .into_iter()
        .collect::<rdask::Result<_>>()
        .unwrap();
    assert_eq!(each, Compute::new(&outs).run().unwrap());
}

#[test]
fn a_failure_of_the_whole_computation_is_every_outputs_error() {
    let token = CancelToken::new();
    token.cancel();
    let outs: Vec<_> = (1..=3).map(|i| add(i, i)).collect();
    let each = Compute::new(&outs).cancel_token(token).run_each();
    assert_eq!(each.len(), 3);
    assert!(each
        .iter()
        .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Cancelled));
}

#[test]
fn get_each_keeps_going_on_raw_graphs() {
    // A raw graph's function fails by panicking (its value is whatever it
    // returns, a `Result` included).
    fn half(x: u64) -> u64 {
        assert!(x % 2 == 0, "{x} is odd");
        x / 2
    }
    let g = graph! {
        "a" => 8_u64, "b" => 3_u64,
        "ha" => (half, "a"), "hb" => (half, "b"), "hha" => (half, "ha"),
    };
    let each = rdask::get_each::<u64>(&g, &["hha", "hb", "nope"]);
    assert_eq!(each.len(), 3);
    // A missing key fails the whole computation: every key says so.
    assert!(each
        .iter()
        .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::MissingKey));
    let each = rdask::get_each::<u64>(&g, &["hha", "hb"]);
    assert_eq!(
        each[0].as_ref().ok(),
        Some(&2),
        "{:?}",
        each[0].as_ref().err()
    );
    let e = each[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert!(e.to_string().contains("3 is odd"), "{e}");
}
