"""Eq. 8 under RMSNorm on queries and keys (Qwen3, Gemma-3 per head; OLMo-2 over the projection).

With a Q/K norm, zeroing row i of W_Q (bias included) is not a rank-1 change of Q Kᵀ: the norm
rescales what is left. For one token, raw projection r (the normalised group: one head's d dims,
or all n·d dims in OLMo-2, size D), HF's RMSNorm is

    q = g ⊙ r / ρ,   ρ² = mean(r²) + eps = Σ_j r_j² / D + eps.

Zeroing raw dim i gives r' = r − r_i e_i and ρ'² = ρ² − r_i² / D (≥ eps), so

    q' = g ⊙ r' / ρ' = α (q − q_i e_i),   α = ρ / ρ' ≥ 1,

one factor per (token, zeroed dim). RoPE is linear per token and comes after the norm, hence with
S = s·rope(q)·rope(k) the scores of the zeroed query row become α_t (S_t − s·Δ_t), Δ the usual
rank-1 term of the normalised dim i (with RoPE's partner dim). For a key dim the factor β_s
multiplies key column s instead. In OLMo-2 the norm spans all heads, so zeroing dim (h, i) also
scales every other head's rows (keys: columns) by the same α: their probabilities change too, and
Eq. 8 sums the squared change over all heads:

    Imp_(h,i)² = Σ_t ||softmax(f(α_t(S_h,t − s·Δ_t))) − p_h,t||²
               + Σ_{h'≠h} Σ_t ||softmax(f(α_t S_h',t)) − p_h',t||²

(keys: the heads of the unit's group carry Δ, all other heads only the factor). f is the model's
soft-capping, additive bias and mask. Everything here is the direct form (one softmax per
(head, row, key, dim)), exact up to rounding, computed in blocks of at most `budget_elems`.
"""

from __future__ import annotations

import torch

from mwork.adapters import AttnGeometry, QKNorm


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


