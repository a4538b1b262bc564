"""Detection end to end: planted neurons, determinism, shards, selection rules, variants."""

import json

import pytest
import torch
from testhelpers import A_LETTERS, B_LETTERS
from testhelpers import letter_docs as _docs

from mwork.adapters import get_adapter
from mwork.detect import count_selected, detect_neurons, detect_to_file, make_batches
from mwork.neuronset import (
    derive_variant,
    load_neuron_set,
    merge_neuron_sets,
    save_neuron_set,
    select_by_fraction,
)
from mwork.settings import DetectionSettings, ModelSpec
from mwork.tiny import tiny_model, train_tokenizer


def write_corpus(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus_a(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "a.jsonl", _docs(A_LETTERS, 12, 2))


def test_planted_neurons_are_found_exactly():
    """Units wired to fire only on language A's tokens are exactly A's language-specific set."""
    tok = train_tokenizer(_docs(A_LETTERS, 50, 0) + _docs(B_LETTERS, 50, 1), vocab_size=80)
    model = tiny_model("llama", seed=0, vocab_size=len(tok), dtype=torch.float64)
    adapter = get_adapter(model)
    planted_ffn = torch.tensor([5, 17, 30, 41])
    planted_v = torch.tensor([3, 12])
    vocab = tok.get_vocab()
    a_ids = [i for t, i in vocab.items() if t and all(ch in A_LETTERS for ch in t)]
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb[:, 0] = 0.0
        emb[a_ids, 0] = 8.0  # hidden dim 0 = "this token is language A"
        for i in range(adapter.n_layers):
            mlp, attn = adapter.mlp(i), adapter.attention(i)
            for lin in (mlp.up_proj, mlp.gate_proj):
                lin.weight.mul_(0.01)
                lin.weight[planted_ffn] = 0.0
                lin.weight[planted_ffn, 0] = 3.0
            mlp.down_proj.weight[0] = 0.0  # keep dim 0 a clean language flag in every layer
            attn.v_proj.weight.mul_(0.01)
            attn.v_proj.weight[planted_v] = 0.0
            attn.v_proj.weight[planted_v, 0] = 3.0
            attn.o_proj.weight[0] = 0.0
    # k/v: k·n_kv/n_heads
    settings = DetectionSettings(
        top_k_ffn=len(planted_ffn), top_k_attn=2 * len(planted_v), batch_size=4
    )
    a = detect_neurons(adapter, tok, _docs(A_LETTERS, 10, 5), settings, progress=False)
    b = detect_neurons(adapter, tok, _docs(B_LETTERS, 10, 6), settings, progress=False)
    for i in range(adapter.n_layers):
        assert a.indices(i, "ffn").tolist() == planted_ffn.tolist()
        assert a.indices(i, "attn_v").tolist() == planted_v.tolist()
        assert not set(b.indices(i, "ffn").tolist()) & set(planted_ffn.tolist())


def test_two_runs_give_byte_identical_files(model_dir, corpus_a, tmp_path):
    s = DetectionSettings(seed=3, n_docs=8, batch_size=3)
    spec = ModelSpec(str(model_dir), dtype="float32")
    for name in ("x", "y"):
        detect_to_file(
            spec, str(corpus_a), "zh", str(tmp_path / f"{name}.safetensors"), s, device="cpu"
        )
    assert (tmp_path / "x.safetensors").read_bytes() == (tmp_path / "y.safetensors").read_bytes()


def test_sharded_merge_equals_unsharded(model_dir, corpus_a, tmp_path):
    s = DetectionSettings(seed=3, n_docs=9, batch_size=2)
    spec, kw = ModelSpec(str(model_dir), dtype="float32"), dict(device="cpu")
    detect_to_file(spec, str(corpus_a), "zh", str(tmp_path / "full.safetensors"), s, **kw)
    shards = []
    for i in range(3):
        out = tmp_path / f"s{i}.safetensors"
        detect_to_file(spec, str(corpus_a), "zh", str(out), s, shard=(i, 3), **kw)
        shards.append(load_neuron_set(out))
    assert shards[0].meta["shard"] == "0/3" and shards[0].n_docs == 3
    save_neuron_set(merge_neuron_sets(shards), tmp_path / "merged.safetensors")
    assert (tmp_path / "merged.safetensors").read_bytes() == (
        tmp_path / "full.safetensors"
    ).read_bytes()


def test_file_format_is_documented_layout(model_dir, corpus_a, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "n.safetensors"
    spec = ModelSpec(str(model_dir), dtype="auto")
    ns = detect_to_file(
        spec, str(corpus_a), "zh", str(out), DetectionSettings(n_docs=5), device="cpu"
    )
    with safe_open(str(out), "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
        for i in range(2):
            for c in ("ffn", "attn_q", "attn_k", "attn_v"):
                idx, counts = (
                    f.get_tensor(f"layers.{i}.{c}"),
                    f.get_tensor(f"layers.{i}.{c}.doc_counts"),
                )
                assert idx.dtype == torch.int64 and counts.dtype == torch.int32
                assert torch.equal(idx, torch.sort(idx).values)
                assert torch.equal(idx, torch.nonzero(counts == 5).flatten())
    assert len(keys) == 2 * 4 * 2
    for k in (
        "model",
        "model_fingerprint",
        "language",
        "importance",
        "selection",
        "n_docs",
        "corpus_sha256",
        "seed",
        "mwork_version",
    ):
        assert meta[k], k
    assert (
        meta["language"] == "zh"
        and meta["n_docs"] == "5"
        and ns.count()
        == sum(len(load_neuron_set(out).indices(i, c)) for i in range(2) for c in ns.units)
    )


def test_fractional_rule_and_counts():
    counts = {"ffn": torch.tensor([[10, 9, 5, 0]], dtype=torch.int32)}
    assert select_by_fraction(counts, 10, 1.0)["ffn"].tolist() == [[True, False, False, False]]
    assert select_by_fraction(counts, 10, 0.9)["ffn"].tolist() == [[True, True, False, False]]
    assert select_by_fraction(counts, 10, 0.5)["ffn"].tolist() == [[True, True, True, False]]
    scores = torch.tensor([[[0.1, 0.9, 0.5]], [[0.8, 0.7, 0.0]]])  # [b=2, layers=1, units=3]
    assert count_selected(scores, ("top_k", 1)).tolist() == [[1, 1, 0]]
    assert count_selected(scores, ("epsilon", 0.5)).tolist() == [[1, 2, 1]]


def test_batches_respect_sliding_window():
    batches = make_batches([3, 12, 5, 9, 4, 20], batch_size=4, window=6)
    for b in batches:
        lens = [[3, 12, 5, 9, 4, 20][i] for i in b]
        assert max(lens) - min(lens) < 6 and len(b) <= 4
    assert sorted(i for b in batches for i in b) == list(range(6))


def test_variants_minus_english_and_shared():
    def ns(lang, bits):
        sel = {"ffn": torch.tensor([bits], dtype=torch.bool)}
        from mwork.neuronset import NeuronSet

        return NeuronSet(
            sel, {"ffn": sel["ffn"].to(torch.int32)}, {"language": lang, "model_fingerprint": "f"}
        )

    zh, en, fr = ns("zh", [1, 1, 1, 0]), ns("en", [1, 0, 0, 1]), ns("fr", [1, 1, 0, 0])
    assert derive_variant(zh, [en], False).selected["ffn"].tolist() == [[False, True, True, False]]
    # minus-shared: remove what zh shares with *all* others (en ∩ fr ∩ zh = unit 0)
    out = derive_variant(zh, [en, fr], True)
    assert (
        out.selected["ffn"].tolist() == [[False, True, True, False]]
        and out.meta["variant"] == "minus-shared"
    )


def test_released_code_ffn_is_l1_of_up_projection():
    from mwork.plnd import PLNDProbe

    model = tiny_model("llama", seed=1, dtype=torch.float64)
    adapter = get_adapter(model)
    ids, mask = torch.randint(3, 96, (2, 6)), torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    with PLNDProbe(adapter, ("ffn", "attn_q", "attn_k", "attn_v"), "released-code") as p:
        got = p.run(ids, mask)
    captured = {}
    h = adapter.up_proj(1).register_forward_hook(lambda m, a, o: captured.setdefault("u", o))
    model(input_ids=ids, attention_mask=mask)
    h.remove()
    expected = (captured["u"].abs() * mask[..., None]).sum(1)
    torch.testing.assert_close(got["ffn"][:, 1], expected)
    # MHA-equivalent Q and K lists agree when there is no GQA grouping to sum over
    assert got["attn_q"].shape[-1] == 32 and got["attn_k"].shape[-1] == 16
