"""First-order (linearised) Eq. 8 for Q/K importance: `detection.qk_scoring: first-order`.

An approximation, off by default (`qk_scoring: exact`). Exact Eq. 8 for query head h, query row t
and zeroed dim i is ||softmax(f(S − s·Δ)) − softmax(f(S))||², with S the row's scores, s the
model's scaling, f its soft-capping (tanh(x/c)·c, or the identity) + mask, and

    Δ[t, s] = x1[t]·y1[s] + x2[t]·y2[s]          (x2/y2: RoPE's partner dim; absent without RoPE)

the term that zeroing the dim removes from the scores (see `mwork.plnd.removal.Removal`).
Linearising the softmax around p = softmax(f(S)) with δ = −s·Δ and g = f'(S) (1 − tanh²(S/c)
under soft-capping, else 1): p' − p ≈ J δ, (Jδ)_s = p_s (g_s δ_s − Σ_s' p_s' g_s' δ_s'), so

    ||Jδ||² = s² · Σ_s p_s² (u_s − ū)²,   u_s = g_s (x1 y1_s + x2 y2_s),   ū = Σ_s p_s u_s
            = s² · (A − 2 ū B + ū² C)

    A = x1² [(P∘G)² y1²] + 2 x1 x2 [(P∘G)² (y1∘y2)] + x2² [(P∘G)² y2²]
    B = x1 [(P²∘G) y1] + x2 [(P²∘G) y2]
    ū = x1 [(P∘G) y1] + x2 [(P∘G) y2]
    C = Σ_s p_s²

with P [rows, keys] the masked probabilities, G the derivative of f, squares elementwise and [M y]
matrix products with the [keys, d] key tensors: no exp per (row, key, dim), only matrix products
of [n, n] matrices with [n, d] tensors. Without soft-capping (G = 1) u − ū does not change when a
per-(document, head, dim) constant is subtracted from y1 or y2 (Σ_s p_s = 1), so the keys are
centred on their document mean first, which keeps the cancellation in A − 2ūB + ū²C small. The
value per (row, dim) is clamped at ≥ 0 before the sum over rows (rounding can make the expanded
form slightly negative). Padded keys get p = 0 and padded rows x = 0, so a whole padded batch is
scored at once (no per-document loop); `mwork.plnd.qk.qk_importance` sums K over the query heads of
its group and takes the square root, as in the exact mode.

The error is second order in the perturbation: the approximation is good where removing one dim
moves the scores little (|s·Δ| ≪ 1) and overestimates or underestimates otherwise (the softmax
saturates); benchmarks/qk_approx_agreement.py measures how often the per-document top-k and the
final language sets agree with the exact mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mwork.errors import MworkError

if TYPE_CHECKING:
    from mwork.adapters import AttnGeometry
    from mwork.plnd.removal import Removal

QK_SCORING_MODES = ("exact", "first-order")
"""`detection.qk_scoring`: exact Eq. 8 (default) or its first-order expansion (this module)."""

_KEY_TERMS = 5
"""Key tensors multiplied per removal: y1, y2, y1², y2², y1·y2 (sets the block's widest tensor)."""


def check_qk_scoring(qk_scoring: str, importance: str, has_qk_norm: bool = False) -> None:
    """Raise MworkError unless `qk_scoring` can be used with `importance` (and the model).

    Args:
        qk_scoring: "exact" or "first-order".
        importance: "paper" or "released-code".
        has_qk_norm: the model has an RMSNorm on queries/keys (Qwen3, Gemma-3, OLMo-2).
    """
    if qk_scoring not in QK_SCORING_MODES:
        raise MworkError(
            f"unknown qk_scoring '{qk_scoring}'", f"use one of {', '.join(QK_SCORING_MODES)}"
        )
    if qk_scoring == "exact":
        return
    if importance != "paper":
        raise MworkError(
            f"qk_scoring '{qk_scoring}' approximates the paper's Eq. 8 and has no meaning with "
            f"importance '{importance}'",
            "use qk_scoring: exact, or importance: paper",
        )
    if has_qk_norm:
        raise MworkError(
            f"qk_scoring '{qk_scoring}' does not support models with a Q/K norm "
            "(qwen3, gemma3, olmo2: zeroing a dim rescales the whole row)",
            "use qk_scoring: exact",
        )


def score_batch_first_order(
    q: torch.Tensor,
    removals: list[Removal],
    k: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    budget_elems: int,
) -> list[torch.Tensor]:
    """First-order Σ_t ||p'_t − p_t||² of every document of a batch, per query head and dim.

    The whole right- (or otherwise) padded batch at once, in blocks of (documents × query heads
    × query rows) whose widest work tensor has at most `budget_elems` elements: padded keys get
    p = 0 from the mask, padded rows are dropped from the sum, so no per-document loop is needed.

    Args:
        q: [b, n_heads, l, d] post-RoPE queries, 0 at padded positions.
        removals: the terms to score; each x* [b, n_heads, l, d] (rows), y* [b, n_heads, l, d]
            (keys of each query head's group), 0 at padded positions.
        k: [b, n_heads, l, d] post-RoPE keys of each query head's group.
        geo: the layer's geometry (allowed [b, 1, l, l], bias, scaling, softcap).
        token_mask: [b, l] 1 for real tokens.
        budget_elems: elements of the widest work tensor.

    Returns:
        one [b, n_heads, d] tensor per removal (Σ over the document's real rows, times s²).
    """
    b, n_heads, seq, d = q.shape
    rows = max(1, budget_elems // max(seq, _KEY_TERMS * d))
    tb = min(seq, rows)
    hb = max(1, min(n_heads, rows // tb))
    bb = max(1, min(b, rows // (tb * hb)))
    starts = list(range(0, seq, tb))
    allowed = geo.allowed[:, 0]  # [b, l, l]
    seen = torch.stack([allowed[:, t0 : t0 + tb].any(1).any(0) for t0 in starts]).cpu()
    row_mask = token_mask.to(q.dtype)
    centre = geo.softcap is None
    n_real = row_mask.sum(1).clamp_min(1)[:, None, None, None]
    out = [torch.zeros(b, n_heads, d, dtype=q.dtype, device=q.device) for _ in removals]
    for t0, span in zip(starts, seen, strict=True):
        t1 = min(seq, t0 + tb)
        idx = span.nonzero()
        if idx.numel() == 0:
            continue
        s0, s1 = int(idx[0]), int(idx[-1]) + 1  # keys any row of the block may see
        for b0 in range(0, b, bb):
            b1 = min(b, b0 + bb)
            allow = allowed[b0:b1, None, t0:t1, s0:s1]
            rm = row_mask[b0:b1, None, t0:t1, None]  # [bb, 1, tb, 1]
            for h0 in range(0, n_heads, hb):
                h1 = min(n_heads, h0 + hb)
                blk = (slice(b0, b1), slice(h0, h1))
                s = geo.scaling * q[*blk, t0:t1] @ k[*blk, s0:s1].transpose(-1, -2)
                if geo.bias is not None:  # [bb, hb, tb, ns]
                    bias = geo.bias[*blk, :, s0:s1]
                    s = s + (bias if bias.shape[2] == 1 else bias[:, :, t0:t1])
                p, g = _probs_and_slope(s, allow, geo.softcap)
                for rem, acc in zip(removals, out, strict=True):
                    x1 = rem.x1[*blk, t0:t1] * rm
                    x2 = None if rem.x2 is None else rem.x2[*blk, t0:t1] * rm
                    ys = _key_terms(rem, blk, (s0, s1), n_real[b0:b1] if centre else None)
                    acc[b0:b1, h0:h1] += _block_first_order(x1, x2, ys, p, g)
    return [acc * geo.scaling**2 for acc in out]


def _key_terms(
    rem: Removal, blk: tuple[slice, slice], keys: tuple[int, int], n_real: torch.Tensor | None
) -> torch.Tensor:
    """[bb, hb, ns, m·d] key tensors of a block: (y1, y2, y1², y2², y1·y2), or (y1, y1²).

    n_real: [bb, 1, 1, 1] real tokens per document, to centre each (document, head, dim) on its
    mean over the document's keys first (exact only when G = 1), or None (no centring).
    """
    s0, s1 = keys

    def centred(y: torch.Tensor) -> torch.Tensor:
        part = y[*blk, s0:s1]
        if n_real is None:
            return part
        mean = y[blk].sum(dim=2, keepdim=True) / n_real  # padded positions hold 0
        return part - mean

    y1 = centred(rem.y1)
    y2 = None if rem.y2 is None else centred(rem.y2)
    if y2 is None:
        return torch.cat([y1, y1.square()], dim=-1)
    return torch.cat([y1, y2, y1.square(), y2.square(), y1 * y2], dim=-1)


def _block_first_order(
    x1: torch.Tensor,
    x2: torch.Tensor | None,
    ys: torch.Tensor,
    p: torch.Tensor,
    g: torch.Tensor | None,
) -> torch.Tensor:
    """Σ_t clamp(A − 2ūB + ū²C, ≥ 0) over one block (without the factor s²).

    Args:
        x1, x2: [..., tb, d] the removal's row factors, 0 on padded rows (x2 None without RoPE
            split); leading dims [...] = (documents, heads) of the block.
        ys: [..., ns, m·d] key terms from `_key_terms` (m = 5, or 2 without x2).
        p: [..., tb, ns] probabilities (0 where not allowed); g: the same shape, f'(S), or None
            (f' = 1).

    Returns:
        [..., d]
    """
    d = x1.shape[-1]
    lin = 2 * d if x2 is not None else d  # ys[..., :lin]: y1 (, y2); the rest: squares (, cross)
    p2 = p.square()
    pg = p if g is None else p * g
    mean = pg @ ys[..., :lin]  # [..., tb, lin]: Σ_s p g y
    if g is None:
        m2 = p2 @ ys  # Σ_s p² y and Σ_s p² (squares): one product
        lin2, sq2 = m2[..., :lin], m2[..., lin:]
    else:
        lin2 = (p2 * g) @ ys[..., :lin]
        sq2 = pg.square() @ ys[..., lin:]
    c = p2.sum(dim=-1, keepdim=True)  # [..., tb, 1]
    if x2 is None:
        u_bar = x1 * mean
        b = x1 * lin2
        a = x1.square() * sq2
    else:
        u_bar = x1 * mean[..., :d] + x2 * mean[..., d:]
        b = x1 * lin2[..., :d] + x2 * lin2[..., d:]
        a = (
            x1.square() * sq2[..., :d]
            + x2.square() * sq2[..., d : 2 * d]
            + 2 * x1 * x2 * sq2[..., 2 * d :]
        )
    v = a - 2 * u_bar * b + u_bar.square() * c
    return v.clamp_min_(0).sum(dim=-2)


def _probs_and_slope(
    s: torch.Tensor, allowed: torch.Tensor, softcap: float | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """softmax over keys of f(S) (soft-capped, masked) and f'(S) (None: f is the identity).

    Args:
        s: [..., tb, ns] raw scores; allowed: bool, broadcastable to s.

    Returns:
        (p, g or None), both shaped like s
    """
    g = None
    if softcap is not None:
        th = torch.tanh(s / softcap)
        s = th * softcap
        g = 1 - th.square()
    # finite fill, as mwork.plnd.softmax_change.masked_probs: a row that sees no key gives a
    # uniform row, not NaN
    s = s.masked_fill(~allowed, torch.finfo(s.dtype).min)
    return torch.softmax(s, dim=-1), g
