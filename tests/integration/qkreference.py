"""Literal Q/K reference shared by the Q/K scoring tests: synthetic cases and brute force.

Everything here recomputes the attention probabilities from scratch (RoPE, GQA repeat, ALiBi,
soft-capping, sliding window, padding) and changes one pre-RoPE Q/K dim at a time, so it shares
no code with mwork.plnd's scorers; the Q/K-norm reference takes only the package's rms_norm
(checked against the HF modules in test_qknorm).
"""

import json
from collections.abc import Callable
from pathlib import Path

import torch

from mwork.adapters import AttnGeometry, attention_allowed
from mwork.plnd.qknorm import rms_norm
from mwork.settings import ModelSpec
from mwork.tiny import save_tiny_model_dir

CASES = ("rope-gqa-window", "softcap", "alibi", "holes", "large")
RELEASED_CODE = "released-code"  # the official code's removal (see brute_force_sq_change)

DimChange = Callable[[torch.Tensor], torch.Tensor]  # one dim [b, seq] -> its replacement


def rope_tables(
    b: int, seq: int, d: int, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [b, seq, d] RoPE tables (base 10000, rotate_half layout), computed in float64."""
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype).expand(b, seq, d), emb.sin().to(dtype).expand(b, seq, d)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x: [b, heads, seq, d] with cos, sin: [b, seq, d] (HF rotate_half convention)."""
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1)
    return x * cos[:, None] + rot * sin[:, None]


def synthetic_case(
    name: str, dtype: torch.dtype = torch.float64, seed: int = 0, key_offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, AttnGeometry, torch.Tensor]:
    """(q_pre, k_pre, geo, token_mask) of one synthetic geometry; padded positions hold NaN.

    Three documents of lengths 11, 7, 9 (seq 11), head dim 8, 4 query heads. `name` (one of CASES):
    "rope-gqa-window" RoPE, 2 kv heads, window 4; "softcap" the same with soft-cap 2; "alibi" no
    RoPE, 4 kv heads, ALiBi slopes 1/2 .. 1/16; "holes" like "rope-gqa-window" with a left-padded
    document and one with a gap (mask not a prefix); "large" RoPE + GQA, no window, scale 6 instead
    of 1.5. Values are drawn in float64 (seeded) and cast to `dtype`, so float32 and float64 cases
    of one seed hold the same numbers; `key_offset` is added to every key (shared offset).

    Returns:
        q_pre: [b, 4, seq, 8], k_pre: [b, n_kv, seq, 8], geo (cos/sin/bias in `dtype`),
        token_mask: [b, seq] in `dtype`, 1 for real tokens.
    """
    g = torch.Generator().manual_seed(seed)
    lengths = [11, 7, 9]
    b, seq, d = len(lengths), max(lengths), 8
    n_heads, n_kv = (4, 4) if name == "alibi" else (4, 2)
    tm = torch.zeros(b, seq, dtype=dtype)
    for i, n in enumerate(lengths):
        tm[i, :n] = 1
    if name == "holes":  # not a prefix: a left-padded document and one with a gap
        tm[1] = 0
        tm[1, 4:] = 1
        tm[2, 3] = 0
    scale = 6.0 if name == "large" else 1.5
    q = torch.randn(b, n_heads, seq, d, generator=g, dtype=torch.float64).to(dtype) * scale
    k = torch.randn(b, n_kv, seq, d, generator=g, dtype=torch.float64).to(dtype) * scale
    if key_offset:
        k = k + key_offset
    q = q.masked_fill(tm[:, None, :, None] == 0, float("nan"))
    k = k.masked_fill(tm[:, None, :, None] == 0, float("nan"))
    window = 4 if name in ("rope-gqa-window", "softcap", "holes") else None
    cos, sin = rope_tables(b, seq, d, dtype) if name != "alibi" else (None, None)
    bias = None
    if name == "alibi":
        slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=dtype)
        bias = (slopes[None, :, None, None] * torch.arange(seq, dtype=dtype)).expand(
            b, n_heads, 1, seq
        )
    softcap = 2.0 if name == "softcap" else None
    geo = AttnGeometry(cos, sin, bias, attention_allowed(tm, window), d**-0.5, softcap)
    return q, k, geo, tm


