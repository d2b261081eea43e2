//! Random task graphs, thousands of them, on every scheduler. Each iteration
//! builds a random graph of 3 to ~48 nodes mixing `#[delayed]` functions on
//! serde types (they run in workers on processes), `&T` borrows,
//! `Vec<Delayed>` lists (moved and borrowed), `map` closures, operators,
//! pure calls (equal calls built apart are one task), tasks that return
//! `Err` or panic at a small rate, nested computes inside tasks, results
//! over 4 KiB (kept encoded between workers), `Clone` values that count
//! their live instances and values that are not `Clone` (borrowers plus one
//! mover). A quarter of the graphs are trees (each input moved into its one
//! consumer), which run without a plan.
//!
//! Every graph is checked against a plain evaluation of its description and
//! computed on Sync (the reference), `threads(2)`, `threads(1)`, a pool of
//! our own and, every few iterations, `processes(2)`: values must agree, a
//! failure must be one of the tasks that can fail first (kind and key), and
//! after each iteration every counted value has been dropped exactly once.
//! A second test computes random graphs on `processes(2)` while a thread
//! `kill -9`s a random worker every 10–50 ms: each result is right or a
//! `WorkerLost` error, never a wrong value or a hang, nothing leaks, and
//! the pool works afterwards.
//!
//! The default run is short (a few seconds in a debug build). Seeds are
//! deterministic: iteration `i` uses seed `RDASK_STRESS_SEED + i`. The long
//! run, in release:
//!
//! ```sh
//! RDASK_STRESS_ITERS=100000 RDASK_STRESS_KILL_ITERS=2000 \
//!     cargo test --release --test stress_dag -- --nocapture
//! ```
//!
//! * `RDASK_STRESS_ITERS`: graphs in the all-schedulers test (default 2000);
//! * `RDASK_STRESS_KILL_ITERS`: graphs in the worker-kill test (default 200);
//! * `RDASK_STRESS_SEED`: the first seed (default 1);
//! * `RDASK_STRESS_PROCS_EVERY`: processes every k-th graph (default 4; 0:
//!   never);
//! * `RDASK_STRESS_KILL_MS`: a worker is killed every `KILL_MS / 5` to
//!   `KILL_MS` milliseconds (default 50);
//! * `RDASK_STRESS_WATCHDOG_SECS`: how long one iteration may take before
//!   the test fails with its seed (default 60).
//!
//! A failure names its seed and the command that replays it alone:
//! `RDASK_STRESS_SEED=<seed> RDASK_STRESS_ITERS=1 cargo test --test
//! stress_dag -- random_graphs` (iteration 0 includes processes), or
//! `RDASK_STRESS_KILL_ITERS=1` and `-- killed_workers` for the kill test
//! (the same graph; the kills' timing is not replayed).

use rdask::prelude::*;
use rdask::{ErrorKind, Key};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Settings.

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

/// One test at a time in this binary: both share the census and the
/// `processes(2)` pool (the kill test must not kill the other's workers).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Randomness: splitmix64, seeded per iteration.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn small(&mut self) -> i64 {
        (self.next() % 100_000) as i64
    }
}

// ---------------------------------------------------------------------------
// Counted values: every instance has an id in a census; dropping one that
// is not there (dropped twice) is recorded, and so is a count below zero.

struct Census {
    name: &'static str,
    live: AtomicI64,
    ids: Mutex<BTreeSet<u64>>,
    bad_drops: AtomicU64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static TRACKED: Census = Census::new("Tracked");
static UNIQUE: Census = Census::new("Unique");

impl Census {
    const fn new(name: &'static str) -> Census {
        Census {
            name,
            live: AtomicI64::new(0),
            ids: Mutex::new(BTreeSet::new()),
            bad_drops: AtomicU64::new(0),
        }
    }

    fn ids(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn born(&self) -> u64 {
        let id = NEXT_ID.fetch_add(1, SeqCst);
        self.live.fetch_add(1, SeqCst);
        self.ids().insert(id);
        id
    }

    fn died(&self, id: u64) {
        let before = self.live.fetch_sub(1, SeqCst);
        let known = self.ids().remove(&id);
        if before <= 0 || !known {
            self.bad_drops.fetch_add(1, SeqCst);
        }
    }

    /// What is wrong now (leaks, double drops), and a fresh start.
    fn audit(&self) -> Option<String> {
        let live = self.live.swap(0, SeqCst);
        let bad = self.bad_drops.swap(0, SeqCst);
        let leaked = std::mem::take(&mut *self.ids());
        if live == 0 && bad == 0 && leaked.is_empty() {
            return None;
        }
        Some(format!(
            "{}: live count {live} (want 0), {} instances never dropped, \
             {bad} drops of an instance not alive (dropped twice)",
            self.name,
            leaked.len()
        ))
    }
}

/// `Clone`, serde: runs in workers on processes; copies are counted.
#[derive(Debug)]
struct Tracked {
    id: u64,
    v: i64,
}

impl Tracked {
    fn new(v: i64) -> Tracked {
        Tracked {
            id: TRACKED.born(),
            v,
        }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Tracked {
        Tracked::new(self.v)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        TRACKED.died(self.id);
    }
}

impl Serialize for Tracked {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tracked, D::Error> {
        i64::deserialize(d).map(Tracked::new)
    }
}

/// Neither `Clone` nor serde: runs in the parent, one by-value consumer.
#[derive(Debug)]
struct Unique {
    id: u64,
    v: i64,
}

impl Unique {
    fn new(v: i64) -> Unique {
        Unique {
            id: UNIQUE.born(),
            v,
        }
    }
}

impl Drop for Unique {
    fn drop(&mut self) {
        UNIQUE.died(self.id);
    }
}

// ---------------------------------------------------------------------------
// The tasks. Each `#[delayed]` body is a plain function below, which the
// model evaluation calls too. Values stay small (under 2^34 in magnitude),
// so operators never overflow.

const MASK: i64 = 0xFFFF_FFFF;

fn mix(a: i64, b: i64) -> i64 {
    (a.wrapping_mul(0x9E37_79B1).wrapping_add(b) ^ (a >> 13)) & MASK
}

fn fold(salt: i64, xs: impl IntoIterator<Item = i64>) -> i64 {
    xs.into_iter().fold(salt, mix)
}

/// A vector whose encoding is over 4 KiB (so it stays encoded in the
/// parent between workers on processes).
fn big_vec(a: i64) -> Vec<i64> {
    (0..1000).map(|i| mix(a, i) | 1 << 31).collect()
}

const FAIL_ERR: u8 = 1;
const FAIL_PANIC: u8 = 2;

/// The error of a task that fails on purpose.
#[derive(Debug)]
struct Injected(i64);

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "injected error {}", self.0)
    }
}

