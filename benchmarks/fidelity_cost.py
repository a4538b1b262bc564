"""What output-language fidelity adds to `collect_scores`: the job's work (reading every evaluation
JSON of a model into the tidy score table) without and with the per-item LID of the generations
(`mwork.fidelity.OutputLanguage`), measured in the same run. The first run with fidelity is
printed apart: it loads the LID backend's language models, which the backend keeps for the rest
of the process (one `collect_scores` job pays it once).

Usage: python benchmarks/fidelity_cost.py RUN_DIR [--model demo-llama] [--backend lingua] [--repeats 3]

RUN_DIR is a finished run (e.g. a demo run directory: results/<model>/eval/*/*.json). Prints the
median wall and CPU seconds of both and the added seconds and ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from mwork.fidelity import OutputLanguage
from mwork.scores import tidy_scores_and_languages

LANGS = ["en", "de", "fr", "zh", "es", "ru"]


def _time(fn) -> tuple[float, float]:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--model", default="demo-llama")
    ap.add_argument("--backend", default="lingua")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    paths = sorted((a.run_dir / "results" / a.model / "eval").glob("*/*.json"))
    if not paths:
        raise SystemExit(f"error: no evaluation JSONs under {a.run_dir}/results/{a.model}/eval")
    runs = {"scores only": lambda: tidy_scores_and_languages(paths)}
    runs["scores + fidelity"] = lambda: tidy_scores_and_languages(
        paths, OutputLanguage(LANGS, a.backend)
    )
    found: list = []
    cold = _time(lambda: found.append(runs["scores + fidelity"]()))  # LID models load here
    n = len(found[0][1])
    print(f"{len(paths)} evaluation JSONs, {n} generations, backend {a.backend}")
    print(
        f"first run with fidelity (LID models loading): wall {cold[0]:.2f} s, CPU {cold[1]:.2f} s"
    )
    med = {}
    for name, fn in runs.items():
        times = [_time(fn) for _ in range(a.repeats)]
        med[name] = (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
        print(f"{name:>18}: wall {med[name][0]:.2f} s, CPU {med[name][1]:.2f} s")
    (w0, c0), (w1, c1) = med["scores only"], med["scores + fidelity"]
    print(
        f"fidelity adds wall {w1 - w0:+.2f} s (x{w1 / w0:.2f}), CPU {c1 - c0:+.2f} s (x{c1 / c0:.2f})"
    )


if __name__ == "__main__":
    main()
