"""The compiled CPU kernel of Eq. 8's multiplicative form (csrc/sq_change.c), fused over keys.

mwork.plnd.softmax_change writes every logit change z [heads, rows, keys, dims] to memory and makes
five passes over it; on a CPU those passes, not the arithmetic, set the time of Q/K scoring. The C
kernel takes one query row and one vector of dims at a time (as many lanes as a register of the
CPU holds: 16 floats with AVX-512, 8 with AVX2, 4 with SSE2/NEON): z, e^z and e^z − 1 in
registers, the second key sum over an L1-sized buffer, in float32 (float64 for float64 data) with
the row sums in double. It is exact up to rounding like the torch form (tested against it and
against literal ablation in float64; more accurate in float32, see the C file), deterministic,
and independent of the thread count: each head's rows are summed by one thread.

The source is compiled and verified on first use (mwork.plnd.kernel_build); which scorer runs
(`detection.qk_kernel`) is mwork.plnd.backend's. `fused_rows` names the fused scorer of a backend:
this one on CPU, mwork.plnd.triton_qk's Triton kernel on GPUs, both with this signature.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import torch
import torch.nn.functional as F

from mwork.plnd.kernel_build import load_kernel


def fused_rows(backend: str | bool) -> Callable[..., torch.Tensor]:
    """The fused scorer of `backend`: "compiled" (or True) this module's sq_change_rows,
    "triton" mwork.plnd.triton_qk.sq_change_rows (imported on first use)."""
    if backend == "triton":
        from mwork.plnd.triton_qk import sq_change_rows as triton_rows

        return triton_rows
    return sq_change_rows


def key_span(allow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """allow [tb, ns] -> ([tb], [tb]) first and past-the-last allowed key per row (0, 0: none)."""
    a = allow.to(torch.uint8)
    has = allow.any(1)
    lo = a.argmax(1)
    hi = allow.shape[1] - a.flip(1).argmax(1)
    return lo.where(has, 0), hi.where(has, 0)


def sq_change_rows(
    fx1: torch.Tensor | None,
    fx2: torch.Tensor | None,
    y1: torch.Tensor | None,
    y2: torch.Tensor | None,
    p: torch.Tensor,
    span: tuple[torch.Tensor, torch.Tensor],
    g_row: torch.Tensor | None = None,
    g_key: torch.Tensor | None = None,
    s0: torch.Tensor | None = None,
) -> torch.Tensor:
    """Σ_t ||softmax(L_t + z_t) − p_t||² per head and column of hb heads, tb rows, ns keys, d
    columns, with

        z[h,t,s,i] = fx1[h,t,i]·y1[h,s,i] + fx2[h,t,i]·y2[h,s,i] + (g_row[h,t,i] + g_key[h,s,i])·s0[h,t,s]

    (each part optional: mwork.plnd.exact passes the rank-1 parts, mwork.plnd.terms also the
    factors).

    Args:
        fx1, fx2, g_row: [hb, tb, d] row parts, or None.
        y1, y2, g_key: [hb, ns, d] key parts (y1 with fx1, y2 with fx2), or None.
        p: [hb, tb, ns] the rows' probabilities (0 outside the allowed keys).
        span: ([tb], [tb]) int64 first and past-the-last key of each row (empty: row skipped).
        s0: [hb, tb, ns] the scores g_row/g_key multiply (needed with either).

    Returns:
        [hb, d], as mwork.plnd.softmax_change.sq_change_fast(z, p) up to rounding.
    """
    kern = load_kernel(p.dtype)
    fn = kern.fn
    hb, tb, ns = p.shape
    rows, keys = (fx1, fx2, g_row), (y1, y2, g_key)
    d = next(x.shape[-1] for x in rows + keys if x is not None)
    _check_shapes(rows, keys, s0, p, span)  # the C code trusts them
    pad = -d % kern.lanes  # dims padded to whole vectors with zeros (z = 0: a column of no change)

    def padded(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        return (F.pad(x, (0, pad)) if pad else x).contiguous()

    xs = [padded(x) for x in (fx1, fx2, y1, y2, g_row, g_key)]
    xs += [None if s0 is None else s0.contiguous(), p.contiguous()]
    lo, hi = (s.to(torch.int64).contiguous() for s in span)
    out = torch.zeros(hb, d + pad, dtype=p.dtype)
    step = -(-hb // max(1, min(hb, torch.get_num_threads())))
    parts = [(h0, min(hb, h0 + step)) for h0 in range(0, hb, step)]

    def run(part: tuple[int, int]) -> int:
        h0, h1 = part
        ptr = [None if x is None else x[h0:h1].data_ptr() for x in xs]
        return fn(
            h1 - h0, tb, ns, d + pad, *ptr, lo.data_ptr(), hi.data_ptr(), out[h0:h1].data_ptr()
        )

    codes = [run(parts[0])] if len(parts) == 1 else list(_pool(len(parts)).map(run, parts))
    if any(codes):
        raise MemoryError(f"Q/K kernel: no memory for a {ns}-key row buffer")
    return out[:, :d]


def _check_shapes(rows: tuple, keys: tuple, s0, p: torch.Tensor, span: tuple) -> None:
    """Shapes, dtypes and pairings sq_change_rows needs; ValueError otherwise."""
    hb, tb, ns = p.shape
    d = next(x.shape[-1] for x in rows + keys if x is not None)
    want = [(x, (hb, tb, d)) for x in rows] + [(x, (hb, ns, d)) for x in keys]
    want.append((s0, (hb, tb, ns)))
    for name, (x, shape) in zip(
        ("fx1", "fx2", "g_row", "y1", "y2", "g_key", "s0"), want, strict=True
    ):
        if x is not None and (tuple(x.shape) != shape or x.dtype != p.dtype or x.is_cuda):
            raise ValueError(f"sq_change_rows: {name} must be a CPU {p.dtype} tensor of {shape}")
    for (x, y), name in zip(
        ((rows[0], keys[0]), (rows[1], keys[1])), ("fx1/y1", "fx2/y2"), strict=True
    ):
        if (x is None) != (y is None):
            raise ValueError(f"sq_change_rows: {name} come together")
    if s0 is None and (rows[2] is not None or keys[2] is not None):
        raise ValueError("sq_change_rows: g_row/g_key need s0")
    lo, hi = span
    if lo.shape != (tb,) or hi.shape != (tb,) or bool((lo < 0).any() | (hi > ns).any()):
        raise ValueError(f"sq_change_rows: spans must be [{tb}] within [0, {ns}]")


@cache
def _pool(n: int) -> ThreadPoolExecutor:
    """Threads for the kernel calls (ctypes releases the GIL while C runs)."""
    return ThreadPoolExecutor(n, thread_name_prefix="mwork-qk")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked job (mwork.worker) gets its own
