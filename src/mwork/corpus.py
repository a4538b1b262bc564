"""Detection corpora: download (HF streaming) or read local JSONL/Parquet, then sample by seed.

A corpus file is JSONL with one document per line and a `text` field. The download step writes a
deduplicated, length-capped *pool* of documents per language; `mwork detect` samples `n_docs` of
them with the run's seed (the released code: `random.seed(112); random.sample(lines, n)`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mwork.atomic import write_jsonl
from mwork.errors import MworkError
from mwork.paths import check_input_file
from mwork.settings import CorpusSettings, schema_field


@dataclass(frozen=True)
class CorpusSource:
    """Where one language's documents come from (one of `path` or `dataset`).

    Attributes:
        path: local .jsonl/.json/.parquet file with a text field.
        dataset: HF dataset id (streamed), e.g. HuggingFaceFW/fineweb-2.
        config: dataset config name, e.g. deu_Latn.
        split: dataset split.
        text_field: name of the text column.
    """

    path: str | None = None
    dataset: str | None = None
    config: str | None = None
    split: str = schema_field("corpus/sources/split")
    text_field: str = schema_field("corpus/sources/text_field")


def _iter_parquet(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MworkError(
            f"corpus {path} is not a readable Parquet file ({reason})", "re-create it or use JSONL"
        ) from None
    if text_field not in table.column_names:
        raise MworkError(
            f"corpus {path} has no '{text_field}' column (columns: {table.column_names})",
            "set text_field in config or rename the column",
        )
    column = table.column(text_field)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise MworkError(
            f"corpus {path}: column '{text_field}' holds {column.type}, not strings",
            "store the documents as a string column",
        )
    yield from (t for t in column.to_pylist() if t)


def iter_local(path: str | Path, text_field: str = "text") -> Iterator[str]:
    """Documents of a local JSONL/JSON-lines or Parquet file, validated line by line.

    JSONL must be UTF-8 (a leading byte-order mark is accepted); a line that is not is an error
    naming the line.
    """
    path = check_input_file(path, "corpus file", "check the path in config (corpus.sources)")
    if path.suffix == ".parquet":
        yield from _iter_parquet(path, text_field)
        return
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # UTF-8 byte-order mark (some editors write one)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MworkError(
                    f"corpus {path} line {n} is not valid UTF-8 (byte {exc.start + 1} of the line)",
                    "re-encode the file as UTF-8",
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MworkError(
                    f"corpus {path} line {n} is not valid JSON ({exc.msg})",
                    "write one JSON object per line",
                ) from None
            if not isinstance(row, dict) or text_field not in row:
                raise MworkError(
                    f"corpus {path} line {n} has no '{text_field}' field",
                    f"each line must be a JSON object with a '{text_field}' string",
                )
            if not isinstance(row[text_field], str):
                raise MworkError(
                    f"corpus {path} line {n}: '{text_field}' is not a string", "fix the corpus"
                )
            yield row[text_field]


def read_corpus(path: str | Path) -> list[str]:
    """All documents of a corpus file; a one-line error if it is empty or malformed."""
    docs = [t for t in iter_local(path) if t.strip()]
    if not docs:
        raise MworkError(
            f"corpus {path} is empty", "download or generate documents for this language first"
        )
    return docs


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (recorded in neuron files for provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sample_documents(docs: list[str], n_docs: int | None, seed: int) -> list[str]:
    """`n_docs` documents drawn without replacement by `seed`, in corpus order (all if None/too few)."""
    if n_docs is None or n_docs >= len(docs):
        return list(docs)
    keep = sorted(random.Random(seed).sample(range(len(docs)), n_docs))
    return [docs[i] for i in keep]


def shard_documents(docs: list[str], shard: int, n_shards: int) -> list[str]:
    """Shard `shard` of `n_shards` (round robin), so shards' document counts differ by at most one."""
    if not 0 <= shard < n_shards:
        raise MworkError(
            f"shard {shard} is outside 0..{n_shards - 1}", "use --shard I/N with 0 <= I < N"
        )
    return docs[shard::n_shards]


def iter_hf(source: CorpusSource) -> Iterator[str]:
    """Stream documents from the HF hub (needs network; offline it fails with a clear message)."""
    import datasets

    try:
        ds = datasets.load_dataset(
            source.dataset, source.config, split=source.split, streaming=True
        )
    except Exception as exc:  # hub/network errors come in many types
        raise MworkError(
            f"cannot stream {source.dataset} ({source.config}): {type(exc).__name__}: {str(exc).splitlines()[0]}",
            "check network/HF_HUB_OFFLINE, or point corpus.sources.<lang>.path at a local file",
        ) from None
    for row in ds:
        text = row.get(source.text_field)
        if isinstance(text, str):
            yield text


def build_pool(docs: Iterable[str], pool_size: int, min_chars: int, max_chars: int) -> list[str]:
    """First `pool_size` documents that pass the length caps, exact duplicates dropped.

    Documents longer than `max_chars` are cut at the last whitespace before the cap.
    """
    seen: set[str] = set()
    pool: list[str] = []
    for text in docs:
        text = text.strip()
        if len(text) < min_chars:
            continue
        if len(text) > max_chars:
            cut = text.rfind(" ", 0, max_chars)
            text = text[: cut if cut > min_chars else max_chars]
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        pool.append(text)
        if len(pool) >= pool_size:
            break
    return pool


def pool_from_file(
    path: str | Path, settings: CorpusSettings, text_field: str = "text"
) -> tuple[list[str], str]:
    """The pool `prepare_corpus` writes from a local file, read in memory, and the sha256 of the
    file it would write (what the workflow records as corpus_sha256). The filters are idempotent:
    a pool file gives itself back, with its own sha256."""
    settings.validate()
    read = [0]  # non-blank documents read (an empty file and a filtered-out one differ)

    def counted() -> Iterator[str]:
        for text in iter_local(path, text_field):
            read[0] += bool(text.strip())
            yield text

    pool = build_pool(counted(), settings.pool_size, settings.min_chars, settings.max_chars)
    if not read[0]:
        raise MworkError(
            f"corpus {path} is empty", "download or generate documents for this language first"
        )
    if not pool:
        raise MworkError(
            f"no document of {path} passes min_chars={settings.min_chars}",
            "lower --min-chars or use another corpus",
        )
    data = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in pool)
    return pool, hashlib.sha256(data.encode("utf-8")).hexdigest()


def prepare_corpus(source: CorpusSource, out: str | Path, settings: CorpusSettings) -> int:
    """Download (or read) one language's documents into a deduplicated JSONL pool; returns its size."""
    settings.validate()
    pool_size, min_chars, max_chars = settings.pool_size, settings.min_chars, settings.max_chars
    if source.path:
        docs = iter_local(source.path, source.text_field)
    elif source.dataset:
        docs = iter_hf(source)
    else:
        raise MworkError(
            "corpus source has neither 'path' nor 'dataset'", "set one of them in config"
        )
    pool = build_pool(docs, pool_size, min_chars, max_chars)
    if not pool:
        raise MworkError(
            f"no document of {source.path or source.dataset} passes min_chars={min_chars}",
            "lower corpus.min_chars or use another source",
        )
    write_jsonl(out, ({"text": t} for t in pool))
    return len(pool)
