"""Models over several devices: the `models.<alias>.devices` setting, and reading/writing weights
that accelerate's dispatch hooks keep elsewhere.

`devices` (config, `mwork.settings.ModelSpec`) is one of

    1            the schema default: the whole model on the job's device (`--device`), loaded
                 straight onto it (today's single-device behaviour, without a CPU copy first)
    N >= 2       split over the first N visible GPUs (accelerate's "balanced" map)
    "auto"       accelerate's "auto" map: every visible GPU, then CPU RAM, then disk
    {module: d}  an explicit map, d = a GPU index, "cpu" or "disk" (`device_map` of from_pretrained)

`gpu_count` (torch-free: the workflow's resources use it) is what a job of the model asks Slurm for.

A split or offloaded model carries accelerate hooks (`module._hf_hook`). An offloaded module's
parameters are on the meta device; their values live in the hook's `weights_map` (CPU RAM, or
the checkpoint's safetensors files for "disk") and are moved to the execution device for each
forward and dropped after it. So code that reads a weight reads `param_value(module, name)`, code
that moves inputs uses `input_device(model)`, and weight-mode masking changes the weights map
(`offload_slot`), never the meta `.weight`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

OFFLOAD_TARGETS = ("cpu", "disk")


def gpu_count(devices: Any) -> int:
    """GPUs a job of a model with this `devices` setting asks the scheduler for (>= 1).

    1 -> 1; N -> N; "auto" -> 1 (accelerate uses what the job gets, then CPU and disk); a map ->
    the number of distinct GPU indices in it (at least 1: an all-CPU/disk map still computes on
    the job's device).
    """
    if isinstance(devices, bool):  # bool is an int subclass; the schema rejects it anyway
        return 1
    if isinstance(devices, int):
        return max(1, devices)
    if isinstance(devices, Mapping):
        gpus = {d for d in devices.values() if isinstance(d, int) and not isinstance(d, bool)}
        return max(1, len(gpus))
    return 1


def is_split(devices: Any) -> bool:
    """True unless `devices` is the single-device default (1)."""
    return not (isinstance(devices, int) and not isinstance(devices, bool) and devices == 1)


def _align_hooks(module: nn.Module) -> list[Any]:
    """accelerate AlignDevicesHooks on `module` (a SequentialHook unpacked); [] without hooks."""
    hook = getattr(module, "_hf_hook", None)
    if hook is None:
        return []
    hooks = getattr(hook, "hooks", None) or [hook]
    return [h for h in hooks if hasattr(h, "execution_device")]


def offload_slot(module: nn.Module, name: str) -> tuple[dict, str, torch.Tensor] | None:
    """(store, key, current value) of `module`'s offloaded tensor `name`, or None.

    `store[key]` is what the hook moves to the execution device before each forward: for a
    `PrefixedDataset` over an `OffloadedWeightsLoader` (disk) the loader's in-memory
    `state_dict`, which it reads before its files; for a dict-backed map (CPU offload) the dict.
    Writing a new tensor there changes every later forward; putting the old entry back restores
    it exactly. The checkpoint files are never written.
    """
    for hook in _align_hooks(module):
        wm = getattr(hook, "weights_map", None)
        if not getattr(hook, "offload", False) or wm is None:
            continue
        prefix, data = getattr(wm, "prefix", ""), getattr(wm, "dataset", wm)
        store = getattr(data, "state_dict", data)  # OffloadedWeightsLoader reads it first
        key = prefix + name
        try:
            value = data[key]
        except KeyError:
            continue
        return store, key, value
    return None


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    *path, leaf = name.split(".")
    for part in path:
        module = getattr(module, part)
    return module, leaf


def param_value(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The value of `module`'s parameter/buffer `name` (dotted for a submodule), wherever it lives.

    A tensor on the meta device is read from the offload hook's weights map and moved to the
    module's execution device; any other tensor is returned as it is (no copy).
    """
    owner, leaf = _owner(module, name)
    t = getattr(owner, leaf)
    if t is None or t.device.type != "meta":
        return t
    slot = offload_slot(owner, leaf)
    if slot is None:
        raise RuntimeError(
            f"{type(owner).__name__}.{leaf} is on the meta device with no offload hook"
        )
    return slot[2].to(execution_device(owner), t.dtype)


def execution_device(module: nn.Module) -> torch.device:
    """Where `module` computes: its accelerate hook's execution device, else its first tensor's."""
    import torch

    for hook in _align_hooks(module):
        dev = hook.execution_device
        if dev is not None:
            return torch.device(dev if not isinstance(dev, int) else f"cuda:{dev}")
    for t in [*module.parameters(), *module.buffers()]:
        if t.device.type != "meta":
            return t.device
    return torch.device("cpu")


def input_device(model: nn.Module) -> torch.device:
    """Where a model's input ids go: the execution device of its input embedding."""
    return execution_device(model.get_input_embeddings())


def is_offloaded(model: nn.Module) -> bool:
    """True when some parameter of `model` lives in an offload map (meta device)."""
    return any(p.device.type == "meta" for p in model.parameters())


def named_values(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, value) of every state-dict entry, offloaded ones read from their weights map."""
    for name, t in model.state_dict(keep_vars=True).items():
        if t.device.type == "meta":
            t = param_value(model, name)
        yield name, t
