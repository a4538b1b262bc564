"""What output-language fidelity costs: per evaluation job, and in `collect_scores`.

Every evaluation job identifies the language of its own generations (`mwork.fidelity`, in
`mwork.evaluate.evaluate_job`), so each job with a generation task builds the LID and pays its
cold start (lingua loads its language models on the first text) in its own process. Three
measurements, all in this run, on a finished run directory (e.g. a demo run):

1. per job, the LID alone: a fresh process per evaluation JSON builds the identifier and
   identifies that job's stored generations (cold: what a job adds to itself);
2. with `--job LABEL/LANG`: that evaluation job itself (`evaluate_job`, model load and scoring,
   interpreter start and imports excluded), each repeat once without the LID and once with it,
   alternating, each in a fresh process; the added seconds and the ratio of the medians;
3. `collect_scores`' work (every JSON into the tidy table) without fidelity, and with it when
   every JSON has stored its languages (read back) or none has (identified here, as for runs
   from before the jobs stored them); copies of the run's JSONs in both forms are made first,
   so the LID is warm here (its cold start is measurement 1).

Usage: python benchmarks/fidelity_cost.py RUN_DIR [--model demo-llama] [--backend lingua]
           [--repeats 3] [--job D_G/all]

RUN_DIR is only read: job outputs go to a temporary folder (the job's relative input paths are
resolved from RUN_DIR, as Snakemake's -d does). Candidates are the run config's languages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mwork.fidelity import OutputLanguage
from mwork.scores import tidy_scores_and_languages


def _time(fn) -> tuple[float, float]:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _config(run_dir: Path) -> dict[str, Any]:
    from mwork.studyconfig import load_config

    cwd = Path.cwd()
    os.chdir(run_dir)  # relative paths in the config are the run directory's
    try:
        return load_config(run_dir / "config.yaml")
    finally:
        os.chdir(cwd)


def _languages(config: dict[str, Any]) -> list[str]:
    from mwork.plan import Plan

    return Plan(config).all_langs


def lid_worker(path: str, langs: list[str], backend: str) -> None:
    """One job's LID in a fresh process: build the identifier, identify every stored generation."""
    from mwork.fidelity import record_output_languages

    runs = json.loads(Path(path).read_text(encoding="utf-8"))["runs"]
    n = sum(len(t["items"].get("prediction") or []) for r in runs for t in r["tasks"].values())

    def identify() -> None:
        lid = OutputLanguage(langs, backend).build()
        for run in runs:
            record_output_languages(run["tasks"], lid)

    wall, cpu = _time(identify)
    print(json.dumps({"wall": wall, "cpu": cpu, "n": n}))


def job_worker(run_dir: str, model: str, label: str, lang: str, lid: bool, out: str) -> None:
    """One evaluation job in this fresh process (cwd RUN_DIR), timed: evaluate_job only."""
    import mwork.evaluate
    from mwork.evaluate import evaluate_job
    from mwork.plan import Plan
    from mwork.settings import EvaluationSettings, ModelSpec

    config = _config(Path(run_dir))
    os.chdir(run_dir)
    plan = Plan(config)
    ev, deact = config["evaluation"], config["deactivation"]
    keys = ["batch_size", "limit", "max_gen_toks", "backend", "vllm"]
    values = {k: ev[k] for k in keys if k in ev}
    values |= {k: deact[k] for k in ("mask_mode", "count", "attn_n", "ffn_n") if k in deact}
    if lid:
        values |= {"lid_backend": config["figures"]["lens"]["lid_backend"]}
        values |= {"lid_languages": plan.all_langs}
    settings = EvaluationSettings.from_mapping(values)
    m = config["models"][model]  # as rules/common.smk's model_spec(model, split=True)
    keys = ("dtype", "trust_remote_code", "n_layers", "n1", "n2")
    spec = ModelSpec(m.get("path") or m["hf_id"], model, **{k: m[k] for k in keys if k in m})
    tasks = plan.job_tasks(model, label, lang)
    sources = plan.job_sources(model, label, lang)
    lid_time = [0.0, 0.0, 0.0]  # the LID's part inside the job: wall, CPU of this thread, of all

    def timed(fn):  # noqa: ANN001, ANN202
        def run(*args: Any) -> Any:
            wall, cpu, pcpu = time.perf_counter(), time.thread_time(), time.process_time()
            try:
                return fn(*args)
            finally:
                lid_time[0] += time.perf_counter() - wall
                lid_time[1] += time.thread_time() - cpu
                lid_time[2] += time.process_time() - pcpu

        return run

    for name in ("_output_lid", "record_output_languages"):  # building it, identifying
        setattr(mwork.evaluate, name, timed(getattr(mwork.evaluate, name)))
    wall, cpu = _time(lambda: evaluate_job(spec, label, lang, sources, tasks, out, settings, "cpu"))
    times = {"wall": wall, "cpu": cpu, "lid_wall": lid_time[0], "lid_cpu": lid_time[1]}
    print(json.dumps(times | {"lid_process_cpu": lid_time[2]}))


