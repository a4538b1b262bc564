"""Cost of the finiteness check of a model's weights (mwork.finite.check_weights) against the model
load it follows (mwork.modeling.load_model), measured in the same run on the same machine.

Usage:
    python benchmarks/weight_check.py --model DIR [--dtype float32] [--device cpu] [--repeats 3]
    python benchmarks/weight_check.py --random-llama HIDDEN,LAYERS,FFN [--dir /tmp/wc] ...

`--random-llama` writes a random Llama of that shape (vocabulary 32000, bfloat16 weights on disk)
first, e.g. `2048,22,5632` (TinyLlama-1.1B's shape) or `4096,32,11008` (7B). Prints the median
load time (without the check), the median check time and their ratio. On CPU a load maps the
safetensors file and the first pass over the weights (the check, or else the first forward pass)
pays for reading the pages, so the check is timed twice: first touch, then again.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from mwork import modeling
from mwork.finite import check_weights


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _random_llama(shape: str, out: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from mwork.tiny import train_tokenizer

    hidden, layers, ffn = (int(x) for x in shape.split(","))
    if (out / "config.json").is_file():
        return out
    cfg = LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
    )
    with torch.device("cpu"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    train_tokenizer(["a b c d e f g h"] * 10, vocab_size=64).save_pretrained(out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--random-llama", default=None)
    p.add_argument("--dir", default="/tmp/mwork-weight-check")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    model_dir = Path(a.model) if a.model else _random_llama(a.random_llama, Path(a.dir))
    real_check = modeling.check_weights
    modeling.check_weights = lambda *args, **kw: None  # time the load alone
    loads, checks, warm = [], [], []
    for _ in range(a.repeats):
        _sync(a.device)
        t0 = time.perf_counter()
        model, _, _ = modeling.load_model(str(model_dir), a.dtype, a.device)
        _sync(a.device)
        loads.append(time.perf_counter() - t0)
        for timings in (checks, warm):  # first touch of the weights' pages, then again
            t0 = time.perf_counter()
            check_weights(model, str(model_dir))
            _sync(a.device)
            timings.append(time.perf_counter() - t0)
        n = sum(p.numel() for p in model.parameters())
        del model
    modeling.check_weights = real_check
    load, check, again = (statistics.median(x) for x in (loads, checks, warm))
    print(f"model {model_dir} ({n / 1e6:.1f} M parameters, {a.dtype} on {a.device})")
    print(
        f"medians of {a.repeats}: load {load:.3f} s; weight check {check:.4f} s "
        f"(a second check of the same weights: {again:.4f} s)"
    )
    print(f"check / load: {check / load:.4f}; second check / load: {again / load:.4f}")


if __name__ == "__main__":
    main()
