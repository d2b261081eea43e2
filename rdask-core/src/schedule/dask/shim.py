"""The Python half of rdask's Dask scheduler: one process per rdask driver
and cluster, fed by the driver over stdin/stdout (written to a cache
directory by the rdask program and run from there: LocalCluster's workers
re-import __main__ from its path).

Frames both ways: a little-endian u32 length, then a msgpack array.

  driver -> shim  ["hello", {target, bridge, program, ship, timeout, protocol}]
                  ["submit", [[key, steps, args, priority, resources], ...],
                             [watched key, ...]]
                                 steps: [[fn, rkey, refs, retries, timeout_ms]]
                  ["want", [key, ...]]   ["release", [key, ...]]
                  ["info"]               ["close"]
  shim -> driver  ["ready", {...}]       ["done", key, bytes]
                  ["error", key, failed_key, kind, message]
                  ["finished", [rkey of each step], ok]   (for watched keys)
                  ["info", {...}]        ["fatal", message]

An arg is a literal (bytes) or a key (str): of this batch, or of an earlier
one still held (its Future then stands in). Every submitted key is held
until the driver releases it as often as it submitted it (it releases a
key when its value is dropped there); dask keeps a released key while a
task still needs it.
"""
import os
import signal
import struct
import sys
import threading
import time

PROTOCOL = 1


def main():
    proto_in, proto_out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a print must never corrupt a frame
    lock = threading.Lock()

    try:
        import msgpack
    except ImportError:
        msgpack = None

    def send(msg):
        if msgpack is None:  # only "fatal" is sent then, as a fixed frame
            body = _fatal_frame(msg[1])
        else:
            body = msgpack.packb(msg, use_bin_type=True)
        with lock:
            proto_out.write(struct.pack("<I", len(body)) + body)
            proto_out.flush()

    def recv():
        head = proto_in.read(4)
        if len(head) < 4:
            return None
        (n,) = struct.unpack("<I", head)
        return msgpack.unpackb(proto_in.read(n), raw=False)

    def fatal(message):
        send(["fatal", message])
        sys.stderr.flush()
        os._exit(0)

    try:
        import dask
        import distributed
        from distributed import Client
    except ImportError as e:
        fatal(f"{sys.executable} cannot import dask.distributed ({e}): install it there "
              "(pip install 'distributed==2026.8.0'), or point RDASK_DASK_PYTHON at a "
              "Python that has it")
    if msgpack is None:
        fatal(f"{sys.executable} has distributed but not msgpack")

    hello = recv()
    if hello is None:
        return
    hello = hello[1]
    if hello.get("protocol") != PROTOCOL:
        fatal(f"protocol mismatch: the rdask program speaks {hello.get('protocol')}, "
              f"this shim {PROTOCOL}")
    target, timeout = hello["target"], hello["timeout"]
    cluster = None
    try:
        if "local" in target:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=target["local"], threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster, timeout=f"{timeout}s")
        elif "scheduler_file" in target:
            path = target["scheduler_file"]
            if not os.path.exists(path):
                fatal(f"no scheduler file at {path}")
            client = Client(scheduler_file=path, timeout=f"{timeout}s")
        else:
            client = Client(target["address"], timeout=f"{timeout}s")
    except Exception as e:  # noqa: BLE001 - reported to the driver
        fatal(f"cannot reach the dask scheduler: {type(e).__name__}: {e}")
    mismatch = version_mismatch(client)
    if mismatch:
        fatal(mismatch)

    # The bridge goes to the scheduler and every worker, future ones too, and
    # is imported by name: tasks then pickle by reference (a few bytes), not
    # by value.
    bridge_dir, bridge_file = os.path.split(hello["bridge"])
    sys.path.insert(0, bridge_dir)
    try:
        client.upload_file(hello["bridge"])
        bridge = __import__(bridge_file[:-3])
        if hello["ship"]:
            with open(hello["program"], "rb") as f:
                plugin = bridge.RdaskPlugin(program=f.read())
        else:
            plugin = bridge.RdaskPlugin(path=hello["program"])
        # The plugin goes by value: a worker that joins later may set it up
        # before the uploaded bridge is importable there (dask does not
        # order the two; a bridge over about 10 KB lost that race).
        import cloudpickle

        cloudpickle.register_pickle_by_value(bridge)
        try:
            client.register_plugin(plugin, name="rdask")
        finally:
            cloudpickle.unregister_pickle_by_value(bridge)
    except Exception as e:  # noqa: BLE001
        fatal(f"cannot start rdask on the dask workers: {type(e).__name__}: {e}")

    info = client.scheduler_info(n_workers=-1)
    dashboard = None
    if info.get("services", {}).get("dashboard"):
        # Reported even where nothing serves it (no bokeh): check.
        try:
            import urllib.request

            urllib.request.urlopen(client.dashboard_link, timeout=1).close()
            dashboard = client.dashboard_link
        except Exception:  # noqa: BLE001
            pass
    send(["ready", {"workers": len(info["workers"]),
                    "threads": sum(w.get("nthreads", 0) for w in info["workers"].values()),
                    "dask": dask.__version__, "distributed": distributed.__version__,
                    "scheduler": client.scheduler.address,
                    "dashboard": dashboard}])

    held = {}  # key -> its Future
    watched = {}  # key -> its Future, until it has run (callbacks)
    counts = {}  # key -> submissions not yet released

    def answer(fut):
        # dask runs this on a thread of its own, once the future is done.
        key = fut.key
        try:
            if fut.status == "finished":
                send(["done", key, fut.result()])
                return
            if fut.status == "cancelled":
                send(["error", key, key, "Scheduler",
                      "dask cancelled it (the scheduler or the connection to it was lost)"])
                return
            exc = fut.exception()
            if isinstance(exc, bridge.RdaskError):
                send(["error", key, exc.key, exc.kind, exc.message])
            elif type(exc).__name__ == "KilledWorker":
                failed = getattr(exc, "task", key)
                send(["error", key, failed if isinstance(failed, str) else key, "WorkerLost",
                      f"dask lost the workers running it too often: {exc}"])
            else:
                send(["error", key, key, "Scheduler", f"{type(exc).__name__}: {exc}"])
        except Exception as e:  # noqa: BLE001
            send(["error", key, key, "Scheduler", f"{type(e).__name__}: {e}"])

    def finished(fut, steps):
        watched.pop(fut.key, None)
        send(["finished", steps, fut.status == "finished"])

    def watchdog():
        # A scheduler that dies or cannot be reached any more fails every
        # computation within seconds; the client alone would retry for long.
        down = None
        while True:
            time.sleep(0.25)
            if client.status == "running":
                down = None
                continue
            down = down or time.monotonic()
            if time.monotonic() - down > min(timeout, 3):
                fatal(f"lost the dask scheduler (client {client.status})")

    threading.Thread(target=watchdog, name="rdask-watchdog", daemon=True).start()

    def submit(dsk, placement):
        priority, resources = placement
        if resources:
            # A need no worker can meet would wait forever in dask: it
            # fails at once instead, naming the resource.
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
            for name, amount in resources.items():
                most = max((w.get("resources", {}).get(name, 0) for w in workers), default=0)
                if most < amount:
                    why = (f"needs {amount} of resource `{name}`, but no dask worker has more "
                           f"than {most} (dask worker --resources \"{name}={amount}\")")
                    dsk = {k: (bridge.rdask_refuse, v[2] if v[0] is bridge.rdask_task
                               else v[1][-1][1], why) for k, v in dsk.items()}
                    resources = None
                    break
        keys = list(dsk)
        futures = client.get(dsk, keys, sync=False, priority=priority,
                             resources=resources or None)
        for k, f in zip(keys, futures):
            held[k] = f

    while True:
        msg = recv()
        if msg is None or msg[0] == "close":
            break
        op = msg[0]
        if op == "submit":
            # Runs of tasks with one placement (dask's priority and
            # resources apply to a whole `get`), in order: a later run
            # finds an earlier one's keys held.
            run, placement = {}, None
            for key, steps, args, priority, resources in msg[1]:
                if run and (priority, resources) != placement:
                    submit(run, placement)
                    run = {}
                placement = (priority, resources)
                args = [held.get(a, a) if isinstance(a, str) and a not in run else a
                        for a in args]
                if len(steps) == 1 and steps[0][3] == 0 and steps[0][4] == 0:
                    fn, rkey, refs, _, _ = steps[0]
                    run[key] = (bridge.rdask_task, fn, rkey, *(args[r] for r in refs))
                else:
                    steps = tuple((fn, rkey, tuple(refs), n, t) for fn, rkey, refs, n, t in steps)
                    run[key] = (bridge.rdask_fused, steps, *args)
            if run:
                submit(run, placement)
            for key, _, _, _, _ in msg[1]:
                counts[key] = counts.get(key, 0) + 1
            watch = set(msg[2])
            for key, steps, _, _, _ in msg[1]:
                if key in watch:
                    fut = watched[key] = held[key]
                    names = [step[1].decode() for step in steps]
                    fut.add_done_callback(lambda f, names=names: finished(f, names))
        elif op == "want":
            for k in msg[1]:
                fut = held.get(k)
                if fut is None:
                    send(["error", k, k, "Scheduler", "rdask asked for a key it never submitted"])
                else:
                    fut.add_done_callback(answer)
        elif op == "release":
            for k in msg[1]:
                n = counts.get(k, 0) - 1
                if n > 0:
                    counts[k] = n
                else:
                    counts.pop(k, None)
                    held.pop(k, None)
        elif op == "info":
            workers = client.run(bridge.helper_pids)
            send(["info", {"workers": {a: p for a, p in workers.items()}}])
    held.clear()
    client.close()
    if cluster is not None:
        cluster.close()


