"""Corpus preparation: hub streaming (mocked, no network), local files, sampling and sharding."""

import json

import pytest

from mwork import corpus
from mwork.corpus import CorpusSource, build_pool, prepare_corpus, sample_documents, shard_documents
from mwork.errors import MworkError
from mwork.settings import CorpusSettings


def test_hub_source_streams_filters_dedups_and_caps(monkeypatch, tmp_path):
    rows = [
        {"text": "short"},
        {"text": "a" * 50},
        {"text": "a" * 50},
        {"text": "word " * 30},
        {"other": "no text"},
        {"text": "b" * 60},
    ]
    calls = {}

    def fake_load_dataset(name, config, split, streaming):
        calls.update(name=name, config=config, split=split, streaming=streaming)
        return iter(rows)

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    out = tmp_path / "de.jsonl"
    n = prepare_corpus(
        CorpusSource(dataset="HuggingFaceFW/fineweb-2", config="deu_Latn"),
        out,
        CorpusSettings(pool_size=3, min_chars=20, max_chars=100),
    )
    assert calls == {
        "name": "HuggingFaceFW/fineweb-2",
        "config": "deu_Latn",
        "split": "train",
        "streaming": True,
    }
    docs = [json.loads(l)["text"] for l in out.read_text().splitlines()]
    assert (
        n == 3 and docs[0] == "a" * 50 and docs[2] == "b" * 60
    )  # duplicate and short ones dropped
    assert len(docs[1]) <= 100 and docs[1].endswith("word")  # cut at a space under max_chars


def test_hub_failure_is_one_line(monkeypatch, tmp_path):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'x' on the Hub (OfflineModeIsEnabled)\nmore lines")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(MworkError) as err:
        prepare_corpus(
            CorpusSource(dataset="x/y"), tmp_path / "o.jsonl", CorpusSettings(pool_size=2)
        )
    assert "\n" not in str(err.value) and "local file" in str(err.value)
    assert not (tmp_path / "o.jsonl").exists()


def test_local_parquet_and_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": ["x" * 30, "y" * 30]}), tmp_path / "c.parquet")
    assert list(corpus.iter_local(tmp_path / "c.parquet", "content")) == ["x" * 30, "y" * 30]
    with pytest.raises(MworkError, match="no 'text' column"):
        list(corpus.iter_local(tmp_path / "c.parquet"))


def test_sampling_is_seeded_and_shards_partition():
    docs = [f"d{i}" for i in range(50)]
    a, b = sample_documents(docs, 10, 112), sample_documents(docs, 10, 112)
    assert a == b and a != sample_documents(docs, 10, 113) and a == sorted(a, key=docs.index)
    shards = [shard_documents(a, i, 3) for i in range(3)]
    assert sorted(sum(shards, [])) == sorted(a) and [len(s) for s in shards] == [4, 3, 3]
    assert sample_documents(docs, 100, 1) == docs


def test_build_pool_stops_at_pool_size():
    assert build_pool((f"doc number {i} " * 5 for i in range(100)), 7, 10, 1000)[-1].startswith(
        "doc number 6"
    )
