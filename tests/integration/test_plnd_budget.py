"""Budgeted Q/K scoring (Eq. 8) equals its definition at every budget, float64, every geometry.

The reference zeroes one pre-RoPE Q or K dim at a time and recomputes the attention probabilities
from scratch (RoPE, GQA, ALiBi, soft-capping, sliding window, padding), so it shares no code with
the blocked closed form in mwork.plnd.
"""

import pytest
import torch

from mwork import plnd
from mwork.adapters import AttnGeometry, attention_allowed, get_adapter
from mwork.errors import MworkError
from mwork.plnd import PLNDProbe, default_qk_budget, qk_importance
from mwork.tiny import tiny_model

pytestmark = pytest.mark.usefixtures("qk_kernel")  # C kernel and torch form alike

BUDGETS = (
    1,
    3000,
    None,
    1 << 40,
)  # bytes: one pair/row per block, a few blocks, default, one block


def _rope_tables(b: int, seq: int, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype).expand(b, seq, d), emb.sin().to(dtype).expand(b, seq, d)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1]
    rot = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1)
    return x * cos[:, None] + rot * sin[:, None]


def _case(name: str, dtype: torch.dtype = torch.float64, seed: int = 0):
    """(q_pre, k_pre, geo, token_mask) of one geometry; padded positions hold NaN."""
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
    q = q.masked_fill(tm[:, None, :, None] == 0, float("nan"))
    k = k.masked_fill(tm[:, None, :, None] == 0, float("nan"))
    window = 4 if name in ("rope-gqa-window", "softcap", "holes") else None
    cos, sin = _rope_tables(b, seq, d, dtype) if name != "alibi" else (None, None)
    bias = None
    if name == "alibi":
        slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=dtype)
        bias = (slopes[None, :, None, None] * torch.arange(seq, dtype=dtype)).expand(
            b, n_heads, 1, seq
        )
    softcap = 2.0 if name == "softcap" else None
    geo = AttnGeometry(cos, sin, bias, attention_allowed(tm, window), d**-0.5, softcap)
    return q, k, geo, tm


