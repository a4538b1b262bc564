"""A warm worker for local runs: import torch, transformers and lm-eval once, fork per job.

Each evaluation job of the demo spent ~10 s importing the same libraries before ~2 s of work, and
a job that only merges neuron files or draws a figure spent 3-5 s importing torch for < 1 s of work.
On a local (non-cluster) run, `run_job` hands a job (a package function named "module:function",
often an entry of `mwork.jobs`) to a worker process of the same working directory that has
those modules imported already and forks a child per job; the child sets up
the job's log, runs the job's function and exits with its status, which the calling job returns.
The result is the same code on the same inputs, only the imports are shared.

Safety rails:
- Off under a cluster scheduler (SLURM_JOB_ID set) and with MWORK_WARM=0; any failure to reach
  or start a worker falls back to running the job in-process.
- The worker refuses requests (and exits) once any file of the mwork package changed after it
  started, so an edited package is never run from a stale import; it also exits when idle.
- If the calling job dies (Ctrl-C, a Snakemake timeout), its connection closes and the worker
  kills the job's child.
- The worker imports libraries only: it never runs a tensor operation or touches CUDA before
  forking (fork after CUDA initialisation is unsafe; each child initialises its own).

Protocol: one JSON line per connection {"entry": "module:function", "kwargs": {...}, "log": path,
"cwd": dir, "threads": n}; the worker answers with one JSON line {"status": int} when the child
exits.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PRELOAD = ("torch", "transformers", "datasets", "lm_eval", "mwork.jobs", "mwork.figures")
IDLE_S = 90.0
START_TIMEOUT_S = 180.0
PACKAGE = Path(__file__).resolve().parent


def enabled() -> bool:
    """Warm worker allowed here: not under a cluster scheduler, not switched off."""
    return os.environ.get("MWORK_WARM", "1") != "0" and "SLURM_JOB_ID" not in os.environ


def socket_path(cwd: str | Path | None = None) -> Path:
    """The worker socket of a working directory (short: AF_UNIX paths are limited to ~100 bytes)."""
    key = hashlib.sha1(str(Path(cwd or os.getcwd()).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mwork-{os.getuid()}-{key}.sock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _package_mtime() -> float:
    """Latest change of the package's sources and data (byte-code caches excluded: a job that
    imports a module first writes its __pycache__ entry, which is no change of the code)."""
    files = (p for p in PACKAGE.rglob("*") if "__pycache__" not in p.parts and p.is_file())
    return max(p.stat().st_mtime for p in files)


def _call(
    entry: str, kwargs: Mapping[str, Any], log: str, threads: int | None, context: Mapping[str, Any]
) -> int:
    """Run one job in this process: rule logging, the entry function, exit status (2: MworkError)."""
    from mwork.errors import MworkError
    from mwork.runlog import setup_rule_logging

    if threads:
        import torch

        torch.set_num_threads(threads)
    logger = setup_rule_logging(log, **context)
    module, name = entry.split(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    try:
        fn(**kwargs)
    except MworkError as exc:
        logger.error("error: %s", exc)
        return 2
    except BaseException:
        logger.exception("job failed")
        return 1
    return 0


def run_job(
    entry: str,
    kwargs: Mapping[str, Any],
    log: str,
    threads: int | None = None,
    context: Mapping[str, Any] | None = None,
) -> int:
    """Run `entry(**kwargs)` for a Snakemake job, in the warm worker when possible.

    Args:
        entry: "module:function"; kwargs must be JSON-serialisable.
        log: the job's log file (the child writes it, as an in-process run would).
        threads: torch CPU threads of the job (None: torch's default).
        context: logged at the top of the job's log (wildcards).

    Returns:
        The job's exit status (0 ok, 2 MworkError, 1 any other failure).
    """
    context = {k: str(v) for k, v in (context or {}).items()}
    if enabled():
        request = {
            "entry": entry,
            "kwargs": dict(kwargs),
            "log": str(Path(log).resolve()),
            "cwd": os.getcwd(),
            "threads": threads,
            "context": context,
        }
        status = _via_worker(request)
        if status is not None:
            return status
    return _call(entry, kwargs, log, threads, {**context, "worker": "none (in-process)"})


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        return None
    return s


def _start_worker(path: Path, cwd: str) -> int | None:
    """PID of the worker being started for `path`: started here, or by another job (lock file)."""
    lock = path.with_suffix(".starting")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            pid = int(lock.read_text() or 0)
        except (OSError, ValueError):
            return None
        if pid and _alive(pid):
            return pid  # another job is starting it
        lock.unlink(missing_ok=True)
        return None
    log = Path(cwd, ".snakemake", "mwork-worker.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mwork.worker", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            cwd=cwd,
        )
    os.write(fd, str(proc.pid).encode())
    os.close(fd)
    return proc.pid


def _via_worker(request: dict[str, Any]) -> int | None:
    """The job's status from the worker, or None when no worker could take it."""
    path = socket_path(request["cwd"])
    conn = _connect(path)
    if conn is None:
        try:
            pid = _start_worker(path, request["cwd"])
        except OSError:
            return None
        deadline = time.time() + START_TIMEOUT_S
        while conn is None and pid and _alive(pid) and time.time() < deadline:
            time.sleep(0.2)
            conn = _connect(path)
        if conn is None:
            return None
    with conn, conn.makefile("rw", encoding="utf-8") as f:
        f.write(json.dumps(request) + "\n")
        f.flush()
        line = f.readline()
    if not line:
        return None
    reply = json.loads(line)
    return None if reply.get("status") is None else int(reply["status"])


class _Server:
    """The worker: accepts job requests and forks one child per job."""

    def __init__(self, path: Path) -> None:
        self.path, self.started = path, time.time()
        self.busy, self.last, self.closing = 0, time.time(), False
        self.lock = threading.Lock()

    def stale(self) -> bool:
        return _package_mtime() > self.started

    def serve(self) -> None:
        for name in PRELOAD:
            importlib.import_module(name)
        self.started = time.time()
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        sock.listen(16)
        sock.settimeout(1.0)
        self.path.with_suffix(".starting").unlink(missing_ok=True)
        try:
            while True:
                with self.lock:
                    idle = self.busy == 0 and (self.closing or time.time() - self.last > IDLE_S)
                if idle:
                    return
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
        finally:
            sock.close()
            self.path.unlink(missing_ok=True)

    def handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw", encoding="utf-8") as f:
            request = json.loads(f.readline() or "{}")
            if not request or self.closing or self.stale():
                self.closing = self.closing or bool(
                    request
                )  # stale: finish running jobs, then exit
                f.write(json.dumps({"status": None}) + "\n")  # the job runs in-process instead
                f.flush()
                return
            with self.lock:
                self.busy += 1
            try:
                status = self.fork(request, conn)
            finally:
                with self.lock:
                    self.busy -= 1
                    self.last = time.time()
            try:
                f.write(json.dumps({"status": status}) + "\n")
                f.flush()
            except OSError:
                pass  # the calling job went away

    def fork(self, request: dict[str, Any], conn: socket.socket) -> int:
        pid = os.fork()
        if pid == 0:  # the job
            status = 1
            try:
                os.chdir(request["cwd"])
                context = {**request.get("context", {}), "worker": f"warm (pid {os.getppid()})"}
                status = _call(
                    request["entry"],
                    request["kwargs"],
                    request["log"],
                    request.get("threads"),
                    context,
                )
            finally:
                os._exit(status)
        conn.settimeout(0.5)
        while True:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(raw)
                return code if code >= 0 else 1  # killed by a signal
            try:
                if conn.recv(1, socket.MSG_PEEK) == b"":  # the calling job went away
                    os.kill(pid, signal.SIGTERM)
            except TimeoutError:
                pass
            except OSError:
                os.kill(pid, signal.SIGTERM)


def write_text_job(path: str, text: str) -> None:
    """A diagnostic entry: write `text` to `path` (MworkError for empty text). Used by the tests."""
    from mwork.atomic import atomic_write_text
    from mwork.errors import MworkError

    if not text:
        raise MworkError("nothing to write", "pass some text")
    atomic_write_text(path, f"{text} {os.getpid()} {os.getppid()}\n")


if __name__ == "__main__":
    _Server(Path(sys.argv[1])).serve()
