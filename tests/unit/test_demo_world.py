"""Demo world generator: determinism, dataset schemas, benchmark consistency, mixture balance."""

from __future__ import annotations

import json
import random
from pathlib import Path

import datasets
import pytest

from mwork.demo import documents as D
from mwork.demo import examples as E
from mwork.demo import languages as L
from mwork.demo.benchmarks import FIELDS, TASKS
from mwork.demo.emit import WorldConfig, write_demo_world
from mwork.demo.mixture import MONO_KINDS, language_shares, mono_text, training_docs
from mwork.demo.world import build_world
from mwork.errors import MworkError

LANGS = ["en", "de", "fr", "zh", "es", "ru"]
SMALL = WorldConfig(
    n_people=6,
    n_events=5,
    corpus_docs=8,
    wiki_docs=8,
    heldout_docs=8,
    train_docs=300,
    bench={"mgsm": 6, "xquad": 8, "xcsqa": 8, "xlsum": 4},
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out[name] = tmp_path_factory.mktemp(f"world_{name}")
        write_demo_world(out[name], seed, LANGS, SMALL)
    return out


def test_expected_files(worlds: dict[str, Path]) -> None:
    expected = {"train.jsonl"} | {
        f"{d}/{lang}.jsonl" for d in ("corpus", "wiki", "heldout") for lang in LANGS
    }
    expected |= {f"bench/{task}/{lang}.jsonl" for task in TASKS for lang in LANGS}
    assert set(_files(worlds["a"])) == expected
    assert not list(worlds["a"].rglob("*.tmp"))


def test_same_seed_identical_bytes_different_seed_differs(worlds: dict[str, Path]) -> None:
    a, b, c = (_files(worlds[k]) for k in "abc")
    assert a == b
    assert a["train.jsonl"] != c["train.jsonl"]
    assert a["bench/xquad/en.jsonl"] != c["bench/xquad/en.jsonl"]


def _features(path: Path, cache: Path) -> datasets.Features:
    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))
    return ds.features


@pytest.mark.parametrize("task", TASKS)
def test_benchmark_schema_exact(worlds: dict[str, Path], task: str, tmp_path: Path) -> None:
    for lang in LANGS:
        path = worlds["a"] / "bench" / task / f"{lang}.jsonl"
        feats = _features(path, tmp_path)
        assert sorted(feats) == sorted(FIELDS[task])
        for row in _rows(path):
            assert sorted(row) == sorted(FIELDS[task])
    feats = _features(worlds["a"] / "bench" / task / "en.jsonl", tmp_path)
    if task == "mgsm":
        assert feats["answer_number"].dtype == "int64"
        assert feats["answer"].dtype == feats["equation_solution"].dtype == "string"
    if task == "xquad":
        assert sorted(feats["answers"]) == ["answer_start", "text"]
    if task == "xcsqa":
        assert sorted(feats["question"]) == ["choices", "stem"]
        assert sorted(feats["question"]["choices"]) == ["label", "text"]


def test_corpora_schema(worlds: dict[str, Path], tmp_path: Path) -> None:
    for sub, fields in (("corpus", ["text"]), ("wiki", ["text", "title"]), ("heldout", ["text"])):
        for lang in LANGS:
            assert sorted(_features(worlds["a"] / sub / f"{lang}.jsonl", tmp_path)) == fields
    assert sorted(_features(worlds["a"] / "train.jsonl", tmp_path)) == ["text"]


def test_xquad_answer_start_and_parallel_ids(worlds: dict[str, Path]) -> None:
    ids = {}
    for lang in LANGS:
        rows = _rows(worlds["a"] / "bench" / "xquad" / f"{lang}.jsonl")
        ids[lang] = [r["id"] for r in rows]
        for r in rows:
            text, start = r["answers"]["text"][0], r["answers"]["answer_start"][0]
            assert text and r["context"][start : start + len(text)] == text
    assert all(v == ids["en"] for v in ids.values())


