"""Building and loading the compiled Q/K kernel (csrc/sq_change.c): compiler, flags, cache.

The source is compiled on first use with the system C compiler ($CC, else Python's, else `cc`;
`-O3`, `-march=native` where accepted) into a cache keyed by source, compiler, flags and CPU
($MWORK_KERNEL_CACHE, default ~/.cache/mwork/kernels), written to a temporary name and renamed, so
concurrent jobs and machines of one cluster can share it. `load_kernel(dtype)` returns the C
function (ctypes) for float32 or float64 data, or raises KernelUnavailable saying why; what the
kernel computes and when it is used is mwork.plnd.kernel's.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sysconfig
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

import torch

_FLAGS = ("-O3", "-fPIC", "-shared", "-fno-math-errno")
_TUNING = (("-march=native", "-mprefer-vector-width=512"), ("-march=native",), ())
"""Tried in order: the first set the compiler accepts (AVX-512 vectors where the CPU has them)."""
KERNEL_DTYPES = {torch.float32: ("f32", ()), torch.float64: ("f64", ("-DMW_DOUBLE",))}
"""The dtypes the kernel is built for: dtype -> (library suffix, defines)."""
_ARGTYPES = [ctypes.c_int64] * 4 + [ctypes.c_void_p] * 11


class KernelUnavailable(RuntimeError):
    """The C kernel could not be compiled or loaded (the message says why)."""


@cache
def load_kernel(dtype: torch.dtype):
    """The kernel's C function for dtype, compiled into the cache when needed."""
    suffix, defines = KERNEL_DTYPES[dtype]
    path = _compiled(suffix, defines)
    try:
        fn = ctypes.CDLL(str(path)).mw_sq_change
    except (OSError, AttributeError) as e:
        raise KernelUnavailable(f"cannot load {path}: {e}") from None
    fn.argtypes, fn.restype = _ARGTYPES, ctypes.c_int
    return fn


def cache_dir() -> Path:
    """Where compiled kernels are kept: $MWORK_KERNEL_CACHE or ~/.cache/mwork/kernels."""
    env = os.environ.get("MWORK_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mwork" / "kernels"


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cmd = cc.split()
    if shutil.which(cmd[0]) is None:
        cmd = ["cc"]
    if shutil.which(cmd[0]) is None:
        raise KernelUnavailable(f"no C compiler found (CC={cc!r})")
    return cmd


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _compiled(suffix: str, defines: tuple[str, ...]) -> Path:
    """Path of the compiled kernel for these defines, compiling it when not cached."""
    try:
        return _compile(suffix, defines)
    except (OSError, subprocess.SubprocessError) as e:  # unwritable cache, compiler hangs, ...
        raise KernelUnavailable(
            f"cannot build it in {cache_dir()} ({e}); set MWORK_KERNEL_CACHE to a writable "
            "directory"
        ) from None


def _compile(suffix: str, defines: tuple[str, ...]) -> Path:
    source = resources.files("mwork.plnd").joinpath("csrc/sq_change.c").read_bytes()
    cc = _compiler()
    version = _run([*cc, "--version"]).stdout.splitlines()[:1]
    key = hashlib.sha256()
    for part in (
        source,
        *cc,
        *version,
        *_FLAGS,
        *_TUNING,
        *defines,
        platform.machine(),
        _cpu_flags(),
    ):
        key.update(str(part).encode() + b"\0")
    out = cache_dir() / f"sq_change_{suffix}_{key.hexdigest()[:16]}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        src, lib = Path(tmp) / "sq_change.c", Path(tmp) / out.name
        src.write_bytes(source)
        for tuning in _TUNING:
            res = _run([*cc, *_FLAGS, *tuning, *defines, str(src), "-o", str(lib), "-lm"])
            if res.returncode == 0:
                break
        if res.returncode != 0:
            msg = (res.stderr.strip().splitlines() or ["no message"])[-1]
            raise KernelUnavailable(f"{' '.join(cc)} failed: {msg}")
        os.replace(lib, out)  # atomic: concurrent jobs see a whole library or none
    return out


def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), so -march=native builds are not shared across CPUs."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()
