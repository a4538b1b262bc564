"""A job killed by a signal names the cause in its rule log and to its caller (issue 26, class 7).

The job is a real process that sets up its rule log like every Snakemake script
(`mwork.runlog.setup_rule_logging`) and is then killed: by itself with SIGKILL (what the
out-of-memory killer sends), or by a SIGTERM sent to the process Snakemake started. The log must
end with one `error:` line naming the signal, and the caller must see the same signal, not an exit
status. A normal end and an MworkError (exit 2) are unchanged (test_bad_input covers the latter).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from mwork.jobwatch import kill_line

JOB = """
import os, signal, sys, time, logging
from mwork.runlog import setup_rule_logging
setup_rule_logging(sys.argv[1], model="m")
logging.getLogger("job").info("working")
print(os.getpid(), flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[2] == "wait":
    time.sleep(60)
elif sys.argv[2] == "exit3":
    sys.exit(3)
"""


def run_job(tmp_path, mode):
    log = tmp_path / "rule.log"
    res = subprocess.run(
        [sys.executable, "-c", JOB, str(log), mode], capture_output=True, text=True, timeout=120
    )
    return res, log.read_text().splitlines()


def test_sigkill_is_named_in_the_log_and_to_the_caller(tmp_path):
    res, lines = run_job(tmp_path, "kill")
    assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
    assert lines[-2].endswith("job: working"), lines
    last = lines[-1]
    assert last.startswith("error: the job was killed by signal 9 (SIGKILL) after ") and (
        "out-of-memory killer" in last and "does not retry" in last
    ), last
    assert sum(line.startswith("error:") for line in lines) == 1 and "job done" not in lines[-1]


def test_sigterm_to_the_started_process_reaches_the_job(tmp_path):
    """Snakemake (or Slurm) signals the process it started: the job gets it, the log says so."""
    log = tmp_path / "rule.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", JOB, str(log), "wait"], stdout=subprocess.PIPE, text=True
    )
    job_pid = int(proc.stdout.readline())
    assert job_pid != proc.pid  # the job runs in the watched child
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    proc.stdout.close()
    last = log.read_text().splitlines()[-1]
    assert last.startswith("error: the job was killed by signal 15 (SIGTERM)"), last
    with pytest.raises(ProcessLookupError):  # the job itself is gone too
        for _ in range(50):
            os.kill(job_pid, 0)
            time.sleep(0.1)


@pytest.mark.parametrize(("mode", "code"), [("ok", 0), ("exit3", 3)])
def test_normal_ends_are_passed_on(tmp_path, mode, code):
    res, lines = run_job(tmp_path, mode)
    assert res.returncode == code, res.stderr
    assert not any(line.startswith("error:") for line in lines), lines
    if code == 0:
        assert lines[-1].endswith("job done"), lines


def test_watcher_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("MWORK_NO_JOB_WATCH", "1")
    res, lines = run_job(tmp_path, "kill")
    assert res.returncode == -signal.SIGKILL
    assert not any(line.startswith("error:") for line in lines)  # nobody left to write it


def test_kill_line_names_unknown_signals():
    assert "signal 64 (signal 64)" in kill_line(64, 1.0) or "SIGRTMAX" in kill_line(64, 1.0)
    assert "SIGBUS" in kill_line(signal.SIGBUS, 0.5) and "truncated" in kill_line(signal.SIGBUS, 0)


@pytest.mark.slow
def test_snakemake_reports_the_signal_and_runs_the_job_once(tmp_path):
    """Through Snakemake: the rule log ends with the kill line, Snakemake names SIGKILL, and
    the job started once (no retry)."""
    (tmp_path / "job.py").write_text(
        "import os, signal\n"
        "from mwork.runlog import setup_rule_logging\n"
        "setup_rule_logging(snakemake.log[0])\n"
        "with open('starts.txt', 'a') as f:\n"
        "    f.write('start\\n')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "Snakefile").write_text(
        'rule killed:\n    output: "out.txt"\n    log: "job.log"\n    script: "job.py"\n'
    )
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-c1", "--show-failed-logs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "SIGKILL" in out, out[-2000:]
    assert "error: the job was killed by signal 9 (SIGKILL)" in out  # --show-failed-logs
    last = (tmp_path / "job.log").read_text().splitlines()[-1]
    assert last.startswith("error: the job was killed by signal 9 (SIGKILL)"), last
    assert (tmp_path / "starts.txt").read_text() == "start\n"
    assert not (tmp_path / "out.txt").exists()