impl std::error::Error for Injected {}

/// Keeps the panics injected on purpose off stderr (in this process and in
/// each worker: it is called by the task about to panic).
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !panic_message(info.payload()).starts_with("injected") {
                default(info)
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(not a string)".to_string()
    }
}

fn injected_panic(a: i64) -> ! {
    quiet_injected_panics();
    panic!("injected panic {a}")
}

#[delayed]
fn leaf(salt: i64) -> i64 {
    mix(salt, 1)
}

#[delayed(pure)]
fn pure_leaf(v: i64) -> i64 {
    mix(v, 2)
}

#[delayed(pure)]
fn pure_mix(a: i64, salt: i64) -> i64 {
    mix(a, salt + 3)
}

#[delayed]
fn add(a: i64, b: i64) -> i64 {
    mix(a, b)
}

fn add_ref_plain(a: i64, b: i64) -> i64 {
    mix(mix(a, 5), b)
}

#[delayed]
fn add_ref(a: &i64, b: &i64) -> i64 {
    add_ref_plain(*a, *b)
}

fn fallible_plain(a: i64, mode: u8) -> Result<i64, Injected> {
    match mode {
        FAIL_ERR => Err(Injected(a)),
        FAIL_PANIC => injected_panic(a),
        _ => Ok(mix(a, 7)),
    }
}

#[delayed]
fn fallible(a: i64, mode: u8) -> Result<i64, Injected> {
    fallible_plain(a, mode)
}

#[delayed]
fn sum(xs: Vec<i64>) -> i64 {
    fold(11, xs)
}

#[delayed]
fn sum_ref(xs: &[i64]) -> i64 {
    fold(13, xs.iter().copied())
}

fn nested_plain(a: i64, n: u8) -> i64 {
    let x = (0..n).fold(a, |x, i| mix(x, i64::from(i)));
    fold(11, [x, mix(a, 1), add_ref_plain(x, x)])
}

/// A computation of its own, on the scheduler running this task (threads
/// inside a worker on processes).
#[delayed]
fn nested(a: i64, n: u8) -> i64 {
    let mut x = rdask::value(a);
    for i in 0..n {
        x = add(&x, i64::from(i));
    }
    let y = sum(vec![x.clone(), leaf(a), add_ref(&x, &x)]);
    y.compute()
        .unwrap_or_else(|e| panic!("the nested compute failed: {e}"))
}

/// The schedulers a closure computes on explicitly, inside a task.
fn explicit(which: u8) -> Scheduler {
    match which % 3 {
        0 => Scheduler::Sync,
        1 => Scheduler::threads(1),
        _ => Scheduler::threads(2),
    }
}

#[delayed]
fn mk_tracked(a: i64) -> Tracked {
    Tracked::new(mix(a, 19))
}

#[delayed]
fn eat_tracked(t: Tracked, b: i64) -> i64 {
    mix(t.v, b)
}

#[delayed]
fn peek_tracked(t: &Tracked) -> i64 {
    mix(t.v, 23)
}

#[delayed]
fn tracked_list(ts: Vec<Tracked>) -> i64 {
    fold(29, ts.iter().map(|t| t.v))
}

#[delayed]
fn mk_unique(a: i64) -> Unique {
    Unique::new(mix(a, 37))
}

#[delayed]
fn eat_unique(u: Unique) -> i64 {
    mix(u.v, 41)
}

#[delayed]
fn peek_unique(u: &Unique) -> i64 {
    mix(u.v, 43)
}

#[delayed]
fn mk_big(a: i64) -> Vec<i64> {
    big_vec(a)
}

#[delayed]
fn eat_big(v: Vec<i64>) -> i64 {
    fold(47, v.into_iter().step_by(97))
}

fn peek_big_plain(v: &[i64]) -> i64 {
    fold(53, v.iter().rev().step_by(89).copied())
}

#[delayed]
fn peek_big(v: &Vec<i64>) -> i64 {
    peek_big_plain(v)
}

/// A remote task that takes a while: more kills land on a busy worker.
#[delayed]
fn slow(a: i64, millis: u8) -> i64 {
    std::thread::sleep(Duration::from_millis(u64::from(millis)));
    mix(a, 59)
}

// ---------------------------------------------------------------------------
// A graph's description.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int,
    Tracked,
    Unique,
    Big,
}

