"""The paper's study in numbers: the jobs of `snakemake -n` on config.yaml, the work each GPU stage
counts, and an ESTIMATE of its GPU-hours from that work and stated device throughputs.

    .venv/bin/python benchmarks/study_plan.py                    # config.yaml
    .venv/bin/python benchmarks/study_plan.py --config my.yaml --vllm-decode-ratio 3

Counted per job, from the dry run's jobs and the config (mwork.plan):
- detect_neurons: tokens through the forward (documents per shard × detection.max_tokens, every
  document taken at the cap: an upper bound) and Eq. 8's Q/K terms (2 removals × query heads ×
  head dim × Σ_t keys seen by row t, per layer and document);
- evaluate_baseline / _condition / _finetuned: prompt tokens (items × assumed prompt length, per
  task and scored language; X-CSQA's 5 choices each) and generated tokens (items × assumed mean
  answer length);
- finetune_neurons: training tokens (documents × finetune.max_length × epochs);
- run_language_lens: prompt tokens of the shipped lens prompts (negligible).
Seconds = FLOPs / (peak × utilisation) per part (forward 2·P per token, training 8·P: 6·P + the
recomputed forward of gradient checkpointing, Q/K ASSUMED_QK_FLOPS per term in fp32), generated
tokens / decode rate, + a fixed start-up per job. Every figure in ASSUMED is an assumption, stated
in docs/performance.md ("The study's cost"); none is a measurement on a GPU.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mwork.plan import Plan  # noqa: E402
from mwork.studyconfig import load_config  # noqa: E402

ASSUMED = {
    "device": "one H100 SXM 80 GB",
    "bf16_peak": 989e12,  # dense tensor-core FLOP/s
    "fp32_peak": 67e12,  # no TF32: PyTorch's default for float32 matmuls
    "forward_mfu": 0.35,  # share of peak a batched forward reaches (HF and vLLM alike)
    "train_mfu": 0.35,
    "qk_fp32_util": 0.5,  # share of fp32 peak the fused Q/K kernel (mwork.plnd.triton_qk) reaches
    "qk_flops_per_term": 60,  # 2 passes x (z, e^z, e^z - 1, 3 sums) per (row, key, column)
    "hf_decode_tokens_s": 240,  # HF generate, batch 8 (evaluation.batch_size), 7B: ~30 steps/s
    "vllm_decode_ratio": 5.0,  # vLLM / HF generated tokens/s on a GPU (CPU measured: 2.5x)
    "vllm_prefill_ratio": 1.0,  # vLLM / HF prompt tokens/s (CPU log-likelihood measured: 0.38x)
    "hf_start_s": 60,  # imports + loading a 7B checkpoint, per job
    "vllm_start_s": 120,  # + the engine (CPU measured 52 s for a tiny model)
}
"""Device throughputs and utilisations the estimate assumes (docs/performance.md)."""

TASKS = {  # items (full test sets / the XLSum sample), prompt tokens, mean generated tokens
    "xquad": (1190, 300, 20),
    "mgsm": (250, 200, 200),
    "xcsqa": (1000, 5 * 60, 0),  # log-likelihood of 5 choices: prompt tokens only
    "xlsum": (500, 700, 60),
}
"""Per task: items, prompt tokens per item, mean generated tokens per item (ASSUMED lengths)."""
LENS_TOKENS = 60 * 40  # 10 shipped prompts x 6 languages x ~40 tokens
EVAL_RULES = ("evaluate_baseline", "evaluate_condition", "evaluate_finetuned")
GPU_STAGES = ("detect_neurons", *EVAL_RULES, "finetune_neurons", "run_language_lens")


@dataclass
class Work:
    """Counted work of one stage (summed over its jobs)."""

    jobs: int = 0
    forward_flops: float = 0.0  # prompt / detection / lens tokens x 2 P
    forward_tokens: float = 0.0
    qk_terms: float = 0.0
    generated: float = 0.0
    train_tokens: float = 0.0
    train_flops: float = 0.0
    fp32_forward_flops: float = 0.0  # the part of forward_flops on float32 weights
    fp32_train_flops: float = 0.0
    models: set = field(default_factory=set)


def params_of(alias: str, hf_id: str) -> float:
    """Nominal parameter count from the model's name ("7b" -> 7e9, "7b1" -> 7.1e9)."""
    m = re.search(r"(\d+)[bB](\d)?", f"{alias} {hf_id}")
    if m is None:
        raise SystemExit(f"error: no size in the name of model {alias}; name it like *-7b")
    return (int(m[1]) + (int(m[2]) / 10 if m[2] else 0.0)) * 1e9


