"""Atomic file writes: nothing half-written is ever left at an output path.

Every file mwork writes goes through this module (`atomic_path` and the typed writers built on
it): a temp file in the destination folder, made world-readable like a normal file, renamed onto
the destination only when writing succeeded.

Only regular files are ever replaced (`check_regular_target`): a rename onto a device node
(`/dev/null`), a FIFO, a socket or a symlink (e.g. one pointing at `/dev/stdout`) would destroy
that special file or the link, so such a destination is refused with one line before anything is
written.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mwork.errors import MworkError


def check_regular_target(path: str | Path, option: str = "output") -> Path:
    """Refuse `path` unless it is absent or a regular file (a symlink is refused too); returns it.

    Raises:
        MworkError: `path` is a symlink, a directory, a device node, a FIFO or a socket.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError:  # unreadable parent etc.: the write itself reports it
        return path
    if stat.S_ISREG(st.st_mode):
        return path
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
    if stat.S_ISLNK(st.st_mode):
        kind = f"a symlink (to {os.readlink(path)})"
    raise MworkError(
        f"{option} {path} is {kind}; mwork writes only regular files and would replace it",
        "pass the path of a regular file (new or existing)",
    )


_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` if the block succeeds."""
    path = check_regular_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp"
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are shared (report, other users)
    try:
        yield Path(tmp)
        check_regular_target(path)  # again: the path may have been replaced while we wrote
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented UTF-8 JSON (NaN refused) atomically."""
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False) + "\n")


def write_jsonl(
    path: str | Path, rows: Iterable[Mapping[str, Any]], sort_keys: bool = False
) -> None:
    """Write rows as JSON Lines (UTF-8, one object per line) atomically."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=sort_keys) + "\n")


def write_csv(path: str | Path, table: Any) -> None:
    """Write a pandas DataFrame as CSV (full precision, no index) atomically."""
    atomic_write_text(path, table.to_csv(index=False))