#[derive(Clone, Debug)]
enum Spec {
    Leaf(i64),
    Value(i64),
    PureLeaf(i64),
    PureMix(usize, i64),
    Add(usize, usize),
    AddRef(usize, usize),
    /// Input, failure mode (0, `FAIL_ERR`, `FAIL_PANIC`).
    Fallible(usize, u8),
    Sum(Vec<usize>),
    SumRef(Vec<usize>),
    /// A closure; panics with `FAIL_PANIC`.
    Map(usize, u8),
    /// Operators on two inputs, which of several forms.
    Op(usize, usize, u8),
    Nested(usize, u8),
    /// A closure computing a small graph on `explicit(w)`.
    NestedExplicit(usize, u8),
    Slow(usize, u8),
    MkTracked(usize),
    ValueTracked(i64),
    EatTracked(usize, usize),
    PeekTracked(usize),
    TrackedList(Vec<usize>),
    MapTracked(usize),
    MkUnique(usize),
    EatUnique(usize),
    PeekUnique(usize),
    MkBig(usize),
    EatBig(usize),
    PeekBig(usize),
    MapBig(usize),
}

impl Spec {
    fn ty(&self) -> Ty {
        match self {
            Spec::MkTracked(_) | Spec::ValueTracked(_) | Spec::MapTracked(_) => Ty::Tracked,
            Spec::MkUnique(_) => Ty::Unique,
            Spec::MkBig(_) => Ty::Big,
            _ => Ty::Int,
        }
    }

    fn inputs(&self) -> Vec<usize> {
        match self {
            Spec::Leaf(_) | Spec::Value(_) | Spec::PureLeaf(_) | Spec::ValueTracked(_) => vec![],
            Spec::Add(a, b) | Spec::AddRef(a, b) | Spec::Op(a, b, _) | Spec::EatTracked(a, b) => {
                vec![*a, *b]
            }
            Spec::Sum(v) | Spec::SumRef(v) | Spec::TrackedList(v) => v.clone(),
            Spec::PureMix(a, _)
            | Spec::Fallible(a, _)
            | Spec::Map(a, _)
            | Spec::Nested(a, _)
            | Spec::NestedExplicit(a, _)
            | Spec::Slow(a, _)
            | Spec::MkTracked(a)
            | Spec::PeekTracked(a)
            | Spec::MapTracked(a)
            | Spec::MkUnique(a)
            | Spec::EatUnique(a)
            | Spec::PeekUnique(a)
            | Spec::MkBig(a)
            | Spec::EatBig(a)
            | Spec::PeekBig(a)
            | Spec::MapBig(a) => vec![*a],
        }
    }
}

#[derive(Clone, Debug)]
struct Dag {
    specs: Vec<Spec>,
    outputs: Vec<usize>,
    /// Every input moved into its one consumer.
    tree: bool,
}

#[derive(Clone, Copy)]
struct GenConfig {
    /// Percent of fallible tasks (and closures) that fail.
    fail_pct: u64,
    /// Add slow remote tasks (the kill test).
    slow: bool,
}

struct Gen {
    specs: Vec<Spec>,
    /// Consumed by a later node.
    used: Vec<bool>,
    eaten_unique: Vec<usize>,
    tree: bool,
}

impl Gen {
    /// A random earlier node of type `ty`: in a tree, one not consumed yet
    /// and not in `exclude`.
    fn pick(&self, rng: &mut Rng, ty: Ty, exclude: &[usize]) -> Option<usize> {
        let cands: Vec<usize> = (0..self.specs.len())
            .filter(|&i| self.specs[i].ty() == ty)
            .filter(|&i| !self.tree || (!self.used[i] && !exclude.contains(&i)))
            .collect();
        (!cands.is_empty()).then(|| cands[rng.below(cands.len())])
    }

    /// Up to `max` distinct-in-a-tree picks of type `ty`.
    fn picks(&self, rng: &mut Rng, ty: Ty, max: usize) -> Option<Vec<usize>> {
        let mut v = Vec::new();
        for _ in 0..1 + rng.below(max) {
            if let Some(x) = self.pick(rng, ty, &v) {
                v.push(x);
            }
        }
        (!v.is_empty()).then_some(v)
    }

    fn mode(rng: &mut Rng, cfg: GenConfig) -> u8 {
        if rng.chance(cfg.fail_pct) {
            if rng.chance(50) {
                FAIL_ERR
            } else {
                FAIL_PANIC
            }
        } else {
            0
        }
    }

    /// One node, or `None` when the kind drawn has no inputs to take.
    fn propose(&self, rng: &mut Rng, cfg: GenConfig) -> Option<Spec> {
        let Some(a) = self.pick(rng, Ty::Int, &[]) else {
            return Some(if rng.chance(50) {
                Spec::Leaf(rng.small())
            } else {
                Spec::Value(rng.small())
            });
        };
        if cfg.slow && rng.chance(10) {
            return Some(Spec::Slow(a, 1 + rng.below(5) as u8));
        }
        let two = |rng: &mut Rng| self.pick(rng, Ty::Int, &[a]).map(|b| (a, b));
        let spec = match rng.below(100) {
            0..=7 => Spec::Leaf(rng.small()),
            8..=11 => Spec::Value(rng.small()),
            // Few distinct arguments: equal pure calls are one task.
            12..=15 => Spec::PureLeaf(rng.below(4) as i64),
            16..=19 => Spec::PureMix(a, rng.below(2) as i64),
            20..=29 => two(rng).map(|(a, b)| Spec::Add(a, b))?,
            30..=35 => two(rng).map(|(a, b)| Spec::AddRef(a, b))?,
            36..=43 => Spec::Fallible(a, Gen::mode(rng, cfg)),
            44..=48 => Spec::Sum(self.picks(rng, Ty::Int, 6)?),
            49..=52 => Spec::SumRef(self.picks(rng, Ty::Int, 6)?),
            53..=57 => Spec::Map(a, Gen::mode(rng, cfg)),
            58..=63 => two(rng).map(|(a, b)| Spec::Op(a, b, rng.below(5) as u8))?,
            64..=66 => Spec::Nested(a, rng.below(5) as u8),
            67..=68 => Spec::NestedExplicit(a, rng.below(3) as u8),
            69..=72 => Spec::MkTracked(a),
            73..=74 => Spec::ValueTracked(rng.small()),
            75..=77 => Spec::EatTracked(self.pick(rng, Ty::Tracked, &[])?, a),
            78..=79 => Spec::PeekTracked(self.pick(rng, Ty::Tracked, &[])?),
            80..=81 => Spec::TrackedList(self.picks(rng, Ty::Tracked, 4)?),
            82..=83 => Spec::MapTracked(self.pick(rng, Ty::Tracked, &[])?),
            84..=86 => Spec::MkUnique(a),
            87..=88 => {
                let u = self.pick(rng, Ty::Unique, &[])?;
                if self.eaten_unique.contains(&u) {
                    return None;
                }
                Spec::EatUnique(u)
            }
            89..=91 => Spec::PeekUnique(self.pick(rng, Ty::Unique, &[])?),
            92..=93 => Spec::MkBig(a),
            94..=95 => Spec::EatBig(self.pick(rng, Ty::Big, &[])?),
            96..=97 => Spec::PeekBig(self.pick(rng, Ty::Big, &[])?),
            _ => Spec::MapBig(self.pick(rng, Ty::Big, &[])?),
        };
        Some(spec)
    }