def geometry(params: float, n_layers: int) -> int:
    """hidden width (query heads x head dim) of a Llama-like model: P ~ 13·L·h² (12·L·h² in the
    layers, about L·h² more in the embeddings of a 32k vocabulary), rounded to 128."""
    return max(128, round(math.sqrt(params / (13 * n_layers)) / 128) * 128)


def dry_run_jobs(config: Path) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job `snakemake -n` plans with `config`."""
    with tempfile.TemporaryDirectory() as wd:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
        cmd += ["--configfile", str(config.resolve()), "-n"]
        res = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"error: snakemake -n failed: {(res.stderr or res.stdout)[-500:]}")
    jobs = []
    for block in re.split(r"^(?:local)?rule ", res.stdout, flags=re.M)[1:]:
        rule = block.split(":", 1)[0].strip()
        wc = re.search(r"^\s+wildcards: (.+)$", block, re.M)
        pairs = [p.split("=", 1) for p in wc[1].split(", ")] if wc else []
        jobs.append((rule, {k: v for k, v in pairs}))
    return jobs


def count_work(cfg: dict, jobs: list[tuple[str, dict[str, str]]]) -> dict[str, Work]:
    """Counted work per GPU stage of these jobs under config `cfg` (schema defaults filled)."""
    plan = Plan(cfg)
    det, ev, ft = cfg["detection"], cfg.get("evaluation") or {}, cfg.get("finetune") or {}
    out = {s: Work() for s in GPU_STAGES}
    for rule, wc in jobs:
        if rule not in out:
            continue
        w, model = out[rule], wc.get("model", "")
        spec = cfg["models"][model]
        p = params_of(model, spec["hf_id"])
        fp32 = spec.get("dtype") == "float32"
        w.jobs += 1
        w.models.add(model)
        if rule == "detect_neurons":
            docs = math.ceil(det["n_docs"] / int(wc.get("n", 1)))
            if det.get("group_languages"):  # one job per (model, shard) scores every language
                docs *= len(plan.all_langs)
            n = det["max_tokens"]
            tokens = docs * n
            hidden = geometry(p, spec["n_layers"])
            w.qk_terms += docs * spec["n_layers"] * 2 * hidden * n * (n + 1) / 2
            flops = 2 * p * tokens
        elif rule in EVAL_RULES:
            label = wc.get("condition") or wc.get("label") or "none"  # baseline: none
            lang = wc["lang"]
            if rule == "evaluate_finetuned":
                label = f"ft_{wc['kind']}-{wc['n']}"
            tokens = flops = 0.0
            for task, l in plan.eval_jobs(model)[(label, lang)]:
                items, prompt, gen = TASKS[task]
                items = items if ev.get("limit") is None else min(items, ev["limit"])
                for _ in plan.eval_langs(label, l):
                    tokens += items * prompt
                    w.generated += items * gen
            if label.startswith("ft_"):
                fp32 = True  # deltas are applied to a float32 base (finetune.eval_dtype)
            flops = 2 * p * tokens
        elif rule == "finetune_neurons":
            train = int(wc["n"]) * ft["max_length"] * ft["epochs"]
            w.train_tokens += train
            f = (8 if ft.get("gradient_checkpointing", True) else 6) * p * train
            w.train_flops += f
            w.fp32_train_flops += f if fp32 else 0.0
            continue
        else:  # run_language_lens
            tokens = LENS_TOKENS
            flops = 2 * p * tokens
        w.forward_tokens += tokens
        w.forward_flops += flops
        w.fp32_forward_flops += flops if fp32 else 0.0
    return out


def hours(w: Work, backend: str, a: dict) -> float:
    """Estimated GPU-hours of one stage's work on `backend` ("hf" or "vllm") under assumptions a."""
    bf16 = a["bf16_peak"] * a["forward_mfu"]
    fp32 = a["fp32_peak"] * a["forward_mfu"]
    fwd = (w.forward_flops - w.fp32_forward_flops) / bf16 + w.fp32_forward_flops / fp32
    train = (w.train_flops - w.fp32_train_flops) / (a["bf16_peak"] * a["train_mfu"])
    train += w.fp32_train_flops / (a["fp32_peak"] * a["train_mfu"])
    qk = w.qk_terms * a["qk_flops_per_term"] / (a["fp32_peak"] * a["qk_fp32_util"])
    decode = w.generated / a["hf_decode_tokens_s"]
    start = w.jobs * a["hf_start_s"]
    if backend == "vllm":
        fwd /= a["vllm_prefill_ratio"]
        decode /= a["vllm_decode_ratio"]
        start = w.jobs * a["vllm_start_s"]
    return (fwd + train + qk + decode + start) / 3600


