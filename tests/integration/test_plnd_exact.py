"""PLND importance equals its definition: brute-force single-neuron ablation, float64, every family."""

import pytest
import torch

from mwork.adapters import get_adapter
from mwork.plnd import PLNDProbe, qk_importance

pytestmark = pytest.mark.usefixtures("qk_kernel")  # C kernel and torch form alike

COMPONENTS = ("ffn", "attn_q", "attn_k", "attn_v")


def _batch(vocab: int, lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    l = max(lengths)
    ids = torch.randint(3, vocab, (len(lengths), l), generator=g)
    mask = torch.zeros(len(lengths), l, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        ids[b, n:] = 0
    return ids, mask


def _capture_calls(model, modules):
    """Run the model once and record (args, kwargs) of each module's call."""
    calls, handles = {}, []
    for key, mod in modules.items():

        def pre(m, args, kwargs, key=key):
            calls[key] = (args, dict(kwargs))

        handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
    return calls, handles


def _brute_force(adapter, ids, mask, layer, component):
    """Zero each unit's parameters in turn, rerun the sub-layer, measure the change per document."""
    module = adapter.mlp(layer) if component == "ffn" else adapter.attention(layer)
    calls, handles = _capture_calls(adapter.model, {"m": module})
    with torch.no_grad():
        adapter.model(input_ids=ids, attention_mask=mask, use_cache=False)
    for h in handles:
        h.remove()
    args, kwargs = calls["m"]
    out_index = (
        1 if component in ("attn_q", "attn_k") else 0
    )  # q/k: attention probabilities (Eq. 8)

    def run():
        with torch.no_grad():
            out = module(*args, **kwargs)
        return out[out_index] if isinstance(out, tuple) else out

    base = run()
    valid = mask.to(base.dtype)
    result = torch.zeros(ids.shape[0], adapter.n_units(component), dtype=torch.float64)
    for u in range(adapter.n_units(component)):
        saved = []
        for s in adapter.neuron_slices(layer, component):
            saved.append((s, s.param.data.index_select(s.dim, s.index[u : u + 1]).clone()))
            s.param.data.index_fill_(s.dim, s.index[u : u + 1], 0.0)
        diff = run() - base
        for s, val in saved:
            s.param.data.index_copy_(s.dim, s.index[u : u + 1], val)
        # exclude padded query rows (HF may leave NaN there when a row sees no key)
        keep = valid[:, None, :, None] if out_index == 1 else valid[..., None]
        diff = torch.where(keep.bool(), diff, torch.zeros_like(diff))
        result[:, u] = diff.flatten(1).norm(dim=1)
    return result


@pytest.mark.parametrize("component", COMPONENTS)
def test_importance_equals_ablation(model64, component):
    adapter = get_adapter(model64)
    ids, mask = _batch(model64.config.vocab_size, [9, 6, 4])
    with PLNDProbe(adapter, COMPONENTS, "paper") as probe:
        scores = probe.run(ids, mask)
    for layer in range(adapter.n_layers):
        expected = _brute_force(adapter, ids, mask, layer, component)
        got = scores[component][:, layer]
        assert expected.abs().max() > 1e-6, "test model too degenerate to be informative"
        rel = (got - expected).abs().max() / expected.abs().max()
        assert rel <= 1e-6, f"{component} layer {layer}: relative error {rel:.2e}"


def test_padding_and_batching_do_not_change_scores(family):
    from mwork.tiny import tiny_model

    model = tiny_model(family, seed=3, dtype=torch.float64)
    adapter = get_adapter(model)
    # spread < the tiny sliding window (6): HF itself emits NaN for real tokens when a padded
    # query row sees no key (the detection driver batches by length for the same reason)
    lengths = [12, 7, 9, 12, 8, 10, 8, 11]
    ids, mask = _batch(model.config.vocab_size, lengths, seed=4)
    with PLNDProbe(adapter, COMPONENTS, "paper") as probe:
        batched = probe.run(ids, mask)
        for b, n in enumerate(lengths):
            single = probe.run(ids[b : b + 1, :n], mask[b : b + 1, :n])
            padded = probe.run(
                torch.cat([ids[b : b + 1, :n], torch.zeros(1, 5, dtype=ids.dtype)], 1),
                torch.cat([mask[b : b + 1, :n], torch.zeros(1, 5, dtype=mask.dtype)], 1),
            )
            # HF's eager attention takes its softmax in float32 even for float64 models, so the
            # model's own hidden states move by ~1e-7 relative when the padded length changes.
            for c in COMPONENTS:
                torch.testing.assert_close(batched[c][b], single[c][0], rtol=1e-5, atol=1e-9)
                torch.testing.assert_close(padded[c][0], single[c][0], rtol=1e-5, atol=1e-9)


def test_qk_matches_eq8_naive_without_rope():
    """Eq. 8 literally: softmax((QKᵀ − Δ_k)/√d) − softmax(QKᵀ/√d), one head, no RoPE."""
    from mwork.adapters import AttnGeometry, attention_allowed

    torch.manual_seed(0)
    l, d = 6, 4
    q = torch.randn(1, 1, l, d, dtype=torch.float64)
    k = torch.randn(1, 1, l, d, dtype=torch.float64)
    tm = torch.ones(1, l, dtype=torch.float64)
    allowed = attention_allowed(tm, None)
    geo = AttnGeometry(None, None, None, allowed, d**-0.5, None)
    imp_q, imp_k = qk_importance(q, k, geo, tm)
    causal = torch.ones(l, l).tril().bool()
    base = torch.softmax((q[0, 0] @ k[0, 0].T / d**0.5).masked_fill(~causal, -1e300), -1)
    for i in range(d):
        delta = torch.outer(q[0, 0, :, i], k[0, 0, :, i])
        new = torch.softmax(
            ((q[0, 0] @ k[0, 0].T - delta) / d**0.5).masked_fill(~causal, -1e300), -1
        )
        expected = (new - base).norm()
        assert abs(imp_q[0, i] - expected) <= 1e-12 * max(1.0, float(expected))
        assert abs(imp_k[0, i] - expected) <= 1e-12 * max(1.0, float(expected))


def test_chunking_is_exact(family):
    from mwork.tiny import tiny_model

    model = tiny_model(family, seed=5, dtype=torch.float64)
    adapter = get_adapter(model)
    ids, mask = _batch(model.config.vocab_size, [10, 7])
    with PLNDProbe(adapter, ("attn_q", "attn_k"), "paper") as big:
        a = big.run(ids, mask)
    with PLNDProbe(adapter, ("attn_q", "attn_k"), "paper", chunk_elems=1) as small:
        b = small.run(ids, mask)
    for c in a:
        torch.testing.assert_close(a[c], b[c], rtol=1e-12, atol=1e-14)


def test_qk_uses_the_projections_the_forward_computed(family, monkeypatch):
    """Q/K scoring takes q/k from the projection modules' own outputs (no second matmul), and
    equals recomputing them from the attention input (the fallback) bit for bit."""
    from mwork.tiny import tiny_model

    adapter = get_adapter(tiny_model(family, seed=5, dtype=torch.float64))
    ids, mask = _batch(adapter.model.config.vocab_size, [9, 6], seed=6)
    comps = ("attn_q", "attn_k")
    with monkeypatch.context() as m:
        m.setattr(adapter, "project_qk", lambda *a: pytest.fail("q/k recomputed"))
        with PLNDProbe(adapter, comps, "paper") as probe:
            kept = probe.run(ids, mask)
    with monkeypatch.context() as m:  # projections' hooks silent: the fallback recomputes
        m.setattr(PLNDProbe, "_keep_hook", lambda self, i, j: lambda *a: None)
        with PLNDProbe(adapter, comps, "paper") as probe:
            recomputed = probe.run(ids, mask)
    for c in comps:
        assert torch.equal(kept[c], recomputed[c])
