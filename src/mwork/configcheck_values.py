"""Config and option values that can only fail late or silently, refused before any job starts.

- `check_config_files`: a key repeated in one mapping of a YAML config file (Snakemake's loader
  keeps the last one silently, e.g. a second `detection:` section that replaces `n_docs`).
- `check_values`: a NaN or infinite number anywhere in the config (jsonschema's `minimum` lets NaN
  through: every comparison with NaN is false); counts the config alone decides can never work:
  more detection shards than documents (every shard job fails after loading the model),
  fine-tuning sizes beyond the fine-tuning pool, LAPE with fewer than two languages (its joint
  selection needs two; the recording jobs would run on the GPU first).
- `check_finite_options`: a NaN or infinite number given on the command line (`--lr inf`).

Torch-free (runs in Snakemake's process and in `mwork.cli` before any import of torch).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mwork.errors import MworkError

if TYPE_CHECKING:
    from mwork.plan import Plan


def _config_error(problem: str, fix: str) -> Exception:
    from mwork.configcheck import ConfigError  # configcheck imports this module

    return ConfigError(problem, fix)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key repeated in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)  # merge keys (<<) are resolved first, as SafeLoader does
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise _DuplicateKey(key, seen[key], line)
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key: object, first: int, again: int) -> None:
        super().__init__(key, first, again)
        self.key, self.first, self.again = key, first, again


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Refuse a config file in which one mapping repeats a key (ConfigError names file and lines).

    Args:
        paths: the config files Snakemake loaded (`workflow.configfiles`).
    """
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:  # Snakemake reports unreadable config files itself
            continue
        try:
            yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except _DuplicateKey as dup:
            raise _config_error(
                f"{path}: key '{dup.key}' appears twice in one section (lines {dup.first} and "
                f"{dup.again}); YAML keeps only the last one silently",
                "merge the two entries into one",
            ) from None
        except yaml.YAMLError:  # Snakemake has parsed it already; its own error stands
            continue


def nonfinite_values(value: Any, where: str = "") -> list[str]:
    """Config paths (`a.b[2]`) of every NaN or infinite float in a nested config."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where} = {value}"]
    if isinstance(value, Mapping):
        return [
            p
            for k, v in value.items()
            for p in nonfinite_values(v, f"{where}.{k}" if where else str(k))
        ]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in nonfinite_values(v, f"{where}[{i}]")]
    return []


def check_values(plan: Plan) -> None:
    """Raise ConfigError for a non-finite number or a count no job can satisfy (docstring)."""
    bad = nonfinite_values(dict(plan.config))
    if bad:
        raise _config_error(
            f"{bad[0]} is not a finite number"
            + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
            "give a finite value (YAML .nan/.inf are numbers to YAML, not to the study)",
        )
    det = plan.detection
    docs = min(det["n_docs"], plan.config["corpus"]["pool_size"])
    if det["shards"] > docs:
        raise _config_error(
            f"detection.shards is {det['shards']} but each language has at most {docs} documents "
            "(detection.n_docs, corpus.pool_size): some shard jobs would get no document",
            f"use detection.shards <= {docs}",
        )
    if plan.lape_dir is not None and len(plan.all_langs) < 2:
        key = "method: lape" if det["method"] == "lape" else "compare_lape: true"
        raise _config_error(
            f"detection.{key} with one language ({plan.all_langs}): LAPE selects jointly over "
            "languages and needs at least two",
            "add a language to languages.detect or use method: plnd",
        )
    ft = plan.ft
    if ft is not None:
        pool = ft.get("wiki", {}).get("pool_size")
        biggest = max((n for _, n in plan.finetune_runs()), default=0)
        if pool is not None and biggest > pool:
            raise _config_error(
                f"fine-tuning trains on up to {biggest} documents but finetune.wiki.pool_size "
                f"keeps {pool}: those runs would fail after loading the model",
                f"set finetune.wiki.pool_size >= {biggest} or lower finetune.n_docs",
            )


def check_finite_options(args: argparse.Namespace) -> None:
    """Refuse a NaN or infinite float among parsed command-line options (`--lr inf`)."""
    for name, value in sorted(vars(args).items()):
        if isinstance(value, float) and not math.isfinite(value):
            option = "--" + name.replace("_", "-")
            raise MworkError(
                f"{option} {value} is not a finite number", f"give {option} a finite value"
            )
