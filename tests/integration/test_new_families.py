"""Families beyond the paper's: registry, fused Phi-3 slices, Llama-3 rope scaling, Mistral-Nemo's
explicit head_dim, Gemma-3's interleaved layers. (Exactness of PLND and masking for every family:
tests/integration/test_plnd_exact.py, test_mask.py, parametrised over mwork.tiny.FAMILIES.)"""

from __future__ import annotations

import copy
import json

import pytest
import torch
import transformers

from mwork.adapters import COMPONENTS, get_adapter, supported_architectures
from mwork.detect import detect_neurons
from mwork.errors import MworkError
from mwork.mask import mask_neurons
from mwork.neuronset import load_neuron_set, save_neuron_set
from mwork.settings import DetectionSettings
from mwork.tiny import FAMILIES, tiny_model

IDS = torch.tensor([[1, 5, 9, 17, 33, 4, 8, 60, 2, 71, 12, 3]])


def test_registry_lists_the_families_and_rejects_others_in_one_line():
    archs = supported_architectures()
    assert len(archs) >= 9
    assert {
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma2",
        "gemma3_text",
        "olmo2",
        "phi3",
        "bloom",
    } <= set(archs)
    for family in FAMILIES:  # every tiny kind resolves to a registered model_type
        assert tiny_model(family).config.model_type in archs
    model = transformers.AutoModelForCausalLM.from_config(
        transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16)
    )
    with pytest.raises(MworkError) as info:
        get_adapter(model)
    text = str(info.value)
    assert "\n" not in text and "gpt2" in text and all(a in text for a in archs)


def test_phi3_units_are_slices_of_the_fused_matrices():
    model = tiny_model("phi3", seed=2, dtype=torch.float64)
    a = get_adapter(model)
    f, q, kv = a.d_ffn, a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim
    assert a.mlp(0).gate_up_proj.weight.shape[0] == 2 * f
    assert a.attention(0).qkv_proj.weight.shape[0] == q + 2 * kv
    layer, unit = 1, {"ffn": 7, "attn_q": 5, "attn_k": 3, "attn_v": 9}
    rows = {
        "attn_q": unit["attn_q"],
        "attn_k": q + unit["attn_k"],
        "attn_v": q + kv + unit["attn_v"],
    }
    for comp in COMPONENTS:
        sel = {c: torch.zeros(a.n_layers, a.n_units(c), dtype=torch.bool) for c in COMPONENTS}
        sel[comp][layer, unit[comp]] = True
        by_hand = copy.deepcopy(model)
        hand = get_adapter(by_hand)
        with torch.no_grad():  # written from Phi-3's layout, not through the adapter
            if comp == "ffn":
                hand.mlp(layer).gate_up_proj.weight[[unit[comp], f + unit[comp]]] = 0  # gate, up
                hand.mlp(layer).down_proj.weight[:, unit[comp]] = 0
            else:
                hand.attention(layer).qkv_proj.weight[rows[comp]] = 0
            want = by_hand(IDS).logits
        for mode in ("hooks", "weights"):
            with torch.no_grad(), mask_neurons(a, sel, mode):
                got = model(IDS).logits
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    layout = a.unit_layout()
    assert "gate_up_proj" in layout["ffn"] and f"{f} + u (up)" in layout["ffn"]
    assert f"row {q} + u" in layout["attn_k"] and f"row {q + kv} + u" in layout["attn_v"]


def test_neuron_file_records_the_unit_layout(tmp_path):
    model = tiny_model("phi3", seed=0)
    adapter = get_adapter(model)

    class Tok:  # detect_neurons only calls the tokenizer on strings
        pad_token_id, eos_token_id = 0, 2

        def __call__(self, text, truncation=True, max_length=None):
            return {"input_ids": [1] + [3 + ord(c) % 90 for c in text][: max_length - 1]}

    ns = detect_neurons(
        adapter,
        Tok(),
        ["hello there", "general kenobi", "abc"],
        DetectionSettings(max_tokens=16, batch_size=2),
        {"language": "en"},
        progress=False,
    )
    save_neuron_set(ns, tmp_path / "n.safetensors")
    layout = json.loads(load_neuron_set(tmp_path / "n.safetensors").meta["unit_layout"])
    assert layout == adapter.unit_layout() and "qkv_proj" in layout["attn_q"]


def test_llama3_rope_scaling_reaches_the_geometry():
    scaled, plain = tiny_model("llama3"), tiny_model("llama")
    assert scaled.config.rope_parameters["rope_type"] == "llama3"
    pos = torch.arange(40)[None]
    x = torch.zeros(1, 40, 8)
    cos_s, _ = scaled.model.rotary_emb(x, pos)
    cos_p, _ = plain.model.rotary_emb(x, pos)
    assert not torch.allclose(cos_s, cos_p)  # low frequencies are stretched


def test_mistral_nemo_head_dim_is_explicit():
    model = tiny_model("mistral_nemo")
    a = get_adapter(model)
    assert a.head_dim == 16 != a.d_model // a.n_heads
    assert a.n_units("attn_q") == 64 and a.o_proj(0).weight.shape == (32, 64)


def test_gemma3_interleaves_sliding_and_global_layers():
    model = tiny_model("gemma3", dtype=torch.float64)
    a = get_adapter(model)
    assert [a.sliding_window(i) for i in range(a.n_layers)] == [6, None]
    assert a.attention(0).scaling == pytest.approx(12**-0.5)
    calls = {}
    hooks = [
        a.attention(i).register_forward_pre_hook(
            lambda m, args, kw, i=i: calls.__setitem__(i, kw), with_kwargs=True
        )
        for i in range(2)
    ]
    mask = torch.ones(1, IDS.shape[1])
    with torch.no_grad():
        model(IDS)
    for h in hooks:
        h.remove()
    g0, g1 = (a.geometry(i, calls[i], mask) for i in range(2))
    assert not torch.allclose(g0.cos, g1.cos)  # local and global RoPE bases differ
    assert not torch.equal(g0.allowed, g1.allowed)  # the window only on the sliding layer
    assert g0.qk_norm.per_head and torch.allclose(
        g0.qk_norm.q_gain, 1 + a.attention(0).q_norm.weight
    )
