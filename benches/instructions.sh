#!/usr/bin/env bash
# Instructions a task (compute) and a call (build) of one bench workload,
# counted by callgrind. Counts do not depend on what else the machine runs,
# so they judge an engine change where times are noise (a shared 2-core VM);
# quote times from the bench CLI beside them.
#
#   benches/instructions.sh WORKLOAD N [SCHEDULER]     (default: sync)
#   benches/instructions.sh chain 100000
#
# compute: only inside the tree walk (`exec::tree::run`), the whole of a
#   tree's computation but its setup (flat, chain, tree; other workloads
#   take the planned executor, which this does not count).
# build: inside the bench's `timed` calls but not the tree walk nor a node's
#   drop: the `#[delayed]` calls that make the graph (and the few hundred
#   instructions of a computation's setup, nothing per task).
# Both are divided by N (a tree's N counts leaves: a leaf and a join each).
# Needs valgrind; builds the bench CLI (release) first.
set -euo pipefail
cd "$(dirname "$0")/.."

workload="${1:?usage: benches/instructions.sh WORKLOAD N [SCHEDULER]}"
n="${2:?usage: benches/instructions.sh WORKLOAD N [SCHEDULER]}"
scheduler="${3:-sync}"
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
cargo build --release --quiet --example bench
bench=target/release/examples/bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Total instructions of a callgrind run whose collection `toggles` switch.
count() {
    local file="$out/$1"; shift
    valgrind --tool=callgrind --callgrind-out-file="$file" "$@" \
        "$bench" "$workload" --n "$n" --scheduler "$scheduler" >/dev/null 2>&1
    callgrind_annotate "$file" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

compute=$(count compute --toggle-collect='rdask_core::exec::tree::run*')
build=$(count build --toggle-collect='bench::timed*' \
    --toggle-collect='rdask_core::exec::tree::run*' \
    --toggle-collect='<rdask_core::node::slab::NodeRef as core::ops::drop::Drop>::drop')
python3 - "$workload" "$scheduler" "$n" "$compute" "$build" <<'EOF'
import sys
w, s, n, compute, build = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"{w} {s} n={n}: compute {compute / n:.1f} instructions a task, build {build / n:.1f} a call")
EOF
