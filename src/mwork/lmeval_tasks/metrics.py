"""Pure metric functions for the deactivation experiments (no lm-eval, no transformers imports).

* QA (XQuAD): SQuAD-style normalisation that also works for scripts without spaces. Han and
  Japanese kana characters are split into single-character tokens, so F1 is a character-level
  F1 for Chinese instead of collapsing to exact match (google-research/xtreme#28). English
  additionally drops the articles a/an/the, as SQuAD's evaluation script does.
* `qa_contains`: the gold answer (normalised) occurs as a contiguous token run in the normalised
  generation: the paper's XQuAD "accuracy" for free-form generations.
* ROUGE-L with `MultilingualRougeTokenizer`: rouge_score's default tokenizer keeps only [a-z0-9],
  which scores 0 on Chinese, Russian, Arabic, ... This one keeps letters, marks and digits of every
  script, lowercases, and splits CJK into characters.
* Scripts written without spaces between words: Thai runs are segmented into words with
  PyThaiNLP's dictionary-based `newmm` tokenizer (pinned; measured choice, see
  tests/unit/test_metrics_thai.py and the README: on real Thai paraphrases word-level ROUGE-L
  tracks meaning, while character-level scores unrelated Thai sentences ~0.3 because a few dozen
  letters and vowel marks recur everywhere). Lao and Khmer, with no maintained segmenter pinned,
  fall back to grapheme clusters (a base letter with its combining marks), the analogue of the
  character-level CJK treatment.
* `extract_mgsm_number`: the answer extraction of the paper's released MGSM script: the last
  number after `#### `, otherwise the last number in the output, truncated to int.

All scores are in [0, 1].
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING

from pythainlp.tokenize import word_tokenize as _thai_words

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_ARTICLES_EN = re.compile(r"\b(a|an|the)\b")
_HASH_ANSWER = re.compile(r"####\s(.+)")
# digits with optional thousands separators and an optional decimal part
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def is_cjk(char: str) -> bool:
    """True for Han ideographs, Japanese kana, Hangul syllables and CJK compatibility forms."""
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF  # CJK Unified Ideographs
        or 0x3400 <= cp <= 0x4DBF  # Extension A
        or 0x20000 <= cp <= 0x2FA1F  # Extensions B.. and compatibility supplement
        or 0xF900 <= cp <= 0xFAFF  # Compatibility Ideographs
        or 0x3040 <= cp <= 0x30FF  # Hiragana, Katakana
        or 0x31F0 <= cp <= 0x31FF  # Katakana phonetic extensions
        or 0xAC00 <= cp <= 0xD7AF  # Hangul syllables
    )


def is_thai(char: str) -> bool:
    """True for the Thai block (U+0E00-U+0E7F)."""
    return 0x0E00 <= ord(char) <= 0x0E7F


def is_cluster_script(char: str) -> bool:
    """True for Lao and Khmer (no spaces between words; segmented into grapheme clusters)."""
    cp = ord(char)
    return 0x0E80 <= cp <= 0x0EFF or 0x1780 <= cp <= 0x17FF or 0x19E0 <= cp <= 0x19FF


def _clusters(run: str) -> list[str]:
    """Grapheme clusters of a run: each base character with the combining marks after it."""
    out: list[str] = []
    for ch in run:
        if out and unicodedata.category(ch).startswith("M"):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def segment_word(word: str) -> list[str]:
    """Split one space-free word: CJK into characters, Thai into newmm words, Lao/Khmer into
    grapheme clusters; other scripts' runs stay whole."""
    tokens: list[str] = []
    buf, kind = "", None

    def flush() -> None:
        if not buf:
            return
        if kind == "thai":
            tokens.extend(
                t for t in _thai_words(buf, engine="newmm", keep_whitespace=False) if t.strip()
            )
        elif kind == "cluster":
            tokens.extend(_clusters(buf))
        else:
            tokens.append(buf)

    for ch in word:
        if is_cjk(ch):
            flush()
            buf, kind = "", None
            tokens.append(ch)
            continue
        # combining marks stay with the run they follow
        now = (
            kind
            if unicodedata.category(ch).startswith("M") and buf
            else ("thai" if is_thai(ch) else "cluster" if is_cluster_script(ch) else "plain")
        )
        if now != kind:
            flush()
            buf, kind = "", now
        buf += ch
    flush()
    return tokens


