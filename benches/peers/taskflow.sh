#!/usr/bin/env bash
# Per-task cost beside Taskflow (C++): the harness taskflow/taskflow_bench.cpp
# and rdask's bench CLI (examples/bench.rs) on the same shapes, sizes and 2
# workers, fresh process and warm second run (see the harness's header).
# Interleaved per round and shape: Taskflow, rdask threads --warm, and for
# chain rdask sync --warm. Each process runs twice back to back and the
# second is kept (a process right after a heavy one can stall on first
# touching its memory). Then a table of medians, in ns per call (build) and
# per task (compute).
#
#   TASKFLOW_DIR=DIR benches/peers/taskflow.sh [--rounds R] [--shapes "S.."] [--n [SHAPE=]N]
#
#   TASKFLOW_DIR   a checkout of github.com/taskflow/taskflow (header-only;
#                  never committed), e.g.
#                  git clone https://github.com/taskflow/taskflow target/peers/taskflow-src
#   --rounds R     rounds (default 5)
#   --shapes "S.." any of chain flat tree (default: all three)
#   --n SHAPE=N    size of one shape (repeatable); --n N sets every shape.
#                  Defaults: chain 100000, flat 100000, tree 65536 leaves
#
# Raw JSON lines go to target/peers/taskflow-DATE.jsonl. Needs g++ and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

rounds=5
shapes="chain flat tree"
workers=2
declare -A size=([chain]=100000 [flat]=100000 [tree]=65536)
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --shapes) shapes="$2"; shift 2 ;;
        --n) if [[ "$2" == *=* ]]; then size["${2%%=*}"]="${2#*=}"
             else for s in "${!size[@]}"; do size[$s]="$2"; done; fi
             shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
for s in $shapes; do
    [[ -n "${size[$s]:-}" ]] || { echo "unknown shape $s (chain flat tree)" >&2; exit 2; }
done

if [[ -z "${TASKFLOW_DIR:-}" || ! -f "${TASKFLOW_DIR}/taskflow/taskflow.hpp" ]]; then
    echo "TASKFLOW_DIR must name a Taskflow checkout (with taskflow/taskflow.hpp); got '${TASKFLOW_DIR:-}'." >&2
    echo "Get it from the public repository taskflow/taskflow (never commit it), e.g." >&2
    echo "  git clone https://github.com/taskflow/taskflow target/peers/taskflow-src" >&2
    echo "  TASKFLOW_DIR=target/peers/taskflow-src $0" >&2
    exit 2
fi

mkdir -p "$root/target/peers"
src="$here/taskflow/taskflow_bench.cpp"
tf="$root/target/peers/taskflow_bench"
if [[ ! -x "$tf" || "$src" -nt "$tf" ]]; then
    echo "building $tf" >&2
    g++ -O2 -std=c++20 -pthread -I "$TASKFLOW_DIR" "$src" -o "$tf"
fi
(cd "$root" && cargo build --release --quiet --example bench)
rd="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench"
out="$root/target/peers/taskflow-$(date +%Y%m%d-%H%M%S).jsonl"

# A fresh process twice, back to back: the second one's line is kept.
twice() { "$@" >/dev/null; "$@"; }

for ((r = 1; r <= rounds; r++)); do
    for s in $shapes; do
        n="${size[$s]}"
        echo "round $r/$rounds: $s n=$n" >&2
        twice "$tf" "$s" --n "$n" --workers "$workers"
        twice "$rd" "$s" --n "$n" --scheduler threads --workers "$workers" --warm
        if [[ "$s" == chain ]]; then
            twice "$rd" "$s" --n "$n" --scheduler sync --warm
        fi
    done
done >"$out"
echo "raw: $out" >&2

python3 - "$out" "$rounds" "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')" <<'EOF'
import json, statistics, sys
path, rounds, rev = sys.argv[1:]
runs = {}
for line in open(path):
    j = json.loads(line)
    # Taskflow's build_ns/compute_ns and rdask's *_ns_per_call/_task: the same figures.
    tf = j["scheduler"] == "taskflow"
    f = {k: j[k + ("" if tf else s)] for k, s in
         [("build_ns", "_per_call"), ("compute_ns", "_per_task"),
          ("warm_build_ns", "_per_call"), ("warm_compute_ns", "_per_task")]}
    runs.setdefault((j["workload"], j["n"], j["scheduler"]), []).append(f)
med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
print(f"Medians of {rounds} round(s), ns (build: per call; compute: per task); rdask {rev}, 2 workers\n")
print("| shape | rdask scheduler | Taskflow fresh build / compute | Taskflow warm build / compute "
      "| rdask fresh build / compute | rdask warm build / compute | compute rdask/Taskflow fresh | warm |")
print("|---|---|---|---|---|---|---|---|")
for (w, n, sched), m in med.items():
    t = med.get((w, n, "taskflow"))
    if sched == "taskflow" or t is None:
        continue
    pair = lambda x, a, b: f"{x[a]:.1f} / {x[b]:.1f}"
    print(f"| {w} n={n} | {sched} | {pair(t, 'build_ns', 'compute_ns')} "
          f"| {pair(t, 'warm_build_ns', 'warm_compute_ns')} "
          f"| {pair(m, 'build_ns', 'compute_ns')} | {pair(m, 'warm_build_ns', 'warm_compute_ns')} "
          f"| {m['compute_ns'] / t['compute_ns']:.2f} | {m['warm_compute_ns'] / t['warm_compute_ns']:.2f} |")
EOF
