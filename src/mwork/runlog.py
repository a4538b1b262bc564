"""Logging set-up of the Snakemake scripts: everything a job prints goes to its rule log.

An `MworkError` raised by the job is the log's last line (`error: <problem>; <fix>`), exit 2; a
job killed by a signal (an out-of-memory kill) ends it with the signal and its likely cause
(`mwork.jobwatch`).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path

from mwork.errors import MworkError
from mwork.jobwatch import watch_job


def setup_rule_logging(log_path: str, **context: object) -> logging.Logger:
    """Send stderr and `logging` to `log_path` (line-buffered) and log versions + rule context."""
    stream = open(log_path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the process)
    watch_job(log_path)  # a kill by a signal (OOM) ends the log with its cause (before CUDA init)
    sys.stderr = ProgressLines(stream)  # tqdm's \r updates: a line (with its ETA) every 30 s
    logging.basicConfig(
        level=logging.INFO,
        stream=stream,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("mwork.rule")
    sys.excepthook = _log_mwork_error
    import mwork

    versions = f"mwork {mwork.__version__}, python {platform.python_version()}"
    torch = sys.modules.get("torch")  # logged when the job uses it; light jobs never import it
    if torch is not None:
        cuda = torch.version.cuda if torch.cuda.is_available() else "none"
        versions += f", torch {torch.__version__} (cuda {cuda})"
    log.info("%s", versions)
    for key, value in context.items():
        log.info("%s: %s", key, value)
    atexit.register(log.info, "job done")  # the log's last line times the job's end
    return log


def _log_mwork_error(exc_type, exc, tb) -> None:
    """An `MworkError` ends the rule log with its one line `error: ...` and exit status 2 (the
    user's problem, no traceback); anything else gets Python's usual traceback."""
    if not issubclass(exc_type, MworkError):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.shutdown()  # flush the log handlers before the last line
    print(f"error: {exc}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)  # an excepthook cannot change the exit status otherwise


class ProgressLines:
    """A rule log's stderr: progress bars (tqdm's `\r`-separated updates, e.g. `PLND: 64%|...|
    47/74 [05:20<03:10, 7.06s/batch]`, the `<03:10` being the ETA) become one line every
    `interval` seconds and at 100%, instead of thousands of updates on one line; other text passes
    through unchanged."""

    def __init__(self, stream, interval: float = 30.0) -> None:
        self._stream, self._interval, self._last = stream, interval, -math.inf
        self._in_bar = False  # a bar's closing newline is already written
        self._done_bar: str | None = None  # the bar whose 100% line was written last

    def write(self, text: str) -> int:
        if "\r" not in text:
            if self._in_bar and text == "\n":
                self._in_bar = False
                return len(text)
            self._in_bar = False
            return self._stream.write(text)
        self._in_bar = True
        for part in text.split("\r"):
            line = part.strip("\n")
            if not line.strip():
                continue
            now = time.monotonic()
            done = "100%" in line
            if done and self._done_bar == line.split("|")[0]:
                continue  # tqdm's close repeats the final update
            starts = self._done_bar is not None and not done  # a new bar after a finished one
            if not done:
                self._done_bar = None
            if done or starts or now - self._last >= self._interval:
                self._stream.write(line + "\n")
                self._last = now
                self._done_bar = line.split("|")[0] if done else None
        return len(text)

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):  # flush, fileno, encoding, ...: the log file's
        return getattr(self._stream, name)


def failed_log_tails(since: float, root: str = "logs", n_lines: int = 15, most: int = 3) -> str:
    """The last lines of rule logs written since `since` (epoch seconds) that end in an error
    (`error: ...` or a traceback): what the terminal shows when a workflow run fails."""
    failed = []
    for path in sorted(Path(root).rglob("*.log")) if Path(root).is_dir() else []:
        try:
            if path.stat().st_mtime < since:
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        tail = [l for l in lines if l.strip()][-n_lines:]
        text = "\n".join(lines)
        if tail and (tail[-1].startswith("error:") or "Traceback (most recent call last)" in text):
            failed.append(f"--- last lines of {path} ---\n" + "\n".join(tail))
    more = (
        f"\n(and {len(failed) - most} more failed logs under {root}/)" if len(failed) > most else ""
    )
    return "\n".join(failed[:most]) + more
