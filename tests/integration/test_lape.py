"""LAPE detector: activation counts vs a hand count, entropy selection, planted neurons, shards."""

import json
import math

import numpy as np
import pytest
import torch
from testhelpers import A_LETTERS, B_LETTERS
from testhelpers import letter_docs as _docs

from mwork.adapters import get_adapter
from mwork.lape import (
    lape_entropy,
    lape_select,
    merge_recordings,
    record_activations,
    record_to_file,
    select_lape,
    select_to_files,
)
from mwork.neuronset import load_neuron_set, save_neuron_set
from mwork.settings import DetectionSettings, LapeSettings, ModelSpec
from mwork.tiny import tiny_model, train_tokenizer


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(_docs(A_LETTERS, 50, 0) + _docs(B_LETTERS, 50, 1), vocab_size=80)


def test_activation_counts_equal_a_hand_count(tok):
    model = tiny_model("llama", seed=0, vocab_size=len(tok), dtype=torch.float64)
    adapter = get_adapter(model)
    docs = _docs(A_LETTERS + B_LETTERS, 7, 3)
    rec = record_activations(adapter, tok, docs, DetectionSettings(batch_size=3), progress=False)
    # hand count: one document at a time (no padding), MLP input captured, act = SiLU(W_gate x)
    expect = torch.zeros(adapter.n_layers, adapter.d_ffn, dtype=torch.int64)
    fired_docs = torch.zeros_like(expect)
    inputs = {}
    hooks = [
        adapter.mlp(i).register_forward_pre_hook(
            lambda _m, args, i=i: inputs.__setitem__(i, args[0])
        )
        for i in range(adapter.n_layers)
    ]
    n_tokens = 0
    with torch.no_grad():
        for d in docs:
            ids = torch.tensor([tok(d)["input_ids"]])
            n_tokens += ids.shape[1]
            model(input_ids=ids)
            for i in range(adapter.n_layers):
                gate = inputs[i][0] @ adapter.mlp(i).gate_proj.weight.T  # [l, d_ffn]
                act = gate * torch.sigmoid(gate)
                expect[i] += (act > 0).sum(dim=0)
                fired_docs[i] += (act > 0).any(dim=0)
    for h in hooks:
        h.remove()
    assert torch.equal(torch.as_tensor(rec.act_counts["ffn"]), expect)  # NeuronSet holds numpy
    assert torch.equal(torch.as_tensor(rec.doc_counts["ffn"]).to(torch.int64), fired_docs)
    assert int(rec.meta["n_tokens"]) == n_tokens and rec.meta["detector"] == "lape"
    assert 0 < int(expect.sum()) < n_tokens * adapter.n_layers * adapter.d_ffn  # non-trivial


def test_entropy_selection_on_a_hand_made_table():
    # 2 layers x 4 units x 3 languages
    p = torch.tensor(
        [
            [[0.90, 0.00, 0.00], [0.50, 0.50, 0.50], [0.10, 0.10, 0.00], [0.00, 0.80, 0.85]],
            [[0.30, 0.30, 0.30], [0.00, 0.00, 0.95], [0.20, 0.10, 0.10], [0.00, 0.00, 0.00]],
        ],
        dtype=torch.float64,
    )
    h = lape_entropy(p)
    assert h[0, 0] == 0 and h[1, 1] == 0 and h[1, 3] == 0  # one language (or none) fires
    assert math.isclose(float(h[0, 1]), math.log(3)) and math.isclose(
        float(h[0, 3]),
        float(-(0.8 / 1.65) * math.log(0.8 / 1.65) - (0.85 / 1.65) * math.log(0.85 / 1.65)),
    )
    # 24 probabilities: kthvalue(round(24*0.75)=18) = 0.3 -> candidates: some p > 0.3
    # = (0,0) (0,1) (0,3) (1,1); top_rate 3/8 -> 3 lowest entropies: (0,0)=0, (1,1)=0, (0,3)
    # bar: kthvalue(round(24*0.80)=19) = 0.5 -> members p > 0.5
    sel = lape_select(p, LapeSettings(filter_rate=0.75, top_rate=3 / 8, activation_bar_ratio=0.80))
    got = {lang: sorted(map(tuple, torch.nonzero(sel[lang]).tolist())) for lang in range(3)}
    assert got == {0: [(0, 0)], 1: [(0, 3)], 2: [(0, 3), (1, 1)]}
    # (1,3) has entropy 0 but no language above the filter: never selected, even with room
    roomy = lape_select(p, LapeSettings(filter_rate=0.75, top_rate=1.0, activation_bar_ratio=0.80))
    assert not roomy[:, 1, 3].any() and roomy[:, 0, 1].sum() == 0  # 0.5 is not > the bar 0.5


