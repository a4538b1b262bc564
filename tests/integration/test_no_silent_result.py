"""No silent wrong result (issue 26): non-finite numbers (class 1), files trusted beyond their
header (class 2: deltas, LAPE recordings, LAPE sets), precision that eats the result (class 6).

Every refused case: exit 2, one `error: <problem>; <fix>` line, every input byte-identical, no
output written (`fails` in testhelpers). Controls show the same command succeeding on good input.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from testhelpers import digest, fails, make_neuron_file

from mwork.adapters import get_adapter
from mwork.cli import main
from mwork.detect import detect_neurons
from mwork.errors import MworkError
from mwork.finetune.delta import apply_delta, load_delta
from mwork.finetune.settings import FinetuneSettings
from mwork.finetune.trainer import FinetuneTrainer
from mwork.finite import check_weights
from mwork.lape import record_activations
from mwork.modeling import load_model
from mwork.neuronset import load_neuron_set, save_neuron_set
from mwork.settings import DetectionSettings
from mwork.tiny import save_tiny_model_dir, tiny_model, train_tokenizer

TEXTS = [
    f"Satz {i}: " + " ".join(f"wort{(i * j + 3) % 29}" for j in range(8 + i)) for i in range(12)
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny llama directory, documents, a neuron file of it, a trained delta, and a LAPE
    recording in two shards plus the unsharded one."""
    tmp = tmp_path_factory.mktemp("nsr")
    model_dir = save_tiny_model_dir(tmp / "model", "llama", TEXTS, vocab_size=90)
    docs = tmp / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    corpus = tmp / "corpus.jsonl"  # detection documents: long enough for any min_chars default
    corpus.write_text("".join(json.dumps({"text": " ".join([t] * 8)}) + "\n" for t in TEXTS))
    model, tok, adapter = load_model(str(model_dir), "float32", "cpu")
    neurons = make_neuron_file(model, tmp / "de.safetensors", p=0.3)
    delta = tmp / "de.delta.safetensors"
    assert main(train(model_dir, docs, neurons, delta)) == 0
    s = DetectionSettings(batch_size=4, max_tokens=16)
    meta = {"model": "tiny", "model_fingerprint": "fp", "language": "de"}
    lape = {}
    for i in range(2):
        rec = record_activations(
            adapter, tok, TEXTS[i::2], s, {**meta, "shard": f"{i}/2"}, progress=False
        )
        save_neuron_set(rec, tmp / f"lape.{i}-of-2.safetensors")
        lape[i] = tmp / f"lape.{i}-of-2.safetensors"
    whole = record_activations(adapter, tok, TEXTS[0::2] + TEXTS[1::2], s, meta, progress=False)
    save_neuron_set(whole, tmp / "lape.safetensors")
    return {
        "tmp": tmp,
        "model": model_dir,
        "docs": docs,
        "corpus": corpus,
        "neurons": neurons,
        "delta": delta,
        "lape0": lape[0],
        "lape1": lape[1],
        "lape": tmp / "lape.safetensors",
    }


def train(model, docs, neurons, out, *extra) -> list[str]:
    argv = ["finetune", "train", "--model", model, "--docs", docs, "--lang", "de"]
    argv += ["--neurons", neurons, "--out", out, "--batch-size", "4", "--micro-batch-size", "2"]
    argv += ["--max-length", "16", "--no-progress", "--device", "cpu", "--dtype", "float32"]
    return [str(x) for x in [*argv, *extra]]


def detect(model, corpus, out, *extra) -> list[str]:
    argv = ["detect", "--model", model, "--corpus", corpus, "--lang", "de", "--out", out]
    return [
        str(x) for x in [*argv, "--device", "cpu", "--n-docs", "4", "--max-tokens", "16", *extra]
    ]


