"""Per rule: fixed cost (process start, imports, model load) vs work, from a finished run.

Reads a run directory's `logs/benchmarks/{rule}/**.tsv` (Snakemake `benchmark:` files; runs
before the one-process-per-job release wrote `benchmarks/{rule}/`, read as well: wall seconds
`s`, `cpu_time`) and the matching `logs/{rule}/**.log`. A job's *work* is the time from the log
line "model loaded" (`mwork.modeling.load_spec`; older logs: the first line after the load)
to the job's last log line; *fixed* is the
rest of its wall time (interpreter start, imports, model and data loading). Rules without a model
load count entirely as work.

    python benchmarks/rule_costs.py [RUN_DIR]        # default: the current directory
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
# "model loaded:" (mwork >= 0.2); the first line after the load in older logs (before/after tables)
LOADED = re.compile(
    r"model loaded:|mwork\.deactivate: .*masking|lm_eval\.models\.huggingface|mwork\.detect: model "
)


def _stamps(log: Path) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(time of 'model loaded', time of the last timestamped line) of one rule log."""
    loaded = last = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        last = t
        if loaded is None and LOADED.search(line):
            loaded = t
    return loaded, last


def rule_costs(run_dir: Path) -> pd.DataFrame:
    """One row per rule: jobs, wall seconds (sum), fixed and work seconds (sums), cpu seconds."""
    rows = []
    bench_dir = run_dir / "logs" / "benchmarks"
    if not bench_dir.is_dir():
        bench_dir = run_dir / "benchmarks"  # runs of earlier releases
    for tsv in sorted(bench_dir.glob("*/**/*.tsv")):
        rel = tsv.relative_to(bench_dir)
        rule = rel.parts[0]
        bench = pd.read_csv(tsv, sep="\t").iloc[0]
        log = (run_dir / "logs" / rel).with_suffix(".log")
        wall = float(bench["s"])
        work = wall
        if log.exists():
            loaded, last = _stamps(log)
            if loaded is not None and last is not None:
                work = min(wall, (last - loaded).total_seconds())
        rows.append({"rule": rule, "wall": wall, "work": work, "cpu": float(bench["cpu_time"])})
    if not rows:
        raise SystemExit(f"error: no benchmark files under {bench_dir}; run the workflow first")
    df = pd.DataFrame(rows)
    out = df.groupby("rule").agg(
        jobs=("wall", "size"), wall_s=("wall", "sum"), work_s=("work", "sum"), cpu_s=("cpu", "sum")
    )
    out["fixed_s"] = out["wall_s"] - out["work_s"]
    out["fixed_per_job_s"] = out["fixed_s"] / out["jobs"]
    out["fixed_share"] = out["fixed_s"] / out["wall_s"]
    return out.sort_values("wall_s", ascending=False).reset_index()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", default=".", type=Path)
    a = ap.parse_args(argv)
    table = rule_costs(a.run_dir)
    print(table.to_markdown(index=False, floatfmt=".1f"))
    total = table[["wall_s", "fixed_s", "work_s"]].sum()
    print(
        f"\nall rules: {total.wall_s:.0f} s of job time, {total.fixed_s:.0f} s fixed cost "
        f"({total.fixed_s / total.wall_s:.0%}), {total.work_s:.0f} s work"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
