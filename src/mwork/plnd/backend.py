"""Which scorer computes Eq. 8's multiplicative form: `detection.qk_kernel`, and `auto`'s timing.

Three scorers give the same results up to rounding: torch's form (mwork.plnd.softmax_change,
which writes z [heads, rows, keys, dims] to memory), the C kernel on CPU (mwork.plnd.kernel) and
the Triton kernel on CUDA GPUs (mwork.plnd.triton_qk), both fused over keys. Modes:

    auto      the fused kernel of the device (C on CPU, Triton on CUDA) where it is faster than
              torch's form *on this machine*: decided by a short calibration on first use (both
              forms time one synthetic document of the layer's head dim, best of a few
              interleaved runs) and cached beside the kernel (the C kernel's cache key: source,
              compiler, flags, CPU; Triton's: its version, the GPU and the kernel source); torch
              where the kernel does not build (logged once)
    compiled  the C kernel on CPU for every head dim, or an error raised before any model load
              (CUDA tensors: torch's form, as before)
    triton    the Triton kernel (CUDA tensors; CPU tensors only under TRITON_INTERPRET=1, the
              interpreter the tests use), or an error
    torch     never a fused kernel
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from functools import cache
from pathlib import Path

import torch

from mwork.atomic import write_json
from mwork.errors import MworkError
from mwork.plnd.kernel_build import (
    KERNEL_DTYPES,
    KernelUnavailable,
    load_kernel,
    private_cache_dir,
)

log = logging.getLogger(__name__)

KERNEL_MODES = ("auto", "compiled", "triton", "torch")
CALIBRATION_TOKENS = 192
"""Tokens of the calibration's synthetic document (causal, RoPE-split Q and K removals)."""
CALIBRATION_HEADS = 4
CALIBRATION_REPEATS = 3


def check_kernel_mode(mode: str) -> None:
    """Unknown mode, "compiled" where the kernel does not build, "triton" without Triton:
    MworkError (before a model is loaded)."""
    _check_known(mode)
    if mode == "compiled":
        kernel_for(mode, torch.device("cpu"), torch.float32)
    if mode == "triton" and not triton_available():
        raise MworkError(
            "qk_kernel: triton, but Triton cannot be imported",
            "install triton (it ships with CUDA builds of torch), or use qk_kernel: auto",
        )


def kernel_for(
    mode: str, device: torch.device | str, dtype: torch.dtype, head_dim: int | None = None
) -> str | None:
    """The fused scorer ("compiled" or "triton") that Q/K scoring of tensors on device/of dtype
    uses under `mode`, or None for torch's form.

    "auto" times both forms once per (kernel, dtype, head_dim) on this machine (head_dim None:
    the kernel wherever it builds); "compiled"/"triton" raise MworkError where they cannot run.
    """
    _check_known(mode)
    device = torch.device(device)
    if mode == "torch" or dtype not in KERNEL_DTYPES:
        return None
    if device.type == "cuda" or (device.type == "cpu" and mode == "triton"):
        return _triton_for(mode, device, dtype, head_dim)
    if device.type != "cpu":
        return None
    try:
        load_kernel(dtype)
    except KernelUnavailable as e:
        if mode == "compiled":
            raise MworkError(
                f"qk_kernel: compiled, but the Q/K kernel does not build ({e})",
                "install a C compiler (or set CC), or use qk_kernel: auto",
            ) from None
        _warn_once(str(e))
        return None
    if mode == "compiled" or head_dim is None:
        return "compiled"
    return "compiled" if faster("compiled", device, dtype, head_dim) else None


def qk_kernel_used(mode: str, device: torch.device | str, dtype: torch.dtype, head_dim: int) -> str:
    """ "compiled", "triton" or "torch": what exact Q/K scoring of such tensors runs on."""
    return kernel_for(mode, device, dtype, head_dim) or "torch"


def _triton_for(
    mode: str, device: torch.device, dtype: torch.dtype, head_dim: int | None
) -> str | None:
    if mode == "compiled":
        return None  # the C kernel is a CPU kernel; CUDA tensors keep torch's form
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if mode == "triton":
        if not triton_available():
            check_kernel_mode(mode)
        if device.type != "cuda" and not interpret:
            raise MworkError(
                f"qk_kernel: triton needs a CUDA device (the model is on {device.type})",
                "use qk_kernel: auto or compiled on CPU",
            )
        return "triton"
    if not triton_available():
        _warn_once("Triton cannot be imported")
        return None
    if head_dim is None:
        return "triton"
    return "triton" if faster("triton", device, dtype, head_dim) else None


@cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _check_known(mode: str) -> None:
    if mode not in KERNEL_MODES:
        raise MworkError(f"unknown qk_kernel '{mode}'", f"use one of {', '.join(KERNEL_MODES)}")


@cache
def _warn_once(reason: str) -> None:
    log.warning("Q/K scoring falls back to torch (slower, same results): %s", reason)


@cache
def faster(backend: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> bool:
    """Whether `backend`'s fused kernel beat torch's form on this machine for such a layer:
    read from the calibration file beside the kernel, or measured now and recorded there."""
    try:
        path = calibration_path(backend, device, dtype)
    except (KernelUnavailable, OSError) as e:  # no private cache: measured, not recorded
        log.warning("Q/K kernel calibration cannot be recorded: %s", e)
        path = None
    entry = f"{str(dtype).removeprefix('torch.')}/{head_dim}"
    record = _read_calibration(path)
    if entry not in record:
        fused, plain = calibrate(backend, device, dtype, head_dim)
        record = _read_calibration(path)  # another job may have written meanwhile
        record[entry] = {"fused_s": fused, "torch_s": plain}
        try:
            if path is not None:
                write_json(path, record)
        except OSError as e:
            log.warning("Q/K kernel calibration not recorded in %s: %s", path, e)
        log.info(
            "Q/K kernel calibration (%s, %s, head dim %d): %s %.4f s, torch %.4f s -> %s",
            backend,
            device,
            head_dim,
            backend,
            fused,
            plain,
            backend if fused < plain else "torch",
        )
    times = record[entry]
    return times["fused_s"] < times["torch_s"]


def calibration_path(backend: str, device: torch.device, dtype: torch.dtype) -> Path:
    """The calibration file of a fused kernel: beside the C library (same key), or for Triton
    in the same private cache, keyed by Triton's version, the GPU and the kernel's source."""
    if backend == "compiled":
        lib = load_kernel(dtype).path
        return lib.with_name(lib.stem + ".calibration.json")
    import triton

    from mwork.plnd import triton_qk

    key = hashlib.sha256()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "interpreter"
    for part in (
        triton.__version__,
        torch.__version__,
        name,
        Path(triton_qk.__file__).read_bytes(),
    ):
        key.update(str(part).encode() + b"\0")
    return private_cache_dir() / f"triton_qk_{key.hexdigest()[:16]}.calibration.json"


def _read_calibration(path: Path | None) -> dict:
    """The recorded timings, {} when missing or malformed (then measured again)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    ok = {}
    for k, v in data.items():
        if isinstance(v, dict) and all(
            isinstance(v.get(f), int | float) and v[f] >= 0 for f in ("fused_s", "torch_s")
        ):
            ok[k] = v
    return ok


def calibrate(
    backend: str, device: torch.device, dtype: torch.dtype, head_dim: int
) -> tuple[float, float]:
    """(fused, torch) best seconds of exact Q/K scoring of one synthetic causal document
    (CALIBRATION_HEADS heads × CALIBRATION_TOKENS tokens, head_dim, RoPE-split Q and K removals:
    the common case), interleaved over CALIBRATION_REPEATS runs after a warm-up."""
    from mwork.plnd.budget import default_qk_budget
    from mwork.plnd.exact import score_document
    from mwork.plnd.removal import Removal

    g = torch.Generator().manual_seed(0)
    n, h, d = CALIBRATION_TOKENS, CALIBRATION_HEADS, head_dim

    def r() -> torch.Tensor:
        return (torch.randn(h, n, d, generator=g, dtype=dtype) / d**0.25).to(device)

    q, k, qa, qb, ka, kb = (r() for _ in range(6))
    perm = torch.arange(d).roll(d // 2)
    removals = [Removal(qa, k, qb, k[..., perm]), Removal(q, ka, q[..., perm], kb)]
    allowed = torch.ones(n, n, dtype=torch.bool, device=device).tril()
    budget = max(1, default_qk_budget(device) // (torch.finfo(dtype).bits // 8))
    scale = d**-0.5

    def run(kernel: str | bool) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        score_document(q, k, removals, allowed, None, scale, None, scale, budget, kernel)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    run(backend), run(False)  # warm-up (a Triton kernel compiles here)
    fused, plain = [], []
    for _ in range(CALIBRATION_REPEATS):
        fused.append(run(backend))
        plain.append(run(False))
    return min(fused), min(plain)
