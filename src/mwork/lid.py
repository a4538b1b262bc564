"""Offline language identification of single decoded tokens (the logit lens's "which language?").

The paper (App. A) runs cld3 on every decoded token and keeps it only if `is_reliable`. cld3
(`gcld3`) needs the protobuf compiler to build, so mwork offers three interchangeable backends
behind one interface, `TokenLanguageIdentifier.identify(text) -> (lang | None, reliable)`:

    lingua  (default) lingua-language-detector 2.1.1, ships its models (96 MB). Restricted to
            the candidates; reliable = confidence >= min_prob (default 0.7).
    langid  langid.py 1.1.6, ships its model (5 MB): the light fallback. Restricted to the
            candidates; reliable = normalised probability >= min_prob (default 0.9) and the text
            has at least one known n-gram. The text is padded with spaces so word-boundary n-grams
            fire (" the " is English; "the" alone has no features and returns the prior).
    cld3    gcld3 (if it is installed): the paper's detector. Not restrictable; a guess outside
            the candidates is returned as None; reliable = cld3's own `is_reliable`.

Shared rules before any backend (documented choices, not the paper's):
    * text with fewer than `min_letters` letters (Unicode alphabetic characters; a Han character
      counts as two, being a word on its own) -> (None, False); this removes punctuation, digits,
      byte fragments ("\ufffd") and code symbols;
    * script shortcut (default on; off reproduces pure cld3): if every letter is Han -> zh,
      Cyrillic -> ru, Thai -> th, Arabic -> ar, and that language is a candidate, the answer is
      that language and reliable (one candidate per script, so the backend could only agree);
      letters of a script no candidate uses (e.g. Kana, Hangul) -> (None, False);
    * with the shortcut, mixed-script text is unreliable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

from mwork.errors import MworkError

BACKENDS: tuple[str, ...] = ("lingua", "langid", "cld3")
DEFAULT_MIN_PROB: dict[str, float] = {"lingua": 0.7, "langid": 0.9, "cld3": 0.5}
SCRIPT_LANGS: dict[str, str] = {"Han": "zh", "Cyrillic": "ru", "Thai": "th", "Arabic": "ar"}
_SCRIPT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("CJK", "Han"),
    ("LATIN", "Latin"),
    ("CYRILLIC", "Cyrillic"),
    ("THAI", "Thai"),
    ("ARABIC", "Arabic"),
    ("HIRAGANA", "Kana"),
    ("KATAKANA", "Kana"),
    ("HANGUL", "Hangul"),
    ("GREEK", "Greek"),
    ("DEVANAGARI", "Devanagari"),
    ("HEBREW", "Hebrew"),
)


@lru_cache(maxsize=65536)
def script_of(ch: str) -> str:
    """Unicode script family of one letter (coarse: from the character name), or "Other"."""
    name = unicodedata.name(ch, "")
    for prefix, script in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    return "Other"


def letters(text: str) -> list[str]:
    """The alphabetic characters of `text` (what counts toward `min_letters`)."""
    return [ch for ch in text if ch.isalpha()]


@lru_cache(maxsize=8)
def _langid_identifier(candidates: tuple[str, ...]):  # -> langid.langid.LanguageIdentifier
    """langid's model restricted to `candidates` (loading takes ~1 s, so cached)."""
    try:
        from langid.langid import LanguageIdentifier, model
    except ImportError:
        raise MworkError(
            "LID backend 'langid' is not installed", "pip install langid==1.1.6"
        ) from None
    ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    langs = [c for c in candidates if c in set(ident.nb_classes)]
    if not langs:
        raise MworkError(f"langid supports none of {list(candidates)}", "use ISO 639-1 codes")
    ident.set_languages(langs)
    return ident


def _langid_backend(candidates: Sequence[str]) -> Callable[[str], tuple[str | None, float]]:
    ident = _langid_identifier(tuple(candidates))

    def run(text: str) -> tuple[str | None, float]:
        padded = f" {text} "
        if not ident.instance2fv(padded).any():  # no known n-gram: langid would return its prior
            return None, 0.0
        lang, prob = ident.classify(padded)
        return str(lang), float(prob)

    return run


def _lingua_backend(candidates: Sequence[str]) -> Callable[[str], tuple[str | None, float]]:
    try:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
    except ImportError:
        raise MworkError(
            "LID backend 'lingua' is not installed", "pip install lingua-language-detector==2.1.1"
        ) from None
    langs = []
    for c in candidates:
        try:
            langs.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(c)))
        except (ValueError, AttributeError):
            continue
    if len(langs) < 2:
        raise MworkError(
            f"lingua needs at least two supported candidates, got {list(candidates)}",
            "add languages",
        )
    detector = LanguageDetectorBuilder.from_languages(*langs).build()

    def run(text: str) -> tuple[str | None, float]:
        values = detector.compute_language_confidence_values(text)
        if not values or values[0].value <= 0.0:
            return None, 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

    return run


