"""Where each benchmark's data come from: Hub revision per task, the parquet export of script
datasets, local parquet/JSONL overrides, and the one-line error for a refused loading script.

Offline: lm-eval's call to `datasets.load_dataset` is intercepted and its arguments recorded
(then answered with real benchmark rows from ../shared/realdata when present, else tiny rows);
local files go through the real `datasets` json/parquet builders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import lm_eval.api.task
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from lm_eval.tasks import TaskManager
from testhelpers import realdata_or_none

from mwork.errors import MworkError
from mwork.harness import dataset_script_error, evaluate_tasks
from mwork.lmeval_tasks import (
    BENCHMARKS,
    PARQUET_EXPORT,
    TaskSpec,
    hf_source,
    render_task_yaml,
    write_task_dir,
)
from mwork.tiny import tiny_model, train_tokenizer


def _rows(task: str, lang: str) -> list[dict[str, Any]]:
    path = realdata_or_none("benchmarks", task, f"{lang}.jsonl")  # a failure in CI when missing
    if path is not None:
        return [json.loads(x) for x in path.read_text("utf-8").splitlines()][:3]
    print(f"no real {task} rows under ../shared/realdata; using a tiny row in the same schema")
    return {
        "mgsm": [
            {"question": "1+1?", "answer": None, "answer_number": 2, "equation_solution": None}
        ],
        "xquad": [
            {
                "id": "a",
                "context": "Paris is in France.",
                "question": "Where is Paris?",
                "answers": {"text": ["France"], "answer_start": [12]},
            }
        ],
        "xcsqa": [
            {
                "id": "b",
                "lang": lang,
                "question": {
                    "stem": "Birds can?",
                    "choices": {
                        "label": list("ABCDE"),
                        "text": ["fly", "swim", "run", "eat", "sleep"],
                    },
                },
                "answerKey": "A",
            }
        ],
        "xlsum": [{"id": "c", "url": "u", "title": "T", "summary": "S.", "text": "A text."}],
    }[task]


KEYS = {"mgsm": "mgsm", "xquad": "xquad", "xcsqa": "xcsr", "xlsum": "xlsum"}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every load_dataset call lm-eval makes; answer with real rows of the task."""
    calls: list[dict[str, Any]] = []

    def fake_load_dataset(
        path: str, name: str | None = None, **kwargs: Any
    ) -> datasets.DatasetDict:
        calls.append({"path": path, "name": name, **kwargs})
        where = f"{path} {kwargs.get('data_files')}"
        task = next(t for t, key in KEYS.items() if key in where)
        split = BENCHMARKS[task].split
        return datasets.DatasetDict({split: datasets.Dataset.from_list(_rows(task, "en"))})

    monkeypatch.setattr(lm_eval.api.task.datasets, "load_dataset", fake_load_dataset)
    return calls


def _load_tasks(tmp_path: Path, specs: list[dict[str, Any]]) -> dict[str, Any]:
    write_task_dir(specs, tmp_path / "tasks")
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    return manager.load([TaskSpec.from_config(s).name for s in specs])["tasks"]


def test_default_sources_are_the_ones_that_load():
    assert hf_source(TaskSpec.from_config({"task": "mgsm", "lang": "zh"})) == (
        "juletxara/mgsm",
        "zh",
        None,
    )
    assert hf_source(TaskSpec.from_config({"task": "xquad", "lang": "de"})) == (
        "google/xquad",
        "xquad.de",
        None,
    )
    assert hf_source(TaskSpec.from_config({"task": "xcsqa", "lang": "fr"})) == (
        "INK-USC/xcsr",
        "X-CSQA-fr",
        PARQUET_EXPORT,
    )
    assert hf_source(TaskSpec.from_config({"task": "xlsum", "lang": "zh"})) == (
        "csebuetnlp/xlsum",
        "chinese_simplified",
        PARQUET_EXPORT,
    )


