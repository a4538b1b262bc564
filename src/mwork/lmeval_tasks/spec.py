"""A task spec: one benchmark x language x prompt variant x data source, validated.

A spec (`TaskSpec`, e.g. from the workflow config) names the benchmark, the language, the prompt
variant and the data source; `TaskSpec.name` is its lm-eval task name: `mwork_{task}_{lang}` for
the default variant ("paper"), otherwise `mwork_{task}_{variant}_{lang}` (e.g.
`mwork_mgsm_native_cot_zh`, `mwork_xcsqa_letters_de`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mwork.errors import MworkError
from mwork.lmeval_tasks.benchmarks import (
    BENCHMARKS,
    LOCAL_BUILDERS,
    TASKS,
    TEMPLATE_DIR,
    load_prompts,
)

DEFAULT_VARIANT = "paper"
DEFAULT_MAX_ARTICLE_CHARS = 2000  # XLSum articles are cut so the instruction is never truncated


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One benchmark x language x prompt variant x data source.

    Attributes:
        task: "mgsm", "xquad", "xcsqa" or "xlsum".
        lang: ISO 639-1 code (a key of prompts.yaml for this task and variant).
        source: "hf" (the real dataset from the Hub/cache) or "local" (JSONL or parquet, same
            schema).
        path: the local .jsonl/.json/.parquet file (source "local" only).
        prompt_variant: mgsm: paper | code | native_cot | direct; xcsqa: paper | letters;
            xquad, xlsum: paper.
        n_samples: keep a seeded random sample of this many items (default 500 for xlsum,
            all items otherwise).
        seed: seed of that sample.
        hf_dataset: override the HF dataset id (e.g. a mirror).
        hf_name: override the HF config name.
        hf_revision: Hub revision (branch, tag, commit, or PARQUET_EXPORT); None: the
            benchmark's default (`Benchmark.revision`).
        max_gen_toks: generation length (default mgsm 512, xquad 64, xlsum 128).
        max_article_chars: xlsum: cut the article to this many characters (None: no cut).
    """

    task: str
    lang: str
    source: str = "hf"
    path: str | None = None
    prompt_variant: str = DEFAULT_VARIANT
    n_samples: int | None = None
    seed: int = 0
    hf_dataset: str | None = None
    hf_name: str | None = None
    hf_revision: str | None = None
    max_gen_toks: int | None = None
    max_article_chars: int | None = DEFAULT_MAX_ARTICLE_CHARS

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | TaskSpec) -> TaskSpec:
        """Validate a mapping (unknown keys are errors) and fill defaults."""
        if isinstance(cfg, TaskSpec):
            return cfg
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise MworkError(f"unknown task spec key(s) {unknown}", f"use only {sorted(known)}")
        if "task" not in cfg or "lang" not in cfg:
            raise MworkError(f"task spec {dict(cfg)} lacks 'task' or 'lang'", "give both")
        kw = dict(cfg)
        if kw.get("prompt_variant") is None:
            kw["prompt_variant"] = DEFAULT_VARIANT
        if kw.get("n_samples") is None:
            kw["n_samples"] = BENCHMARKS[kw["task"]].n_samples if kw["task"] in BENCHMARKS else None
        spec = cls(**kw)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise MworkError on an impossible combination."""
        if self.task not in TASKS:
            raise MworkError(f"unknown task {self.task!r}", f"choose from {list(TASKS)}")
        variants = load_prompts()[self.task]
        if self.prompt_variant not in variants:
            raise MworkError(
                f"{self.task} has no prompt variant {self.prompt_variant!r}",
                f"choose from {sorted(variants)}",
            )
        if self.lang not in variants[self.prompt_variant]:
            raise MworkError(
                f"no {self.task}/{self.prompt_variant} prompt for language {self.lang!r}",
                f"add it to {TEMPLATE_DIR / self.task / 'prompts.yaml'} or choose from "
                f"{sorted(variants[self.prompt_variant])}",
            )
        if self.source == "local":
            if not self.path:
                raise MworkError(f"{self.name}: source 'local' needs a 'path' to a JSONL file")
            if Path(self.path).suffix.lower() not in LOCAL_BUILDERS:
                raise MworkError(
                    f"{self.name}: local data file {self.path} is neither JSONL nor parquet",
                    f"give a file ending in {', '.join(LOCAL_BUILDERS)}",
                )
        elif self.source == "hf":
            if self.hf_name is None and self.lang not in BENCHMARKS[self.task].hf_configs:
                raise MworkError(
                    f"the HF dataset of {self.task} has no language {self.lang!r}",
                    f"use source: local, set hf_name, or choose from "
                    f"{sorted(BENCHMARKS[self.task].hf_configs)}",
                )
        else:
            raise MworkError(f"unknown data source {self.source!r}", "use 'hf' or 'local'")
        for key in ("n_samples", "max_gen_toks", "max_article_chars"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise MworkError(f"{self.name}: {key} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise MworkError(f"{self.name}: seed must be a non-negative integer, got {self.seed!r}")

    @property
    def name(self) -> str:
        """The lm-eval task name."""
        variant = "" if self.prompt_variant == DEFAULT_VARIANT else f"{self.prompt_variant}_"
        return f"mwork_{self.task}_{variant}{self.lang}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict (for result JSON)."""
        return dataclasses.asdict(self)
