#!/usr/bin/env bash
# Mutation testing of the engine with cargo-mutants: each mutant is one small
# deliberate bug in the scoped files; the tests must fail on every one that
# is not equivalent. Not part of CI (hours on 2 cores for the full scope);
# run it after an engine change and record the result in docs/MUTANTS.md.
#
#   scripts/mutants.sh                 # the full scope below
#   scripts/mutants.sh -f rdask-core/src/plan/state.rs   # one file
#   MUTANTS_TIMEOUT=120 scripts/mutants.sh ...           # a slower machine
#   MUTANTS_DASK=1 scripts/mutants.sh -f rdask-core/src/schedule/dask/batch.rs
#
# The baseline (unmutated) run is skipped: it would test only the mutated
# package, where the engine's test binaries are not; the suite passes on main.
# Survivors are listed in mutants.out/missed.txt: kill each with a test, or
# write it down in docs/MUTANTS.md as equivalent, with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants

# The engine: executor, plan, tree walk, scheduling loops, worker pool,
# drops, the cache, the cluster's batches.
scope=(
  -f 'rdask-core/src/exec/*.rs'
  -f 'rdask-core/src/plan/*.rs'
  -f 'rdask-core/src/schedule/sync.rs'
  -f 'rdask-core/src/schedule/threads.rs'
  -f 'rdask-core/src/schedule/queue.rs'
  -f 'rdask-core/src/schedule/dask/batch.rs'
  -f 'rdask-core/src/cache.rs'
  -f 'rdask-core/src/schedule/compute.rs'
  -f 'rdask-core/src/schedule/processes/pool.rs'
  -f 'rdask-core/src/schedule/processes/worker.rs'
  -f 'rdask-core/src/node/drop.rs'
)
if [ $# -gt 0 ]; then scope=("$@"); fi

# The tests that exercise the engine, not the whole suite: the ui (compile
# error) tests and the benchmarks-as-tests cannot see an engine mutant and
# would multiply the time by five.
tests=(
  --lib
  --test computing --test errors --test trees --test schedulers
  --test dropping --test callbacks --test raw_graph --test processes
  --test process_retry --test process_faults --test process_chains
  --test proptest_dag
  --test stress_dag --test long_chain
  --test annotations --test keep_going --test cancel --test cache
  --test exec_paths --test nested_args
)

# tests/dask.rs is not in the list: it needs a Python with dask.distributed
# (target/peers-venv, made by benches/peers/setup.sh, or RDASK_DASK_PYTHON)
# and a cluster, and only the Dask scheduler's code (schedule/dask/, the
# `Scheduler::Dask` arms and `on_cluster` in schedule/compute.rs) needs it.
# MUTANTS_DASK=1 adds it and runs everything under scripts/dask-cluster.sh:
# one scheduler and 2 workers for all the mutants, found through
# RDASK_DASK_SCHEDULER_FILE and RDASK_DASK_PYTHON (which also reach
# cargo-mutants' copy of the tree, where target/ and its venv are not);
# without a scheduler file each mutant's tests would start a LocalCluster.
if [ "${MUTANTS_DASK:-0}" = 1 ]; then
  tests+=(--test dask)
  if [ -z "${RDASK_DASK_SCHEDULER_FILE:-}" ]; then
    exec scripts/dask-cluster.sh scripts/mutants.sh "$@"
  fi
fi

# Seconds a mutant's tests may run before it counts as caught (a hang).
# Every mutant that hangs costs this much, and many do (a queue that never
# hands out its tasks), so it is kept short: the tests take about 25 s on
# 2 cores. Raise it on a slower or busier machine, where a slow but correct
# run would otherwise count as caught and hide a survivor.
timeout="${MUTANTS_TIMEOUT:-60}"

cargo mutants --workspace --test-workspace=true --baseline=skip "${scope[@]}" \
  --timeout "$timeout" --build-timeout 600 \
  -- "${tests[@]}"
