"""Demo benchmarks as rows in the real datasets' schemas (exactly their fields, nothing more).

    mgsm   juletxara/mgsm         question, answer, answer_number, equation_solution
    xquad  google/xquad           id, context, question, answers{text, answer_start}
    xcsqa  INK-USC/xcsr (X-CSQA)  id, lang, question{stem, choices{label, text}}, answerKey
    xlsum  csebuetnlp/xlsum       id, url, title, summary, text

Items are parallel across languages: item i has the same content (and id) in every language.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from mwork.demo import examples as E
from mwork.demo.world import World

TASKS: tuple[str, ...] = ("mgsm", "xquad", "xcsqa", "xlsum")
FIELDS: dict[str, tuple[str, ...]] = {
    "mgsm": ("question", "answer", "answer_number", "equation_solution"),
    "xquad": ("id", "context", "question", "answers"),
    "xcsqa": ("id", "lang", "question", "answerKey"),
    "xlsum": ("id", "url", "title", "summary", "text"),
}
Row = dict[str, object]


def _rngs(seed: int, task: str, i: int, lang: str) -> tuple[random.Random, random.Random]:
    return random.Random(f"{seed}:bench:{task}:{i}"), random.Random(
        f"{seed}:bench:{task}:{i}:{lang}"
    )


def _hex_id(seed: int, task: str, i: int, n: int) -> str:
    return hashlib.sha256(f"{seed}:{task}:{i}".encode()).hexdigest()[:n]


def mgsm_rows(world: World, lang: str, n: int, seed: int) -> list[Row]:
    """Arithmetic word problems with worked answers."""
    rows = []
    for i in range(n):
        ex = E.math_example(world, lang, *_rngs(seed, "mgsm", i, lang))
        rows.append(
            {
                "question": ex.question,
                "answer": ex.answer,
                "answer_number": ex.number,
                "equation_solution": ex.equation,
            }
        )
    return rows


def xquad_rows(world: World, lang: str, n: int, seed: int) -> list[Row]:
    """Extractive QA over short bios; `answer_start` indexes `context`."""
    rows = []
    for i in range(n):
        ex = E.qa_example(world, lang, *_rngs(seed, "xquad", i, lang))
        rows.append(
            {
                "id": _hex_id(seed, "xquad", i, 24),
                "context": ex.context,
                "question": ex.question,
                "answers": {"text": [ex.answer], "answer_start": [ex.answer_start]},
            }
        )
    return rows


def xcsqa_rows(world: World, lang: str, n: int, seed: int) -> list[Row]:
    """Five-way multiple choice over world facts, cycling through all facts in a seeded order."""
    facts = world.facts()
    random.Random(f"{seed}:bench:xcsqa:order").shuffle(facts)
    rows = []
    for i in range(n):
        ex = E.mc_example(world, lang, *_rngs(seed, "xcsqa", i, lang), fact=facts[i % len(facts)])
        rows.append(
            {
                "id": _hex_id(seed, "xcsqa", i, 32),
                "lang": lang,
                "question": {
                    "stem": ex.question,
                    "choices": {"label": list(E.LABELS), "text": list(ex.choices)},
                },
                "answerKey": E.LABELS[ex.answer_index],
            }
        )
    return rows


def xlsum_rows(world: World, lang: str, n: int, seed: int) -> list[Row]:
    """News articles with titles and one-sentence summaries, one per world event (cycled)."""
    rows = []
    for i in range(n):
        ex = E.news_example(
            world, lang, *_rngs(seed, "xlsum", i, lang), event_index=i % len(world.events)
        )
        item_id = f"demo-{_hex_id(seed, 'xlsum', i, 8)}"
        rows.append(
            {
                "id": item_id,
                "url": f"https://demo.mwork.invalid/{lang}/news/{item_id}",
                "title": ex.title,
                "summary": ex.summary,
                "text": ex.text,
            }
        )
    return rows


BUILDERS: dict[str, Callable[[World, str, int, int], list[Row]]] = {
    "mgsm": mgsm_rows,
    "xquad": xquad_rows,
    "xcsqa": xcsqa_rows,
    "xlsum": xlsum_rows,
}
