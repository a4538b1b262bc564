"""Models split over devices and offloaded to CPU/disk give the single-device results (float64).

No GPU here, so the split is what accelerate's dispatch does for several GPUs, with CPU as every
device: from_pretrained(device_map=...) with layers on "cpu" and "disk" (the disk layers'
weights live in their hook's offload map, `.weight` is on the meta device) and, for training,
dispatch_model(force_hooks=True) (every block behind an AlignDevicesHook, weights real).
Each stage runs on both and must give bit-identical results: PLND scores of every component
(Q/K included), LAPE counts, both mask modes and their restore, the lens, perplexity, one
neuron fine-tuning step.
"""

from __future__ import annotations

import pytest
import torch
from accelerate import dispatch_model

from mwork.adapters import COMPONENTS, get_adapter
from mwork.devices import gpu_count, input_device, is_offloaded, param_value
from mwork.errors import MworkError
from mwork.finetune.delta import Delta, DeltaSlice, apply_delta
from mwork.finetune.settings import FinetuneSettings
from mwork.finetune.trainer import FinetuneTrainer
from mwork.lape import record_activations
from mwork.lens import layer_top_tokens, lens_input_ids
from mwork.mask import mask_neurons
from mwork.modeling import device_map_kwargs, load_model, model_fingerprint
from mwork.perplexity import perplexity
from mwork.plnd import PLNDProbe
from mwork.settings import DetectionSettings
from mwork.tiny import save_tiny_model_dir

FAMILIES = ("llama", "qwen2", "bloom")  # Llama; GQA + q/k/v biases; fused per-head QKV + ALiBi
TEXTS = ["hello world hello", "hallo welt", "bonjour le monde", "hola mundo", "abc def ghi"] * 8
DOCS = ["hello world, hallo welt", "bonjour le monde hola", "abc hello def", "welt monde"]


def offload_map(model: torch.nn.Module) -> dict[str, str]:
    """Every top-level module on "cpu"; decoder layers alternate cpu / disk, the last on disk."""
    base = model.base_model_prefix
    out: dict[str, str] = {}
    for name, child in getattr(model, base).named_children():
        if isinstance(child, torch.nn.ModuleList):
            n = len(child)
            for i in range(n):
                out[f"{base}.{name}.{i}"] = "disk" if (n - 1 - i) % 2 == 0 else "cpu"
        else:
            out[f"{base}.{name}"] = "cpu"
    out.update((name, "cpu") for name, _ in model.named_children() if name != base)
    return out


