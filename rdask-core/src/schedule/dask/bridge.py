"""rdask's tasks on dask workers (uploaded by the driver shim; stock dask only).

Each dask worker gets a `Helpers` pool through the `RdaskPlugin` worker
plugin: the user's own rdask program started in worker mode
(`RDASK_WORKER=1`), one per worker thread. A dask task of rdask is
`rdask_task(fn, key, *parts)`: the parts are postcard fragments (literals as
`bytes`, dependencies as the `bytes` dask holds for them) whose
concatenation is the argument tuple; the helper runs the registered
function and the reply's bytes are the task's value. A fused chain,
`rdask_fused(steps, *args)`, runs its steps back to back in one helper.

The frames are those of rdask's processes scheduler (`wire.rs`): a 1-byte
kind, a little-endian u32 length, the body.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import struct
import subprocess
import threading
import time

RUN, OK, TASK_ERR, PANIC, BAD_REQUEST, HELLO, DECODE_ERR, TOO_BIG, ENCODE_ERR = range(1, 10)
KINDS = {TASK_ERR: "Task", PANIC: "Panic", BAD_REQUEST: "Scheduler",
         DECODE_ERR: "Type", TOO_BIG: "Scheduler", ENCODE_ERR: "Type"}
F_SETPIPE_SZ = 1031


class RdaskError(Exception):
    """A task failed: the rdask key of the task that failed, an rdask
    `ErrorKind` name, the message. Dask hands the same exception to every
    dependent, so the driver learns which task failed first."""

    def __init__(self, key, kind, message):
        super().__init__(key, kind, message)
        self.key, self.kind, self.message = key, kind, message

    def __str__(self):
        return f"[{self.kind}] task `{self.key}`: {self.message}"


class _Helper:
    """One rdask program in worker mode, on raw pipe fds."""

    def __init__(self, exe):
        self.proc = subprocess.Popen([exe], env={**os.environ, "RDASK_WORKER": "1"},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.w, self.r = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        for fd in (self.w, self.r):
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
        kind, _ = self.read()
        if kind != HELLO:
            self.kill()
            raise RuntimeError(f"{exe} is not an rdask program (its first frame was {kind})")

    def exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(self.r, n - len(buf))
            if not chunk:
                raise EOFError("its pipe closed")
            buf += chunk
        return bytes(buf)

    def read(self):
        kind, n = struct.unpack("<BI", self.exact(5))
        return kind, (self.exact(n) if n else b"")

    def call(self, fn, payload):
        os.writev(self.w, [struct.pack("<BI", RUN, len(fn) + 1 + len(payload)), fn, b"\0", payload])
        return self.read()

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()


class Helpers:
    """The helpers of one dask worker. All are started by one long-lived
    thread: a helper asks for a parent-death signal, which Linux sends when
    the *thread* that started it ends, and dask's task threads may end."""

    def __init__(self, exe, n):
        self.exe, self.idle, self.lost = exe, queue.LifoQueue(), 0
        self.live, self.closed = {}, False
        self.jobs = queue.Queue()
        threading.Thread(target=self._spawner, name="rdask-helpers", daemon=True).start()
        for _ in range(n):
            self.idle.put(self.spawn())

    def _spawner(self):
        while True:
            reply = self.jobs.get()
            if reply is None:
                return
            try:
                reply.put(_Helper(self.exe))
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                reply.put(e)

    def spawn(self):
        if self.closed:
            raise _Closed()
        reply = queue.Queue(1)
        self.jobs.put(reply)
        h = reply.get()
        if isinstance(h, BaseException):
            raise h
        self.live[h.proc.pid] = h
        return h

    def forget(self, h):
        self.live.pop(h.proc.pid, None)
        self.lost += 1
        h.kill()

    def _idle(self):
        """An idle helper; None once this pool is closed."""
        while True:
            try:
                return self.idle.get(timeout=0.2)
            except queue.Empty:
                if self.closed:
                    return None

    def call(self, fn, payload, key, timeout_ms=0):
        """Runs one call; a helper that dies is replaced and the call tried
        once more on a fresh one (rdask's processes rule), then it is lost.
        A call past its timeout has its helper killed (and replaced). A call
        on a pool that closes meanwhile (its plugin replaced: another client
        of this program joined) goes to the pool that replaced it."""
        try:
            return self._call(fn, payload, key, timeout_ms)
        except _Closed:
            pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                pool = _helpers()
            except (KeyError, ValueError, AttributeError):
                pool = None  # the new plugin is not set up yet
            if pool is not None and pool is not self and not pool.closed:
                return pool.call(fn, payload, key, timeout_ms)
            time.sleep(0.1)
        raise RdaskError(key, "Scheduler", "the rdask helpers of this dask worker were closed "
                         "and none replaced them in 60 s")

    def _call(self, fn, payload, key, timeout_ms):
        h = self._idle()
        if h is None:
            raise _Closed()
        if h.proc.poll() is not None:  # died while idle
            self.forget(h)
            h = self.spawn()
        for attempt in (1, 2):
            timer, fired = None, []
            if timeout_ms:
                def fire(proc=h.proc):
                    fired.append(True)
                    proc.kill()

                timer = threading.Timer(timeout_ms / 1000, fire)
                timer.start()
            try:
                reply = h.call(fn, payload)
            except (EOFError, OSError) as e:
                timed_out = bool(fired)
                status = h.proc.poll()
                self.forget(h)
                if self.closed:
                    raise _Closed() from e  # killed by close(): not its fault
                h = self.spawn()
                if timed_out:
                    self.idle.put(h)
                    raise RdaskError(key, "Timeout", f"ran longer than its timeout of {timeout_ms} "
                                     "ms (its helper was killed and replaced)")
                if attempt == 2:
                    self.idle.put(h)
                    raise RdaskError(key, "WorkerLost",
                                     f"its worker died twice (the last: {e}, exit status {status})")
                continue
            finally:
                if timer is not None:
                    timer.cancel()
            self.idle.put(h)
            return reply

    def close(self):
        self.closed = True
        self.jobs.put(None)
        for h in list(self.live.values()):
            try:
                h.proc.stdin.close()
            except OSError:
                pass
        for h in list(self.live.values()):
            try:
                h.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                h.kill()


