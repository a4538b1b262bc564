"""Eq. 8 under Q/K RMSNorm (Qwen3/Gemma-3 per head, OLMo-2 over the projection), float64.

The per-token factor α = ρ/ρ' is checked against literally renormalising the zeroed vector, the
blocked scorer against zeroing each raw dim and recomputing every head's probabilities, and the
adapters' norm description against the HF modules themselves.
"""

import pytest
import torch

from mwork.adapters import AttnGeometry, QKNorm, attention_allowed, get_adapter
from mwork.qknorm import qk_importance_normed, reference_qk_importance, removal_factors, rms_norm
from mwork.tiny import QK_NORM_FAMILIES, tiny_model


@pytest.mark.parametrize("per_head", [True, False])
def test_removal_factor_is_renormalisation(per_head):
    torch.manual_seed(1)
    b, n, seq, d, eps = 2, 3, 5, 4, 0.2
    x = torch.randn(b, n, seq, d, dtype=torch.float64)
    gain = torch.rand(d if per_head else n * d, dtype=torch.float64) + 0.5
    alpha = removal_factors(x, eps, per_head)
    q = rms_norm(x, gain, eps, per_head)
    for h in range(n):
        for i in range(d):
            z = x.clone()
            z[:, h, :, i] = 0
            q_new = rms_norm(z, gain, eps, per_head)
            q_cut = q.clone()
            q_cut[:, h, :, i] = 0
            heads = [h] if per_head else list(range(n))  # OLMo-2: every head rescales
            for hh in heads:
                torch.testing.assert_close(
                    q_new[:, hh], alpha[:, h, :, i, None] * q_cut[:, hh], rtol=1e-13, atol=1e-14
                )
            if per_head:
                others = [hh for hh in range(n) if hh != h]
                torch.testing.assert_close(q_new[:, others], q[:, others], rtol=0, atol=0)
    assert (alpha > 1).all() and float(alpha.max()) > 1.05  # the rescaling is not negligible here


@pytest.mark.parametrize("per_head", [True, False])
@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("softcap", [None, 3.0])
def test_blocked_scorer_equals_literal_zeroing(per_head, rope, softcap):
    torch.manual_seed(0)
    b, n_heads, n_kv, seq, d = 2, 4, 2, 7, 6
    q = torch.randn(b, n_heads, seq, d, dtype=torch.float64) * 1.5
    k = torch.randn(b, n_kv, seq, d, dtype=torch.float64) * 1.5
    tm = torch.ones(b, seq, dtype=torch.float64)
    tm[1, 5:] = 0
    gq = torch.rand(d if per_head else n_heads * d, dtype=torch.float64) + 0.5
    gk = torch.rand(d if per_head else n_kv * d, dtype=torch.float64) + 0.5
    cos = sin = None
    if rope:
        ang = torch.rand(b, seq, d // 2, dtype=torch.float64) * 6
        ang = torch.cat([ang, ang], -1)
        cos, sin = ang.cos(), ang.sin()
    geo = AttnGeometry(
        cos, sin, None, attention_allowed(tm, 4), 0.4, softcap, QKNorm(gq, gk, 0.3, per_head)
    )
    got = qk_importance_normed(q, k, geo, tm, budget_elems=50)  # many small blocks
    want = reference_qk_importance(q, k, geo, tm)
    for g, w in zip(got, want, strict=False):
        assert float(w.abs().max()) > 1e-3
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)
    # the naive rank-1 Eq. 8 on the normalised q/k (ignoring the rescale) is measurably different
    naive = QKNorm(gq, gk, 0.3, per_head)
    assert naive is not None and not torch.allclose(got[0], _rank1_ignoring_norm(q, k, geo, tm))


def _rank1_ignoring_norm(q, k, geo, tm):
    from mwork.plnd import qk_importance

    nq = rms_norm(q, geo.qk_norm.q_gain, geo.qk_norm.eps, geo.qk_norm.per_head)
    nk = rms_norm(k, geo.qk_norm.k_gain, geo.qk_norm.eps, geo.qk_norm.per_head)
    plain = AttnGeometry(geo.cos, geo.sin, None, geo.allowed, geo.scaling, geo.softcap)
    return qk_importance(nq, nk, plain, tm)[0]


@pytest.mark.parametrize("family", QK_NORM_FAMILIES)
def test_adapter_norm_matches_the_hf_modules(family):
    model = tiny_model(family, seed=0, dtype=torch.float64)
    adapter = get_adapter(model)
    hidden = torch.randn(1, 5, adapter.d_model, dtype=torch.float64)
    for i in range(adapter.n_layers):
        attn = adapter.attention(i)
        norm = adapter.qk_norm(i)
        q_raw, k_raw = adapter.project_qk(i, hidden)
        if norm.per_head:
            want_q = attn.q_norm(q_raw.transpose(1, 2)).transpose(1, 2)
            want_k = attn.k_norm(k_raw.transpose(1, 2)).transpose(1, 2)
        else:  # OLMo-2 normalises the flat projection
            b, n, seq, d = q_raw.shape
            want_q = attn.q_norm(attn.q_proj(hidden)).view(b, seq, n, d).transpose(1, 2)
            want_k = attn.k_norm(attn.k_proj(hidden)).view(b, seq, -1, d).transpose(1, 2)
        # HF computes the norm in float32 even for float64 models
        torch.testing.assert_close(
            rms_norm(q_raw, norm.q_gain, norm.eps, norm.per_head), want_q, rtol=1e-6, atol=1e-6
        )
        torch.testing.assert_close(
            rms_norm(k_raw, norm.k_gain, norm.eps, norm.per_head), want_k, rtol=1e-6, atol=1e-6
        )
    assert adapter.qk_norm(0).per_head == (family != "olmo2")