@pytest.fixture(scope="module", params=FAMILIES)
def pair(request, tmp_path_factory):
    """(family, single-device load, split/offloaded load, tokenizer) of one tiny model directory."""
    return load_pair(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def qk_norm_pair(tmp_path_factory):
    """Qwen3 (RMSNorm on q/k, whose gains PLND reads): the same pair."""
    return load_pair("qwen3", tmp_path_factory)


def load_pair(family, tmp_path_factory):
    path = save_tiny_model_dir(tmp_path_factory.mktemp(family), family, TEXTS, num_hidden_layers=3)
    one, tok, _ = load_model(str(path), "float64", "cpu", attn_implementation="eager")
    dmap = offload_map(one)
    split, _, _ = load_model(
        str(path),
        "float64",
        "cpu",
        attn_implementation="eager",
        devices=dmap,
        offload_folder=str(tmp_path_factory.mktemp("offload")),
    )
    assert not is_offloaded(one) and is_offloaded(split), "the map must offload some layer"
    assert "disk" in set(dmap.values())
    return family, one, split, tok


def ids_of(tok, texts=DOCS):
    enc = tok(texts, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def test_loading_places_weights_as_the_map_says_and_keeps_the_values(pair):
    family, one, split, tok = pair
    a = get_adapter(split)
    last = a.down_proj(a.n_layers - 1)  # the last layer is on disk: meta + offload map
    assert last.weight.device.type == "meta"
    assert torch.equal(param_value(last), get_adapter(one).down_proj(a.n_layers - 1).weight)
    assert model_fingerprint(split) == model_fingerprint(one)
    assert input_device(split) == torch.device("cpu")
    ids, mask = ids_of(tok)
    with torch.no_grad():
        assert torch.equal(
            one(ids, attention_mask=mask).logits, split(ids, attention_mask=mask).logits
        )


def test_plnd_scores_of_every_component_equal(pair):
    check_plnd(*pair)


def test_plnd_and_masks_with_offloaded_qk_norms_equal(qk_norm_pair):
    check_plnd(*qk_norm_pair)
    test_masking_equals_the_single_device_and_restores_exactly(qk_norm_pair, "weights")


def check_plnd(family, one, split, tok):
    ids, mask = ids_of(tok)
    out = []
    for model in (one, split):
        with PLNDProbe(get_adapter(model), COMPONENTS, "paper") as probe:
            out.append(probe.run(ids, mask))
    assert set(out[0]) == set(COMPONENTS)
    for c in COMPONENTS:
        assert out[0][c].abs().sum() > 0, c
        assert torch.equal(out[0][c], out[1][c]), c


def test_lape_counts_equal(pair):
    family, one, split, tok = pair
    settings = DetectionSettings(max_tokens=16, batch_size=2)
    rec = [
        record_activations(get_adapter(m), tok, DOCS, settings, progress=False)
        for m in (one, split)
    ]
    for key in ("act_counts", "doc_counts"):
        a, b = getattr(rec[0], key)["ffn"], getattr(rec[1], key)["ffn"]
        assert a.sum() > 0 and (a == b).all(), key


def random_selection(adapter, seed=0, share=0.3):
    g = torch.Generator().manual_seed(seed)
    return {
        c: torch.rand(adapter.n_layers, adapter.n_units(c), generator=g) < share for c in COMPONENTS
    }


@pytest.mark.parametrize("mode", ["weights", "hooks"])
def test_masking_equals_the_single_device_and_restores_exactly(pair, mode):
    family, one, split, tok = pair
    ids, mask = ids_of(tok)
    sel = random_selection(get_adapter(one))
    with torch.no_grad():
        before = split(ids, attention_mask=mask).logits
        fp = model_fingerprint(split)
        with mask_neurons(get_adapter(one), sel, mode):
            want = one(ids, attention_mask=mask).logits
        with mask_neurons(get_adapter(split), sel, mode):
            got = split(ids, attention_mask=mask).logits
            again = split(ids, attention_mask=mask).logits  # the change survives a forward
        after = split(ids, attention_mask=mask).logits
    assert not torch.equal(want, before), "the mask must change the output"
    assert torch.equal(got, want) and torch.equal(again, want)
    assert torch.equal(after, before) and model_fingerprint(split) == fp


def test_weight_mode_on_an_offloaded_layer_equals_zeroing_it_by_hand(pair):
    """Only FFN units of the last (disk-offloaded) layer: the map entry is what changes."""
    family, one, split, tok = pair
    a = get_adapter(split)
    layer = a.n_layers - 1
    sel = {"ffn": torch.zeros(a.n_layers, a.d_ffn, dtype=torch.bool)}
    sel["ffn"][layer, ::3] = True
    ids, mask = ids_of(tok)
    ref = get_adapter(one)
    saved = {id(s.param): s.param.detach().clone() for s in ref.neuron_slices(layer, "ffn")}
    with torch.no_grad():
        for s in ref.neuron_slices(layer, "ffn"):  # by hand, on the single-device copy
            s.param.index_fill_(s.dim, s.index[sel["ffn"][layer].nonzero().flatten()], 0)
        by_hand = one(ids, attention_mask=mask).logits
        for s in ref.neuron_slices(layer, "ffn"):
            s.param.copy_(saved[id(s.param)])
        with mask_neurons(a, sel, "weights") as n:
            assert a.down_proj(layer).weight.device.type == "meta"  # never written
            got = split(ids, attention_mask=mask).logits
    assert n == int(sel["ffn"].sum())
    assert torch.equal(got, by_hand)


def test_lens_equals(pair):
    family, one, split, tok = pair
    tops = []
    for model in (one, split):
        ids = lens_input_ids(model, tok, "hello world", max_new_tokens=3)
        with torch.no_grad():
            hidden = model(ids, output_hidden_states=True).hidden_states
        tops.append(
            (ids, [layer_top_tokens(model, hidden, v, top_k=5) for v in ("released", "normed")])
        )
    assert torch.equal(tops[0][0], tops[1][0])
    for x, y in zip(tops[0][1], tops[1][1], strict=True):
        assert torch.equal(x, y)


def test_perplexity_equals(pair):
    family, one, split, tok = pair
    ppl = [perplexity(m, tok, DOCS, batch_size=3, max_tokens=16) for m in (one, split)]
    assert ppl[0] == ppl[1] and ppl[0] > 1


@pytest.mark.slow  # two more loads and two optimizer steps per family (~5-8 s on 2 loaded cores)
def test_a_neuron_finetuning_step_equals_on_a_dispatched_model(pair):
    """Training needs real weights: blocks behind accelerate's hooks (the multi-GPU path),
    none offloaded. The offloaded model is refused in one line."""
    family, one, split, tok = pair
    path = split.name_or_path
    models = [load_model(path, "float64", "cpu", attn_implementation="eager")[0] for _ in "ab"]
    dmap = {k: "cpu" for k in offload_map(models[1])}
    dispatch_model(models[1], device_map=dmap, force_hooks=True)
    assert hasattr(get_adapter(models[1]).down_proj(0), "_hf_hook")
    settings = FinetuneSettings(lr=1e-2, batch_size=2, micro_batch_size=1, max_grad_norm=1.0)
    ids, mask = ids_of(tok)
    rows = torch.where(mask.bool(), ids, -1)[:2]
    out = []
    for model in models:
        adapter = get_adapter(model)
        trainer = FinetuneTrainer(adapter, random_selection(adapter, 1, 0.1), settings, 2, 0)
        init = [p.detach().clone() for p in trainer.params]
        loss = [trainer.step(rows)[0] for _ in range(2)]  # the second step sees the first's update
        out.append((loss, [p.detach().clone() for p in trainer.params]))
        trainer.close()
    assert out[0][0] == out[1][0]
    assert all(torch.equal(x, y) for x, y in zip(out[0][1], out[1][1], strict=True))
    assert any(not torch.equal(x, y) for x, y in zip(init, out[1][1], strict=True)), "trained"
    with pytest.raises(MworkError, match="offloaded"):
        FinetuneTrainer(get_adapter(split), random_selection(get_adapter(split)), settings, 1, 0)


def test_a_delta_is_not_written_into_offloaded_weights(pair):
    """Writing a meta parameter changes nothing: applying a delta there is refused in one line."""
    family, one, split, tok = pair
    a = get_adapter(split)
    name = next(n for n, p in split.named_parameters() if p.device.type == "meta")
    p = dict(split.named_parameters())[name]
    index = torch.tensor([0])
    values = torch.zeros(1, *p.shape[1:], dtype=p.dtype)
    delta = Delta("ls", slices={name: DeltaSlice(0, index, values)})
    with pytest.raises(MworkError, match="offloaded"):
        apply_delta(a.model, delta, check_fingerprint=False)


def test_device_settings_give_the_scheduler_and_loader_what_they_need():
    assert gpu_count(1) == 1 and gpu_count(4) == 4 and gpu_count("auto") == 1
    assert gpu_count({"a": 0, "b": 1, "c": "cpu", "d": 1}) == 2
    assert gpu_count({"a": "cpu", "b": "disk"}) == 1
    assert device_map_kwargs(1, "cpu") == {"device_map": {"": "cpu"}}
    if torch.cuda.device_count() < 2:
        with pytest.raises(MworkError, match="2 GPUs"):
            device_map_kwargs(2)
    with pytest.raises(MworkError, match="visible GPU index"):
        device_map_kwargs({"model.layers.0": 99})
    kw = device_map_kwargs({"model.layers.0": "disk"}, offload_folder="/x")
    assert kw == {"device_map": {"model.layers.0": "disk"}, "offload_folder": "/x"}
