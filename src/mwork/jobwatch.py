"""A job killed by a signal says so in its rule log (issue 26, class 7).

An out-of-memory kill (SIGKILL) cannot be caught by the process it kills, so the rule log would end
mid-sentence with no cause. `watch_job(log_path)` forks once, early in a job (`mwork.runlog`, before
CUDA is touched): the child returns and runs the job; the parent, a few MiB that share the child's
pages, only waits. When the child dies by a signal the parent appends one line to the rule log,

    error: the job was killed by signal 9 (SIGKILL) after 12.3 s; ...

and then kills itself with the same signal, so Snakemake (and Slurm) report the same cause as
before ("died with <Signals.SIGKILL: 9>") instead of an exit status. A normal exit status is passed
on unchanged. Termination signals sent to the parent (SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2) are
forwarded to the job; SIGINT reaches both through the process group, so the parent ignores it.

`MWORK_NO_JOB_WATCH=1` turns the watcher off (e.g. under a debugger).
"""

from __future__ import annotations

import os
import signal
import sys
import time

FORWARDED = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
CAUSES = {
    signal.SIGKILL: "the out-of-memory killer sends SIGKILL when the machine or the job's memory "
    "limit runs out (check `dmesg` or Slurm's `sacct -j ID -o state`); raise the job's memory or "
    "lower its batch size",
    signal.SIGTERM: "the job was stopped (Snakemake, Slurm's time limit or a user)",
    signal.SIGBUS: "a memory-mapped file was truncated or the disk is full",
    signal.SIGSEGV: "a crash in native code",
}


def kill_line(sig: int, seconds: float) -> str:
    """The rule log's last line for a job killed by `sig` after `seconds`."""
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    cause = CAUSES.get(sig, "the job did not finish")
    return (
        f"error: the job was killed by signal {sig} ({name}) after {seconds:.1f} s; {cause}. "
        "mwork does not retry it: fix the cause, then rerun"
    )


def watch_job(log_path: str) -> None:
    """Fork; return in the child (the job). The parent waits and never returns (see module)."""
    if os.environ.get("MWORK_NO_JOB_WATCH") or not hasattr(os, "fork"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        return
    _parent(pid, log_path, start)


def _parent(pid: int, log_path: str, start: float) -> None:  # pragma: no cover (forked process)
    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for name in FORWARDED:
        signal.signal(getattr(signal, name), forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            with open(log_path, "ab+") as f:
                f.seek(0, os.SEEK_END)
                newline = b""
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    newline = b"" if f.read(1) == b"\n" else b"\n"
                f.write(newline + kill_line(sig, time.monotonic() - start).encode() + b"\n")
        except OSError:
            pass
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled anyway
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal that does not end the process (stop signals are not waited)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