def _worker(*args: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"error: worker {args[:2]} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def per_job_lid(paths: list[Path], langs: list[str], backend: str) -> None:
    rows = [_worker("--lid-worker", str(p), ",".join(langs), backend) for p in paths]
    with_gen = [r for r in rows if r["n"]]
    print(f"1. LID per job, cold, fresh process ({backend} over {' '.join(langs)}):")
    print(
        f"   {len(with_gen)} of {len(rows)} jobs generate; per such job median "
        f"{_median(with_gen, 'n'):.0f} generations, wall {_median(with_gen, 'wall'):.2f} s "
        f"(max {max(r['wall'] for r in with_gen):.2f}), CPU {_median(with_gen, 'cpu'):.2f} s "
        f"(max {max(r['cpu'] for r in with_gen):.2f}); all jobs together: wall "
        f"{sum(r['wall'] for r in rows):.1f} s, CPU {sum(r['cpu'] for r in rows):.1f} s"
    )


def one_job(a: argparse.Namespace) -> None:
    label, lang = a.job.split("/")
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            for lid in (False, True) if i % 2 == 0 else (True, False):  # alternate the order
                out = str(Path(tmp) / f"{i}-{int(lid)}.json")
                args = [str(a.run_dir.resolve()), a.model, label, lang, str(int(lid)), out]
                runs[lid].append(_worker("--job-worker", *args))
    (w0, c0), (w1, c1) = ((_median(runs[k], "wall"), _median(runs[k], "cpu")) for k in runs)
    lw, lc = _median(runs[True], "lid_wall"), _median(runs[True], "lid_cpu")
    lp = _median(runs[True], "lid_process_cpu")
    share = statistics.median(r["lid_cpu"] / r["cpu"] for r in runs[True])
    print(f"2. evaluation job {a.model} {a.job} (evaluate_job; medians of {a.repeats}):")
    print(f"   without LID: wall {w0:.2f} s, CPU {c0:.2f} s")
    print(f"   with LID:    wall {w1:.2f} s, CPU {c1:.2f} s (difference {c1 - c0:+.2f} s CPU)")
    print(
        f"   the LID inside the job with it (build + identify, timed in the job): wall {lw:.2f} s,"
        f" CPU {lc:.2f} s (its thread; {lp:.2f} s the whole process meanwhile) = {share:.1%} of"
        " that job's CPU"
    )
    for k, name in ((False, "without"), (True, "with")):
        print(f"   each run {name}: " + ", ".join(f"{r['cpu']:.1f}" for r in runs[k]) + " s CPU")


def _copies(paths: list[Path], langs: list[str], backend: str, tmp: Path) -> dict[str, list[Path]]:
    """The run's JSONs twice: with every job's languages stored (as jobs now write them), and
    with none (as runs from before wrote them)."""
    from mwork.fidelity import record_output_languages

    lid = OutputLanguage(langs, backend)
    out: dict[str, list[Path]] = {"stored": [], "none": []}
    for i, p in enumerate(paths):
        for kind in out:
            data = json.loads(p.read_text(encoding="utf-8"))
            for run in data["runs"]:
                run.pop("fidelity", None)
                for t in run["tasks"].values():
                    t["items"].pop("output_lang", None)
                if kind == "stored" and record_output_languages(run["tasks"], lid):
                    run["fidelity"] = lid.describe()
            out[kind].append(tmp / f"{kind}-{i}.json")
            out[kind][-1].write_text(json.dumps(data), encoding="utf-8")
    return out


def collect(paths: list[Path], langs: list[str], a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copies = _copies(paths, langs, a.backend, Path(tmp))
        runs = {
            "scores only": lambda: tidy_scores_and_languages(copies["none"]),
            "+ fidelity, stored": lambda: tidy_scores_and_languages(
                copies["stored"], OutputLanguage(langs, a.backend)
            ),
            "+ fidelity, identified": lambda: tidy_scores_and_languages(
                copies["none"], OutputLanguage(langs, a.backend)
            ),
        }
        print(f"3. collect_scores over {len(paths)} JSONs (medians of {a.repeats}; LID warm):")
        for name, fn in runs.items():
            times = [_time(fn) for _ in range(a.repeats)]
            wall = statistics.median(t[0] for t in times)
            cpu = statistics.median(t[1] for t in times)
            print(f"   {name:>22}: wall {wall:.2f} s, CPU {cpu:.2f} s")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--lid-worker":
        path, langs, backend = sys.argv[2:5]
        return lid_worker(path, langs.split(","), backend)
    if len(sys.argv) > 1 and sys.argv[1] == "--job-worker":
        run_dir, model, label, lang, lid, out = sys.argv[2:8]
        return job_worker(run_dir, model, label, lang, lid == "1", out)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--model", default="demo-llama")
    ap.add_argument("--backend", default="lingua")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--job", help="LABEL/LANG of one evaluation job to time, e.g. D_G/all")
    a = ap.parse_args()
    paths = sorted((a.run_dir / "results" / a.model / "eval").glob("*/*.json"))
    if not paths:
        raise SystemExit(f"error: no evaluation JSONs under {a.run_dir}/results/{a.model}/eval")
    langs = _languages(_config(a.run_dir.resolve()))
    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    per_job_lid(paths, langs, a.backend)
    if a.job:
        one_job(a)
    collect(paths, langs, a)
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
