"""Budgeted Q/K scoring (Eq. 8) equals its definition at every budget, float64, every geometry.

The reference (qkreference.brute_force_importance) zeroes one pre-RoPE Q or K dim at a time and
recomputes the attention probabilities from scratch (RoPE, GQA, ALiBi, soft-capping, sliding
window, padding), so it shares no code with the blocked closed form in mwork.plnd.exact.
"""

import pytest
import torch
from qkreference import CASES, brute_force_importance, rope_tables, synthetic_case

from mwork import plnd
from mwork.adapters import AttnGeometry, attention_allowed, get_adapter
from mwork.errors import MworkError
from mwork.plnd import PLNDProbe, default_qk_budget, exact, qk_importance, softmax_change
from mwork.tiny import tiny_model

pytestmark = pytest.mark.usefixtures("qk_kernel")  # C kernel and torch form alike

BUDGETS = (
    1,
    3000,
    None,
    1 << 40,
)  # bytes: one pair/row per block, a few blocks, default, one block


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("name", CASES)
def test_budgeted_equals_brute_force(name, budget):
    q, k, geo, tm = synthetic_case(name)
    expected = brute_force_importance(q, k, geo, tm, "paper")
    got = qk_importance(q, k, geo, tm, "paper", budget_bytes=budget)
    for e, g in zip(expected, got, strict=True):
        assert e.abs().max() > 1e-3, "case too degenerate to be informative"
        assert torch.isfinite(g).all()
        rel = (g - e).abs().max() / e.abs().max()
        assert rel <= 1e-10, f"{name}, budget {budget}: relative error {rel:.2e}"


@pytest.mark.parametrize("name", ("rope-gqa-window", "alibi"))
def test_released_code_mode_equals_brute_force(name):
    q, k, geo, tm = synthetic_case(name, seed=1)
    expected = brute_force_importance(q, k, geo, tm, "released-code")
    for budget in (1, None):
        got = qk_importance(q, k, geo, tm, "released-code", budget_bytes=budget)
        for e, g in zip(expected, got, strict=True):
            rel = (g - e).abs().max() / e.abs().max()
            assert rel <= 1e-10, f"{name}, budget {budget}: relative error {rel:.2e}"


def test_direct_form_is_used_and_exact_where_the_bound_trips(monkeypatch):
    """Pairs whose exp bound trips take the direct softmax; a mix of both forms stays exact."""
    q, k, geo, tm = synthetic_case("rope-gqa-window", seed=2)
    expected = brute_force_importance(q, k, geo, tm, "paper")
    calls = []
    real = torch.baddbmm
    monkeypatch.setattr(torch, "baddbmm", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    fast = qk_importance(q, k, geo, tm, budget_bytes=3000)
    assert not calls, "no pair should need the direct form at this scale"
    limit = softmax_change.FAST_EXP_LIMIT
    monkeypatch.setitem(limit, torch.float64, 1.0)  # trips for some pairs only
    mixed = qk_importance(q, k, geo, tm, budget_bytes=3000)
    assert calls, "the direct form was never used"
    for e, f, m in zip(expected, fast, mixed, strict=True):
        assert (f - e).abs().max() / e.abs().max() <= 1e-10
        assert (m - e).abs().max() / e.abs().max() <= 1e-10


@pytest.mark.parametrize("name", CASES)
def test_identical_across_budgets(name):
    q, k, geo, tm = synthetic_case(name, seed=3)
    ref = qk_importance(q, k, geo, tm, budget_bytes=1 << 40)
    for budget in (1, 64, 3000, 100_000, None):
        got = qk_importance(q, k, geo, tm, budget_bytes=budget)
        for a, c in zip(ref, got, strict=True):
            torch.testing.assert_close(c, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_float32_agrees_with_float64(name):
    q64, k64, geo64, tm64 = synthetic_case(name, seed=4)
    q32, k32, geo32, tm32 = synthetic_case(name, dtype=torch.float32, seed=4)
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
            real = getattr(exact, name)

            def counting(*a, n=n, real=real, **kw):
                n[0] += 1
                return real(*a, **kw)

            monkeypatch.setattr(exact, name, counting)
        g = torch.Generator().manual_seed(0)
        q = torch.randn(1, 4, seq, 8, generator=g)
        k = torch.randn(1, 2, seq, 8, generator=g)
        tm = torch.ones(1, seq)
        cos, sin = rope_tables(1, seq, 8, torch.float32)
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
    q, k, geo, tm = synthetic_case("rope-gqa-window", seed=7)
    before = torch.get_num_threads()
    one = qk_importance(q, k, geo, tm, cpu_threads=1)
    assert torch.get_num_threads() == before
    kept = qk_importance(q, k, geo, tm, cpu_threads=None)
    for a, c in zip(one, kept, strict=True):
        torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-14)