def poisoned(files, tmp_path, key: str, index: tuple, value: float) -> Path:
    """A copy of the model directory with one weight value replaced."""
    d = Path(shutil.copytree(files["model"], tmp_path / "poisoned"))
    w = load_file(d / "model.safetensors")
    w[key][index] = value
    save_file(w, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


def tamper(src: Path, dst: Path, meta=None, tensors=None) -> Path:
    """A copy of a safetensors file with header values and/or tensors replaced (None: removed)."""
    with safe_open(str(src), framework="pt") as f:
        m, t = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    for source, target in ((meta or {}, m), (tensors or {}, t)):
        for k, v in source.items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    save_file(t, str(dst), metadata=m)
    return dst


# --- class 1: non-finite numbers ------------------------------------------------------------------

WEIGHT = "model.layers.1.mlp.down_proj.weight"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_detect_on_a_model_with_one_nonfinite_weight(files, capsys, tmp_path, value):
    model = poisoned(files, tmp_path, WEIGHT, (3, 5), value)
    out = tmp_path / "o.safetensors"
    msg = fails(capsys, detect(model, files["corpus"], out), [model, files["corpus"]])
    assert f"layer 1, weight {WEIGHT} holds 1 non-finite value(s) ({value})" in msg, msg
    assert not out.exists()


def test_float16_overflow_at_load_names_the_overflow(files, capsys, tmp_path):
    model = poisoned(files, tmp_path, "model.layers.0.self_attn.q_proj.weight", (0, 0), 1e6)
    out = tmp_path / "o.safetensors"
    msg = fails(capsys, detect(model, files["corpus"], out, "--dtype", "float16"), [model])
    assert "layer 0" in msg and "overflow to inf" in msg and "float32" in msg, msg
    # control: the same weights in float32 are finite and load
    load_model(str(model), "float32", "cpu")


def _layer_weights_times(model, layer: int, factor: float) -> None:
    with torch.no_grad():
        for p in model.model.layers[layer].mlp.parameters():
            p.mul_(factor)


def test_plnd_stops_at_a_float16_activation_overflow():
    """Finite float16 weights whose activations overflow: PLND names the layer and batch."""
    tok = train_tokenizer(TEXTS, vocab_size=90)
    model = tiny_model("llama", seed=0, vocab_size=len(tok), dtype=torch.float16)
    _layer_weights_times(model, 1, 300.0)
    check_weights(model, "tiny")  # the weights are finite: only the forward pass overflows
    adapter = get_adapter(model)
    with pytest.raises(MworkError) as exc:
        detect_neurons(adapter, tok, TEXTS[:4], DetectionSettings(batch_size=2), progress=False)
    msg = str(exc.value)
    assert "PLND importance" in msg and "non-finite" in msg and "in batch 0" in msg, msg
    assert "layer 1" in msg or "layer 0" in msg


def test_lape_stops_at_a_nan_activation():
    """A NaN weight in layer 1 of a model already in memory (no load check): LAPE names layer 1
    instead of counting NaN as 'not fired'."""
    tok = train_tokenizer(TEXTS, vocab_size=90)
    model = tiny_model("llama", seed=0, vocab_size=len(tok))
    with torch.no_grad():
        model.model.layers[1].mlp.gate_proj.weight[2, 3] = float("nan")
    with pytest.raises(MworkError, match=r"LAPE activations of ffn in layer 1 are non-finite"):
        record_activations(get_adapter(model), tok, TEXTS[:4], DetectionSettings(), progress=False)
    # control: the same model without the NaN records
    with torch.no_grad():
        model.model.layers[1].mlp.gate_proj.weight[2, 3] = 0.0
    rec = record_activations(
        get_adapter(model), tok, TEXTS[:4], DetectionSettings(), progress=False
    )
    assert int(rec.meta["n_tokens"]) > 0


def test_finetune_loss_nan_stops_at_the_step():
    model = tiny_model("llama", seed=0, vocab_size=90)
    with torch.no_grad():
        model.model.embed_tokens.weight[5] = float("nan")
    s = FinetuneSettings(mode="full", batch_size=2, micro_batch_size=2, progress=False)
    trainer = FinetuneTrainer(get_adapter(model), None, s, total_steps=2, pad_id=0)
    rows = torch.tensor([[1, 5, 7, 9], [2, 3, 4, 6]])
    with pytest.raises(MworkError, match=r"fine-tuning loss is nan at step 1"):
        trainer.step(rows)
    trainer.close()


@pytest.mark.parametrize(
    ("option", "value", "expect"),
    [
        ("--lr", "inf", "--lr inf is not a finite number"),
        ("--lr", "nan", "--lr nan is not a finite number"),
        ("--lr", "2e6", "lr=2e+06 is >= 1"),
        ("--warmup-ratio", "nan", "--warmup-ratio nan is not a finite number"),
        ("--max-grad-norm", "inf", "--max-grad-norm inf is not a finite number"),
        ("--n-docs", "0", "n_docs must be >= 1"),
    ],
)
def test_finetune_train_refuses_before_loading(files, capsys, monkeypatch, option, value, expect):
    monkeypatch.setattr(
        "transformers.AutoModelForCausalLM.from_pretrained",
        lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")),
    )
    f = files
    out = f["tmp"] / "never.safetensors"
    argv = train(f["model"], f["docs"], f["neurons"], out, option, value)
    msg = fails(capsys, argv, [f["model"], f["docs"], f["neurons"]])
    assert expect in msg, msg
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--min-fraction", "nan"), ("--epsilon-ffn", "inf"), ("--qk-budget-mb", "inf")],
)
def test_detect_refuses_nonfinite_options(files, capsys, tmp_path, option, value):
    out = tmp_path / "o.safetensors"
    msg = fails(
        capsys, detect(files["model"], files["corpus"], out, option, value), [files["corpus"]]
    )
    assert f"{option} {value} is not a finite number" in msg


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_delta_with_a_nonfinite_value_is_refused(files, capsys, tmp_path, value):
    f = files
    with safe_open(str(f["delta"]), framework="pt") as sf:
        key = next(k for k in sf.keys() if k.endswith(".values"))  # noqa: SIM118
        vals = sf.get_tensor(key).clone()
    vals.view(-1)[0] = value
    bad = tamper(f["delta"], tmp_path / "bad.safetensors", tensors={key: vals})
    out = tmp_path / "merged"
    argv = ["finetune", "merge", "--base", f["model"], "--delta", bad, "--out", out]
    msg = fails(capsys, argv, [f["model"], bad])
    assert f"tensor {key} holds 1 non-finite value(s)" in msg and not out.exists(), msg


