"""First-order Q/K scoring (mwork.plnd.first_order) equals the linearisation of Eq. 8, float64.

The reference (qkreference.brute_force_sq_change with scale_dim(1 − ε)) scales one pre-RoPE Q or
K dim by (1 − ε), i.e. removes ε·Δ from the scores, and recomputes the attention probabilities
from scratch (RoPE, GQA, ALiBi, soft-capping, sliding window, padding). Its squared change is
ε²·(first order)² + O(ε³), so brute(ε)/ε must converge to the first-order importance with an
error that shrinks linearly in ε. It shares no code with mwork.plnd.first_order, and at ε = 1 it
is the exact Eq. 8 (checked against mwork.plnd too).
"""

import numpy as np
import pytest
import torch
from qkreference import (
    brute_force_sq_change,
    rope_tables,
    scale_dim,
    synthetic_case,
    tiny_detection_inputs,
)

from mwork.adapters import AttnGeometry, attention_allowed, get_adapter
from mwork.cli import main
from mwork.detect import detect_to_file
from mwork.errors import MworkError
from mwork.plnd import PLNDProbe, first_order, qk_importance
from mwork.plnd.first_order import QK_SCORING_MODES
from mwork.settings import DetectionSettings, ModelSpec, schema_default
from mwork.tiny import QK_NORM_FAMILIES, tiny_model

FO = "first-order"
EPSILONS = (1e-2, 1e-3, 1e-4)
KEY_OFFSET = 0.7  # every synthetic key shares it (cancellation in the float32 test)


def _model_case(family: str, seed: int = 0):
    """(q_pre, k_pre, geo, token_mask) of layer 0 of a float64 tiny model, right-padded batch."""
    model = tiny_model(family, seed=seed, dtype=torch.float64)
    adapter = get_adapter(model)
    lengths = [9, 6, 4]
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, model.config.vocab_size, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    got = {}

    def hook(module, args, kwargs):
        got["hidden"] = args[0] if args else kwargs["hidden_states"]
        got["kwargs"] = dict(kwargs)

    handle = adapter.attention(0).register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask, use_cache=False)
    handle.remove()
    tm = mask.to(torch.float64)
    with torch.no_grad():
        q_pre, k_pre = adapter.project_qk(0, got["hidden"])
    geo = adapter.geometry(0, got["kwargs"], tm)
    if geo.cos is not None:
        geo.cos, geo.sin = geo.cos.double(), geo.sin.double()
    return q_pre, k_pre, geo, tm


def _assert_linearisation(q, k, geo, tm, label: str) -> None:
    first = qk_importance(q, k, geo, tm, scoring=FO)
    exact = qk_importance(q, k, geo, tm)
    at_one = brute_force_sq_change(q, k, geo, tm, scale_dim(0.0))  # ε = 1: Eq. 8 itself
    for f, e, brute in zip(first, exact, at_one, strict=True):
        assert f.abs().max() > 1e-3, f"{label}: too degenerate to be informative"
        assert torch.isfinite(f).all() and (f >= 0).all()
        torch.testing.assert_close(e, brute.sqrt(), rtol=1e-9, atol=1e-12)  # reference = Eq. 8
    errors = []
    for eps in EPSILONS:
        lin = [s.sqrt() / eps for s in brute_force_sq_change(q, k, geo, tm, scale_dim(1 - eps))]
        errors.append(
            max(float((f - x).abs().max() / f.abs().max()) for f, x in zip(first, lin, strict=True))
        )
    # O(ε): each tenfold smaller ε shrinks the error about tenfold (≥ 5x, allowing for rounding)
    assert errors[-1] <= 5e-4, f"{label}: brute(ε)/ε misses first order by {errors}"
    for big, small in zip(errors, errors[1:], strict=False):
        assert small <= big / 5, f"{label}: error does not shrink linearly in ε: {errors}"


