"""PLND importance (paper §2.2): per document, how much each neuron changes its sub-layer output.

All neurons of a layer are scored at once from activations captured by hooks during one forward
pass of a right-padded batch; nothing leaves the device until the batch is done.

`importance="paper"` (default), exact closed forms of Eq. 1 per document c (l valid tokens):

    ffn    Imp_k = ||h_ffn[:, k]||_2 · ||W_down[:, k]||_2                       (Eq. 5, rank-1)
    attn_v Imp_(g,j) = ||Σ_{h∈g} o_h[:, j] ⊗ W_O[:, h·d+j]||_F                (Eq. 5 through W_O;
           o_h = P_h V_g, exact under GQA: a kv dim feeds every query head h of its group g)
    attn_q Imp_(h,i) = ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||_F            (Eq. 8)
    attn_k Imp_(g,i) = sqrt(Σ_{h∈g} ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||²_F)

where S_h = s·Q_h K_gᵀ (+ALiBi), s the model's scaling, f its soft-capping + mask, and Δ_(h,i) the
exact term that zeroing row i of W_Q (or W_K), bias included, removes from Q Kᵀ — *pre*-RoPE,
so RoPE's pairing of dims i and i±d/2 is honoured. Query rows of padding are excluded.

`importance="released-code"` reproduces the official code's proxies (paper.md §2.3/§6):
ffn Σ_t|W_up x_t|; q/k per post-RoPE dim with *unscaled* Δ and a squared norm (k: summed over the
query heads of its group); v Σ_t|o_t| per head dim (summed over the group under GQA).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from mwork.adapters import AttnGeometry, ModelAdapter
from mwork.errors import MworkError
from mwork.qkapprox import check_qk_scoring, score_batch_first_order
from mwork.qkkernel import check_kernel_mode, kernel_for, key_span, sq_change_rows
from mwork.qknorm import normalize_qk, qk_importance_normed
from mwork.softmax_change import FAST_EXP_LIMIT, masked_probs, sq_change_fast

IMPORTANCE_MODES = ("paper", "released-code")


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype PLND scores in: float64 stays float64, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def ffn_importance(
    h: torch.Tensor, w_down_norm: torch.Tensor, token_mask: torch.Tensor
) -> torch.Tensor:
    """Paper Eq. 5 for all FFN units.

    Args:
        h: [b, l, d_ffn] input of W_down.
        w_down_norm: [d_ffn] column norms of W_down.
        token_mask: [b, l] 1 for real tokens.

    Returns:
        [b, d_ffn]
    """
    h = _zero_padding(h, token_mask)
    # sqrt(Σ h²): 6x faster than linalg.vector_norm over the token dim and 5x more accurate
    # (7B FFN, 512 tokens, float32: 7 vs 46 ms; max relative error 1.4e-7 vs 7.0e-7)
    return h.square().sum(dim=1).sqrt_() * w_down_norm


def _zero_padding(x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """x [b, l, ...] with padded positions (possibly NaN in HF) set to 0; x itself if none."""
    pad = token_mask == 0
    if not bool(pad.any()):  # no copy of a [b, l, d_ffn] activation for an unpadded batch
        return x
    return x.masked_fill(pad.view(*pad.shape, *([1] * (x.dim() - 2))), 0.0)


def v_importance(
    o: torch.Tensor, w_o_gram: torch.Tensor, token_mask: torch.Tensor, n_kv: int
) -> torch.Tensor:
    """Exact V importance through W_O, GQA-aware.

    Zeroing kv dim (g, j) removes o_h[:, j] for every query head h of group g, so the output
    change is Σ_h a_h ⊗ w_h and its squared norm is Σ_{h,h'} (a_h·a_h')(w_h·w_h').

    Args:
        o: [b, l, n_heads*d] per-head attention output (input of W_O).
        w_o_gram: [n_kv, d, r, r] Gram matrices w_hᵀw_h' of W_O columns within each group.
        token_mask: [b, l].
        n_kv: number of key/value heads (r = n_heads / n_kv).

    Returns:
        [b, n_kv*d]
    """
    b, seq, _ = o.shape
    _, d, r, _ = w_o_gram.shape
    a = _zero_padding(o, token_mask).reshape(b, seq, n_kv, r, d)
    gram_a = torch.einsum("blgrd,blgsd->bgdrs", a, a)  # [b, n_kv, d, r, r]
    sq = (gram_a * w_o_gram).sum(dim=(-1, -2)).clamp_min(0)
    return sq.sqrt().reshape(b, n_kv * d)


def w_o_gram(w_o: torch.Tensor, n_kv: int, head_dim: int) -> torch.Tensor:
    """[n_kv, d, r, r] Gram matrices of W_O's columns per (group, dim); w_o [d_model, n_heads*d]."""
    d_model, hd = w_o.shape
    w = w_o.view(d_model, n_kv, hd // (n_kv * head_dim), head_dim)
    return torch.einsum("mgrd,mgsd->gdrs", w, w)


def _rope_pair(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a pre-RoPE tensor's dims into their two post-RoPE contributions.

    With HF's rotate_half RoPE, rope(x_i e_i) = x_i (cos_i e_i + σ_i sin_p(i) e_p(i)),
    p(i) = i ± d/2, σ_i = +1 for i < d/2 else −1.

    Args:
        x: [b, n, l, d] pre-RoPE; cos, sin: [b, l, d].

    Returns:
        (x·cos, x·σ·sin[p]) both [b, n, l, d], and the partner permutation p [d].
    """
    d = x.shape[-1]
    perm = torch.cat([torch.arange(d // 2, d), torch.arange(0, d // 2)]).to(x.device)
    sign = torch.ones(d, dtype=x.dtype, device=x.device)
    sign[d // 2 :] = -1
    return x * cos[:, None], x * (sign * sin[..., perm])[:, None], perm


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF rotate_half RoPE. x: [b, n, l, d]; cos/sin: [b, l, d]."""
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1)
    return x * cos[:, None] + rot * sin[:, None]


QK_BUDGET_CPU = 4 << 20
"""Default Q/K working memory on CPU, in bytes: blocks that fit a core's L2 cache were fastest
there (single thread, 7B-shaped layer: 4 MiB 1.0x, 1 MiB 0.7x, 16 MiB 0.8x, 256 MiB 0.55x); a
GPU gets a share of its free memory instead."""

QK_BUDGET_GPU_FRACTION = 0.25
"""Share of the free CUDA memory that Q/K scoring uses by default."""

_FAST_EXP_LIMIT = FAST_EXP_LIMIT
"""Largest |z| admitted by the multiplicative form: exp(z)², summed over keys, stays finite."""

_MIN_ROW_BLOCKS = 4
"""Rows of a long document are cut into at least this many blocks, each block attending only to
the keys its rows may see (causal): ~5/8 of the l×l work at a fixed number of steps."""

QK_CPU_THREADS: int | None = None
"""Intra-op threads for Q/K scoring on CPU; None keeps torch's own (Snakemake sets it per job).
On an idle 2-core machine two threads were 1.3x faster than one (7B-shaped layer, Q/K 2.2 s vs
3.3 s); on a heavily shared one a descheduled thread stalls each of the many mid-sized ops at its
OpenMP barrier, and 1 was faster there. Results do not depend on it (tested)."""

_GENERAL_BUFFERS = 4
"""Work tensors of the size of one [pairs, rows, keys] block alive at once in the direct form."""


@contextmanager
def _intraop_threads(n: int) -> Iterator[None]:
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


@dataclass(frozen=True)
class _Removal:
    """What zeroing one Q or K dim removes from the scores of one document.

    Δ[h, t, s, i] = x1[h, t, i]·y1[h, s, i] (+ x2[h, t, i]·y2[h, s, i], RoPE's partner dim).
    All four are [n_heads, n, d]; y* hold, for each query head, the keys of its kv group.
    """

    x1: torch.Tensor
    y1: torch.Tensor
    x2: torch.Tensor | None
    y2: torch.Tensor | None


def qk_importance(
    q_pre: torch.Tensor,
    k_pre: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    mode: str = "paper",
    budget_bytes: int | None = None,
    chunk_elems: int | None = None,
    cpu_threads: int | None = QK_CPU_THREADS,
    scoring: str = "exact",
    kernel: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 for every Q and K dim of one layer, in blocks of (query heads × query rows).

    Per document only its real tokens are scored; per block of heads and rows, with
    p = softmax(f(S)) and z = −s·Δ, the perturbed probabilities are p' = p·e^z / W with
    W = Σ_s p·e^z, so

        ||p' − p||²  (one row, one dim) = Σ_s p² (e^z − W)² / W²

    i.e. one exp per (row, key, dim) and two reductions over keys. On CPU the C kernel
    (mwork.qkkernel, `kernel`) computes it row by row without writing z to memory; otherwise
    mwork.softmax_change builds z per block and reduces with matrix products.
    Where that form could overflow (|z| above _FAST_EXP_LIMIT, from a bound computed before the
    exp) and under soft-capping (f is not a shift), those (head, dim) pairs take the direct form
    softmax(f(S − s·Δ)) − softmax(f(S)) instead. Both are exact up to rounding.

    Args:
        q_pre: [b, n_heads, l, d] queries before RoPE (bias included).
        k_pre: [b, n_kv, l, d] keys before RoPE.
        geo: the layer's attention geometry (RoPE tables, ALiBi, mask, scaling, soft-cap).
        token_mask: [b, l].
        mode: "paper" or "released-code".
        budget_bytes: working memory of the largest block; default default_qk_budget(device).
        chunk_elems: deprecated alias, budget_bytes = chunk_elems · element size.
        cpu_threads: torch intra-op threads while scoring CPU tensors (restored afterwards);
            None keeps the current setting. Results do not depend on it.
        scoring: "exact", or "first-order" (mwork.qkapprox: the linearised Eq. 8, an
            approximation; paper mode only, no Q/K norm).
        kernel: "auto", "compiled" or "torch": whether CPU tensors take the C kernel of the
            multiplicative form (mwork.qkkernel). Same results up to rounding.

    Returns:
        (imp_q [b, n_heads*d], imp_k [b, n_kv*d])
    """
    check_qk_scoring(scoring, mode, geo.qk_norm is not None)
    if q_pre.device.type == "cpu" and cpu_threads is not None:
        with _intraop_threads(cpu_threads):
            return qk_importance(
                q_pre,
                k_pre,
                geo,
                token_mask,
                mode,
                budget_bytes,
                chunk_elems,
                None,
                scoring,
                kernel,
            )
    if budget_bytes is None:
        if chunk_elems is not None:
            budget_bytes = chunk_elems * q_pre.element_size()
        else:
            budget_bytes = default_qk_budget(q_pre.device)
    budget_elems = max(1, budget_bytes // q_pre.element_size())
    if geo.qk_norm is not None:  # Q/K RMSNorm: q_pre/k_pre are raw; the norm rescales (qknorm)
        if mode == "paper":
            use = kernel_for(kernel, q_pre.device, q_pre.dtype, q_pre.shape[-1])
            return qk_importance_normed(q_pre, k_pre, geo, token_mask, budget_elems, use)
        q_pre, k_pre = normalize_qk(q_pre, k_pre, geo.qk_norm)  # released code: normalised dims
    # padded positions may hold NaN (fully masked rows in HF)
    pad = token_mask[:, None, :, None] == 0
    q_pre, k_pre = q_pre.masked_fill(pad, 0.0), k_pre.masked_fill(pad, 0.0)
    b, n_heads, _, d = q_pre.shape
    n_kv = k_pre.shape[1]
    group = torch.arange(n_heads, device=q_pre.device) // (n_heads // n_kv)  # kv head of q heads
    has_rope = geo.cos is not None
    q = _rope(q_pre, geo.cos, geo.sin) if has_rope else q_pre
    k = _rope(k_pre, geo.cos, geo.sin) if has_rope else k_pre
    split = mode == "paper" and has_rope
    if split:
        qa, qb, perm = _rope_pair(q_pre, geo.cos, geo.sin)
        ka, kb, _ = _rope_pair(k_pre, geo.cos, geo.sin)
    delta_scale = geo.scaling if mode == "paper" else 1.0
    sq_q = torch.zeros(b, n_heads, d, dtype=q.dtype, device=q.device)
    sq_k = torch.zeros(b, n_kv, d, dtype=q.dtype, device=q.device)
    if scoring != "exact":  # mwork.qkapprox, whole batch at once (paper mode: split = RoPE)
        kx = k.index_select(1, group)  # keys of each query head's group
        if split:
            kax, kbx = ka.index_select(1, group), kb.index_select(1, group)
            rems = [_Removal(qa, kx, qb, kx[..., perm]), _Removal(q, kax, q[..., perm], kbx)]
        else:
            rems = [_Removal(q, kx, None, None)]
        sq = score_batch_first_order(q, rems, kx, geo, token_mask, budget_elems)
        sq_k.index_add_(1, group, sq[-1])  # k: summed over the query heads of its group
        return sq[0].sqrt().reshape(b, -1), sq_k.sqrt().reshape(b, -1)
    use_kernel = kernel_for(kernel, q.device, q.dtype, d)
    for i in range(b):
        pos = token_mask[i].nonzero().squeeze(1)
        if pos.numel() == 0:
            continue

        def doc(x: torch.Tensor, i: int = i, pos: torch.Tensor = pos) -> torch.Tensor:
            """Document i's real tokens of x [b, heads, l, d]; kv tensors spread to query heads."""
            x = x[i].index_select(1, pos)
            return x if x.shape[0] == n_heads else x.index_select(0, group)

        qd, kd = doc(q), doc(k)
        if split:  # Δ_Q = qa·K + qb·K[p],  Δ_K = Q·ka + Q[p]·kb
            removals = [
                _Removal(doc(qa), kd, doc(qb), kd[..., perm]),
                _Removal(qd, doc(ka), qd[..., perm], doc(kb)),
            ]
        else:  # no RoPE, or the released code's post-RoPE dims: Δ = Q[:, i] K[:, i]ᵀ for Q and K
            removals = [_Removal(qd, kd, None, None)]
        allowed = geo.allowed[i, 0].index_select(0, pos).index_select(1, pos)
        bias = None
        if geo.bias is not None:
            bias = geo.bias[i].index_select(2, pos)
            bias = bias if bias.shape[1] == 1 else bias.index_select(1, pos)
        sq = _score_document(
            qd,
            kd,
            removals,
            allowed,
            bias,
            geo.scaling,
            geo.softcap,
            delta_scale,
            budget_elems,
            use_kernel,
        )
        sq_q[i] = sq[0]
        sq_k[i].index_add_(0, group, sq[-1])  # k: summed over the query heads of its group
    if mode == "paper":
        return sq_q.sqrt().reshape(b, -1), sq_k.sqrt().reshape(b, -1)
    return sq_q.reshape(b, -1), sq_k.reshape(b, -1)


def _score_document(
    q: torch.Tensor,
    k: torch.Tensor,
    removals: list[_Removal],
    allowed: torch.Tensor,
    bias: torch.Tensor | None,
    scaling: float,
    softcap: float | None,
    delta_scale: float,
    budget_elems: int,
    kernel: bool = False,
) -> list[torch.Tensor]:
    """Σ_t ||p'_t − p_t||² of one document for each removal, per query head and dim.

    Args:
        q: [n_heads, n, d] post-RoPE queries of the document's n real tokens.
        k: [n_heads, n, d] post-RoPE keys of each query head's group.
        removals: the terms to score (Q and K, or one shared term).
        allowed: [n, n] bool mask of the document; bias: [n_heads, 1 or n, n] or None.
        budget_elems: elements of the largest work tensor.
        kernel: score the multiplicative form with the C kernel (mwork.qkkernel; CPU tensors).

    Returns:
        one [n_heads, d] tensor per removal.
    """
    n_heads, n, d = q.shape
    # the C kernel's work is the [rows, keys] scores; the torch form's the [rows, keys, d] z
    per_row = n * (1 if kernel else d) * (_GENERAL_BUFFERS if softcap is not None else 1)
    rows = max(1, budget_elems // per_row)
    tb = min(n, rows, -(-n // _MIN_ROW_BLOCKS) if n >= 16 * _MIN_ROW_BLOCKS else n)
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
            p = _probs(s, allow, softcap)
            for plan, acc in zip(plans, out, strict=True):
                x1, x2, y1, y2 = (
                    None if x is None else x[h0:h1, t0:t1] if j < 2 else x[h0:h1, s0:s1]
                    for j, x in enumerate((plan.fx1, plan.fx2, plan.rem.y1, plan.rem.y2))
                )
                if x1 is not None and kernel:
                    acc[h0:h1] += sq_change_rows(x1, x2, y1, y2, p, span)
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

    rem: _Removal
    fx1: torch.Tensor | None
    fx2: torch.Tensor | None
    direct: dict[int, torch.Tensor]


def _plan(
    rem: _Removal, delta_scale: float, tb: int, softcap: float | None, dtype: torch.dtype
) -> _Plan:
    """Split (head, row block, dim) between the multiplicative form and the direct one.

    The multiplicative form needs e^z finite for z = −s·Δ: |z| ≤ Σ max_rows|x|·max_keys|y| per
    (head, row block, dim), checked against _FAST_EXP_LIMIT; soft-capping needs the direct form.
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
    direct = bound > _FAST_EXP_LIMIT[dtype]  # [n_heads, n_blk, d]
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
    step = max(1, budget_elems // (_GENERAL_BUFFERS * (t1 - t0) * (s1 - s0)))
    h, j = h.to(s.device), j.to(s.device)
    out = []
    for f0 in range(0, h.numel(), step):
        hh, jj = h[f0 : f0 + step], j[f0 : f0 + step]
        x1 = rem.x1[hh, t0:t1, jj] * -delta_scale  # [m, tb]
        lg = torch.baddbmm(s[hh - h0], x1[:, :, None], rem.y1[hh, s0:s1, jj][:, None])
        if rem.x2 is not None:  # [m, tb, ns]: S − s·Δ, Δ as outer products
            x2 = rem.x2[hh, t0:t1, jj] * -delta_scale
            lg.baddbmm_(x2[:, :, None], rem.y2[hh, s0:s1, jj][:, None])
        diff = _probs(lg, allow, softcap) - p[hh - h0]
        out.append(diff.square_().sum(dim=(1, 2)))
    return torch.cat(out)


_probs = masked_probs  # softmax over keys of soft-capped, masked scores


class PLNDProbe:
    """Hooks that score every neuron of every layer during a forward pass.

    Usage:
        with PLNDProbe(adapter, components, "paper") as probe:
            probe.run(input_ids, attention_mask)   # -> {component: [b, n_layers, n_units]}
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        components: tuple[str, ...],
        importance: str = "paper",
        qk_budget_bytes: int | None = None,
        chunk_elems: int | None = None,
        qk_cpu_threads: int | None = QK_CPU_THREADS,
        qk_scoring: str = "exact",
        qk_kernel: str = "auto",
    ) -> None:
        """qk_budget_bytes: Q/K working memory (default: default_qk_budget of the model's device);
        chunk_elems: deprecated alias in elements of the work dtype; qk_cpu_threads: torch
        intra-op threads while scoring Q/K on CPU (None: leave torch's setting); qk_scoring:
        "exact" or "first-order" (mwork.qkapprox; checked here, before any forward); qk_kernel:
        "auto", "compiled" or "torch" (mwork.qkkernel; checked here)."""
        if importance not in IMPORTANCE_MODES:
            raise MworkError(
                f"unknown importance '{importance}'", f"use one of {', '.join(IMPORTANCE_MODES)}"
            )
        self.adapter, self.components, self.mode = adapter, tuple(components), importance
        if qk_budget_bytes is not None and qk_budget_bytes < 1:
            raise MworkError(
                f"Q/K budget must be positive, got {qk_budget_bytes} bytes", "give a budget >= 1"
            )
        self.qk_budget_bytes, self.chunk_elems = qk_budget_bytes, chunk_elems
        self.qk_cpu_threads = qk_cpu_threads
        qk_norm = qk_scoring != "exact" and any(
            adapter.qk_norm(i) is not None for i in range(adapter.n_layers)
        )
        check_qk_scoring(qk_scoring, importance, qk_norm)
        self.qk_scoring = qk_scoring
        check_kernel_mode(qk_kernel)
        self.qk_kernel = qk_kernel
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._token_mask: torch.Tensor | None = None
        self._kept: dict[int, dict[int, torch.Tensor]] = {}  # layer -> projection outputs
        self._scores: dict[str, list[torch.Tensor | None]] = {}
        self._w_down_norm: list[torch.Tensor] = []
        self._w_o_gram: list[torch.Tensor] = []

    def __enter__(self) -> PLNDProbe:
        a = self.adapter
        try:
            for i in range(a.n_layers):
                self._install(i)
        except Exception:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for hnd in self._handles:
            hnd.remove()
        self._handles.clear()

    def _dt(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(work_dtype(t.dtype))

    def _install(self, i: int) -> None:
        a, comps, paper = self.adapter, self.components, self.mode == "paper"
        if "ffn" in comps:
            if paper:
                w = a.down_proj(i).weight  # [d_model, d_ffn]
                self._w_down_norm.append(torch.linalg.vector_norm(self._dt(w.detach()), dim=0))
                self._handles.append(a.down_proj(i).register_forward_pre_hook(self._ffn_hook(i)))
            else:
                self._handles.append(a.up_proj(i).register_forward_hook(self._ffn_released_hook(i)))
        if "attn_v" in comps:
            if paper:
                self._w_o_gram.append(
                    w_o_gram(self._dt(a.o_proj(i).weight.detach()), a.n_kv_heads, a.head_dim)
                )
            self._handles.append(a.o_proj(i).register_forward_pre_hook(self._v_hook(i)))
        if "attn_q" in comps or "attn_k" in comps:
            # the projections' outputs are kept as the attention computes them (no second matmul)
            for j, proj in enumerate(a.qk_projections(i)):
                self._handles.append(proj.register_forward_hook(self._keep_hook(i, j)))
            self._handles.append(
                a.attention(i).register_forward_hook(self._qk_hook(i), with_kwargs=True)
            )

    def _put(self, component: str, i: int, value: torch.Tensor) -> None:
        if component in self.components:
            self._scores[component][i] = value

    def _ffn_hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            if self._token_mask is None:  # a forward outside run(): hooks stay inert
                return
            self._put(
                "ffn", i, ffn_importance(self._dt(args[0]), self._w_down_norm[i], self._token_mask)
            )

        return hook

    def _ffn_released_hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if self._token_mask is None:
                return
            up = self.adapter.up_output(i, output)  # Phi-3: the up half of gate_up_proj
            u = self._dt(up).abs().masked_fill(self._token_mask[..., None] == 0, 0.0)
            self._put("ffn", i, u.sum(dim=1))

        return hook

    def _v_hook(self, i: int):
        a = self.adapter

        def hook(module: torch.nn.Module, args: tuple) -> None:
            if self._token_mask is None:
                return
            o = self._dt(args[0])
            if self.mode == "paper":
                imp = v_importance(o, self._w_o_gram[i], self._token_mask, a.n_kv_heads)
            else:
                b = o.shape[0]
                s = o.abs().masked_fill(self._token_mask[..., None] == 0, 0.0).sum(dim=1)
                imp = s.view(b, a.n_kv_heads, a.group_size, a.head_dim).sum(dim=2).reshape(b, -1)
            self._put("attn_v", i, imp)

        return hook

    def _keep_hook(self, i: int, j: int):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            if self._token_mask is not None:
                self._kept.setdefault(i, {})[j] = output

        return hook

    def _qk_hook(self, i: int):
        a = self.adapter
        n_proj = len(a.qk_projections(i))

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
            if self._token_mask is None:
                return
            kept = self._kept.pop(i, {})
            if n_proj and len(kept) == n_proj:
                q_pre, k_pre = a.split_qk(i, tuple(kept[j] for j in range(n_proj)))
            else:  # an attention that bypasses its projection modules' __call__: recompute
                hidden = args[0] if args else kwargs["hidden_states"]
                q_pre, k_pre = a.project_qk(i, hidden)
            geo = a.geometry(i, kwargs, self._token_mask)
            if geo.cos is not None:
                geo.cos, geo.sin = self._dt(geo.cos), self._dt(geo.sin)
            if geo.bias is not None:
                geo.bias = self._dt(geo.bias)
            imp_q, imp_k = qk_importance(
                self._dt(q_pre),
                self._dt(k_pre),
                geo,
                self._token_mask,
                self.mode,
                budget_bytes=self.qk_budget_bytes,
                chunk_elems=self.chunk_elems,
                cpu_threads=self.qk_cpu_threads,
                scoring=self.qk_scoring,
                kernel=self.qk_kernel,
            )
            self._put("attn_q", i, imp_q)
            self._put("attn_k", i, imp_k)

        return hook

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward a right-padded batch; {component: [b, n_layers, n_units]} on the device."""
        if not self._handles:
            raise RuntimeError("PLNDProbe.run() called outside its `with` block")
        a = self.adapter
        self._token_mask = attention_mask.to(torch.float64 if self._is_f64() else torch.float32)
        self._scores = {c: [None] * a.n_layers for c in self.components}
        try:
            a.model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        finally:
            self._token_mask = None
            self._kept.clear()
        missing = [c for c, v in self._scores.items() if any(x is None for x in v)]
        if missing:
            raise RuntimeError(
                f"PLND hooks did not fire for {missing}; the adapter does not match the model"
            )
        return {c: torch.stack(v, dim=1) for c, v in self._scores.items()}

    def _is_f64(self) -> bool:
        return next(self.adapter.model.parameters()).dtype == torch.float64