    fn push(&mut self, spec: Spec) {
        for i in spec.inputs() {
            self.used[i] = true;
        }
        if let Spec::EatUnique(u) = spec {
            self.eaten_unique.push(u);
        }
        self.specs.push(spec);
        self.used.push(false);
    }
}

fn generate(rng: &mut Rng, cfg: GenConfig) -> Dag {
    let n = 3 + rng.below(46);
    let mut g = Gen {
        specs: Vec::new(),
        used: Vec::new(),
        eaten_unique: Vec::new(),
        tree: rng.chance(25),
    };
    while g.specs.len() < n {
        if let Some(s) = g.propose(rng, cfg) {
            g.push(s);
        }
    }
    // In a tree, every value nothing consumed yet goes into the one root
    // (moved), so that the whole tree is computed; otherwise half of them
    // do, and the rest are built, never computed, and dropped.
    for k in 0..g.specs.len() {
        if !g.used[k] && (g.tree || rng.chance(50)) {
            match g.specs[k].ty() {
                Ty::Int => {}
                Ty::Tracked => g.push(Spec::TrackedList(vec![k])),
                Ty::Unique => g.push(Spec::EatUnique(k)),
                Ty::Big => g.push(Spec::EatBig(k)),
            }
        }
    }
    let ints = |g: &Gen| -> Vec<usize> {
        (0..g.specs.len())
            .filter(|&i| g.specs[i].ty() == Ty::Int)
            .collect()
    };
    let mut sinks: Vec<usize> = ints(&g).into_iter().filter(|&i| !g.used[i]).collect();
    if sinks.is_empty() {
        // Every int was consumed (by values never computed): the last one.
        sinks.extend(ints(&g).last());
    }
    let outputs = if g.tree {
        if sinks.len() > 1 {
            g.push(Spec::Sum(sinks));
            vec![g.specs.len() - 1]
        } else {
            sinks
        }
    } else {
        // Mostly values nothing else consumes (the deepest ones), at times
        // one that is also an input of others.
        let mut outs: Vec<usize> = (0..1 + rng.below(3))
            .map(|_| sinks[rng.below(sinks.len())])
            .collect();
        if rng.chance(30) {
            let all = ints(&g);
            outs.push(all[rng.below(all.len())]);
        }
        outs
    };
    Dag {
        specs: g.specs,
        outputs,
        tree: g.tree,
    }
}

// ---------------------------------------------------------------------------
// The model: a plain evaluation of the description.

#[derive(Clone)]
enum Mv {
    /// An int, or the content of a `Tracked` or `Unique`.
    I(i64),
    V(Vec<i64>),
}

impl Mv {
    fn i(&self) -> i64 {
        match self {
            Mv::I(x) => *x,
            Mv::V(_) => unreachable!("not an int"),
        }
    }

    fn v(&self) -> &[i64] {
        match self {
            Mv::V(v) => v,
            Mv::I(_) => unreachable!("not a vector"),
        }
    }
}

fn op_plain(a: i64, b: i64, form: u8) -> i64 {
    match form {
        0 => (a + b) % 1_000_003,
        1 => (a - b) % 65_537,
        2 => a ^ b,
        3 => (7 - a % 1000) ^ b,
        _ => !(a | b) + (a % 1000) * (b % 1000),
    }
}

fn op(a: Delayed<i64>, b: Delayed<i64>, form: u8, by_ref: bool) -> Delayed<i64> {
    match (form, by_ref) {
        (0, true) => (&a + &b) % 1_000_003,
        (0, false) => (a + b) % 1_000_003,
        (1, _) => (a - b) % 65_537,
        (2, _) => a ^ b,
        (3, _) => (7 - a % 1000) ^ b,
        _ => !(&a | &b) + (a % 1000) * (b % 1000),
    }
}

/// What a computation of the outputs must give.
#[derive(Debug)]
enum Expect {
    Values(Vec<i64>),
    /// The nodes that may fail first, and how: the outputs need them and
    /// none of their inputs fail.
    Fails(Vec<(usize, ErrorKind)>),
}

