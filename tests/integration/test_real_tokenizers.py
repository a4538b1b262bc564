"""Tiny random models on the real Llama-2 (Vicuna) and Mistral-7B tokenizers (vocab 32,000).

From ../shared/realdata (skipped, and counted in the summary, only when absent; a failure in CI):
no pad token until one is set (as `mwork.modeling.load_model` does: EOS), BOS added, CJK split
into byte-fallback pieces, PLND detection on the real corpora, all four lm-eval tasks on the real
benchmark rows, lm-eval's left truncation of long XQuAD contexts, and the chat template off by
default (the paper used none).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.models.huggingface import HFLM
from transformers import AutoTokenizer

from mwork.adapters import COMPONENTS
from mwork.detect import detect_neurons
from mwork.harness import evaluate_tasks
from mwork.modeling import load_spec
from mwork.settings import DetectionSettings, ModelSpec

TOKENIZERS = {
    "llama2": (
        "llama2-vicuna-7b-v1.5",
        "llama",
        [1, 15043, 3186, 29892, 29871, 30919, 31076, 30793, 30967, 7203, 7616],
    ),
    "mistral": (
        "mistral-7b-v0.1-v0.2",
        "mistral",
        [1, 22557, 1526, 28725, 28705, 29383, 29530, 30050, 29822, 11824, 8496],
    ),
}
EXAMPLE = "Hello world, 你好世界 Привет"
TINY = dict(
    hidden_size=16,
    intermediate_size=24,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
    max_position_embeddings=512,
    pad_token_id=None,
)


def _lines(path: Path, n: int) -> list[str]:
    return [json.loads(x)["text"] for x in path.read_text("utf-8").splitlines()[:n]]


# every test runs on both: `model_dir` (tests/conftest.py) = tiny random weights + the real files
pytestmark = pytest.mark.parametrize(
    "name, model_dir",
    [
        (name, dict(family=family, real_tokenizer=sub, vocab_size=32000, **TINY))
        for name, (sub, family, _) in sorted(TOKENIZERS.items())
    ],
    indirect=["model_dir"],
)


def test_tokenizer_facts(name, model_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.pad_token is None  # users must set one
    ids = tok(EXAMPLE)["input_ids"]
    assert ids == TOKENIZERS[name][2]
    assert ids[0] == tok.bos_token_id == 1  # BOS added
    pieces = tok.convert_ids_to_tokens(tok("龘")["input_ids"])  # a rare CJK character
    assert [p for p in pieces if p.startswith("<0x")] == ["<0xE9>", "<0xBE>", "<0x98>"]
    assert tok.decode(tok("龘", add_special_tokens=False)["input_ids"]) == "龘"
    assert tok.chat_template is None  # the paper's prompts are plain; no template to apply


def test_load_sets_a_pad_token_and_detects_on_real_corpora(name, model_dir, realdata):
    model, tok, adapter = load_spec(ModelSpec(ref=str(model_dir), dtype="float32"), "cpu")
    assert tok.pad_token == tok.eos_token == "</s>"  # mwork's rule: EOS, else UNK
    assert adapter.model.config.vocab_size == len(tok) == 32000
    settings = DetectionSettings(max_tokens=48, batch_size=4, top_k_ffn=4, top_k_attn=2)
    found = {}
    for lang in ("en", "zh", "ru"):
        docs = _lines(realdata / "corpus" / f"{lang}.jsonl", 6)
        if lang == "zh":
            enc = [tok.convert_ids_to_tokens(tok(d)["input_ids"]) for d in docs]
            assert any(p.startswith("<0x") for e in enc for p in e)  # byte fallback occurs
        ns = detect_neurons(adapter, tok, docs, settings, {"language": lang}, progress=False)
        assert ns.n_docs == 6 and set(ns.doc_counts) == set(COMPONENTS)
        for c in COMPONENTS:
            assert ns.doc_counts[c].shape == (adapter.n_layers, adapter.n_units(c))
            assert int(ns.doc_counts[c].max()) <= 6
        assert int(ns.doc_counts["ffn"].sum()) == 6 * adapter.n_layers * 4  # top-4 per document
        found[lang] = ns
    assert not np.array_equal(found["en"].doc_counts["ffn"], found["zh"].doc_counts["ffn"])


def _specs(realdata: Path, langs=("en", "zh")) -> list[dict]:
    b = realdata / "benchmarks"
    return [
        {
            "task": t,
            "lang": lang,
            "source": "local",
            "path": str(b / t / f"{lang}.jsonl"),
            "n_samples": None,
        }
        for t in ("mgsm", "xquad", "xcsqa", "xlsum")
        for lang in langs
    ]


@pytest.mark.slow  # eight lm-eval tasks
def test_all_four_tasks_on_real_rows(name, model_dir, realdata, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    model, tok, _ = load_spec(ModelSpec(ref=str(model_dir), dtype="float32"), "cpu")
    seen: list[tuple[list[str], int | None, torch.Tensor]] = []
    original = HFLM.tok_batch_encode

    def record(self, strings, padding_side="left", left_truncate_len=None, truncation=False):
        ids, mask = original(self, strings, padding_side, left_truncate_len, truncation)
        seen.append((list(strings), left_truncate_len, ids))
        return ids, mask

    monkeypatch.setattr(HFLM, "tok_batch_encode", record)
    res = evaluate_tasks(
        model, tok, _specs(realdata), None, batch_size=2, limit=2, max_gen_toks=4, max_length=160
    )
    assert res["settings"]["chat_template"] is False
    assert len(res["tasks"]) == 8
    for name, task in res["tasks"].items():
        assert task["n"] == 2, name
        assert task["metrics"], name
        assert task["primary_metric"] in task["metrics"], name
    # generation prompts are plain text (no chat template) and start with BOS when not cut
    prompts = [s for strings, _, _ in seen for s in strings]
    assert prompts and not any("[INST]" in p or "<|im_start|>" in p for p in prompts)
    long = [
        (s, n, row)
        for strings, n, ids in seen
        for s, row in zip(strings, ids, strict=False)
        if len(tok(s)["input_ids"]) > 160 - 4
    ]
    assert long, "expected XQuAD contexts longer than the context window"
    for text, n, row in long:  # cut from the left (rows are left-padded): the end survives
        full = tok(text)["input_ids"]
        assert n == 160 - 4 and row.shape[0] == n
        assert row.tolist() == full[-n:] and row[0] != tok.bos_token_id  # BOS cut off too
    short = [
        ids
        for strings, n, ids in seen
        for s, ids in zip(strings, ids, strict=False)
        if len(tok(s)["input_ids"]) < 100
    ]
    assert any(int(row[row != tok.pad_token_id][0]) == tok.bos_token_id for row in short)
