"""Write one demo world to disk: corpora, held-out text, the training mixture and the benchmarks.

Layout under `out_dir` (every file JSON Lines, written atomically):

    corpus/{lang}.jsonl        {"text"}            web posts (PLND detection corpus)
    wiki/{lang}.jsonl          {"title", "text"}   encyclopedia articles (enhancement corpus)
    heldout/{lang}.jsonl       {"text"}            held-out web + wiki text (perplexity), never in train
    train.jsonl                {"text"}            English-dominant training mixture
    bench/{task}/{lang}.jsonl  real dataset fields  see mwork.demo.benchmarks
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mwork.atomic import write_jsonl
from mwork.demo import benchmarks as B
from mwork.demo import mixture as M
from mwork.demo.languages import check_languages
from mwork.demo.world import World, build_world
from mwork.errors import MworkError


def _write_rows(path: Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Demo files are JSON Lines with sorted keys (byte-stable across Python versions)."""
    write_jsonl(path, rows, sort_keys=True)


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of one demo world (see demo/config.yaml for the reasons behind the defaults)."""

    n_people: int = 8
    n_events: int = 40
    corpus_docs: int = 300
    wiki_docs: int = 300
    heldout_docs: int = 100
    train_docs: int = 12000
    english_share: float = 0.45
    parallel_share: float = 0.1
    codeswitch_share: float = 0.1
    language_weights: Mapping[str, float] = field(default_factory=dict)
    bench: Mapping[str, int] = field(
        default_factory=lambda: {"mgsm": 50, "xquad": 100, "xcsqa": 100, "xlsum": 50}
    )

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> WorldConfig:
        """Build from a config mapping; unknown keys or bad values raise MworkError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MworkError(f"unknown demo world settings {unknown}", f"use only {sorted(known)}")
        config = cls(**dict(values))  # type: ignore[arg-type]
        config.validate()
        return config

    def validate(self) -> None:
        """Raise MworkError on sizes or shares that cannot produce a world."""
        for name in ("corpus_docs", "wiki_docs", "heldout_docs", "train_docs"):
            if int(getattr(self, name)) < 1:
                raise MworkError(
                    f"demo world {name}={getattr(self, name)} must be positive", f"set {name} >= 1"
                )
        shares = (self.english_share, self.parallel_share, self.codeswitch_share)
        if (
            not all(0.0 <= s <= 1.0 for s in shares)
            or self.parallel_share + self.codeswitch_share > 1.0
        ):
            raise MworkError(
                f"demo world shares {shares} are not fractions summing to <= 1",
                "use english_share in [0, 1] and parallel_share + codeswitch_share <= 1",
            )
        if any(not float(w) >= 0 for w in self.language_weights.values()) or (
            self.language_weights and not any(float(w) > 0 for w in self.language_weights.values())
        ):
            raise MworkError(
                f"demo world language_weights {dict(self.language_weights)} are invalid",
                "use non-negative weights, e.g. {sw: 0.1} (missing languages weigh 1)",
            )
        if sorted(self.bench) != sorted(B.TASKS) or any(int(n) < 1 for n in self.bench.values()):
            raise MworkError(
                f"demo world bench sizes {dict(self.bench)} are incomplete",
                f"give a positive size for each of {list(B.TASKS)}",
            )


def corpus_rows(world: World, lang: str, n: int, seed: int) -> list[dict[str, str]]:
    """Detection corpus: n web posts in `lang` (content drawn per language, not parallel)."""
    return [
        {
            "text": M.web_text(
                world,
                lang,
                random.Random(f"{seed}:corpus:{lang}:{i}"),
                random.Random(f"{seed}:corpus:{lang}:{i}:v"),
            )
        }
        for i in range(n)
    ]


def wiki_rows(world: World, lang: str, n: int, seed: int) -> list[dict[str, str]]:
    """Enhancement corpus: n titled encyclopedia articles in `lang`."""
    rows = []
    for i in range(n):
        title, text = M.wiki_text(
            world,
            lang,
            random.Random(f"{seed}:wiki:{lang}:{i}"),
            random.Random(f"{seed}:wiki:{lang}:{i}:v"),
        )
        rows.append({"title": title, "text": text})
    return rows


def heldout_rows(
    world: World, lang: str, n: int, seed: int, exclude: set[str]
) -> list[dict[str, str]]:
    """n held-out documents (alternating web and wiki style) whose text is not in `exclude`."""
    rows: list[dict[str, str]] = []
    seen = set(exclude)
    for i in range(100 * n):
        if len(rows) == n:
            break
        content = random.Random(f"{seed}:heldout:{lang}:{i}")
        variant = random.Random(f"{seed}:heldout:{lang}:{i}:v")
        if i % 2 == 0:
            text = M.web_text(world, lang, content, variant)
        else:
            text = "\n".join(M.wiki_text(world, lang, content, variant))
        if text not in seen:
            seen.add(text)
            rows.append({"text": text})
    if len(rows) < n:
        raise MworkError(
            f"only {len(rows)} of {n} held-out {lang} documents are unseen in training",
            "lower heldout_docs or train_docs, or raise n_people",
        )
    return rows


def write_demo_world(
    out_dir: str | Path,
    seed: int,
    languages: Sequence[str],
    world: Mapping[str, object] | WorldConfig,
) -> World:
    """Generate the demo world of `seed` and write all its files under `out_dir`.

    Args:
        out_dir: output root (e.g. results/demo/world).
        seed: world seed; the same seed and settings give byte-identical files.
        languages: language codes, English first.
        world: sizes, a WorldConfig or its mapping (config["demo"]["world"]).

    Returns:
        The generated world.
    """
    cfg = world if isinstance(world, WorldConfig) else WorldConfig.from_dict(world)
    langs = check_languages(languages)
    root = Path(out_dir)
    w = build_world(seed, cfg.n_people, cfg.n_events)
    docs = M.training_docs(
        w,
        langs,
        cfg.train_docs,
        cfg.english_share,
        cfg.parallel_share,
        cfg.codeswitch_share,
        seed,
        cfg.language_weights,
    )
    _write_rows(root / "train.jsonl", ({"text": d.text} for d in docs))
    train_texts = {d.text for d in docs}
    for lang in langs:
        _write_rows(root / "corpus" / f"{lang}.jsonl", corpus_rows(w, lang, cfg.corpus_docs, seed))
        _write_rows(root / "wiki" / f"{lang}.jsonl", wiki_rows(w, lang, cfg.wiki_docs, seed))
        _write_rows(
            root / "heldout" / f"{lang}.jsonl",
            heldout_rows(w, lang, cfg.heldout_docs, seed, train_texts),
        )
        for task in B.TASKS:
            _write_rows(
                root / "bench" / task / f"{lang}.jsonl",
                B.BUILDERS[task](w, lang, int(cfg.bench[task]), seed),
            )
    return w
