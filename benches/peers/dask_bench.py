#!/usr/bin/env python3
"""The dask side of rdask's benchmark comparison: one workload, one JSON line.

    python dask_bench.py WORKLOAD [--scheduler sync|threads|processes] [--n N] [--workers W]

Mirrors ``cargo run --release --example bench -- WORKLOAD ...`` (examples/bench.rs):
the same workloads, the same defaults, the same JSON keys:

    {"workload", "scheduler", "n", "tasks", "build_s", "compute_s",
     "per_task_us", "result", "peak_rss_mb"}          (+ "seq_s" for cpu)

* ``build_s``: time spent making the graph with ``dask.delayed`` calls.
* ``compute_s``: the whole ``dask.compute`` call (optimisation + scheduling +
  running; for ``processes`` it includes starting the pool, which dask does
  on every compute).
* ``per_task_us`` = compute_s / tasks * 1e6; ``tasks`` is the number of keys
  in the graph (same count as rdask's).
* ``peak_rss_mb``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of this
  process at the end. For ``processes`` also ``peak_rss_children_mb``:
  ``RUSAGE_CHILDREN`` after the pool has shut down, i.e. the peak of the
  largest single worker (Linux reports the max, not the sum).

Before anything is timed, one untimed one-task ``dask.compute`` on the sync
scheduler absorbs dask's one-off lazy imports (~0.2-0.3 s on the first
compute of a process; ``--no-warmup`` skips it).

Extra keys (not in rdask's line): ``workers``; ``base_rss_mb`` (peak RSS
after importing dask/numpy and the warm-up, before building anything: the
interpreter's floor); ``warmup_s``; for cpu ``burn_iters`` and ``burn_ms``
(see below); for memory ``buffers`` (numpy or bytearray).

Workloads (defaults in brackets), as in issue 4:

* ``flat`` [100000]: n x inc(i), then total(list) = sum; result n(n+1)/2.
* ``chain`` [100000]: x0 = inc(0), x_{k+1} = inc(x_k); result n.
  dask's graph building is quadratic in a chain (every ``delayed`` call copies
  the layer dict of its argument's HighLevelGraph), so 100000 takes far too
  long: pass a smaller ``--n`` (the README says which was used).
* ``tree`` [65536]: n x leaf(i) = i, pairwise add until one remains (an odd
  one carried up); result n(n-1)/2.
* ``cpu`` [64]: n x burn(i), an integer LCG loop
  x = x*6364136223846793005 + 1442695040888963407 + i (mod 2^64), then the
  wrapping sum. rdask's Rust burn does 20,000,000 iterations in ~20 ms; pure
  Python is ~100x slower per iteration, so here the iteration count is
  calibrated once at start so that one call takes ~20 ms
  (``--burn-iters`` fixes it instead). The result therefore differs from
  rdask's. ``seq_s`` is the same work run sequentially without dask.
  burn is pure Python and holds the GIL: the threads scheduler cannot speed
  it up; processes can.
* ``memory`` [200]: n x load(i) (8 MiB filled with i % 251) -> clean (a new
  8 MiB buffer, every byte + 1 mod 256) -> score (sum of every 4096th byte),
  then a binary tree of add over the scores. numpy arrays when numpy is
  importable, else bytearrays. Peak RSS is the figure.
* ``outputs`` [20000]: dask.compute(*list) of n independent delayed values;
  result is the sum of the outputs, n(n+1)/2.
* ``crossval`` [5]: the nested cross-validation of rdask's crossval example
  (examples/common/nested_cv.rs): 20,000 rows x 10 correlated features, n
  outer x n inner folds, 8 ridge alphas, best alpha per outer fold, refit,
  mean outer R^2; the same graph shape (577 tasks at n=5). Numerically the
  same model with numpy (data from numpy's generator, so the score is close
  to rdask's 0.7453, not bit-identical). ``result`` is the final score.

``--scheduler``: sync -> dask "sync" (single-threaded); threads -> "threads"
with num_workers=W (default: all cores); processes -> "processes" with
num_workers=W (dask's default multiprocessing context, spawn).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

MASK64 = (1 << 64) - 1
LCG_A = 6364136223846793005
LCG_C = 1442695040888963407
MIB8 = 8 << 20
STRIDE = 4096

try:  # numpy for the memory workload when available
    import numpy as np
except ImportError:  # pragma: no cover - exercised only without numpy
    np = None


# --- task functions: module level so that the processes scheduler can pickle
# them by reference (workers are spawned and re-import this module).


def inc(x):
    return x + 1


def total(xs):
    return sum(xs)


def leaf(i):
    return i


def add(a, b):
    return a + b


def burn_plain(i, iters):
    x = i
    for _ in range(iters):
        x = (x * LCG_A + LCG_C + i) & MASK64
    return x


def burn(i, iters):
    return burn_plain(i, iters)


def wsum(xs):
    s = 0
    for x in xs:
        s = (s + x) & MASK64
    return s


_INC_TABLE = bytes((b + 1) % 256 for b in range(256))


def load(i):
    if np is not None:
        return np.full(MIB8, i % 251, dtype=np.uint8)
    return bytearray([i % 251]) * MIB8


def clean(data):
    if np is not None:
        return data + np.uint8(1)  # new buffer, wraps mod 256
    return data.translate(_INC_TABLE)  # new bytearray


def score(data):
    if np is not None:
        return int(data[::STRIDE].sum(dtype=np.uint64))
    return sum(data[::STRIDE])


# crossval: the model of rdask's examples/common/nested_cv.rs, with numpy

CV_ROWS = 20_000
CV_FEATURES = 10
CV_ALPHAS = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]


def cv_make_data(rows, p, seed):
    """Correlated features (three latent factors) and a noisy linear target."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((p, 3))
    coef = np.where(np.arange(p) % 3 == 0, rng.standard_normal(p) * 2.0, 0.0)
    signal_var = ((loadings * coef[:, None]).sum(axis=0) ** 2).sum() + 0.01 * (coef**2).sum()
    noise = np.sqrt(signal_var / 3.0)
    z = rng.standard_normal((rows, 3))
    x = z @ loadings.T + 0.1 * rng.standard_normal((rows, p))
    y = x @ coef + 3.0 + noise * rng.standard_normal(rows)
    return x, y