@pytest.mark.parametrize("name", ("rope-gqa-window", "softcap", "alibi", "holes"))
def test_first_order_is_the_linearisation_synthetic(name):
    q, k, geo, tm = synthetic_case(name, key_offset=KEY_OFFSET)
    _assert_linearisation(q, k, geo, tm, name)


@pytest.mark.parametrize("family", ("llama", "qwen2", "gemma2", "bloom", "phi3", "mistral_nemo"))
def test_first_order_is_the_linearisation_on_tiny_models(family):
    """RoPE + GQA (llama), q/k bias (qwen2), soft-capping + window (gemma2), ALiBi without RoPE
    (bloom), fused qkv (phi3), head_dim ≠ hidden/heads (mistral_nemo)."""
    q, k, geo, tm = _model_case(family)
    _assert_linearisation(q, k, geo, tm, family)


@pytest.mark.parametrize("name", ("rope-gqa-window", "softcap", "alibi", "holes"))
def test_identical_across_budgets(name):
    q, k, geo, tm = synthetic_case(name, seed=3, key_offset=KEY_OFFSET)
    ref = qk_importance(q, k, geo, tm, scoring=FO, budget_bytes=1 << 40)
    for budget in (1, 64, 3000, None):
        got = qk_importance(q, k, geo, tm, scoring=FO, budget_bytes=budget)
        for a, c in zip(ref, got, strict=True):
            torch.testing.assert_close(c, a, rtol=1e-10, atol=1e-12)


def test_zero_perturbation_and_padding():
    """A dim that is zero everywhere, or keys constant over a document, scores exactly 0; padded
    positions (NaN here) and a padded or empty document change nothing."""
    q, k, geo, tm = synthetic_case("rope-gqa-window", seed=5, key_offset=KEY_OFFSET)
    q[:, 1, :, 2] = torch.where(tm.bool(), 0.0, q[:, 1, :, 2])  # q head 1, dim 2 (and partner)
    q[:, 1, :, 6] = torch.where(tm.bool(), 0.0, q[:, 1, :, 6])
    imp_q, imp_k = qk_importance(q, k, geo, tm, scoring=FO)
    assert imp_q.view(3, 4, 8)[:, 1, [2, 6]].abs().max() == 0
    exact_q, _ = qk_importance(q, k, geo, tm)
    assert exact_q.view(3, 4, 8)[:, 1, [2, 6]].abs().max() <= 1e-12  # exact: up to rounding
    # no RoPE: keys constant over the document shift every logit of a row equally -> 0
    qa, ka, geo_a, tm_a = synthetic_case("alibi", seed=6, key_offset=KEY_OFFSET)
    ka[0, 2, :, 5] = 3.0
    imp_q_a, _ = qk_importance(qa, ka, geo_a, tm_a, scoring=FO)
    assert imp_q_a.view(3, 4, 8)[0, 2, 5].abs() <= 1e-12 * imp_q_a.abs().max()
    # padding: document 1 alone, unpadded, and with an all-padding document appended
    n = int(tm[1].sum())
    single = qk_importance(q[1:2, :, :n], k[1:2, :, :n], _slice(geo, 1, n), tm[1:2, :n], scoring=FO)
    for a, c in zip((imp_q[1:2], imp_k[1:2]), single, strict=True):
        torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-14)
    tm_empty = tm.clone()
    tm_empty[2] = 0
    q_e, k_e = qk_importance(q, k, _with_mask(geo, tm_empty), tm_empty, scoring=FO)
    assert q_e[2].abs().max() == 0 and k_e[2].abs().max() == 0
    torch.testing.assert_close(q_e[:2], imp_q[:2], rtol=1e-12, atol=1e-14)


def _slice(geo: AttnGeometry, i: int, n: int) -> AttnGeometry:
    return AttnGeometry(
        geo.cos[i : i + 1, :n],
        geo.sin[i : i + 1, :n],
        None,
        geo.allowed[i : i + 1, :, :n, :n],
        geo.scaling,
        geo.softcap,
    )


