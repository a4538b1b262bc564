"""Output-language fidelity: is a generated answer in the query's language? (torch-free)

MWork's third stage says the last layers turn the answer into the query's language, and D_G
(deactivating generation-layer neurons) should break exactly that. Accuracy and ROUGE cannot tell
"answered wrongly" from "answered correctly in English"; peers call this failure *language
confusion* (Sterz et al. 2025, ReCoVeR; Nie et al. 2025; both on Marchisio et al.'s 2024 Language
Confusion Benchmark). Per generated item this
module identifies the language of the raw generation (the `prediction` an evaluation JSON stores
for MGSM, XQuAD and XLSum) with the lens's offline LID (`mwork.lid`, same backends and candidate
languages), and scores it

    fidelity = 1 if the identified language is the query's (eval_lang), else 0

as one more per-item metric (`FIDELITY`) beside the task's own, so the tables' paired bootstrap
gives its CIs and deltas unchanged. Text-level rules (documented choices):

* a generation with fewer than `min_letters` letters (empty, digits only) is *undetermined*:
  output language "", fidelity 0;
* mixed scripts: the script of most letters decides when it alone names a candidate (Han -> zh,
  Cyrillic -> ru, ...); otherwise the backend sees the text;
* a whole text takes the backend's top candidate even below the token reliability threshold
  (`min_prob` is meant for single tokens; a sentence's best guess is the classification).

Where it runs: every evaluation job identifies its own generations (`record_output_languages`,
called by `mwork.evaluate.evaluate_job`) and stores them per item in the run JSON
(`items["output_lang"]`, aligned with `items["prediction"]`), with the identifier that produced
them in the run entry (`"fidelity": OutputLanguage.describe()`). `mwork.scores` reads them back
and identifies only the generations of JSONs without them (older runs) or with another identifier
than the study's (`same_identifier`), from their stored predictions.
`language_rows(...)` is the per-item record (`LANGUAGE_COLUMNS`) written beside scores.csv.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from functools import cached_property
from typing import Any

from mwork.errors import MworkError
from mwork.lid import BACKENDS, SCRIPT_LANGS, TokenLanguageIdentifier, letters, script_of

__all__ = [
    "FIDELITY",
    "LANGUAGE_COLUMNS",
    "OutputLanguage",
    "language_rows",
    "record_output_languages",
    "same_identifier",
]

FIDELITY = "fidelity"  # the metric name of the fidelity rows in scores.csv and the tables
LANGUAGE_COLUMNS = ("model", "condition", "mask_lang", "task", "eval_lang", "seed", "item_id")
LANGUAGE_COLUMNS += ("output_lang",)


class OutputLanguage:
    """Language of a whole generated text among candidate languages ("" = undetermined).

    The backend is built on first use (`ident`; `build()` forces it): constructing one costs
    nothing, so a job or a `collect_scores` that finds nothing to identify never loads it.

    Args:
        candidates: ISO 639-1 codes (the study's languages).
        backend: `mwork.lid` backend (the lens's `figures.lens.lid_backend`).
        min_letters: fewer letters -> undetermined.
    """

    def __init__(
        self, candidates: Sequence[str], backend: str = "lingua", min_letters: int = 2
    ) -> None:
        if backend not in BACKENDS:
            raise MworkError(
                f"unknown LID backend {backend!r}", f"choose one of {', '.join(BACKENDS)}"
            )
        self.candidates = tuple(dict.fromkeys(candidates))
        if not self.candidates:
            raise MworkError(
                "no candidate languages for output-language identification",
                "pass the study's languages",
            )
        self.backend = backend
        self.min_letters = int(min_letters)
        self._by_script = {s: l for s, l in SCRIPT_LANGS.items() if l in self.candidates}
        self._cache: dict[str, str] = {}

    @cached_property
    def ident(self) -> TokenLanguageIdentifier:
        """The backend, built on first use (lingua loads its language models on first text)."""
        # min_prob 0: the top candidate counts (see the module docstring); no script shortcut
        # inside the identifier, so mixed-script text is decided here by majority
        return TokenLanguageIdentifier(
            self.candidates, self.backend, 0.0, self.min_letters, script_shortcut=False
        )

    def build(self) -> OutputLanguage:
        """Build the backend now (refuses a missing package or too few candidates early)."""
        _ = self.ident
        return self

    def describe(self) -> dict[str, Any]:
        """What identifies (stored in each run entry as `fidelity`): backend, candidates,
        min_letters."""
        return {
            "backend": self.backend,
            "candidates": list(self.candidates),
            "min_letters": self.min_letters,
        }

    def __call__(self, text: str | None) -> str:
        """The language of `text`, or "" when it cannot be told (cached per distinct text)."""
        text = (text or "").strip()
        hit = self._cache.get(text)
        if hit is None:
            hit = self._cache[text] = self._language(text)
        return hit

    def _language(self, text: str) -> str:
        chars = letters(text)
        scripts = Counter(script_of(ch) for ch in chars)
        if len(chars) + scripts["Han"] < self.min_letters:
            return ""
        script, _ = scripts.most_common(1)[0]
        if script in self._by_script:
            return self._by_script[script]
        lang, _ = self.ident.identify(text)
        return lang or ""


def same_identifier(record: Mapping[str, Any] | None, lid: OutputLanguage) -> bool:
    """True when a run entry's `fidelity` record names `lid`'s identifier (candidates as a set:
    their order changes no answer)."""
    if not isinstance(record, Mapping):
        return False
    want = lid.describe()
    return (
        record.get("backend") == want["backend"]
        and record.get("min_letters") == want["min_letters"]
        and sorted(record.get("candidates") or []) == sorted(want["candidates"])
    )


def record_output_languages(tasks: MutableMapping[str, Any], lid: OutputLanguage) -> bool:
    """Add `items["output_lang"]` (one language per item, "" = undetermined) to every task entry
    of an lm-eval result (`mwork.harness`) that stored generations; True if any had one."""
    found = False
    for entry in tasks.values():
        predictions = entry["items"].get("prediction")
        if predictions is not None:
            entry["items"]["output_lang"] = [lid(p) for p in predictions]
            found = True
    return found


def language_rows(
    entry: Mapping[str, Any], task: Mapping[str, Any], item_ids: Sequence[str], langs: Sequence[str]
) -> list[dict[str, Any]]:
    """`LANGUAGE_COLUMNS` rows of one task of one run entry of an evaluation JSON."""
    seed = -1 if entry.get("seed") is None else int(entry["seed"])
    return [
        {
            "model": entry["model"],
            "condition": entry["condition"],
            "mask_lang": entry["mask_lang"],
            "task": task["spec"]["task"],
            "eval_lang": task["spec"]["lang"],
            "seed": seed,
            "item_id": item,
            "output_lang": lang,
        }
        for item, lang in zip(item_ids, langs, strict=True)
    ]
