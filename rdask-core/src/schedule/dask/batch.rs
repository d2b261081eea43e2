//! What the driver has not yet sent to the cluster: tasks submitted and keys
//! let go of since the last flush, and how a flush turns them into dask
//! tasks, fusing linear chains.
//!
//! Fusion: dask pays milliseconds per task it schedules, most of it per
//! *step* of a chain (its batched streams wake every few ms). A task `p`
//! whose value this process let go of before the flush, that exactly one
//! task `c` of the batch uses, and that is `c`'s only dependency, needs no
//! key of its own: `c` runs `p`'s call first, in the same helper. Applied
//! along a chain, a chain of any length in one batch is one dask task. Only
//! straight chains fuse (dask's own `fuse_linear` rule), so the width of a
//! graph, its parallelism, stays what it was.

use std::collections::HashMap;

/// An argument part: bytes, or the key of a task whose value is the bytes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Lit(Vec<u8>),
    Key(String),
}

/// One rdask task for the cluster.
#[derive(Debug)]
pub(crate) struct Task {
    /// Its dask key (unique to this driver, or to this build for pure keys).
    pub key: String,
    /// The registered name of its function.
    pub func: &'static str,
    /// Its argument parts, concatenated in order.
    pub args: Vec<Arg>,
    /// Whether the callbacks want to hear when it has run.
    pub watch: bool,
    /// How many more runs a failure of it gets (`retries`).
    pub retries: u32,
    /// Its timeout in milliseconds (0: none), enforced by the bridge.
    pub timeout_ms: u64,
    /// What dask itself is told of it: (priority, resources).
    pub placement: Placement,
}

/// What a task asks of dask's scheduler: its priority and resources
/// (dask's own annotations). Tasks go to dask in runs of equal placement.
pub(crate) type Placement = (i32, &'static [(&'static str, f64)]);

/// One step of a dask task: a function, the key that names it in errors,
/// and its parts: `r >= 0` is the dask task's argument `r`, `r < 0` the
/// output of step `-1 - r`.
#[derive(Debug, PartialEq)]
pub(crate) struct Step {
    pub func: &'static str,
    pub key: String,
    pub refs: Vec<i64>,
    pub retries: u32,
    pub timeout_ms: u64,
}

/// A dask task: its key, its steps (one unless fused), its arguments.
#[derive(Debug, PartialEq)]
pub(crate) struct DaskTask {
    pub key: String,
    pub steps: Vec<Step>,
    pub args: Vec<Arg>,
    /// Whether any of its steps is watched.
    pub watch: bool,
    /// Its steps' placement (fused steps share one).
    pub placement: Placement,
}

