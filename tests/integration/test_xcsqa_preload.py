"""X-CSQA's unlabelled test split (`source: local`) is refused in one line before the model loads:
`check_local_labels` reads the file as lm-eval's builders would (JSON lines, JSON array, parquet),
and `evaluate_job` calls it before `load_spec`, writing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from snakemake.utils import validate
from testhelpers import realdata

import mwork.evaluate
from mwork.configcheck import ConfigError
from mwork.errors import MworkError
from mwork.evaluate import evaluate_job
from mwork.lmeval_tasks import TaskSpec
from mwork.lmeval_tasks.xcsqa import check_local_labels
from mwork.plan import Plan
from mwork.settings import SCHEMA_FILE, EvaluationSettings, ModelSpec


def _rows(lang: str) -> list[dict[str, Any]]:
    text = realdata("benchmarks", "xcsqa", f"{lang}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _test_split(lang: str) -> list[dict[str, Any]]:
    """The real rows as the hidden-label test split has them: every answerKey empty."""
    return [r | {"answerKey": ""} for r in _rows(lang)]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".json":  # a JSON array (datasets' json builder reads both forms)
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _spec(path: Path, lang: str = "de") -> TaskSpec:
    return TaskSpec.from_config(
        {"task": "xcsqa", "lang": lang, "source": "local", "path": str(path)}
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_unlabelled_local_file_is_refused_in_one_line(tmp_path: Path, suffix: str) -> None:
    bad = _write(tmp_path / f"test{suffix}", _test_split("de"))
    with pytest.raises(MworkError, match="none of the 5 rows has an answerKey") as err:
        check_local_labels(_spec(bad))
    assert "\n" not in str(err.value) and str(bad) in str(err.value)
    assert "validation" in str(err.value)
    check_local_labels(_spec(_write(tmp_path / f"dev{suffix}", _rows("de"))))  # dev passes
    missing = [{k: v for k, v in r.items() if k != "answerKey"} for r in _rows("fr")]
    with pytest.raises(MworkError, match="none of the 5 rows"):  # no answerKey field at all
        check_local_labels(_spec(_write(tmp_path / f"nokey{suffix}", missing), "fr"))


def test_one_labelled_row_passes_and_other_tasks_are_not_read(tmp_path: Path) -> None:
    rows = _test_split("zh")
    rows[3]["answerKey"] = _rows("zh")[3]["answerKey"]  # process_docs also accepts a partial key
    check_local_labels(_spec(_write(tmp_path / "partial.jsonl", rows), "zh"))
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n", encoding="utf-8")
    xquad = {"task": "xquad", "lang": "de", "source": "local", "path": str(junk)}
    check_local_labels(TaskSpec.from_config(xquad))  # only X-CSQA files are read
    with pytest.raises(MworkError, match="cannot read local data file"):
        check_local_labels(_spec(junk))
    hub = TaskSpec.from_config({"task": "xcsqa", "lang": "de"})  # source hf: checked by lm-eval
    check_local_labels(hub)


def test_evaluation_job_refuses_before_loading_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must not load for an unlabelled split")

    monkeypatch.setattr(mwork.evaluate, "load_spec", no_load)
    bad = _write(tmp_path / "test.jsonl", _test_split("de"))
    good = _write(tmp_path / "dev.jsonl", _rows("en"))
    specs = [
        {"task": "xcsqa", "lang": "en", "source": "local", "path": str(good)},
        {"task": "xcsqa", "lang": "de", "source": "local", "path": str(bad)},
    ]
    out = tmp_path / "eval" / "D_U" / "de.json"
    settings = EvaluationSettings(lid_languages=["en", "de"])
    with pytest.raises(MworkError, match=r"X-CSQA \(de, .*test\.jsonl\): none of the 5 rows"):
        evaluate_job(
            ModelSpec("unused/model", "m", n_layers=2, n1=1, n2=0),
            "none",
            "de",
            {},
            [{"task": "xcsqa", "lang": "de", "specs": specs}],
            out,
            settings,
            device="cpu",
        )
    assert not out.exists() and not out.parent.exists()


def test_study_with_an_unlabelled_local_file_stops_at_plan_time(tmp_path: Path) -> None:
    """`mwork plan` and the workflow's start-up (Plan.check -> mwork.configcheck) refuse it too."""
    root = SCHEMA_FILE.parents[3]
    cfg = yaml.safe_load((root / ".test" / "config_tiny.yaml").read_text(encoding="utf-8"))
    cfg.pop("demo", None)
    cfg.pop("perplexity", None)
    _write(tmp_path / "en.jsonl", _rows("en"))
    _write(tmp_path / "zh.jsonl", _test_split("zh"))
    cfg["evaluation"]["local"] = {"xcsqa": str(tmp_path / "{lang}.jsonl")}
    cfg["evaluation"]["tasks"] = {"xcsqa": {"langs": ["en", "zh"]}}
    validate(cfg, schema=str(SCHEMA_FILE), set_default=True)
    with pytest.raises(ConfigError, match=r"evaluation.local.xcsqa: X-CSQA \(zh, .*\): none of"):
        Plan(cfg).check()
    _write(tmp_path / "zh.jsonl", _rows("zh"))  # the dev split passes
    Plan(cfg).check()