def removal_factors(x: torch.Tensor, eps: float, per_head: bool) -> torch.Tensor:
    """α = ρ/ρ' for zeroing each raw dim of each token.

    Args:
        x: [b, n, l, d] raw projection.

    Returns:
        [b, n, l, d]: factor α[b, h, t, i] that multiplies every normalised entry of token t's
        normalised group when raw dim (h, i) is zeroed.
    """
    if per_head:
        group = x.shape[-1]
        rho2 = x.square().mean(-1, keepdim=True) + eps
    else:
        group = x.shape[1] * x.shape[-1]
        rho2 = x.square().mean(dim=(1, 3), keepdim=True) + eps
    return torch.sqrt(rho2 / (rho2 - x.square() / group))


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF rotate_half RoPE. x: [n, l, d]; cos/sin: [l, d]."""
    d = x.shape[-1]
    return x * cos + torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1) * sin


def _rope_parts(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple:
    """rope(x_i e_i) = x_i·cos_i e_i + x_i·σ_i·sin_p(i) e_p(i).

    x: [n, l, d]; returns (x·cos, x·σ·sin[p], p).
    """
    d = x.shape[-1]
    perm = torch.cat([torch.arange(d // 2, d), torch.arange(0, d // 2)]).to(x.device)
    sign = torch.ones(d, dtype=x.dtype, device=x.device)
    sign[d // 2 :] = -1
    return x * cos, x * sign * sin[..., perm], perm


def _probs(s: torch.Tensor, allowed: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """softmax over the key dim (-2 here: [.., t, s, c]) of soft-capped, masked scores."""
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    s = s.masked_fill(~allowed, torch.finfo(s.dtype).min)
    return torch.softmax(s, dim=-2)


def qk_importance_normed(
    q_raw: torch.Tensor,
    k_raw: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    budget_elems: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 for every raw Q and K dim of one layer with a Q/K RMSNorm (see module docstring).

    Args:
        q_raw: [b, n_heads, l, d] raw query projections (bias included, before the norm).
        k_raw: [b, n_kv, l, d] raw key projections.
        geo: the layer's geometry; geo.qk_norm must be set.
        token_mask: [b, l] 1 for real tokens.
        budget_elems: elements of the largest work tensor.

    Returns:
        (imp_q [b, n_heads*d], imp_k [b, n_kv*d])
    """
    norm: QKNorm = geo.qk_norm
    pad = token_mask[:, None, :, None] == 0
    q_raw, k_raw = q_raw.masked_fill(pad, 0.0), k_raw.masked_fill(pad, 0.0)
    b, n_heads, _, d = q_raw.shape
    n_kv = k_raw.shape[1]
    group = torch.arange(n_heads, device=q_raw.device) // (n_heads // n_kv)
    qg, kg = (x.to(q_raw.dtype) for x in (norm.q_gain, norm.k_gain))
    q_n = rms_norm(q_raw, qg, norm.eps, norm.per_head)
    k_n = rms_norm(k_raw, kg, norm.eps, norm.per_head)
    alpha = removal_factors(q_raw, norm.eps, norm.per_head)  # [b, n_heads, l, d]
    beta = removal_factors(k_raw, norm.eps, norm.per_head)  # [b, n_kv, l, d]
    imp_q = torch.zeros(b, n_heads, d, dtype=q_raw.dtype, device=q_raw.device)
    imp_k = torch.zeros(b, n_kv, d, dtype=q_raw.dtype, device=q_raw.device)
    for i in range(b):
        pos = token_mask[i].nonzero().squeeze(1)
        if pos.numel() == 0:
            continue
        qd = q_n[i].index_select(1, pos)  # [n_heads, n, d] normalised, pre-RoPE
        kd = k_n[i].index_select(1, pos).index_select(0, group)  # keys of each query head's group
        ad = alpha[i].index_select(1, pos)  # [n_heads, n, d]
        bk = beta[i].index_select(1, pos)  # [n_kv, n, d]
        bd = bk.index_select(0, group)
        allowed = geo.allowed[i, 0].index_select(0, pos).index_select(1, pos)
        bias = None
        if geo.bias is not None:
            bias = geo.bias[i].index_select(2, pos)
            bias = bias if bias.shape[1] == 1 else bias.index_select(1, pos)
        if geo.cos is not None:
            row = i if geo.cos.shape[0] > 1 else 0  # HF passes one table for the batch
            cos, sin = geo.cos[row].index_select(0, pos), geo.sin[row].index_select(0, pos)
            qr, kr = _rope(qd, cos, sin), _rope(kd, cos, sin)
            qa, qb, perm = _rope_parts(qd, cos, sin)
            ka, kb, _ = _rope_parts(kd, cos, sin)
            dq = (qa, kr, qb, kr[..., perm])  # Δ_Q[t,s,i] = qa[t,i]·K[s,i] + qb[t,i]·K[s,p(i)]
            dk = (qr, ka, qr[..., perm], kb)  # Δ_K[t,s,i] = Q[t,i]·ka[s,i] + Q[t,p(i)]·kb[s,i]
        else:
            qr, kr = qd, kd
            dq = dk = (qd, kd, None, None)
        s0 = geo.scaling * qr @ kr.transpose(-1, -2)  # [n_heads, n, n], q·k part only
        sq_q = _own_heads(s0, bias, allowed, geo, dq, ad, None, budget_elems)
        sq_k = _own_heads(s0, bias, allowed, geo, dk, None, bd, budget_elems)
        imp_q[i] = sq_q
        imp_k[i].index_add_(0, group, sq_k)  # summed over the query heads of the group
        if not norm.per_head:  # OLMo-2: the factor also reaches every other head
            own = torch.eye(n_heads, dtype=torch.bool, device=s0.device)
            imp_q[i] += _other_heads(s0, bias, allowed, geo, ad, True, own, budget_elems)
            in_group = group[:, None] == torch.arange(n_kv, device=s0.device)[None, :]
            imp_k[i] += _other_heads(s0, bias, allowed, geo, bk, False, in_group, budget_elems)
    return imp_q.sqrt().reshape(b, -1), imp_k.sqrt().reshape(b, -1)


