#!/usr/bin/env bash
# Side-by-side: rdask's bench CLI (examples/bench.rs) and the dask harness
# (dask_bench.py) on the same workloads, sizes, schedulers and worker count;
# RUNS runs of each, interleaved (rdask, dask, rdask, dask, ...) so both see
# the same background noise; then a table of medians and dask/rdask ratios.
#
#   benches/peers/compare.sh [options] [WORKLOAD ...]
#
#   WORKLOAD            flat chain tree cpu memory outputs crossval (default: all)
#   --runs R            runs per engine and cell (default 3)
#   --workers W         workers for threads/processes (default 2)
#   --schedulers "S.."  any of sync threads processes (default: all three)
#   --n WORKLOAD=N      size for both engines (repeatable). Defaults: the
#                       issue's, except flat=20000 and chain=20000, because
#                       dask is quadratic in both (100000 takes > 10 min in
#                       dask; see README.md)
#   --out FILE          append raw results to FILE (TSV, one line per run;
#                       default target/peers/compare-DATE.tsv); several
#                       invocations with the same --out make one table
#   --dask-only / --rdask-only
#   --report FILE...    only print the table of existing result files
#   TIMEOUT=S (env)     per-run limit in seconds (default 600)
#
# Works from any cwd. Needs python3 (stdlib) for the table; makes the dask
# venv with setup.sh and builds the bench example with cargo --release.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ "${1:-}" == "--report" ]]; then
    shift
    exec python3 "$here/summarize.py" "$@"
fi

runs=3
workers=2
schedulers="sync threads processes"
out=""
engines="rdask dask"
workloads=()
declare -A size=([flat]=20000 [chain]=20000 [tree]=65536 [cpu]=64 [memory]=200 [outputs]=20000 [crossval]=5)

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --schedulers) schedulers="$2"; shift 2 ;;
        --n) size["${2%%=*}"]="${2#*=}"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --dask-only) engines="dask"; shift ;;
        --rdask-only) engines="rdask"; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) workloads+=("$1"); shift ;;
    esac
done
[[ ${#workloads[@]} -gt 0 ]] || workloads=(flat chain tree cpu memory outputs crossval)
for w in "${workloads[@]}"; do
    [[ -n "${size[$w]:-}" ]] || { echo "unknown workload $w" >&2; exit 2; }
done

if [[ -z "$out" ]]; then
    mkdir -p "$root/target/peers"
    out="$root/target/peers/compare-$(date +%Y%m%d-%H%M%S).tsv"
fi
mkdir -p "$(dirname "$out")"
limit="${TIMEOUT:-600}"

py="$root/target/peers-venv/bin/python"
if [[ " $engines " == *" dask "* ]]; then
    "$here/setup.sh"
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release/examples/bench"
if [[ " $engines " == *" rdask "* ]]; then
    (cd "$root" && cargo build --release --quiet --example bench)
fi

rev="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
dirty="$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
{
    echo "# date $(date -Is)  host $(hostname)  cores $(nproc)  load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# rdask $rev ($dirty modified tracked files)  runs $runs  workers $workers"
    if [[ -x "$py" ]]; then
        echo "# $("$py" -c 'import sys,dask,distributed; import numpy; print(f"python {sys.version.split()[0]} dask {dask.__version__} distributed {distributed.__version__} numpy {numpy.__version__}")')"
    fi
} >> "$out"

# one run: ENGINE WORKLOAD SCHED N -> one TSV line in $out
run_one() {
    local engine="$1" w="$2" s="$3" n="$4" rc=0 so se
    so="$(mktemp)"; se="$(mktemp)"
    local args=("$w" --scheduler "$s" --n "$n")
    [[ "$s" == sync ]] || args+=(--workers "$workers")
    if [[ "$engine" == rdask ]]; then
        timeout "$limit" "$bin" "${args[@]}" >"$so" 2>"$se" || rc=$?
    else
        timeout "$limit" "$py" "$here/dask_bench.py" "${args[@]}" >"$so" 2>"$se" || rc=$?
    fi
    local line err
    line="$(grep '^{' "$so" | tail -n1 | tr '\t' ' ' || true)"
    err="$(tail -n1 "$se" | tr '\t' ' ' || true)"
    [[ $rc -ne 124 ]] || err="timed out after ${limit}s"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$w" "$s" "$n" "$rc" "${line:-}" "${err:-}" >> "$out"
    rm -f "$so" "$se"
    echo "  $engine $w $s n=$n rc=$rc ${line:0:160}${err:+  [$err]}" >&2
    return $rc
}

for w in "${workloads[@]}"; do
    for s in $schedulers; do
        n="${size[$w]}"
        declare -A broken=()
        for ((r = 1; r <= runs; r++)); do
            for e in $engines; do
                [[ -z "${broken[$e]:-}" ]] || continue
                # an engine that cannot run this cell (e.g. no processes
                # scheduler) is tried once, not RUNS times
                run_one "$e" "$w" "$s" "$n" || broken[$e]=1
            done
        done
        unset broken
    done
done

echo "# end $(date -Is)  load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out"
echo "raw results: $out" >&2
python3 "$here/summarize.py" "$out"