class _Closed(Exception):
    """The helpers' pool was closed under a call."""


def program_file(directory, data):
    """Writes a shipped program once per content (atomic rename)."""
    path = os.path.join(directory, "rdask-program-" + hashlib.sha256(data).hexdigest()[:16])
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    return path


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - the shim checks for distributed first
    WorkerPlugin = object


class RdaskPlugin(WorkerPlugin):
    """Starts the helpers on each worker, also on workers that join later
    (or that the nanny restarts). `program`: the program's bytes, shipped
    through the scheduler, or `path`: where it is on every host."""

    name = "rdask"
    idempotent = False

    def __init__(self, program=None, path=None, helpers=None):
        self.program, self.path, self.helpers = program, path, helpers

    def setup(self, worker):
        exe = self.path or program_file(worker.local_directory, self.program)
        self.pool = Helpers(exe, self.helpers or worker.state.nthreads)

    def teardown(self, worker):
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()


def _helpers():
    from distributed import get_worker

    return get_worker().plugins["rdask"].pool


def _reply(key, kind, body):
    if kind == OK:
        return body
    raise RdaskError(key, KINDS.get(kind, "Scheduler"), body.decode("utf-8", "replace"))


def rdask_task(fn, key, *parts):
    """One rdask task: `fn` its registered name and `key` its rdask key
    (both bytes, so dask never takes them for keys); `parts` joined are its
    encoded arguments."""
    key = key.decode()
    kind, body = _helpers().call(fn, parts[0] if len(parts) == 1 else b"".join(parts), key)
    return _reply(key, kind, body)


RETRYABLE = ("Task", "Panic", "WorkerLost", "Timeout")


def rdask_fused(steps, *args):
    """A fused chain (or one task with retries or a timeout): `steps` is a
    tuple of (fn, key, refs, retries, timeout_ms); a ref `i >= 0` is `args[i]`, a ref `-1 - j`
    the output of step `j`. One helper runs them in order, each step again
    after a failure while it has retries left; the last step's output is
    the value."""
    pool, outs = _helpers(), []
    for fn, key, refs, retries, timeout_ms in steps:
        key = key.decode()
        payload = b"".join(args[r] if r >= 0 else outs[-1 - r] for r in refs)
        for attempt in range(retries + 1):
            try:
                kind, body = pool.call(fn, payload, key, timeout_ms)
                outs.append(_reply(key, kind, body))
                break
            except RdaskError as e:
                if attempt == retries or e.kind not in RETRYABLE:
                    if attempt:
                        e.message += f" (after {attempt + 1} attempts)"
                    raise
    return outs[-1]


def rdask_refuse(key, message):
    """A task that cannot run anywhere: fails at once, saying why."""
    raise RdaskError(key.decode(), "Scheduler", message)


def helper_pids(dask_worker=None):
    """For `client.run`: this worker's process id and its helpers'."""
    pool = getattr(dask_worker.plugins.get("rdask"), "pool", None)
    return [os.getpid(), sorted(pool.live) if pool else []]
