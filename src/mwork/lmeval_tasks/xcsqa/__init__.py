"""X-CSQA (INK-USC/xcsr): lm-eval hooks for the five-way multiple choice, and its three traps.

1. Only the validation (dev) split has labels: in the `test` split every `answerKey` is empty.
   `check_labels` refuses such rows with one line (every item would score as wrong otherwise).
   When: a `source: local` file is read by `check_local_labels` before the model loads (the
   evaluation job, and `mwork plan` / the workflow's start-up through `mwork.configcheck`);
   `source: hf` rows (the validation split unless `hf_revision`/`hf_name` say otherwise) are
   only seen once lm-eval downloads them, so `process_docs_<lang>` checks them again, after
   the model load (one line as well, nothing written).
2. Some rows have an empty option text (German has several). lm-eval scores the log-likelihood
   of each option as a continuation; an empty continuation has log-likelihood 0, above every real
   option, so the empty option "wins" under `acc`. `process_docs_<lang>` drops those rows before
   scoring; `record_dropped` writes their count and ids into the run JSON (`dropped_items`).
3. The options are permuted per language (the answer letter of one question differs between
   languages), so items of two languages pair by `id`, never by position: `item_ids` refuses rows
   without unique ids, which is what the score table keys items by (`mwork.scores`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mwork.errors import MworkError
from mwork.lmeval_tasks.hooks import parametrised, sample_docs

if TYPE_CHECKING:
    from mwork.lmeval_tasks.spec import TaskSpec

log = logging.getLogger("mwork.lmeval_tasks.xcsqa")

DROP_REASON = "empty option text (log-likelihood 0 would win under acc)"
_DROPPED: dict[str, list[str]] = {}  # language -> ids dropped by the last process_docs_<lang>


def choice_texts(doc: dict[str, Any]) -> list[str]:
    """The five answer texts (variant "paper")."""
    return list(doc["question"]["choices"]["text"])


def choice_labels(doc: dict[str, Any]) -> list[str]:
    """The five option letters A-E (variant "letters")."""
    return list(doc["question"]["choices"]["label"])


def gold(doc: dict[str, Any]) -> int:
    """Index of `answerKey` among the option labels."""
    return list(doc["question"]["choices"]["label"]).index(doc["answerKey"])


def check_labels(rows: Iterable[Mapping[str, Any]], lang: str = "?") -> None:
    """Raise MworkError when no row has an `answerKey` (X-CSQA's unlabelled test split)."""
    keys = [str(r.get("answerKey") or "").strip() for r in rows]
    if keys and not any(keys):
        raise MworkError(
            f"X-CSQA ({lang}): none of the {len(keys)} rows has an answerKey (the test split's "
            "labels are hidden)",
            "score the validation (dev) split, as the paper does",
        )


def local_answer_keys(path: str | Path) -> list[Any]:
    """The `answerKey` of every row of a local X-CSQA file, read as lm-eval's builders read it:
    JSON lines (`.jsonl`, or a `.json` that is not one array), a JSON array, or parquet (that
    column only). A row without the key gives None."""
    path = Path(path).expanduser()
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq  # datasets' dependency; only the one column is read

            names = pq.read_schema(path).names
            if "answerKey" not in names:
                return [None] * pq.read_metadata(path).num_rows
            return pq.read_table(path, columns=["answerKey"]).column("answerKey").to_pylist()
        text = path.read_text(encoding="utf-8")
        whole = text.lstrip().startswith("[") and path.suffix.lower() == ".json"
        rows = (
            json.loads(text) if whole else [json.loads(l) for l in text.splitlines() if l.strip()]
        )
    except (OSError, ValueError) as err:
        raise MworkError(
            f"X-CSQA: cannot read local data file {path} ({err})",
            "give JSON lines, a JSON array or parquet in the HF schema",
        ) from None
    return [r.get("answerKey") if isinstance(r, Mapping) else None for r in rows]


def check_local_labels(spec: TaskSpec) -> None:
    """Refuse (MworkError, one line) an X-CSQA `source: local` file whose rows have no
    `answerKey` at all, before any model loads; other tasks and `source: hf` pass (their rows
    are checked by `process_docs_<lang>` once lm-eval has them)."""
    if spec.task != "xcsqa" or spec.source != "local" or not spec.path:
        return
    if not Path(spec.path).expanduser().is_file():
        raise MworkError(f"{spec.name}: data file {spec.path} does not exist", "fix 'path'")
    keys = local_answer_keys(spec.path)
    check_labels(({"answerKey": k} for k in keys), f"{spec.lang}, {spec.path}")


def has_empty_option(doc: Mapping[str, Any]) -> bool:
    """True when an option text is empty or blank (it would win under log-likelihood acc)."""
    return any(not str(t or "").strip() for t in doc["question"]["choices"]["text"])


def item_ids(rows: Iterable[Mapping[str, Any]], lang: str = "?") -> list[str]:
    """The rows' ids, which pair items across languages (never positions: options and row order
    differ per language); MworkError if an id is missing or repeated."""
    ids = [str(r.get("id") or "") for r in rows]
    if not all(ids) or len(set(ids)) != len(ids):
        raise MworkError(
            f"X-CSQA ({lang}): rows need unique ids to be paired across languages",
            "keep the dataset's `id` field in every row",
        )
    return ids


def _process_docs(match: re.Match[str]):  # -> Callable[[datasets.Dataset], datasets.Dataset]
    """`process_docs_<lang>[_n<N>_seed<S>]`: the checks, the drop, then the seeded sample."""
    lang = match[1]
    n, seed = (int(match[2]), int(match[3])) if match[2] else (None, 0)

    def process_docs(dataset: Any) -> Any:
        rows = list(dataset)
        check_labels(rows, lang)
        item_ids(rows, lang)
        dropped = [str(r["id"]) for r in rows if has_empty_option(r)]
        _DROPPED[lang] = dropped
        if dropped:
            log.warning("X-CSQA %s: dropped %d items with an %s", lang, len(dropped), DROP_REASON)
            dataset = dataset.filter(lambda r: not has_empty_option(r))
        return dataset if n is None else sample_docs(dataset, n, seed)

    return process_docs


def dropped_items(lang: str) -> dict[str, Any]:
    """What the last `process_docs_<lang>` dropped: {"reason", "n", "ids"}."""
    ids = _DROPPED.get(lang, [])
    return {"reason": DROP_REASON, "n": len(ids), "ids": list(ids)}


def record_dropped(tasks: MutableMapping[str, Any]) -> None:
    """Add `dropped_items` to every X-CSQA task entry of an lm-eval result (`mwork.harness`)."""
    for entry in tasks.values():
        if entry["spec"]["task"] == "xcsqa":
            entry["dropped_items"] = dropped_items(entry["spec"]["lang"])


__getattr__ = parametrised(
    __name__, r"process_docs_([a-z]{2,3})(?:_n(\d+)_seed(\d+))?$", _process_docs
)
