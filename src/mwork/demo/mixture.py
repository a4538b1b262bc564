"""Plain-text documents of the demo world and the English-dominant training mixture.

Document kinds (monolingual): web posts, encyclopedia articles, news, and the four task formats
(QA, multiple-choice FAQ, word problems, summarisation) so a tiny model sees every task's prompt
in every language. Bilingual kinds pair English with another language: parallel documents (the
same plan rendered twice) and code-switched ones (each sentence in English or the other
language), which give the model a reason to share an English-centric middle.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mwork.demo import documents as D
from mwork.demo import examples as E
from mwork.demo import languages as L
from mwork.demo import prompts as P
from mwork.demo.world import World

MONO_KINDS: dict[str, int] = {"web": 2, "wiki": 1, "news": 1, "qa": 4, "faq": 4, "math": 1}
"""Monolingual document kind -> relative weight in the training mixture."""


@dataclass(frozen=True)
class Doc:
    """A training document; `parts` holds its (language, text) pieces for share statistics."""

    kind: str
    text: str
    parts: tuple[tuple[str, str], ...]


def web_text(world: World, lang: str, content: random.Random, variant: random.Random) -> str:
    """A first-person web post (detection-corpus style)."""
    return D.render_specs(
        lang, D.web_specs(world, content.choice(world.people), content), variant
    ).text


def wiki_text(
    world: World, lang: str, content: random.Random, variant: random.Random
) -> tuple[str, str]:
    """An encyclopedia article (enhancement-corpus style): (title, text)."""
    title, specs = D.wiki_specs(world, content)
    return D.title_text(lang, title), D.render_specs(lang, specs, variant).text


def mono_text(
    world: World, kind: str, lang: str, content: random.Random, variant: random.Random
) -> str:
    """One monolingual training document of `kind` (see MONO_KINDS)."""
    if kind == "web":
        return web_text(world, lang, content, variant)
    if kind == "wiki":
        title, text = wiki_text(world, lang, content, variant)
        return f"{title}\n{text}"
    if kind == "news":
        ex = E.news_example(world, lang, content, variant)
        if content.random() < 0.5:
            return f"{ex.title}\n{ex.text}"
        return P.xlsum_prompt(lang, ex.title, ex.text) + P.answer_suffix(lang, ex.summary)
    if kind == "qa":
        qa = E.qa_example(world, lang, content, variant)
        return P.xquad_prompt(lang, qa.context, qa.question) + P.answer_suffix(lang, qa.answer)
    if kind == "faq":
        items = [E.mc_example(world, lang, content, variant) for _ in range(content.randint(2, 4))]
        return "\n".join(
            P.xcsqa_prompt(lang, mc.question) + P.answer_suffix(lang, mc.choices[mc.answer_index])
            for mc in items
        )
    if kind == "math":
        ex = E.math_example(world, lang, content, variant)
        return P.mgsm_prompt(lang, ex.question) + P.answer_suffix(lang, ex.answer)
    raise ValueError(f"unknown document kind {kind!r}")


def _plan(world: World, content: random.Random) -> list[D.Spec]:
    if content.random() < 0.5:
        return D.web_specs(world, content.choice(world.people), content)
    return D.wiki_specs(world, content)[1]


def parallel_doc(
    world: World, other: str, content: random.Random, variants: dict[str, random.Random]
) -> Doc:
    """English and `other` renderings of one plan, as two blocks or as interleaved sentence pairs."""
    specs = _plan(world, content)
    en = D.render_specs("en", specs, variants["en"])
    xx = D.render_specs(other, specs, variants[other])
    if content.random() < 0.5:
        text = f"{L.ui('en', 'name')}: {en.text}\n{L.ui(other, 'name')}: {xx.text}"
    else:
        text = "\n".join(f"{a}\n{b}" for a, b in zip(en.sentences, xx.sentences, strict=True))
    return Doc("parallel", text, (("en", en.text), (other, xx.text)))


def codeswitch_doc(
    world: World, other: str, content: random.Random, variants: dict[str, random.Random]
) -> Doc:
    """One plan whose sentences are each rendered in English or `other` (coin flip)."""
    parts = []
    for spec in _plan(world, content):
        lang = "en" if content.random() < 0.5 else other
        parts.append((lang, D.render_specs(lang, [spec], variants[lang]).text))
    return Doc("codeswitch", " ".join(t for _, t in parts), tuple(parts))


def training_docs(
    world: World,
    languages: Sequence[str],
    n_docs: int,
    english_share: float,
    parallel_share: float,
    codeswitch_share: float,
    seed: int,
    language_weights: Mapping[str, float] | None = None,
) -> list[Doc]:
    """The training mixture.

    Args:
        world: the demo world.
        languages: language codes, English first.
        n_docs: number of documents.
        english_share: fraction of monolingual documents that are English (the rest is split
            evenly over the other languages).
        parallel_share: fraction of documents that are English-X parallel.
        codeswitch_share: fraction of documents that are English-X code-switched.
        seed: world seed (documents are drawn from rngs derived from it).
        language_weights: relative weight of each non-English language wherever one is drawn
            (monolingual, parallel, code-switched); missing languages weigh 1. None or {} keeps
            the uniform draw (byte-identical to a mixture without weights). A weight of 0.1 makes
            a language scarce, the demo's "low-resource" case for neuron fine-tuning.
    """
    others = list(languages[1:])
    weights_x = [float((language_weights or {}).get(lang, 1.0)) for lang in others]

    def pick_other(rng: random.Random) -> str:
        if not language_weights:
            return rng.choice(others)
        return rng.choices(others, weights_x)[0]

    kinds, weights = zip(*sorted(MONO_KINDS.items()), strict=True)
    docs = []
    for i in range(n_docs):
        content = random.Random(f"{seed}:train:{i}")
        variants = {lang: random.Random(f"{seed}:train:{i}:{lang}") for lang in languages}
        r = content.random()
        if others and r < parallel_share:
            docs.append(parallel_doc(world, pick_other(content), content, variants))
        elif others and r < parallel_share + codeswitch_share:
            docs.append(codeswitch_doc(world, pick_other(content), content, variants))
        else:
            lang = "en" if not others or content.random() < english_share else pick_other(content)
            kind = content.choices(kinds, weights)[0]
            text = mono_text(world, kind, lang, content, variants[lang])
            docs.append(Doc(kind, text, ((lang, text),)))
    return docs


def language_shares(docs: Sequence[Doc], count: Callable[[str], int]) -> dict[str, float]:
    """Fraction of the mixture's units (tokens, words, ...) in each language, by `count(text)`."""
    totals: dict[str, int] = {}
    for doc in docs:
        for lang, text in doc.parts:
            totals[lang] = totals.get(lang, 0) + count(text)
    grand = sum(totals.values()) or 1
    return {lang: totals[lang] / grand for lang in sorted(totals)}
