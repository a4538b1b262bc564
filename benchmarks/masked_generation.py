"""Benchmark: greedy generation throughput with and without `mask_neurons` hooks.

A random tiny-but-not-trivial Llama (hidden 256, 4 layers, GQA 8/4 heads, d_ffn 704) generates
64 new tokens for a batch of 4, unmasked and with ~1% of the neurons of every component in every
layer deactivated. Runs are interleaved (order alternates per repeat) so drift hits both sides
alike; the report is the median (and best) tokens/s of each and the masked/unmasked ratio: the
median of the per-repeat ratios (robust to load drift on a shared machine), of the medians, and of
the best runs (target >= 0.97).

    python benchmarks/masked_generation.py [--repeats 10] [--threads 1] [--new-tokens 64] [--batch 4]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from mwork import mask as mask_mod
from mwork.adapters import COMPONENTS, get_adapter
from mwork.tiny import tiny_model


def random_selection(adapter, fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """~`fraction` of the units of every (layer, component), at least one."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for c in COMPONENTS:
        n = adapter.n_units(c)
        k = max(1, round(fraction * n))
        sel = torch.zeros(adapter.n_layers, n, dtype=torch.bool)
        for i in range(adapter.n_layers):
            sel[i, torch.randperm(n, generator=g)[:k]] = True
        out[c] = sel
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument(
        "--mode", choices=mask_mod.MASK_MODES, default="hooks", help="mask_neurons mode"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = tiny_model(
        "llama",
        seed=0,
        vocab_size=1000,
        hidden_size=256,
        num_hidden_layers=4,
        intermediate_size=704,
        num_attention_heads=8,
        num_key_value_heads=4,
        head_dim=32,
        max_position_embeddings=512,
    )
    adapter = get_adapter(model)
    selection = random_selection(adapter, args.fraction, seed=0)
    n_masked = sum(int(s.sum()) for s in selection.values())
    n_total = sum(adapter.n_layers * adapter.n_units(c) for c in COMPONENTS)
    prompt = torch.randint(3, 1000, (args.batch, 16), generator=torch.Generator().manual_seed(1))

    def run(masked: bool) -> float:
        ctx = (
            mask_mod.mask_neurons(adapter, selection, args.mode)
            if masked
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), ctx:
            t0 = time.perf_counter()
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=False,
                pad_token_id=0,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
            )
            dt = time.perf_counter() - t0
        return (out.shape[1] - prompt.shape[1]) * args.batch / dt

    run(False), run(True)  # warm-up
    speeds: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.repeats):
        for masked in (False, True) if r % 2 == 0 else (True, False):
            speeds[masked].append(run(masked))
    plain, masked = statistics.median(speeds[False]), statistics.median(speeds[True])
    print(
        f"model: llama hidden 256, 4 layers, batch {args.batch}, {args.new_tokens} new tokens, "
        f"{args.threads} thread(s), torch {torch.__version__}"
    )
    print(f"mask mode: {args.mode}")
    print(
        f"masked neurons: {n_masked} of {n_total} ({100 * n_masked / n_total:.2f}%), "
        f"{args.repeats} interleaved repeats"
    )
    for name, key, med in (("unmasked", False, plain), ("masked  ", True, masked)):
        print(
            f"{name}: {med:8.1f} tokens/s (median; min {min(speeds[key]):.1f}, max {max(speeds[key]):.1f})"
        )
    best = max(speeds[True]) / max(speeds[False])
    paired = statistics.median(m / p for m, p in zip(speeds[True], speeds[False], strict=True))
    print(
        f"ratio masked/unmasked: {paired:.3f} (median of per-repeat pairs), {masked / plain:.3f} (medians), "
        f"{best:.3f} (best runs); target >= 0.97"
    )


if __name__ == "__main__":
    main()
