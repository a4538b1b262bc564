"""Bad inputs give one-line errors that name the problem and the fix (CLI exit status 2)."""

import json

import pytest
import torch

from mwork.cli import main
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet, load_neuron_set, save_neuron_set
from mwork.settings import DetectionSettings


@pytest.fixture
def good_corpus(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"text": "hello world hello"}\n{"text": "bonjour le monde"}\n')
    return p


def run_cli(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, f"expected exit 2, got {code}"
    errors = [l for l in err if l.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def detect_args(model, corpus, tmp_path, lang="en"):
    return (
        "detect",
        "--model",
        str(model),
        "--corpus",
        str(corpus),
        "--lang",
        lang,
        "--out",
        str(tmp_path / "out.safetensors"),
        "--device",
        "cpu",
        "--min-chars",  # the corpus pool's filter (default 200): these test documents are short
        "0",
    )


def test_unknown_language(capsys, model_dir, good_corpus, tmp_path):
    msg = run_cli(capsys, *detect_args(model_dir, good_corpus, tmp_path, lang="xx"))
    assert "unknown language 'xx'" in msg and "zh" in msg
    assert not (tmp_path / "out.safetensors").exists()


def test_empty_corpus(capsys, model_dir, tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    assert "is empty" in run_cli(capsys, *detect_args(model_dir, p, tmp_path))


def test_corpus_without_text(capsys, model_dir, tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"body": "no text field"}\n')
    msg = run_cli(capsys, *detect_args(model_dir, p, tmp_path))
    assert "line 1 has no 'text' field" in msg


def test_corpus_not_json(capsys, model_dir, tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\nnot json\n')
    assert "line 2 is not valid JSON" in run_cli(capsys, *detect_args(model_dir, p, tmp_path))


def test_unsupported_architecture(capsys, good_corpus, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    d = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)).save_pretrained(d)
    msg = run_cli(capsys, *detect_args(d, good_corpus, tmp_path))
    assert "unsupported architecture 'gpt2'" in msg
    for fam in ("bloom", "gemma2", "llama", "mistral", "qwen2"):
        assert fam in msg


def test_unsupported_architecture_in_memory():
    from transformers import GPT2Config, GPT2LMHeadModel

    from mwork.adapters import get_adapter, supported_architectures

    listed = ", ".join(
        supported_architectures()
    )  # bloom, gemma, gemma2, ... (issue 13: 10 families)
    assert len(supported_architectures()) >= 9
    with pytest.raises(MworkError, match=f"supported: {listed}"):
        get_adapter(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)))


def test_model_path_missing(capsys, good_corpus, tmp_path):
    msg = run_cli(capsys, *detect_args(tmp_path / "no_such_model", good_corpus, tmp_path))
    assert "does not exist" in msg


def test_neuron_file_from_another_model(capsys, tmp_path):
    def make(fp, lang):
        sel = {"ffn": torch.tensor([[True, False]])}
        ns = NeuronSet(
            sel,
            {"ffn": sel["ffn"].int()},
            {
                "model": fp,
                "model_fingerprint": fp,
                "language": lang,
                "n_layers": "1",
                "units": json.dumps({"ffn": 2}),
                "n_docs": "1",
            },
        )
        save_neuron_set(ns, tmp_path / f"{fp}-{lang}.safetensors")
        return tmp_path / f"{fp}-{lang}.safetensors"

    a, b = make("aaaa", "zh"), make("bbbb", "zh")
    with pytest.raises(MworkError, match="made from another model"):
        load_neuron_set(a, expect_fingerprint="bbbb")
    msg = run_cli(
        capsys, "neurons", "merge", "--out", str(tmp_path / "m.safetensors"), str(a), str(b)
    )
    assert "differ in 'model'" in msg
    en = make("bbbb", "en")
    msg = run_cli(
        capsys,
        "neurons",
        "subtract",
        str(a),
        "--minus",
        str(en),
        "--out",
        str(tmp_path / "v.safetensors"),
    )
    assert "another model" in msg


def test_missing_neuron_file(capsys, tmp_path):
    assert "does not exist" in run_cli(
        capsys, "neurons", "summary", str(tmp_path / "nope.safetensors")
    )


def test_not_a_neuron_file(capsys, tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\x00" * 20)
    assert "not a readable safetensors" in run_cli(capsys, "neurons", "summary", str(p))


def test_bad_settings():
    with pytest.raises(MworkError, match="unknown importance"):
        DetectionSettings(importance="magic").validate()
    with pytest.raises(MworkError, match="min_fraction"):
        from mwork.neuronset import select_by_fraction

        select_by_fraction({"ffn": torch.zeros(1, 2, dtype=torch.int32)}, 3, 0.0)


def test_summary_cli(capsys, model_dir, good_corpus, tmp_path):
    out = tmp_path / "n.safetensors"
    assert (
        main(
            [
                "detect",
                "--model",
                str(model_dir),
                "--corpus",
                str(good_corpus),
                "--lang",
                "en",
                "--out",
                str(out),
                "--device",
                "cpu",
                "--min-chars",
                "0",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["neurons", "summary", str(out), "--csv", str(tmp_path / "s.csv")]) == 0
    text = capsys.readouterr().out
    assert "total:" in text and "ffn" in text and "layer" in text
    assert main(["neurons", "summary", str(out)]) == 0  # the pandas-free text
    fast = capsys.readouterr().out
    assert fast.splitlines()[0] == text.splitlines()[0]
    assert fast.splitlines()[-1] == text.splitlines()[-1]
    assert (tmp_path / "s.csv").read_text().startswith("layer,component,selected,units,share")