def _logits(s: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Add the bias [hb, 1 or n, n] to scores shaped [hb, t, s, c]."""
    return s if bias is None else s + bias[..., None]


def _own_heads(
    s0: torch.Tensor,
    bias: torch.Tensor | None,
    allowed: torch.Tensor,
    geo: AttnGeometry,
    delta: tuple,
    row_factor: torch.Tensor | None,
    col_factor: torch.Tensor | None,
    budget: int,
) -> torch.Tensor:
    """Σ_t ||softmax(f(A·B·(S − s·Δ))) − p||² for each head and dim of the head's own removal.

    Args:
        s0: [H, n, n] scaled q·k scores; bias: [H, 1 or n, n] or None; allowed: [n, n].
        delta: (x1, y1, x2, y2) with Δ[h,t,s,i] = x1[h,t,i]·y1[h,s,i] (+ x2·y2), each [H, n, d].
        row_factor: [H, n, d] α per (query row, dim), or None; col_factor: [H, n, d] β per key.

    Returns:
        [H, d]
    """
    n_heads, n, _ = s0.shape
    d = delta[0].shape[-1]
    x1, y1, x2, y2 = delta
    p0 = _probs(_logits(s0, bias)[..., None], allowed[..., None], geo.softcap)  # [H, n, n, 1]
    out = torch.zeros(n_heads, d, dtype=s0.dtype, device=s0.device)
    c = max(1, min(d, budget // (n * n)))
    tb = max(1, min(n, budget // (n * c)))
    for h in range(n_heads):
        for j0 in range(0, d, c):
            j = slice(j0, min(d, j0 + c))
            for t0 in range(0, n, tb):
                t = slice(t0, min(n, t0 + tb))
                dl = x1[h, t, None, j] * y1[h, None, :, j]  # [tb, n, c]
                if x2 is not None:
                    dl = dl + x2[h, t, None, j] * y2[h, None, :, j]
                lg = s0[h, t, :, None] - geo.scaling * dl
                if row_factor is not None:
                    lg = lg * row_factor[h, t, None, j]
                if col_factor is not None:
                    lg = lg * col_factor[h, None, :, j]
                if bias is not None:
                    lg = lg + (bias[h, :, :, None] if bias.shape[1] == 1 else bias[h, t, :, None])
                diff = _probs(lg, allowed[t, :, None], geo.softcap) - p0[h, t]
                out[h, j] += diff.square().sum(dim=(0, 1))
    return out


def _other_heads(
    s0: torch.Tensor,
    bias: torch.Tensor | None,
    allowed: torch.Tensor,
    geo: AttnGeometry,
    factor: torch.Tensor,
    rows: bool,
    carries: torch.Tensor,
    budget: int,
) -> torch.Tensor:
    """OLMo-2 cross-head term: the heads that do not carry Δ, scaled by the unit's factor.

    Args:
        s0: [H, n, n] scaled q·k scores of every query head.
        factor: [U, n, d] factor of unit (u, i): α per query row (rows=True) or β per key.
        carries: [H, U] bool, True where query head h' carries Δ for unit head u (its own head
            or group; those are scored by `_own_heads`).

    Returns:
        [U, d]: Σ_{h' not carrying} Σ_t ||softmax(f(F_(u,i) ⊙ S_h')) − p_h'||².
    """
    n_heads, n, _ = s0.shape
    n_units, _, d = factor.shape
    p0 = _probs(_logits(s0, bias)[..., None], allowed[..., None], geo.softcap)  # [H, n, n, 1]
    out = torch.zeros(n_units, d, dtype=s0.dtype, device=s0.device)
    c = max(1, min(d, budget // (n * n)))
    for u in range(n_units):
        for hp in (~carries[:, u]).nonzero().flatten().tolist():
            for j0 in range(0, d, c):
                j = slice(j0, min(d, j0 + c))
                f = factor[u, :, None, j] if rows else factor[u, None, :, j]  # [n,1,c] / [1,n,c]
                lg = s0[hp, :, :, None] * f
                if bias is not None:
                    lg = lg + bias[hp, :, :, None]
                diff = _probs(lg, allowed[..., None], geo.softcap) - p0[hp]
                out[u, j] += diff.square().sum(dim=(0, 1))
    return out


def reference_qk_importance(
    q_raw: torch.Tensor, k_raw: torch.Tensor, geo: AttnGeometry, token_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 literally, for tests: zero each raw dim, renormalise, RoPE, softmax, compare.

    Same arguments and result as `qk_importance_normed`; O(units · heads · l²) work.
    """
    norm = geo.qk_norm
    b, n_heads, seq, d = q_raw.shape
    n_kv = k_raw.shape[1]
    rep = n_heads // n_kv
    valid = token_mask.bool()

    def probs(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:  # [b, H, l, l]
        qn = rms_norm(q, norm.q_gain.to(q.dtype), norm.eps, norm.per_head)
        kn = rms_norm(k, norm.k_gain.to(k.dtype), norm.eps, norm.per_head)
        if geo.cos is not None:
            qn = _rope(qn, geo.cos[:, None], geo.sin[:, None])
            kn = _rope(kn, geo.cos[:, None], geo.sin[:, None])
        kn = kn.repeat_interleave(rep, dim=1)
        s = geo.scaling * qn @ kn.transpose(-1, -2)
        if geo.softcap is not None:
            s = torch.tanh(s / geo.softcap) * geo.softcap
        if geo.bias is not None:
            s = s + geo.bias
        s = s.masked_fill(~geo.allowed, torch.finfo(s.dtype).min)
        p = torch.softmax(s, dim=-1)
        return p.masked_fill(~valid[:, None, :, None], 0.0)  # padded query rows excluded

    q_raw = q_raw.masked_fill(~valid[:, None, :, None], 0.0)
    k_raw = k_raw.masked_fill(~valid[:, None, :, None], 0.0)
    base = probs(q_raw, k_raw)
    out = []
    for x, n in ((q_raw, n_heads), (k_raw, n_kv)):
        imp = torch.zeros(b, n * d, dtype=q_raw.dtype)
        for u in range(n * d):
            z = x.clone()
            z[:, u // d, :, u % d] = 0.0
            p = probs(z, k_raw) if x is q_raw else probs(q_raw, z)
            imp[:, u] = (p - base).flatten(1).norm(dim=1)
        out.append(imp)
    return out[0], out[1]


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
