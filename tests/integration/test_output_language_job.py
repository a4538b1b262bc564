"""The evaluation job stores the output language of every generated item in its run JSON
(`items["output_lang"]` + the identifier in `fidelity`), builds no identifier for X-CSQA-only jobs,
and `collect_scores` reads the stored languages (equal to identifying them again), re-identifies
entries of another identifier, and identifies JSONs that stored none."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from testhelpers import realdata

import mwork.evaluate
from mwork.evaluate import evaluate_job
from mwork.fidelity import OutputLanguage
from mwork.lid import available_backends
from mwork.scores import collect_scores
from mwork.settings import EvaluationSettings, ModelSpec
from mwork.tiny import save_tiny_model_dir

BACKEND = "langid" if "langid" in available_backends() else "lingua"
LANGS = ["en", "de", "zh"]
QA = {
    "en": ("Anna lives in Berlin and works as a teacher.", "Where does Anna live?", "Berlin"),
    "de": ("Anna wohnt in Berlin und arbeitet als Lehrerin.", "Wo wohnt Anna?", "Berlin"),
    "zh": ("安娜住在柏林，她是学校的老师。", "安娜住在哪里？", "柏林"),
}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


def _xcsqa_rows(lang: str) -> list[dict[str, Any]]:
    text = realdata("benchmarks", "xcsqa", f"{lang}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny Llama whose tokenizer knows the rows' words, XQuAD (en, de, zh) and X-CSQA (de)."""
    root = tmp_path_factory.mktemp("outlang")
    xcsqa = _xcsqa_rows("de")
    texts = [" ".join(v) for v in QA.values()] + [
        r["question"]["stem"] + " " + " ".join(r["question"]["choices"]["text"]) for r in xcsqa
    ]
    model = save_tiny_model_dir(root / "model", "llama", texts * 4, vocab_size=200)
    specs = {
        lang: {
            "task": "xquad",
            "lang": lang,
            "source": "local",
            "path": _jsonl(
                root / f"xquad_{lang}.jsonl",
                [
                    {
                        "id": f"{lang}{i}",
                        "context": c,
                        "question": q,
                        "answers": {"text": [a], "answer_start": [0]},
                    }
                    for i in range(3)
                ],
            ),
        }
        for lang, (c, q, a) in QA.items()
    }
    xcsqa_spec = {"task": "xcsqa", "lang": "de", "source": "local"}
    xcsqa_spec["path"] = _jsonl(root / "xcsqa_de.jsonl", xcsqa)
    return {"root": root, "model": str(model), "xquad": specs, "xcsqa": xcsqa_spec}


def _spec(setup: dict[str, Any]) -> ModelSpec:
    return ModelSpec(setup["model"], "tiny", dtype="float32", n_layers=2, n1=1, n2=0)


SETTINGS = EvaluationSettings(limit=3, max_gen_toks=6, lid_backend=BACKEND, lid_languages=LANGS)


