"""Fine-tuning documents: N Wikipedia documents per language, nested across N.

The pool of one language is an ordinary corpus JSONL (`text` field) written by `mwork corpus`
(`mwork.corpus.prepare_corpus`): from the HF hub (config `finetune.wiki`: streams
`wikimedia/wikipedia`, config `20231101.{lang}`; dataset id and config are configurable), or
from a local file (the demo's `world/wiki/{lang}.jsonl`, the tests). `nested_sample` draws the N
training documents from one seeded permutation of the pool, so the 100 documents are the first
100 of the 200, the 200 the first 200 of the 400, ... and a curve over N compares like with like.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence

from mwork.errors import MworkError

DOC_COUNTS: tuple[int, ...] = (100, 200, 400, 800)  # paper §4 / Fig. 4


def nested_order(n_pool: int, seed: int) -> list[int]:
    """One seeded permutation of range(n_pool); every sample size takes a prefix of it."""
    order = list(range(n_pool))
    random.Random(seed).shuffle(order)
    return order


def nested_sample(docs: Sequence[str], n_docs: int, seed: int) -> list[str]:
    """The first `n_docs` documents of the seeded permutation.

    Nested: for n <= m, sample(n) is a prefix of sample(m).

    Raises:
        MworkError: if the pool has fewer than `n_docs` documents.
    """
    if n_docs < 1:
        raise MworkError(f"n_docs must be >= 1 (got {n_docs})", "use e.g. 100, 200, 400 or 800")
    if n_docs > len(docs):
        raise MworkError(
            f"the document pool has {len(docs)} documents, fewer than n_docs={n_docs}",
            "download a larger pool (mwork corpus --pool-size) or lower n_docs",
        )
    return [docs[i] for i in nested_order(len(docs), seed)[:n_docs]]


def documents_sha256(docs: Sequence[str]) -> str:
    """sha256 of the exact training texts in order (independent of the pool file's formatting)."""
    return hashlib.sha256(json.dumps(list(docs), ensure_ascii=False).encode("utf-8")).hexdigest()