# --- class 2: files trusted beyond their header ---------------------------------------------------


def _first_slice(path: Path) -> tuple[str, torch.Tensor, torch.Tensor, dict]:
    with safe_open(str(path), framework="pt") as sf:
        meta = dict(sf.metadata())
        name = next(iter(json.loads(meta["slice_dims"])))
        return (
            name,
            sf.get_tensor(f"slice.{name}.index"),
            sf.get_tensor(f"slice.{name}.values"),
            meta,
        )


def test_delta_with_a_duplicated_slice_index(files, capsys, tmp_path):
    f = files
    name, index, values, _ = _first_slice(f["delta"])
    assert index.numel() >= 2
    dup = index.clone()
    dup[1] = dup[0]
    bad = tamper(f["delta"], tmp_path / "dup.safetensors", tensors={f"slice.{name}.index": dup})
    out = tmp_path / "merged"
    argv = ["finetune", "merge", "--base", f["model"], "--delta", bad, "--out", out]
    msg = fails(capsys, argv, [f["model"], bad])
    assert "1 duplicated position(s)" in msg and f"slice.{name}.index" in msg, msg


def _delta_edits(files):
    name, index, values, meta = _first_slice(files["delta"])
    dim = json.loads(meta["slice_dims"])[name]
    comp = next(c for c in json.loads(meta["units"]))
    n_layers = int(meta["n_layers"])
    with safe_open(str(files["delta"]), framework="pt") as sf:
        pairs = sf.get_tensor(f"selection.{comp}")
    far = pairs.clone()
    far[0, 0] = n_layers
    twice = torch.cat([pairs, pairs[:1]])
    return {
        "unsorted": ({}, {f"slice.{name}.index": index.flip(0)}, "negative or unsorted"),
        "negative": ({}, {f"slice.{name}.index": index - index[0] - 1}, "negative or unsorted"),
        "short values": (
            {},
            {f"slice.{name}.values": values.narrow(dim, 0, 1).contiguous()},
            "slices along",
        ),
        "index dtype": ({}, {f"slice.{name}.index": index.int()}, "expected int64"),
        "n_trainable": ({"n_trainable": "7"}, {}, "header n_trainable = 7"),
        "selection out of range": ({}, {f"selection.{comp}": far}, "pairs outside"),
        "selection twice": ({}, {f"selection.{comp}": twice}, "lists a neuron twice"),
        "stray tensor": ({}, {"slice.x.index": index}, "unexpected tensor"),
        "missing values": ({}, {f"slice.{name}.values": None}, "are missing"),
        "full in sparse mode": ({}, {"full.lm_head.weight": values}, "full tensor"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unsorted",
        "negative",
        "short values",
        "index dtype",
        "n_trainable",
        "selection out of range",
        "selection twice",
        "stray tensor",
        "missing values",
        "full in sparse mode",
    ],
)
def test_delta_invariants(files, capsys, tmp_path, case):
    meta, tensors, expect = _delta_edits(files)[case]
    bad = tamper(files["delta"], tmp_path / "bad.safetensors", meta=meta, tensors=tensors)
    out = tmp_path / "merged"
    argv = ["finetune", "merge", "--base", files["model"], "--delta", bad, "--out", out]
    msg = fails(capsys, argv, [files["model"], bad])
    assert expect in msg and not out.exists(), msg


