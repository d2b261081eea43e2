#!/usr/bin/env bash
# Mutation testing of the engine with cargo-mutants: each mutant is one small
# deliberate bug in the scoped files; the tests must fail on every one that
# is not equivalent. Not part of CI (hours on 2 cores for the full scope);
# run it after an engine change and record the result in docs/MUTANTS.md.
#
#   scripts/mutants.sh                 # the full scope below
#   scripts/mutants.sh -f rdask-core/src/plan/state.rs   # one file
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
  --test process_retry --test process_faults --test proptest_dag
  --test stress_dag --test long_chain
  --test annotations --test keep_going --test cancel --test cache
)

cargo mutants --workspace --test-workspace=true --baseline=skip "${scope[@]}" --timeout 300 \
  --build-timeout 600 \
  -- "${tests[@]}"