def reference_probs(
    q_pre: torch.Tensor,
    k_pre: torch.Tensor,
    geo: AttnGeometry,
    minus_post_rope: tuple[int, int] | None = None,
) -> torch.Tensor:
    """softmax(f(S)) with S = s·RoPE(q) RoPE(k)ᵀ (+ALiBi), f soft-capping + mask, literally.

    Args:
        q_pre: [b, n_heads, seq, d] pre-RoPE queries; k_pre: [b, n_kv, seq, d] pre-RoPE keys
            (repeated over the n_heads / n_kv query heads of each group). NaN reads as 0.
        geo: RoPE tables (or None), bias, allowed mask, scaling s, soft-cap.
        minus_post_rope: (h, i) subtracts the *unscaled* post-RoPE term q_i·k_i from the scores
            of query head h before bias and soft-cap (the released code's removal), or None.

    Returns:
        [b, n_heads, seq, seq] attention probabilities (disallowed keys 0).
    """
    r = q_pre.shape[1] // k_pre.shape[1]
    qp, kp = q_pre.nan_to_num(0.0), k_pre.nan_to_num(0.0)
    rotate = geo.cos is not None
    q = rope(qp, geo.cos, geo.sin) if rotate else qp
    kk = (rope(kp, geo.cos, geo.sin) if rotate else kp).repeat_interleave(r, dim=1)
    s = geo.scaling * q @ kk.transpose(-1, -2)
    if minus_post_rope is not None:
        h, i = minus_post_rope
        s[:, h] -= q[:, h, :, i, None] * kk[:, h, None, :, i]
    if geo.bias is not None:
        s = s + geo.bias
    if geo.softcap is not None:
        s = torch.tanh(s / geo.softcap) * geo.softcap
    return torch.softmax(s.masked_fill(~geo.allowed, -torch.inf), dim=-1)


def zero_dim(x: torch.Tensor) -> torch.Tensor:
    """DimChange of Eq. 8: the dim is removed (its W_Q/W_K row zeroed)."""
    return torch.zeros_like(x)


def scale_dim(factor: float) -> DimChange:
    """DimChange that multiplies the dim by `factor` (1 − ε: removes ε of it)."""
    return lambda x: x * factor


