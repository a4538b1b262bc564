"""Demo model: tokenizer round trips, save/load round trip, training determinism, and that training
works: the trained model beats an untrained one of the same config and seed on held-out text."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mwork.demo import examples as E
from mwork.demo import prompts as P
from mwork.demo import quality
from mwork.demo.emit import write_jsonl
from mwork.demo.mixture import language_shares, training_docs
from mwork.demo.train import (
    TrainConfig,
    build_model,
    save_model_dir,
    train_demo_model,
    train_model,
)
from mwork.demo.world import build_world
from mwork.errors import MworkError

LANGS = ["en", "de", "fr", "zh", "es", "ru"]
TINY = TrainConfig(  # ~1.5 s on one thread; enough to learn word statistics, not world facts
    seed=0,
    steps=60,
    batch_size=4,
    seq_len=64,
    lr=2e-2,
    warmup_steps=2,
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


@pytest.fixture(scope="module")
def heldout(docs):
    """Mixture documents of another seed that are not training documents."""
    seen = {d.text for d in docs}
    return [
        d
        for d in training_docs(build_world(0, 6, 5), LANGS, 200, 0.45, 0.1, 0.1, seed=1)
        if d.text not in seen
    ]


def test_training_is_deterministic(docs) -> None:
    short = dataclasses.replace(TINY, steps=4)
    (m1, _, log1), (m2, _, _) = (
        train_model([d.text for d in docs], short, progress=False) for _ in range(2)
    )
    sd1, sd2 = m1.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert log1["loss_curve"][0][1] > 0


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


def word_order_items(heldout, per_lang: int = 6, prefix: int = 8, n: int = 6, seed: int = 0):
    """Five-way word-order cloze on held-out text: after the first `prefix` words of a document,
    its next `n` words in their order (choice 0) or in four other orders. The choices hold the
    same words, hence the same tokens: the summed log-likelihoods compare fairly, chance is 1/5."""
    rng, items = random.Random(seed), []
    for lang in ("en", "de", "fr", "es", "ru"):  # languages written with spaces
        texts = [d.text.split() for d in heldout if d.parts[0][0] == lang and len(d.parts) == 1]
        for words in [w for w in texts if len(w) >= prefix + n][:per_lang]:
            gold, orders = words[prefix : prefix + n], []
            while len(orders) < 4:
                other = rng.sample(gold, n)
                if other != gold and other not in orders:
                    orders.append(other)
            items.append((" ".join(words[:prefix]), [" " + " ".join(o) for o in [gold, *orders]]))
    assert len(items) == 5 * per_lang
    return items


def test_trained_beats_untrained(trained, heldout) -> None:
    """Lower held-out perplexity, higher likelihood of the gold continuations and word-order
    accuracy well above chance, against an untrained model of the same config and seed."""
    model, tok, _ = trained
    untrained = build_model(TINY, tok).eval()
    texts = [d.text for d in heldout[:30]]
    ppl, ppl0 = (quality.perplexity(m, tok, texts) for m in (model, untrained))
    assert ppl < ppl0 / 4, (ppl, ppl0)  # measured 330 vs 2505 (2469 tokens)
    items = word_order_items(heldout)
    gold, hits = {}, {}
    for name, m in (("trained", model), ("untrained", untrained)):
        scores = [
            quality.continuation_logprobs(m, tok, prompt, choices) for prompt, choices in items
        ]
        gold[name] = sum(s[0] for s in scores) / len(items)  # summed over the 6 words' tokens
        hits[name] = sum(max(range(5), key=s.__getitem__) == 0 for s in scores) / len(items)
    assert gold["trained"] > gold["untrained"] + 5.0, gold  # measured -53.0 vs -66.0 nats
    # measured 0.67 vs 0.07; chance 0.2
    assert hits["trained"] >= 0.45 and hits["trained"] > hits["untrained"] + 0.2, hits


def test_bad_train_config() -> None:
    with pytest.raises(MworkError):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(MworkError):
        TrainConfig.from_dict({"hidden_size": 30, "n_heads": 4})
