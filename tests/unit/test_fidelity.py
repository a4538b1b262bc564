"""Output-language fidelity (mwork.fidelity): per-item output language of generated answers, the
share in the query's language as a metric, and its columns with paired bootstrap CIs in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mwork.fidelity import FIDELITY, OutputLanguage
from mwork.lid import available_backends
from mwork.scores import RESULT_SCHEMA, collect_scores
from mwork.tables import all_tables

BACKEND = "langid" if "langid" in available_backends() else "lingua"

EN = "Anna lives in Berlin and she works as a teacher at the school."
DE = "Anna wohnt in Berlin und arbeitet als Lehrerin an der Schule."
ZH = "安娜住在柏林，她是学校的老师。"


@pytest.fixture(scope="module")
def lid() -> OutputLanguage:
    return OutputLanguage(["en", "de", "fr", "zh", "es", "ru"], BACKEND)


@pytest.mark.parametrize("backend", [b for b in ("lingua", "langid") if b in available_backends()])
def test_output_language_of_whole_texts(backend: str) -> None:
    lid = OutputLanguage(["en", "de", "fr", "zh", "es", "ru"], backend)
    assert lid(EN) == "en" and lid(DE) == "de" and lid(ZH) == "zh"
    assert lid("Анна живёт в Берлине.") == "ru"
    assert lid("") == "" and lid(None) == "" and lid("42 + 17 = 59") == ""  # undetermined
    assert lid("安娜住在柏林 (Berlin)。") == "zh"  # mixed scripts: the majority script decides


def _job(path: Path, condition: str, mask: str, lang: str, preds: list[str], ok: list[float]):
    run = {
        "model": "m",
        "condition": condition,
        "seed": None,
        "mask_lang": mask,
        "tasks": {
            f"mwork_xquad_{lang}": {
                "spec": {"task": "xquad", "lang": lang},
                "primary_metric": "contains,none",
                "items": {
                    "doc_id": list(range(len(preds))),
                    "id": [f"q{i}" for i in range(len(preds))],
                    "prediction": preds,
                    "scores": {"contains,none": ok},
                },
            }
        },
    }
    data = {"schema": RESULT_SCHEMA, "model": "m", "label": condition, "lang": mask, "runs": [run]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_fidelity_rows_and_table_columns(tmp_path: Path, lid: OutputLanguage) -> None:
    """D_G answers correctly but in English: accuracy is unchanged, fidelity drops from 100 to 25,
    and the summary and per-language tables carry it next to the metric with paired CIs."""
    paths = [
        _job(tmp_path / "b_en.json", "none", "none", "en", [EN] * 4, [1, 1, 1, 0]),
        _job(tmp_path / "b_de.json", "none", "none", "de", [DE] * 4, [1, 1, 0, 0]),
        _job(tmp_path / "g_en.json", "D_G", "de", "en", [EN] * 4, [1, 1, 1, 0]),
        _job(tmp_path / "g_de.json", "D_G", "de", "de", [EN, EN, EN, DE], [1, 1, 0, 0]),
    ]
    langs_csv = tmp_path / "output_languages.csv"
    df = collect_scores(paths, tmp_path / "scores.csv", lid, langs_csv)
    fid = df[df["metric"] == FIDELITY]
    assert len(fid) == 16 and len(df) == 32
    masked_de = fid[(fid["condition"] == "D_G") & (fid["eval_lang"] == "de")]
    assert masked_de["value"].tolist() == [0.0, 0.0, 0.0, 1.0]
    langs = pd.read_csv(langs_csv)
    assert langs[langs["condition"] == "D_G"]["output_lang"].tolist() == ["en"] * 7 + ["de"]

    tables = all_tables(df, n_boot=200, seed=0)
    summary = tables["summary"]
    assert summary["metric"].tolist() == ["contains"]  # fidelity is a column, not a row
    row = summary.iloc[0]
    assert row["n_eng"] == pytest.approx(50.0) and row["delta_n_eng"] == pytest.approx(0.0)
    assert row["fid_eng"] == pytest.approx(100.0)
    assert row["fid_n_eng"] == pytest.approx(25.0)
    assert row["delta_fid_n_eng"] == pytest.approx(-75.0)
    assert row["delta_fid_n_eng_lo"] <= -75.0 <= row["delta_fid_n_eng_hi"] < 0
    assert 0.0 <= row["fid_n_eng_lo"] <= 25.0 <= row["fid_n_eng_hi"]
    per = tables["per_language"].iloc[0]
    assert per["lang"] == "de" and per["fid_l_orig"] == pytest.approx(100.0)
    assert per["fid_l_d"] == pytest.approx(25.0) and per["delta_fid_l"] == pytest.approx(-75.0)
    # the baseline table keeps a fidelity row per task (the unmasked share in each language)
    base = tables["baseline"].set_index("metric")
    assert base.loc[FIDELITY, "de"] == pytest.approx(100.0)


def test_tasks_without_generations_get_nan_fidelity(tmp_path: Path) -> None:
    path = _job(tmp_path / "b.json", "none", "none", "en", [EN], [1])
    data = json.loads(path.read_text())
    del data["runs"][0]["tasks"]["mwork_xquad_en"]["items"]["prediction"]  # log-likelihood task
    path.write_text(json.dumps(data))
    lid = OutputLanguage(["en", "de"], BACKEND)
    df = collect_scores([path], tmp_path / "s.csv", lid, tmp_path / "l.csv")
    assert set(df["metric"]) == {"contains"}
    assert pd.read_csv(tmp_path / "l.csv").empty
