"""Worker side of the engine: load HF-named tensors into the running model (vLLM worker extension).

vLLM mixes `WeightSwap` into its worker class (`LLM(worker_extension_cls=...)`); the driver calls
`llm.collective_rpc("mwork_load_weights", args=(names, tensors))`, which runs in every worker
(in-process mode: the same process; tensor parallel: each rank, which shards the full tensors
itself through the model's weight loaders).

Why not edit `.weight` in place: on the CPU backend every linear weight is a 0-element Parameter
after loading (the values live in oneDNN-packed buffers), so an in-place edit silently does
nothing. The reload path (`model_runner.reload_weights(is_checkpoint_format=True)`) re-runs the
checkpoint loaders and the per-layer kernel processing (repacking), on CPU and CUDA alike. It must
get EVERY tensor of every layer it touches: a fused layer (qkv_proj, gate_up_proj) that receives
only some of its checkpoint tensors is processed with the rest uninitialised (garbage, no error).
Layers that receive nothing keep their kernel tensors (vLLM logs "Failed to load weights" for each,
which is expected here and silenced).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

_NOISY = (
    "vllm.model_executor.model_loader.reload.layerwise",
    "vllm.model_executor.model_loader.reload.inplace",
)


class WeightSwap:
    """vLLM worker extension (a mix-in of the worker: `self.model_runner` is vLLM's)."""

    model_runner: Any

    def mwork_load_weights(self, names: Sequence[str], tensors: Sequence[Any]) -> int:
        """Load full, HF-named checkpoint tensors (names[i] -> tensors[i]) into the model.

        Returns:
            The number of tensors passed in (the caller checks it against what it sent).
        """
        loggers = [logging.getLogger(n) for n in _NOISY]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            self.model_runner.reload_weights(
                weights_iterator=iter(list(zip(names, tensors, strict=True))),
                is_checkpoint_format=True,
            )
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
        return len(names)
