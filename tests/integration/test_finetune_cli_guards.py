"""`mwork finetune train|merge` refuse unsafe output paths before any model is loaded.

Every refused case: exit 2, one `error: <problem>; <fix>` line (the last on stderr), every input
byte-identical afterwards, and no weights loaded (the `no_load` fixture makes loading them a test
failure). Controls run the same commands on safe paths and succeed.
"""

import json
import os
from pathlib import Path

import pytest
import transformers
from testhelpers import fails, make_neuron_file

from mwork.cli import main
from mwork.finetune.delta import PROVENANCE_FILE, load_delta
from mwork.modeling import load_model
from mwork.tiny import save_tiny_model_dir

TEXTS = [
    f"Satz {i}: " + " ".join(f"wort{(i * j + 3) % 29}" for j in range(8 + i)) for i in range(12)
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny llama directory, a document pool, a neuron file of it and a trained delta."""
    tmp = tmp_path_factory.mktemp("ft")
    model_dir = save_tiny_model_dir(tmp / "model", "llama", TEXTS, vocab_size=90)
    docs = tmp / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    model, _, _ = load_model(str(model_dir), "float32", "cpu")
    neurons = make_neuron_file(model, tmp / "de.safetensors", p=0.3)
    delta = tmp / "de.delta.safetensors"
    assert main(train(model_dir, docs, neurons, delta)) == 0
    return {"tmp": tmp, "model": model_dir, "docs": docs, "neurons": neurons, "delta": delta}


@pytest.fixture
def no_load(monkeypatch):
    """Loading weights is a test failure (the check must come first)."""

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad output was reported")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)


def train(model, docs, neurons, out, *extra) -> list[str]:
    argv = ["finetune", "train", "--model", model, "--docs", docs, "--lang", "de"]
    argv += ["--neurons", neurons, "--out", out, "--batch-size", "4", "--micro-batch-size", "2"]
    argv += ["--max-length", "16", "--no-progress", "--device", "cpu", "--dtype", "float32"]
    return [str(x) for x in [*argv, *extra]]


def merge(base, delta, out) -> list[str]:
    return [str(x) for x in ["finetune", "merge", "--base", base, "--delta", delta, "--out", out]]


def inputs_of(f) -> list[Path]:
    return [f["model"], f["docs"], f["neurons"], f["delta"]]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (lambda f: f["docs"], "is also an input of this command"),
        (lambda f: f["neurons"], "is also an input of this command"),
        (lambda f: f["model"] / "delta.safetensors", "lies inside the model directory"),
        (lambda f: f["model"], "lies inside the model directory"),
        (lambda f: f["tmp"], "is a directory"),
        (lambda f: f["docs"] / "delta.safetensors", "is a file, not a folder"),
        (lambda f: Path("/proc/mwork/d.safetensors"), "is not writable"),  # even for root
    ],
    ids=["docs", "neurons", "inside-model", "model-dir", "a-directory", "under-a-file", "ro"],
)
def test_train_refuses_unsafe_out(files, capsys, no_load, out, message):
    f = files
    msg = fails(capsys, train(f["model"], f["docs"], f["neurons"], out(f)), inputs_of(f))
    assert message in msg and "--out" in msg


def test_train_refuses_links_to_an_input(files, capsys, no_load, tmp_path):
    f = files
    (tmp_path / "sym.safetensors").symlink_to(f["docs"])
    os.link(f["neurons"], tmp_path / "hard.safetensors")
    for link in ("sym.safetensors", "hard.safetensors"):
        argv = train(f["model"], f["docs"], f["neurons"], tmp_path / link)
        assert "is also an input" in fails(capsys, argv, inputs_of(f))


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (lambda f, out: f["docs"], "--log"),
        (lambda f, out: out, "is the --out path"),
        (lambda f, out: f["model"] / "log.json", "lies inside the model directory"),
    ],
    ids=["docs", "same-as-out", "inside-model"],
)
def test_train_refuses_unsafe_log(files, capsys, no_load, tmp_path, log, message):
    f = files
    out = tmp_path / "d.safetensors"
    argv = train(f["model"], f["docs"], f["neurons"], out, "--log", log(f, out))
    msg = fails(capsys, argv, inputs_of(f))
    assert message in msg and "--log" in msg
    assert not out.exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (lambda f: f["model"], "overlaps the model directory"),
        (lambda f: f["model"] / "merged", "overlaps the model directory"),
        (lambda f: f["tmp"], "holds the input"),  # around the model, the docs and the delta
        (lambda f: f["delta"], "holds the input"),
        (lambda f: f["docs"], "is a file, not a directory"),
        (lambda f: Path("/proc/mwork/merged"), "is not writable"),  # even for root
    ],
    ids=["model-dir", "inside-model", "around-inputs", "the-delta", "a-file", "ro"],
)
def test_merge_refuses_unsafe_out(files, capsys, no_load, out, message):
    f = files
    msg = fails(capsys, merge(f["model"], f["delta"], out(f)), inputs_of(f))
    assert message in msg and "--out" in msg


def test_merge_never_replaces_a_foreign_directory(files, capsys, no_load, tmp_path):
    """A non-empty directory that is not an earlier merge would be deleted as a whole."""
    f = files
    (tmp_path / "notes.txt").write_text("mine\n")
    msg = fails(capsys, merge(f["model"], f["delta"], tmp_path), [*inputs_of(f), tmp_path])
    assert "replaced as a whole" in msg and PROVENANCE_FILE in msg


def test_controls_safe_paths_work(files, capsys, tmp_path):
    """The guards let safe paths through: a new delta + log, a new, empty and earlier merge dir."""
    f = files
    out, log = tmp_path / "new" / "d.safetensors", tmp_path / "new" / "log.json"
    assert main(train(f["model"], f["docs"], f["neurons"], out, "--log", log)) == 0
    assert out.read_bytes() == f["delta"].read_bytes()  # deterministic rerun
    assert json.loads(log.read_text())["summary"]["trained"]
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "merged", tmp_path / "empty", tmp_path / "merged"):  # last: rerun
        assert main(merge(f["model"], out, target)) == 0
        assert (target / "model.safetensors").is_file() and (target / PROVENANCE_FILE).is_file()
    assert load_delta(out).meta == load_delta(f["delta"]).meta
    capsys.readouterr()