def test_delta_index_beyond_the_parameter(files):
    name, index, values, _ = _first_slice(files["delta"])
    delta = load_delta(files["delta"])
    model, _, _ = load_model(str(files["model"]), "float32", "cpu")
    delta.slices[name].index = index.clone()
    delta.slices[name].index[-1] = 10_000
    with pytest.raises(MworkError, match="writes position 10000"):
        apply_delta(model, delta)


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda m: {"n_tokens": "1"}, "header 'n_tokens' = 1 is outside"),
        (lambda m: {"n_tokens": str(int(m["n_docs"]) * 16 + 1)}, "is outside"),
        (lambda m: {"n_tokens": "many"}, "is not an integer"),
        (lambda m: {"n_tokens": None}, "header has no 'n_tokens'"),
        (lambda m: {"n_tokens": str(int(m["n_tokens"]) - 1)}, None),  # see the act_counts case
    ],
    ids=["one", "beyond-max-tokens", "text", "missing", "control-minus-one"],
)
def test_lape_recording_with_an_edited_n_tokens(files, capsys, tmp_path, edit, expect):
    with safe_open(str(files["lape"]), framework="pt") as sf:
        meta = dict(sf.metadata())
    bad = tamper(files["lape"], tmp_path / "bad.safetensors", meta=edit(meta))
    argv = ["neurons", "summary", bad]
    if expect is None:  # within every bound the counts allow: still accepted (not detectable)
        assert main([str(a) for a in argv]) == 0
        return
    msg = fails(capsys, argv, [bad])
    assert expect in msg, msg


def test_lape_recording_with_edited_counts(files, capsys, tmp_path):
    rec = load_neuron_set(files["lape"])
    n_tokens = int(rec.meta["n_tokens"])
    act = torch.from_numpy(rec.act_counts["ffn"][0]).clone()
    doc = torch.from_numpy(rec.doc_counts["ffn"][0]).clone()
    cases = {
        "above n_tokens": ({"layers.0.ffn.act_counts": act + n_tokens}, "act_counts outside"),
        "negative": ({"layers.0.ffn.act_counts": act - act.max() - 1}, "act_counts outside"),
        "doc without token": (
            {"layers.0.ffn.act_counts": torch.zeros_like(act)},
            "act_counts and doc_counts disagree",
        ),
        "token without doc": (
            {"layers.0.ffn.doc_counts": torch.zeros_like(doc)},
            "act_counts and doc_counts disagree",
        ),
    }
    for name, (tensors, expect) in cases.items():
        bad = tamper(files["lape"], tmp_path / f"{name}.safetensors", tensors=tensors)
        msg = fails(capsys, ["neurons", "summary", bad], [bad])
        assert expect in msg, (name, msg)


def test_neurons_select_on_a_lape_file_refuses(files, capsys, tmp_path):
    out = tmp_path / "o.safetensors"
    msg = fails(
        capsys,
        ["neurons", "select", files["lape"], "--min-fraction", "0.5", "--out", out],
        [files["lape"]],
    )
    assert "LAPE set" in msg and "--min-fraction does not apply" in msg and not out.exists()