def _with_mask(geo: AttnGeometry, tm: torch.Tensor) -> AttnGeometry:
    allowed = geo.allowed & tm.bool()[:, None, None, :]
    return AttnGeometry(geo.cos, geo.sin, geo.bias, allowed, geo.scaling, geo.softcap)


def test_probe_first_order_matches_direct_call_and_leaves_other_components():
    model = tiny_model("llama", seed=2, dtype=torch.float64)
    adapter = get_adapter(model)
    ids = torch.randint(
        3, model.config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0)
    )
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    comps = ("ffn", "attn_q", "attn_k", "attn_v")
    with PLNDProbe(adapter, comps, "paper") as probe:
        exact = probe.run(ids, mask)
    with PLNDProbe(adapter, comps, "paper", qk_scoring=FO) as probe:
        first = probe.run(ids, mask)
    for c in ("ffn", "attn_v"):
        torch.testing.assert_close(first[c], exact[c], rtol=0, atol=0)
    for c in ("attn_q", "attn_k"):
        assert not torch.equal(first[c], exact[c]), "first-order should differ from exact"
        # both rank the dims similarly on a small random model (weak perturbations)
        corr = torch.corrcoef(torch.stack([first[c].flatten(), exact[c].flatten()]))[0, 1]
        assert corr > 0.9, f"{c}: first-order vs exact correlation {corr:.3f}"


def test_released_code_with_first_order_is_an_error():
    with pytest.raises(MworkError, match="qk_scoring: exact"):
        DetectionSettings(importance="released-code", qk_scoring=FO).validate()
    adapter = get_adapter(tiny_model("llama", seed=0))
    with pytest.raises(MworkError, match="importance"):
        PLNDProbe(adapter, ("attn_q",), "released-code", qk_scoring=FO)
    q, k, geo, tm = synthetic_case("alibi", key_offset=KEY_OFFSET)
    with pytest.raises(MworkError):
        qk_importance(q, k, geo, tm, "released-code", scoring=FO)


def test_unknown_scoring_is_an_error():
    with pytest.raises(MworkError, match="first-order"):
        DetectionSettings(qk_scoring="second-order").validate()
    with pytest.raises(MworkError, match="unknown qk_scoring"):
        PLNDProbe(get_adapter(tiny_model("llama", seed=0)), ("attn_q",), qk_scoring="fast")


@pytest.mark.parametrize("family", QK_NORM_FAMILIES)
def test_qk_norm_model_is_an_error_at_probe_construction(family):
    adapter = get_adapter(tiny_model(family, seed=0))
    with pytest.raises(MworkError, match="use qk_scoring: exact"):
        PLNDProbe(adapter, ("attn_q", "attn_k"), "paper", qk_scoring=FO)
    PLNDProbe(adapter, ("attn_q", "attn_k"), "paper")  # exact stays allowed


def test_default_is_exact_everywhere():
    assert schema_default("detection/qk_scoring") == "exact"
    assert DetectionSettings().qk_scoring == "exact"
    assert DetectionSettings.from_mapping({}).qk_scoring == "exact"
    assert QK_SCORING_MODES == ("exact", FO)


