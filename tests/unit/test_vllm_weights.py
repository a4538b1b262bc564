"""What the vllm backend sends to the engine around an intervention (mwork.vllm_backend.weights),
checked with a recording stand-in for the engine (no vLLM needed): every tensor of every touched
layer, masked values on entry, the originals on exit (also when the block raises), nothing for an
intervention that edits nothing, and a refusal for hook-based masks."""

from __future__ import annotations

import pytest
import torch

from mwork.adapters import COMPONENTS, get_adapter
from mwork.errors import MworkError
from mwork.mask import mask_neurons
from mwork.tiny import tiny_model
from mwork.vllm_backend.weights import layer_of, layer_tensors, synced


class Recorder:
    """Engine stand-in: keeps a copy of every load."""

    def __init__(self) -> None:
        self.loads: list[dict[str, torch.Tensor]] = []

    def load_weights(self, tensors):
        self.loads.append({n: t.clone() for n, t in tensors.items()})
        return 0.0


def _selection(adapter, layer: int, comp: str) -> dict[str, torch.Tensor]:
    sel = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.bool) for c in COMPONENTS
    }
    sel[comp][layer, 1] = True
    return sel


def test_layer_prefixes() -> None:
    assert layer_of("model.layers.1.mlp.down_proj.weight") == "model.layers.1."
    assert layer_of("transformer.h.12.self_attention.query_key_value.bias") == "transformer.h.12."
    assert layer_of("model.embed_tokens.weight") is None
    model = tiny_model("llama", num_hidden_layers=3)
    sent = layer_tensors(model, ["model.layers.1.self_attn.k_proj.weight", "model.norm.weight"])
    expect = {n for n in dict(model.named_parameters()) if n.startswith("model.layers.1.")}
    assert set(sent) == expect | {"model.norm.weight"}  # q, k, v, o, gate, up, down, norms


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_mask_is_sent_whole_layer_then_restored(family: str) -> None:
    model = tiny_model(family, num_hidden_layers=3)
    adapter = get_adapter(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    engine = Recorder()
    sel = _selection(adapter, 2, "attn_k")
    with synced(engine, model, lambda: mask_neurons(adapter, sel, "weights")):
        pass
    assert len(engine.loads) == 2
    applied, restored = engine.loads
    layer = {n for n in before if n.startswith("model.layers.2.")}
    assert set(applied) == set(restored) == layer
    changed = {n for n in layer if not torch.equal(applied[n], before[n])}
    assert changed == {"model.layers.2.self_attn.k_proj.weight"} | (
        {"model.layers.2.self_attn.k_proj.bias"} if family == "qwen2" else set()
    )
    assert all(torch.equal(restored[n], before[n]) for n in layer)  # originals, bit for bit


def test_restore_is_sent_when_the_block_raises() -> None:
    model = tiny_model("llama", num_hidden_layers=2)
    adapter = get_adapter(model)
    engine = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        with synced(engine, model, lambda: mask_neurons(adapter, _selection(adapter, 0, "ffn"))):
            raise RuntimeError("boom")
    assert len(engine.loads) == 2
    params = dict(model.named_parameters())
    assert all(torch.equal(t, params[n]) for n, t in engine.loads[1].items())


def test_nothing_sent_for_an_empty_mask_and_hooks_refused() -> None:
    model = tiny_model("llama", num_hidden_layers=2)
    adapter = get_adapter(model)
    engine = Recorder()
    empty = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.bool) for c in COMPONENTS
    }
    with synced(engine, model, lambda: mask_neurons(adapter, empty, "weights")):
        pass
    assert engine.loads == []
    sel = _selection(adapter, 1, "ffn")
    with pytest.raises(MworkError, match="hooks"):
        with synced(engine, model, lambda: mask_neurons(adapter, sel, "hooks")):
            pass
    assert engine.loads == []