def report(work: dict[str, Work], a: dict) -> None:
    """Print the counted work and the estimate per stage, HF and vLLM evaluation side by side."""
    print(f"## ESTIMATED GPU-hours per stage on {a['device']} (assumptions: docs/performance.md)\n")
    head = "| stage | jobs | forward tokens | Q/K terms | generated | training tokens |"
    print(head + " GPU-h (hf) | GPU-h (vllm) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    tot = {"hf": 0.0, "vllm": 0.0}
    for stage, w in work.items():
        if not w.jobs:
            continue
        h = {b: hours(w, b, a) for b in tot}
        same = stage not in EVAL_RULES  # only evaluation runs on vLLM
        h["vllm"] = h["hf"] if same else h["vllm"]
        for b in tot:
            tot[b] += h[b]
        cells = [w.forward_tokens, w.qk_terms, w.generated, w.train_tokens]
        nums = " | ".join(f"{c:.3g}" if c else "" for c in cells)
        print(f"| {stage} | {w.jobs} | {nums} | {h['hf']:.1f} | {h['vllm']:.1f} |")
    print(f"| **all GPU stages** | | | | | | **{tot['hf']:.1f}** | **{tot['vllm']:.1f}** |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="the study's config")
    for key in ("vllm_decode_ratio", "vllm_prefill_ratio", "hf_decode_tokens_s", "forward_mfu"):
        ap.add_argument(f"--{key.replace('_', '-')}", type=float, default=ASSUMED[key])
    args = ap.parse_args()
    assumed = dict(ASSUMED)
    for key in ("vllm_decode_ratio", "vllm_prefill_ratio", "hf_decode_tokens_s", "forward_mfu"):
        assumed[key] = getattr(args, key)
    cfg = load_config(args.config)
    jobs = dry_run_jobs(args.config)
    counts: dict[str, int] = {}
    for rule, _ in jobs:
        counts[rule] = counts.get(rule, 0) + 1
    print(f"## Jobs of `snakemake -n` on {args.config.name}: {len(jobs)}\n")
    print("| rule | jobs | GPU |\n|---|---:|:-:|")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"| {rule} | {n} | {'yes' if rule in GPU_STAGES else ''} |")
    print()
    report(count_work(cfg, jobs), assumed)


if __name__ == "__main__":
    main()
