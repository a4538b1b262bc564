"""Input and output paths of a command, checked before any work: no output over an input.

`check_input_file` tells a missing file from a directory. `check_output` refuses an output that
is (after resolving symlinks, or as a hard link) one of the command's inputs, that lies inside a
model directory, that is a directory, or whose folder cannot be written, so that a mistyped
`--out` fails at once instead of after the detection, and never destroys a corpus, a shard or
a model. `check_output_dir` does the same for a command that writes (and replaces) a whole
directory, e.g. `mwork finetune merge`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mwork.atomic import check_regular_target
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
    if not out.is_dir():  # a directory gets its own message below
        check_regular_target(out, option)  # no device node, FIFO or symlink is replaced
    for d in model_dirs:
        if Path(d).is_dir() and _inside(out, Path(d)):
            raise MworkError(
                f"{option} {out} lies inside the model directory {d}",
                "write outputs outside the model directory",
            )
    if out.is_dir():
        raise MworkError(f"{option} {out} is a directory", f"pass a file path, e.g. {out / 'out'}")
    _check_writable_folder(out, option)
    return out


def _check_writable_folder(out: Path, option: str) -> None:
    """Refuse `out` when the folder that would hold it (or its nearest ancestor) is not writable."""
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


def check_output_dir(
    out: str | Path,
    inputs: Iterable[str | Path] = (),
    model_dirs: Iterable[str | Path] = (),
    option: str = "--out",
    marker: str | None = None,
) -> Path:
    """Refuse an output directory its command would replace as a whole; returns it.

    Refused: a directory that holds an input, overlaps a model directory (inside it or around
    it), is a file, is not empty and not an earlier output (one without the `marker` file), or
    whose folder cannot be written.

    Args:
        out: the output directory.
        inputs: every file the command reads.
        model_dirs: local model directories the command reads.
        option: the option name shown in the message.
        marker: file name every output of the command holds (None: only empty ones are replaced).
    """
    out = Path(out)
    if out.is_symlink():
        raise MworkError(
            f"{option} {out} is a symlink (to {os.readlink(out)}); the directory would replace it",
            "pass a real directory path",
        )
    for p in inputs:
        if _inside(Path(p), out):
            raise MworkError(
                f"{option} {out} holds the input {p} (replacing the directory would delete it)",
                f"choose another {option} directory",
            )
    for d in model_dirs:
        if Path(d).is_dir() and (_inside(out, Path(d)) or _inside(Path(d), out)):
            raise MworkError(
                f"{option} {out} overlaps the model directory {d}",
                "write outputs outside the model directory",
            )
    if out.exists() and not out.is_dir():
        raise MworkError(f"{option} {out} is a file, not a directory", "pass a directory path")
    if out.is_dir() and any(out.iterdir()) and not (marker and (out / marker).is_file()):
        earlier = f", or an earlier output (it holds {marker})" if marker else ""
        raise MworkError(
            f"{option} {out} is a directory with other files (it would be replaced as a whole)",
            f"pass a new or empty directory{earlier}",
        )
    _check_writable_folder(out, option)
    return out
