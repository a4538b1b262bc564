"""The demo world: people, places, commonsense facts, events and quantities, built from a seed.

The world is language-free: every entity is a lexeme key (see `mwork.demo.languages`), so one
world renders into parallel text in every language. Commonsense facts (capitals, colours of
things, workplaces of jobs) come from the lexicon and are the same for every seed; people,
their attributes and the events between them are drawn with `random.Random(seed)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mwork.demo import languages as L
from mwork.demo.languages import Ref
from mwork.errors import MworkError


@dataclass(frozen=True)
class Person:
    """One person and their attributes (all lexeme keys except `age`)."""

    key: str
    city: str
    job: str
    pet: str
    colour: str
    age: int
    friend: str


@dataclass(frozen=True)
class Fact:
    """A (subject, relation, answer) triple; `pool` is the category the distractors come from."""

    relation: str
    subject: Ref
    answer: Ref
    pool: str


@dataclass(frozen=True)
class Event:
    """A news event: a trip (city_from -> city_to) or a market purchase (n objects, k given away)."""

    kind: str
    person: str
    other: str
    city_from: str
    city_to: str
    day: str
    n: int
    k: int
    obj: str


@dataclass(frozen=True)
class Problem:
    """An arithmetic word problem: `a op b = answer` about `person`'s objects."""

    op: str
    person: str
    other: str
    obj: str
    a: int
    b: int

    @property
    def answer(self) -> int:
        """The result of the operation."""
        return {"add": self.a + self.b, "sub": self.a - self.b, "mul": self.a * self.b}[self.op]

    @property
    def equation(self) -> str:
        """The solution as an equation, e.g. "3 + 4 = 7"."""
        sign = {"add": "+", "sub": "-", "mul": "*"}[self.op]
        return f"{self.a} {sign} {self.b} = {self.answer}"


@dataclass(frozen=True)
class World:
    """Everything the demo corpora and benchmarks talk about.

    Attributes:
        seed: the seed the world was built from.
        people: the people, in key order.
        events: news events, in generation order.
    """

    seed: int
    people: tuple[Person, ...]
    events: tuple[Event, ...]

    def person(self, key: str) -> Person:
        """The person with lexeme key `key`."""
        return next(p for p in self.people if p.key == key)

    def facts(self) -> list[Fact]:
        """All multiple-choice facts: capitals, colours of things, workplaces of jobs, residences."""
        out = [
            Fact("capital", ("country", c), ("city", L.meta(("country", c), "_capital")), "city")
            for c in L.keys("country")
        ]
        out += [
            Fact("colour", ("thing", t), ("colour", L.meta(("thing", t), "_colour")), "colour")
            for t in L.keys("thing")
        ]
        out += [
            Fact("workplace", ("job", j), ("place", L.meta(("job", j), "_place")), "place")
            for j in L.keys("job")
        ]
        out += [Fact("lives", ("person", p.key), ("city", p.city), "city") for p in self.people]
        return out

    def problem(self, rng: random.Random) -> Problem:
        """Draw an arithmetic word problem about two people of this world (operands 2..9)."""
        op = rng.choice(["add", "sub", "mul"])
        person, other = rng.sample([p.key for p in self.people], 2)
        obj = rng.choice(L.keys("object"))
        if op == "sub":
            b = rng.randint(2, 8)
            a = rng.randint(b + 1, 12)
        else:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
        return Problem(op, person, other, obj, a, b)


def build_world(seed: int, n_people: int, n_events: int) -> World:
    """Build a world deterministically from `seed`.

    Args:
        seed: random seed; the same seed gives the same world.
        n_people: number of people (2 .. number of names in the lexicon).
        n_events: number of news events (>= 1).
    """
    names = L.keys("person")
    if not 2 <= n_people <= len(names):
        raise MworkError(
            f"demo world n_people={n_people} is out of range",
            f"use 2..{len(names)} (one per name in the lexicon)",
        )
    if n_events < 1:
        raise MworkError(f"demo world n_events={n_events} must be positive", "set n_events >= 1")
    rng = random.Random(f"world:{seed}")
    chosen = sorted(rng.sample(names, n_people))
    people = []
    for key in chosen:
        friend = rng.choice([k for k in chosen if k != key])
        people.append(
            Person(
                key=key,
                city=rng.choice(L.keys("city")),
                job=rng.choice(L.keys("job")),
                pet=rng.choice(L.keys("pet")),
                colour=rng.choice(L.keys("colour")),
                age=rng.randint(20, 69),
                friend=friend,
            )
        )
    events = []
    for _ in range(n_events):
        person, other = rng.sample(chosen, 2)
        home = next(p.city for p in people if p.key == person)
        events.append(
            Event(
                kind=rng.choice(["trip", "buy"]),
                person=person,
                other=other,
                city_from=home,
                city_to=rng.choice([c for c in L.keys("city") if c != home]),
                day=rng.choice(L.keys("day")),
                n=(n := rng.randint(3, 9)),
                k=rng.randint(2, n - 1),
                obj=rng.choice(L.keys("object")),
            )
        )
    return World(seed=seed, people=tuple(people), events=tuple(events))
