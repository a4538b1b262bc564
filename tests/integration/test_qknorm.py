"""Eq. 8 under Q/K RMSNorm (Qwen3/Gemma-3 per head, OLMo-2 over the projection), float64.

The per-token factor α = ρ/ρ' is checked against literally renormalising the zeroed vector, the
blocked scorer against zeroing each raw dim and recomputing every head's probabilities, and the
adapters' norm description against the HF modules themselves.
"""

import pytest
import torch
from qkreference import reference_qk_importance, removal_factors

from mwork.adapters import AttnGeometry, QKNorm, attention_allowed, get_adapter
from mwork.plnd import softmax_change, terms
from mwork.plnd.qknorm import qk_importance_normed, rms_norm
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
def test_blocked_scorer_equals_literal_zeroing(per_head, rope, softcap, kernel):
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
    got = qk_importance_normed(q, k, geo, tm, budget_elems=50, kernel=kernel)  # small blocks
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


# --- the blocked multiplicative form: which path scores what, and that every path is exact ---


@pytest.fixture(params=[True, False], ids=["compiled", "torch"])
def kernel(request) -> bool:
    """Score the multiplicative blocks with the C kernel (mwork.plnd.kernel) or torch's form."""
    return request.param


class _Calls:
    """Counts calls of the fast (multiplicative: torch form or C kernel) and direct block
    scorers of mwork.plnd.terms."""

    def __init__(self, monkeypatch):
        self.fast = self.direct = 0
        real_fast, real_kernel = terms.sq_change_fast, terms._kernel_block
        real_direct = terms._score_direct

        def fast(*a, real=real_fast, **kw):
            self.fast += 1
            return real(*a, **kw)

        def direct(*a, **kw):
            self.direct += 1
            return real_direct(*a, **kw)

        monkeypatch.setattr(terms, "sq_change_fast", fast)
        monkeypatch.setattr(terms, "_kernel_block", lambda *a, **kw: fast(*a, real=real_kernel))
        monkeypatch.setattr(terms, "_score_direct", direct)


def _normed_case(
    per_head: bool,
    rope: bool,
    *,
    dtype=torch.float64,
    seq: int = 7,
    scale: float = 1.5,
    gain: float = 1.0,
    scaling: float = 0.4,
    window: int | None = 4,
    bias: bool = False,
    outliers: float = 0.0,
    seed: int = 0,
):
    """(q, k, geo, token_mask): GQA 4:2, head dim 6, two documents (the second one padded)."""
    g = torch.Generator().manual_seed(seed)
    b, n_heads, n_kv, d = 2, 4, 2, 6

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    q, k = rnd(b, n_heads, seq, d) * scale, rnd(b, n_kv, seq, d) * scale
    if outliers:  # a few tokens dominated by one raw dim: α = ρ/ρ' far above 1
        q[:, :, ::3, 1] = outliers
        k[:, :, 1::3, 4] = outliers
    tm = torch.ones(b, seq, dtype=torch.float64)
    tm[1, seq - 2 :] = 0
    gq = (torch.rand(d if per_head else n_heads * d, generator=g, dtype=torch.float64) + 0.5) * gain
    gk = (torch.rand(d if per_head else n_kv * d, generator=g, dtype=torch.float64) + 0.5) * gain
    cos = sin = None
    if rope:
        ang = torch.rand(b, seq, d // 2, generator=g, dtype=torch.float64) * 6
        ang = torch.cat([ang, ang], -1)
        cos, sin = ang.cos().to(dtype), ang.sin().to(dtype)
    alibi = None
    if bias:  # an additive per-head bias over keys (ALiBi-like), not rescaled by the norm
        slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=torch.float64)
        pos = torch.arange(seq, dtype=torch.float64)
        alibi = (slopes[:, None, None] * (pos[None, None, :] - pos[None, :, None])).expand(
            b, n_heads, seq, seq
        )
        alibi = alibi.to(dtype)
    norm = QKNorm(gq.to(dtype), gk.to(dtype), 0.05, per_head)
    geo = AttnGeometry(cos, sin, alibi, attention_allowed(tm, window), scaling, None, norm)
    return q.to(dtype), k.to(dtype), geo, tm.to(dtype)