def test_lm_eval_receives_the_revision_and_export_files(tmp_path, recorded):
    specs = [
        {"task": "mgsm", "lang": "en"},  # main branch: no revision key at all
        {"task": "xquad", "lang": "en", "hf_revision": "0123abcd" * 5},  # a pinned commit
        {"task": "xcsqa", "lang": "en"},  # default: the parquet export, read by URL
        {"task": "xlsum", "lang": "en", "hf_revision": "main", "hf_dataset": "my/xlsum-mirror"},
    ]
    tasks = _load_tasks(tmp_path, specs)
    assert set(tasks) == {TaskSpec.from_config(s).name for s in specs}
    by_path = {
        c["path"] if c["path"] != "parquet" else c["data_files"]["validation"]: c for c in recorded
    }
    assert "revision" not in by_path["juletxara/mgsm"]
    assert by_path["juletxara/mgsm"]["name"] == "en"
    assert by_path["google/xquad"]["revision"] == "0123abcd" * 5
    assert by_path["google/xquad"]["name"] == "xquad.en"
    export = "hf://datasets/INK-USC/xcsr@refs%2Fconvert%2Fparquet/X-CSQA-en/validation/*.parquet"
    assert by_path[export]["name"] is None and "revision" not in by_path[export]
    assert by_path["my/xlsum-mirror"] == {
        "path": "my/xlsum-mirror",
        "name": "english",
        "revision": "main",
    }
    # every task really built its documents from the rows it was given
    for task in tasks.values():
        assert len(list(task.eval_docs)) >= 1


def test_the_export_branch_layout_needs_data_files(tmp_path):
    """Why the export is read by URL: its <config>/<split>/ folders carry no dataset card, so
    load_dataset(name=config) finds only a 'default' config mixing every language."""
    for lang in ("en", "de"):
        folder = tmp_path / "export" / f"X-CSQA-{lang}" / "validation"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"id": [f"{lang}1", f"{lang}2"]}), folder / "0000.parquet")
    with pytest.raises(ValueError, match="X-CSQA-en"):
        datasets.load_dataset(str(tmp_path / "export"), name="X-CSQA-en")
    mixed = datasets.load_dataset(str(tmp_path / "export"))["validation"]["id"]
    assert sorted(mixed) == ["de1", "de2", "en1", "en2"]
    pattern = str(tmp_path / "export" / "X-CSQA-en" / "validation" / "*.parquet")
    one = datasets.load_dataset("parquet", data_files={"validation": pattern})["validation"]
    assert list(one["id"]) == ["en1", "en2"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_local_override_loads_through_datasets(tmp_path, suffix, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    rows = _rows("xcsqa", "de")
    path = tmp_path / f"xcsqa_de{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    spec = {"task": "xcsqa", "lang": "de", "source": "local", "path": str(path)}
    cfg = yaml.safe_load(render_task_yaml(TaskSpec.from_config(spec)).split("process_docs")[0])
    assert cfg["dataset_path"] == ("json" if suffix == ".jsonl" else "parquet")
    assert cfg["dataset_kwargs"]["data_files"] == {"validation": str(path.resolve())}
    (task,) = _load_tasks(tmp_path, [spec]).values()
    docs = list(task.eval_docs)
    assert [d["id"] for d in docs] == [r["id"] for r in rows]


def test_unknown_local_format_is_one_line():
    with pytest.raises(MworkError, match="neither JSONL nor parquet"):
        TaskSpec.from_config({"task": "mgsm", "lang": "en", "source": "local", "path": "x.csv"})


def test_script_error_becomes_one_line(tmp_path, monkeypatch):
    def refuse(path: str, name: str | None = None, **kwargs: Any) -> None:
        raise RuntimeError("Dataset scripts are no longer supported, but found xcsr.py")

    monkeypatch.setattr(lm_eval.api.task.datasets, "load_dataset", refuse)
    tok = train_tokenizer(["a b c d e f g"] * 5, vocab_size=300)
    model = tiny_model("llama", vocab_size=len(tok))
    with pytest.raises(MworkError) as info:
        evaluate_tasks(model, tok, [{"task": "xcsqa", "lang": "en", "hf_revision": "main"}], None)
    text = str(info.value)
    assert "\n" not in text and "xcsr.py" in text and "INK-USC/xcsr@main" in text
    assert PARQUET_EXPORT in text and "hf_revision" in text
    other = dataset_script_error(RuntimeError("boom"), [])
    assert other is None