fn model(dag: &Dag) -> Expect {
    let n = dag.specs.len();
    let mut needed = vec![false; n];
    let mut stack = dag.outputs.clone();
    while let Some(i) = stack.pop() {
        if !needed[i] {
            needed[i] = true;
            stack.extend(dag.specs[i].inputs());
        }
    }
    // `None`: not needed, or an input failed.
    let mut vals: Vec<Option<Mv>> = vec![None; n];
    let mut fails = Vec::new();
    for (k, spec) in dag.specs.iter().enumerate() {
        if !needed[k] || spec.inputs().iter().any(|&j| vals[j].is_none()) {
            continue;
        }
        let i = |j: usize| vals[j].as_ref().expect("ran").i();
        let is = |js: &[usize]| js.iter().map(|&j| i(j)).collect::<Vec<_>>();
        let r: Result<Mv, ErrorKind> = match spec {
            Spec::Leaf(s) => Ok(Mv::I(mix(*s, 1))),
            Spec::Value(v) => Ok(Mv::I(*v)),
            Spec::PureLeaf(v) => Ok(Mv::I(mix(*v, 2))),
            Spec::PureMix(a, s) => Ok(Mv::I(mix(i(*a), s + 3))),
            Spec::Add(a, b) => Ok(Mv::I(mix(i(*a), i(*b)))),
            Spec::AddRef(a, b) => Ok(Mv::I(add_ref_plain(i(*a), i(*b)))),
            Spec::Fallible(a, mode) => match *mode {
                FAIL_ERR => Err(ErrorKind::Task),
                FAIL_PANIC => Err(ErrorKind::Panic),
                _ => Ok(Mv::I(mix(i(*a), 7))),
            },
            Spec::Sum(v) => Ok(Mv::I(fold(11, is(v)))),
            Spec::SumRef(v) => Ok(Mv::I(fold(13, is(v)))),
            Spec::Map(a, mode) => match *mode {
                FAIL_PANIC => Err(ErrorKind::Panic),
                _ => Ok(Mv::I(mix(i(*a), 17))),
            },
            Spec::Op(a, b, form) => Ok(Mv::I(op_plain(i(*a), i(*b), *form))),
            Spec::Nested(a, m) => Ok(Mv::I(nested_plain(i(*a), *m))),
            Spec::NestedExplicit(a, _) => Ok(Mv::I(mix(i(*a), mix(3, 1)))),
            Spec::Slow(a, _) => Ok(Mv::I(mix(i(*a), 59))),
            Spec::MkTracked(a) => Ok(Mv::I(mix(i(*a), 19))),
            Spec::ValueTracked(v) => Ok(Mv::I(*v)),
            Spec::EatTracked(t, b) => Ok(Mv::I(mix(i(*t), i(*b)))),
            Spec::PeekTracked(t) => Ok(Mv::I(mix(i(*t), 23))),
            Spec::TrackedList(v) => Ok(Mv::I(fold(29, is(v)))),
            Spec::MapTracked(t) => Ok(Mv::I(mix(i(*t), 31))),
            Spec::MkUnique(a) => Ok(Mv::I(mix(i(*a), 37))),
            Spec::EatUnique(u) => Ok(Mv::I(mix(i(*u), 41))),
            Spec::PeekUnique(u) => Ok(Mv::I(mix(i(*u), 43))),
            Spec::MkBig(a) => Ok(Mv::V(big_vec(i(*a)))),
            Spec::EatBig(b) | Spec::PeekBig(b) | Spec::MapBig(b) => {
                let v = vals[*b].as_ref().expect("ran").v();
                Ok(Mv::I(match spec {
                    Spec::EatBig(_) => fold(47, v.iter().copied().step_by(97)),
                    Spec::PeekBig(_) => peek_big_plain(v),
                    _ => peek_big_plain(v) ^ 1,
                }))
            }
        };
        match r {
            Ok(v) => vals[k] = Some(v),
            Err(kind) => fails.push((k, kind)),
        }
    }
    if fails.is_empty() {
        Expect::Values(
            dag.outputs
                .iter()
                .map(|&o| vals[o].as_ref().expect("no failure").i())
                .collect(),
        )
    } else {
        Expect::Fails(fails)
    }
}

// ---------------------------------------------------------------------------
// Building the graph.

#[derive(Clone)]
enum D {
    I(Delayed<i64>),
    T(Delayed<Tracked>),
    U(Delayed<Unique>),
    B(Delayed<Vec<i64>>),
}

struct Built {
    /// Each node's key (several nodes share one when pure calls are equal).
    keys: Vec<Key>,
    outputs: Vec<Delayed<i64>>,
    /// Every handle not moved into a consumer, dropped with the graph.
    _slots: Vec<Option<D>>,
}

struct Builder {
    slots: Vec<Option<D>>,
    tree: bool,
}

impl Builder {
    /// Node `k`'s handle: moved out in a tree, a clone otherwise.
    fn get(&mut self, k: usize) -> D {
        if self.tree {
            self.slots[k].take().expect("a tree uses each node once")
        } else {
            self.slots[k].clone().expect("built")
        }
    }

    fn i(&mut self, k: usize) -> Delayed<i64> {
        match self.get(k) {
            D::I(d) => d,
            _ => unreachable!("node {k} is not an int"),
        }
    }

    fn is(&mut self, ks: &[usize]) -> Vec<Delayed<i64>> {
        ks.iter().map(|&k| self.i(k)).collect()
    }

    fn t(&mut self, k: usize) -> Delayed<Tracked> {
        match self.get(k) {
            D::T(d) => d,
            _ => unreachable!("node {k} is not a Tracked"),
        }
    }

    fn u(&mut self, k: usize) -> Delayed<Unique> {
        match self.get(k) {
            D::U(d) => d,
            _ => unreachable!("node {k} is not a Unique"),
        }
    }

    fn b(&mut self, k: usize) -> Delayed<Vec<i64>> {
        match self.get(k) {
            D::B(d) => d,
            _ => unreachable!("node {k} is not a Big"),
        }
    }
}

