"""Carry an intervention on the HF model (mask, fine-tuning delta) into the running vLLM engine.

The job keeps the HF model on the CPU as the source of truth: an intervention (e.g.
`mwork.mask.mask_neurons(..., "weights")`, the fine-tuning delta) edits its parameters in place
and restores them bit for bit on exit, exactly as on the hf backend. `synced` wraps it: after
entering, every parameter whose version counter moved (an in-place edit) is found, and every
tensor of every decoder layer holding one (`layer_tensors`) is loaded into the engine; after
exiting, the same tensors (now the originals) are loaded again. Restore is therefore bit-exact
(the same values go through the same loader) and masks never need re-implementing for vLLM's
fused, sharded or repacked layouts: vLLM's own checkpoint loaders shard full tensors per
tensor-parallel rank.

Hooks cannot be carried (vLLM runs its own modules): an intervention that registers forward
hooks on the HF model is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch

from mwork.errors import MworkError

log = logging.getLogger(__name__)

_LAYER = re.compile(r"^(.*?\.(?:layers|h)\.\d+\.)")


def layer_of(name: str) -> str | None:
    """The decoder-layer prefix of a parameter name ("model.layers.3."), None outside layers."""
    match = _LAYER.match(name)
    return match.group(1) if match else None


def layer_tensors(model: torch.nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Every parameter of every layer holding one of `names` (others: the named tensor alone).

    A fused vLLM layer (qkv_proj from q/k/v_proj, gate_up_proj from gate/up_proj) is processed
    from whatever it received: all of its checkpoint tensors must be sent together.
    """
    names = set(names)
    prefixes = {p for p in map(layer_of, names) if p is not None}
    return {
        n: p.data for n, p in model.named_parameters() if n in names or (layer_of(n) in prefixes)
    }


def _hooked(model: torch.nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


@contextmanager
def synced(
    engine: Any,
    model: torch.nn.Module,
    intervention: Callable[[], AbstractContextManager[Any]],
    timings: list[float] | None = None,
) -> Iterator[Any]:
    """Enter `intervention` on the HF `model` and mirror its weight edits into `engine`.

    Args:
        engine: a `VllmEngine` (`load_weights(name -> tensor)`).
        model: the HF model the intervention edits in place.
        intervention: factory of the context manager (mask, delta).
        timings: if given, the apply and restore load times (s) are appended.

    Yields:
        What the intervention yields.
    """
    params = dict(model.named_parameters())
    before = {n: p._version for n, p in params.items()}
    hooked_before = _hooked(model)
    touched: list[str] = []
    try:
        with intervention() as value:
            if _hooked(model) and not hooked_before:
                raise MworkError(
                    "the intervention registers forward hooks, which the vllm backend cannot carry",
                    "use deactivation.mask_mode: weights (the vllm backend's mode)",
                )
            touched = sorted(n for n, p in params.items() if p._version != before[n])
            tensors = layer_tensors(model, touched)
            seconds = engine.load_weights(tensors) if tensors else 0.0
            log.info(
                "vllm: loaded %d tensors of %d layers (%d edited) in %.3f s",
                len(tensors),
                len({layer_of(n) or n for n in touched}),
                len(touched),
                seconds,
            )
            if timings is not None:
                timings.append(seconds)
            yield value
    finally:  # the intervention has put the original values back: load them (also on errors)
        if touched:
            seconds = engine.load_weights(layer_tensors(model, touched))
            log.info("vllm: restored %d edited tensors' layers in %.3f s", len(touched), seconds)
            if timings is not None:
                timings.append(seconds)