def test_cli_rejects_first_order_with_released_code_before_loading(tmp_path, capsys):
    """`mwork detect --qk-scoring first-order --importance released-code`: exit 2, one line,
    before the model (which does not exist here) is looked at."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "a b c"}\n', encoding="utf-8")
    argv = ["detect", "--model", str(tmp_path / "no-model"), "--corpus", str(corpus)]
    argv += ["--lang", "en", "--out", str(tmp_path / "o.safetensors")]
    rc = main([*argv, "--qk-scoring", FO, "--importance", "released-code"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "qk_scoring: exact" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "o.safetensors").exists()


def test_whole_batch_in_one_block_when_memory_allows(monkeypatch):
    """No per-document loop: with a large budget a batch of 8 documents of different lengths is
    one block per removal, for 64 tokens as for 256."""
    real = first_order._block_first_order
    for seq in (64, 256):
        calls = []
        monkeypatch.setattr(
            first_order, "_block_first_order", lambda *a, calls=calls: calls.append(1) or real(*a)
        )
        g = torch.Generator().manual_seed(0)
        q = torch.randn(8, 4, seq, 8, generator=g)
        k = torch.randn(8, 2, seq, 8, generator=g)
        tm = torch.ones(8, seq)
        for i in range(8):
            tm[i, seq - 3 * i :] = 0
        cos, sin = rope_tables(8, seq, 8)
        geo = AttnGeometry(
            cos.float(), sin.float(), None, attention_allowed(tm, None), 8**-0.5, None
        )
        imp_q, imp_k = qk_importance(q, k, geo, tm, scoring=FO, budget_bytes=1 << 30)
        assert len(calls) == 2, f"seq {seq}: {len(calls)} blocks"
        assert torch.isfinite(imp_q).all() and torch.isfinite(imp_k).all()


@pytest.mark.parametrize("name", ("rope-gqa-window", "softcap", "alibi", "holes"))
def test_float32_agrees_with_float64(name):
    """The expanded form A − 2ūB + ū²C in float32 (keys with a shared offset: cancellation)."""
    q, k, geo, tm = synthetic_case(name, seed=7, key_offset=KEY_OFFSET)
    ref = qk_importance(q, k, geo, tm, scoring=FO)
    geo32 = AttnGeometry(
        None if geo.cos is None else geo.cos.float(),
        None if geo.sin is None else geo.sin.float(),
        None if geo.bias is None else geo.bias.float(),
        geo.allowed,
        geo.scaling,
        geo.softcap,
    )
    got = qk_importance(q.float(), k.float(), geo32, tm.float(), scoring=FO)
    for a, c in zip(ref, got, strict=True):
        assert c.dtype == torch.float32 and torch.isfinite(c).all()
        rel = (c.double() - a).abs().max() / a.abs().max()
        assert rel <= 2e-5, f"{name}: float32 relative error {rel:.2e}"


def test_detect_to_file_records_first_order_and_reruns_identically(tmp_path):
    """`detection.qk_scoring` reaches the probe through mwork.detect: the neuron file says so,
    FFN/V selections equal the exact run's, and a rerun is byte-identical."""
    spec, corpus = tiny_detection_inputs(tmp_path, 12)
    files = {}
    for mode in ("exact", FO, FO):
        out = tmp_path / f"{mode}-{len(files)}.safetensors"
        settings = DetectionSettings(n_docs=12, top_k_ffn=8, top_k_attn=4, qk_scoring=mode)
        files[out] = detect_to_file(spec, corpus, "en", out, settings, device="cpu")
    (_, exact), (f_path, first), (g_path, _) = files.items()
    assert exact.meta["qk_scoring"] == "exact" and first.meta["qk_scoring"] == FO
    for i in range(exact.n_layers):
        for c in ("ffn", "attn_v"):
            assert np.array_equal(exact.indices(i, c), first.indices(i, c))
    assert f_path.read_bytes() == g_path.read_bytes()


@pytest.mark.parametrize("model_dir", ["qwen3"], indirect=True)
def test_detect_refuses_first_order_on_a_qk_norm_model_before_scoring(
    model_dir, tmp_path, monkeypatch
):
    corpus = tmp_path / "en.jsonl"
    corpus.write_text('{"text": "a b c d"}\n', encoding="utf-8")
    monkeypatch.setattr(PLNDProbe, "run", lambda *a, **k: pytest.fail("scored before the check"))
    settings = DetectionSettings(n_docs=1, top_k_ffn=2, top_k_attn=2, qk_scoring=FO)
    spec = ModelSpec(ref=str(model_dir), dtype="float32")
    with pytest.raises(MworkError, match="use qk_scoring: exact"):
        detect_to_file(spec, corpus, "en", tmp_path / "o.safetensors", settings, device="cpu")
    assert not (tmp_path / "o.safetensors").exists()