def version_mismatch(client):
    """Why this client cannot drive the cluster, or None. The graph travels
    as pickled dask objects, so dask and distributed must be the same
    version here, on the scheduler and on every worker (dask itself only
    warns)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        versions = client.get_versions()

    def of(side):
        packages = (side or {}).get("packages", {})
        return {name: packages.get(name) for name in ("dask", "distributed")}

    here = of(versions.get("client"))
    there = [("the scheduler", of(versions.get("scheduler")))]
    there += [(f"worker {addr}", of(v)) for addr, v in (versions.get("workers") or {}).items()]
    for who, theirs in there:
        for name in ("dask", "distributed"):
            if theirs[name] != here[name]:
                return (f"version mismatch: this client ({sys.executable}) has {name} "
                        f"{here[name]}, {who} has {theirs[name]}; dask sends graphs as "
                        f"pickled dask objects, so install {name}=={theirs[name]} here "
                        "(or point RDASK_DASK_PYTHON at a Python that has it)")
    return None


def _fatal_frame(message):
    """["fatal", message] in msgpack, without msgpack (fixarray, str32)."""
    text = message.encode()
    return b"\x92\xa5fatal\xdb" + struct.pack(">I", len(text)) + text


if __name__ == "__main__":
    # The driver's death closes stdin (the main loop ends); SIGTERM as well.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
