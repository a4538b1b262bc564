"""Eq. 8 under RMSNorm on queries and keys (Qwen3, Gemma-3 per head; OLMo-2 over the projection).

With a Q/K norm, zeroing row i of W_Q (bias included) is not a rank-1 change of Q Kᵀ: the norm
rescales what is left. For one token, raw projection r (the normalised group: one head's d dims,
or all n·d dims in OLMo-2, size D), HF's RMSNorm is

    q = g ⊙ r / ρ,   ρ² = mean(r²) + eps = Σ_j r_j² / D + eps.

Zeroing raw dim i gives r' = r − r_i e_i and ρ'² = ρ² − r_i² / D (≥ eps), so

    q' = g ⊙ r' / ρ' = α (q − q_i e_i),   α = ρ / ρ' ≥ 1,

one factor per (token, zeroed dim). RoPE is linear per token and comes after the norm, hence with
S0 = s·rope(q)·rope(k) the q·k part of the scores, the zeroed query row's logits become
α_t (S0_t − s·Δ_t) (+ bias, not rescaled), Δ the usual rank-1 term of the normalised dim i (with
RoPE's partner dim). For a key dim the factor β_s multiplies key column s instead. In OLMo-2 the
norm spans all heads, so zeroing dim (h, i) also scales every other head's rows (keys: columns) by
the same α: their probabilities change too, and Eq. 8 sums the squared change over all heads:

    Imp_(h,i)² = Σ_t ||softmax(f(α_t(S0_h,t − s·Δ_t) + B)) − p_h,t||²
               + Σ_{h'≠h} Σ_t ||softmax(f(α_t S0_h',t + B)) − p_h',t||²

(keys: the heads of the unit's group carry Δ, all other heads only the factor). f is the model's
soft-capping and mask, B the additive bias. Without soft-capping each of these is an additive
perturbation z of the logits L = S0 + B:

    own head, query dim:  z[t,s,i] = (α[t,i] − 1)·S0[t,s] − α[t,i]·s·Δ[t,s,i]
    own head, key dim:    z[t,s,i] = (β[s,i] − 1)·S0[t,s] − β[s,i]·s·Δ[t,s,i]
    other heads (OLMo-2): z[t,s,(u,i)] = (α[u,t,i] − 1)·S0_h'[t,s]   (keys: (β[g,s,i] − 1)·S0_h')

so the multiplicative form of mwork.plnd.softmax_change applies (one exp per (row, key, dim), the
key sums as matrix products). All three are one `Term` (mwork.plnd.terms): z = G·S0 + x1⊗y1 +
x2⊗y2, scored in blocks of (score heads × query rows × columns) of at most `budget_elems`, no loop
over single heads or dims where memory allows. The cross-head term has every query head h' as
score head and every unit (u, i) as column, the (h', u) pairs where h' carries Δ skipped. Before
the exp, |z| is bounded per (head, group of row blocks, column); entries above FAST_EXP_LIMIT, and
everything under soft-capping, take the direct form softmax(f(L + z)) − softmax(f(L)). Both are
exact up to rounding.
"""

from __future__ import annotations

import torch

from mwork.adapters import AttnGeometry, QKNorm
from mwork.plnd.removal import rope, rope_parts
from mwork.plnd.softmax_change import masked_probs
from mwork.plnd.terms import Doc, Term, score_term


def rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float, per_head: bool) -> torch.Tensor:
    """HF RMSNorm of raw q or k.

    Args:
        x: [b, n, l, d] raw projection (n heads).
        gain: [d] (per head) or [n*d] (whole projection) effective multiplier.

    Returns:
        [b, n, l, d]
    """
    if per_head:
        var = x.square().mean(-1, keepdim=True)
        return gain * x * torch.rsqrt(var + eps)
    b, n, seq, d = x.shape
    var = x.square().mean(dim=(1, 3), keepdim=True)  # over all n*d dims of each token
    return gain.view(n, 1, d) * x * torch.rsqrt(var + eps)


def _rho2(x: torch.Tensor, eps: float, per_head: bool) -> tuple[torch.Tensor, int]:
    """ρ² = mean(r²) + eps over each token's normalised group of x [b, n, l, d], and its size D."""
    if per_head:
        return x.square().mean(-1, keepdim=True) + eps, x.shape[-1]
    return x.square().mean(dim=(1, 3), keepdim=True) + eps, x.shape[1] * x.shape[-1]


def removal_excess(x: torch.Tensor, eps: float, per_head: bool) -> torch.Tensor:
    """α − 1 for zeroing each raw dim of each token, without the cancellation of forming α first.

    α[b, h, t, i] = ρ/ρ' multiplies every normalised entry of token t's normalised group when raw
    dim (h, i) is zeroed. With e = (r_i²/D) / ρ'² = α² − 1:  α − 1 = e / (1 + sqrt(1 + e)).

    Args:
        x: [b, n, l, d] raw projection.

    Returns:
        [b, n, l, d] (≥ 0)
    """
    rho2, group = _rho2(x, eps, per_head)
    cut = x.square() / group
    e = cut / (rho2 - cut).clamp_min(eps)  # ρ'² ≥ eps exactly; the clamp only guards rounding
    return e / (1 + torch.sqrt(1 + e))