/// Tasks and releases since the last flush, in the order they happened.
#[derive(Default)]
pub(crate) struct Batch {
    pub tasks: Vec<Task>,
    pub released: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.released.is_empty()
    }

    /// The dask tasks to submit and the keys to release, chains fused.
    pub fn take(&mut self) -> (Vec<DaskTask>, Vec<String>) {
        let tasks = std::mem::take(&mut self.tasks);
        let mut released = std::mem::take(&mut self.released);
        // How often each key is submitted here, released here, and used by
        // how many tasks here.
        let mut submitted: HashMap<&str, u32> = HashMap::new();
        for t in &tasks {
            *submitted.entry(&t.key).or_default() += 1;
        }
        let mut let_go: HashMap<&str, u32> = HashMap::new();
        for k in &released {
            *let_go.entry(k).or_default() += 1;
        }
        let mut users: HashMap<&str, u32> = HashMap::new();
        let mut only_dep: Vec<Option<&str>> = Vec::with_capacity(tasks.len());
        for t in &tasks {
            let mut dep: Option<&str> = None;
            let mut several = false;
            for a in &t.args {
                if let Arg::Key(k) = a {
                    match dep {
                        None => {
                            dep = Some(k);
                            *users.entry(k).or_default() += 1;
                        }
                        Some(d) if d == k => {}
                        Some(_) => {
                            several = true;
                            *users.entry(k).or_default() += 1;
                        }
                    }
                }
            }
            only_dep.push(if several { None } else { dep });
        }
        let index: HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (&*t.key, i))
            .collect();
        // `into[p] = c`: task p runs inside task c.
        let mut into: Vec<Option<usize>> = vec![None; tasks.len()];
        let mut fused_away: Vec<&str> = Vec::new();
        for (c, dep) in only_dep.iter().enumerate() {
            let Some(p) = dep.and_then(|d| index.get(d).copied()) else {
                continue;
            };
            let key = &*tasks[p].key;
            if p < c
                && tasks[p].placement == tasks[c].placement
                && submitted[key] == 1
                && let_go.get(key) == Some(&1)
                && users.get(key) == Some(&1)
            {
                into[p] = Some(c);
                fused_away.push(key);
            }
        }
        let mut gone: HashMap<&str, ()> = fused_away.iter().map(|k| (*k, ())).collect();
        released.retain(|k| gone.remove(k.as_str()).is_none());
        // Each chain's members, first to last, gathered at its head (tasks
        // are in submission order, so a producer comes before its user).
        let mut head_of: Vec<usize> = (0..tasks.len()).collect();
        for (p, c) in into.iter().enumerate() {
            if let Some(c) = *c {
                head_of[c] = head_of[p];
            }
        }
        let mut chains: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for (i, &head) in head_of.iter().enumerate() {
            chains[head].push(i);
        }
        let mut tasks: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
        let out = chains
            .iter()
            .filter(|members| !members.is_empty())
            .map(|members| build(&mut tasks, members))
            .collect();
        (out, released)
    }
}

