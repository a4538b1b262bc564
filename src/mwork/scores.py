"""Evaluation result JSONs -> one tidy per-item score table (the tables' only input).

`tidy_scores` reads the JSONs written by `mwork.evaluate.evaluate_job` (schema `RESULT_SCHEMA`:
one file per evaluation job, one entry per (task, evaluated language) in its `runs`) and returns
one row per scored item in the `SCORE_COLUMNS` schema:

    model      str   model name
    condition  str   run label without the seed ("none" = baseline), e.g. D_U-n1_6.minus-en
    base_condition str  the condition alone (D_U for D_U-n1_6.minus-en; ft_ls-400; none): what
                     tables and plots group by
    variant    str   neuron-set variant: all, minus-en, minus-shared
    n1, n2     int   the label's layer-split overrides (-1: the model's own)
    mask_lang  str   language whose neurons are deactivated; "none" for the baseline
    task       str   e.g. xquad, mgsm, xcsqa, xlsum
    eval_lang  str   language the item is evaluated in
    seed       int   random-set seed for random conditions, -1 otherwise
    n_masked   int   neurons the run deactivated (`neurons.total` of the JSON; 0 for the baseline)
    metric     str   the task's primary metric (the paper's: MGSM/X-CSQA accuracy, XQuAD
                     answer containment, XLSum ROUGE-L)
    item_id    str   item identifier, the same across conditions (paired design)
    value      float per-item score in [0, 1]; tables show x100 (ROUGE-L too), as the paper

With an output-language identifier (`mwork.fidelity`), every generated item (MGSM, XQuAD, XLSum)
gets a second row with metric `fidelity`: 1.0 when its generation is in eval_lang, else 0.0.
The language is the one the evaluation job stored (`items["output_lang"]`) when the entry's
`fidelity` record names the same identifier; otherwise (JSONs from before the job stored it, or
identified with another backend or language list) it is identified here from the stored
`prediction`; the log says how many (a warning for another identifier). The languages do not
depend on the model, so identifying them here equals re-running the job; the file is not
rewritten.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mwork.atomic import write_csv
from mwork.errors import MworkError
from mwork.fidelity import (
    FIDELITY,
    LANGUAGE_COLUMNS,
    OutputLanguage,
    language_rows,
    same_identifier,
)
from mwork.runlabel import RunLabel

log = logging.getLogger(__name__)

RESULT_SCHEMA = "mwork.evaluation/2"  # written by mwork.evaluate, read here
SCORE_COLUMNS: tuple[str, ...] = (
    "model",
    "condition",
    "base_condition",
    "variant",
    "n1",
    "n2",
    "mask_lang",
    "task",
    "eval_lang",
    "seed",
    "n_masked",
    "metric",
    "item_id",
    "value",
)


def load_eval_json(path: str | Path) -> dict[str, Any]:
    """Read one evaluation job's JSON and check its schema."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MworkError(
            f"cannot read evaluation result {path} ({exc})", "re-run its evaluation job"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        raise MworkError(
            f"{path} is not an mwork evaluation result",
            f"expected schema {RESULT_SCHEMA}; re-run its evaluation job",
        )
    if not isinstance(data.get("runs"), list) or not data["runs"]:
        raise MworkError(f"{path} holds no scored runs", "re-run its evaluation job")
    return data


def label_columns(condition: str) -> dict[str, Any]:
    """The tidy label columns (base_condition, variant, n1, n2) of a score row's condition (-1:
    no override)."""
    run = RunLabel.parse(condition)
    return {
        "base_condition": run.base_condition,
        "variant": run.variant,
        "n1": -1 if run.n1 is None else run.n1,
        "n2": -1 if run.n2 is None else run.n2,
    }


PAIRED_BY_ID = ("xcsqa",)  # options and row order differ per language: items pair by id only


def _item_ids(items: dict[str, Any], task: str = "", source: str = "?") -> list[str]:
    """Dataset ids when present and unique, else lm-eval doc ids (stable for a fixed sample);
    a task of `PAIRED_BY_ID` must have the ids (a position means another item in each language)."""
    ids = items.get("id") or []
    if ids and all(i is not None for i in ids) and len(set(map(str, ids))) == len(ids):
        return [str(i) for i in ids]
    if task in PAIRED_BY_ID:
        raise MworkError(
            f"{source}: {task} items lack unique dataset ids",
            "keep the `id` field: items pair across languages and runs by id, never by position",
        )
    docs = [f"doc{d}" for d in items["doc_id"]]
    if len(set(docs)) != len(docs):  # items pair across runs by id: a repeat would mis-pair them
        raise MworkError(
            f"{source}: {task} lists an item twice (doc ids repeat)",
            "the result file is damaged or edited; re-run its evaluation job",
        )
    return docs