def test_neurons_merge_of_lape_recording_shards(files, capsys, tmp_path):
    """The merged recording is the unsharded one (same counts) and mwork reads it back."""
    out = tmp_path / "merged.safetensors"
    before = digest([files["lape0"], files["lape1"]])
    assert (
        main(["neurons", "merge", "--out", str(out), str(files["lape0"]), str(files["lape1"])]) == 0
    )
    assert digest([files["lape0"], files["lape1"]]) == before
    merged, whole = load_neuron_set(out), load_neuron_set(files["lape"])
    assert np.array_equal(merged.act_counts["ffn"], whole.act_counts["ffn"])
    assert np.array_equal(merged.doc_counts["ffn"], whole.doc_counts["ffn"])
    assert (
        merged.meta["n_tokens"] == whole.meta["n_tokens"]
        and merged.meta["selection"] == "recording"
    )
    # a LAPE recording shard beside a PLND file, or only one shard: refused
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "x.safetensors", files["lape0"], files["neurons"]],
        [files["lape0"], files["neurons"]],
    )
    assert "not a LAPE recording" in msg
    msg = fails(
        capsys,
        ["neurons", "merge", "--out", tmp_path / "y.safetensors", files["lape0"]],
        [files["lape0"]],
    )
    assert "shard" in msg


# --- class 6: precision that eats the result -------------------------------------------------------


def test_merge_in_bfloat16_warns_with_the_kept_count(files, caplog, tmp_path):
    delta = load_delta(files["delta"])
    out = tmp_path / "bf16"
    with caplog.at_level(logging.WARNING, logger="mwork.finetune.delta"):
        code = main(
            [
                "finetune",
                "merge",
                "--base",
                str(files["model"]),
                "--delta",
                str(files["delta"]),
                "--out",
                str(out),
                "--dtype",
                "bfloat16",
            ]
        )
    assert code == 0
    warned = [r.getMessage() for r in caplog.records if "keeps" in r.getMessage()]
    assert len(warned) == 1 and "--dtype float32" in warned[0], warned
    kept, trained = (
        int(x) for x in warned[0].split("keeps ")[1].split(" trained")[0].split(" of ")
    )
    assert 0 <= kept < trained <= delta.n_values
    prov = json.loads((out / "mwork_delta.json").read_text())
    assert prov["kept_changes"] == f"{kept} of {trained}" and prov["merge_dtype"] == "bfloat16"
    # control: float32 keeps every change and does not warn
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mwork.finetune.delta"):
        assert (
            main(
                [
                    "finetune",
                    "merge",
                    "--base",
                    str(files["model"]),
                    "--delta",
                    str(files["delta"]),
                    "--out",
                    str(tmp_path / "f32"),
                    "--dtype",
                    "float32",
                ]
            )
            == 0
        )
    assert not [r for r in caplog.records if "keeps" in r.getMessage()]


def test_lape_selection_that_would_be_empty_everywhere_is_refused(caplog):
    """A top_rate that keeps round(N x rate) = 0 neurons, or constant recordings, would give
    every language an empty set with exit 0: refused. An empty result the data decides (a
    saturated small model) is said in a warning."""
    from mwork.lape import lape_select
    from mwork.settings import LapeSettings

    probs = torch.rand(2, 8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(MworkError, match=r"keeps round\(16 x 0.01\) = 0 of the model's FFN"):
        lape_select(probs, LapeSettings(top_rate=0.01))
    with pytest.raises(MworkError, match="the recordings are constant"):
        lape_select(torch.full((2, 8, 3), 0.5, dtype=torch.float64), LapeSettings(top_rate=0.25))
    with caplog.at_level("WARNING", logger="mwork.lape"):
        empty = lape_select(probs, LapeSettings(top_rate=0.25, filter_rate=0.5))
    assert not empty.any()
    assert "exceeds the activation_bar_ratio 0.95 quantile in any language" in caplog.text
    saturated = probs.clone()
    saturated[0] = 1.0  # half the probabilities at 1: nothing exceeds the 0.95 quantile
    caplog.clear()
    with caplog.at_level("WARNING", logger="mwork.lape"):
        assert not lape_select(saturated, LapeSettings(top_rate=0.25)).any()
    assert "no activation probability exceeds the filter_rate 0.95 quantile" in caplog.text
    control = LapeSettings(top_rate=0.25, filter_rate=0.5, activation_bar_ratio=0.5)
    assert lape_select(probs, control).any()
