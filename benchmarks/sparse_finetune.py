"""Benchmark: neuron-only vs full fine-tuning on the same model and data, in one run.

Model: the demo's shape (Llama, 6 layers, hidden 128, FFN 384, 4 heads, vocabulary 4096, tied
embeddings; random weights, float32, CPU). Neurons: `--share` (default 1.8%, the demo's neuron
share) of the units of every (layer, component), seeded. Data: the same random token rows for
both modes (`--seq` tokens, effective batch 32 = micro-batch 8 x 4, the released code's setting).
Both modes run the library's `FinetuneTrainer` (AdamW, clipping, schedule).

Printed, per mode:
- trainable + gradient + optimizer-state bytes, counted from the actual tensors after a step
  (`FinetuneTrainer.state_bytes`), and their ratio neuron-only / full;
- peak memory: each mode runs in its own fresh subprocess; the peak resident set (VmHWM, reset
  through /proc/self/clear_refs right before the trainer is built) minus the resident set at that
  moment (model and data already loaded). On CUDA: torch.cuda.max_memory_allocated minus the
  allocation before the trainer. tracemalloc cannot see torch's allocator, so it is not used;
- step time: median over `--steps` optimizer steps after one warm-up step; modes alternate over
  `--repeats` so machine drift hits both; the ratio is the median of the per-repeat ratios.
Then the 7B-shaped projection (Mistral-7B: 32 layers, hidden 4096, FFN 14336, 32 heads, 8 kv
heads, head 128, vocabulary 32000) from counts at the paper's ≈0.13% neuron share, the demo's
share, and the released code's cap (100 neurons per matrix per layer, W_gate frozen).

    python benchmarks/sparse_finetune.py [--share 0.018] [--steps 5] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from mwork.adapters import COMPONENTS, get_adapter
from mwork.finetune.settings import FinetuneSettings
from mwork.finetune.trainer import FinetuneTrainer
from mwork.tiny import tiny_model

DEMO_SHAPE = dict(
    vocab_size=4096,
    hidden_size=128,
    num_hidden_layers=6,
    intermediate_size=384,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=32,
    max_position_embeddings=512,
    tie_word_embeddings=True,
    initializer_range=0.02,
)
MISTRAL = dict(layers=32, d=4096, ffn=14336, heads=32, kv=8, head=128, vocab=32000)


def share_selection(adapter, share: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """round(share * units) random units (at least 1) in every (layer, component)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for c in COMPONENTS:
        n = adapter.n_units(c)
        sel = torch.zeros(adapter.n_layers, n, dtype=torch.bool)
        for i in range(adapter.n_layers):
            sel[i, torch.randperm(n, generator=g)[: max(1, round(share * n))]] = True
        out[c] = sel
    return out


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def worker(mode: str, args: argparse.Namespace) -> dict[str, object]:
    """One mode in this (fresh) process: bytes, peak memory, step times."""
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = tiny_model("llama", seed=0, **DEMO_SHAPE).to(device)
    adapter = get_adapter(model)
    selection = share_selection(adapter, args.share) if mode == "sparse" else None
    g = torch.Generator().manual_seed(1)
    steps = args.steps + 1
    rows = torch.randint(3, DEMO_SHAPE["vocab_size"], (steps * 32, args.seq), generator=g)
    settings = FinetuneSettings(mode="ls" if mode == "sparse" else "full", lr=2e-6, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        before = _status_kb("VmRSS") * 1024
    trainer = FinetuneTrainer(adapter, selection, settings, total_steps=steps, pad_id=0)
    times = []
    for s in range(steps):
        t0 = time.perf_counter()
        trainer.step(rows[s * 32 : (s + 1) * 32])
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = _status_kb("VmHWM") * 1024 - before
    out = {
        "mode": mode,
        "bytes": trainer.state_bytes(),
        "n_trainable": trainer.n_trainable(),
        "n_params": sum(p.numel() for p in model.parameters()),
        "peak": peak,
        "step_s": statistics.median(times[1:]),
        "device": device.type,
        "neurons": int(sum(int(s.sum()) for s in selection.values())) if selection else 0,
        "units": sum(adapter.n_layers * adapter.n_units(c) for c in COMPONENTS),
    }
    trainer.close()
    return out


def run_worker(mode: str, args: argparse.Namespace) -> dict[str, object]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--share",
        str(args.share),
        "--steps",
        str(args.steps),
        "--seq",
        str(args.seq),
        "--threads",
        str(args.threads),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def projection(share: float | None, cap: int | None = None) -> dict[str, float]:
    """Trainable scalars and state bytes, neuron-only vs full fine-tuning, Mistral-7B shape."""
    m = MISTRAL
    q, kv = m["heads"] * m["head"], m["kv"] * m["head"]
    per_layer = (q + 2 * kv) * m["d"] + q * m["d"] + 3 * m["ffn"] * m["d"] + 2 * m["d"]
    n_params = m["layers"] * per_layer + 2 * m["vocab"] * m["d"] + m["d"]
    if cap is None:
        ffn_n, attn_n = round(share * m["ffn"]), round(share * q) + 2 * round(share * kv)
        trainable = m["layers"] * (ffn_n * 3 * m["d"] + attn_n * m["d"])
        neurons = m["layers"] * (ffn_n + attn_n)
    else:  # released code: <= cap rows of q, k, v, up and columns of down per layer, gate frozen
        trainable = m["layers"] * cap * (2 * m["d"] + 3 * m["d"])
        neurons = m["layers"] * cap * 4
    units = m["layers"] * (m["ffn"] + q + 2 * kv)
    return {
        "neurons": neurons,
        "neuron_share": neurons / units,
        "trainable": trainable,
        "n_params": n_params,
        "sparse_bytes": 16 * trainable,  # fp32 values + fp32 grads + 2 fp32 AdamW moments
        "full_fp32_bytes": 16 * n_params,  # the same for every parameter
        "released_bytes": 12 * n_params,
    }  # bf16 weights + bf16 grads + 32-bit AdamW (released code)


def gib(x: float) -> str:
    return f"{x / 2**30:.3f} GiB" if x >= 2**28 else f"{x / 2**20:.2f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--share", type=float, default=0.018, help="neuron share per (layer, component)"
    )
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", choices=["sparse", "full"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args)))
        return

    runs: dict[str, list[dict]] = {"sparse": [], "full": []}
    for r in range(args.repeats):
        for mode in ("sparse", "full") if r % 2 == 0 else ("full", "sparse"):
            runs[mode].append(run_worker(mode, args))
    sp, fu = runs["sparse"][0], runs["full"][0]
    sp_total, fu_total = sum(sp["bytes"].values()), sum(fu["bytes"].values())
    print(
        f"model: demo-shaped Llama, {fu['n_params']:,} parameters, {sp['device']}, "
        f"{args.threads} threads; "
        f"{sp['neurons']} of {sp['units']} neurons ({100 * sp['neurons'] / sp['units']:.2f}%); "
        f"batch 32 x {args.seq} tokens (micro-batch 8)"
    )
    print(f"{'':22}{'neuron-only':>14}{'full':>14}{'ratio':>10}")
    for key in ("trainable", "gradient", "optimizer"):
        a, b = sp["bytes"][key], fu["bytes"][key]
        print(f"{key + ' bytes':22}{a:>14,}{b:>14,}{100 * a / b:>9.2f}%")
    print(
        f"{'sum of the three':22}{sp_total:>14,}{fu_total:>14,}"
        f"{100 * sp_total / fu_total:>9.2f}%  (target <= 1%)"
    )
    print(
        f"{'trainable scalars':22}{sp['n_trainable']:>14,}{fu['n_trainable']:>14,}"
        f"{100 * sp['n_trainable'] / fu['n_trainable']:>9.2f}%"
    )
    peaks = {m: statistics.median(x["peak"] for x in runs[m]) for m in runs}
    method = (
        "CUDA max_memory_allocated" if sp["device"] == "cuda" else "VmHWM - VmRSS, fresh process"
    )
    print(f"{'peak memory (' + method + ')':22}")
    print(
        f"{'':22}{gib(peaks['sparse']):>14}{gib(peaks['full']):>14}"
        f"{100 * peaks['sparse'] / peaks['full']:>9.1f}%"
    )
    ratios = [s["step_s"] / f["step_s"] for s, f in zip(runs["sparse"], runs["full"], strict=True)]
    st = {m: statistics.median(x["step_s"] for x in runs[m]) for m in runs}
    print(
        f"{'step time (median)':22}{st['sparse'] * 1e3:>12.1f}ms{st['full'] * 1e3:>12.1f}ms"
        f"{statistics.median(ratios):>9.2f}x  (median per-repeat ratio; target <= 1)"
    )
    print(
        "\n7B-shaped projection (Mistral-7B counts; "
        "sparse: fp32 values + grads + AdamW moments = 16 B/scalar)"
    )
    print(
        f"{'setting':34}{'neurons':>10}{'share':>8}{'trainable':>15}{'sparse state':>14}"
        f"{'full fp32':>12}{'ratio':>8}{'released bf16':>15}"
    )
    for label, share, cap in (
        ("paper's ≈0.13% of neurons", 0.0013, None),
        (f"demo share {100 * args.share:.1f}%", args.share, None),
        ("released cap 100/matrix/layer", None, 100),
    ):
        p = projection(share, cap)
        print(
            f"{label:34}{p['neurons']:>10,}{100 * p['neuron_share']:>7.2f}%{p['trainable']:>15,}"
            f"{gib(p['sparse_bytes']):>14}{gib(p['full_fp32_bytes']):>12}"
            f"{100 * p['sparse_bytes'] / p['full_fp32_bytes']:>7.2f}%{gib(p['released_bytes']):>15}"
        )


if __name__ == "__main__":
    main()