def _assert_equals_reference(q, k, geo, tm, budget_elems, kernel):
    got = qk_importance_normed(q, k, geo, tm, budget_elems=budget_elems, kernel=kernel)
    want = reference_qk_importance(q, k, geo, tm)
    for g, w in zip(got, want, strict=True):
        assert float(w.abs().max()) > 1e-3
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, w, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("per_head", [True, False])
@pytest.mark.parametrize("rope", [False, True])
def test_one_block_per_term_when_memory_allows(per_head, rope, monkeypatch, kernel):
    """A large budget scores each term of a document in one multiplicative block: no loop over
    heads or dims (per head: Q and K terms; OLMo-2 also the two cross-head terms)."""
    q, k, geo, tm = _normed_case(per_head, rope, bias=rope)
    calls = _Calls(monkeypatch)
    _assert_equals_reference(q, k, geo, tm, budget_elems=1 << 30, kernel=kernel)
    assert calls.direct == 0
    assert calls.fast == 2 * (2 if per_head else 4)  # two documents


@pytest.mark.parametrize("per_head", [True, False])
@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize(("budget", "seq"), [(1, 9), (97, 30), (2000, 70)])
def test_every_budget_is_exact(per_head, rope, budget, seq, monkeypatch, kernel):
    """Blocks of one element, of odd sizes (cut heads, rows and columns), and larger ones over a
    long document (≥ 4 row blocks, each with its key span under a sliding window)."""
    q, k, geo, tm = _normed_case(per_head, rope, seq=seq, window=16, seed=3)
    calls = _Calls(monkeypatch)
    _assert_equals_reference(q, k, geo, tm, budget_elems=budget, kernel=kernel)
    assert calls.direct == 0 and calls.fast > 2 * (2 if per_head else 4)


@pytest.mark.parametrize("per_head", [True, False])
@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("groups", [64, 3])
def test_overflow_guard_falls_back_to_the_direct_form(per_head, rope, groups, monkeypatch, kernel):
    """Outlier tokens (α up to ~10) with large gains push the bound on |z| past the float64 limit
    for some (head, row block, dim) entries only: those are scored directly, the rest stays
    multiplicative, and the sum is exact; also with the bound shared by groups of row blocks."""
    monkeypatch.setattr(terms, "_MAX_BOUND_GROUPS", groups)  # 10 row blocks: 10 or 3 groups
    q, k, geo, tm = _normed_case(
        per_head, rope, gain=6.0, scaling=1.0, outliers=40.0, seq=70, window=None, bias=True
    )
    calls = _Calls(monkeypatch)
    _assert_equals_reference(q, k, geo, tm, budget_elems=3000, kernel=kernel)
    assert calls.direct > 0 and calls.fast > 0


@pytest.mark.parametrize("per_head", [True, False])
def test_forced_fallback_mixes_paths_within_blocks(per_head, monkeypatch, kernel):
    """A low limit (real dict of mwork.plnd.softmax_change) splits single blocks between both forms."""
    monkeypatch.setitem(softmax_change.FAST_EXP_LIMIT, torch.float64, 3.0)
    q, k, geo, tm = _normed_case(per_head, True, bias=True)
    calls = _Calls(monkeypatch)
    _assert_equals_reference(q, k, geo, tm, budget_elems=1 << 30, kernel=kernel)
    assert calls.direct > 0 and calls.fast == 2 * (2 if per_head else 4)


@pytest.mark.parametrize("per_head", [True, False])
def test_float32_agrees_with_float64(per_head, monkeypatch, kernel):
    """Float32 with outliers that really overflow e^z (without the guard the scores are not
    finite): guarded, both forms run, and the result equals float64 to float32 accuracy."""
    kw = {"gain": 3.0, "scaling": 1.0, "outliers": 20.0, "seq": 40, "window": None}
    q64, k64, geo64, tm64 = _normed_case(per_head, True, **kw)
    q32, k32, geo32, tm32 = _normed_case(per_head, True, dtype=torch.float32, **kw)
    want = qk_importance_normed(q64, k64, geo64, tm64, budget_elems=500)
    with monkeypatch.context() as m:
        m.setitem(softmax_change.FAST_EXP_LIMIT, torch.float32, 1e9)  # guard off
        unguarded = qk_importance_normed(q32, k32, geo32, tm32, budget_elems=500, kernel=kernel)
    assert not all(bool(torch.isfinite(x).all()) for x in unguarded)
    calls = _Calls(monkeypatch)
    got = qk_importance_normed(q32, k32, geo32, tm32, budget_elems=500, kernel=kernel)
    assert calls.direct > 0 and calls.fast > 0  # both forms ran in float32
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32 and torch.isfinite(g).all()
        torch.testing.assert_close(g.double(), w, rtol=2e-5, atol=1e-6)