def qk_importance_normed(
    q_raw: torch.Tensor,
    k_raw: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    budget_elems: int = 1 << 20,
    kernel: str | bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 for every raw Q and K dim of one layer with a Q/K RMSNorm (see module docstring).

    Args:
        q_raw: [b, n_heads, l, d] raw query projections (bias included, before the norm).
        k_raw: [b, n_kv, l, d] raw key projections.
        geo: the layer's geometry; geo.qk_norm must be set.
        token_mask: [b, l] 1 for real tokens.
        budget_elems: elements of the largest work tensor.
        kernel: score the multiplicative form with a fused kernel ("compiled": the C kernel of
            mwork.plnd.kernel, CPU tensors; "triton": mwork.plnd.triton_qk) or torch (False).

    Returns:
        (imp_q [b, n_heads*d], imp_k [b, n_kv*d])
    """
    norm: QKNorm = geo.qk_norm
    pad = token_mask[:, None, :, None] == 0
    q_raw, k_raw = q_raw.masked_fill(pad, 0.0), k_raw.masked_fill(pad, 0.0)
    b, n_heads, _, d = q_raw.shape
    n_kv = k_raw.shape[1]
    dev = q_raw.device
    group = torch.arange(n_heads, device=dev) // (n_heads // n_kv)
    qg, kg = (x.to(q_raw.dtype) for x in (norm.q_gain, norm.k_gain))
    q_n = rms_norm(q_raw, qg, norm.eps, norm.per_head)
    k_n = rms_norm(k_raw, kg, norm.eps, norm.per_head)
    alpha1 = removal_excess(q_raw, norm.eps, norm.per_head)  # α − 1, [b, n_heads, l, d]
    beta1 = removal_excess(k_raw, norm.eps, norm.per_head)  # β − 1, [b, n_kv, l, d]
    imp_q = torch.zeros(b, n_heads, d, dtype=q_raw.dtype, device=dev)
    imp_k = torch.zeros(b, n_kv, d, dtype=q_raw.dtype, device=dev)
    sc = -geo.scaling
    for i in range(b):
        pos = token_mask[i].nonzero().squeeze(1)
        if pos.numel() == 0:
            continue
        n = pos.numel()
        qd = q_n[i].index_select(1, pos)  # [n_heads, n, d] normalised, pre-RoPE
        kd = k_n[i].index_select(1, pos).index_select(0, group)  # keys of each query head's group
        ga = alpha1[i].index_select(1, pos)  # [n_heads, n, d]
        gk = beta1[i].index_select(1, pos)  # [n_kv, n, d]
        gb = gk.index_select(0, group)
        alpha, beta = 1 + ga, 1 + gb
        allowed = geo.allowed[i, 0].index_select(0, pos).index_select(1, pos)
        if geo.cos is not None:
            row = i if geo.cos.shape[0] > 1 else 0  # HF passes one table for the batch
            cos, sin = geo.cos[row].index_select(0, pos), geo.sin[row].index_select(0, pos)
            qr, kr = rope(qd, cos, sin), rope(kd, cos, sin)
            qa, qb, perm = rope_parts(qd, cos, sin)
            ka, kb, _ = rope_parts(kd, cos, sin)
            # Δ_Q[t,s,i] = qa[t,i]·K[s,i] + qb[t,i]·K[s,p(i)];  Δ_K = Q[t,i]·ka[s,i] + Q[t,p(i)]·kb
            q_term = Term(ga, True, sc * alpha * qa, kr, sc * alpha * qb, kr[..., perm])
            k_term = Term(gb, False, qr, sc * beta * ka, qr[..., perm], sc * beta * kb)
        else:
            qr, kr = qd, kd
            q_term = Term(ga, True, sc * alpha * qd, kd)
            k_term = Term(gb, False, qd, sc * beta * kd)
        s0 = geo.scaling * qr @ kr.transpose(-1, -2)  # [n_heads, n, n], q·k part only
        logits = s0
        if geo.bias is not None:
            bias = geo.bias[i].index_select(2, pos)
            logits = s0 + (bias if bias.shape[1] == 1 else bias.index_select(1, pos))
        doc = Doc(s0, logits, masked_probs(logits, allowed, geo.softcap), allowed, geo.softcap)
        imp_q[i] = score_term(q_term, doc, budget_elems, kernel=kernel)
        imp_k[i].index_add_(0, group, score_term(k_term, doc, budget_elems, kernel=kernel))
        if not norm.per_head:  # OLMo-2: the factor also reaches every other head
            # columns (u, i) of every unit; score head h' carries Δ for unit u (scored above)
            own = torch.eye(n_heads, dtype=torch.bool, device=dev)
            cross = Term(ga.transpose(0, 1).reshape(1, n, n_heads * d), True)
            sq = score_term(cross, doc, budget_elems, own.repeat_interleave(d, dim=1), kernel)
            imp_q[i] += sq.view(n_heads, n_heads, d).sum(0)
            in_group = group[:, None] == torch.arange(n_kv, device=dev)[None, :]  # [H, n_kv]
            cross = Term(gk.transpose(0, 1).reshape(1, n, n_kv * d), False)
            skip = in_group.repeat_interleave(d, dim=1)
            sq = score_term(cross, doc, budget_elems, skip, kernel)
            imp_k[i] += sq.view(n_heads, n_kv, d).sum(0)
    return imp_q.sqrt().reshape(b, -1), imp_k.sqrt().reshape(b, -1)


def normalize_qk(
    q_raw: torch.Tensor, k_raw: torch.Tensor, norm: QKNorm
) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised (pre-RoPE) queries and keys, as the model computes them.

    Args:
        q_raw: [b, n_heads, l, d]; k_raw: [b, n_kv, l, d].

    Returns:
        (q [b, n_heads, l, d], k [b, n_kv, l, d])
    """
    q = rms_norm(q_raw, norm.q_gain.to(q_raw), norm.eps, norm.per_head)
    return q, rms_norm(k_raw, norm.k_gain.to(k_raw), norm.eps, norm.per_head)
