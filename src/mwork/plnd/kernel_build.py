"""Building, verifying and loading the compiled Q/K kernel (csrc/sq_change.c): compiler, cache.

The source is compiled on first use with the system C compiler ($CC, else Python's, else `cc`;
`-O3`, `-march=native` where accepted, so the vector width follows the CPU: 16 float lanes with
AVX-512, 8 with AVX2, 4 with SSE2/NEON) into a cache keyed by source, compiler, flags and CPU
($MWORK_KERNEL_CACHE, default ~/.cache/mwork/kernels), written to a temporary name and renamed,
so concurrent jobs see a whole library or none.

A cache can run code, so only a library this code built is loaded: the cache directory must be
owned by the user and not writable by group or others (else KernelUnavailable: `auto` falls back
to torch, `compiled` is an error); each library's SHA-256 is recorded beside it at build time
(`<name>.so.sha256`) and its bytes are checked against it before they are loaded. The checked
bytes themselves are loaded (through a memfd on Linux), so the file cannot change in between. A
library that is missing its record, truncated or replaced is rebuilt, with one log line.
`load_kernel(dtype)` returns the `Kernel` for float32 or float64 data, or raises
KernelUnavailable saying why; when it is used is mwork.plnd.backend's, what it computes
mwork.plnd.kernel's.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import sysconfig
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

_FLAGS = ("-O3", "-fPIC", "-shared", "-fno-math-errno")
_TUNING = (("-march=native", "-mprefer-vector-width=512"), ("-march=native",), ())
"""Tried in order: the first set the compiler accepts (the C file picks its vector width from the
ISA the compiler then targets)."""
KERNEL_DTYPES = {torch.float32: ("f32", ()), torch.float64: ("f64", ("-DMW_DOUBLE",))}
"""The dtypes the kernel is built for: dtype -> (library suffix, defines)."""
_ARGTYPES = [ctypes.c_int64] * 4 + [ctypes.c_void_p] * 11


class KernelUnavailable(RuntimeError):
    """The C kernel could not be compiled or loaded (the message says why)."""


@dataclass(frozen=True)
class Kernel:
    """A loaded kernel library.

    Attributes:
        fn: the C function mw_sq_change (ctypes; releases the GIL while it runs).
        lanes: dims per vector (callers pad head dims to a multiple).
        isa: the instruction set that set the vector width ("avx512f", "avx2", "neon", ...).
        path: the library in the cache; its stem keys the calibration beside it.
    """

    fn: Any
    lanes: int
    isa: str
    path: Path


@cache
def load_kernel(dtype: torch.dtype) -> Kernel:
    """The verified kernel for dtype, compiled into the cache when needed."""
    suffix, defines = KERNEL_DTYPES[dtype]
    path, data = _compiled(suffix, defines)
    try:
        lib = _dlopen(path, data)
        fn = lib.mw_sq_change
        lanes_fn, isa_fn = lib.mw_lanes, lib.mw_isa
    except (OSError, AttributeError) as e:
        raise KernelUnavailable(f"cannot load {path}: {e}") from None
    fn.argtypes, fn.restype = _ARGTYPES, ctypes.c_int
    isa_fn.restype = ctypes.c_char_p
    return Kernel(fn, int(lanes_fn()), isa_fn().decode(), path)


def cache_dir() -> Path:
    """Where compiled kernels are kept: $MWORK_KERNEL_CACHE or ~/.cache/mwork/kernels."""
    env = os.environ.get("MWORK_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mwork" / "kernels"


def private_cache_dir() -> Path:
    """cache_dir(), created 0700 when missing; KernelUnavailable unless it is a directory owned
    by this user and not writable by group or others (anyone who can write there can run code in
    every PLND job)."""
    path = cache_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise KernelUnavailable(f"{path} is not a directory")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KernelUnavailable(
            f"the kernel cache {path} belongs to another user (uid {st.st_uid}); set "
            "MWORK_KERNEL_CACHE to a directory of your own"
        )
    if st.st_mode & 0o022:
        raise KernelUnavailable(
            f"the kernel cache {path} is writable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run chmod go-w {path} or set MWORK_KERNEL_CACHE to a private directory"
        )
    return path


def _dlopen(path: Path, data: bytes) -> ctypes.CDLL:
    """Load exactly the verified bytes: from a memfd where Linux has one, else from path."""
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        # kept open for the life of the process: the loader knows a library by its path, and a
        # closed descriptor's number (so its /proc path) would be reused by the next library
        fd = os.memfd_create(path.name, os.MFD_CLOEXEC)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return ctypes.CDLL(f"/proc/self/fd/{fd}")
    return ctypes.CDLL(str(path))


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


def _compiled(suffix: str, defines: tuple[str, ...]) -> tuple[Path, bytes]:
    """Path and verified bytes of the compiled kernel for these defines (built when needed)."""
    try:
        return _compile(suffix, defines)
    except (OSError, subprocess.SubprocessError) as e:  # unwritable cache, compiler hangs, ...
        raise KernelUnavailable(
            f"cannot build it in {cache_dir()} ({e}); set MWORK_KERNEL_CACHE to a writable "
            "directory"
        ) from None


def _compile(suffix: str, defines: tuple[str, ...]) -> tuple[Path, bytes]:
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
    out = private_cache_dir() / f"sq_change_{suffix}_{key.hexdigest()[:16]}.so"
    data, problem = _verified(out)
    if data is not None:
        return out, data
    if problem is not None:
        log.warning("Q/K kernel cache: %s %s; rebuilding it", out, problem)
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
        os.chmod(lib, 0o755)  # whatever the umask: a group-writable library is never loaded
        data = lib.read_bytes()
        record = Path(tmp) / "digest"
        record.write_text(hashlib.sha256(data).hexdigest() + "\n")
        # atomic renames, record last: a reader sees the old pair, the new library with the
        # old record (a mismatch: rebuilt) or the new pair; never a partial file
        os.replace(lib, out)
        os.replace(record, _record(out))
    return out, data


def _record(lib: Path) -> Path:
    return lib.with_name(lib.name + ".sha256")


def _verified(lib: Path) -> tuple[bytes | None, str | None]:
    """(bytes, None) of a cached library that matches its build-time digest; (None, why not)
    otherwise (why: None when there is simply no library yet)."""
    try:
        st = os.lstat(lib)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, "is not a regular file"
    if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or st.st_mode & 0o022:
        return None, "belongs to another user or is writable by others"
    try:
        want = _record(lib).read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None, "has no build-time digest"
    data = lib.read_bytes()
    if hashlib.sha256(data).hexdigest() != want:
        return None, f"does not match its build-time digest ({len(data)} bytes)"
    return data, None


def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), so -march=native builds are not shared across CPUs."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()
