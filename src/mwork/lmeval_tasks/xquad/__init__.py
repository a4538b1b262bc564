"""XQuAD (google/xquad): lm-eval hooks. `process_results_<lang>` scores with `<lang>`'s
normalisation (English drops articles, CJK is split into characters), e.g. `process_results_zh`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mwork.lmeval_tasks.hooks import first_line, generation, parametrised
from mwork.lmeval_tasks.metrics import qa_contains, qa_exact_match, qa_f1


def process_results(doc: dict[str, Any], results: list[Any], lang: str = "en") -> dict[str, float]:
    """XQuAD exact_match, f1 and contains of the first non-empty generated line."""
    prediction = first_line(generation(results))
    golds = list(doc["answers"]["text"])
    return {
        "exact_match": qa_exact_match(prediction, golds, lang),
        "f1": qa_f1(prediction, golds, lang),
        "contains": qa_contains(prediction, golds, lang),
    }


def _for_lang(match: re.Match[str]) -> Callable[..., dict[str, float]]:
    lang = match.group(1)
    return lambda doc, results: process_results(doc, results, lang)


__getattr__ = parametrised(__name__, r"process_results_([a-z]{2,3})$", _for_lang)
