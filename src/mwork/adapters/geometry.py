"""Attention geometry that Q/K importance needs besides q and k (RoPE tables, masks, Q/K norm)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class QKNorm:
    """RMSNorm applied to raw queries and keys before RoPE (Qwen3, Gemma-3, OLMo-2).

    HF's RMSNorm: y = g ⊙ x / sqrt(mean(x²) + eps), the mean over the normalised group.

    Attributes:
        q_gain: effective multiplier g of the query norm: [head_dim] per head, or
            [n_heads*head_dim] over the whole projection (Gemma-3: 1 + weight).
        k_gain: the same for keys ([head_dim] or [n_kv*head_dim]).
        eps: the variance epsilon.
        per_head: True when each head's head_dim dims are normalised separately (Qwen3,
            Gemma-3), False when the whole projection is (OLMo-2).
    """

    q_gain: torch.Tensor
    k_gain: torch.Tensor
    eps: float
    per_head: bool


@dataclass
class AttnGeometry:
    """Everything besides q/k needed to rebuild one layer's attention probabilities.

    Attributes:
        cos, sin: [b, l, head_dim] RoPE tables (HF rotate_half convention), or None (no RoPE).
        bias: [b, n_heads, 1 or l, l] additive score bias (ALiBi), or None.
        allowed: [b, 1, l, l] bool, True where query t may attend key s (causal, padding, window).
        scaling: multiplier on q·k (1/sqrt(d) or the model's own).
        softcap: Gemma-2 logit soft-capping constant, or None.
        qk_norm: the RMSNorm on raw queries/keys (then q_pre/k_pre are the raw projections), or
            None.
    """

    cos: torch.Tensor | None
    sin: torch.Tensor | None
    bias: torch.Tensor | None
    allowed: torch.Tensor
    scaling: float
    softcap: float | None
    qk_norm: QKNorm | None = None


def attention_allowed(token_mask: torch.Tensor, window: int | None) -> torch.Tensor:
    """Causal + key-padding (+ sliding window) mask for right-padded batches.

    Args:
        token_mask: [b, l] 1 for real tokens, 0 for padding.
        window: sliding window size (query t sees keys s with t - s < window), or None.

    Returns:
        [b, 1, l, l] bool.
    """
    seq = token_mask.shape[1]
    pos = torch.arange(seq, device=token_mask.device)
    allowed = pos[None, :] <= pos[:, None]  # [l(t), l(s)]
    if window is not None:
        allowed = allowed & (pos[:, None] - pos[None, :] < window)
    return allowed[None, None] & token_mask.bool()[:, None, None, :]
