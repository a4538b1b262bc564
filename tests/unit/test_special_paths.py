"""Outputs onto special paths (issue 26, class 4): only regular files are ever replaced.

A device node, a FIFO, a socket, a directory or a symlink (to /dev/stdout, to a regular file, or
dangling) given as an output is refused with one line and exit 2, before any work; the special
file, the link and every input stay as they were. The tests run as root in CI containers, so the
`/dev/null` case guards `os.replace` itself: a regression fails the test instead of destroying
the machine's /dev/null.
"""

import os
import socket
import stat
from pathlib import Path

import pytest
from test_bad_input_files import make_set, write
from testhelpers import fails_alone as fails

from mwork import atomic
from mwork.atomic import atomic_write_text, check_regular_target, write_json
from mwork.errors import MworkError


@pytest.fixture
def guard_replace(monkeypatch):
    """os.replace onto anything but a regular file (or nothing) is a test failure."""
    real = os.replace

    def guarded(src, dst, *a, **kw):
        if os.path.lexists(dst) and not stat.S_ISREG(os.lstat(dst).st_mode):
            raise AssertionError(f"os.replace onto the special path {dst}")
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", guarded)


@pytest.fixture
def zh(tmp_path) -> Path:
    return write(make_set(), tmp_path / "zh.safetensors")


def _fifo(tmp_path) -> Path:
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def _link(tmp_path, target) -> Path:
    p = tmp_path / "link.csv"
    p.symlink_to(target)
    return p


SPECIAL = {
    "dev_null": lambda tmp: Path("/dev/null"),
    "fifo": _fifo,
    "symlink_to_stdout": lambda tmp: _link(tmp, "/dev/stdout"),
    "symlink_to_file": lambda tmp: _link(
        tmp, (tmp / "real.csv", (tmp / "real.csv").write_text("x"))[0]
    ),
    "dangling_symlink": lambda tmp: _link(tmp, tmp / "nowhere.csv"),
}


def _state(p: Path) -> tuple:
    st = os.lstat(p)
    return (stat.S_IFMT(st.st_mode), st.st_ino, os.readlink(p) if p.is_symlink() else None)


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_summary_csv_onto_special_path(capsys, tmp_path, zh, guard_replace, kind):
    out = SPECIAL[kind](tmp_path)
    before = _state(out)
    msg = fails(capsys, ["neurons", "summary", zh, "--csv", out], [zh])
    assert "--csv" in msg and "regular file" in msg, msg
    assert _state(out) == before


@pytest.mark.parametrize("kind", sorted(SPECIAL))
@pytest.mark.parametrize("cmd", ["merge", "select", "subtract"])
def test_neuron_file_out_onto_special_path(capsys, tmp_path, zh, guard_replace, kind, cmd):
    out = SPECIAL[kind](tmp_path)
    other = write(make_set("en", seed=1), tmp_path / "en.safetensors")
    argv = {
        "merge": ["neurons", "merge", "--out", out, zh],
        "select": ["neurons", "select", zh, "--min-fraction", "0.5", "--out", out],
        "subtract": ["neurons", "subtract", zh, "--minus", other, "--out", out],
    }[cmd]
    before = _state(out)
    msg = fails(capsys, argv, [zh, other])
    assert "--out" in msg and "regular file" in msg, msg
    assert _state(out) == before


def test_socket_and_directory_refused(tmp_path, guard_replace):
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        with pytest.raises(MworkError, match="a socket"):
            write_json(sock_path, {"a": 1})
    finally:
        sock.close()
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    (tmp_path / "d").mkdir()
    with pytest.raises(MworkError, match="a directory"):
        atomic_write_text(tmp_path / "d", "x")


def test_character_device_refused(tmp_path, guard_replace):
    """A device node of our own (root may mknod; elsewhere /dev/null, guarded)."""
    try:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        dev = tmp_path / "null"
    except PermissionError:
        dev = Path("/dev/null")
    with pytest.raises(MworkError, match="a character device"):
        atomic_write_text(dev, "x")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_regular_files_and_new_paths_are_written(tmp_path):
    """Controls: a new path and an existing regular file are written (replaced atomically)."""
    assert check_regular_target(tmp_path / "new.json") == tmp_path / "new.json"
    write_json(tmp_path / "new.json", {"a": 1})
    write_json(tmp_path / "new.json", {"a": 2})
    assert (tmp_path / "new.json").read_text() == '{\n "a": 2\n}\n'


def test_path_swapped_for_a_link_while_writing(tmp_path, guard_replace):
    """The destination is checked again just before the rename (it may change while we write)."""
    out = tmp_path / "o.txt"
    with pytest.raises(MworkError, match="symlink"), atomic.atomic_path(out) as tmp:
        tmp.write_text("x")
        out.symlink_to("/dev/stdout")
    assert os.readlink(out) == "/dev/stdout"
    assert [p.name for p in tmp_path.iterdir()] == ["o.txt"]  # no temp file left behind
