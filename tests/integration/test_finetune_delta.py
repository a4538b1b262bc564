"""Delta files end to end: train from files, save/load/apply, merge -> from_pretrained, CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import transformers
from testhelpers import make_neuron_file

from mwork.adapters import COMPONENTS, get_adapter
from mwork.cli import main
from mwork.errors import MworkError
from mwork.finetune.delta import PROVENANCE_FILE, apply_delta, load_delta, merge_delta, save_delta
from mwork.finetune.sparse import attach_sparse
from mwork.finetune.train import FinetuneInputs, FinetuneSettings, finetune_to_file
from mwork.modeling import model_fingerprint
from mwork.neuronset import NeuronSet, load_neuron_set, save_neuron_set
from mwork.settings import ModelSpec
from mwork.tiny import tiny_model, train_tokenizer

TEXTS = [
    f"Artikel {i}: " + " ".join(f"wort{(i * j + 5) % 43}" for j in range(10 + 3 * i))
    for i in range(30)
]
FAST = dict(
    lr=1e-2, batch_size=4, micro_batch_size=2, max_length=32, warmup_ratio=0.0, progress=False
)


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    """A float64 qwen2 model directory (q/k/v biases), a document pool and a neuron file."""
    tok = train_tokenizer(TEXTS, vocab_size=120)
    model = tiny_model("qwen2", dtype=torch.float64, vocab_size=len(tok))
    model_dir = tmp_path / "base"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return {
        "model": model_dir,
        "docs": write_jsonl(tmp_path / "de.jsonl", TEXTS),
        "neurons": make_neuron_file(model, tmp_path / "de.safetensors"),
        "tmp": tmp_path,
    }


def load(model_dir) -> torch.nn.Module:
    return transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()


def logits(model, vocab: int) -> torch.Tensor:
    ids = torch.randint(3, vocab, (2, 12), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_delta_round_trips_to_the_trained_logits(files):
    out = files["tmp"] / "ft.safetensors"
    spec = ModelSpec(ref=str(files["model"]), name="tiny-qwen2", dtype="float64")
    inputs = FinetuneInputs(
        model=spec,
        docs=str(files["docs"]),
        out=str(out),
        language="de",
        neurons=str(files["neurons"]),
        n_docs=20,
        data_seed=1,
        device="cpu",
    )
    result = finetune_to_file(inputs, FinetuneSettings(**FAST))
    delta = load_delta(out)
    meta = delta.meta
    assert meta["format"] == "mwork-delta/1" and meta["mode"] == "ls" and meta["language"] == "de"
    base = load(files["model"])
    assert base.dtype == torch.float64
    assert meta["model_fingerprint"] == model_fingerprint(base)
    assert meta["neuron_sha256"] and meta["data_sha256"] and meta["mwork_version"]
    assert json.loads(meta["settings"])["lr"] == 1e-2 and meta["n_docs"] == "20"
    assert int(meta["n_trainable"]) == result.delta.n_values == delta.n_values
    assert all(torch.equal(delta.selection[c], result.delta.selection[c]) for c in COMPONENTS)
    vocab = base.config.vocab_size

    # the model as training saw it: frozen base + hooks holding the trained values
    hooked = copy.deepcopy(base)
    with attach_sparse(get_adapter(hooked), delta.selection) as sparse, torch.no_grad():
        for s in sparse.slices:
            s.values.copy_(delta.slices[s.name].values)
        want = logits(hooked, vocab)
    applied = apply_delta(copy.deepcopy(base), delta)
    from_memory = apply_delta(copy.deepcopy(base), result.delta)
    assert torch.equal(logits(applied, vocab), logits(from_memory, vocab))
    torch.testing.assert_close(logits(applied, vocab), want, rtol=0, atol=1e-11)
    assert not torch.allclose(logits(base, vocab), want)

    merged = merge_delta(str(files["model"]), out, files["tmp"] / "merged")
    reloaded = load(merged)
    assert reloaded.dtype == torch.float64
    assert torch.equal(logits(reloaded, vocab), logits(applied, vocab))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        assert (merged / f).read_bytes() == (files["model"] / f).read_bytes()
    assert (
        json.loads((merged / PROVENANCE_FILE).read_text())["model_fingerprint"]
        == meta["model_fingerprint"]
    )
    transformers.AutoTokenizer.from_pretrained(merged)

    with pytest.raises(MworkError, match="another model"):  # the delta belongs to the base only
        apply_delta(tiny_model("qwen2", seed=1, dtype=torch.float64, vocab_size=vocab), delta)


def test_nested_documents_and_random_baseline_from_files(files):
    spec = ModelSpec(ref=str(files["model"]), dtype="float64")
    common = dict(
        model=spec,
        docs=str(files["docs"]),
        language="de",
        neurons=str(files["neurons"]),
        device="cpu",
    )
    ls = finetune_to_file(
        FinetuneInputs(out=str(files["tmp"] / "ls.st"), n_docs=20, **common),
        FinetuneSettings(**FAST),
    ).delta
    small = finetune_to_file(
        FinetuneInputs(out=str(files["tmp"] / "small.st"), n_docs=10, **common),
        FinetuneSettings(**FAST),
    ).delta
    assert ls.meta["data_sha256"] != small.meta["data_sha256"]
    rnd = [
        finetune_to_file(
            FinetuneInputs(out=str(files["tmp"] / f"r{i}.st"), n_docs=20, **common),
            FinetuneSettings(**FAST, mode="random", neuron_seed=s),
        ).delta
        for i, s in enumerate((0, 0, 1))
    ]
    for c in COMPONENTS:
        assert torch.equal(
            rnd[0].selection[c].sum(dim=1), ls.selection[c].sum(dim=1)
        )  # matched per layer
        assert torch.equal(rnd[0].selection[c], rnd[1].selection[c])  # reproducible by seed
    assert any(not torch.equal(rnd[0].selection[c], ls.selection[c]) for c in COMPONENTS)
    assert any(not torch.equal(rnd[0].selection[c], rnd[2].selection[c]) for c in COMPONENTS)
    assert rnd[0].n_values == ls.n_values
    assert load_neuron_set(files["neurons"]).count() == ls.n_neurons()


def test_cli_train_and_merge(files, capsys):
    out, log = files["tmp"] / "cli.safetensors", files["tmp"] / "cli.json"
    args = [
        "finetune",
        "train",
        "--model",
        str(files["model"]),
        "--docs",
        str(files["docs"]),
        "--lang",
        "de",
        "--out",
        str(out),
        "--neurons",
        str(files["neurons"]),
        "--n-docs",
        "12",
        "--lr",
        "1e-2",
        "--batch-size",
        "4",
        "--micro-batch-size",
        "2",
        "--max-length",
        "32",
        "--no-progress",
        "--dtype",
        "float64",
        "--device",
        "cpu",
        "--log",
        str(log),
        "--components",
        "ffn,attn_q",
        "--cap-per-matrix",
        "2",
    ]
    assert main(args) == 0
    delta = load_delta(out)
    assert set(delta.slices) and all("k_proj" not in n and "v_proj" not in n for n in delta.slices)
    assert all(int(delta.selection[c][i].sum()) <= 2 for c in COMPONENTS for i in range(2))
    assert json.loads(log.read_text())["timing"]["tokens_per_s"] > 0
    assert (
        main(
            [
                "finetune",
                "merge",
                "--base",
                str(files["model"]),
                "--delta",
                str(out),
                "--out",
                str(files["tmp"] / "m"),
            ]
        )
        == 0
    )
    assert (files["tmp"] / "m" / "model.safetensors").is_file()
    capsys.readouterr()

    assert (
        main(
            [
                "finetune",
                "merge",
                "--base",
                str(files["model"]),
                "--delta",
                str(out),
                "--out",
                str(files["model"] / "sub"),
            ]
        )
        == 2
    )
    assert "overlaps the model directory" in capsys.readouterr().err
    bad = [*args[: args.index("--n-docs")], "--n-docs", "999"]
    assert main(bad) == 2
    assert "fewer than n_docs=999" in capsys.readouterr().err
    assert main([*args, "--batch-size", "5"]) == 2
    assert "multiple of micro_batch_size" in capsys.readouterr().err
    assert (
        main(
            [*args[: args.index("--out") + 1], str(files["docs"]), *args[args.index("--out") + 2 :]]
        )
        == 2
    )
    assert "is also an input of this command" in capsys.readouterr().err


def test_load_delta_rejects_other_files(files):
    with pytest.raises(MworkError, match="not an mwork delta file"):
        load_delta(files["neurons"])
    (files["tmp"] / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(MworkError, match="not a readable"):
        load_delta(files["tmp"] / "junk.safetensors")
    with pytest.raises(MworkError, match="does not exist"):
        load_delta(files["tmp"] / "missing.safetensors")


def test_empty_delta_file_round_trips(files, tmp_path):
    base = load(files["model"])
    adapter = get_adapter(base)
    empty = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.bool) for c in COMPONENTS
    }
    meta = {
        "model_fingerprint": model_fingerprint(base),
        "n_layers": "2",
        "n_docs": "1",
        "language": "de",
        "units": json.dumps(adapter.unit_counts()),
    }
    path = tmp_path / "empty.safetensors"
    save_neuron_set(NeuronSet(empty, {c: s.to(torch.int32) for c, s in empty.items()}, meta), path)
    spec = ModelSpec(ref=str(files["model"]), dtype="float64")
    inputs = FinetuneInputs(
        model=spec,
        docs=str(files["docs"]),
        out=str(tmp_path / "d.st"),
        language="de",
        neurons=str(path),
        device="cpu",
    )
    finetune_to_file(inputs, FinetuneSettings(**FAST))
    delta = load_delta(tmp_path / "d.st")
    assert delta.empty and delta.meta["empty"] == "true" and delta.n_neurons() == 0
    before = [p.clone() for p in base.parameters()]
    apply_delta(base, delta)
    assert all(torch.equal(p, q) for p, q in zip(base.parameters(), before, strict=True))
    save_delta(delta, tmp_path / "again.st")
    assert (tmp_path / "again.st").read_bytes() == (tmp_path / "d.st").read_bytes()


def test_real_model_sparse_finetune(realdata, tmp_path):
    """stories260K (a real trained Llama, GQA) on real English text: loss falls, slices move."""
    model_dir, corpus = realdata / "models" / "stories260K", realdata / "corpus" / "en.jsonl"
    base = load(model_dir)
    neurons = make_neuron_file(base, tmp_path / "en.safetensors", p=0.05)
    out = tmp_path / "en.delta.safetensors"
    spec = ModelSpec(ref=str(model_dir), dtype="float32")
    inputs = FinetuneInputs(
        model=spec,
        docs=str(corpus),
        out=str(out),
        language="en",
        neurons=str(neurons),
        n_docs=32,
        device="cpu",
    )
    settings = FinetuneSettings(
        lr=1e-3,
        batch_size=16,
        micro_batch_size=8,
        max_length=64,
        warmup_ratio=0.0,
        progress=False,
        epochs=2,
    )
    result = finetune_to_file(inputs, settings)
    curve = [c[1] for c in result.summary["loss_curve"]]
    assert sum(curve[-2:]) < sum(curve[:2])
    merged = load(merge_delta(str(model_dir), out, tmp_path / "merged"))
    moved = [
        n
        for (n, p), (_, q) in zip(merged.named_parameters(), base.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert moved and all(
        any(k in n for k in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"))
        for n in moved
    )