fn build(dag: &Dag) -> Built {
    let mut b = Builder {
        slots: Vec::with_capacity(dag.specs.len()),
        tree: dag.tree,
    };
    let mut keys = Vec::with_capacity(dag.specs.len());
    for (k, spec) in dag.specs.iter().enumerate() {
        // Outside trees, half the calls borrow the handles (`&d`) and half
        // take clones: the same graph either way.
        let by_ref = !dag.tree && k % 2 == 0;
        let d = match spec {
            Spec::Leaf(s) => D::I(leaf(*s)),
            Spec::Value(v) => D::I(rdask::value(*v)),
            Spec::PureLeaf(v) => D::I(pure_leaf(*v)),
            Spec::PureMix(a, s) => D::I(pure_mix(b.i(*a), *s)),
            Spec::Add(x, y) => {
                let (x, y) = (b.i(*x), b.i(*y));
                D::I(if by_ref { add(&x, &y) } else { add(x, y) })
            }
            Spec::AddRef(x, y) => {
                let (x, y) = (b.i(*x), b.i(*y));
                D::I(if by_ref {
                    add_ref(&x, &y)
                } else {
                    add_ref(x, y)
                })
            }
            Spec::Fallible(a, mode) => D::I(fallible(b.i(*a), *mode)),
            Spec::Sum(v) => {
                let xs = b.is(v);
                D::I(if by_ref { sum(&xs[..]) } else { sum(xs) })
            }
            Spec::SumRef(v) => {
                let xs = b.is(v);
                D::I(if by_ref { sum_ref(&xs) } else { sum_ref(xs) })
            }
            Spec::Map(a, mode) => {
                let mode = *mode;
                D::I(b.i(*a).map(move |x: i64| {
                    if mode == FAIL_PANIC {
                        injected_panic(x)
                    }
                    mix(x, 17)
                }))
            }
            Spec::Op(x, y, form) => D::I(op(b.i(*x), b.i(*y), *form, by_ref)),
            Spec::Nested(a, n) => D::I(nested(b.i(*a), *n)),
            Spec::NestedExplicit(a, w) => {
                let w = *w;
                D::I(b.i(*a).map(move |x: i64| {
                    add(rdask::value(x), leaf(3))
                        .compute_with(&explicit(w))
                        .unwrap_or_else(|e| panic!("the nested compute failed: {e}"))
                }))
            }
            Spec::Slow(a, ms) => D::I(slow(b.i(*a), *ms)),
            Spec::MkTracked(a) => D::T(mk_tracked(b.i(*a))),
            Spec::ValueTracked(v) => D::T(rdask::value(Tracked::new(*v))),
            Spec::EatTracked(t, x) => D::I(eat_tracked(b.t(*t), b.i(*x))),
            Spec::PeekTracked(t) => {
                let t = b.t(*t);
                D::I(if by_ref {
                    peek_tracked(&t)
                } else {
                    peek_tracked(t)
                })
            }
            Spec::TrackedList(v) => {
                let ts: Vec<_> = v.iter().map(|&k| b.t(k)).collect();
                D::I(tracked_list(ts))
            }
            Spec::MapTracked(t) => D::T(b.t(*t).map(|t: Tracked| Tracked::new(mix(t.v, 31)))),
            Spec::MkUnique(a) => D::U(mk_unique(b.i(*a))),
            Spec::EatUnique(u) => D::I(eat_unique(b.u(*u))),
            Spec::PeekUnique(u) => {
                let u = b.u(*u);
                D::I(if by_ref {
                    peek_unique(&u)
                } else {
                    peek_unique(u)
                })
            }
            Spec::MkBig(a) => D::B(mk_big(b.i(*a))),
            Spec::EatBig(x) => D::I(eat_big(b.b(*x))),
            Spec::PeekBig(x) => {
                let x = b.b(*x);
                D::I(if by_ref { peek_big(&x) } else { peek_big(x) })
            }
            Spec::MapBig(x) => D::I(b.b(*x).map(|v: Vec<i64>| peek_big_plain(&v) ^ 1)),
        };
        keys.push(match &d {
            D::I(d) => d.key().clone(),
            D::T(d) => d.key().clone(),
            D::U(d) => d.key().clone(),
            D::B(d) => d.key().clone(),
        });
        b.slots.push(Some(d));
    }
    let outputs = dag
        .outputs
        .iter()
        .map(|&o| match &b.slots[o] {
            Some(D::I(d)) => d.clone(),
            _ => unreachable!("output {o} is an int nothing moved"),
        })
        .collect();
    Built {
        keys,
        outputs,
        _slots: b.slots,
    }
}

// ---------------------------------------------------------------------------
// Running and judging.

#[derive(Debug)]
enum Outcome {
    Values(Vec<i64>),
    Failed {
        kind: ErrorKind,
        key: Option<Key>,
        message: String,
    },
    /// A panic came out of `compute` itself.
    Escaped(String),
}

fn run(outputs: &[Delayed<i64>], s: &Scheduler) -> Outcome {
    let r = catch_unwind(AssertUnwindSafe(|| {
        if let [one] = outputs {
            one.compute_with(s).map(|v| vec![v])
        } else {
            rdask::compute_with(outputs, s)
        }
    }));
    match r {
        Ok(Ok(v)) => Outcome::Values(v),
        Ok(Err(e)) => Outcome::Failed {
            kind: e.kind(),
            key: e.key().cloned(),
            message: e.to_string(),
        },
        Err(payload) => Outcome::Escaped(panic_message(&*payload)),
    }
}

