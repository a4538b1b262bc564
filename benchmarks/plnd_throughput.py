"""PLND throughput vs a plain forward pass on the same model and batch, both timed in this run.

    python benchmarks/plnd_throughput.py [--case small|7b|qknorm|all] [--quick] [--device cpu]
        [--qk-budget-mb MB] [--repeats N]
        small: [--hidden 256] [--layers 4] [--seq 256] [--batch 8]
        7b:    [--seq-7b 512]
        qknorm: [--seq-qknorm 256]

Cases:
    small  a random Llama (hidden 256, 4 layers), batch 8 x 256 tokens.
    7b     one random-weight Mistral-7B-shaped decoder layer (hidden 4096, 32 query / 8 kv heads,
           head 128, FFN 14336; MistralConfig with num_hidden_layers=1), one 512-token document.
    qknorm one random Qwen3-shaped layer (hidden 1024, 16 query / 8 kv heads, head 128: per-head
           Q/K RMSNorm) and one OLMo-2-shaped layer (hidden 1024, 16 heads, head 64: RMSNorm over
           the whole projection), one 256-token document each (mwork.plnd.qknorm scoring).

Prints, per case, the ISA of the C kernel (its vector width), the best-of-N seconds of the plain
forward, of PLND FFN+V and of PLND with all components (Q/K included: once with the form
`qk_kernel: auto` picks on this machine, mwork.plnd.backend, and once with the other one), and each
ratio (plain seconds / PLND seconds = PLND tokens/s ÷ forward
tokens/s; 1.00 means detection is as fast as the forward): "÷ plain" of the best times, "median ÷"
of the median times of each set's own interleaved plain and PLND runs (steadier on a shared machine,
where a slow spell can hit one set's best-of-N). Both sides run the backbone forward with
the model's default attention kernel; detection adds the PLND hooks and the per-document top-k
counting. Timings interleave plain and PLND to share noise. `--quick` runs one repeat on shorter
inputs (small: batch 2 x 64; 7b: 128 tokens) to check the script end to end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import transformers

from mwork.adapters import get_adapter
from mwork.detect import count_selected
from mwork.plnd import PLNDProbe, default_qk_budget, qk_kernel_used, work_dtype
from mwork.plnd.kernel_build import KernelUnavailable, load_kernel

RULE = {
    "ffn": ("top_k", 20),
    "attn_q": ("top_k", 10),
    "attn_k": ("top_k", 5),
    "attn_v": ("top_k", 5),
}
ALL = ("ffn", "attn_q", "attn_k", "attn_v")
COMPONENT_SETS = (("FFN+V", ("ffn", "attn_v"), "auto"), ("all", ALL, "auto"))
OTHER_QK = {
    "compiled": ("all, torch Q/K", ALL, "torch"),
    "triton": ("all, torch Q/K", ALL, "torch"),
    "torch": ("all, compiled Q/K", ALL, "compiled"),
}
"""Also timed: the Q/K form `auto` did not pick (detection.qk_kernel), so both are compared."""


def instantiate(
    cfg: transformers.PretrainedConfig, device: str, dtype: torch.dtype
) -> torch.nn.Module:
    """A seeded random-weight model of `cfg` on device/dtype, in eval mode."""
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(cfg).to(device, dtype).eval()


def build_small(hidden: int, layers: int, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """A random Llama of width `hidden` (head 32, GQA 2:1)."""
    cfg = transformers.LlamaConfig(
        vocab_size=8000,
        hidden_size=hidden,
        intermediate_size=int(hidden * 8 / 3) // 8 * 8,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 32,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=4096,
    )
    return instantiate(cfg, device, dtype)


def build_7b_layer(device: str, dtype: torch.dtype) -> torch.nn.Module:
    """One random-weight decoder layer shaped like Mistral-7B (small vocabulary)."""
    cfg = transformers.MistralConfig(
        vocab_size=1024,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=1,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        sliding_window=4096,
        max_position_embeddings=4096,
    )
    return instantiate(cfg, device, dtype)


def build_qknorm_layer(family: str, device: str, dtype: torch.dtype) -> torch.nn.Module:
    """One random-weight decoder layer with a Q/K RMSNorm: "qwen3" (per head) or "olmo2" (whole)."""
    if family == "qwen3":
        cfg = transformers.Qwen3Config(
            vocab_size=1024,
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=1,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=4096,
        )
    else:
        cfg = transformers.Olmo2Config(
            vocab_size=1024,
            hidden_size=1024,
            intermediate_size=2816,
            num_hidden_layers=1,
            num_attention_heads=16,
            num_key_value_heads=16,
            max_position_embeddings=4096,
            eos_token_id=2,  # the default (50279) lies outside the small vocabulary
        )
    return instantiate(cfg, device, dtype)


def timed(fn: Callable[[], object], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def bench(
    name: str,
    model: torch.nn.Module,
    batch: int,
    seq: int,
    repeats: int,
    device: str,
    qk_budget: int | None,
) -> None:
    """Time plain forward, PLND FFN+V and PLND all on one random batch; print one block."""
    adapter = get_adapter(model)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, model.config.vocab_size, (batch, seq), generator=g).to(device)
    mask = torch.ones_like(ids)
    budget = qk_budget if qk_budget is not None else default_qk_budget(device)
    dtype = work_dtype(next(model.parameters()).dtype)
    kernel = qk_kernel_used("auto", torch.device(device), dtype, adapter.head_dim)
    isa = ""
    if torch.device(device).type == "cpu":
        try:
            kern = load_kernel(dtype)
            isa = f" ({kern.isa}, {kern.lanes} lanes)"
        except KernelUnavailable as e:
            isa = f" (no C kernel: {e})"

    @torch.inference_mode()
    def plain() -> None:
        model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)

    print(
        f"[{name}] {adapter.family} hidden={adapter.d_model} layers={adapter.n_layers} "
        f"ffn={adapter.d_ffn} heads={adapter.n_heads}/{adapter.n_kv_heads} "
        f"head_dim={adapter.head_dim}; "
        f"batch={batch} x seq={seq}; {device} {next(model.parameters()).dtype}; "
        f"threads={torch.get_num_threads()}; qk budget={budget / 2**20:.0f} MiB; "
        f"Q/K auto={kernel}{isa}; best of {repeats}"
    )
    t_plain: list[float] = []
    rows = []
    plain()  # warm-up
    other = OTHER_QK[kernel]
    if other[2] == "compiled" and torch.device(device).type != "cpu":
        other = None  # no C kernel on a GPU
    sets = COMPONENT_SETS + ((other,) if other else ())
    for label, comps, qk_kernel in sets:
        with PLNDProbe(adapter, comps, qk_budget_bytes=qk_budget, qk_kernel=qk_kernel) as probe:

            def detect() -> None:
                for c, s in probe.run(ids, mask).items():
                    count_selected(s, RULE[c])

            detect()  # warm-up
            t_det, t_own = [], []
            for _ in range(repeats):
                t_own.append(timed(plain, device))
                t_det.append(timed(detect, device))
        t_plain += t_own
        # median ratio: against the plain runs interleaved with this set (robust to a slow spell)
        rows.append((label, min(t_det), statistics.median(t_own) / statistics.median(t_det)))
    fwd = min(t_plain)
    print(f"  {'':<22}{'seconds':>10}{'tokens/s':>12}{'÷ plain':>10}{'median ÷':>10}")
    print(f"  {'plain forward':<22}{fwd:>10.3f}{batch * seq / fwd:>12,.0f}{1.0:>10.2f}{1.0:>10.2f}")
    for label, t, med in rows:
        line = f"{batch * seq / t:>12,.0f}{fwd / t:>10.2f}{med:>10.2f}"
        print(f"  {'PLND ' + label:<22}{t:>10.3f}{line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("small", "7b", "qknorm", "all"), default="all")
    ap.add_argument("--quick", action="store_true", help="one repeat, short inputs")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seq", type=int, default=None, help="small case length (default 256)")
    ap.add_argument("--batch", type=int, default=None, help="small case batch (default 8)")
    ap.add_argument("--seq-7b", type=int, default=None, help="7b case length (default 512)")
    ap.add_argument("--seq-qknorm", type=int, default=None, help="qknorm case length (256)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="timed repeats (default 5 small, 2 7b/qknorm)"
    )
    ap.add_argument("--qk-budget-mb", type=float, default=None, help="default: default_qk_budget")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    budget = None if a.qk_budget_mb is None else int(a.qk_budget_mb * 2**20)
    if a.case in ("small", "all"):
        seq = a.seq or (64 if a.quick else 256)
        batch = a.batch or (2 if a.quick else 8)
        repeats = a.repeats or (1 if a.quick else 5)
        model = build_small(a.hidden, a.layers, a.device, dtype)
        bench("small", model, batch, seq, repeats, a.device, budget)
        del model
    if a.case in ("7b", "all"):
        seq = a.seq_7b or (128 if a.quick else 512)
        repeats = a.repeats or (1 if a.quick else 2)
        bench("7b-layer", build_7b_layer(a.device, dtype), 1, seq, repeats, a.device, budget)
    if a.case in ("qknorm", "all"):
        seq = a.seq_qknorm or (64 if a.quick else 256)
        repeats = a.repeats or (1 if a.quick else 2)
        for family in ("qwen3", "olmo2"):
            model = build_qknorm_layer(family, a.device, dtype)
            bench(f"{family}-layer", model, 1, seq, repeats, a.device, budget)


if __name__ == "__main__":
    main()
