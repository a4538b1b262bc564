"""Fine-tuning settings, neuron selection (regions, cap, random), nested documents, delta files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from mwork.adapters import COMPONENTS
from mwork.corpus import CorpusSource
from mwork.errors import MworkError
from mwork.finetune.data import documents_sha256, nested_sample
from mwork.finetune.delta import Delta, DeltaSlice, load_delta, save_delta
from mwork.finetune.neurons import build_selection
from mwork.finetune.rows import encode_documents, make_rows
from mwork.finetune.settings import FinetuneSettings
from mwork.neuronset import NeuronSet

L, UNITS = 6, {"ffn": 40, "attn_q": 16, "attn_k": 8, "attn_v": 8}


def wikipedia_source(
    lang: str,
    dataset: str = "wikimedia/wikipedia",
    config: str = "20231101.{lang}",
    split: str = "train",
    text_field: str = "text",
) -> CorpusSource:
    """Where language `lang`'s Wikipedia documents come from (`{lang}` in `config` is filled in;
    the workflow takes the same defaults from the config schema, `finetune.wiki`)."""
    return CorpusSource(
        dataset=dataset, config=config.format(lang=lang), split=split, text_field=text_field
    )


def adapter_stub():
    return SimpleNamespace(n_layers=L, n_units=UNITS.__getitem__, unit_counts=lambda: dict(UNITS))


def ls_set(p: float = 0.3, seed: int = 0) -> NeuronSet:
    g = torch.Generator().manual_seed(seed)
    sel = {c: torch.rand(L, n, generator=g) < p for c, n in UNITS.items()}
    return NeuronSet(sel, {c: s.to(torch.int32) for c, s in sel.items()}, {"n_docs": "1"})


def test_defaults_are_the_released_codes_hyperparameters():
    s = FinetuneSettings()
    assert (s.lr, s.epochs, s.batch_size, s.micro_batch_size) == (2e-6, 1, 32, 8)
    assert (s.scheduler, s.warmup_ratio, s.max_grad_norm, s.max_length, s.weight_decay) == (
        "cosine",
        0.05,
        0.3,
        512,
        0.0,
    )
    assert s.mode == "ls" and s.regions is None and s.cap_per_matrix is None and s.train_gate


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"mode": "lora"}, "mode"),
        ({"batch_size": 30}, "multiple of micro_batch_size"),
        ({"lr": 0}, "lr"),
        ({"regions": ["U", "X"]}, "regions"),
        ({"regions": ["S"]}, "needs n1 and n2"),
        ({"cap_per_matrix": 0}, "cap_per_matrix"),
        ({"components": ["mlp"]}, "components"),
        ({"precision": "fp8"}, "precision"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"learning_rate": 1e-5}, "unknown fine-tuning settings"),
    ],
)
def test_bad_settings_raise(bad, message):
    with pytest.raises(MworkError, match=message):
        FinetuneSettings.from_mapping(bad)


def test_from_mapping_turns_lists_into_tuples():
    s = FinetuneSettings.from_mapping(
        {"regions": ["S", "G"], "n1": 2, "n2": 1, "components": ["ffn"]}
    )
    assert s.regions == ("S", "G") and s.components == ("ffn",)
    assert json.loads(s.to_json())["regions"] == ["S", "G"]


def test_selection_defaults_to_all_neurons_and_restricts_by_region_component_and_cap():
    ns = ls_set()
    lsel = {c: torch.as_tensor(t) for c, t in ns.selected.items()}  # NeuronSet holds numpy
    adapter = adapter_stub()
    full = build_selection(ns, adapter, FinetuneSettings())
    assert all(torch.equal(full[c], lsel[c]) for c in COMPONENTS)
    s_only = build_selection(ns, adapter, FinetuneSettings(regions=("S",), n1=2, n2=1))
    for c in COMPONENTS:
        assert not s_only[c][[0, 1, 5]].any()
        assert torch.equal(s_only[c][2:5], lsel[c][2:5])
    ffn = build_selection(ns, adapter, FinetuneSettings(components=("ffn",)))
    assert ffn["ffn"].equal(lsel["ffn"]) and not any(ffn[c].any() for c in COMPONENTS[1:])
    capped = build_selection(ns, adapter, FinetuneSettings(cap_per_matrix=3))
    for c in COMPONENTS:
        for i in range(L):
            idx = torch.nonzero(lsel[c][i]).flatten()
            assert torch.equal(
                torch.nonzero(capped[c][i]).flatten(), idx[:3]
            )  # the 3 lowest indices


def test_random_selection_matches_per_layer_and_component_and_is_seeded():
    ns, adapter = ls_set(), adapter_stub()
    settings = FinetuneSettings(mode="random", regions=("U", "G"), n1=2, n2=1, neuron_seed=7)
    ls = build_selection(ns, adapter, FinetuneSettings(regions=("U", "G"), n1=2, n2=1))
    a, b = build_selection(ns, adapter, settings), build_selection(ns, adapter, settings)
    c = build_selection(
        ns, adapter, FinetuneSettings(mode="random", regions=("U", "G"), n1=2, n2=1, neuron_seed=8)
    )
    for comp in COMPONENTS:
        assert torch.equal(a[comp].sum(dim=1), ls[comp].sum(dim=1))
        assert torch.equal(a[comp], b[comp])
    assert any(not torch.equal(a[k], ls[k]) for k in COMPONENTS)
    assert any(not torch.equal(a[k], c[k]) for k in COMPONENTS)


def test_selection_refuses_a_neuron_file_of_another_shape():
    ns = ls_set()
    other = SimpleNamespace(
        n_layers=L, n_units={**UNITS, "ffn": 41}.__getitem__, unit_counts=lambda: {}
    )
    with pytest.raises(MworkError, match="does not fit"):
        build_selection(ns, other, FinetuneSettings())


def test_nested_samples_are_prefixes_and_hashed():
    pool = [f"document {i}" for i in range(1000)]
    samples = {n: nested_sample(pool, n, seed=3) for n in (100, 200, 400, 800)}
    assert samples[200][:100] == samples[100] and samples[800][:400] == samples[400]
    assert len(set(samples[800])) == 800
    assert nested_sample(pool, 100, seed=4) != samples[100]
    assert documents_sha256(samples[100]) != documents_sha256(samples[200])
    assert documents_sha256(samples[100]) == documents_sha256(list(samples[100]))
    with pytest.raises(MworkError, match="fewer than n_docs"):
        nested_sample(pool[:50], 100, seed=0)
    src = wikipedia_source("de")
    assert (src.dataset, src.config, src.text_field) == (
        "wikimedia/wikipedia",
        "20231101.de",
        "text",
    )


class _Tok:
    eos_token_id = 2

    def __call__(self, docs, add_special_tokens, truncation, max_length):
        return {"input_ids": [[1, *range(10, 10 + len(d.split()))][:max_length] for d in docs]}


def test_encoding_truncates_and_appends_eos_only_to_whole_documents():
    ids = encode_documents(_Tok(), ["a b c", "a b c d e f g h i j"], max_length=6)
    assert ids == [[1, 10, 11, 12, 2], [1, 10, 11, 12, 13, 14]]
    rows = make_rows(ids, 8, packing=False, generator=torch.Generator().manual_seed(0))
    assert rows.shape == (2, 8) and int((rows == -1).sum()) == 16 - 11
    packed = make_rows(
        [[1, 5], [1, 6], [1, 7, 8]], 8, packing=True, generator=torch.Generator().manual_seed(0)
    )
    assert packed.shape == (1, 8) and sorted(packed[0, :7].tolist()) == [1, 1, 1, 5, 6, 7, 8]


def test_delta_file_round_trip_is_byte_deterministic(tmp_path):
    sel = {c: torch.zeros(2, n, dtype=torch.bool) for c, n in UNITS.items()}
    sel["ffn"][1, [3, 9]] = True
    delta = Delta(
        "ls",
        slices={
            "model.layers.1.mlp.up_proj.weight": DeltaSlice(
                0, torch.tensor([3, 9]), torch.randn(2, 5, dtype=torch.float64)
            ),
            "model.layers.1.mlp.down_proj.weight": DeltaSlice(
                1, torch.tensor([3, 9]), torch.randn(5, 2).to(torch.bfloat16)
            ),
        },
        selection=sel,
        meta={"model_fingerprint": "abc", "language": "de"},
    )
    save_delta(delta, tmp_path / "a.st")
    save_delta(delta, tmp_path / "b.st")
    assert (tmp_path / "a.st").read_bytes() == (tmp_path / "b.st").read_bytes()
    back = load_delta(tmp_path / "a.st")
    assert back.mode == "ls" and back.n_neurons() == 2 and back.meta["n_trainable"] == "20"
    for name, s in delta.slices.items():
        assert back.slices[name].dim == s.dim and torch.equal(back.slices[name].values, s.values)
        assert back.slices[name].values.dtype == s.values.dtype
    assert all(torch.equal(back.selection[c], sel[c]) for c in COMPONENTS)
    plain = load_file(str(tmp_path / "a.st"))  # a standard safetensors file
    assert plain["selection.ffn"].tolist() == [[1, 3], [1, 9]]