def run_rows(data: dict[str, Any], source: str = "?") -> list[dict[str, Any]]:
    """Tidy rows (SCORE_COLUMNS) of one run entry of a job's JSON; `source` names it in errors."""
    rows = []
    seed = -1 if data.get("seed") is None else int(data["seed"])
    label = label_columns(data["condition"])
    n_masked = int((data.get("neurons") or {}).get("total", 0))
    for name, task in data["tasks"].items():
        spec, metric_key = task["spec"], task["primary_metric"]
        values = task["items"]["scores"].get(metric_key)
        if values is None:
            raise MworkError(
                f"{source}: task {name} has no per-item '{metric_key}' scores",
                "re-run it with the current mwork",
            )
        ids = _item_ids(task["items"], spec["task"], f"{source}: {name}")
        if len(ids) != len(values):
            raise MworkError(
                f"{source}: task {name} has {len(ids)} items but {len(values)} '{metric_key}' "
                "scores",
                "the result file is damaged or edited; re-run its evaluation job",
            )
        for item_id, value in zip(ids, values, strict=True):
            if value is None or not math.isfinite(float(value)):
                raise MworkError(
                    f"{source}: task {name} item {item_id} has no {metric_key} score",
                    "check the task's process_results",
                )
            rows.append(
                {
                    "model": data["model"],
                    "condition": data["condition"],
                    **label,
                    "mask_lang": data["mask_lang"],
                    "task": spec["task"],
                    "eval_lang": spec["lang"],
                    "seed": seed,
                    "n_masked": n_masked,
                    "metric": metric_key.split(",")[0],
                    "item_id": item_id,
                    "value": float(value),
                }
            )
    return rows


def _output_langs(
    data: dict[str, Any],
    items: dict[str, Any],
    lid: OutputLanguage,
    source: str,
    counts: Counter[str] | None,
) -> list[str]:
    """The per-item output languages of one task: stored by its job when identified with `lid`'s
    identifier, else identified now from the stored predictions (`counts` tallies which)."""
    predictions, stored = items["prediction"], items.get("output_lang")
    how = "identified" if stored is None else "reidentified"
    if stored is not None and same_identifier(data.get("fidelity"), lid):
        if len(stored) != len(predictions):
            raise MworkError(
                f"{source}: {len(stored)} output languages for {len(predictions)} predictions",
                "the result file is damaged or edited; re-run its evaluation job",
            )
        how = "stored"
    if counts is not None:
        counts[how] += 1
    return list(stored) if how == "stored" else [lid(p) for p in predictions]


def fidelity_rows(
    data: dict[str, Any],
    rows: list[dict[str, Any]],
    lid: OutputLanguage,
    source: str = "?",
    counts: Counter[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(`FIDELITY` score rows, `LANGUAGE_COLUMNS` rows) of the generation tasks of one run entry.

    `rows` are the entry's task rows (`run_rows`); a fidelity row copies its item's row with
    metric `fidelity` and value 1.0 if the generation's language is the item's eval_lang, else 0.0
    (`mwork.fidelity`). Tasks without stored generations (X-CSQA: log-likelihood) get none. The
    language is the stored `output_lang` when the entry's identifier is `lid`'s, else identified
    from the prediction; `counts` tallies tasks "stored", "identified" (none stored) and
    "reidentified" (stored by another identifier).
    """
    scores, langs = [], []
    by_task = {}
    for row in rows:
        by_task.setdefault((row["task"], row["eval_lang"]), []).append(row)
    for name, task in data["tasks"].items():
        if task["items"].get("prediction") is None:
            continue
        spec = task["spec"]
        task_rows = by_task[(spec["task"], spec["lang"])]
        found = _output_langs(data, task["items"], lid, f"{source}: {name}", counts)
        ids = [r["item_id"] for r in task_rows]
        langs += language_rows(data, task, ids, found)
        scores += [
            r | {"metric": FIDELITY, "value": float(lang == spec["lang"])}
            for r, lang in zip(task_rows, found, strict=True)
        ]
    return scores, langs


def tidy_scores(paths: Iterable[str | Path], lid: OutputLanguage | None = None) -> pd.DataFrame:
    """One row per scored item over all run JSONs (columns SCORE_COLUMNS, value in [0, 1]);
    with `lid`, also a `fidelity` row per generated item (`tidy_scores_and_languages`)."""
    return tidy_scores_and_languages(paths, lid)[0]


def tidy_scores_and_languages(
    paths: Iterable[str | Path], lid: OutputLanguage | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy scores, per-item output languages `LANGUAGE_COLUMNS`; empty without `lid`)."""
    rows, langs = [], []
    counts: Counter[str] = Counter()
    for path in paths:
        for entry in load_eval_json(path)["runs"]:
            task_rows = run_rows(entry, str(path))
            rows += task_rows
            if lid is not None:
                more, found = fidelity_rows(entry, task_rows, lid, str(path), counts)
                rows += more
                langs += found
    if counts["identified"] or counts["reidentified"]:  # re-identified: the settings changed
        log.log(
            logging.WARNING if counts["reidentified"] else logging.INFO,
            "output languages: %d generation task(s) read from the run JSONs, %d identified here "
            "(stored by no job), %d re-identified (stored with another identifier than %s)",
            counts["stored"],
            counts["identified"],
            counts["reidentified"],
            lid.describe() if lid is not None else None,
        )
    return (
        pd.DataFrame(rows, columns=list(SCORE_COLUMNS)),
        pd.DataFrame(langs, columns=list(LANGUAGE_COLUMNS)),
    )


def collect_scores(
    paths: Iterable[str | Path],
    out_csv: str | Path,
    lid: OutputLanguage | None = None,
    languages_csv: str | Path | None = None,
) -> pd.DataFrame:
    """Write the tidy score table of `paths` to `out_csv` (atomically) and return it; with `lid`
    the generation tasks get fidelity rows and `languages_csv` the per-item output languages."""
    df, langs = tidy_scores_and_languages(paths, lid)
    if df.empty:
        raise MworkError(
            "no scored items in the evaluation results", "check the evaluation jobs' logs"
        )
    write_csv(out_csv, df)
    if languages_csv is not None:
        write_csv(languages_csv, langs)
    return df
