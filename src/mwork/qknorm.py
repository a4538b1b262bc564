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

so the multiplicative form of mwork.softmax_change applies (one exp per (row, key, dim), the key
sums as matrix products). All three are one `_Term`: z = G·S0 + x1⊗y1 + x2⊗y2, scored in blocks of
(score heads × query rows × columns) of at most `budget_elems`, no loop over single heads or
dims where memory allows. The cross-head term has every query head h' as score head and every
unit (u, i) as column, the (h', u) pairs where h' carries Δ skipped. Before the exp, |z| is
bounded per (head, group of row blocks, column); entries above FAST_EXP_LIMIT, and everything
under soft-capping, take the direct form softmax(f(L + z)) − softmax(f(L)). Both are exact up to
rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mwork.adapters import AttnGeometry, QKNorm
from mwork.qkkernel import key_span, sq_change_rows
from mwork.softmax_change import FAST_EXP_LIMIT, masked_probs, sq_change_fast

_MIN_ROW_BLOCKS = 4
"""Rows of a long document are cut into at least this many blocks, each seeing only the keys its
rows may see (causal), as in mwork.plnd."""

_GENERAL_BUFFERS = 4
"""Work tensors of the size of one [entries, rows, keys] block alive at once in the direct form."""

_MAX_BOUND_GROUPS = 64
"""The overflow bound is kept per group of consecutive row blocks, at most this many groups per
document: [heads, groups, columns] stays small when blocks are a row or two (long documents)."""


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
    rho2, group = _rho2(x, eps, per_head)
    return torch.sqrt(rho2 / (rho2 - x.square() / group))


def _rho2(x: torch.Tensor, eps: float, per_head: bool) -> tuple[torch.Tensor, int]:
    """ρ² = mean(r²) + eps over each token's normalised group of x [b, n, l, d], and its size D."""
    if per_head:
        return x.square().mean(-1, keepdim=True) + eps, x.shape[-1]
    return x.square().mean(dim=(1, 3), keepdim=True) + eps, x.shape[1] * x.shape[-1]


def removal_excess(x: torch.Tensor, eps: float, per_head: bool) -> torch.Tensor:
    """α − 1 of `removal_factors`, without the cancellation of forming α first.

    With e = (r_i²/D) / ρ'² = α² − 1:  α − 1 = e / (1 + sqrt(1 + e)).

    Args:
        x: [b, n, l, d] raw projection.

    Returns:
        [b, n, l, d] (≥ 0)
    """
    rho2, group = _rho2(x, eps, per_head)
    cut = x.square() / group
    e = cut / (rho2 - cut).clamp_min(eps)  # ρ'² ≥ eps exactly; the clamp only guards rounding
    return e / (1 + torch.sqrt(1 + e))


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


@dataclass(frozen=True)
class _Term:
    """Logit perturbation of one family of units in one document, per score head a and column c:

        z[a, t, s, c] = g[a, ·, c]·S0[a, t, s] + x1[a, t, c]·y1[a, s, c] + x2[a, t, c]·y2[a, s, c]

    Attributes:
        g: [A or 1, n, C] factor − 1, indexed by query row t (rows=True) or by key s; a leading 1
            is shared by every score head.
        rows: whether g is indexed by query row.
        x1, y1, x2, y2: [A, n, C] rank-1 parts (already multiplied by −s and the factor), or None.
    """

    g: torch.Tensor
    rows: bool
    x1: torch.Tensor | None = None
    y1: torch.Tensor | None = None
    x2: torch.Tensor | None = None
    y2: torch.Tensor | None = None


@dataclass(frozen=True)
class _Doc:
    """One document's attention: s0, logits and p are [H, n, n] (q·k part, + bias, softmax);
    allowed [n, n] bool; softcap as in AttnGeometry."""

    s0: torch.Tensor
    logits: torch.Tensor
    p: torch.Tensor
    allowed: torch.Tensor
    softcap: float | None


def qk_importance_normed(
    q_raw: torch.Tensor,
    k_raw: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    budget_elems: int = 1 << 20,
    kernel: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 for every raw Q and K dim of one layer with a Q/K RMSNorm (see module docstring).

    Args:
        q_raw: [b, n_heads, l, d] raw query projections (bias included, before the norm).
        k_raw: [b, n_kv, l, d] raw key projections.
        geo: the layer's geometry; geo.qk_norm must be set.
        token_mask: [b, l] 1 for real tokens.
        budget_elems: elements of the largest work tensor.
        kernel: score the multiplicative form with the C kernel (mwork.qkkernel; CPU tensors).

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
            qr, kr = _rope(qd, cos, sin), _rope(kd, cos, sin)
            qa, qb, perm = _rope_parts(qd, cos, sin)
            ka, kb, _ = _rope_parts(kd, cos, sin)
            # Δ_Q[t,s,i] = qa[t,i]·K[s,i] + qb[t,i]·K[s,p(i)];  Δ_K = Q[t,i]·ka[s,i] + Q[t,p(i)]·kb
            q_term = _Term(ga, True, sc * alpha * qa, kr, sc * alpha * qb, kr[..., perm])
            k_term = _Term(gb, False, qr, sc * beta * ka, qr[..., perm], sc * beta * kb)
        else:
            qr, kr = qd, kd
            q_term = _Term(ga, True, sc * alpha * qd, kd)
            k_term = _Term(gb, False, qd, sc * beta * kd)
        s0 = geo.scaling * qr @ kr.transpose(-1, -2)  # [n_heads, n, n], q·k part only
        logits = s0
        if geo.bias is not None:
            bias = geo.bias[i].index_select(2, pos)
            logits = s0 + (bias if bias.shape[1] == 1 else bias.index_select(1, pos))
        doc = _Doc(s0, logits, masked_probs(logits, allowed, geo.softcap), allowed, geo.softcap)
        imp_q[i] = _score_term(q_term, doc, budget_elems, kernel=kernel)
        imp_k[i].index_add_(0, group, _score_term(k_term, doc, budget_elems, kernel=kernel))
        if not norm.per_head:  # OLMo-2: the factor also reaches every other head
            # columns (u, i) of every unit; score head h' carries Δ for unit u (scored above)
            own = torch.eye(n_heads, dtype=torch.bool, device=dev)
            cross = _Term(ga.transpose(0, 1).reshape(1, n, n_heads * d), True)
            sq = _score_term(cross, doc, budget_elems, own.repeat_interleave(d, dim=1), kernel)
            imp_q[i] += sq.view(n_heads, n_heads, d).sum(0)
            in_group = group[:, None] == torch.arange(n_kv, device=dev)[None, :]  # [H, n_kv]
            cross = _Term(gk.transpose(0, 1).reshape(1, n, n_kv * d), False)
            skip = in_group.repeat_interleave(d, dim=1)
            sq = _score_term(cross, doc, budget_elems, skip, kernel)
            imp_k[i] += sq.view(n_heads, n_kv, d).sum(0)
    return imp_q.sqrt().reshape(b, -1), imp_k.sqrt().reshape(b, -1)


def _score_term(
    term: _Term, doc: _Doc, budget: int, skip: torch.Tensor | None = None, kernel: bool = False
) -> torch.Tensor:
    """Σ_t ||softmax(f(L + z)) − p||² for every score head and column of one term.

    Blocks of (ab heads × tb query rows × cb columns) against the key span the block's rows may
    see; per block the multiplicative form for the columns whose bound on |z| admits it, the
    direct form for the others.

    Args:
        term: the perturbation; doc: the document's scores.
        budget: elements of the largest work tensor.
        skip: [A, C] bool entries not wanted (left 0, not scored), or None.
        kernel: the multiplicative form by the C kernel (mwork.qkkernel): its work is the
            [rows, keys] scores, not [rows, keys, columns], so blocks take every column.

    Returns:
        [A, C]
    """
    s0 = doc.s0
    n_a, n, _ = s0.shape
    n_c = term.g.shape[-1]
    cb = n_c if kernel else min(n_c, max(1, budget // n))
    rows = max(1, budget // (n * (2 if kernel else cb)))  # kernel: s0 and p of the block
    tb = min(n, rows, -(-n // _MIN_ROW_BLOCKS) if n >= 16 * _MIN_ROW_BLOCKS else n)
    ab = max(1, min(n_a, rows // tb))
    n_blk = -(-n // tb)
    per_group = -(-n_blk // _MAX_BOUND_GROUPS)  # row blocks sharing one bound
    direct = _direct_entries(term, doc, tb * per_group)  # [A, n_groups, C]
    fast = ~direct
    if skip is not None:
        direct &= ~skip[:, None]
        fast &= ~skip[:, None]
    direct_cpu, fast_cpu = direct.cpu(), fast.cpu()  # one sync per term and document
    mixed = not bool(fast_cpu.all())
    out = torch.zeros(n_a, n_c, dtype=s0.dtype, device=s0.device)
    work = None
    if bool(fast_cpu.any()) and not kernel:  # one buffer for every block: no fresh pages
        work = torch.empty(ab * tb * n * cb, dtype=s0.dtype, device=s0.device)
    for blk, (t0, t1, k0, k1) in enumerate(_key_spans(doc.allowed, tb)):
        for a0 in range(0, n_a, ab):
            a1 = min(n_a, a0 + ab)
            for c0 in range(0, n_c, cb):
                c1 = min(n_c, c0 + cb)
                part = (slice(a0, a1), blk // per_group, slice(c0, c1))
                n_fast = int(fast_cpu[part].sum()) if mixed else (a1 - a0) * (c1 - c0)
                box = (slice(a0, a1), slice(t0, t1), slice(k0, k1), slice(c0, c1))
                if n_fast:
                    if kernel:
                        sq = _kernel_block(term, doc, *box)
                    else:
                        z = work[: (a1 - a0) * (t1 - t0) * (k1 - k0) * (c1 - c0)]
                        z = z.view(a1 - a0, t1 - t0, k1 - k0, c1 - c0)
                        _fill(z, term, s0, *box)
                        sq = sq_change_fast(z, doc.p[a0:a1, t0:t1, k0:k1])
                    if mixed:  # overflowed columns hold inf/NaN: dropped (direct or skipped)
                        sq = sq.masked_fill(~fast[part], 0.0)
                    out[a0:a1, c0:c1] += sq
                if mixed and bool(direct_cpu[part].any()):
                    idx = direct_cpu[part].nonzero().to(s0.device)  # [m, 2] within the block
                    a_idx, c_idx = idx[:, 0] + a0, idx[:, 1] + c0
                    sq = _score_direct(term, doc, a_idx, c_idx, (t0, t1), (k0, k1), budget)
                    out.index_put_((a_idx, c_idx), sq, accumulate=True)
    return out


def _kernel_block(term: _Term, doc: _Doc, a: slice, t: slice, k: slice, c: slice) -> torch.Tensor:
    """sq_change_fast of one block's z (as _fill builds it) by the C kernel: [ab, cb]."""
    n_a = a.stop - a.start
    ga = slice(None) if term.g.shape[0] == 1 else a
    g = (term.g[ga, t, c] if term.rows else term.g[ga, k, c]).expand(n_a, -1, -1)
    x1, x2 = (None if x is None else x[a, t, c] for x in (term.x1, term.x2))
    y1, y2 = (None if y is None else y[a, k, c] for y in (term.y1, term.y2))
    g_row, g_key = (g, None) if term.rows else (None, g)
    p, span = doc.p[a, t, k], key_span(doc.allowed[t, k])
    return sq_change_rows(x1, x2, y1, y2, p, span, g_row=g_row, g_key=g_key, s0=doc.s0[a, t, k])


def _fill(
    z: torch.Tensor,
    term: _Term,
    s0: torch.Tensor,
    a: slice,
    t: slice,
    k: slice,
    c: slice,
) -> None:
    """z[a, t, s, c] of one block into z [ab, tb, ns, cb] (heads a, rows t, keys k, columns c)."""
    ga = slice(None) if term.g.shape[0] == 1 else a
    g = term.g[ga, t, c][:, :, None] if term.rows else term.g[ga, k, c][:, None]
    torch.mul(s0[a, t, k][..., None], g, out=z)  # (factor − 1)·S0
    for x, y in ((term.x1, term.y1), (term.x2, term.y2)):
        if x is not None:
            z.addcmul_(x[a, t, c][:, :, None], y[a, k, c][:, None])


def _direct_entries(term: _Term, doc: _Doc, tb: int) -> torch.Tensor:
    """[A, n_blk, C] bool: the (head, group of tb rows, column) entries that take the direct form.

    All of them under soft-capping (f is not a shift); otherwise those where the bound
    |z| ≤ max|g|·max|S0| + Σ max_rows|x|·max_keys|y| (per head, row group, column) exceeds
    FAST_EXP_LIMIT, so that e^z could overflow.
    """
    s0 = doc.s0
    n_a, n, _ = s0.shape
    n_blk = -(-n // tb)
    if doc.softcap is not None:
        return torch.ones(n_a, n_blk, term.g.shape[-1], dtype=torch.bool, device=s0.device)

    def block_max(x: torch.Tensor) -> torch.Tensor:  # [A', n, C] -> [A', n_blk, C] max per block
        pad = n_blk * tb - n
        xa = torch.nn.functional.pad(x.abs(), (0, 0, 0, pad)) if pad else x.abs()
        return xa.view(x.shape[0], n_blk, tb, x.shape[-1]).amax(2)

    s_max = block_max(s0.abs().amax(-1, keepdim=True))  # [A, n_blk, 1]
    g_max = block_max(term.g) if term.rows else term.g.abs().amax(1, keepdim=True)
    bound = s_max * g_max
    for x, y in ((term.x1, term.y1), (term.x2, term.y2)):
        if x is not None:
            bound = bound + block_max(x) * y.abs().amax(1, keepdim=True)
    return bound > FAST_EXP_LIMIT[s0.dtype]


def _key_spans(allowed: torch.Tensor, tb: int) -> list[tuple[int, int, int, int]]:
    """(t0, t1, k0, k1) per block of tb query rows: [k0, k1) spans every key its rows may see.

    Args:
        allowed: [n, n] bool; every row sees at least one key (its own token).
    """
    n = allowed.shape[0]
    n_blk = -(-n // tb)
    first = allowed.int().argmax(1)  # first allowed key of each row
    last = n - 1 - allowed.flip(1).int().argmax(1)
    pad = n_blk * tb - n
    first = torch.nn.functional.pad(first, (0, pad), value=n).view(n_blk, tb).amin(1)
    last = torch.nn.functional.pad(last, (0, pad), value=-1).view(n_blk, tb).amax(1)
    spans = torch.stack([first, last + 1], 1).tolist()  # one sync
    return [(j * tb, min(n, (j + 1) * tb), k0, k1) for j, (k0, k1) in enumerate(spans)]


def _score_direct(
    term: _Term,
    doc: _Doc,
    a_idx: torch.Tensor,
    c_idx: torch.Tensor,
    rows: tuple[int, int],
    keys: tuple[int, int],
    budget: int,
) -> torch.Tensor:
    """Direct form softmax(f(L + z)) − p for some (head, column) entries of one block.

    Args:
        a_idx, c_idx: [m] score heads and columns (absolute) of the entries.
        rows, keys: the block's [start, end) query rows and key span.

    Returns:
        [m] Σ_t ||p'_t − p_t||² per entry.
    """
    (t0, t1), (k0, k1) = rows, keys
    allow = doc.allowed[t0:t1, k0:k1]
    step = max(1, budget // (_GENERAL_BUFFERS * (t1 - t0) * (k1 - k0)))
    out = []
    for f0 in range(0, a_idx.numel(), step):
        aa, cc = a_idx[f0 : f0 + step], c_idx[f0 : f0 + step]
        ga = aa if term.g.shape[0] > 1 else torch.zeros_like(aa)
        if term.rows:
            g = term.g[ga, t0:t1, cc][:, :, None]  # [m, tb, 1]
        else:
            g = term.g[ga, k0:k1, cc][:, None]  # [m, 1, ns]
        lg = torch.addcmul(doc.logits[aa, t0:t1, k0:k1], g, doc.s0[aa, t0:t1, k0:k1])
        for x, y in ((term.x1, term.y1), (term.x2, term.y2)):
            if x is not None:  # [m, tb, ns] += outer products
                lg.baddbmm_(x[aa, t0:t1, cc][:, :, None], y[aa, k0:k1, cc][:, None])
        diff = masked_probs(lg, allow, doc.softcap) - doc.p[aa, t0:t1, k0:k1]
        out.append(diff.square_().sum(dim=(1, 2)))
    return torch.cat(out)


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
