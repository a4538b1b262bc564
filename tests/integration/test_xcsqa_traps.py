"""X-CSQA's three traps, on rows shaped like the real ones (../shared/realdata/benchmarks/xcsqa/):
the unlabelled test split is refused in one line, items with an empty option are dropped and
counted in the run JSON, and items pair across languages by id, never by position."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from testhelpers import realdata

from mwork.errors import MworkError
from mwork.harness import evaluate_tasks
from mwork.lmeval_tasks.xcsqa import check_labels, item_ids, record_dropped
from mwork.scores import RESULT_SCHEMA, tidy_scores
from mwork.tiny import tiny_model, train_tokenizer


def _rows(lang: str) -> list[dict[str, Any]]:
    path = realdata("benchmarks", "xcsqa", f"{lang}.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _write(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny Llama whose tokenizer knows the real rows' words; offline HF caches."""
    root = tmp_path_factory.mktemp("xcsqa")
    texts = [
        r["question"]["stem"] + " " + " ".join(r["question"]["choices"]["text"])
        for lang in ("en", "de")
        for r in _rows(lang)
    ]
    tok = train_tokenizer(texts * 4, vocab_size=400)
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(var, "1")
        mp.setenv("HF_HOME", str(root / "hf_home"))
        mp.setenv("HF_DATASETS_CACHE", str(root / "hf_datasets"))
        yield {"root": root, "tok": tok, "model": tiny_model("llama", vocab_size=len(tok))}


def _evaluate(lm: dict[str, Any], lang: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    path = _write(lm["root"] / f"{lang}-{random.random():.6f}.jsonl", rows)
    spec = {"task": "xcsqa", "lang": lang, "source": "local", "path": path}
    res = evaluate_tasks(lm["model"], lm["tok"], [spec], None, batch_size=4)
    record_dropped(res["tasks"])  # what mwork.evaluate.evaluate_job does with every result
    return res["tasks"][f"mwork_xcsqa_{lang}"]


def test_test_split_without_labels_is_refused(lm: dict[str, Any]) -> None:
    rows = [r | {"answerKey": ""} for r in _rows("de")]  # the test split: every answerKey empty
    with pytest.raises(MworkError, match="none of the 5 rows has an answerKey") as err:
        check_labels(rows, "de")
    assert "\n" not in str(err.value) and "validation" in str(err.value)
    with pytest.raises(MworkError, match="answerKey"):  # lm-eval reads the rows: same error
        _evaluate(lm, "de", rows)
    check_labels(_rows("de"), "de")  # the dev split passes


def test_empty_option_items_are_dropped_and_counted(lm: dict[str, Any]) -> None:
    rows = _rows("de")
    rows[1]["question"]["choices"]["text"][2] = ""  # as in several German dev rows
    task = _evaluate(lm, "de", rows)
    assert task["n"] == 4 and rows[1]["id"] not in task["items"]["id"]
    assert task["dropped_items"]["n"] == 1 and task["dropped_items"]["ids"] == [rows[1]["id"]]
    assert "empty option" in task["dropped_items"]["reason"]
    clean = _evaluate(lm, "de", _rows("de"))
    assert clean["n"] == 5 and clean["dropped_items"]["n"] == 0


def _permuted(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The same questions with the options shuffled per row (answerKey follows) and the rows in
    another order: how another language's file looks."""
    rng = random.Random(seed)
    out = []
    for r in rows:
        texts = list(r["question"]["choices"]["text"])
        answer = texts["ABCDE".index(r["answerKey"])]
        rng.shuffle(texts)
        q = r["question"] | {"choices": {"label": list("ABCDE"), "text": texts}}
        out.append(r | {"question": q, "answerKey": "ABCDE"[texts.index(answer)]})
    return out[::-1]


def test_items_pair_across_languages_by_id(lm: dict[str, Any], tmp_path: Path) -> None:
    en = _rows("en")
    other = _permuted(en, seed=1)
    assert [r["answerKey"] for r in other[::-1]] != [r["answerKey"] for r in en]  # positions differ
    runs = {"en": _evaluate(lm, "en", en), "de": _evaluate(lm, "de", other)}
    paths = []
    for lang, task in runs.items():
        entry = {"model": "m", "condition": "none", "seed": None, "mask_lang": "none"}
        data = {"schema": RESULT_SCHEMA, "model": "m", "label": "none", "lang": lang}
        data["runs"] = [entry | {"tasks": {f"mwork_xcsqa_{lang}": task}}]
        paths.append(tmp_path / f"{lang}.json")
        paths[-1].write_text(json.dumps(data), encoding="utf-8")
    scores = tidy_scores(paths)
    by_lang = {lang: list(g["item_id"]) for lang, g in scores.groupby("eval_lang")}
    assert by_lang["en"] == [r["id"] for r in en]  # items are keyed by the dataset id ...
    assert by_lang["de"] == [r["id"] for r in other]  # ... in each file's own order
    assert set(by_lang["en"]) == set(by_lang["de"])  # so a join by item_id pairs the questions
    # without ids a position would stand for a different question in each language: refused
    data = json.loads(paths[1].read_text())
    data["runs"][0]["tasks"]["mwork_xcsqa_de"]["items"]["id"] = [None] * 5
    paths[1].write_text(json.dumps(data))
    with pytest.raises(MworkError, match="xcsqa items lack unique dataset ids"):
        tidy_scores(paths)
    with pytest.raises(MworkError, match="unique ids"):
        item_ids([{"id": "a"}, {"id": "a"}], "de")
