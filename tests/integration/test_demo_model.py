"""Demo model: tokenizer round trips, save/load round trip, training determinism, evaluation smoke."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mwork.demo import examples as E
from mwork.demo import prompts as P
from mwork.demo import quality as V
from mwork.demo.emit import write_jsonl
from mwork.demo.mixture import language_shares, training_docs
from mwork.demo.train import TrainConfig, save_model_dir, train_demo_model, train_model
from mwork.demo.world import build_world
from mwork.errors import MworkError

LANGS = ["en", "de", "fr", "zh", "es", "ru"]
TINY = TrainConfig(
    seed=0,
    steps=4,
    batch_size=4,
    seq_len=64,
    lr=1e-3,
    warmup_steps=1,
    vocab_size=4096,
    hidden_size=32,
    intermediate_size=64,
    n_layers=2,
    n_heads=2,
    threads=1,
    log_every=2,
)


@pytest.fixture(scope="module")
def docs():
    return training_docs(build_world(0, 6, 5), LANGS, 250, 0.45, 0.1, 0.1, seed=0)


@pytest.fixture(scope="module")
def trained(docs):
    return train_model([d.text for d in docs], TINY, progress=False)


def test_training_is_deterministic(docs, trained) -> None:
    model2, _, _ = train_model([d.text for d in docs], TINY, progress=False)
    sd1, sd2 = trained[0].state_dict(), model2.state_dict()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert trained[2]["loss_curve"][0][1] > 0


def test_tokenizer_round_trip_every_language(trained) -> None:
    tok = trained[1]
    world = build_world(0, 6, 5)
    for lang in LANGS:
        ex = E.news_example(world, lang, random.Random(1), random.Random(2))
        for text in (ex.text, ex.title, P.xquad_prompt(lang, ex.text, ex.title)):
            ids = tok(text)["input_ids"]
            assert ids[0] == tok.bos_token_id
            assert tok.decode(ids, skip_special_tokens=True) == text


def test_english_dominant_in_tokens(docs, trained) -> None:
    tok = trained[1]
    shares = language_shares(docs, lambda s: len(tok(s, add_special_tokens=False)["input_ids"]))
    assert shares["en"] >= 0.35 and all(shares["en"] > v for k, v in shares.items() if k != "en")


def test_model_dir_round_trip(trained, tmp_path: Path) -> None:
    model, tok, summary = trained
    out = save_model_dir(tmp_path / "model", model, tok, summary)
    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    tok2 = AutoTokenizer.from_pretrained(out)
    text = "Die Hauptstadt von Frankreich ist Paris. 法国的首都是巴黎。 Столица Франции — Париж."
    ids = tok2(text, return_tensors="pt")["input_ids"]  # [1, T]
    assert ids[0].tolist() == tok(text)["input_ids"]
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert loaded.config.model_type == "llama" and loaded.config.num_hidden_layers == TINY.n_layers


def test_train_demo_model_writes_model_dir(docs, tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    write_jsonl(train, ({"text": d.text} for d in docs))
    cfg = {
        "steps": 2,
        "batch_size": 2,
        "seq_len": 64,
        "vocab_size": 600,
        "hidden_size": 32,
        "intermediate_size": 64,
        "n_layers": 2,
        "n_heads": 2,
        "threads": 1,
    }
    out = train_demo_model(train, tmp_path / "model", cfg, seed=3)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_log.json"} <= names
    log = json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    assert log["config"]["steps"] == 2 and log["config"]["seed"] == 3
    assert not list(tmp_path.glob(".model.tmp*"))


def test_evaluation_smoke(trained) -> None:
    model, tok, _ = trained
    world = build_world(0, 6, 5)
    ppl = V.perplexity(model, tok, ["Anna lives in Berlin.", "安娜住在柏林。"])
    assert 1.0 < ppl < 10 * len(tok)
    ex = E.mc_example(world, "de", random.Random(0), random.Random(0))
    scores = V.continuation_logprobs(
        model,
        tok,
        P.xcsqa_prompt("de", ex.question),
        [P.answer_suffix("de", c) for c in ex.choices],
    )
    assert len(scores) == 5 and all(s < 0 for s in scores)
    qa = E.qa_example(world, "ru", random.Random(0), random.Random(0))
    row = {"context": qa.context, "question": qa.question, "answers": {"text": [qa.answer]}}
    assert 0.0 <= V.xquad_accuracy(model, tok, [row], "ru", max_new_tokens=3) <= 1.0


def test_bad_train_config() -> None:
    with pytest.raises(MworkError):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(MworkError):
        TrainConfig.from_dict({"hidden_size": 30, "n_heads": 4})
