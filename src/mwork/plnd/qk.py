"""Eq. 8 for every Q and K dim of one layer: which scorer runs, and the loop over documents.

    attn_q Imp_(h,i) = ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||_F            (Eq. 8)
    attn_k Imp_(g,i) = sqrt(Σ_{h∈g} ||softmax(f(S_h − s·Δ_(h,i))) − softmax(f(S_h))||²_F)

where S_h = s·Q_h K_gᵀ (+ALiBi), s the model's scaling, f its soft-capping + mask, and Δ_(h,i) the
exact term that zeroing row i of W_Q (or W_K), bias included, removes from Q Kᵀ — *pre*-RoPE,
so RoPE's pairing of dims i and i±d/2 is honoured (mwork.plnd.removal). Query rows of padding are
excluded. `qk_importance` hands a layer to one of three scorers: the exact blocked form per
document (mwork.plnd.exact), the Q/K-norm form (mwork.plnd.qknorm), or the first-order
approximation over the whole batch (mwork.plnd.first_order, `detection.qk_scoring: first-order`).
"""

from __future__ import annotations

import torch

from mwork.adapters import AttnGeometry
from mwork.plnd.backend import kernel_for
from mwork.plnd.budget import QK_CPU_THREADS, default_qk_budget, intraop_threads
from mwork.plnd.exact import score_document
from mwork.plnd.first_order import check_qk_scoring, score_batch_first_order
from mwork.plnd.qknorm import normalize_qk, qk_importance_normed
from mwork.plnd.removal import Removal, rope, rope_parts


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

    i.e. one exp per (row, key, dim) and two reductions over keys. A fused kernel (the C kernel
    of mwork.plnd.kernel on CPU, the Triton kernel of mwork.plnd.triton_qk on CUDA; chosen by
    mwork.plnd.backend from `kernel`) computes it row by row without writing z to memory;
    otherwise mwork.plnd.softmax_change builds z per block and reduces with matrix products.
    Where that form could overflow (|z| above FAST_EXP_LIMIT, from a bound computed before the
    exp) and under soft-capping (f is not a shift), those (head, dim) pairs take the direct form
    softmax(f(S − s·Δ)) − softmax(f(S)) instead (mwork.plnd.exact). Both are exact up to rounding.

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
        scoring: "exact", or "first-order" (mwork.plnd.first_order: the linearised Eq. 8, an
            approximation; paper mode only, no Q/K norm).
        kernel: "auto", "compiled", "triton" or "torch" (mwork.plnd.backend): whether a fused
            kernel scores the multiplicative form. Same results up to rounding.

    Returns:
        (imp_q [b, n_heads*d], imp_k [b, n_kv*d])
    """
    check_qk_scoring(scoring, mode, geo.qk_norm is not None)
    if q_pre.device.type == "cpu" and cpu_threads is not None:
        with intraop_threads(cpu_threads):
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
    q, k = q_pre, k_pre
    if has_rope:
        cos, sin = geo.cos[:, None], geo.sin[:, None]  # [b, 1, l, d]: one table for every head
        q, k = rope(q_pre, cos, sin), rope(k_pre, cos, sin)
    split = mode == "paper" and has_rope
    if split:
        qa, qb, perm = rope_parts(q_pre, cos, sin)
        ka, kb, _ = rope_parts(k_pre, cos, sin)
    delta_scale = geo.scaling if mode == "paper" else 1.0
    sq_q = torch.zeros(b, n_heads, d, dtype=q.dtype, device=q.device)
    sq_k = torch.zeros(b, n_kv, d, dtype=q.dtype, device=q.device)
    if scoring != "exact":  # mwork.plnd.first_order, whole batch at once (paper mode: split = RoPE)
        kx = k.index_select(1, group)  # keys of each query head's group
        if split:
            kax, kbx = ka.index_select(1, group), kb.index_select(1, group)
            rems = [Removal(qa, kx, qb, kx[..., perm]), Removal(q, kax, q[..., perm], kbx)]
        else:
            rems = [Removal(q, kx, None, None)]
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
                Removal(doc(qa), kd, doc(qb), kd[..., perm]),
                Removal(qd, doc(ka), qd[..., perm], doc(kb)),
            ]
        else:  # no RoPE, or the released code's post-RoPE dims: Δ = Q[:, i] K[:, i]ᵀ for Q and K
            removals = [Removal(qd, kd, None, None)]
        allowed = geo.allowed[i, 0].index_select(0, pos).index_select(1, pos)
        bias = None
        if geo.bias is not None:
            bias = geo.bias[i].index_select(2, pos)
            bias = bias if bias.shape[1] == 1 else bias.index_select(1, pos)
        sq = score_document(
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
