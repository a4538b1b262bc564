"""Tensor-parallel shard arithmetic of the vllm backend (mwork.vllm_backend.tp) against full
matrices sharded the way vLLM's weight loaders shard them (no vLLM needed).

Each full tensor's rows (columns for down_proj) carry their unit id, so a position is right exactly
when the shard holds that unit's row there; zeroing by positions on every rank must equal sharding
the matrix whose units were zeroed in full.
"""

from __future__ import annotations

import pytest
import torch

from mwork.vllm_backend.tp import Geometry, kv_heads_of_rank, shard_positions

GEOMETRIES = [
    (Geometry(n_heads=8, n_kv=8, head_dim=4, d_ffn=24), 2),  # MHA
    (Geometry(n_heads=8, n_kv=4, head_dim=4, d_ffn=24), 2),  # GQA, kv split
    (Geometry(n_heads=8, n_kv=2, head_dim=4, d_ffn=24), 4),  # GQA, kv replicated on 2 ranks
    (Geometry(n_heads=8, n_kv=1, head_dim=4, d_ffn=24), 8),  # MQA, kv on every rank
    (Geometry(n_heads=4, n_kv=2, head_dim=4, d_ffn=12), 1),  # no TP
]


def _rows(n: int, width: int = 3) -> torch.Tensor:
    """[n, width]: row i holds i + 1 (0 is free for "zeroed")."""
    return (torch.arange(n, dtype=torch.float64) + 1).unsqueeze(1).repeat(1, width)


def _vllm_qkv_shard(geo: Geometry, q, k, v, rank: int, tp: int) -> torch.Tensor:
    """qkv_proj of one rank as vLLM's QKVParallelLinear.weight_loader builds it."""
    hd, nq = geo.head_dim, geo.n_heads // tp
    q_part = q[rank * nq * hd : (rank + 1) * nq * hd]
    if geo.n_kv >= tp:
        nkv = geo.n_kv // tp
        start = rank * nkv * hd
        k_part, v_part = k[start : start + nkv * hd], v[start : start + nkv * hd]
    else:
        replicas = tp // geo.n_kv
        head = rank // replicas
        k_part, v_part = k[head * hd : (head + 1) * hd], v[head * hd : (head + 1) * hd]
    return torch.cat([q_part, k_part, v_part])


def _vllm_ffn_shards(geo: Geometry, gate, up, down, rank: int, tp: int):
    per = geo.d_ffn // tp
    rows = slice(rank * per, (rank + 1) * per)
    return torch.cat([gate[rows], up[rows]]), down[:, rows]


@pytest.mark.parametrize(("geo", "tp"), GEOMETRIES)
def test_attention_positions_match_vllm_sharding(geo: Geometry, tp: int) -> None:
    hd = geo.head_dim
    q, k, v = _rows(geo.n_heads * hd), _rows(geo.n_kv * hd), _rows(geo.n_kv * hd)
    g = torch.Generator().manual_seed(0)
    units = {
        "attn_q": torch.randperm(geo.n_heads * hd, generator=g)[:5].tolist(),
        "attn_k": torch.randperm(geo.n_kv * hd, generator=g)[:3].tolist(),
        "attn_v": torch.randperm(geo.n_kv * hd, generator=g)[:3].tolist(),
    }
    full = {"attn_q": q.clone(), "attn_k": k.clone(), "attn_v": v.clone()}
    for comp, us in units.items():
        full[comp][us] = 0
    held = {c: set() for c in units}
    for rank in range(tp):
        local = _vllm_qkv_shard(geo, q, k, v, rank, tp)
        for comp, us in units.items():
            for pos in shard_positions(geo, comp, us, rank, tp)["qkv_rows"]:
                tag = int(local[pos, 0]) - 1
                assert tag in us, (comp, rank, pos, tag)  # the unit's own row
                held[comp].add(tag)
                local[pos] = 0
        expect = _vllm_qkv_shard(geo, full["attn_q"], full["attn_k"], full["attn_v"], rank, tp)
        assert torch.equal(local, expect), rank
    assert all(held[c] == set(us) for c, us in units.items())  # every unit found on some rank


@pytest.mark.parametrize(("geo", "tp"), GEOMETRIES)
def test_ffn_positions_match_vllm_sharding(geo: Geometry, tp: int) -> None:
    gate, up = _rows(geo.d_ffn), _rows(geo.d_ffn) + 100
    down = _rows(geo.d_ffn).T.contiguous()  # [d_model=3, d_ffn]: column k holds k + 1
    units = [0, geo.d_ffn // 2, geo.d_ffn - 1, 5]
    zg, zu, zd = gate.clone(), up.clone(), down.clone()
    zg[units], zu[units], zd[:, units] = 0, 0, 0
    for rank in range(tp):
        gu, dn = _vllm_ffn_shards(geo, gate, up, down, rank, tp)
        pos = shard_positions(geo, "ffn", units, rank, tp)
        gu[pos["gate_up_rows"]] = 0
        dn[:, pos["down_cols"]] = 0
        egu, edn = _vllm_ffn_shards(geo, zg, zu, zd, rank, tp)
        assert torch.equal(gu, egu) and torch.equal(dn, edn), rank


def test_kv_replication_and_bad_splits() -> None:
    geo = Geometry(n_heads=8, n_kv=2, head_dim=4, d_ffn=24)
    assert [kv_heads_of_rank(geo, r, 4) for r in range(4)] == [[0], [0], [1], [1]]
    with pytest.raises(ValueError):
        shard_positions(Geometry(8, 3, 4, 24), "attn_k", [0], 0, 2)  # 3 kv heads over 2 ranks
    with pytest.raises(ValueError):
        shard_positions(geo, "ffn", [0], 0, 5)
    with pytest.raises(ValueError):
        shard_positions(geo, "mlp", [0], 0, 2)
