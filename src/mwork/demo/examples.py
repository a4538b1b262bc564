"""Task examples rendered into one language: extractive QA, multiple choice, word problems, news.

Each builder takes a *content* rng (what the example is about; shared across languages, so
benchmarks are parallel like XQuAD/MGSM/X-CSQA) and a *variant* rng (template variants of one
language). They return plain dataclasses; `mwork.demo.benchmarks` turns them into dataset rows
and `mwork.demo.mixture` into training text.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mwork.demo import documents as D
from mwork.demo import languages as L
from mwork.demo.prompts import mgsm_answer
from mwork.demo.world import Fact, World

QA_TARGETS: dict[str, tuple[str, str]] = {
    "lives": ("q_lives", "city"),
    "job": ("q_job", "job"),
    "pet": ("q_pet", "pet"),
    "age": ("q_age", "age"),
}
"""Bio statement asked about -> (question template, slot holding the answer)."""

N_CHOICES = 5
LABELS: tuple[str, ...] = ("A", "B", "C", "D", "E")


@dataclass(frozen=True)
class QAExample:
    """Extractive QA: `context[answer_start:answer_start+len(answer)] == answer`."""

    context: str
    question: str
    answer: str
    answer_start: int


@dataclass(frozen=True)
class MCExample:
    """Five-way multiple choice; `choices[answer_index]` is correct."""

    question: str
    choices: tuple[str, ...]
    answer_index: int


@dataclass(frozen=True)
class MathExample:
    """An arithmetic word problem with its worked answer."""

    question: str
    answer: str
    number: int
    equation: str


@dataclass(frozen=True)
class NewsExample:
    """A titled news article with a one-sentence summary."""

    title: str
    text: str
    summary: str


def qa_example(
    world: World, lang: str, content: random.Random, variant: random.Random
) -> QAExample:
    """A short bio of one person (4-6 sentences) and a question about one stated attribute.

    One sentence about the person's friend is mixed in, so the answer has to be bound to the
    right person rather than copied from the only candidate.
    """
    person = content.choice(world.people)
    target = content.choice(sorted(QA_TARGETS))
    facts = D.bio_facts(person)
    others = [k for k in ("job", "lives", "pet", "age", "fav") if k != target]
    content.shuffle(others)
    specs = [facts[target]] + [facts[k] for k in others[: content.randint(2, 4)]]
    content.shuffle(specs)
    friend_fact = D.bio_facts(world.person(person.friend))[content.choice(others)]
    specs.insert(content.randint(1, len(specs)), friend_fact)
    specs.append(facts["workplace"])  # a pronoun sentence, never first
    doc = D.render_specs(lang, specs, variant)
    question_key, slot = QA_TARGETS[target]
    question = L.render(lang, question_key, {"p": ("person", person.key)}, variant).text
    start, end = doc.spans[specs.index(facts[target])][slot]
    span = doc.text[start:end]
    if target == "pet":  # the span is e.g. "eine Katze"; the answer is the noun
        noun = L.form(lang, ("pet", person.pet), "nom")
        start += span.index(noun)
        span = noun
    return QAExample(doc.text, question, span, start)


def mc_example(
    world: World,
    lang: str,
    content: random.Random,
    variant: random.Random,
    fact: Fact | None = None,
) -> MCExample:
    """A question about a world fact with the answer and four distractors of the same kind."""
    fact = fact if fact is not None else content.choice(world.facts())
    pool = [k for k in L.keys(fact.pool) if k != fact.answer[1]]
    options = content.sample(pool, N_CHOICES - 1) + [fact.answer[1]]
    content.shuffle(options)
    key, slots = D.fact_question(fact)
    question = L.render(lang, key, slots, variant).text
    choices = tuple(L.form(lang, (fact.pool, k), "nom") for k in options)
    return MCExample(question, choices, options.index(fact.answer[1]))


def math_example(
    world: World, lang: str, content: random.Random, variant: random.Random
) -> MathExample:
    """An add/subtract/multiply word problem with operands 2..12."""
    problem = world.problem(content)
    key, slots = D.problem_spec(problem)
    question = L.render(lang, key, slots, variant).text
    return MathExample(
        question,
        mgsm_answer(lang, problem.equation, problem.answer),
        problem.answer,
        problem.equation,
    )


def news_example(
    world: World,
    lang: str,
    content: random.Random,
    variant: random.Random,
    event_index: int | None = None,
) -> NewsExample:
    """A news story about one of the world's events (random unless `event_index` is given)."""
    if event_index is None:
        event_index = content.randrange(len(world.events))
    title, body, summary = D.news_specs(world, world.events[event_index], content)
    return NewsExample(
        title=L.render(lang, *title, variant).text,
        text=D.render_specs(lang, body, variant).text,
        summary=L.render(lang, *summary, variant).text,
    )
