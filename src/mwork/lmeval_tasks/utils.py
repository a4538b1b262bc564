"""lm-eval hook functions (process_results, doc_to_choice, process_docs) of the mwork tasks.

Referenced from YAML as `!function mwork.lmeval_tasks.utils.<name>`. Two families of names are
parametrised and resolved on attribute access (PEP 562 module `__getattr__`), because lm-eval calls
these hooks with fixed arguments only:

* `xquad_process_results_<lang>`: XQuAD scoring with `<lang>`'s normalisation (English drops
  articles); e.g. `xquad_process_results_zh`.
* `sample_docs_n<N>_seed<S>`: a process_docs that keeps a seeded random sample of N documents
  (all of them, reordered by index, when there are fewer); e.g. `sample_docs_n500_seed0`.
"""

from __future__ import annotations

import random
import re
import string
from typing import TYPE_CHECKING, Any

from mwork.metrics import mgsm_correct, qa_contains, qa_exact_match, qa_f1, rouge_scores

if TYPE_CHECKING:
    from collections.abc import Callable

_XQUAD_RESULTS = re.compile(r"xquad_process_results_([a-z]{2,3})$")
_SAMPLE_DOCS = re.compile(r"sample_docs_n(\d+)_seed(\d+)$")
_RESOLVED: dict[str, Callable[..., Any]] = {}
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def _generation(results: list[Any]) -> str:
    """The (filtered) generation of one document; lm-eval passes a one-element list."""
    resp = results[0] if results else ""
    return resp if isinstance(resp, str) else ""


def first_line(text: str) -> str:
    """The first non-empty line of `text`, stripped (answers and summaries are one line)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def mgsm_process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """MGSM `acc`: the paper's number extraction on the generation equals `answer_number`."""
    return {"acc": mgsm_correct(_generation(results), doc["answer_number"])}


def _upstream_exact_match(prediction: str, target: str) -> float:
    """lm-eval's exact_match with ignore_case and ignore_punctuation (its MGSM settings)."""
    norm = [s.lower().translate(_PUNCT_TABLE) for s in (prediction, target)]
    return float(norm[0] == norm[1])


def mgsm_process_results_upstream(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """MGSM `acc` (paper extraction) and upstream `exact_match` against str(answer_number)."""
    generation = _generation(results)
    return {
        "acc": mgsm_correct(generation, doc["answer_number"]),
        "exact_match": _upstream_exact_match(generation, str(doc["answer_number"])),
    }


def xquad_process_results(
    doc: dict[str, Any], results: list[Any], lang: str = "en"
) -> dict[str, float]:
    """XQuAD exact_match, f1 and contains of the first non-empty generated line."""
    prediction = first_line(_generation(results))
    golds = list(doc["answers"]["text"])
    return {
        "exact_match": qa_exact_match(prediction, golds, lang),
        "f1": qa_f1(prediction, golds, lang),
        "contains": qa_contains(prediction, golds, lang),
    }


def xlsum_process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """ROUGE-1/2/L F-measures of the first non-empty generated line against the gold summary."""
    return rouge_scores(first_line(_generation(results)), doc["summary"])


def xcsqa_choice_texts(doc: dict[str, Any]) -> list[str]:
    """The five answer texts (variant "paper")."""
    return list(doc["question"]["choices"]["text"])


def xcsqa_choice_labels(doc: dict[str, Any]) -> list[str]:
    """The five option letters A-E (variant "letters")."""
    return list(doc["question"]["choices"]["label"])


def xcsqa_gold(doc: dict[str, Any]) -> int:
    """Index of `answerKey` among the option labels."""
    return list(doc["question"]["choices"]["label"]).index(doc["answerKey"])


def sample_docs(dataset: Any, n: int, seed: int) -> Any:
    """A seeded sample of `n` rows of a `datasets.Dataset`, kept in dataset order.

    Uses Python's `random.Random(seed).sample` over row indices, which is stable across
    Python and datasets versions.
    """
    k = min(n, len(dataset))
    indices = sorted(random.Random(seed).sample(range(len(dataset)), k))
    return dataset.select(indices)


def _named(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    _RESOLVED[name] = fn
    return fn


def __getattr__(name: str) -> Callable[..., Any]:
    """Resolve the parametrised hook names described in the module docstring."""
    if name in _RESOLVED:
        return _RESOLVED[name]
    if match := _XQUAD_RESULTS.match(name):
        lang = match.group(1)

        def xquad_for_lang(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
            return xquad_process_results(doc, results, lang)

        return _named(xquad_for_lang, name)
    if match := _SAMPLE_DOCS.match(name):
        n, seed = int(match.group(1)), int(match.group(2))

        def sample(dataset: Any) -> Any:
            return sample_docs(dataset, n, seed)

        return _named(sample, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
