"""MGSM (juletxara/mgsm): lm-eval hooks. Paper scoring: the number extracted from the generation."""

from __future__ import annotations

import string
from typing import Any

from mwork.lmeval_tasks.hooks import generation
from mwork.lmeval_tasks.metrics import mgsm_correct

_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """MGSM `acc`: the paper's number extraction on the generation equals `answer_number`."""
    return {"acc": mgsm_correct(generation(results), doc["answer_number"])}


def _upstream_exact_match(prediction: str, target: str) -> float:
    """lm-eval's exact_match with ignore_case and ignore_punctuation (its MGSM settings)."""
    norm = [s.lower().translate(_PUNCT_TABLE) for s in (prediction, target)]
    return float(norm[0] == norm[1])


def process_results_upstream(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """MGSM `acc` (paper extraction) and upstream `exact_match` against str(answer_number)."""
    text = generation(results)
    return {
        "acc": mgsm_correct(text, doc["answer_number"]),
        "exact_match": _upstream_exact_match(text, str(doc["answer_number"])),
    }
