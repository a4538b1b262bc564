"""X-CSQA (INK-USC/xcsr): lm-eval hooks for the five-way multiple choice."""

from __future__ import annotations

from typing import Any


def choice_texts(doc: dict[str, Any]) -> list[str]:
    """The five answer texts (variant "paper")."""
    return list(doc["question"]["choices"]["text"])


def choice_labels(doc: dict[str, Any]) -> list[str]:
    """The five option letters A-E (variant "letters")."""
    return list(doc["question"]["choices"]["label"])


def gold(doc: dict[str, Any]) -> int:
    """Index of `answerKey` among the option labels."""
    return list(doc["question"]["choices"]["label"]).index(doc["answerKey"])
