#!/usr/bin/env python3
"""Table of medians from compare.sh result files (stdlib only).

    python3 summarize.py FILE.tsv [FILE.tsv ...]

Each result line is ENGINE, WORKLOAD, SCHEDULER, N, RC, JSON, STDERR (tab
separated); lines starting with '#' are context and are printed first.
Prints a Markdown table: medians over runs of compute_s, per_task_us,
build µs per delayed call (build_s / tasks), peak RSS, each with the ratio
dask / rdask; then cpu speed-ups and any failures.
"""

import json
import statistics
import sys
from collections import defaultdict

ORDER_W = ["flat", "chain", "tree", "cpu", "memory", "outputs", "crossval"]
ORDER_S = ["sync", "threads", "processes"]


def expected(workload, n):
    if workload in ("flat", "outputs"):
        return n * (n + 1) // 2
    if workload == "chain":
        return n
    if workload == "tree":
        return n * (n - 1) // 2
    if workload == "memory":
        return sum(((8 << 20) // 4096) * ((i % 251) + 1) for i in range(n))
    return None  # cpu: depends on the burn length, differs by design


def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def ratio(d, r):
    if d is None or r is None or r == 0:
        return "n/a"
    q = d / r
    return f"{q:,.0f}×" if q >= 100 else f"{q:.3g}×"


def main(paths):
    header = []
    cells = defaultdict(lambda: defaultdict(list))  # (w,s,n) -> engine -> [json]
    failures = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for raw in f:
                raw = raw.rstrip("\n")
                if not raw:
                    continue
                if raw.startswith("#"):
                    header.append(raw)
                    continue
                parts = raw.split("\t")
                parts += [""] * (7 - len(parts))
                engine, w, s, n, rc, line, err = parts[:7]
                key = (w, s, int(n))
                try:
                    obj = json.loads(line) if line else None
                except json.JSONDecodeError:
                    obj = None
                if rc != "0" or obj is None or "error" in obj:
                    why = err or (obj or {}).get("error") or f"exit {rc}"
                    failures.append(f"{engine} {w} {s} n={n}: {why}")
                    cells[key].setdefault(engine, [])
                    continue
                cells[key][engine].append(obj)

    for h in header:
        print(h.lstrip("# ").rstrip() + "  ")
    print()

    def med(objs, f):
        vals = [f(o) for o in objs if f(o) is not None]
        return statistics.median(vals) if vals else None

    print(
        "| workload | scheduler | n | tasks | runs r/d "
        "| compute s rdask | compute s dask | dask/rdask "
        "| µs/task rdask | µs/task dask "
        "| build µs/call rdask | build µs/call dask | dask/rdask "
        "| peak RSS MiB rdask | peak RSS MiB dask | dask/rdask |"
    )
    print("|" + "---|" * 16)
    speedups = []
    wrong = []

    def sort_key(k):
        w, s, n = k
        return (
            ORDER_W.index(w) if w in ORDER_W else 99,
            ORDER_S.index(s) if s in ORDER_S else 99,
            n,
        )

    for key in sorted(cells, key=sort_key):
        w, s, n = key
        r, d = cells[key].get("rdask", []), cells[key].get("dask", [])
        for eng, objs in (("rdask", r), ("dask", d)):
            exp = expected(w, n)
            for o in objs:
                if exp is not None and o.get("result") != exp:
                    wrong.append(f"{eng} {w} {s} n={n}: result {o.get('result')} != {exp}")
        tasks = (r or d or [{}])[0].get("tasks", "?")
        c_r, c_d = med(r, lambda o: o["compute_s"]), med(d, lambda o: o["compute_s"])
        p_r, p_d = med(r, lambda o: o["per_task_us"]), med(d, lambda o: o["per_task_us"])
        per_call = lambda o: o["build_s"] / o["tasks"] * 1e6  # noqa: E731
        b_r, b_d = med(r, per_call), med(d, per_call)
        m_r, m_d = med(r, lambda o: o["peak_rss_mb"]), med(d, lambda o: o["peak_rss_mb"])
        m_dc = med(d, lambda o: o.get("peak_rss_children_mb"))
        m_d_s = fmt(m_d) + (f" (+{fmt(m_dc)} worker)" if m_dc is not None else "")
        print(
            f"| {w} | {s} | {n:,} | {tasks:,} | {len(r)}/{len(d)} "
            f"| {fmt(c_r)} | {fmt(c_d)} | {ratio(c_d, c_r)} "
            f"| {fmt(p_r)} | {fmt(p_d)} "
            f"| {fmt(b_r)} | {fmt(b_d)} | {ratio(b_d, b_r)} "
            f"| {fmt(m_r)} | {m_d_s} | {ratio(m_d, m_r)} |"
        )
        if w == "cpu":
            sp_r = med(r, lambda o: o["seq_s"] / o["compute_s"] if o.get("seq_s") else None)
            sp_d = med(d, lambda o: o["seq_s"] / o["compute_s"] if o.get("seq_s") else None)
            ms = med(d, lambda o: o.get("burn_ms"))
            it = med(d, lambda o: o.get("burn_iters"))
            speedups.append(
                f"* cpu {s}: speed-up seq_s/compute_s rdask {fmt(sp_r)}, dask {fmt(sp_d)}"
                + (f" (dask burn: {it:,.0f} LCG iterations ≈ {ms:.1f} ms per call)" if ms else "")
            )
    print()
    print(
        "Medians over runs. dask/rdask > 1 means dask is slower / bigger. "
        "build µs/call = build_s / tasks (one delayed call per task). "
        "dask processes RSS: parent, and (+) the largest worker."
    )
    if speedups:
        print()
        print("\n".join(speedups))
    if wrong:
        print()
        print("Wrong results:")
        print("\n".join(f"* {x}" for x in wrong))
    if failures:
        print()
        print("Failed or unavailable runs:")
        print("\n".join(f"* {x}" for x in sorted(set(failures))))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
