"""Exact Eq. 8 of one document without a Q/K norm: blocks of (query heads × query rows).

Per block, with p = softmax(f(S)) and z = −s·Δ, the perturbed probabilities are p' = p·e^z / W
with W = Σ_s p·e^z, so

    ||p' − p||²  (one row, one dim) = Σ_s p² (e^z − W)² / W²

i.e. one exp per (row, key, dim) and two reductions over keys (the multiplicative form: on CPU
the C kernel of mwork.plnd.kernel, otherwise mwork.plnd.softmax_change). Where that form could
overflow (|z| above FAST_EXP_LIMIT, from a bound computed before the exp) and under soft-capping
(f is not a shift), those (head, dim) pairs take the direct form softmax(f(S − s·Δ)) −
softmax(f(S)) instead (`_plan` decides). Both are exact up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mwork.plnd.budget import GENERAL_BUFFERS, MIN_ROW_BLOCKS
from mwork.plnd.kernel import fused_rows, key_span, sq_change_rows
from mwork.plnd.removal import Removal
from mwork.plnd.softmax_change import FAST_EXP_LIMIT, masked_probs, sq_change_fast


def score_document(
    q: torch.Tensor,
    k: torch.Tensor,
    removals: list[Removal],
    allowed: torch.Tensor,
    bias: torch.Tensor | None,
    scaling: float,
    softcap: float | None,
    delta_scale: float,
    budget_elems: int,
    kernel: str | bool = False,
) -> list[torch.Tensor]:
    """Σ_t ||p'_t − p_t||² of one document for each removal, per query head and dim.

    Args:
        q: [n_heads, n, d] post-RoPE queries of the document's n real tokens.
        k: [n_heads, n, d] post-RoPE keys of each query head's group.
        removals: the terms to score (Q and K, or one shared term).
        allowed: [n, n] bool mask of the document; bias: [n_heads, 1 or n, n] or None.
        budget_elems: elements of the largest work tensor.
        kernel: score the multiplicative form with a fused kernel: "compiled" (or True) the C
            kernel (mwork.plnd.kernel; CPU tensors), "triton" mwork.plnd.triton_qk; False: torch.

    Returns:
        one [n_heads, d] tensor per removal.
    """
    n_heads, n, d = q.shape
    rows_fn = fused_rows(kernel) if kernel == "triton" else sq_change_rows
    # a fused kernel's work is the [rows, keys] scores; the torch form's the [rows, keys, d] z
    per_row = n * (1 if kernel else d) * (GENERAL_BUFFERS if softcap is not None else 1)
    rows = max(1, budget_elems // per_row)
    tb = min(n, rows, -(-n // MIN_ROW_BLOCKS) if n >= 16 * MIN_ROW_BLOCKS else n)
    hb = max(1, min(n_heads, rows // tb))
    starts = list(range(0, n, tb))
    # keys any row of a block may see: one contiguous span per row block (one sync per document)
    seen = torch.stack([allowed[t0 : t0 + tb].any(0) for t0 in starts]).cpu()
    plans = [_plan(rem, delta_scale, tb, softcap, q.dtype) for rem in removals]
    out = [torch.zeros(n_heads, d, dtype=q.dtype, device=q.device) for _ in removals]
    work = None
    if softcap is None and not kernel:  # one buffer for every block: no fresh pages per block
        work = torch.empty(hb * tb * n * d, dtype=q.dtype, device=q.device)
    for blk, (t0, keys) in enumerate(zip(starts, seen, strict=True)):
        t1 = min(n, t0 + tb)
        idx = keys.nonzero()
        s0, s1 = int(idx[0]), int(idx[-1]) + 1
        allow = allowed[t0:t1, s0:s1]
        span = key_span(allow) if kernel else None
        for h0 in range(0, n_heads, hb):
            h1 = min(n_heads, h0 + hb)
            s = scaling * q[h0:h1, t0:t1] @ k[h0:h1, s0:s1].transpose(-1, -2)  # [hb, tb, ns]
            if bias is not None:
                s = s + (bias[h0:h1, :, s0:s1] if bias.shape[1] == 1 else bias[h0:h1, t0:t1, s0:s1])
            p = masked_probs(s, allow, softcap)
            for plan, acc in zip(plans, out, strict=True):
                x1, x2, y1, y2 = (
                    None if x is None else x[h0:h1, t0:t1] if j < 2 else x[h0:h1, s0:s1]
                    for j, x in enumerate((plan.fx1, plan.fx2, plan.rem.y1, plan.rem.y2))
                )
                if x1 is not None and kernel:
                    acc[h0:h1] += rows_fn(x1, x2, y1, y2, p, span)
                elif x1 is not None:
                    acc[h0:h1] += _score_fast(x1, x2, y1, y2, p, work)
                pairs = plan.direct.get(blk)
                if pairs is not None:
                    h, j = pairs[0], pairs[1]
                    keep = (h >= h0) & (h < h1)
                    if keep.any():
                        h, j = h[keep], j[keep]
                        sq = _score_direct(
                            plan,
                            h,
                            j,
                            (t0, t1),
                            (s0, s1),
                            h0,
                            s,
                            p,
                            allow,
                            softcap,
                            delta_scale,
                            budget_elems,
                        )
                        acc.index_put_((h, j), sq, accumulate=True)
    return out


@dataclass(frozen=True)
class _Plan:
    """How one removal is scored in one document.

    Attributes:
        rem: the removal.
        fx1, fx2: [n_heads, n, d] −s·x1, −s·x2 with the directly scored pairs zeroed, or None
            (fx2 None without RoPE split; both None when everything is scored directly).
        direct: row block -> (heads, dims) [2, m] int64 of the pairs scored directly there.
    """

    rem: Removal
    fx1: torch.Tensor | None
    fx2: torch.Tensor | None
    direct: dict[int, torch.Tensor]


def _plan(
    rem: Removal, delta_scale: float, tb: int, softcap: float | None, dtype: torch.dtype
) -> _Plan:
    """Split (head, row block, dim) between the multiplicative form and the direct one.

    The multiplicative form needs e^z finite for z = −s·Δ: |z| ≤ Σ max_rows|x|·max_keys|y| per
    (head, row block, dim), checked against FAST_EXP_LIMIT; soft-capping needs the direct form.
    """
    n_heads, n, d = rem.x1.shape
    n_blk = -(-n // tb)
    if softcap is not None:
        every = torch.ones(n_heads, n_blk, d, dtype=torch.bool)
        return _Plan(rem, None, None, _by_block(every.nonzero().T))
    fx1 = rem.x1 * -delta_scale
    fx2 = None if rem.x2 is None else rem.x2 * -delta_scale

    def block_max(x: torch.Tensor) -> torch.Tensor:  # [n_heads, n_blk, d] max |x| per row block
        pad = n_blk * tb - n
        xa = torch.nn.functional.pad(x.abs(), (0, 0, 0, pad)) if pad else x.abs()
        return xa.view(n_heads, n_blk, tb, d).amax(2)

    bound = block_max(fx1) * rem.y1.abs().amax(1)[:, None]
    if fx2 is not None:
        bound = bound + block_max(fx2) * rem.y2.abs().amax(1)[:, None]
    direct = bound > FAST_EXP_LIMIT[dtype]  # [n_heads, n_blk, d]
    pairs = direct.nonzero().T.cpu()  # one sync per document and removal
    if pairs.shape[1]:
        rows = direct.repeat_interleave(tb, dim=1)[:, :n]
        fx1 = fx1.masked_fill(rows, 0.0)  # those pairs contribute 0 to the multiplicative form
        fx2 = None if fx2 is None else fx2.masked_fill(rows, 0.0)
    return _Plan(rem, fx1, fx2, _by_block(pairs))


def _by_block(pairs: torch.Tensor) -> dict[int, torch.Tensor]:
    """[3, m] (head, block, dim) on any device -> block -> [2, m_block] (head, dim) there."""
    pairs = pairs.cpu()
    out = {}
    for blk in pairs[1].unique().tolist():
        sel = pairs[1] == blk
        out[blk] = pairs[:, sel][[0, 2]]
    return out


def _score_fast(
    x1: torch.Tensor,
    x2: torch.Tensor | None,
    y1: torch.Tensor,
    y2: torch.Tensor | None,
    p: torch.Tensor,
    work: torch.Tensor,
) -> torch.Tensor:
    """Multiplicative form over one block: Σ_t Σ_s p²(e^z − W)² / W², W = Σ_s p·e^z.

    Args:
        x1, x2: [hb, tb, d] −s·x of the block's rows; y1, y2: [hb, ns, d] its keys (x2/y2 or None).
        p: [hb, tb, ns] probabilities of the block (0 where not allowed).
        work: flat buffer of at least hb·tb·ns·d elements.

    Returns:
        [hb, d]
    """
    hb, tb, d = x1.shape
    ns = y1.shape[1]
    z = work[: hb * tb * ns * d].view(hb, tb, ns, d)
    torch.mul(x1[:, :, None], y1[:, None], out=z)  # z = −s·Δ
    if x2 is not None:
        z.addcmul_(x2[:, :, None], y2[:, None])
    return sq_change_fast(z, p)


def _score_direct(
    plan: _Plan,
    h: torch.Tensor,
    j: torch.Tensor,
    rows: tuple[int, int],
    keys: tuple[int, int],
    h0: int,
    s: torch.Tensor,
    p: torch.Tensor,
    allow: torch.Tensor,
    softcap: float | None,
    delta_scale: float,
    budget_elems: int,
) -> torch.Tensor:
    """Direct form softmax(f(S − s·Δ)) − softmax(f(S)) for some (head, dim) pairs of one block.

    Args:
        h, j: [m] heads (absolute) and dims of the pairs.
        rows, keys: the block's [start, end) rows and key span; h0: its first head.
        s, p: [hb, tb, ns] raw scores and probabilities of the block; allow: [tb, ns].

    Returns:
        [m] Σ_t ||p'_t − p_t||² per pair.
    """
    (t0, t1), (s0, s1) = rows, keys
    rem = plan.rem
    step = max(1, budget_elems // (GENERAL_BUFFERS * (t1 - t0) * (s1 - s0)))
    h, j = h.to(s.device), j.to(s.device)
    out = []
    for f0 in range(0, h.numel(), step):
        hh, jj = h[f0 : f0 + step], j[f0 : f0 + step]
        x1 = rem.x1[hh, t0:t1, jj] * -delta_scale  # [m, tb]
        lg = torch.baddbmm(s[hh - h0], x1[:, :, None], rem.y1[hh, s0:s1, jj][:, None])
        if rem.x2 is not None:  # [m, tb, ns]: S − s·Δ, Δ as outer products
            x2 = rem.x2[hh, t0:t1, jj] * -delta_scale
            lg.baddbmm_(x2[:, :, None], rem.y2[hh, s0:s1, jj][:, None])
        diff = masked_probs(lg, allow, softcap) - p[hh - h0]
        out.append(diff.square_().sum(dim=(1, 2)))
    return torch.cat(out)