def _is_punct(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def normalize_answer(text: str, lang: str = "en") -> str:
    """SQuAD normalisation for any script.

    Lowercases (after NFKC), replaces punctuation (ASCII and Unicode P*) by spaces, drops the
    English articles when `lang == "en"`, and collapses whitespace.

    Args:
        text: an answer or a prediction.
        lang: ISO code of the language; only "en" changes the result (article removal).
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if _is_punct(ch) else ch for ch in text)
    if lang == "en":
        text = _ARTICLES_EN.sub(" ", text)
    return " ".join(text.split())


def qa_tokens(text: str, lang: str = "en") -> list[str]:
    """Normalised tokens: whitespace words, CJK characters, Thai words, Lao/Khmer clusters."""
    tokens: list[str] = []
    for word in normalize_answer(text, lang).split():
        tokens.extend(segment_word(word))
    return tokens


def _as_list(golds: str | Sequence[str]) -> list[str]:
    return [golds] if isinstance(golds, str) else list(golds)


def qa_exact_match(prediction: str, golds: str | Sequence[str], lang: str = "en") -> float:
    """1.0 if the prediction's normalised tokens equal those of any gold answer, else 0.0."""
    pred = qa_tokens(prediction, lang)
    return float(any(pred == qa_tokens(g, lang) for g in _as_list(golds)))


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def qa_f1(prediction: str, golds: str | Sequence[str], lang: str = "en") -> float:
    """Bag-of-tokens F1 (CJK by character), maximised over the gold answers."""
    pred = qa_tokens(prediction, lang)
    return max((_f1(pred, qa_tokens(g, lang)) for g in _as_list(golds)), default=0.0)


def qa_contains(prediction: str, golds: str | Sequence[str], lang: str = "en") -> float:
    """1.0 if some non-empty normalised gold answer is a contiguous token run of the prediction."""
    pred = qa_tokens(prediction, lang)
    for gold in _as_list(golds):
        g = qa_tokens(gold, lang)
        if g and any(pred[i : i + len(g)] == g for i in range(len(pred) - len(g) + 1)):
            return 1.0
    return 0.0


class MultilingualRougeTokenizer:
    """A `rouge_score` tokenizer for every script.

    Lowercases (NFKC first), splits CJK into single characters, and keeps maximal runs of letters,
    combining marks and digits of any script as words (so Cyrillic, Arabic and Devanagari words
    survive, including their vowel marks); runs of Thai are segmented into words (PyThaiNLP
    newmm) and Lao/Khmer into grapheme clusters (`segment_word`). Everything else separates tokens.
    """

    def tokenize(self, text: str) -> list[str]:
        """Split `text` into lowercase tokens (the method rouge_score calls)."""
        tokens: list[str] = []
        buf: list[str] = []
        for ch in unicodedata.normalize("NFKC", text).lower():
            if is_cjk(ch):
                if buf:
                    tokens.append("".join(buf))
                    buf = []
                tokens.append(ch)
            elif unicodedata.category(ch)[0] in "LMN":
                buf.append(ch)
            elif buf:
                tokens.extend(segment_word("".join(buf)))
                buf = []
        if buf:
            tokens.extend(segment_word("".join(buf)))
        return tokens


_SCORERS: dict[tuple[str, ...], object] = {}


def rouge_scores(
    prediction: str, reference: str, types: Iterable[str] = ("rouge1", "rouge2", "rougeL")
) -> dict[str, float]:
    """ROUGE F-measures (no stemming) with `MultilingualRougeTokenizer`.

    Args:
        prediction: the generated summary.
        reference: the gold summary.
        types: rouge_score rouge types.

    Returns:
        {type: F-measure in [0, 1]}.
    """
    from rouge_score import rouge_scorer

    key = tuple(types)
    if key not in _SCORERS:
        _SCORERS[key] = rouge_scorer.RougeScorer(list(key), tokenizer=MultilingualRougeTokenizer())
    scores = _SCORERS[key].score(reference, prediction)  # type: ignore[attr-defined]
    return {name: float(s.fmeasure) for name, s in scores.items()}


def _last_number(text: str) -> int | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    return int(float(found[-1].replace(",", "")))


def extract_mgsm_number(generation: str) -> int | None:
    """The predicted MGSM answer, as the paper's released script extracts it.

    If the generation has a `####` followed by whitespace, the last number of the rest of that
    line (None if it holds none, as in the script); otherwise the last number of the generation.
    Thousands separators are dropped and decimals truncated to int (the script compares
    `int(prediction) == answer_number`). Unlike the script, a leading minus sign is kept and
    numbers with several thousands separators (1,234,567) are read whole.

    Returns:
        The integer, or None when the generation contains no number.
    """
    match = _HASH_ANSWER.search(generation)
    if match is not None:
        return _last_number(match.group(1))
    return _last_number(generation)


def mgsm_correct(generation: str, answer_number: float | int | str) -> float:
    """1.0 if `extract_mgsm_number(generation)` equals `int(answer_number)`, else 0.0."""
    predicted = extract_mgsm_number(generation)
    return float(predicted is not None and predicted == int(float(answer_number)))