def brute_force_sq_change(
    q_pre: torch.Tensor,
    k_pre: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    change: DimChange | str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared Frobenius change of the probabilities, over real query rows, per Q/K dim.

    Args:
        q_pre, k_pre, geo: as for reference_probs; token_mask: [b, seq], 1 for real tokens.
        change: a DimChange applied to pre-RoPE dim i of one query head h (every position), then
            of one kv head g; the K score sums the change over the query heads of g. Or
            RELEASED_CODE: for each query head h, reference_probs(minus_post_rope=(h, i)); the K
            score of dim i of g sums those of g's query heads.

    Returns:
        sq_q: [b, n_heads·d], sq_k: [b, n_kv·d] (head-major, dim-minor), float64.
    """
    b, n_heads, seq, d = q_pre.shape
    n_kv = k_pre.shape[1]
    r = n_heads // n_kv
    q_pre, k_pre = q_pre.nan_to_num(0.0), k_pre.nan_to_num(0.0)
    base = reference_probs(q_pre, k_pre, geo)
    rows = token_mask.bool()[:, None, :, None]

    def sq_change(new: torch.Tensor) -> torch.Tensor:  # [b, n_heads]
        diff = torch.where(rows, new - base, torch.zeros_like(base))
        return diff.square().sum(dim=(-1, -2))

    sq_q = torch.zeros(b, n_heads, d, dtype=torch.float64)
    sq_k = torch.zeros(b, n_kv, d, dtype=torch.float64)
    released = isinstance(change, str)
    assert not released or change == RELEASED_CODE, change
    for i in range(d):
        if released:
            for h in range(n_heads):
                sq_q[:, h, i] = sq_change(reference_probs(q_pre, k_pre, geo, (h, i)))[:, h]
                sq_k[:, h // r, i] += sq_q[:, h, i]
            continue
        for h in range(n_heads):
            qp = q_pre.clone()
            qp[:, h, :, i] = change(qp[:, h, :, i])
            sq_q[:, h, i] = sq_change(reference_probs(qp, k_pre, geo))[:, h]
        for g in range(n_kv):
            kp = k_pre.clone()
            kp[:, g, :, i] = change(kp[:, g, :, i])
            sq_k[:, g, i] = sq_change(reference_probs(q_pre, kp, geo))[:, g * r : (g + 1) * r].sum(
                1
            )
    return sq_q.reshape(b, -1), sq_k.reshape(b, -1)


def brute_force_importance(
    q_pre: torch.Tensor,
    k_pre: torch.Tensor,
    geo: AttnGeometry,
    token_mask: torch.Tensor,
    mode: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 by definition: "paper" zeroes each pre-RoPE dim, norm (sqrt of the squared change);
    "released-code" removes the unscaled post-RoPE term, squared norm. Shapes as
    brute_force_sq_change."""
    if mode == RELEASED_CODE:
        return brute_force_sq_change(q_pre, k_pre, geo, token_mask, RELEASED_CODE)
    assert mode == "paper", mode
    sq_q, sq_k = brute_force_sq_change(q_pre, k_pre, geo, token_mask, zero_dim)
    return sq_q.sqrt(), sq_k.sqrt()


def tiny_detection_inputs(tmp_path: Path, n_docs: int) -> tuple[ModelSpec, Path]:
    """A saved tiny Llama (float32, head dim 8) and an en.jsonl corpus of n_docs short documents,
    for tests that run mwork.detect end to end with some Q/K setting."""
    texts = [f"doc {i} " + "abc def ghi jkl mno"[i % 7 :] * 3 for i in range(n_docs)]
    model = save_tiny_model_dir(tmp_path / "m", "llama", texts, seed=0, vocab_size=80)
    corpus = tmp_path / "en.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return ModelSpec(ref=str(model), name="tiny", dtype="float32"), corpus


# --- Q/K RMSNorm (Qwen3, Gemma-3 per head; OLMo-2 over the projection): literal references ---


def removal_factors(x: torch.Tensor, eps: float, per_head: bool) -> torch.Tensor:
    """α = ρ/ρ' for zeroing each raw dim of each token (ρ² = mean(r²) + eps over the normalised
    group: one head's d dims, or all n·d dims).

    Args:
        x: [b, n, l, d] raw projection.

    Returns:
        [b, n, l, d]: factor α[b, h, t, i] that multiplies every normalised entry of token t's
        normalised group when raw dim (h, i) is zeroed.
    """
    if per_head:
        rho2, group = x.square().mean(-1, keepdim=True) + eps, x.shape[-1]
    else:
        rho2, group = x.square().mean(dim=(1, 3), keepdim=True) + eps, x.shape[1] * x.shape[-1]
    return torch.sqrt(rho2 / (rho2 - x.square() / group))


def reference_qk_importance(
    q_raw: torch.Tensor, k_raw: torch.Tensor, geo: AttnGeometry, token_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 literally under a Q/K norm: zero each raw dim, renormalise (mwork.plnd.qknorm's
    rms_norm), RoPE, softmax, compare.

    Same arguments and result as `mwork.plnd.qknorm.qk_importance_normed`; O(units · heads · l²)
    work.
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
            qn = rope(qn, geo.cos, geo.sin)
            kn = rope(kn, geo.cos, geo.sin)
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