def _cld3_backend(candidates: Sequence[str]) -> Callable[[str], tuple[str | None, float]]:
    try:
        import gcld3
    except ImportError:
        raise MworkError(
            "LID backend 'cld3' needs gcld3, which is not installed",
            "install protobuf-compiler then `pip install gcld3`, or use backend 'langid'",
        ) from None
    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)

    def run(text: str) -> tuple[str | None, float]:
        res = detector.FindLanguage(text=text)
        lang = res.language.split("-")[0]
        # probability 1.0 + reliable, or 0.0: TokenLanguageIdentifier thresholds at 0.5 for cld3
        return (lang if lang in candidates else None), (1.0 if res.is_reliable else 0.0)

    return run


_FACTORIES = {"langid": _langid_backend, "lingua": _lingua_backend, "cld3": _cld3_backend}


def available_backends() -> list[str]:
    """Backends whose package imports here."""
    out = []
    for name, module in (("lingua", "lingua"), ("langid", "langid"), ("cld3", "gcld3")):
        try:
            __import__(module)
            out.append(name)
        except ImportError:
            pass
    return out


class TokenLanguageIdentifier:
    """Language of one decoded token, restricted to candidate languages, with a reliability flag.

    Args:
        candidates: ISO 639-1 codes the answer may take (e.g. en de fr zh es ru).
        backend: "lingua" (default), "langid" or "cld3".
        min_prob: reliability threshold on the backend's normalised probability; None = the
            backend's default (DEFAULT_MIN_PROB). Ignored by cld3, which has its own `is_reliable`.
        min_letters: texts with fewer letters are unidentifiable.
        script_shortcut: decide single-script Han/Cyrillic/Thai/Arabic text by script.
    """

    def __init__(
        self,
        candidates: Sequence[str],
        backend: str = "lingua",
        min_prob: float | None = None,
        min_letters: int = 2,
        script_shortcut: bool = True,
    ) -> None:
        if backend not in _FACTORIES:
            raise MworkError(
                f"unknown LID backend {backend!r}", f"choose one of {', '.join(BACKENDS)}"
            )
        if not candidates:
            raise MworkError(
                "no candidate languages for language identification", "pass e.g. en,de,fr,zh,es,ru"
            )
        self.candidates = tuple(dict.fromkeys(candidates))
        self.backend = backend
        if backend == "cld3" or min_prob is None:
            min_prob = DEFAULT_MIN_PROB[backend]
        self.min_prob = float(min_prob)
        self.min_letters = int(min_letters)
        self.script_shortcut = script_shortcut
        self._run = _FACTORIES[backend](self.candidates)
        self._script_to_lang = {s: l for s, l in SCRIPT_LANGS.items() if l in self.candidates}
        self._cache: dict[str, tuple[str | None, bool]] = {}

    def identify(self, text: str) -> tuple[str | None, bool]:
        """(language or None, reliable) for one token's text; cached per distinct text."""
        hit = self._cache.get(text)
        if hit is None:
            hit = self._cache[text] = self._identify(text)
        return hit

    def _identify(self, text: str) -> tuple[str | None, bool]:
        stripped = text.strip()
        chars = letters(stripped)
        scripts = [script_of(ch) for ch in chars]
        if len(chars) + scripts.count("Han") < self.min_letters:
            return None, False
        scripts = set(scripts)
        if self.script_shortcut:
            if len(scripts) > 1:
                return None, False
            script = next(iter(scripts))
            if script in self._script_to_lang:
                return self._script_to_lang[script], True
            if script not in ("Latin", "Other"):  # a script no candidate is decided by
                return None, False
        lang, prob = self._run(stripped)
        if lang is None or lang not in self.candidates:
            return None, False
        return lang, prob >= self.min_prob

    def language_or_none(self, text: str) -> str | None:
        """The language if it is identified reliably, else None (the lens's counting rule)."""
        lang, reliable = self.identify(text)
        return lang if reliable else None


def lid_sample():  # -> pandas.DataFrame
    """The labelled LID sample shipped with mwork: columns lang ("none" = no language), kind, text."""
    from importlib.resources import files

    import pandas as pd

    text = files("mwork.data").joinpath("lid_sample.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return pd.DataFrame(rows[1:], columns=rows[0])
