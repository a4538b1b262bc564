"""XL-Sum (csebuetnlp/xlsum): lm-eval hooks. ROUGE under a script-aware tokenizer."""

from __future__ import annotations

from typing import Any

from mwork.lmeval_tasks.hooks import first_line, generation
from mwork.lmeval_tasks.metrics import rouge_scores


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """ROUGE-1/2/L F-measures of the first non-empty generated line against the gold summary."""
    return rouge_scores(first_line(generation(results)), doc["summary"])