/// `Ok` when `got` is what the model allows; `allow_lost`: a `WorkerLost`
/// error for one of the graph's tasks is allowed too.
fn judge(expect: &Expect, got: &Outcome, keys: &[Key], allow_lost: bool) -> Result<(), String> {
    match (expect, got) {
        (_, Outcome::Escaped(m)) => Err(format!("a panic escaped compute: {m}")),
        (Expect::Values(want), Outcome::Values(v)) if want == v => Ok(()),
        (
            _,
            Outcome::Failed {
                kind: ErrorKind::WorkerLost,
                key: Some(k),
                ..
            },
        ) if allow_lost && keys.contains(k) => Ok(()),
        (
            Expect::Fails(cands),
            Outcome::Failed {
                kind,
                key: Some(k),
                message,
            },
        ) if cands.iter().any(|&(id, ck)| ck == *kind && keys[id] == *k)
            && message.contains("injected") =>
        {
            Ok(())
        }
        _ => Err("not what the model allows".to_string()),
    }
}

/// What the two tests report for a failed check.
fn report(
    what: &str,
    seed: u64,
    dag: &Dag,
    expect: &Expect,
    got: &Outcome,
    why: &str,
    replay: &str,
) -> String {
    let specs: String = dag
        .specs
        .iter()
        .enumerate()
        .map(|(i, s)| format!("\n    {i}: {s:?}"))
        .collect();
    format!(
        "seed {seed}, {what}: {why}\n  expected {expect:?}\n  got {got:?}\n  \
         tree {} outputs {:?} nodes:{specs}\n  replay: RDASK_STRESS_SEED={seed} {replay}",
        dag.tree, dag.outputs
    )
}

/// The test's result: the first few failures, if any.
fn verdict(failures: &[String]) -> Result<(), String> {
    if failures.is_empty() {
        return Ok(());
    }
    let shown = failures.len().min(10);
    Err(format!(
        "{} checks failed; the first {shown}:\n{}",
        failures.len(),
        failures[..shown].join("\n")
    ))
}

fn audit_census() -> Option<String> {
    let t = TRACKED.audit();
    let u = UNIQUE.audit();
    match (t, u) {
        (None, None) => None,
        (t, u) => Some([t, u].into_iter().flatten().collect::<Vec<_>>().join("; ")),
    }
}

// ---------------------------------------------------------------------------
// The watchdog: the body runs on its own thread and beats once an
// iteration; no beat for the limit fails the test (with the phase it was
// in) instead of hanging it.

#[derive(Default)]
struct Progress {
    beats: AtomicU64,
    phase: Mutex<String>,
}

impl Progress {
    /// A new iteration: the watchdog's clock restarts.
    fn beat(&self, phase: String) {
        self.phase(phase);
        self.beats.fetch_add(1, SeqCst);
    }

