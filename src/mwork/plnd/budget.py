"""Working memory and threads of Q/K scoring: the byte budget of a block, and how blocks are cut.

Q/K scoring (Eq. 8) works in blocks of query heads × query rows whose largest work tensor fits a
budget in bytes (`detection.qk_budget_mb`, default `default_qk_budget`); the constants below set
the defaults and the block shapes shared by the exact scorers (mwork.plnd.exact, without a Q/K
norm; mwork.plnd.terms, with one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

QK_BUDGET_CPU = 4 << 20
"""Default Q/K working memory on CPU, in bytes: blocks that fit a core's L2 cache were fastest
there (single thread, 7B-shaped layer: 4 MiB 1.0x, 1 MiB 0.7x, 16 MiB 0.8x, 256 MiB 0.55x); a
GPU gets a share of its free memory instead."""

QK_BUDGET_GPU_FRACTION = 0.25
"""Share of the free CUDA memory that Q/K scoring uses by default."""

MIN_ROW_BLOCKS = 4
"""Rows of a long document are cut into at least this many blocks, each block attending only to
the keys its rows may see (causal): ~5/8 of the l×l work at a fixed number of steps."""

QK_CPU_THREADS: int | None = None
"""Intra-op threads for Q/K scoring on CPU; None keeps torch's own (Snakemake sets it per job).
On an idle 2-core machine two threads were 1.3x faster than one (7B-shaped layer, Q/K 2.2 s vs
3.3 s); on a heavily shared one a descheduled thread stalls each of the many mid-sized ops at its
OpenMP barrier, and 1 was faster there. Results do not depend on it (tested)."""

GENERAL_BUFFERS = 4
"""Work tensors of the size of one [pairs, rows, keys] block alive at once in the direct form."""


@contextmanager
def intraop_threads(n: int) -> Iterator[None]:
    """torch.set_num_threads(n) for the duration of the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_qk_budget(device: torch.device | str) -> int:
    """Bytes of working memory `qk_importance` uses on `device` when none is given.

    CUDA: QK_BUDGET_GPU_FRACTION of the free memory (torch.cuda.mem_get_info), at least
    QK_BUDGET_CPU; any other device: QK_BUDGET_CPU.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(QK_BUDGET_CPU, int(free * QK_BUDGET_GPU_FRACTION))
    return QK_BUDGET_CPU