def test_xcsqa_answer_key_and_choices(worlds: dict[str, Path]) -> None:
    for lang in LANGS:
        for r in _rows(worlds["a"] / "bench" / "xcsqa" / f"{lang}.jsonl"):
            choices = r["question"]["choices"]
            assert choices["label"] == ["A", "B", "C", "D", "E"] and r["lang"] == lang
            assert len(set(choices["text"])) == 5 and r["answerKey"] in choices["label"]


def test_mgsm_and_xlsum_consistent(worlds: dict[str, Path]) -> None:
    for lang in LANGS:
        for r in _rows(worlds["a"] / "bench" / "mgsm" / f"{lang}.jsonl"):
            assert r["equation_solution"].endswith(f"= {r['answer_number']}")
            assert str(r["answer_number"]) in r["answer"]
        for r in _rows(worlds["a"] / "bench" / "xlsum" / f"{lang}.jsonl"):
            assert r["title"] and r["summary"] and r["text"] and r["url"].endswith(r["id"])


def test_heldout_not_in_training(worlds: dict[str, Path]) -> None:
    train = {r["text"] for r in _rows(worlds["a"] / "train.jsonl")}
    for lang in LANGS:
        assert not train & {r["text"] for r in _rows(worlds["a"] / "heldout" / f"{lang}.jsonl")}


def test_mixture_english_dominant() -> None:
    world = build_world(0, 6, 5)
    docs = training_docs(world, LANGS, 600, 0.45, 0.1, 0.1, seed=0)
    shares = language_shares(docs, lambda s: 1)  # document-part share
    assert shares["en"] > 0.4 and all(shares["en"] > 2 * v for k, v in shares.items() if k != "en")
    kinds = {d.kind for d in docs}
    assert {"parallel", "codeswitch"} <= kinds and set(MONO_KINDS) <= kinds


def test_every_template_renders_in_every_language() -> None:
    world = build_world(3, 16, 30)
    for lang in LANGS:
        rng = random.Random(0)
        for person in world.people:
            D.render_specs(lang, list(D.bio_facts(person).values()), rng)
            D.render_specs(lang, D.web_specs(world, person, random.Random(person.key)), rng)
        for fact in world.facts():
            D.render_specs(lang, [D.fact_statement(fact), D.fact_question(fact)], rng)
        for event in world.events:
            title, body, summary = D.news_specs(world, event, random.Random(0))
            D.render_specs(lang, [title, *body, summary], rng)
        for i in range(60):
            E.math_example(world, lang, random.Random(i), rng)
            D.title_text(lang, D.wiki_specs(world, random.Random(i))[0])
            for kind in sorted(MONO_KINDS):
                assert mono_text(world, kind, lang, random.Random(i), rng)


def test_languages_are_lexically_distinct() -> None:
    world = build_world(0, 6, 5)
    person = world.people[0]
    texts = {
        lang: D.render_specs(
            lang, D.web_specs(world, person, random.Random(1)), random.Random(1)
        ).text
        for lang in LANGS
    }
    assert len(set(texts.values())) == len(LANGS)
    assert any("\u4e00" <= c <= "\u9fff" for c in texts["zh"])
    assert any("\u0400" <= c <= "\u04ff" for c in texts["ru"])


def test_russian_plural_agreement() -> None:
    assert [L.plural_category("ru", n) for n in (1, 2, 5, 11, 12, 21, 22, 25)] == [
        "one",
        "few",
        "many",
        "many",
        "many",
        "one",
        "few",
        "many",
    ]
    assert L.render("ru", "age", {"p": ("person", "anna"), "age": 22}).text == "Анне 22 года."


def test_bad_inputs_raise_mwork_error(tmp_path: Path) -> None:
    with pytest.raises(MworkError):
        write_demo_world(tmp_path, 0, ["en", "xx"], SMALL)
    with pytest.raises(MworkError):
        write_demo_world(tmp_path, 0, ["de", "en"], SMALL)
    with pytest.raises(MworkError):
        WorldConfig.from_dict({"n_peeple": 3})
    with pytest.raises(MworkError):
        build_world(0, 99, 5)
