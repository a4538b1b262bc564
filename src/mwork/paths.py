"""Input and output paths of a command, checked before any work: no output over an input.

`check_input_file` tells a missing file from a directory. `check_output` refuses an output that
is (after resolving symlinks, or as a hard link) one of the command's inputs, that lies inside a
model directory, that is a directory, or whose folder cannot be written, so that a mistyped
`--out` fails at once instead of after the detection, and never destroys a corpus, a shard or
a model.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mwork.errors import MworkError


def check_input_file(path: str | Path, what: str, fix: str) -> Path:
    """`path` as a Path if it exists and is not a directory (a directory is reported as one)."""
    path = Path(path)
    if path.is_dir():
        raise MworkError(f"{what} {path} is a directory, not a file", fix)
    if not path.exists():  # FIFOs (`<(zcat x.gz)`) are fine, like regular files
        raise MworkError(f"{what} {path} does not exist", fix)
    return path


def _same(a: Path, b: Path) -> bool:
    """Same file: equal resolved paths (symlinks followed) or the same inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_output(
    out: str | Path,
    inputs: Iterable[str | Path] = (),
    model_dirs: Iterable[str | Path] = (),
    option: str = "--out",
) -> Path:
    """Refuse an output path no command may write (see the module docstring); returns it.

    Args:
        out: the output file.
        inputs: every file the command reads.
        model_dirs: local model directories the command reads (nothing may be written inside).
        option: the option name shown in the message.
    """
    out = Path(out)
    for p in inputs:
        if _same(out, Path(p)):
            raise MworkError(
                f"{option} {out} is also an input of this command (it would be overwritten)",
                f"choose another {option} path",
            )
    for d in model_dirs:
        if Path(d).is_dir() and _inside(out, Path(d)):
            raise MworkError(
                f"{option} {out} lies inside the model directory {d}",
                "write outputs outside the model directory",
            )
    if out.is_dir():
        raise MworkError(f"{option} {out} is a directory", f"pass a file path, e.g. {out / 'out'}")
    parent = out.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the folders atomic writes would create
    if not parent.is_dir():
        raise MworkError(
            f"{option} {out}: {parent} is a file, not a folder", f"choose another {option} path"
        )
    try:  # a real probe: permission bits lie for root and on read-only mounts
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".mwork-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MworkError(
            f"{option} {out}: folder {parent} is not writable ({exc.strerror})",
            f"choose another {option} path",
        ) from None
    return out
