"""Loading models and tokenizers safely, and fingerprinting their weights.

`trust_remote_code` stays off unless the config says so; a missing local path, a directory without
config/weights/tokenizer, an unknown hub id offline, an unsupported architecture, truncated weights
or weights that do not match the config (missing/unexpected keys) each give a one-line error.
`load_spec` loads the model a job's `mwork.settings.ModelSpec` names and checks its layer count.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import torch

from mwork.adapters import get_adapter, supported_architectures
from mwork.devices import OFFLOAD_TARGETS, is_split, named_values
from mwork.errors import MworkError
from mwork.finite import check_weights

if TYPE_CHECKING:
    from mwork.settings import ModelSpec

log = logging.getLogger(__name__)

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "auto": "auto",
}
# A local model directory needs a config, weights and a tokenizer (any one of each group).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
SHOWN_KEYS = 3  # weight names listed in a load error


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' = CUDA when available, else CPU; anything torch cannot use is a one-line error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise MworkError(f"unknown device '{device}'", "use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise MworkError(
                f"device {device} requested but CUDA is not available", "use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise MworkError(
                f"device {device} does not exist ({torch.cuda.device_count()} GPUs)",
                "use cuda:0 .. cuda:N-1",
            )
    elif dev.type != "cpu":
        raise MworkError(f"device '{device}' is not supported", "use auto, cpu, cuda or cuda:N")
    return dev


def device_map_kwargs(
    devices: Any,
    device: str = "auto",
    max_memory: Mapping[str, Any] | None = None,
    offload_folder: str | None = None,
) -> dict[str, Any]:
    """`from_pretrained` placement arguments of a `devices` setting (checked before loading).

    1 -> {"device_map": {"": <the job's device>}}; N -> accelerate's "balanced" map over GPUs
    0..N-1 (`max_memory` or 90% of each); "auto" -> accelerate's "auto" (GPUs, CPU, disk);
    a map -> itself, each value a visible GPU index, "cpu" or "disk".
    """
    if not is_split(devices):
        dev = resolve_device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        return {"device_map": {"": str(dev)}}
    n_gpus = torch.cuda.device_count()
    out: dict[str, Any] = {"offload_folder": offload_folder or _offload_dir()}
    if max_memory:
        out["max_memory"] = {_memory_key(k): v for k, v in max_memory.items()}
    if devices == "auto":
        return out | {"device_map": "auto"}
    if isinstance(devices, int):
        if devices > n_gpus:
            raise MworkError(
                f"the model asks for {devices} GPUs (models.<alias>.devices) but {n_gpus} are visible",
                "run it where that many GPUs are visible, or lower devices",
            )
        out.setdefault(
            "max_memory",
            {
                i: int(0.9 * torch.cuda.get_device_properties(i).total_memory)
                for i in range(devices)
            },
        )
        return out | {"device_map": "balanced"}
    if not isinstance(devices, Mapping) or not devices:
        raise MworkError(
            f"devices setting {devices!r} is not 1, N, auto or a map",
            "see docs/large-models.md",
        )
    for module, where in devices.items():
        gpu_ok = isinstance(where, int) and not isinstance(where, bool) and 0 <= where < n_gpus
        if not gpu_ok and where not in OFFLOAD_TARGETS:
            raise MworkError(
                f"devices map puts {module} on {where!r}, which is not a visible GPU index "
                f"({n_gpus} GPUs), cpu or disk",
                "use 0..N-1, cpu or disk",
            )
    return out | {"device_map": dict(devices)}


def _memory_key(key: Any) -> Any:
    """max_memory keys from YAML: "0" -> GPU 0; "cpu"/"disk" stay."""
    return int(key) if isinstance(key, str) and key.isdigit() else key


def _offload_dir() -> str:
    """A temporary offload folder, removed when the process exits."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="mwork-offload-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith((".", "/", "~")) or name.count("/") > 1


def check_model_dir(name_or_path: str) -> None:
    """For a local model: a directory with a config, weights and tokenizer files (no loading)."""
    if not _looks_local(name_or_path):
        return
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise MworkError(
            f"model path {name_or_path} does not exist",
            "check the path or use a hub id like org/name",
        )
    if not path.is_dir():
        raise MworkError(
            f"model path {name_or_path} is a file, not a model directory",
            "pass the directory that holds config.json and the weights",
        )
    present = {p.name for p in path.iterdir()}
    if "config.json" not in present:
        raise MworkError(
            f"model directory {name_or_path} has no config.json", "pass a save_pretrained directory"
        )
    if not present & set(WEIGHT_FILES):
        raise MworkError(
            f"model directory {name_or_path} has no weights ({', '.join(WEIGHT_FILES[:3])})",
            "copy the weights into it or pass another directory",
        )


def check_tokenizer_files(name_or_path: str) -> None:
    """A local model directory must hold tokenizer files (checked before any weight is read)."""
    if not _looks_local(name_or_path):
        return
    present = {p.name for p in Path(name_or_path).expanduser().iterdir()}
    if not present & set(TOKENIZER_FILES):
        raise MworkError(
            f"model directory {name_or_path} has no tokenizer files "
            f"({', '.join(TOKENIZER_FILES[:3])})",
            "save the tokenizer into it (tokenizer.save_pretrained)",
        )


def read_model_config(name_or_path: str, trust_remote_code: bool = False):
    """The model's `PretrainedConfig` (config.json only, no weights), architecture checked."""
    from transformers import AutoConfig

    check_model_dir(name_or_path)
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise MworkError(
            f"cannot load model config of {name_or_path}: {_first_line(exc)}",
            "check the id/path (offline runs need a local directory)",
        ) from None
    if config.model_type not in supported_architectures():
        raise MworkError(
            f"unsupported architecture '{config.model_type}' ({name_or_path})",
            f"supported: {', '.join(supported_architectures())}",
        )
    check_tokenizer_files(name_or_path)
    return config


def config_shape(config) -> tuple[int, dict[str, int]]:
    """(n_layers, units per layer of every component) from a config alone (no weights)."""
    adapter = get_adapter(SimpleNamespace(config=config))  # adapters read only `.config` here
    return adapter.n_layers, adapter.unit_counts()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _shown(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def check_loading_info(name_or_path: str, config, info: dict) -> None:
    """Every parameter must come from the checkpoint: missing/unexpected/mismatched weights are
    errors (a tied `lm_head` is not missing), never a silently random-initialised model."""
    missing = set(info.get("missing_keys") or ())
    if getattr(config, "tie_word_embeddings", False):
        missing = {k for k in missing if not k.startswith("lm_head.")}
    problems = [
        (missing, "missing"),
        (set(info.get("unexpected_keys") or ()), "unexpected"),
        (
            {
                str(k[0]) if isinstance(k, tuple) else str(k)
                for k in info.get("mismatched_keys") or ()
            },
            "of the wrong shape",
        ),
    ]
    for keys, what in problems:
        if keys:
            raise MworkError(
                f"model {name_or_path}: {len(keys)} weight(s) {what} in the checkpoint "
                f"({_shown(keys)})",
                "the weights do not belong to this config; re-download or re-save the model",
            )
    if info.get("error_msgs"):
        raise MworkError(
            f"model {name_or_path}: weights did not load ({_first_line(info['error_msgs'][0])})",
            "re-download or re-save the model",
        )


def load_model(
    name_or_path: str,
    dtype: str,
    device: str = "auto",
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
    devices: Any = 1,
    max_memory: Mapping[str, Any] | None = None,
    offload_folder: str | None = None,
):
    """Load a causal LM + tokenizer (eval mode) and check its architecture is supported.

    Weights go straight from the checkpoint to their devices (`device_map`): host RAM holds about
    one shard file at a time, never a CPU copy of the whole model. Every parameter must be
    loaded from the checkpoint (`check_loading_info`).

    Args:
        devices: 1 = everything on `device` (the default); N, "auto" or an explicit map split or
            offload the model through accelerate (`mwork.devices`, `device_map_kwargs`).
        max_memory: per-device caps for N/"auto" (accelerate's `max_memory`, e.g. {0: "70GiB"}).
        offload_folder: where weights offloaded to disk go (None: a temporary directory; weights
            of safetensors checkpoints are read from the checkpoint files themselves).

    Returns:
        (model, tokenizer, adapter)
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if dtype not in DTYPES:
        raise MworkError(f"unknown dtype '{dtype}'", f"use one of {', '.join(DTYPES)}")
    config = read_model_config(name_or_path, trust_remote_code)
    placement = device_map_kwargs(devices, device, max_memory, offload_folder)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report is replaced by check_loading_info's line
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            name_or_path,
            dtype=DTYPES[dtype],
            trust_remote_code=trust_remote_code,
            attn_implementation=attn_implementation,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported by name in check_loading_info instead
            **placement,
        )
    except Exception as exc:  # truncated/corrupt weights raise several types
        fix = "re-download or re-save the model"
        if is_split(devices):
            fix = "check models.<alias>.devices (module names, GPU index, cpu or disk), or " + fix
        raise MworkError(
            f"cannot load the weights of {name_or_path}: {_first_line(exc)}", fix
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    check_loading_info(name_or_path, config, info)
    model = model.eval()  # already on its device(s): no `.to()`, which would undo a split
    check_weights(model, name_or_path)  # a NaN/Inf weight: one line naming it (mwork.finite)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise MworkError(
            f"cannot load the tokenizer of {name_or_path}: {_first_line(exc)}",
            "save the tokenizer into the model directory",
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer, get_adapter(model)


def load_spec(spec: ModelSpec, device: str = "auto"):
    """Load (model, tokenizer, adapter) of a config model and check its layer count.

    Args:
        spec: the model (`models.<alias>`): ref, dtype, trust_remote_code, and n_layers, which
            must match the loaded model when set.
        device: "auto", "cpu", "cuda", ...

    Returns:
        (model, tokenizer, adapter), as `load_model`.
    """
    model, tokenizer, adapter = load_model(
        spec.ref,
        spec.dtype,
        device,
        spec.trust_remote_code,
        devices=spec.devices,
        max_memory=spec.max_memory,
        offload_folder=spec.offload_folder,
    )
    if spec.n_layers is not None and spec.n_layers != adapter.n_layers:
        raise MworkError(
            f"config says {spec.label} has {spec.n_layers} layers but the model has {adapter.n_layers}",
            "fix models.<alias>.n_layers in the config",
        )
    # benchmarks/rule_costs.py splits a job's time at this line: fixed cost before, work after
    log.info("model loaded: %s (%s, %d layers)", spec.label, spec.dtype, adapter.n_layers)
    return model, tokenizer, adapter


def model_fingerprint(model: torch.nn.Module, samples: int = 4096) -> str:
    """A cheap, dtype-robust weight fingerprint: names, shapes and bf16-rounded strided samples.

    Two loads of the same checkpoint (fp32 or bf16) give the same fingerprint; another model or
    another fine-tune gives a different one. Hashing every byte of a 7B model would take minutes.
    """
    h = hashlib.sha256()
    for name, p in sorted(named_values(model)):  # offloaded weights read from their map
        if not torch.is_floating_point(p):
            continue
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // samples)
        sample = flat[::step][:samples].to(torch.bfloat16).view(torch.int16).cpu()
        h.update(f"{name}:{tuple(p.shape)}:".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()
