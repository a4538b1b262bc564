"""Squared change of softmax rows under an additive perturbation of the logits (Eq. 8's kernel).

With p = softmax(L) over keys s and a perturbation z of the logits (no soft-capping),

    softmax(L + z) = p·e^z / W,   W = Σ_s p·e^z,   so   ||p' − p||² = Σ_s p² (e^z − W)² / W²

(the *multiplicative form*): one exp per (row, key, column) and two reductions over keys, both
matrix products. It needs e^z finite, i.e. |z| ≤ FAST_EXP_LIMIT of the dtype; callers bound |z|
before the exp and score the rest (and everything under soft-capping) with the direct form
softmax(f(L + z)) − softmax(f(L)), using `masked_probs`. Shared by mwork.plnd.exact (no Q/K norm)
and mwork.plnd.terms (Q/K RMSNorm).
"""

from __future__ import annotations

import torch

FAST_EXP_LIMIT = {torch.float32: 30.0, torch.float64: 300.0}
"""Largest |z| admitted by the multiplicative form: exp(z)², summed over keys, stays finite."""


def sq_change_fast(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Multiplicative form over one block: Σ_t Σ_s p²(e^z − W)² / W², W = Σ_s p·e^z.

    Args:
        z: [hb, tb, ns, c] logit perturbations of hb heads, tb query rows, ns keys, c columns
            (e.g. zeroed dims); overwritten (used as work memory).
        p: [hb, tb, ns] probabilities of the block (0 where not allowed).

    Returns:
        [hb, c] summed over the block's rows. A column whose z overflowed holds inf/NaN there and
        in no other column.
    """
    z = z.exp_()
    p4 = p[:, :, None]  # [hb, tb, 1, ns]
    w = p4 @ z  # [hb, tb, 1, c]
    z.sub_(w).square_()
    v = p4.square() @ z  # Σ_s p²(e^z − W)²
    return (v / w.square()).sum(dim=(1, 2))


def masked_probs(
    s: torch.Tensor, allowed: torch.Tensor, softcap: float | None, dim: int = -1
) -> torch.Tensor:
    """softmax over keys (`dim`) of soft-capped, masked logits; allowed broadcasts against s."""
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    # finite fill: a padded query row that sees no key gives a uniform row instead of NaN
    s = s.masked_fill(~allowed, torch.finfo(s.dtype).min)
    return torch.softmax(s, dim=dim)
