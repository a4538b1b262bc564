"""Lexicons and sentence templates of the demo world's languages, and the template renderer.

The data lives in `mwork/data/demo_lexicon.json`; this module only reads and renders it.

Template syntax (one template = one or more sentences in one language):

    {slot}              form "nom" of the lexeme bound to `slot` (an int slot renders as digits)
    {slot.form}         a named form: "gen", "prep", "indef", "loc", ...
    {slot.form:other}   agreement: form "<form>_<x>" where x is the gender of slot `other`
                        ("m"/"f"/"n") or, if `other` is an int slot, its plural category
                        ("one"/"few"/"many"/"other"); falls back to "<form>" when absent
    {@word.form:other}  the same for a fixed entry of the "word" category (no slot)
    [masc|fem]          chosen by the gender of the slot "p" (verb/pronoun agreement)

A lexeme's per-language value is either one string (every form) or a dict of forms.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from mwork.errors import MworkError

Ref = tuple[str, str]
"""A lexeme: (category, key), e.g. ("city", "berlin")."""
Value = Ref | int
Slots = Mapping[str, Value]

_TOKEN = re.compile(r"\{(@?)(\w+)(?:\.(\w+))?(?::(\w+))?\}|\[([^\]|]*)\|([^\]]*)\]")
_SENTENCE_START = re.compile(r"(^|[.!?。！？]\s+)(\W*?)(\w)")


@lru_cache(maxsize=1)
def lexicon() -> dict[str, Any]:
    """The parsed `demo_lexicon.json` (languages, lexicon, templates); cached."""
    text = resources.files("mwork").joinpath("data/demo_lexicon.json").read_text(encoding="utf-8")
    return json.loads(text)


def supported_languages() -> tuple[str, ...]:
    """Language codes that have a lexicon and templates, in file order."""
    return tuple(lexicon()["languages"])


def check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """Validate a language list (English first, no duplicates, all supported)."""
    langs = tuple(languages)
    unknown = sorted(set(langs) - set(supported_languages()))
    if unknown:
        raise MworkError(
            f"demo world has no templates for {unknown}",
            f"choose languages from {list(supported_languages())}",
        )
    if not langs or langs[0] != "en" or len(set(langs)) != len(langs):
        raise MworkError(
            f"demo languages {list(langs)} must start with 'en' and not repeat",
            "list 'en' first, then each other language once",
        )
    return langs


def ui(lang: str, key: str) -> str:
    """A fixed UI string of `lang` (prompt labels such as "question", the sentence separator "sep")."""
    return lexicon()["languages"][lang][key]


def keys(category: str) -> list[str]:
    """All lexeme keys of a category, sorted."""
    return sorted(lexicon()["lexicon"][category])


def meta(ref: Ref, field: str) -> str:
    """A language-independent fact stored on a lexeme (e.g. "_capital" of a country)."""
    return lexicon()["lexicon"][ref[0]][ref[1]][field]


def plural_category(lang: str, n: int) -> str:
    """CLDR-style plural category of the integer n in `lang` ("one", "few", "many", "other")."""
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    if lang == "zh":
        return "other"
    if lang == "fr":
        return "one" if n in (0, 1) else "other"
    return "one" if n == 1 else "other"


def gender(lang: str, ref: Ref) -> str:
    """Grammatical gender of a lexeme in `lang` ("m", "f", "n"); "m" when unmarked."""
    entry = lexicon()["lexicon"][ref[0]][ref[1]]
    value = entry.get(lang)
    if isinstance(value, dict) and "g" in value:
        return value["g"]
    return entry.get("_g", "m")


def form(lang: str, ref: Ref, name: str = "nom", suffix: str | None = None) -> str:
    """One surface form of a lexeme.

    Args:
        lang: language code.
        ref: (category, key).
        name: form name ("nom", "gen", "indef", ...).
        suffix: agreement suffix tried first ("<name>_<suffix>"), e.g. "f" or "few".

    Raises:
        KeyError: the lexicon lacks the form (a lexicon bug; the tests render every template).
    """
    value = lexicon()["lexicon"][ref[0]][ref[1]][lang]
    if isinstance(value, str):
        return value
    if suffix is not None and f"{name}_{suffix}" in value:
        return value[f"{name}_{suffix}"]
    if name in value:
        return value[name]
    raise KeyError(f"lexicon {ref} has no form {name!r} in {lang!r}")


@dataclass(frozen=True)
class Rendered:
    """A rendered template.

    Attributes:
        text: the sentence(s).
        spans: slot name -> (start, end) character offsets of its first occurrence in `text`.
    """

    text: str
    spans: dict[str, tuple[int, int]]


def _agreement(lang: str, slots: Slots, other: str | None) -> str | None:
    if other is None:
        return None
    value = slots[other]
    return plural_category(lang, value) if isinstance(value, int) else gender(lang, value)


def _capitalize(text: str) -> str:
    def up(m: re.Match[str]) -> str:
        c = m.group(3)
        return m.group(1) + m.group(2) + (c.upper() if len(c.upper()) == 1 else c)

    return _SENTENCE_START.sub(up, text)


def render(lang: str, key: str, slots: Slots, rng: random.Random | None = None) -> Rendered:
    """Render template `key` of `lang` with `slots` bound.

    Args:
        lang: language code.
        key: template name (see demo_lexicon.json "templates").
        slots: slot name -> lexeme Ref or int.
        rng: picks among a template's variants; the first variant when None.
    """
    variants = lexicon()["templates"][lang][key]
    if isinstance(variants, list):
        template = variants[rng.randrange(len(variants))] if rng is not None else variants[0]
    else:
        template = variants
    out: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    pos = 0
    length = 0
    for m in _TOKEN.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        pos = m.end()
        if m.group(5) is not None:  # [masc|fem]
            piece = m.group(6) if gender(lang, slots["p"]) == "f" else m.group(5)
        elif m.group(1):  # {@word...}
            piece = form(
                lang, ("word", m.group(2)), m.group(3) or "nom", _agreement(lang, slots, m.group(4))
            )
        else:
            value = slots[m.group(2)]
            if isinstance(value, int):
                piece = str(value)
            else:
                piece = form(lang, value, m.group(3) or "nom", _agreement(lang, slots, m.group(4)))
            spans.setdefault(m.group(2), (length, length + len(piece)))
        out.append(piece)
        length += len(piece)
    out.append(template[pos:])
    return Rendered(_capitalize("".join(out)), spans)


def join(lang: str, sentences: Sequence[str]) -> str:
    """Join sentences with the language's separator (none for Chinese)."""
    return ui(lang, "sep").join(sentences)
