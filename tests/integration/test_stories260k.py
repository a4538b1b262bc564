"""End to end on a real trained model: stories260K (Llama, GQA, SentencePiece byte fallback, no pad
token) from ../shared/realdata: corpus -> PLND detection -> one masked evaluation on real XQuAD
rows -> tidy scores -> tables, all through the package's own stage functions and real files.
Skipped (counted in the summary) only when the folder is absent; a failure in CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from mwork.detect import detect_to_file
from mwork.evaluate import evaluate_job
from mwork.mask import mask_neurons
from mwork.modeling import load_spec
from mwork.neuronset import load_neuron_set
from mwork.perplexity import perplexity
from mwork.scores import collect_scores
from mwork.settings import DetectionSettings, EvaluationSettings, ModelSpec
from mwork.tables import make_tables

pytestmark = pytest.mark.slow  # a real model end to end, with an lm-eval run


@pytest.fixture(scope="module")
def spec(realdata) -> ModelSpec:
    model = realdata / "models" / "stories260K"
    return ModelSpec(ref=str(model), name="stories260K", dtype="float32", n_layers=5, n1=1, n2=1)


def _jsonl_lines(path: Path) -> list[str]:
    return [x for x in path.read_text("utf-8").split("\n") if x]


def test_corpus_detection_masked_evaluation_tables(spec, realdata, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    lines = _jsonl_lines(realdata / "corpus" / "en.jsonl")
    corpus = tmp_path / "en.jsonl"
    corpus.write_text("\n".join(lines[:300]) + "\n", "utf-8")
    neurons = tmp_path / "neurons" / "en.safetensors"
    settings = DetectionSettings(n_docs=12, max_tokens=48, batch_size=6)
    ns = detect_to_file(spec, corpus, "en", neurons, settings, device="cpu")
    again = load_neuron_set(neurons)
    assert again.count() == ns.count() > 0
    assert again.units == {"ffn": 172, "attn_q": 64, "attn_k": 32, "attn_v": 32}  # GQA: 4 kv heads
    assert again.meta["model"] == "stories260K" and again.meta["n_docs"] == "12"
    assert ns.count() < ns.total_units()  # a strict subset is language-specific

    # the masked model is really different on held-out English, and restored afterwards
    model, tok, adapter = load_spec(spec, "cpu")
    tok.padding_side = "right"
    held = [json.loads(x)["text"] for x in lines[900:930]]
    base = perplexity(model, tok, held, batch_size=10, max_tokens=64)
    with mask_neurons(adapter, again.selected, "weights") as n:
        masked = perplexity(model, tok, held, batch_size=10, max_tokens=64)
    assert n == ns.count() and masked != base
    assert perplexity(model, tok, held, batch_size=10, max_tokens=64) == base

    xquad = realdata / "benchmarks" / "xquad" / "en.jsonl"
    task = [{"task": "xquad", "lang": "en", "source": "local", "path": str(xquad)}]
    ev = EvaluationSettings(batch_size=4, limit=4, max_gen_toks=8)
    out = tmp_path / "eval"
    tasks = [{"task": "xquad", "lang": "en", "specs": task}]
    evaluate_job(spec, "none", "en", {}, tasks, out / "none.json", ev, device="cpu")
    masked = {"en": neurons}
    evaluate_job(spec, "D_all", "en", masked, tasks, out / "D_all.json", ev, device="cpu")
    base_json = json.loads((out / "none.json").read_text())["runs"][0]
    masked_json = json.loads((out / "D_all.json").read_text())["runs"][0]
    (name,) = base_json["tasks"]
    assert base_json["tasks"][name]["n"] == masked_json["tasks"][name]["n"] == 4
    preds = (
        base_json["tasks"][name]["items"]["prediction"],
        masked_json["tasks"][name]["items"]["prediction"],
    )
    assert all(isinstance(p, str) for p in preds[0] + preds[1])
    assert preds[0] != preds[1]  # masking 3% of the neurons changes greedy generations

    tidy = collect_scores([out / "none.json", out / "D_all.json"], tmp_path / "scores.csv")
    assert set(tidy["condition"]) >= {"none", "D_all"}
    tables = make_tables(tmp_path / "scores.csv", tmp_path / "tables", n_boot=0)
    assert any(not t.empty for t in tables.values())
    written = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert written and all(p.stat().st_size > 0 for p in (tmp_path / "tables").iterdir())
    df = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False)
    assert (df.groupby(["condition", "metric"]).size() == 4).all()
    assert torch.isfinite(torch.tensor(pd.to_numeric(df["value"]).values)).all()