def test_planted_neurons_are_recovered_like_plnd(tok):
    """The PLND planted test's model: units firing only on language A are A's LAPE set."""
    model = tiny_model("llama", seed=0, vocab_size=len(tok), dtype=torch.float64)
    adapter = get_adapter(model)
    planted = torch.tensor([5, 17, 30, 41])
    a_ids = [i for t, i in tok.get_vocab().items() if t and all(ch in A_LETTERS for ch in t)]
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb[:, 0] = 0.0
        emb[a_ids, 0] = 8.0
        for i in range(adapter.n_layers):
            mlp, attn = adapter.mlp(i), adapter.attention(i)
            for lin in (mlp.up_proj, mlp.gate_proj):
                lin.weight.mul_(0.01)
                lin.weight[planted] = 0.0
                lin.weight[planted, 0] = 3.0
            mlp.down_proj.weight[0] = 0.0
            attn.o_proj.weight[0] = 0.0
    s = DetectionSettings(batch_size=4)
    recs = {
        "aa": record_activations(adapter, tok, _docs(A_LETTERS, 10, 5), s, progress=False),
        "bb": record_activations(adapter, tok, _docs(B_LETTERS, 10, 6), s, progress=False),
    }
    for r in recs.values():
        r.meta["model_fingerprint"] = "x"
    # The random units of this toy model often fire on every token (p = 1 for a quarter of all
    # probabilities), so the default 0.95 quantile is 1.0 and nothing exceeds it; 0.7 is below.
    sets = select_lape(recs, LapeSettings(filter_rate=0.7, top_rate=0.25, activation_bar_ratio=0.7))
    for i in range(adapter.n_layers):
        a, b = (
            set(sets["aa"].indices(i, "ffn").tolist()),
            set(sets["bb"].indices(i, "ffn").tolist()),
        )
        assert set(planted.tolist()) <= a and not a & b
        assert not b & set(planted.tolist())
    assert sets["aa"].count() < 0.25 * adapter.n_layers * adapter.d_ffn  # not everything


def test_shard_merge_equals_unsharded_and_files_load(model_dir, tmp_path):
    corpus = {}
    for lang, letters, seed in (("zh", A_LETTERS, 2), ("fr", B_LETTERS, 3)):
        corpus[lang] = tmp_path / f"{lang}.jsonl"
        corpus[lang].write_text(
            "".join(json.dumps({"text": t}) + "\n" for t in _docs(letters, 12, seed))
        )
    s = DetectionSettings(seed=3, n_docs=9, batch_size=2)
    spec = ModelSpec(str(model_dir), dtype="float32")
    full = record_to_file(spec, corpus["zh"], "zh", tmp_path / "full.safetensors", s, device="cpu")
    shards = [tmp_path / f"s{i}.safetensors" for i in range(3)]
    for i, out in enumerate(shards):
        record_to_file(spec, corpus["zh"], "zh", out, s, shard=(i, 3), device="cpu")
    merged = merge_recordings([load_neuron_set(p) for p in shards])
    save_neuron_set(merged, tmp_path / "merged.safetensors")
    assert (tmp_path / "merged.safetensors").read_bytes() == (
        tmp_path / "full.safetensors"
    ).read_bytes()
    assert np.array_equal(
        load_neuron_set(tmp_path / "full.safetensors").act_counts["ffn"], full.act_counts["ffn"]
    )
    # joint selection to per-language files that load like any neuron file
    record_to_file(spec, corpus["fr"], "fr", tmp_path / "fr.safetensors", s, device="cpu")
    outs = {"zh": tmp_path / "zh.out.safetensors", "fr": tmp_path / "fr.out.safetensors"}
    sets = select_to_files(
        {"zh": shards, "fr": [tmp_path / "fr.safetensors"]}, outs, LapeSettings(top_rate=0.05)
    )
    for lang, path in outs.items():
        ns = load_neuron_set(path)
        assert (
            ns.meta["detector"] == "lape"
            and set(ns.units) == {"ffn"}
            and ns.meta["language"] == lang
        )
        assert np.array_equal(ns.selected["ffn"], sets[lang].selected["ffn"])
        assert json.loads(ns.meta["selection"])["languages"] == ["zh", "fr"]
