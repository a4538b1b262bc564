"""Language-free document plans ("specs") over a demo world, and their rendering into one language.

A spec is (template key, slots). A document is a list of specs, planned once from a *content*
rng and rendered into any language with a per-language *variant* rng, so the same plan gives
parallel documents. Two styles: web posts (first person, chatty; the detection corpus) and
encyclopedia articles (third person, titled; the enhancement corpus).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from mwork.demo import languages as L
from mwork.demo.languages import Ref, Value
from mwork.demo.world import Event, Fact, Person, Problem, World

Spec = tuple[str, dict[str, Value]]


@dataclass(frozen=True)
class RenderedDoc:
    """Rendered specs.

    Attributes:
        text: the sentences joined with the language's separator.
        sentences: each sentence's text.
        spans: per sentence, slot -> (start, end) offsets into `text`.
    """

    text: str
    sentences: tuple[str, ...]
    spans: tuple[dict[str, tuple[int, int]], ...]


def render_specs(lang: str, specs: Sequence[Spec], variant: random.Random) -> RenderedDoc:
    """Render a plan into `lang`; offsets in `spans` index the joined text."""
    sep = L.ui(lang, "sep")
    sentences, spans, offset = [], [], 0
    for key, slots in specs:
        r = L.render(lang, key, slots, variant)
        sentences.append(r.text)
        spans.append({k: (a + offset, b + offset) for k, (a, b) in r.spans.items()})
        offset += len(r.text) + len(sep)
    return RenderedDoc(sep.join(sentences), tuple(sentences), tuple(spans))


def _p(key: str) -> Ref:
    return ("person", key)


def place_of(job: str) -> str:
    """The workplace lexeme key of a job."""
    return L.meta(("job", job), "_place")


def bio_facts(person: Person) -> dict[str, Spec]:
    """Third-person statements about a person, keyed by template."""
    p = _p(person.key)
    return {
        "job": ("job", {"p": p, "job": ("job", person.job)}),
        "lives": ("lives", {"p": p, "city": ("city", person.city)}),
        "pet": ("pet", {"p": p, "pet": ("pet", person.pet)}),
        "age": ("age", {"p": p, "age": person.age}),
        "workplace": ("workplace", {"p": p, "place": ("place", place_of(person.job))}),
        "friends": ("friends", {"p": p, "q": _p(person.friend)}),
        "fav": ("fav", {"p": p, "colour": ("colour", person.colour)}),
    }


def fact_statement(fact: Fact) -> Spec:
    """The declarative sentence of a multiple-choice fact."""
    s, a = fact.subject, fact.answer
    return {
        "capital": ("capital", {"country": s, "city": a}),
        "colour": ("colour", {"thing": s, "colour": a}),
        "workplace": ("works_at", {"job": s, "place": a}),
        "lives": ("lives", {"p": s, "city": a}),
    }[fact.relation]


def fact_question(fact: Fact) -> Spec:
    """The question whose answer is `fact.answer`."""
    s = fact.subject
    return {
        "capital": ("q_capital", {"country": s}),
        "colour": ("q_colour", {"thing": s}),
        "workplace": ("q_workplace", {"job": s}),
        "lives": ("q_lives", {"p": s}),
    }[fact.relation]


def commonsense_spec(world: World, content: random.Random) -> Spec:
    """One random commonsense/world fact as a statement (capital either way round)."""
    fact = content.choice(world.facts())
    key, slots = fact_statement(fact)
    if key == "capital" and content.random() < 0.5:
        key = "capital_rev"
    return key, slots


def web_specs(world: World, person: Person, content: random.Random) -> list[Spec]:
    """A first-person web post by `person`: greeting, name, a few facts, maybe a fun fact, bye."""
    p = _p(person.key)
    friend = world.person(person.friend)
    body: list[Spec] = [
        ("w_lives", {"p": p, "city": ("city", person.city)}),
        ("w_job", {"p": p, "job": ("job", person.job)}),
        ("w_work", {"p": p, "place": ("place", place_of(person.job))}),
        ("w_pet", {"p": p, "pet": ("pet", person.pet)}),
        ("w_age", {"p": p, "age": person.age}),
        ("w_friend", {"p": p, "q": _p(friend.key), "city": ("city", friend.city)}),
        ("w_like", {"p": p, "colour": ("colour", person.colour)}),
    ]
    content.shuffle(body)
    specs: list[Spec] = [("w_hello", {}), ("w_name", {"p": p})] + body[: content.randint(3, 6)]
    if content.random() < 0.6:
        specs += [("w_fact", {}), commonsense_spec(world, content)]
    return specs + [("w_bye", {})]


def wiki_specs(world: World, content: random.Random) -> tuple[Ref, list[Spec]]:
    """An encyclopedia article: (title lexeme, specs) about a person, city, country, colour or job."""
    kind = content.choices(["person", "city", "country", "colour", "job"], [4, 2, 1, 1, 1])[0]
    if kind == "person":
        person = content.choice(world.people)
        facts = bio_facts(person)
        intro = (
            "intro",
            {"p": _p(person.key), "job": ("job", person.job), "city": ("city", person.city)},
        )
        rest = [facts[k] for k in ("pet", "age", "workplace", "friends", "fav")]
        content.shuffle(rest)
        return _p(person.key), [intro] + rest[: content.randint(2, 5)]
    if kind in ("city", "country"):
        country = content.choice(L.keys("country"))
        city = L.meta(("country", country), "_capital")
        slots: dict[str, Value] = {"country": ("country", country), "city": ("city", city)}
        if kind == "country":
            return ("country", country), [("country_intro", slots), ("capital", slots)]
        residents = [
            ("lives", {"p": _p(p.key), "city": ("city", city)})
            for p in world.people
            if p.city == city
        ]
        return ("city", city), [("city_intro", slots), ("capital_rev", slots)] + residents[:4]
    if kind == "colour":
        colour = content.choice(L.keys("colour"))
        c: Ref = ("colour", colour)
        things = [
            ("colour", {"thing": ("thing", t), "colour": c})
            for t in L.keys("thing")
            if L.meta(("thing", t), "_colour") == colour
        ]
        fans = [("fav", {"p": _p(p.key), "colour": c}) for p in world.people if p.colour == colour]
        return c, [("colour_intro", {"colour": c})] + things + fans[:3]
    job = content.choice(L.keys("job"))
    j: Ref = ("job", job)
    workers = [("job", {"p": _p(p.key), "job": j}) for p in world.people if p.job == job]
    return j, [("works_at", {"job": j, "place": ("place", place_of(job))})] + workers[:4]


def title_text(lang: str, ref: Ref) -> str:
    """An article title: the lexeme's base form, capitalised."""
    name = "noun" if ref[0] == "colour" and lang == "de" else "nom"
    text = L.form(lang, ref, name)
    return text[:1].upper() + text[1:]


