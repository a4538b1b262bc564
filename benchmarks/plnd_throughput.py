"""PLND throughput vs a plain forward pass on the same model and batch (tokens/s and ratio).

    python benchmarks/plnd_throughput.py [--hidden 256] [--layers 4] [--seq 256] [--batch 8] [--device cpu]

Prints one row per component set (FFN+V, all): detection tokens/s, plain-forward tokens/s, ratio.
Both sides run the backbone forward with the model's default attention kernel; detection adds the
PLND hooks and the per-document top-k counting. Timings interleave the two to share noise.
"""

from __future__ import annotations

import argparse
import time

import torch
import transformers

from mwork.adapters import get_adapter
from mwork.detect import count_selected
from mwork.plnd import PLNDProbe


def build(hidden: int, layers: int, device: str, dtype: torch.dtype) -> torch.nn.Module:
    cfg = transformers.LlamaConfig(
        vocab_size=8000, hidden_size=hidden, intermediate_size=int(hidden * 8 / 3) // 8 * 8,
        num_hidden_layers=layers, num_attention_heads=hidden // 32, num_key_value_heads=hidden // 64,
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(cfg).to(device, dtype).eval()


def timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    model = build(a.hidden, a.layers, a.device, getattr(torch, a.dtype))
    adapter = get_adapter(model)
    ids = torch.randint(3, 8000, (a.batch, a.seq), device=a.device)
    mask = torch.ones_like(ids)
    tokens = a.batch * a.seq
    rule = {"ffn": ("top_k", 20), "attn_q": ("top_k", 10), "attn_k": ("top_k", 5), "attn_v": ("top_k", 5)}

    @torch.inference_mode()
    def plain() -> None:
        model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)

    print(f"model: Llama hidden={a.hidden} layers={a.layers} ffn={adapter.d_ffn} heads={adapter.n_heads}/"
          f"{adapter.n_kv_heads}; batch={a.batch} x seq={a.seq}; {a.device} {a.dtype}; "
          f"threads={torch.get_num_threads()}")
    print(f"{'components':<12}{'PLND tok/s':>14}{'forward tok/s':>16}{'ratio':>8}")
    for name, comps in (("FFN+V", ("ffn", "attn_v")), ("all", ("ffn", "attn_q", "attn_k", "attn_v"))):
        with PLNDProbe(adapter, comps) as probe:
            def detect() -> None:
                scores = probe.run(ids, mask)
                for c, s in scores.items():
                    count_selected(s, rule[c])

            plain(), detect()  # warm-up
            t_plain, t_det = [], []
            for _ in range(a.repeats):
                t_plain.append(timed(plain, a.device))
                t_det.append(timed(detect, a.device))
        fwd, det = tokens / min(t_plain), tokens / min(t_det)
        print(f"{name:<12}{det:>14,.0f}{fwd:>16,.0f}{det / fwd:>8.2f}")


if __name__ == "__main__":
    main()
