"""PLND on a GPU: plain forward, PLND FFN+V, PLND all with torch's Q/K form and with the fused
Triton kernel (mwork.plnd.triton_qk), in one run, with tokens/s, ratios and peak GPU memory.

    python benchmarks/plnd_gpu.py                 # CUDA: a Mistral-7B-shaped layer + a tiny model
    python benchmarks/plnd_gpu.py --seq 1024 --repeats 5
    python benchmarks/plnd_gpu.py --smoke         # CPU, Triton's interpreter, tiny shapes (CI)

Cases:
    7b-layer   one random-weight Mistral-7B-shaped decoder layer (hidden 4096, 32/8 heads, head
               128, FFN 14336), one document of --seq tokens (default 512), model in --dtype
               (default bfloat16 on CUDA; PLND scores in float32 as always)
    tiny-model a whole random Llama (hidden 256, 4 layers, head 32), batch 8 x --seq tokens
Each row: best-of-N seconds (timings interleave plain and PLND runs; CUDA synchronised), tokens/s,
plain seconds / PLND seconds of the best and of the medians, and the peak GPU memory of that set
(torch.cuda.max_memory_allocated, reset before it). About 1-2 minutes on one H100 (an estimate:
no GPU was available when this was written; docs/performance.md). `--smoke` runs the same code on
CPU tensors through Triton's interpreter with tiny shapes, to check the script end to end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ALL = ("ffn", "attn_q", "attn_k", "attn_v")
RULE = {
    "ffn": ("top_k", 20),
    "attn_q": ("top_k", 10),
    "attn_k": ("top_k", 5),
    "attn_v": ("top_k", 5),
}
SETS = (
    ("FFN+V", ("ffn", "attn_v"), "torch"),
    ("all, torch Q/K", ALL, "torch"),
    ("all, Triton Q/K", ALL, "triton"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=512, help="tokens per document")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default=None, help="model dtype (default bfloat16; smoke float32)")
    ap.add_argument("--smoke", action="store_true", help="CPU + Triton interpreter, tiny shapes")
    a = ap.parse_args()
    if a.smoke:  # read when triton is first imported
        os.environ["TRITON_INTERPRET"] = "1"
    import torch
    import transformers

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from plnd_throughput import build_7b_layer, build_small, instantiate

    device = "cpu" if a.smoke else "cuda"
    if not a.smoke and not torch.cuda.is_available():
        sys.exit("error: no CUDA device; run with --smoke for the CPU check")
    dtype = getattr(torch, a.dtype or ("float32" if a.smoke else "bfloat16"))
    name = "CPU (Triton interpreter)" if a.smoke else torch.cuda.get_device_name()
    print(f"device: {name}; torch {torch.__version__}; model dtype {dtype}")
    if a.smoke:
        cfg = transformers.MistralConfig(
            vocab_size=128,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
        )
        cases = [("7b-layer (smoke: hidden 64)", instantiate(cfg, device, dtype), 1, 12)]
        cases.append(("tiny-model (smoke)", build_small(64, 2, device, dtype), 2, 8))
    else:
        cases = [("7b-layer", build_7b_layer(device, dtype), 1, a.seq)]
        cases.append(("tiny-model", build_small(256, 4, device, dtype), 8, a.seq))
    for label, model, batch, seq in cases:
        bench(label, model, batch, seq, 1 if a.smoke else a.repeats, device)
        del model


def bench(label: str, model, batch: int, seq: int, repeats: int, device: str) -> None:
    """Time the plain forward and each PLND set on one random batch; print one table."""
    import torch

    from mwork.adapters import get_adapter
    from mwork.detect import count_selected
    from mwork.plnd import PLNDProbe

    cuda = device.startswith("cuda")
    adapter = get_adapter(model)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, model.config.vocab_size, (batch, seq), generator=g).to(device)
    mask = torch.ones_like(ids)

    def timed(fn) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def peak_reset() -> None:
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak() -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")

    @torch.inference_mode()
    def plain() -> None:
        model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)

    print(
        f"[{label}] {adapter.family} hidden={adapter.d_model} layers={adapter.n_layers} "
        f"heads={adapter.n_heads}/{adapter.n_kv_heads} head_dim={adapter.head_dim}; "
        f"batch={batch} x seq={seq}; best of {repeats}"
    )
    plain()  # warm-up
    peak_reset()
    t_plain = [timed(plain) for _ in range(repeats)]
    rows = [("plain forward", min(t_plain), 1.0, 1.0, peak())]
    for name, comps, kernel in SETS:
        with PLNDProbe(adapter, comps, qk_kernel=kernel) as probe:

            def detect() -> None:
                for c, s in probe.run(ids, mask).items():
                    count_selected(s, RULE[c])

            detect()  # warm-up (Triton compiles here)
            peak_reset()
            own, det = [], []
            for _ in range(repeats):
                own.append(timed(plain))
                det.append(timed(detect))
            mem = peak()
        med = statistics.median(own) / statistics.median(det)
        rows.append((f"PLND {name}", min(det), min(t_plain) / min(det), med, mem))
    print(
        f"  {'':<22}{'seconds':>10}{'tokens/s':>12}{'÷ plain':>9}{'median ÷':>10}{'peak GiB':>10}"
    )
    for name, t, ratio, med, mem in rows:
        print(
            f"  {name:<22}{t:>10.4f}{batch * seq / t:>12,.0f}{ratio:>9.2f}{med:>10.2f}{mem:>10.2f}"
        )


if __name__ == "__main__":
    main()