def news_specs(world: World, event: Event, content: random.Random) -> tuple[Spec, list[Spec], Spec]:
    """A news story: (title spec, body specs, one-sentence summary spec)."""
    person, other = world.person(event.person), world.person(event.other)
    slots: dict[str, Value] = {
        "p": _p(person.key),
        "q": _p(other.key),
        "day": ("day", event.day),
        "n": event.n,
        "k": event.k,
        "obj": ("object", event.obj),
        "job": ("job", person.job),
        "city": ("city", event.city_from),
        "city1": ("city", event.city_from),
        "city2": ("city", event.city_to),
    }
    extra = bio_facts(other)["job"]
    if event.kind == "trip":
        body = [("n_trip", slots), ("n_meet", slots), extra, ("n_stay", slots), ("n_return", slots)]
        title, summary = ("n_title_trip", slots), ("n_summary_trip", slots)
    else:
        body = [("n_market", slots), ("n_buy", slots), ("n_give", slots), extra]
        title, summary = ("n_title_buy", slots), ("n_summary_buy", slots)
    if content.random() < 0.5:
        body.append(commonsense_spec(world, content))
    return title, body, summary


def problem_spec(problem: Problem) -> Spec:
    """The word-problem template of an arithmetic problem."""
    return (
        f"m_{problem.op}",
        {
            "p": _p(problem.person),
            "q": _p(problem.other),
            "obj": ("object", problem.obj),
            "a": problem.a,
            "b": problem.b,
        },
    )
