"""Terminal and log progress (issue 25, part 8): progress bars in rule logs become readable lines
with their ETA, and a failed run shows the end of each failed job's log (Snakefile `onerror`)."""

from __future__ import annotations

import io
import os
import time

from mwork.runlog import ProgressLines, failed_log_tails


def test_progress_bar_updates_become_lines_with_their_eta() -> None:
    log = io.StringIO()
    out = ProgressLines(log, interval=3600)
    out.write("model loaded\n")
    for i, eta in ((0, "?"), (1, "00:30"), (2, "00:15")):
        out.write(f"\rPLND:  {i * 33}%|###| {i}/3 [00:{i * 15:02d}<{eta}, 15.00s/batch]")
    out.write("\rPLND: 100%|###| 3/3 [00:45<00:00, 15.00s/batch]")
    out.write("\n")
    lines = log.getvalue().splitlines()
    # the first update, then nothing within the interval, then the final one
    assert lines == [
        "model loaded",
        "PLND:  0%|###| 0/3 [00:00<?, 15.00s/batch]",
        "PLND: 100%|###| 3/3 [00:45<00:00, 15.00s/batch]",
    ]
    assert not out.isatty() and out.getvalue() == log.getvalue()  # the rest is the log's


def test_progress_lines_every_interval() -> None:
    log = io.StringIO()
    out = ProgressLines(log, interval=0)
    out.write("\rLAPE:  50%|#| 1/2 [00:01<00:01]\rLAPE: 100%|##| 2/2 [00:02<00:00]")
    assert log.getvalue().splitlines() == [
        "LAPE:  50%|#| 1/2 [00:01<00:01]",
        "LAPE: 100%|##| 2/2 [00:02<00:00]",
    ]


def test_failed_log_tails_shows_only_this_runs_failed_logs(tmp_path) -> None:
    logs = tmp_path / "logs"
    (logs / "detect_neurons").mkdir(parents=True)
    ok = logs / "detect_neurons" / "en.log"
    ok.write_text("model loaded\njob done\n")
    bad = logs / "detect_neurons" / "fr.log"
    bad.write_text("".join(f"line {i}\n" for i in range(30)) + "error: corpus x is empty; fix\n")
    crash = logs / "evaluate_condition.log"
    crash.write_text("Traceback (most recent call last):\n  File x\nValueError: boom\n")
    old = logs / "old.log"
    old.write_text("error: from an earlier run; fix\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    text = failed_log_tails(time.time() - 60, root=str(logs), n_lines=5)
    assert f"--- last lines of {bad} ---" in text and "error: corpus x is empty; fix" in text
    assert "line 26" in text and "line 25" not in text  # the last 5 lines
    assert "ValueError: boom" in text
    assert str(ok) not in text and "earlier run" not in text
    assert failed_log_tails(time.time(), root=str(tmp_path / "none")) == ""


def test_two_bars_in_a_row_each_show_start_and_end_once() -> None:
    log = io.StringIO()
    out = ProgressLines(log, interval=3600)
    for n in (2, 3):
        out.write(f"\rPLND:   0%| | 0/{n} [00:00<?]")
        out.write(f"\rPLND:  50%| | 1/{n} [00:01<00:01]")
        out.write(f"\rPLND: 100%|#| {n}/{n} [00:02<00:00, 1.0it/s]")
        out.write(f"\rPLND: 100%|#| {n}/{n} [00:02<00:00, 0.9it/s]")  # tqdm's close repeats it
        out.write("\n")
    assert log.getvalue().splitlines() == [
        "PLND:   0%| | 0/2 [00:00<?]",
        "PLND: 100%|#| 2/2 [00:02<00:00, 1.0it/s]",
        "PLND:   0%| | 0/3 [00:00<?]",
        "PLND: 100%|#| 3/3 [00:02<00:00, 1.0it/s]",
    ]
