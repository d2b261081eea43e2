#!/usr/bin/env bash
# A real Dask cluster on 127.0.0.1 for the length of one command: a
# `dask scheduler` and 2 `dask worker`s (1 thread each, with nannies) from
# the pinned venv (benches/peers/setup.sh), stopped by pid afterwards, never
# by name. The command sees RDASK_DASK_SCHEDULER_FILE (the tests use that
# cluster) and RDASK_DASK_PYTHON (the client's Python).
#
#   scripts/dask-cluster.sh cargo test --workspace
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/benches/peers/setup.sh"
venv="$root/target/peers-venv"
run="$(mktemp -d)"
export RDASK_DASK_SCHEDULER_FILE="$run/scheduler.json"
export RDASK_DASK_PYTHON="$venv/bin/python"
export DASK_DISTRIBUTED__WORKER__DAEMON=False
pids=()
stop() {
    local status=$?
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        for log in "$run"/*.log; do echo "== $log"; tail -n 30 "$log"; done >&2
    fi
    rm -rf "$run"
    exit $status
}
trap stop EXIT
"$venv/bin/dask" scheduler --host 127.0.0.1 --port 0 --no-dashboard \
    --scheduler-file "$RDASK_DASK_SCHEDULER_FILE" >"$run/scheduler.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [[ -s "$RDASK_DASK_SCHEDULER_FILE" ]] && break; sleep 0.1; done
for i in 0 1; do
    "$venv/bin/dask" worker --scheduler-file "$RDASK_DASK_SCHEDULER_FILE" --host 127.0.0.1 \
        --nthreads 1 --memory-limit 0 --no-dashboard --name "w$i" \
        --local-directory "$run/w$i" >"$run/worker$i.log" 2>&1 &
    pids+=($!)
done
"$RDASK_DASK_PYTHON" - <<'PY'
import os
from distributed import Client
with Client(scheduler_file=os.environ["RDASK_DASK_SCHEDULER_FILE"], timeout="60s") as c:
    c.wait_for_workers(2, timeout=120)
    print(f"dask cluster up: {c.scheduler.address}, 2 workers")
PY
"$@"
