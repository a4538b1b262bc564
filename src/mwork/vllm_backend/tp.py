"""Tensor-parallel shard arithmetic: where a neuron's parameters live in one rank's fused shards.

For the in-place masking route on CUDA (vLLM keeps `layer.weight` there): zero a neuron's rows or
columns in each rank's shard instead of reloading full tensors. vLLM's layouts (Llama-style
decoders; `QKVParallelLinear`, `MergedColumnParallelLinear`, `RowParallelLinear`):

    qkv_proj      rows [q heads of the rank | its kv heads' k rows | their v rows]; q heads split
                  evenly; kv heads split evenly when n_kv >= tp, else each kv head is replicated
                  on tp / n_kv consecutive ranks (rank r holds kv head r // (tp / n_kv))
    gate_up_proj  rows [gate rows of the rank | up rows of the rank], d_ffn split evenly
    down_proj     columns: the rank's d_ffn slice (a neuron's column lives on one rank only)

Biases of q/k/v and gate/up follow their rows. Units are mwork's (`mwork.mask`): ffn k in
[0, d_ffn); attn_q in q space (head * head_dim + j); attn_k / attn_v in kv space.

Status: the arithmetic is unit-tested against full matrices sharded as vLLM's weight loaders shard
them (tests/unit/test_vllm_tp.py); applying it inside a multi-GPU engine was not run (no GPU here).
The tested vLLM path is the weight reload (`weights.synced`), where vLLM shards full tensors
itself and which needs none of this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Geometry:
    """Shapes of one decoder layer: query heads, kv heads, head dim, FFN width."""

    n_heads: int
    n_kv: int
    head_dim: int
    d_ffn: int

    def check(self, tp: int) -> None:
        """Raise ValueError where vLLM could not shard this layer over `tp` ranks."""
        if tp < 1 or self.n_heads % tp or self.d_ffn % tp:
            raise ValueError(f"{self} cannot be split over {tp} ranks")
        if (self.n_kv >= tp and self.n_kv % tp) or (self.n_kv < tp and tp % self.n_kv):
            raise ValueError(f"{self.n_kv} kv heads cannot be split over {tp} ranks")


def kv_heads_of_rank(geo: Geometry, rank: int, tp: int) -> list[int]:
    """The kv heads rank `rank` holds (one replicated head when n_kv < tp)."""
    if geo.n_kv >= tp:
        per = geo.n_kv // tp
        return list(range(rank * per, (rank + 1) * per))
    return [rank // (tp // geo.n_kv)]


def shard_positions(
    geo: Geometry, comp: str, units: Iterable[int], rank: int, tp: int
) -> dict[str, list[int]]:
    """Local positions of `units` of component `comp` in rank `rank`'s shards.

    Returns:
        {"qkv_rows": [...]} for attn_q/attn_k/attn_v, or {"gate_up_rows": [...],
        "down_cols": [...]} for ffn; positions index the rank's local (fused) tensor, sorted.
        Units the rank does not hold are left out.
    """
    geo.check(tp)
    hd = geo.head_dim
    q_local = geo.n_heads // tp * hd
    kv = kv_heads_of_rank(geo, rank, tp)
    kv_local = len(kv) * hd
    if comp == "ffn":
        per = geo.d_ffn // tp
        lo = rank * per
        mine = sorted(u - lo for u in units if lo <= u < lo + per)
        return {"gate_up_rows": mine + [per + m for m in mine], "down_cols": mine}
    if comp == "attn_q":
        lo = rank * q_local
        return {"qkv_rows": sorted(u - lo for u in units if lo <= u < lo + q_local)}
    if comp in ("attn_k", "attn_v"):
        base = q_local + (0 if comp == "attn_k" else kv_local)
        lo = kv[0] * hd
        return {"qkv_rows": sorted(base + u - lo for u in units if lo <= u < lo + kv_local)}
    raise ValueError(f"unknown component {comp!r}")
