"""Loading models and tokenizers safely, and fingerprinting their weights.

`trust_remote_code` stays off unless the config says so; a missing local path, an unknown hub id
offline, or an unsupported architecture each give a one-line error.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from mwork.adapters import ModelAdapter, get_adapter, supported_architectures
from mwork.errors import MworkError

DTYPES = {
    "float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
    "float16": torch.float16, "auto": "auto",
}


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' = CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MworkError(f"device {device} requested but CUDA is not available", "use --device cpu")
    return torch.device(device)


def _looks_local(name: str) -> bool:
    return os.path.exists(name) or name.startswith((".", "/", "~")) or name.count("/") > 1


def load_model(
    name_or_path: str,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
):
    """Load a causal LM + tokenizer (eval mode) and check its architecture is supported.

    Returns:
        (model, tokenizer, adapter)
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise MworkError(f"unknown dtype '{dtype}'", f"use one of {', '.join(DTYPES)}")
    if _looks_local(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise MworkError(f"model path {name_or_path} does not exist", "check the path or use a hub id like org/name")
    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise MworkError(
            f"cannot load model config of {name_or_path}: {str(exc).splitlines()[0][:200]}",
            "check the id/path (offline runs need a local directory)",
        ) from None
    if config.model_type not in supported_architectures():
        raise MworkError(f"unsupported architecture '{config.model_type}' ({name_or_path})",
                         f"supported: {', '.join(supported_architectures())}")
    dev = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code,
        attn_implementation=attn_implementation,
    ).to(dev).eval()
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer, get_adapter(model)


def model_fingerprint(model: torch.nn.Module, samples: int = 4096) -> str:
    """A cheap, dtype-robust weight fingerprint: names, shapes and bf16-rounded strided samples.

    Two loads of the same checkpoint (fp32 or bf16) give the same fingerprint; another model or
    another fine-tune gives a different one. Hashing every byte of a 7B model would take minutes.
    """
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        if not torch.is_floating_point(p):
            continue
        flat = p.detach().reshape(-1)
        step = max(1, flat.numel() // samples)
        sample = flat[::step][:samples].to(torch.bfloat16).view(torch.int16).cpu()
        h.update(f"{name}:{tuple(p.shape)}:".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()


def adapter_summary(adapter: ModelAdapter) -> dict[str, int]:
    """Layer count and units per component (written into neuron files)."""
    return {"n_layers": adapter.n_layers, **adapter.unit_counts()}
