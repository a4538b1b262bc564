"""The vllm backend of one evaluation job: engine + lm-eval model + intervention mirroring."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from lm_eval.models.utils import resolve_max_length

from mwork.settings import EvaluationSettings, ModelSpec, VllmSettings
from mwork.vllm_backend.engine import VllmEngine
from mwork.vllm_backend.lm import VllmLM
from mwork.vllm_backend.weights import synced

HFLM_DEFAULT_MAX_LENGTH = 2048
"""lm-eval HFLM's context length when neither the config nor the tokenizer names one."""


@dataclass
class VllmBackend:
    """A job's engine, its lm-eval model, and the weight-load times (apply, restore, ...)."""

    engine: VllmEngine
    lm: VllmLM
    model: Any
    load_seconds: list[float] = field(default_factory=list)

    def wrap(
        self, intervention: Callable[[], AbstractContextManager[Any]] | None
    ) -> Callable[[], AbstractContextManager[Any]] | None:
        """The intervention factory, mirrored into the engine (None stays None)."""
        if intervention is None:
            return None
        return lambda: synced(self.engine, self.model, intervention, self.load_seconds)

    def close(self) -> None:
        self.engine.close()


def open_backend(
    spec: ModelSpec, settings: EvaluationSettings, model: Any, tokenizer: Any
) -> VllmBackend:
    """Start the engine on `spec`'s checkpoint; the LM scores with `tokenizer` like HFLM.

    Args:
        spec: the model (the engine loads `spec.ref`, the unmodified checkpoint).
        settings: the job's evaluation settings (`vllm` sub-settings used).
        model: the job's HF model (CPU), which interventions edit.
        tokenizer: its tokenizer.
    """
    vs = VllmSettings.from_mapping(settings.vllm)
    max_length = vs.max_model_len or resolve_max_length(
        model.config, tokenizer, default=HFLM_DEFAULT_MAX_LENGTH
    )
    engine = VllmEngine(spec, vs, max_length)
    return VllmBackend(engine, VllmLM(engine, tokenizer, max_length), model)