    fn phase(&self, phase: String) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    fn current(&self) -> String {
        self.phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Runs `body` under the watchdog; its `Err` fails the test.
fn watched(body: impl FnOnce(&Progress) -> Result<(), String> + Send + 'static) {
    let limit = Duration::from_secs(env_u64("RDASK_STRESS_WATCHDOG_SECS", 60));
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    let handle = std::thread::Builder::new()
        .name("stress".to_string())
        .spawn(move || body(&p))
        .expect("a thread");
    let mut last = 0;
    let mut since = Instant::now();
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
        let now = progress.beats.load(SeqCst);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > limit {
            panic!(
                "watchdog: no iteration finished in {limit:?}; stuck at {}",
                progress.current()
            );
        }
    }
    match handle.join() {
        Ok(Ok(())) => {}
        Ok(Err(failures)) => panic!("{failures}"),
        Err(payload) => panic!(
            "{}\n  (at {})",
            panic_message(&*payload),
            progress.current()
        ),
    }
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn random_graphs_agree_on_every_scheduler_and_drop_every_value_once() {
    let _serial = serial();
    quiet_injected_panics();
    let iters = env_u64("RDASK_STRESS_ITERS", 2000);
    let seed0 = env_u64("RDASK_STRESS_SEED", 1);
    let procs_every = env_u64("RDASK_STRESS_PROCS_EVERY", 4);
    watched(move |progress| {
        let own = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .expect("a pool"),
        );
        let schedulers = [
            Scheduler::threads(2),
            Scheduler::threads(1),
            Scheduler::pool(own),
        ];
        let procs = Scheduler::processes(2);
        let cfg = GenConfig {
            fail_pct: 10,
            slow: false,
        };
        let replay = "RDASK_STRESS_ITERS=1 cargo test --test stress_dag -- random_graphs";
        let started = Instant::now();
        let (mut failures, mut failed_graphs, mut trees, mut on_procs) = (Vec::new(), 0, 0, 0);
        for it in 0..iters {
            let seed = seed0.wrapping_add(it);
            progress.beat(format!("iteration {it}, seed {seed}: building"));
            let mut rng = Rng::new(seed);
            let dag = generate(&mut rng, cfg);
            let expect = model(&dag);
            trees += u64::from(dag.tree);
            failed_graphs += u64::from(matches!(expect, Expect::Fails(_)));
            let built = build(&dag);
            let mut check = |what: &str, got: &Outcome, keys: &[Key]| {
                if let Err(why) = judge(&expect, got, keys, false) {
                    failures.push(report(what, seed, &dag, &expect, got, &why, replay));
                }
            };
            progress.phase(format!("iteration {it}, seed {seed}: sync"));
            let reference = run(&built.outputs, &Scheduler::Sync);
            check("sync", &reference, &built.keys);
            let mut others: Vec<&Scheduler> = schedulers.iter().collect();
            if procs_every > 0 && it % procs_every == 0 {
                others.push(&procs);
                on_procs += 1;
            }
            for s in others {
                progress.phase(format!("iteration {it}, seed {seed}: {s}"));
                // Sometimes a graph built afresh, sometimes the same again.
                // Each must be what the model allows, as Sync's was: the
                // same values, or a failure of a task that can fail first
                // (the same kind and key as Sync's where only one can).
                if rng.chance(25) {
                    let fresh = build(&dag);
                    let got = run(&fresh.outputs, s);
                    check(&format!("{s} (rebuilt)"), &got, &fresh.keys);
                } else {
                    check(&s.to_string(), &run(&built.outputs, s), &built.keys);
                }
            }
            drop(built);
            if let Some(problem) = audit_census() {
                failures.push(format!(
                    "seed {seed}: {problem}\n  tree {} outputs {:?} nodes {:?}\n  \
                     replay: RDASK_STRESS_SEED={seed} {replay}",
                    dag.tree, dag.outputs, dag.specs
                ));
            }
            if (it + 1) % 5000 == 0 {
                println!(
                    "stress: {} iterations in {:.1?}, {} failures",
                    it + 1,
                    started.elapsed(),
                    failures.len()
                );
            }
        }
        let (remote, local) = rdask::process::task_counts();
        println!(
            "stress: {iters} graphs from seed {seed0} ({trees} trees, {failed_graphs} with a \
             failing task, {on_procs} also on processes) in {:.1?}; tasks on processes: \
             {remote} remote, {local} local; {} failures",
            started.elapsed(),
            failures.len()
        );
        verdict(&failures)
    });
}

#[test]
fn killed_workers_give_right_results_or_worker_lost_and_the_pool_recovers() {
    let _serial = serial();
    quiet_injected_panics();
    let iters = env_u64("RDASK_STRESS_KILL_ITERS", 200);
    let seed0 = env_u64("RDASK_STRESS_SEED", 1);
    // A kill every `gap / 5` to `gap` milliseconds.
    let gap = env_u64("RDASK_STRESS_KILL_MS", 50).max(1);
    watched(move |progress| {
        let s = Scheduler::processes(2);
        let Scheduler::Processes(pool) = &s else {
            unreachable!()
        };
        pool.warm_up()
            .map_err(|e| format!("the workers do not start: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        // Set while a computation runs: how many kills could hit a task.
        let computing = Arc::new(AtomicBool::new(false));
        let killer = {
            let (stop, computing, pool) = (stop.clone(), computing.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed0 ^ 0x4B11);
                let (mut kills, mut busy) = (0_u64, 0_u64);
                while !stop.load(SeqCst) {
                    let wait = gap / 5 + rng.below((gap - gap / 5 + 1) as usize) as u64;
                    std::thread::sleep(Duration::from_millis(wait));
                    let pids = pool.worker_pids();
                    if pids.is_empty() {
                        continue;
                    }
                    let pid = pids[rng.below(pids.len())];
                    // It may have died already: the status does not matter.
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                    kills += 1;
                    busy += u64::from(computing.load(SeqCst));
                }
                (kills, busy)
            })
        };
        let cfg = GenConfig {
            fail_pct: 10,
            slow: true,
        };
        let replay = "RDASK_STRESS_KILL_ITERS=1 cargo test --test stress_dag -- killed_workers";
        let started = Instant::now();
        let (mut failures, mut lost) = (Vec::new(), 0);
        for it in 0..iters {
            let seed = seed0.wrapping_add(it);
            progress.beat(format!("kill iteration {it}, seed {seed}"));
            let dag = generate(&mut Rng::new(seed), cfg);
            let expect = model(&dag);
            let built = build(&dag);
            computing.store(true, SeqCst);
            let got = run(&built.outputs, &s);
            computing.store(false, SeqCst);
            if let Err(why) = judge(&expect, &got, &built.keys, true) {
                let what = "processes:2 under kills";
                failures.push(report(what, seed, &dag, &expect, &got, &why, replay));
            }
            if let Outcome::Failed {
                kind: ErrorKind::WorkerLost,
                ..
            } = got
            {
                lost += 1;
            }
            drop(built);
            if let Some(problem) = audit_census() {
                failures.push(format!("seed {seed} under kills: {problem}"));
            }
        }
        stop.store(true, SeqCst);
        let (kills, busy) = killer.join().expect("the killer thread");

        // Afterwards the pool works: a graph of remote tasks, and a random
        // graph, both exactly right (no kill may excuse them now).
        progress.beat("after the kills".to_string());
        let leaves: Vec<_> = (0..8).map(leaf).collect();
        let got = run(&[sum(leaves)], &s);
        let expect = Expect::Values(vec![fold(11, (0..8).map(|s| mix(s, 1)))]);
        if let Err(why) = judge(&expect, &got, &[], false) {
            failures.push(format!("after the kills, 8 leaves: {why}: {got:?}"));
        }
        let dag = generate(&mut Rng::new(seed0), GenConfig { fail_pct: 0, ..cfg });
        let (built, expect) = (build(&dag), model(&dag));
        let got = run(&built.outputs, &s);
        if let Err(why) = judge(&expect, &got, &built.keys, false) {
            let what = "after the kills";
            failures.push(report(what, seed0, &dag, &expect, &got, &why, replay));
        }
        drop(built);
        if let Some(problem) = audit_census() {
            failures.push(format!("after the kills: {problem}"));
        }
        let live = pool.worker_pids();
        if live.len() > 2 {
            failures.push(format!("processes:2 has {} workers: {live:?}", live.len()));
        }
        println!(
            "stress: {iters} graphs on processes:2 from seed {seed0} under {kills} kills \
             ({busy} during a computation) in {:.1?}: {lost} lost a worker; {} failures",
            started.elapsed(),
            failures.len()
        );
        verdict(&failures)
    });
}
