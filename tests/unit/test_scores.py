"""Evaluation job JSONs -> tidy scores (mwork.scores) -> the paper's tables (mwork.tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mwork.errors import MworkError
from mwork.scores import RESULT_SCHEMA, SCORE_COLUMNS, collect_scores, tidy_scores
from mwork.tables import TABLE_FILES, make_tables, table_paths


def _run_json(
    path: Path,
    condition: str,
    mask_lang: str,
    lang: str,
    values: list[float],
    seed: int | None = None,
    task: str = "xquad",
) -> None:
    metric = {"xquad": "contains,none", "xlsum": "rougeL,none"}[task]
    run = {
        "model": "m",
        "condition": condition,
        "seed": seed,
        "mask_lang": mask_lang,
        "tasks": {
            f"mwork_{task}_{lang}": {
                "spec": {"task": task, "lang": lang},
                "primary_metric": metric,
                "items": {
                    "doc_id": list(range(len(values))),
                    "id": [f"q{i}" for i in range(len(values))],
                    "scores": {metric: values},
                },
            }
        },
    }
    data = {"schema": RESULT_SCHEMA, "model": "m", "label": condition, "lang": mask_lang}
    data["runs"] = [run]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_collect_and_make_tables(tmp_path: Path) -> None:
    ev = tmp_path / "eval"
    paths = []

    def add(cond: str, mask: str, lang: str, values: list[float], **kw: Any) -> None:
        paths.append(ev / cond / mask / f"{lang}-{len(paths)}.json")
        _run_json(paths[-1], cond, mask, lang, values, **kw)

    for lang in ("en", "de", "zh"):
        add("none", "none", lang, [1, 1, 0, 1])
    for mask in ("de", "zh"):
        add("D_U", mask, "en", [1, 1, 0, 1])
        add("D_U", mask, mask, [0, 0, 0, 1])
        add("R_U", mask, "en", [1, 1, 0, 1], seed=0)
        add("R_U", mask, mask, [1, 1, 0, 0], seed=0)
    add("D_U-n1_1", "zh", "en", [1, 0, 0, 1])
    add("D_U-n1_1", "zh", "zh", [0, 0, 0, 0])
    add("D_U-n1_1.minus-en", "zh", "en", [1, 1, 0, 1])  # App.-E variant of a sweep label
    add("D_U-n1_1.minus-en", "zh", "zh", [0, 1, 0, 0])
    for lang in ("en", "fr"):
        add("none", "none", lang, [0.5, 0.25], task="xlsum")
    add("D_all", "fr", "en", [0.5, 0.25], task="xlsum")
    add("D_all", "fr", "fr", [0.0, 0.0], task="xlsum")

    tidy = tidy_scores(paths)
    assert list(tidy.columns) == list(SCORE_COLUMNS) and len(tidy) == 4 * 15 + 2 * 4
    assert set(tidy.loc[tidy["condition"] == "D_U-n1_1.minus-en", "base_condition"]) == {"D_U"}
    assert set(tidy.loc[tidy["condition"] == "R_U", "seed"]) == {0}
    assert set(tidy.loc[tidy["condition"] == "D_U", "seed"]) == {-1}
    assert set(tidy["metric"]) == {"contains", "rougeL"} and tidy["value"].between(0, 1).all()

    scores = collect_scores(paths, tmp_path / "tables" / "scores.csv")
    tables = make_tables(tmp_path / "tables" / "scores.csv", tmp_path / "tables", n_boot=50, seed=0)
    assert len(scores) == len(tidy)
    for path in table_paths(tmp_path / "tables"):
        assert path.stat().st_size > 0, path
    assert {p.stem for p in table_paths(tmp_path)} == set(TABLE_FILES.values())
    summary = tables["summary"].set_index(["task", "condition"])
    # D_U: En unchanged, non-En 75 -> 25 in both languages: ΔEng 0, Δn-Eng -50, Δ +50
    assert summary.loc[("xquad", "D_U"), "delta"] == pytest.approx(50.0)
    assert summary.loc[("xquad", "R_U"), "delta_n_eng"] == pytest.approx(-25.0)
    assert tables["sweep"]["n1"].tolist() == [1, 1]
    assert summary.loc[("xquad", "D_U-n1_1.minus-en"), "U"] == "D"
    assert tables["table1"].query("method == 'Deactivate Lang-Spec'")["fr"].tolist() == [0.0]
    wide = (tmp_path / "tables" / "tables14_17_per_language.md").read_text(encoding="utf-8")
    assert "75.0/25.0 (+0.0/-50.0)" in wide
    csv = pd.read_csv(tmp_path / "tables" / "tables2_5_summary.csv")
    assert {"delta", "delta_lo", "delta_hi"} <= set(csv.columns)


def test_collect_rejects_foreign_json(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"schema": "mwork.eval/1"}), encoding="utf-8")
    with pytest.raises(MworkError, match="not an mwork evaluation result"):
        tidy_scores([bad])
    bad.write_text(json.dumps({"schema": RESULT_SCHEMA, "runs": []}), encoding="utf-8")
    with pytest.raises(MworkError, match="holds no scored runs"):
        tidy_scores([bad])
