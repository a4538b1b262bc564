"""Typed settings of every stage, built from the validated config; defaults come from the schema.

The config schema (`mwork/data/config.schema.yaml`, also what the workflow validates against) is
the only place a default is written. Each dataclass field below reads its default from there
(`schema_default("detection/n_docs")`), so the CLI, the Snakemake scripts and the tests all agree.
A rule passes its script only the keys its job uses (`rules/common.smk`, `get_*_settings`), and
the script turns them into one of these objects with `from_mapping` (unknown keys are errors).

    ModelSpec            models.<alias>          which weights, dtype, layer count and split
    CorpusSettings       corpus                  pool size and document length filters
    DetectionSettings    detection               PLND detector (recorded in neuron files)
    LapeSettings         detection.lape          LAPE selection (mwork.lape)
    EvaluationSettings   evaluation + deactivation (mask_mode, count rule) + the output LID
    VllmSettings         evaluation.vllm         the vLLM engine of an evaluation job
    PerplexitySettings   perplexity + deactivation (mask_mode, count rule)
    LensSettings         figures.lens            the layer-wise language lens
    TableSettings        evaluation.n_boot / boot_seed
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from mwork.errors import MworkError

SCHEMA_FILE = Path(str(resources.files("mwork") / "data" / "config.schema.yaml"))


@functools.cache
def config_schema() -> dict[str, Any]:
    """The config JSON schema (draft 2020-12) as a dict."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on every import
    return yaml.load(SCHEMA_FILE.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 (safe)


def schema_default(path: str) -> Any:
    """The schema's default of one key, e.g. `schema_default("detection/n_docs")` -> 1000.

    Raises:
        KeyError: the key or its default is missing (a programming error, caught by the tests).
    """
    node = config_schema()
    for part in path.split("/"):
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        else:  # models.<alias>.<key>: the per-alias object schema
            node = node["additionalProperties"]["properties"][part]
    return node["default"]


def schema_field(path: str) -> Any:
    """A dataclass field whose default is the schema's (lists/dicts copied per instance)."""
    value = schema_default(path)
    if isinstance(value, list | dict):
        return field(default_factory=lambda: type(value)(value))
    return field(default=value)


class FromMapping:
    """Mixin of the settings dataclasses: `X.from_mapping(values)` builds one from a config mapping.

    Unknown keys raise MworkError naming `SECTION` (e.g. "unknown detection setting(s) [...]").
    """

    SECTION: ClassVar[str]  # the settings' name in error messages

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Self:
        """Build the settings from a config mapping (None: all defaults); unknown keys are errors."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise MworkError(
                f"unknown {cls.SECTION} setting(s) {unknown}", f"use only {sorted(known)}"
            )
        return cls(**values)


@dataclass(frozen=True)
class ModelSpec(FromMapping):
    """One model of the config (`models.<alias>`), as a job needs it (loaded by
    `mwork.modeling.load_spec`).

    Attributes:
        ref: local directory or hub id.
        name: the alias (result paths, file metadata).
        dtype: weights dtype when loading (PLND always scores in float32 or float64).
        trust_remote_code: allow model code from the hub.
        n_layers: the config's layer count, checked against the loaded model (None: unchecked).
        n1, n2: understanding / generation layer counts (None where a job does not use them).
        devices, max_memory, offload_folder: placement over devices (`mwork.devices`).
    """

    SECTION: ClassVar[str] = "model"

    ref: str
    name: str | None = None
    dtype: str = schema_field("models/dtype")
    trust_remote_code: bool = schema_field("models/trust_remote_code")
    n_layers: int | None = None
    n1: int | None = None
    n2: int | None = None
    devices: int | str | dict[str, int | str] = schema_field("models/devices")
    max_memory: dict[str, int | str] | None = schema_field("models/max_memory")
    offload_folder: str | None = schema_field("models/offload_folder")

    @property
    def label(self) -> str:
        return self.name or self.ref

    def split(self) -> tuple[int, int]:
        """(n1, n2), or a clear error when the spec was built without them."""
        if self.n1 is None or self.n2 is None:
            raise MworkError(
                f"model {self.label} has no n1/n2 layer split", "set models.<alias>.n1 and n2"
            )
        return self.n1, self.n2


@dataclass(frozen=True)
class CorpusSettings:
    """Detection corpus pool (config `corpus`, without `sources`)."""

    pool_size: int = schema_field("corpus/pool_size")
    min_chars: int = schema_field("corpus/min_chars")
    max_chars: int = schema_field("corpus/max_chars")

    def validate(self) -> None:
        """Raise MworkError on a pool no corpus can fill sensibly (checked before reading)."""
        if self.pool_size < 1:
            raise MworkError(f"pool_size must be >= 1 (got {self.pool_size})", "pass 1 or more")
        if self.min_chars < 0:
            raise MworkError(f"min_chars must be >= 0 (got {self.min_chars})", "pass 0 or more")
        if self.max_chars < max(1, self.min_chars):
            raise MworkError(
                f"max_chars={self.max_chars} is below min_chars={self.min_chars} (documents would "
                "be cut shorter than the minimum)",
                "use max_chars >= min_chars",
            )


@dataclass(frozen=True)
class DetectionSettings(FromMapping):
    """PLND detector settings (config `detection`; recorded in the neuron file's metadata).

    Attributes:
        importance: "paper" (Eq. 5/8 exact) or "released-code" (the official code's proxies).
        top_k_ffn / top_k_attn: per-document rank cut-off; None = proportional default.
            top_k_attn counts query dims; k/v (n_kv heads) get k·n_kv/n_heads.
        epsilon_ffn / epsilon_attn: absolute thresholds; when set they replace top-k.
        min_fraction: share of documents that must select a neuron (1.0 = every one, Eq. 2).
        max_tokens: documents are truncated to this many tokens.
        seed: document sampling seed.
        n_docs: documents sampled per language (None: all of the corpus).
        batch_size: documents per forward pass (no effect on results).
        qk_budget_mb: working memory of one Q/K scoring block (None: derived from the device).
        qk_scoring: "exact" (Eq. 8) or "first-order" (its linearisation,
            mwork.plnd.first_order; an approximation, paper importance only).
        qk_kernel: "auto", "compiled" or "torch": the C kernel of Eq. 8 on CPU
            (mwork.plnd.kernel; same results up to rounding), when it builds / always / never.
    """

    SECTION: ClassVar[str] = "detection"

    importance: str = schema_field("detection/importance")
    top_k_ffn: int | None = schema_field("detection/top_k_ffn")
    top_k_attn: int | None = schema_field("detection/top_k_attn")
    epsilon_ffn: float | None = schema_field("detection/epsilon_ffn")
    epsilon_attn: float | None = schema_field("detection/epsilon_attn")
    min_fraction: float = schema_field("detection/min_fraction")
    max_tokens: int = schema_field("detection/max_tokens")
    seed: int = schema_field("detection/seed")
    n_docs: int | None = schema_field("detection/n_docs")
    batch_size: int = schema_field("detection/batch_size")
    qk_budget_mb: float | None = schema_field("detection/qk_budget_mb")
    qk_scoring: str = schema_field("detection/qk_scoring")
    qk_kernel: str = schema_field("detection/qk_kernel")

    def validate(self) -> None:
        """Raise MworkError on settings no detection can run with."""
        from mwork.plnd import IMPORTANCE_MODES, check_kernel_mode, check_qk_scoring

        if self.importance not in IMPORTANCE_MODES:
            raise MworkError(
                f"unknown importance '{self.importance}'",
                f"use one of {', '.join(IMPORTANCE_MODES)}",
            )
        for name in ("top_k_ffn", "top_k_attn", "max_tokens", "batch_size", "n_docs"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise MworkError(f"{name} must be >= 1 (got {v})", "pass a positive integer")
        if self.qk_budget_mb is not None and not 0 < self.qk_budget_mb < math.inf:
            raise MworkError(f"qk_budget_mb must be > 0 (got {self.qk_budget_mb})", "pass e.g. 64")
        check_qk_scoring(self.qk_scoring, self.importance)
        check_kernel_mode(self.qk_kernel)  # "compiled": builds it now, before any model load
        for name in ("epsilon_ffn", "epsilon_attn"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise MworkError(
                    f"{name} must be a finite number (got {v})", "pass e.g. 0.5, or omit it (top-k)"
                )
        if not 0.0 < self.min_fraction <= 1.0:  # NaN fails too
            raise MworkError(
                f"min_fraction {self.min_fraction} is outside (0, 1]", "use e.g. 1.0 or 0.9"
            )


@dataclass(frozen=True)
class LapeSettings(FromMapping):
    """LAPE selection (config `detection.lape`; Tang et al. 2024, see `mwork.lape`).

    Attributes:
        filter_rate: quantile of all activation probabilities one language must exceed.
        top_rate: share of all FFN neurons kept, lowest entropy first (paper 1%; code 5%).
        activation_bar_ratio: quantile a language's probability must exceed to own a neuron.
    """

    SECTION: ClassVar[str] = "lape"

    filter_rate: float = schema_field("detection/lape/filter_rate")
    top_rate: float = schema_field("detection/lape/top_rate")
    activation_bar_ratio: float = schema_field("detection/lape/activation_bar_ratio")

    def validate(self) -> None:
        for name in ("filter_rate", "top_rate", "activation_bar_ratio"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise MworkError(
                    f"detection.lape.{name} must be in (0, 1] (got {v})", "use e.g. 0.95"
                )
            if v == 1.0 and name != "top_rate":  # "above the largest probability": nothing is
                raise MworkError(
                    f"detection.lape.{name} 1.0 selects no neuron for any language (no activation "
                    "probability exceeds the largest one)",
                    "use e.g. 0.95",
                )


@dataclass(frozen=True)
class EvaluationSettings(FromMapping):
    """lm-eval run settings of one evaluation job (config `evaluation` + `deactivation`), and the
    output-language identifier of its generations (`mwork.fidelity`): the lens's backend
    (`figures.lens.lid_backend`) over the study's languages (`lid_languages`: `languages.detect`
    + `enhance`, which the workflow passes; None: the job stores no output languages)."""

    SECTION: ClassVar[str] = "evaluation"

    batch_size: int = schema_field("evaluation/batch_size")
    limit: int | None = schema_field("evaluation/limit")
    max_gen_toks: int | None = schema_field("evaluation/max_gen_toks")
    backend: str = schema_field("evaluation/backend")
    vllm: dict[str, Any] = schema_field("evaluation/vllm")
    mask_mode: str = schema_field("deactivation/mask_mode")
    count: str = schema_field("deactivation/count")
    attn_n: int | None = schema_field("deactivation/attn_n")
    ffn_n: int | None = schema_field("deactivation/ffn_n")
    lid_backend: str = schema_field("figures/lens/lid_backend")
    lid_languages: list[str] | None = None


@dataclass(frozen=True)
class VllmSettings(FromMapping):
    """vLLM engine settings of an evaluation job (config `evaluation.vllm`; mwork.vllm_backend)."""

    SECTION: ClassVar[str] = "evaluation.vllm"

    max_model_len: int | None = schema_field("evaluation/vllm/max_model_len")
    gpu_memory_utilization: float = schema_field("evaluation/vllm/gpu_memory_utilization")
    cpu_kvcache_gib: float = schema_field("evaluation/vllm/cpu_kvcache_gib")
    tensor_parallel_size: int = schema_field("evaluation/vllm/tensor_parallel_size")
    enforce_eager: bool = schema_field("evaluation/vllm/enforce_eager")


@dataclass(frozen=True)
class PerplexitySettings(FromMapping):
    """Held-out perplexity under deactivation (config `perplexity` + `deactivation`)."""

    SECTION: ClassVar[str] = "perplexity"

    n_texts: int = schema_field("perplexity/n_texts")
    max_tokens: int = schema_field("perplexity/max_tokens")
    batch_size: int = schema_field("perplexity/batch_size")
    seeds: list[int] = schema_field("perplexity/seeds")
    mask_mode: str = schema_field("deactivation/mask_mode")
    count: str = schema_field("deactivation/count")
    attn_n: int | None = schema_field("deactivation/attn_n")
    ffn_n: int | None = schema_field("deactivation/ffn_n")


@dataclass(frozen=True)
class LensSettings(FromMapping):
    """Layer-wise language lens (config `figures.lens`, without the model list and variants)."""

    SECTION: ClassVar[str] = "lens"

    prompts: str | None = schema_field("figures/lens/prompts")
    top_k: int = schema_field("figures/lens/top_k")
    max_new_tokens: int = schema_field("figures/lens/max_new_tokens")
    prompt_template: str = schema_field("figures/lens/prompt_template")
    lid_backend: str = schema_field("figures/lens/lid_backend")
    lid_min_prob: float | None = schema_field("figures/lens/lid_min_prob")


@dataclass(frozen=True)
class TableSettings(FromMapping):
    """Bootstrap settings of the result tables (config `evaluation.n_boot`, `boot_seed`)."""

    SECTION: ClassVar[str] = "table"

    n_boot: int = schema_field("evaluation/n_boot")
    boot_seed: int = schema_field("evaluation/boot_seed")