def _brute_force(q_pre, k_pre, geo, tm, mode):
    """Zero each Q/K dim literally and recompute softmax(f(S)); norms over real query rows."""
    b, n_heads, seq, d = q_pre.shape
    r = n_heads // k_pre.shape[1]
    q_pre = q_pre.nan_to_num(0.0)
    k_pre = k_pre.nan_to_num(0.0)
    rope = geo.cos is not None

    def probs(qp, kp, minus=None):
        q = _rope(qp, geo.cos, geo.sin) if rope else qp
        kk = (_rope(kp, geo.cos, geo.sin) if rope else kp).repeat_interleave(r, dim=1)
        s = geo.scaling * q @ kk.transpose(-1, -2)
        if minus is not None:  # released code: unscaled post-RoPE term of one dim
            h, i = minus
            s[:, h] -= q[:, h, :, i, None] * kk[:, h, None, :, i]
        if geo.bias is not None:
            s = s + geo.bias
        if geo.softcap is not None:
            s = torch.tanh(s / geo.softcap) * geo.softcap
        return torch.softmax(s.masked_fill(~geo.allowed, -torch.inf), dim=-1)

    base = probs(q_pre, k_pre)
    rows = tm.bool()[:, None, :, None]

    def sq_change(new):  # [b, n_heads] squared norms over real query rows
        diff = torch.where(rows, new - base, torch.zeros_like(base))
        return diff.square().sum(dim=(-1, -2))

    imp_q = torch.zeros(b, n_heads, d, dtype=torch.float64)
    imp_k = torch.zeros(b, n_heads // r, d, dtype=torch.float64)
    for i in range(d):
        if mode == "paper":
            for h in range(n_heads):
                qp = q_pre.clone()
                qp[:, h, :, i] = 0
                imp_q[:, h, i] = sq_change(probs(qp, k_pre))[:, h]
            for g in range(n_heads // r):
                kp = k_pre.clone()
                kp[:, g, :, i] = 0
                imp_k[:, g, i] = sq_change(probs(q_pre, kp))[:, g * r : (g + 1) * r].sum(1)
        else:
            for h in range(n_heads):
                imp_q[:, h, i] = sq_change(probs(q_pre, k_pre, minus=(h, i)))[:, h]
                imp_k[:, h // r, i] += imp_q[:, h, i]
    if mode == "paper":
        imp_q, imp_k = imp_q.sqrt(), imp_k.sqrt()
    return imp_q.reshape(b, -1), imp_k.reshape(b, -1)


CASES = ("rope-gqa-window", "softcap", "alibi", "holes", "large")


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", CASES)
def test_budgeted_equals_brute_force(name, budget):
    q, k, geo, tm = _case(name)
    expected = _brute_force(q, k, geo, tm, "paper")
    got = qk_importance(q, k, geo, tm, "paper", budget_bytes=budget)
    for e, g in zip(expected, got, strict=True):
        assert e.abs().max() > 1e-3, "case too degenerate to be informative"
        assert torch.isfinite(g).all()
        rel = (g - e).abs().max() / e.abs().max()
        assert rel <= 1e-10, f"{name}, budget {budget}: relative error {rel:.2e}"


@pytest.mark.parametrize("name", ("rope-gqa-window", "alibi"))
def test_released_code_mode_equals_brute_force(name):
    q, k, geo, tm = _case(name, seed=1)
    expected = _brute_force(q, k, geo, tm, "released-code")
    for budget in (1, None):
        got = qk_importance(q, k, geo, tm, "released-code", budget_bytes=budget)
        for e, g in zip(expected, got, strict=True):
            rel = (g - e).abs().max() / e.abs().max()
            assert rel <= 1e-10, f"{name}, budget {budget}: relative error {rel:.2e}"


def test_direct_form_is_used_and_exact_where_the_bound_trips(monkeypatch):
    """Pairs whose exp bound trips take the direct softmax; a mix of both forms stays exact."""
    q, k, geo, tm = _case("rope-gqa-window", seed=2)
    expected = _brute_force(q, k, geo, tm, "paper")
    calls = []
    real = torch.baddbmm
    monkeypatch.setattr(torch, "baddbmm", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    fast = qk_importance(q, k, geo, tm, budget_bytes=3000)
    assert not calls, "no pair should need the direct form at this scale"
    monkeypatch.setitem(plnd._FAST_EXP_LIMIT, torch.float64, 1.0)  # trips for some pairs only
    mixed = qk_importance(q, k, geo, tm, budget_bytes=3000)
    assert calls, "the direct form was never used"
    for e, f, m in zip(expected, fast, mixed, strict=True):
        assert (f - e).abs().max() / e.abs().max() <= 1e-10
        assert (m - e).abs().max() / e.abs().max() <= 1e-10


@pytest.mark.parametrize("name", CASES)
def test_identical_across_budgets(name):
    q, k, geo, tm = _case(name, seed=3)
    ref = qk_importance(q, k, geo, tm, budget_bytes=1 << 40)
    for budget in (1, 64, 3000, 100_000, None):
        got = qk_importance(q, k, geo, tm, budget_bytes=budget)
        for a, c in zip(ref, got, strict=True):
            torch.testing.assert_close(c, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_float32_agrees_with_float64(name):
    q64, k64, geo64, tm64 = _case(name, seed=4)
    q32, k32, geo32, tm32 = _case(name, dtype=torch.float32, seed=4)
    ref = qk_importance(q64, k64, geo64, tm64)
    for budget in (1, None):
        got = qk_importance(q32, k32, geo32, tm32, budget_bytes=budget)
        for a, c in zip(ref, got, strict=True):
            assert c.dtype == torch.float32 and torch.isfinite(c).all()
            rel = (c.double() - a).abs().max() / a.abs().max()
            assert rel <= 1e-5, f"{name}, budget {budget}: float32 relative error {rel:.2e}"


def test_steps_do_not_grow_with_length_when_memory_allows(monkeypatch):
    """With a large budget the number of blocks per layer is the same for seq = 64 and seq = 512."""
    counts = {}
    for seq in (64, 512):
        n = [0]
        for name in ("_score_fast", "sq_change_rows"):  # the torch form's blocks, the kernel's
            real = getattr(plnd, name)

            def counting(*a, n=n, real=real, **kw):
                n[0] += 1
                return real(*a, **kw)

            monkeypatch.setattr(plnd, name, counting)
        g = torch.Generator().manual_seed(0)
        q = torch.randn(1, 4, seq, 8, generator=g)
        k = torch.randn(1, 2, seq, 8, generator=g)
        tm = torch.ones(1, seq)
        cos, sin = _rope_tables(1, seq, 8, torch.float32)
        geo = AttnGeometry(cos, sin, None, attention_allowed(tm, None), 8**-0.5, None)
        qk_importance(q, k, geo, tm, budget_bytes=1 << 30)
        counts[seq] = n[0]
    assert counts[64] == counts[512] > 0, counts


def test_probe_budgets_agree_on_every_family(family):
    model = tiny_model(family, seed=5, dtype=torch.float64)
    adapter = get_adapter(model)
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(3, model.config.vocab_size, (2, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    results = []
    for budget in (1, 5000, None, 1 << 40):
        with PLNDProbe(adapter, ("attn_q", "attn_k"), "paper", qk_budget_bytes=budget) as probe:
            results.append(probe.run(ids, mask))
    for other in results[1:]:
        for c in results[0]:
            torch.testing.assert_close(other[c], results[0][c], rtol=1e-10, atol=1e-12)


def test_default_budget(monkeypatch):
    assert default_qk_budget("cpu") == plnd.QK_BUDGET_CPU
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 << 30, 16 << 30))
    assert default_qk_budget("cuda:0") == 2 << 30


def test_probe_rejects_a_non_positive_budget():
    adapter = get_adapter(tiny_model("llama"))
    with pytest.raises(MworkError, match="budget"):
        PLNDProbe(adapter, ("attn_q",), qk_budget_bytes=0)


def test_cpu_threads_setting_is_restored_and_does_not_change_results():
    q, k, geo, tm = _case("rope-gqa-window", seed=7)
    before = torch.get_num_threads()
    one = qk_importance(q, k, geo, tm, cpu_threads=1)
    assert torch.get_num_threads() == before
    kept = qk_importance(q, k, geo, tm, cpu_threads=None)
    for a, c in zip(one, kept, strict=True):
        torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-14)