def cv_split_fold(data, k, i):
    x, y = data
    n = len(y)
    lo, hi = i * n // k, (i + 1) * n // k
    mask = np.ones(n, dtype=bool)
    mask[lo:hi] = False
    return (x[mask], y[mask]), (x[~mask], y[~mask])


def cv_fit(train, alpha):
    x, y = train
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    a = xc.T @ xc + alpha * np.eye(x.shape[1])
    w = np.linalg.solve(a, xc.T @ (y - my))
    return w, my - w @ mx


def cv_score(model, test):
    (w, b), (x, y) = model, test
    pred = x @ w + b
    return float(1.0 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def cv_mean(xs):
    return sum(xs) / len(xs)


def cv_best_alpha(alphas, scores):
    best = 0
    for i, s in enumerate(scores):
        if s > scores[best]:
            best = i
    return alphas[best]


def cv_graph(k):
    from dask import delayed

    make_data, split = delayed(cv_make_data), delayed(cv_split_fold, nout=2)
    fit, score = delayed(cv_fit), delayed(cv_score)
    mean, best = delayed(cv_mean), delayed(cv_best_alpha)
    data = make_data(CV_ROWS, CV_FEATURES, 0x5EEDCAFE)
    best_alphas, outer_scores = [], []
    for i in range(k):
        train, test = split(data, k, i)
        inner = [split(train, k, j) for j in range(k)]
        alpha_scores = [
            mean([score(fit(itrain, alpha), itest) for itrain, itest in inner])
            for alpha in CV_ALPHAS
        ]
        alpha = best(CV_ALPHAS, alpha_scores)
        outer_scores.append(score(fit(train, alpha), test))
        best_alphas.append(alpha)
    return best_alphas + outer_scores + [mean(outer_scores)]


# --- helpers


def rss_mb(who=resource.RUSAGE_SELF):
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    r = resource.getrusage(who).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024


def pairwise(level, add_d):
    while len(level) > 1:
        nxt = []
        for k in range(0, len(level) - 1, 2):
            nxt.append(add_d(level[k], level[k + 1]))
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def calibrate_burn(target_s=0.020):
    """Iterations of burn_plain that take ~target_s on this machine, now."""
    probe = 20_000
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        burn_plain(1, probe)
        best = min(best, time.perf_counter() - t)
    iters = max(1, int(probe * target_s / best))
    # One refinement at full size (min of 3).
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        burn_plain(1, iters)
        best = min(best, time.perf_counter() - t)
    return max(1, int(iters * target_s / best))


def _merged_graph(ds):
    from dask.highlevelgraph import HighLevelGraph

    layers, deps = {}, {}
    for d in ds:
        g = d.__dask_graph__()
        layers.update(g.layers)
        deps.update(g.dependencies)
    return HighLevelGraph(layers, deps)


# --- the workloads


def run(workload, n, compute_kw, extra):
    import dask
    from dask import delayed

    def timed(f):
        t = time.perf_counter()
        v = f()
        return v, time.perf_counter() - t

    if workload == "flat":
        inc_d, total_d = delayed(inc), delayed(total)
        d, build_s = timed(lambda: total_d([inc_d(i) for i in range(n)]))
        (r,), compute_s = timed(lambda: dask.compute(d, **compute_kw))
        return dict(tasks=n + 1, build_s=build_s, compute_s=compute_s, result=r)

    if workload == "chain":
        inc_d = delayed(inc)

        def build():
            x = inc_d(0)
            for _ in range(1, n):
                x = inc_d(x)
            return x

        d, build_s = timed(build)
        (r,), compute_s = timed(lambda: dask.compute(d, **compute_kw))
        return dict(tasks=n, build_s=build_s, compute_s=compute_s, result=r)

    if workload == "tree":
        leaf_d, add_d = delayed(leaf), delayed(add)
        d, build_s = timed(lambda: pairwise([leaf_d(i) for i in range(n)], add_d))
        tasks = len(_merged_graph([d]))
        (r,), compute_s = timed(lambda: dask.compute(d, **compute_kw))
        return dict(tasks=tasks, build_s=build_s, compute_s=compute_s, result=r)

    if workload == "cpu":
        iters = extra["burn_iters"]
        burn_d, wsum_d = delayed(burn), delayed(wsum)
        d, build_s = timed(lambda: wsum_d([burn_d(i, iters) for i in range(n)]))
        (r,), compute_s = timed(lambda: dask.compute(d, **compute_kw))

        def seq():
            s = 0
            for i in range(n):
                s = (s + burn_plain(i, iters)) & MASK64
            return s

        s, seq_s = timed(seq)
        assert s == r, (s, r)
        return dict(
            tasks=n + 1, build_s=build_s, compute_s=compute_s, result=r, seq_s=seq_s
        )

    if workload == "memory":
        load_d, clean_d, score_d = delayed(load), delayed(clean), delayed(score)
        add_d = delayed(add)
        d, build_s = timed(
            lambda: pairwise(
                [score_d(clean_d(load_d(i))) for i in range(n)], add_d
            )
        )
        tasks = len(_merged_graph([d]))
        (r,), compute_s = timed(lambda: dask.compute(d, **compute_kw))
        return dict(tasks=tasks, build_s=build_s, compute_s=compute_s, result=r)

    if workload == "crossval":
        if np is None:
            raise RuntimeError("crossval needs numpy")
        outs, build_s = timed(lambda: cv_graph(n))
        tasks = len(_merged_graph(outs))
        rs, compute_s = timed(lambda: dask.compute(*outs, **compute_kw))
        return dict(tasks=tasks, build_s=build_s, compute_s=compute_s, result=round(rs[-1], 6))

    if workload == "outputs":
        inc_d = delayed(inc)
        ds, build_s = timed(lambda: [inc_d(i) for i in range(n)])
        rs, compute_s = timed(lambda: dask.compute(*ds, **compute_kw))
        return dict(tasks=n, build_s=build_s, compute_s=compute_s, result=sum(rs))

    raise KeyError(workload)


WORKLOADS = ("flat", "chain", "tree", "cpu", "memory", "outputs", "crossval")
DEFAULT_N = {"tree": 65_536, "cpu": 64, "memory": 200, "outputs": 20_000, "crossval": 5}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", nargs="?", default="flat", choices=WORKLOADS)
    p.add_argument(
        "--scheduler",
        default="threads",
        help="sync | threads | processes | dask-file:PATH | dask://HOST:PORT "
        "(a running Dask cluster: client.get) (default threads)",
    )
    p.add_argument("--n", type=int, default=None)
    p.add_argument(
        "--workers", type=int, default=0, help="0 = all cores (default)"
    )
    p.add_argument(
        "--burn-iters",
        type=int,
        default=0,
        help="cpu: LCG iterations per burn call (default: calibrate to ~20 ms)",
    )
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed one-task compute that absorbs dask's lazy imports",
    )
    a = p.parse_args(argv)

    import dask  # noqa: F401  (import cost is not part of any figure)
    import dask.multiprocessing  # noqa: F401
    import dask.threaded  # noqa: F401

    n = a.n if a.n is not None else DEFAULT_N.get(a.workload, 100_000)
    workers = a.workers if a.workers > 0 else (os.cpu_count() or 1)

    client = None
    if a.scheduler.startswith(("dask-file:", "dask://")):
        # A running cluster, as rdask's `--scheduler dask-file:PATH` names it.
        from distributed import Client

        if a.scheduler.startswith("dask-file:"):
            client = Client(scheduler_file=a.scheduler[len("dask-file:"):], timeout="60s")
        else:
            client = Client("tcp://" + a.scheduler[len("dask://"):], timeout="60s")
        compute_kw = {"scheduler": client.get}
        sched_name = a.scheduler
    elif a.scheduler == "sync":
        compute_kw = {"scheduler": "sync"}
        sched_name = "sync"
    else:
        compute_kw = {"scheduler": a.scheduler, "num_workers": workers}
        sched_name = f"{a.scheduler}:{workers}" if a.workers > 0 else a.scheduler

    # dask's first compute in a process pays ~0.2-0.3 s of one-off lazy
    # imports (it looks for a distributed client, among others). That is not
    # a per-task cost, so pay it here, outside every timed region, with a
    # one-task graph on the sync scheduler (a processes pool is still started
    # inside the timed compute: dask makes a new pool on every compute).
    t = time.perf_counter()
    if not a.no_warmup:
        dask.compute(dask.delayed(inc)(0), scheduler="sync")
        if client is not None:
            dask.compute(dask.delayed(inc)(0), **compute_kw)
    warmup_s = time.perf_counter() - t

    base_rss = rss_mb()
    extra = {}
    if a.workload == "cpu":
        extra["burn_iters"] = a.burn_iters or calibrate_burn()
        t = time.perf_counter()
        burn_plain(1, extra["burn_iters"])
        extra["burn_ms"] = (time.perf_counter() - t) * 1e3

    r = run(a.workload, n, compute_kw, extra)

    out = {
        "workload": a.workload,
        "scheduler": sched_name,
        "n": n,
        "tasks": r["tasks"],
        "build_s": round(r["build_s"], 6),
        "compute_s": round(r["compute_s"], 6),
        "per_task_us": round(r["compute_s"] / r["tasks"] * 1e6, 4),
        "result": r["result"],
        "peak_rss_mb": round(rss_mb(), 1),
    }
    if "seq_s" in r:
        out["seq_s"] = round(r["seq_s"], 6)
    if a.scheduler == "processes":
        out["peak_rss_children_mb"] = round(rss_mb(resource.RUSAGE_CHILDREN), 1)
    out["workers"] = 1 if a.scheduler == "sync" else workers
    out["base_rss_mb"] = round(base_rss, 1)
    out["warmup_s"] = round(warmup_s, 4)
    if a.workload == "cpu":
        out["burn_iters"] = extra["burn_iters"]
        out["burn_ms"] = round(extra["burn_ms"], 3)
    if a.workload == "memory":
        out["buffers"] = "numpy" if np is not None else "bytearray"
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
