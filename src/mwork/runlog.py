"""Logging set-up shared by the Snakemake script adapters: everything goes to the rule's log."""

from __future__ import annotations

import logging
import platform
import sys


def setup_rule_logging(log_path: str, **context: object) -> logging.Logger:
    """Send stderr and `logging` to `log_path` (line-buffered) and log versions + rule context."""
    stream = open(log_path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives with the process)
    sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=stream, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("mwork.rule")
    import torch

    import mwork

    cuda = torch.version.cuda if torch.cuda.is_available() else "none"
    log.info("mwork %s, python %s, torch %s (cuda %s)", mwork.__version__, platform.python_version(),
             torch.__version__, cuda)
    for key, value in context.items():
        log.info("%s: %s", key, value)
    return log
