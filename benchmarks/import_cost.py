"""Per-job import cost: a job's imports with and without `mwork.leanimport` (no scikit-learn).

Each repeat starts two fresh interpreters that import the modules an evaluation job imports
(`mwork.evaluate`; another with --module), one as shipped and one with MWORK_KEEP_SKLEARN=1, in
alternating order, and records each child's wall and CPU seconds (user + system, from
`resource.getrusage(RUSAGE_CHILDREN)`: less sensitive to other load than wall time). Prints the
medians and the median per-repeat ratio lean/keep.

Usage: python benchmarks/import_cost.py [--module mwork.evaluate] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def _child(module: str, keep: bool) -> tuple[float, float]:
    env = dict(os.environ, MWORK_KEEP_SKLEARN="1" if keep else "0")
    code = f"import {module}, sys; sys.exit(int(('sklearn' in sys.modules) != {keep}))"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    rc = subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        sys.exit(f"error: sklearn {'absent' if keep else 'imported'} with keep={keep}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", default="mwork.evaluate")
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    _child(a.module, False)  # warm the file cache, not timed
    rows: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for rep in range(a.repeats):
        for keep in (False, True) if rep % 2 == 0 else (True, False):
            rows[keep].append(_child(a.module, keep))
    for i, what in enumerate(("wall", "CPU")):
        lean = statistics.median(r[i] for r in rows[False])
        keep = statistics.median(r[i] for r in rows[True])
        ratio = statistics.median(l[i] / k[i] for l, k in zip(rows[False], rows[True], strict=True))
        print(
            f"import {a.module} {what} s: lean {lean:.2f}  with sklearn {keep:.2f}  "
            f"saved {keep - lean:.2f}  ratio lean/keep {ratio:.2f} ({a.repeats} repeats; "
            f"load average {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
