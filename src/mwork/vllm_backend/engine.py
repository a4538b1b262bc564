"""One vLLM engine per evaluation job: start-up, greedy generation, prompt log-probs, weight loads.

The engine runs in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`: start in seconds, no
`__main__` guard needed), without prefix caching (its cached KV blocks would survive a weight
change), and loads new weights through the `WeightSwap` worker extension (`worker.py`). On a
machine without CUDA the CPU backend's settings are set too: `VLLM_CPU_KVCACHE_SPACE` (GiB of KV
cache; vLLM refuses to start with its default on small boxes) and `TORCHDYNAMO_DISABLE=1` (prompt
log-probs would otherwise compile the sampler with inductor, 8-25 s, identical values). Caches go
to a job-local directory (`VLLM_CACHE_ROOT`, `TORCHINDUCTOR_CACHE_DIR`) unless already set.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mwork.errors import MworkError
from mwork.settings import ModelSpec, VllmSettings

log = logging.getLogger(__name__)

WORKER_EXTENSION = "mwork.vllm_backend.worker.WeightSwap"


def _process_environment() -> dict[str, str]:
    """The settings vLLM and torch read at import: in-process engine; on CPU no dynamo compile."""
    env = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    if not torch.cuda.is_available():
        env["TORCHDYNAMO_DISABLE"] = "1"
    for key, value in env.items():
        os.environ.setdefault(key, value)
    return env


def require_vllm() -> None:
    """Fail early (before any model load) when vLLM is not importable in this environment.

    Sets the import-time environment first (`_process_environment`), so call it before anything
    imports vLLM.
    """
    _process_environment()
    try:
        from vllm import LLM  # noqa: F401  (not `import vllm`: tests/vllm is a namespace package)
    except Exception as err:  # ImportError, or a broken install (wrong torchvision, ...)
        raise MworkError(
            f"evaluation.backend is vllm but vLLM cannot be imported here ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})",
            "run the job in the vLLM environment (bash .ci/vllm-setup.sh; docs/vllm.md) "
            "or set evaluation.backend: hf",
        ) from None


def engine_environment(settings: VllmSettings, cache_dir: str) -> dict[str, str]:
    """Environment variables the engine needs (existing ones kept): the import-time ones, the CPU
    KV cache size and job-local cache directories (read when an engine starts)."""
    env = _process_environment() | {
        "VLLM_CACHE_ROOT": os.path.join(cache_dir, "vllm"),
        "TORCHINDUCTOR_CACHE_DIR": os.path.join(cache_dir, "inductor"),
    }
    if not torch.cuda.is_available():
        env["VLLM_CPU_KVCACHE_SPACE"] = f"{settings.cpu_kvcache_gib:g}"
    for key, value in env.items():
        os.environ.setdefault(key, value)
    if os.environ.get("TORCHDYNAMO_DISABLE") == "1":  # in case torch._dynamo read it already
        importlib.import_module("torch._dynamo").config.disable = True
    return {k: os.environ[k] for k in env}


class VllmEngine:
    """A `vllm.LLM` over the model's checkpoint (the unmasked weights), with mwork's weight swap.

    Args:
        spec: the model (ref = local directory or hub id, dtype, trust_remote_code).
        settings: engine settings (`evaluation.vllm`).
        max_model_len: the context length (the hf backend's lm-eval max length of this model,
            or `settings.max_model_len`).
    """

    def __init__(self, spec: ModelSpec, settings: VllmSettings, max_model_len: int) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="mwork_vllm_")
        env = engine_environment(settings, self._tmp.name)
        require_vllm()
        from vllm import LLM

        start = time.perf_counter()
        kwargs: dict[str, Any] = dict(
            model=spec.ref,
            dtype=spec.dtype,
            trust_remote_code=spec.trust_remote_code,
            enforce_eager=settings.enforce_eager,
            enable_prefix_caching=False,
            max_model_len=max_model_len,
            seed=0,
            tensor_parallel_size=settings.tensor_parallel_size,
            worker_extension_cls=WORKER_EXTENSION,
        )
        if torch.cuda.is_available():
            kwargs["gpu_memory_utilization"] = settings.gpu_memory_utilization
        self.llm = LLM(**kwargs)
        self.max_model_len = max_model_len
        log.info(
            "vLLM engine up in %.1f s (%s, %s, max_model_len %d, tp %d; %s)",
            time.perf_counter() - start,
            spec.label,
            spec.dtype,
            max_model_len,
            settings.tensor_parallel_size,
            ", ".join(f"{k}={v}" for k, v in env.items()),
        )

    def generate(self, prompts: Sequence[Sequence[int]], params: Sequence[Any]) -> list[list[int]]:
        """Generated token ids of each prompt (token ids), in order; one engine call."""
        if not prompts:
            return []
        outs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], list(params), use_tqdm=False
        )
        return [list(o.outputs[0].token_ids) for o in outs]

    def prompt_logprobs(self, prompts: Sequence[Sequence[int]]) -> list[list[dict[int, float]]]:
        """Per prompt and position i >= 1: {token id: log p(token | prompt[:i])} holding the
        prompt's own token at i and the top-1 token (position 0 is an empty dict)."""
        if not prompts:
            return []
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        outs = self.llm.generate(
            [{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False
        )
        return [
            [{t: lp.logprob for t, lp in (pos or {}).items()} for pos in o.prompt_logprobs]
            for o in outs
        ]

    def load_weights(self, tensors: Mapping[str, torch.Tensor]) -> float:
        """Load full HF-named checkpoint tensors into the running model; reset the prefix cache.

        `tensors` must hold every tensor of every layer it touches (`weights.layer_tensors`).

        Returns:
            Seconds taken.
        """
        start = time.perf_counter()
        names = list(tensors)
        values = [t.detach().cpu().contiguous() for t in tensors.values()]
        counts = self.llm.collective_rpc("mwork_load_weights", args=(names, values))
        if any(c != len(names) for c in counts):
            raise RuntimeError(f"vLLM workers loaded {counts} tensors of {len(names)}")
        self.llm.reset_prefix_cache()
        return time.perf_counter() - start

    def close(self) -> None:
        """Drop the engine and its cache directory."""
        self.llm = None
        self._tmp.cleanup()