@pytest.fixture(scope="module")
def job(setup: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """One baseline-shaped job: XQuAD in three languages, and X-CSQA (de)."""
    tasks = [
        {"task": "xquad", "lang": "de", "specs": [setup["xquad"][l] for l in LANGS]},
        {"task": "xcsqa", "lang": "de", "specs": [setup["xcsqa"]]},
    ]
    out = setup["root"] / "job.json"
    return evaluate_job(_spec(setup), "none", "de", {}, tasks, out, SETTINGS, device="cpu"), out


def test_generation_items_carry_their_output_language(job: tuple[dict[str, Any], Path]) -> None:
    """Every generated item has one output_lang, equal to OutputLanguage(...)(prediction), and
    the entry names the identifier; X-CSQA entries have neither."""
    data, out = job
    assert json.loads(out.read_text(encoding="utf-8")) == data
    fresh = OutputLanguage(LANGS, BACKEND)
    generated = [r for r in data["runs"] if "xquad" in next(iter(r["tasks"]))]
    assert len(generated) == 3 and len(data["runs"]) == 4
    for run in generated:
        assert run["fidelity"] == {"backend": BACKEND, "candidates": LANGS, "min_letters": 2}
        (task,) = run["tasks"].values()
        items = task["items"]
        assert len(items["output_lang"]) == len(items["prediction"]) == task["n"] == 3
        assert items["output_lang"] == [fresh(p) for p in items["prediction"]]
        assert set(items["output_lang"]) <= {"", *LANGS}
    (xcsqa,) = [r for r in data["runs"] if r not in generated]
    assert "fidelity" not in xcsqa
    assert all("output_lang" not in t["items"] for t in xcsqa["tasks"].values())


def test_xcsqa_only_job_builds_no_identifier(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an X-CSQA-only job must not build the LID")

    monkeypatch.setattr(mwork.evaluate, "OutputLanguage", refuse)
    tasks = [{"task": "xcsqa", "lang": "de", "specs": [setup["xcsqa"]]}]
    out = setup["root"] / "xcsqa.json"
    data = evaluate_job(_spec(setup), "none", "de", {}, tasks, out, SETTINGS, device="cpu")
    (run,) = data["runs"]
    assert "fidelity" not in run and run["tasks"]["mwork_xcsqa_de"]["n"] == 3  # limit
    assert "output_lang" not in run["tasks"]["mwork_xcsqa_de"]["items"]


def _rewrite(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001
    data = json.loads(src.read_text(encoding="utf-8"))
    for run in data["runs"]:
        edit(run)
    dst.write_text(json.dumps(data), encoding="utf-8")
    return dst


def _collect(path: Path, lid: OutputLanguage, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    scores = collect_scores([path], path.parent / f"{name}.csv", lid, path.parent / f"{name}_l.csv")
    return scores, pd.read_csv(path.parent / f"{name}_l.csv", keep_default_na=False)


def test_collect_scores_stored_equals_recomputed(
    job: tuple[dict[str, Any], Path], caplog: pytest.LogCaptureFixture
) -> None:
    src = job[1]
    root = src.parent
    lid = OutputLanguage(LANGS, BACKEND)

    def strip(run: dict[str, Any]) -> None:  # an older run JSON: no languages, no record
        run.pop("fidelity", None)
        for t in run["tasks"].values():
            t["items"].pop("output_lang", None)

    def tamper(value: str, record: dict[str, Any] | None):  # noqa: ANN202
        def edit(run: dict[str, Any]) -> None:
            for t in run["tasks"].values():
                if "output_lang" in t["items"]:
                    t["items"]["output_lang"] = [value] * len(t["items"]["output_lang"])
            if "fidelity" in run and record is not None:
                run["fidelity"] = record

        return edit

    with caplog.at_level(logging.INFO, logger="mwork.scores"):
        stored = _collect(src, lid, "stored")
    assert "identified here" not in caplog.text  # every language was read from the JSON ...
    assert "ident" not in vars(lid)  # ... so the LID backend was never even built
    old = _collect(_rewrite(src, root / "old.json", strip), lid, "old")
    pd.testing.assert_frame_equal(stored[0], old[0])  # the stored path equals the recompute path
    pd.testing.assert_frame_equal(stored[1], old[1])
    assert len(stored[1]) == 9 and (stored[0]["metric"] == "fidelity").sum() == 9
    # the stored values are what is read: a file that says "ru" everywhere gives "ru" rows
    edited = _collect(_rewrite(src, root / "ru.json", tamper("ru", None)), lid, "ru")
    assert set(edited[1]["output_lang"]) == {"ru"}
    assert (edited[0][edited[0]["metric"] == "fidelity"]["value"] == 0.0).all()
    # another identifier's languages are re-identified from the predictions, with a warning
    other = copy.deepcopy(lid.describe()) | {"backend": "cld3"}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mwork.scores"):
        redone = _collect(_rewrite(src, root / "cld3.json", tamper("ru", other)), lid, "redone")
    pd.testing.assert_frame_equal(redone[0], old[0])
    assert "3 re-identified" in caplog.text
