"""What zeroing one Q or K dim removes from the attention scores: the term Δ, and RoPE's split.

Zeroing row i of W_Q (bias included) removes Δ[t, s] = q_i[t]·k_i[s] from the pre-softmax
scores of every query row t and key s, *pre*-RoPE. HF's rotate_half RoPE mixes dim i with its
partner p(i) = i ± d/2, so post-RoPE the removed term has two rank-1 parts:

    Δ[t, s] = x1[t]·y1[s] + x2[t]·y2[s]

with (x1, x2) = `rope_parts` of the queries and (y1, y2) the keys and their partner dims (and
the same with the roles of Q and K swapped for a K dim). `Removal` holds those four tensors;
the exact scorer (mwork.plnd.exact), the first-order one (mwork.plnd.first_order) and the Q/K-norm
scorer (mwork.plnd.qknorm) all start from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Removal:
    """What zeroing one Q or K dim removes from the scores of one document.

    Δ[h, t, s, i] = x1[h, t, i]·y1[h, s, i] (+ x2[h, t, i]·y2[h, s, i], RoPE's partner dim).
    All four are [n_heads, n, d]; y* hold, for each query head, the keys of its kv group.
    """

    x1: torch.Tensor
    y1: torch.Tensor
    x2: torch.Tensor | None
    y2: torch.Tensor | None


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF rotate_half RoPE of x [..., l, d]; cos/sin broadcast against x (e.g. [b, 1, l, d])."""
    d = x.shape[-1]
    return x * cos + torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1) * sin


def rope_parts(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a pre-RoPE tensor's dims into their two post-RoPE contributions.

    With HF's rotate_half RoPE, rope(x_i e_i) = x_i (cos_i e_i + σ_i sin_p(i) e_p(i)),
    p(i) = i ± d/2, σ_i = +1 for i < d/2 else −1.

    Args:
        x: [..., l, d] pre-RoPE; cos, sin: broadcast against x (e.g. [b, 1, l, d]).

    Returns:
        (x·cos, x·σ·sin[p]) both shaped like x, and the partner permutation p [d].
    """
    d = x.shape[-1]
    perm = torch.cat([torch.arange(d // 2, d), torch.arange(0, d // 2)]).to(x.device)
    sign = torch.ones(d, dtype=x.dtype, device=x.device)
    sign[d // 2 :] = -1
    return x * cos, x * sign * sin[..., perm], perm
