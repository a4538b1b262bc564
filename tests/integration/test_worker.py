"""The warm worker (mwork.worker): jobs run in forked children of one process, results and exit
statuses as in-process, and it is off where it must be."""

import os
import time

import pytest

from mwork import worker


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("MWORK_WARM", "1")
    yield tmp_path
    path = worker.socket_path(tmp_path)
    conn = worker._connect(path)
    if conn is not None:
        conn.close()


def test_jobs_share_one_worker_and_keep_exit_statuses(in_tmp):
    log = str(in_tmp / "job.log")
    assert worker.run_job("mwork.worker:write_text_job", {"path": "a.txt", "text": "one"}, log) == 0
    assert worker.run_job("mwork.worker:write_text_job", {"path": "b.txt", "text": "two"}, log) == 0
    a, b = ((in_tmp / f).read_text().split() for f in ("a.txt", "b.txt"))
    assert a[0] == "one" and b[0] == "two"
    assert a[2] == b[2] != str(os.getpid())  # both children of the same worker, not of this process
    assert a[1] != b[1]  # one child per job
    assert "worker: warm" in (in_tmp / "job.log").read_text()
    assert worker.run_job("mwork.worker:write_text_job", {"path": "c.txt", "text": ""}, log) == 2
    assert "error: nothing to write" in (in_tmp / "job.log").read_text()
    assert not (in_tmp / "c.txt").exists()


def test_off_under_slurm_and_when_switched_off(in_tmp, monkeypatch):
    for env in ({"SLURM_JOB_ID": "1"}, {"MWORK_WARM": "0"}):
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.setenv(k, v)
            assert not worker.enabled()
            log = str(in_tmp / "j.log")
            assert (
                worker.run_job("mwork.worker:write_text_job", {"path": "x.txt", "text": "x"}, log)
                == 0
            )
            assert (in_tmp / "x.txt").read_text().split()[2] == str(os.getppid())  # in-process
            assert "worker: none (in-process)" in (in_tmp / "j.log").read_text()


def test_a_changed_package_is_never_run_from_a_stale_import(in_tmp, monkeypatch):
    log = str(in_tmp / "job.log")
    assert worker.run_job("mwork.worker:write_text_job", {"path": "a.txt", "text": "one"}, log) == 0
    server = worker._Server(worker.socket_path(in_tmp))
    server.started = time.time() - 1e9  # as if the package changed after the worker started
    assert server.stale()


def test_a_new_bytecode_cache_is_no_change_of_the_package(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "mod.py").write_text("x = 1\n")
    monkeypatch.setattr(worker, "PACKAGE", pkg)
    server = worker._Server(tmp_path / "w.sock")
    server.started = worker._package_mtime() + 1.0
    cache = pkg / "__pycache__" / "mod.cpython-311.pyc"
    cache.write_bytes(b"\0")
    os.utime(cache, (server.started + 10, server.started + 10))  # written after the start
    assert not server.stale()
    os.utime(pkg / "mod.py", (server.started + 10, server.started + 10))  # a real edit
    assert server.stale()
