"""Hook helpers shared by the benchmarks' lm-eval functions, and seeded item sampling.

`sample_docs_n<N>_seed<S>` is a process_docs that keeps a seeded random sample of N documents
(all of them, reordered by index, when there are fewer), e.g. `sample_docs_n500_seed0`; the
name is resolved on attribute access (PEP 562 module `__getattr__`), because lm-eval calls hooks
with fixed arguments only. `parametrised` builds such resolvers for the benchmark folders (e.g.
XQuAD's `process_results_<lang>`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

_SAMPLE_DOCS = re.compile(r"sample_docs_n(\d+)_seed(\d+)$")


def generation(results: list[Any]) -> str:
    """The (filtered) generation of one document; lm-eval passes a one-element list."""
    resp = results[0] if results else ""
    return resp if isinstance(resp, str) else ""


def first_line(text: str) -> str:
    """The first non-empty line of `text`, stripped (answers and summaries are one line)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def sample_docs(dataset: Any, n: int, seed: int) -> Any:
    """A seeded sample of `n` rows of a `datasets.Dataset`, kept in dataset order.

    Uses Python's `random.Random(seed).sample` over row indices, which is stable across
    Python and datasets versions.
    """
    k = min(n, len(dataset))
    indices = sorted(random.Random(seed).sample(range(len(dataset)), k))
    return dataset.select(indices)


def parametrised(
    module: str, pattern: str, make: Callable[[re.Match[str]], Callable[..., Any]]
) -> Callable[[str], Callable[..., Any]]:
    """A module `__getattr__` resolving names matching `pattern` to `make(match)` (cached)."""
    regex, resolved = re.compile(pattern), {}

    def getattr_(name: str) -> Callable[..., Any]:
        if name in resolved:
            return resolved[name]
        match = regex.match(name)
        if match is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        fn = make(match)
        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = module
        resolved[name] = fn
        return fn

    return getattr_


def _sampler(match: re.Match[str]) -> Callable[[Any], Any]:
    n, seed = int(match.group(1)), int(match.group(2))
    return lambda dataset: sample_docs(dataset, n, seed)


__getattr__ = parametrised(__name__, _SAMPLE_DOCS.pattern, _sampler)
