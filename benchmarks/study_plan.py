"""The paper's study in numbers: jobs per rule of `snakemake -n` on config.yaml, and an ESTIMATE of
the GPU-hours per stage scaled from a finished demo run's `benchmark:` files.

    .venv/bin/python benchmarks/study_plan.py                      # job counts only
    .venv/bin/python benchmarks/study_plan.py --run .              # + estimate from ./logs/benchmarks/
    .venv/bin/python benchmarks/study_plan.py --run . --model-factor 2.0

Estimate per GPU rule = study jobs x (demo mean seconds per job) x work ratio x model factor:
- work ratio: the study's work per job over the demo's, from the two configs: detection
  documents x tokens per shard; evaluation items x generated tokens per item (full test sets:
  XQuAD 1190, MGSM 250, X-CSQA 1000, XLSum 500 sampled; generation budgets MGSM 512, XQuAD 64,
  XLSum 128, X-CSQA 1 as it scores log-likelihoods); 1 for every other GPU rule (lens,
  activation recording, fine-tuning: not modelled);
- model factor (stated, `--model-factor`, default 1.0): seconds per token of a 7B model on one
  A100-class GPU over the demo's 1.7M-parameter model on 2 CPU cores. About 14 GFLOP/token at
  ~30 TFLOP/s effective vs ~3.4 MFLOP/token at ~5 GFLOP/s: both ~0.5-1 ms per token.
Fixed per-job costs (imports, model load; ~10 s in the demo) are scaled too, which overstates
short jobs. It is an order-of-magnitude planning figure, not a measurement.
"""

import argparse
import csv
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FULL_ITEMS = {"xquad": 1190, "mgsm": 250, "xcsqa": 1000, "xlsum": 500}
DEFAULT_GEN = {"xquad": 64, "mgsm": 512, "xcsqa": 1, "xlsum": 128}


def gpu_rules() -> list[str]:
    """Rules whose `resources:` declare `gpu` (parsed from the rule files, as the unit tests do)."""
    names = []
    for path in sorted((ROOT / "rules").glob("*.smk")):
        text = path.read_text()
        for head in re.finditer(r"^( *)rule (\w+):", text, re.M):
            rest = text[head.end() :]
            end = re.search(rf"^ {{0,{len(head[1])}}}\S", rest, re.M)
            body = rest[: end.start()] if end else rest
            if re.search(r"^\s*resources:(?:\n\s+\w+=.*)*?\n\s+gpu\s*=", body, re.M):
                names.append(head[2])
    return names


def job_counts(config: Path) -> tuple[dict[str, int], float, float]:
    """Jobs per rule of a dry run with `config`, and the dry run's wall and CPU seconds."""
    with tempfile.TemporaryDirectory() as wd:
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(config.resolve()),
            "-n",
            "--quiet",
            "rules",
        ]
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, check=True)
        seconds, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    block = res.stdout.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}, seconds, cpu


def mean_seconds(run: Path) -> dict[str, float]:
    """Mean wall seconds per job of each rule, from <run>/logs/benchmarks/<rule>/**/*.tsv."""
    out = {}
    for rule_dir in sorted((run / "logs" / "benchmarks").iterdir()):
        secs = []
        for tsv in rule_dir.rglob("*.tsv"):
            with tsv.open() as f:
                secs += [float(row["s"]) for row in csv.DictReader(f, delimiter="\t")]
        if secs:
            out[rule_dir.name] = sum(secs) / len(secs)
    return out


def eval_work(cfg: dict, demo: bool) -> float:
    """Mean (items x generated tokens) per evaluation job over the configured tasks."""
    ev = cfg["evaluation"]
    works = []
    for task in ev["tasks"]:
        items = FULL_ITEMS[task] if ev.get("limit") is None else min(ev["limit"], FULL_ITEMS[task])
        gen = 1 if task == "xcsqa" else (ev.get("max_gen_toks") or DEFAULT_GEN[task])
        works.append(items * gen)
    return sum(works) / len(works)


def work_ratios(study: dict, demo: dict) -> dict[str, float]:
    def detect(cfg):
        d = cfg["detection"]
        return d["n_docs"] * d["max_tokens"] / d.get("shards", 1)

    ev = eval_work(study, False) / eval_work(demo, True)
    return {
        "detect_neurons": detect(study) / detect(demo),
        "evaluate_baseline": ev,
        "evaluate_condition": ev,
        "run_language_lens": 1.0,
        "measure_deactivation_ppl": 1.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="the study's config")
    ap.add_argument(
        "--run", type=Path, help="a finished demo run directory (holds logs/benchmarks/)"
    )
    ap.add_argument(
        "--demo-config",
        type=Path,
        default=ROOT / "demo" / "config.yaml",
        help="the config that run used",
    )
    ap.add_argument(
        "--model-factor",
        type=float,
        default=1.0,
        help="study-model GPU seconds per demo-model CPU second, per token (stated assumption)",
    )
    args = ap.parse_args()

    gpus = gpu_rules()
    counts, seconds, cpu = job_counts(args.config)
    total = counts.pop("total")
    print(
        f"## Jobs of `snakemake -n` on {args.config.name}: {total} "
        f"(dry run {seconds:.1f} s wall, {cpu:.1f} s CPU)\n"
    )
    print("| rule | jobs | GPU |\n|---|---:|:-:|")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"| {rule} | {n} | {'yes' if rule in gpus else ''} |")
    if args.run is None:
        return
    if not (args.run / "logs" / "benchmarks").is_dir():
        sys.exit(f"error: no logs/benchmarks/ in {args.run}; run the demo first (bash run.sh demo)")
    secs = mean_seconds(args.run)
    ratio = work_ratios(
        yaml.safe_load(args.config.read_text()), yaml.safe_load(args.demo_config.read_text())
    )
    print(f"\n## ESTIMATED GPU-hours per stage, model factor {args.model_factor:g} (see docstring)")
    print("\n| stage | jobs | demo s/job | work ratio | est. GPU-h |\n|---|---:|---:|---:|---:|")
    grand = 0.0
    for rule in gpus:
        n = counts.get(rule, 0)
        if not n:
            continue
        if rule not in secs:
            print(f"| {rule} | {n} | (no benchmark in the run) | | |")
            continue
        hours = n * secs[rule] * ratio.get(rule, 1.0) * args.model_factor / 3600
        grand += hours
        print(f"| {rule} | {n} | {secs[rule]:.1f} | {ratio.get(rule, 1.0):.1f} | {hours:.1f} |")
    print(f"| **all GPU stages** | | | | **{grand:.1f}** |")


if __name__ == "__main__":
    main()