/// The dask task of one chain (`members`, first to last).
fn build(tasks: &mut [Option<Task>], members: &[usize]) -> DaskTask {
    let mut steps = Vec::with_capacity(members.len());
    let mut args: Vec<Arg> = Vec::new();
    let mut last_key = String::new();
    let mut watch = false;
    let mut placement = (0, &[][..]);
    for (j, &m) in members.iter().enumerate() {
        let t = tasks[m].take().expect("a task is in one chain");
        watch |= t.watch;
        placement = t.placement;
        let refs = t
            .args
            .into_iter()
            .map(|a| match a {
                // The previous step's output.
                Arg::Key(k) if j > 0 && k == last_key => -(j as i64),
                a => {
                    args.push(a);
                    (args.len() - 1) as i64
                }
            })
            .collect();
        steps.push(Step {
            func: t.func,
            key: t.key.clone(),
            refs,
            retries: t.retries,
            timeout_ms: t.timeout_ms,
        });
        last_key = t.key;
    }
    DaskTask {
        key: last_key,
        steps,
        args,
        watch,
        placement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, args: &[&str]) -> Task {
        Task {
            key: key.into(),
            func: "f",
            args: args
                .iter()
                .map(|a| match a.strip_prefix('=') {
                    Some(lit) => Arg::Lit(lit.as_bytes().to_vec()),
                    None => Arg::Key(a.to_string()),
                })
                .collect(),
            watch: false,
            retries: 0,
            timeout_ms: 0,
            placement: (0, &[]),
        }
    }

    fn batch(tasks: Vec<Task>, released: &[&str]) -> (Vec<DaskTask>, Vec<String>) {
        let mut b = Batch {
            tasks,
            released: released.iter().map(|k| k.to_string()).collect(),
        };
        let out = b.take();
        assert!(b.is_empty());
        out
    }

    #[test]
    fn a_released_chain_is_one_task() {
        let (tasks, released) = batch(
            vec![
                task("a", &["=1"]),
                task("b", &["a"]),
                task("c", &["b", "=2"]),
            ],
            &["a", "b"],
        );
        assert!(released.is_empty());
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        assert_eq!(t.key, "c");
        assert_eq!(
            t.args,
            vec![Arg::Lit(b"1".to_vec()), Arg::Lit(b"2".to_vec())]
        );
        let refs: Vec<_> = t
            .steps
            .iter()
            .map(|s| (s.key.as_str(), s.refs.clone()))
            .collect();
        assert_eq!(
            refs,
            vec![("a", vec![0]), ("b", vec![-1]), ("c", vec![-2, 1])]
        );
    }

    #[test]
    fn a_value_still_held_keeps_its_key() {
        // `a` is not released (an output, or a local task needs it).
        let (tasks, released) = batch(
            vec![task("a", &["=1"]), task("b", &["a"]), task("c", &["b"])],
            &["b"],
        );
        assert!(released.is_empty());
        let keys: Vec<_> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(tasks[1].args, vec![Arg::Key("a".into())]);
        assert_eq!(tasks[1].steps.len(), 2);
    }

    #[test]
    fn shared_and_joining_tasks_do_not_fuse() {
        // `a` feeds two tasks; `d` has two dependencies.
        let (tasks, released) = batch(
            vec![
                task("a", &["=1"]),
                task("b", &["a"]),
                task("c", &["a"]),
                task("d", &["b", "c"]),
            ],
            &["a", "b", "c"],
        );
        let keys: Vec<_> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert_eq!(released, ["a", "b", "c"]);
        assert!(tasks.iter().all(|t| t.steps.len() == 1));
    }

    #[test]
    fn a_key_from_an_earlier_batch_stays_an_argument() {
        // `x` was submitted before; a task using it twice still fuses with
        // nothing and refers to it by key.
        let (tasks, released) = batch(vec![task("b", &["x", "x"])], &["x"]);
        assert_eq!(released, ["x"]);
        assert_eq!(
            tasks[0].args,
            vec![Arg::Key("x".into()), Arg::Key("x".into())]
        );
        assert_eq!(tasks[0].steps[0].refs, vec![0, 1]);
    }

    #[test]
    fn a_step_used_twice_by_its_successor_is_one_output() {
        let (tasks, _) = batch(vec![task("a", &["=1"]), task("b", &["a", "a"])], &["a"]);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].steps[1].refs, vec![-1, -1]);
    }

    #[test]
    fn a_batch_with_anything_in_it_is_not_empty() {
        let mut b = Batch::default();
        assert!(b.is_empty());
        b.released.push("x".into());
        assert!(!b.is_empty(), "a release alone must still be sent");
        let mut b = Batch::default();
        b.tasks.push(task("a", &["=1"]));
        assert!(!b.is_empty(), "a task alone must still be sent");
    }

    #[test]
    fn a_key_also_used_as_a_second_argument_is_not_fused() {
        // `a` is `b`'s only dependency, but `d` needs it too (as its second
        // argument): it must stay a key of its own.
        let (tasks, released) = batch(
            vec![
                task("x", &["=0"]),
                task("a", &["=1"]),
                task("b", &["a"]),
                task("d", &["x", "a"]),
            ],
            &["a"],
        );
        let keys: Vec<_> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["x", "a", "b", "d"]);
        assert_eq!(released, ["a"]);
    }

    #[test]
    fn a_fused_chain_is_watched_when_any_step_is() {
        let mut head = task("a", &["=1"]);
        head.watch = true;
        let (tasks, _) = batch(vec![head, task("b", &["a"])], &["a"]);
        assert_eq!(tasks.len(), 1);
        assert!(tasks[0].watch, "the callbacks wait to hear of `a`");
    }

    #[test]
    fn a_resubmitted_key_is_not_fused() {
        let (tasks, released) = batch(
            vec![task("a", &["=1"]), task("a", &["=1"]), task("b", &["a"])],
            &["a"],
        );
        assert_eq!(tasks.len(), 3);
        assert_eq!(released, ["a"]);
    }
}
