"""Finiteness checks: a NaN or Inf anywhere stops the job with one line naming where.

A NaN weight, an Inf weight or a float16 overflow makes every importance score, activation
probability or loss NaN; ranking, counting (`NaN > 0` is False) and training then go on silently
and write a plausible but meaningless result. These checks are reductions over data the job
already holds (one `isfinite` pass, one device sync per call) and raise `MworkError`:

- `check_weights`: every floating parameter and buffer of a loaded model (after load and after
  a delta is applied), naming the tensor and its layer;
- `check_scores`: a batch's PLND importance per component ([b, n_layers, n_units]) or a LAPE
  batch's activations, naming component, layer and batch;
- `check_loss`: a fine-tuning step's loss, naming the step;
- `check_tensors`: tensors read from a file (a delta), naming the file and tensor;
- `watch_logits`: every forward pass's logits inside a block (an lm-eval run), one flag on the
  device, read once at the end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch

from mwork.devices import param_value
from mwork.errors import MworkError

_LAYER = re.compile(r"\.(?:layers|h|blocks)\.(\d+)\.")


def _layer_of(name: str) -> str:
    m = _LAYER.search(f".{name}")
    return f"layer {m.group(1)}, " if m else ""


def first_nonfinite(tensors: Mapping[str, torch.Tensor]) -> tuple[str, int, float] | None:
    """(name, count, first bad value) of the first tensor holding a NaN/Inf; None if all finite.

    The fast test is each tensor's sum (a NaN or Inf element makes it non-finite; a sum is one
    read of the tensor, several times faster than an element-wise `isfinite` on CPU), computed
    on the tensor's device and read back together (one synchronisation). A flagged tensor is
    then checked element by element, so a finite tensor whose sum overflows is not reported.
    """
    names = [k for k, t in tensors.items() if torch.is_floating_point(t) and t.numel()]
    if not names:
        return None
    dev = tensors[names[0]].device  # a split model's sums gather there (1-element copies)
    sums = torch.cat([_sum(tensors[k].detach()).reshape(1).to(dev) for k in names])
    flagged = (~torch.isfinite(sums)).nonzero().flatten().tolist()  # the one synchronisation
    for i in flagged:
        t = tensors[names[i]].detach()
        mask = ~torch.isfinite(t)
        if bool(mask.any()):
            return names[i], int(mask.sum()), float(t[mask].flatten()[0])
    return None


def _sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of `t`, half precision accumulated in float32 (its own dtype overflows early)."""
    return t.sum(dtype=torch.float32) if t.element_size() < 4 else t.sum()


def check_weights(model: torch.nn.Module, what: str, fix: str | None = None) -> None:
    """Refuse a model with a NaN or Inf in any parameter or buffer.

    Args:
        model: the loaded model.
        what: the model's name in the message (path or alias).
        fix: the advice (default: re-download or re-save the model).
    """
    tensors = dict(model.named_parameters())
    tensors.update((k, b) for k, b in model.named_buffers() if k not in tensors)
    tensors = {  # offloaded (meta) weights: their values from the offload map (mwork.devices)
        k: param_value(model, k) if t.device.type == "meta" else t for k, t in tensors.items()
    }
    found = first_nonfinite(tensors)
    if found is None:
        return
    name, count, value = found
    dtype = str(tensors[name].dtype).removeprefix("torch.")
    overflow = ""
    if dtype in ("float16", "bfloat16") and math.isinf(value):
        overflow = f" (values beyond {dtype}'s range overflow to inf: load it as float32)"
    raise MworkError(
        f"model {what}: {_layer_of(name)}weight {name} holds {count} non-finite value(s) "
        f"({value}) in {dtype}{overflow}",
        fix or "the weights are corrupt; re-download or re-save the model",
    )


def check_scores(
    scores: Mapping[str, torch.Tensor], what: str, batch: int, fix: str | None = None
) -> None:
    """Refuse a batch whose scores hold a NaN or Inf.

    Args:
        scores: component -> [b, n_layers, n_units] (PLND importance) or [n_layers, ...] with
            `layer_dim` 0 semantics: the layer is dimension 1 for 3-D tensors, 0 otherwise.
        what: the detector ("PLND importance", "LAPE activations").
        batch: the batch number (0-based) in the message.
        fix: the advice.
    """
    found = first_nonfinite(scores)
    if found is None:
        return
    comp, count, value = found
    t = scores[comp].detach()
    layer_dim = 1 if t.dim() == 3 else 0
    bad = (~torch.isfinite(t)).flatten(layer_dim + 1).any(dim=-1)
    if layer_dim:
        bad = bad.any(dim=0)
    layer = int(bad.nonzero()[0])
    raise MworkError(
        f"{what} of {comp} in layer {layer} is non-finite ({value}, {count} value(s)) in batch "
        f"{batch}: the model produces NaN/Inf on this input",
        fix or "check the weights, or load the model in float32 (float16 overflows)",
    )


def check_loss(loss: float, step: int, lr: float) -> None:
    """Refuse a non-finite training loss at optimizer step `step` (1-based)."""
    if math.isfinite(loss):
        return
    raise MworkError(
        f"fine-tuning loss is {loss} at step {step} (lr {lr:g}): training diverged and every "
        "later value would be NaN",
        "lower the learning rate (released code: 2e-6) or check the base model",
    )


def check_tensors(tensors: Mapping[str, torch.Tensor], where: str, fix: str) -> None:
    """Refuse tensors read from `where` (a file) that hold a NaN or Inf."""
    found = first_nonfinite(tensors)
    if found is not None:
        name, count, value = found
        raise MworkError(f"{where}: tensor {name} holds {count} non-finite value(s) ({value})", fix)


@contextmanager
def watch_logits(model: torch.nn.Module, what: str) -> Iterator[None]:
    """Refuse, at the end of the block, a run in which any forward pass produced NaN/Inf logits.

    A hook on the output embedding ORs `any(~isfinite(logits))` into one flag on the device (no
    synchronisation per pass; the reduction costs about 1/d_model of the head's matmul). NaN
    logits still give a 0/1 score per item, so an lm-eval run would report an accuracy.

    Args:
        model: a transformers causal LM.
        what: the run in the message (e.g. the task names).
    """
    head = model.get_output_embeddings()
    flags: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, _args: object, out: torch.Tensor) -> None:
        bad = (~torch.isfinite(out.detach())).any()
        if flags:
            flags[0] |= bad.to(flags[0].device)
        else:
            flags.append(bad.clone())

    handle = head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
    if flags and bool(flags[0]):
        raise MworkError(
            f"{what}: the model produced NaN/Inf logits, so its scores mean nothing",
            "check the weights, or load the model in float32 (float16 overflows)",
        )
