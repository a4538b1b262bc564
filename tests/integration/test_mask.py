"""Neuron masking: hooks and weights modes equal hand-zeroed weights, restore exactly, GQA k/v exact."""

from __future__ import annotations

import copy

import pytest
import torch

from mwork.adapters import COMPONENTS, get_adapter
from mwork.errors import MworkError
from mwork.mask import mask_neurons
from mwork.tiny import FAMILIES, tiny_model

IDS = torch.tensor([[1, 5, 9, 17, 33, 4, 8, 60, 2, 71, 12, 3]])


def random_selection(adapter, fraction: float = 0.2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        c: torch.rand(adapter.n_layers, adapter.n_units(c), generator=g) < fraction
        for c in COMPONENTS
    }


def zero_by_hand(model, selection):
    """A copy of `model` with every parameter slice of the selected neurons set to zero."""
    model = copy.deepcopy(model)
    adapter = get_adapter(model)
    with torch.no_grad():
        for comp, sel in selection.items():
            for layer in range(adapter.n_layers):
                units = torch.nonzero(sel[layer]).flatten()
                for ps in adapter.neuron_slices(layer, comp):
                    ps.param.index_fill_(ps.dim, ps.index[units], 0.0)
    return model


def logits(model, **kw) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS, **kw).logits


@pytest.mark.parametrize("mode", ["hooks", "weights"])
@pytest.mark.parametrize("family", FAMILIES)
def test_mask_equals_zeroed_weights_and_restores(family, mode):
    model = tiny_model(family, seed=3, dtype=torch.float64)
    adapter = get_adapter(model)
    selection = random_selection(adapter)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    original = logits(model)
    with mask_neurons(adapter, selection, mode=mode) as n:
        masked = logits(model)
    assert n == sum(int(s.sum()) for s in selection.values()) > 0
    expected = logits(zero_by_hand(model, selection))
    torch.testing.assert_close(masked, expected, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(masked, original)
    assert torch.equal(logits(model), original)  # restored bit for bit
    assert all(
        torch.equal(v, before[k]) for k, v in model.state_dict().items()
    )  # weights as before


def test_weights_mode_restores_even_when_the_block_raises():
    model = tiny_model("qwen2", seed=1, dtype=torch.float64)
    adapter = get_adapter(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="boom"):
        with mask_neurons(adapter, random_selection(adapter), mode="weights"):
            raise RuntimeError("boom")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("family", ["llama", "bloom"])
def test_single_component_masks(family):
    model = tiny_model(family, seed=1, dtype=torch.float64)
    adapter = get_adapter(model)
    for comp in COMPONENTS:
        sel = {comp: random_selection(adapter, 0.3, seed=7)[comp]}
        with mask_neurons(adapter, sel, mode="hooks"):
            masked = logits(model)
        torch.testing.assert_close(masked, logits(zero_by_hand(model, sel)), rtol=1e-10, atol=1e-10)


def test_empty_mask_is_identity():
    model = tiny_model("qwen2", seed=0)
    adapter = get_adapter(model)
    original = logits(model)
    empty = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.bool) for c in COMPONENTS
    }
    for sel in (empty, {}):
        with mask_neurons(adapter, sel, mode="hooks") as n:
            assert n == 0
            assert torch.equal(logits(model), original)


def test_hooks_removed_on_error_and_masks_nest():
    model = tiny_model("llama", seed=0)
    adapter = get_adapter(model)
    original = logits(model)
    a, b = random_selection(adapter, 0.2, 1), random_selection(adapter, 0.2, 2)
    union = {c: a[c] | b[c] for c in COMPONENTS}
    with pytest.raises(RuntimeError):
        with mask_neurons(adapter, a, mode="hooks"):
            raise RuntimeError("boom")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with mask_neurons(adapter, a, mode="hooks"), mask_neurons(adapter, b, mode="hooks"):
        nested = logits(model)
    with mask_neurons(adapter, union, mode="hooks"):
        torch.testing.assert_close(nested, logits(model))
    assert torch.equal(logits(model), original)


def test_bad_selections_raise_before_hooking():
    model = tiny_model("mistral", seed=0)
    adapter = get_adapter(model)
    good = random_selection(adapter)
    bad_shape = dict(
        good, attn_k=torch.zeros(adapter.n_layers, adapter.n_units("attn_q"), dtype=torch.bool)
    )
    for sel in (bad_shape, {"o_proj": good["ffn"]}, dict(good, ffn=good["ffn"].int())):
        with pytest.raises(MworkError):
            with mask_neurons(adapter, sel, mode="hooks"):
                pass
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_gqa_k_unit_changes_exactly_its_query_group():
    model = tiny_model("llama", seed=2, dtype=torch.float64)  # 4 query heads, 2 kv heads, d_h 8
    adapter = get_adapter(model)
    g, j, d = 1, 3, adapter.head_dim
    sel = {"attn_k": torch.zeros(adapter.n_layers, adapter.n_units("attn_k"), dtype=torch.bool)}
    sel["attn_k"][0, g * d + j] = True
    with torch.no_grad():
        base = model(IDS, output_attentions=True).attentions[0]  # [1, n_heads, l, l]
        with mask_neurons(adapter, sel, mode="hooks"):
            masked = model(IDS, output_attentions=True).attentions[0]
    group = adapter.group_size
    for h in range(adapter.n_heads):
        same = torch.equal(base[:, h], masked[:, h])
        assert same == (h // group != g), f"head {h}"


@pytest.mark.parametrize("family", ["gemma2", "bloom"])
def test_backward_through_mask_gives_zero_grad_to_masked_units(family):
    model = tiny_model(family, seed=0)
    adapter = get_adapter(model)
    sel = random_selection(adapter, 0.3, seed=5)
    with mask_neurons(adapter, sel, mode="hooks"):
        model(IDS).logits.sum().backward()
    for layer in range(adapter.n_layers):
        site = adapter.output_site(layer, "attn_v")
        assert not site.module.weight.grad[site.index[sel["attn_v"][layer]]].any()
        assert not adapter.down_proj(layer).weight.grad[:, sel["ffn"][layer]].any()


def test_bfloat16_mask_matches_zeroed_weights():
    model = tiny_model("mistral", seed=0, dtype=torch.bfloat16)
    adapter = get_adapter(model)
    sel = random_selection(adapter, 0.2, seed=9)
    with mask_neurons(adapter, sel, mode="hooks"):
        masked = logits(model)
    torch.testing.assert_close(masked, logits(zero_by_hand(model, sel)), rtol=2e-2, atol=2e-2)
