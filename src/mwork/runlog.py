"""Logging set-up of the Snakemake scripts: everything a job prints goes to its rule log.

An `MworkError` raised by the job is the log's last line (`error: <problem>; <fix>`), exit 2.
"""

from __future__ import annotations

import atexit
import logging
import os
import platform
import sys

from mwork.errors import MworkError


def setup_rule_logging(log_path: str, **context: object) -> logging.Logger:
    """Send stderr and `logging` to `log_path` (line-buffered) and log versions + rule context."""
    stream = open(log_path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the process)
    sys.stderr = stream
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
