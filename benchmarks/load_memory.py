"""Benchmark: host RAM and time of loading a model, the old way vs `mwork.modeling.load_model`.

Models (random weights, written once into --workdir as sharded safetensors, `--shard-mb` each):
- `demo`: the embedded demo model's shape (Llama, 6 layers, hidden 128, FFN 384, vocabulary
  4096, tied embeddings; mwork.demo.train.TrainConfig defaults), one shard;
- `100m`: a ~100M-parameter Llama (12 layers, hidden 768, FFN 2048, 12 heads, 4 kv heads,
  vocabulary 16000), float32, in shards of `--shard-mb`.

Ways, each load in its own fresh subprocess:
- `old`: what load_model did before issue 23: `from_pretrained(path, dtype=...)` (no
  device_map: the whole model is built on the CPU) followed by `.to(device)`;
- `new`: what load_model does now: `from_pretrained(path, dtype=..., **device_map_kwargs(...))`,
  i.e. `device_map={"": device}`, straight onto the device (the rest of load_model, config and
  tokenizer checks, is the same both ways and left out of both);
- `offload` (new, `devices` map: every decoder layer on "disk", the rest on "cpu"): the host RAM
  a load needs when the weights do not have to live in host RAM, as when they go to GPUs.

Printed per (model, dtype, way), medians over `--repeats` (the ways alternating so machine drift
hits all): `ru_maxrss` of the subprocess (imports included); the load's own peak (VmHWM reset
through /proc/self/clear_refs right after the imports, minus the resident set then); `anon`, the
anonymous (private, non-file) memory the load added (RssAnon); `resident`, the resident set the
model adds once every weight kept in host RAM has been read (safetensors weights are memory-
mapped: a float32 checkpoint loaded as float32 on the CPU is not read until used); the load
time. Then the ratios new/old measured in this run, and a steadier timing: one warm process
loading the model `--warm` times each way, alternating (the fresh-process times above include
cold page-cache and allocator effects and vary widely on a loaded machine).

On a CPU-only machine `old` and `new` must both end with the whole model in host RAM (the
device *is* the host), so their peaks show what the loader itself adds; `offload` shows the
footprint without the weights. On a GPU machine pass --device cuda.

    python benchmarks/load_memory.py [--models demo 100m] [--dtypes float32 bfloat16]
                                     [--repeats 3] [--device cpu] [--workdir /tmp/mwork-loadmem]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import accelerate, safetensors.torch, torch, transformers
import transformers.models.llama.modeling_llama  # imported before the measurement starts
from mwork.modeling import device_map_kwargs

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
path, dtype, device, way, devices = sys.argv[1:6]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM: the peak from here on is the load's
base, anon = status("VmRSS:"), status("RssAnon:")
t0 = time.perf_counter()
auto = transformers.AutoModelForCausalLM
if way == "old":
    model = auto.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
else:
    place = device_map_kwargs(json.loads(devices), device)
    model = auto.from_pretrained(path, dtype=getattr(torch, dtype), **place).eval()
elapsed = time.perf_counter() - t0
peak, anon_after = status("VmHWM:") - base, status("RssAnon:") - anon
with torch.no_grad():  # touch every weight held in host RAM (mmapped pages count once read)
    for p in model.parameters():
        if p.device.type == "cpu":
            p.float().sum()
n = sum(p.numel() for p in model.parameters())
print(json.dumps({
    "seconds": elapsed,
    "load_peak": peak,
    "anon": anon_after,
    "resident": status("VmRSS:") - base,
    "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "params": n,
}))
"""


WARM = r"""
import json, statistics, sys, time
import torch, transformers
from mwork.modeling import device_map_kwargs

path, dtype, device, repeats = sys.argv[1], getattr(torch, sys.argv[2]), sys.argv[3], int(sys.argv[4])
auto = transformers.AutoModelForCausalLM
times = {"old": [], "new": []}
auto.from_pretrained(path, dtype=dtype)  # warm-up: imports, page cache
for i in range(repeats):
    for way in ("old", "new") if i % 2 else ("new", "old"):
        t0 = time.perf_counter()
        if way == "old":
            model = auto.from_pretrained(path, dtype=dtype).to(device)
        else:
            model = auto.from_pretrained(path, dtype=dtype, **device_map_kwargs(1, device))
        times[way].append(time.perf_counter() - t0)
        del model
print(json.dumps(times))
"""


def build(kind: str, workdir: Path, shard_mb: int) -> Path:
    """The model directory of `kind` (written once, reused)."""
    import torch
    import transformers

    from mwork.tiny import train_tokenizer

    out = workdir / kind
    if (out / "config.json").exists():
        return out
    tok = train_tokenizer(["hello world", "hallo welt", "bonjour le monde"] * 20, vocab_size=300)
    if kind == "demo":
        from mwork.demo.train import TrainConfig

        cfg = TrainConfig()
        config = transformers.LlamaConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            num_key_value_heads=cfg.n_heads,
            tie_word_embeddings=True,
        )
    else:
        config = transformers.LlamaConfig(
            vocab_size=16000,
            hidden_size=768,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=12,
            num_key_value_heads=4,
            tie_word_embeddings=False,
        )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(out, max_shard_size=f"{shard_mb}MB")
    tok.save_pretrained(out)
    return out


def offload_map(path: Path) -> dict[str, str]:
    import json as _json

    n = _json.loads((path / "config.json").read_text())["num_hidden_layers"]
    out = {"model.embed_tokens": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu"}
    out.update({f"model.layers.{i}": "disk" for i in range(n)})
    return out | {"lm_head": "cpu"}


def run(path: Path, dtype: str, device: str, way: str) -> dict:
    devices = offload_map(path) if way == "offload" else 1
    cmd = [sys.executable, "-c", CHILD, str(path), dtype, device, way, json.dumps(devices)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"{way} load failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["demo", "100m"], choices=["demo", "100m"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warm", type=int, default=8, help="alternating loads in one warm process")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shard-mb", type=int, default=100)
    ap.add_argument("--workdir", default="/tmp/mwork-loadmem")
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mib = 2**20
    for kind in args.models:
        path = build(kind, workdir, args.shard_mb)
        files = sorted(path.glob("*.safetensors"))
        biggest = max(f.stat().st_size for f in files) / mib
        print(f"\n{kind}: {len(files)} shard(s), largest {biggest:.0f} MiB, dir {path}")
        for dtype in args.dtypes:
            ways = ["old", "new", "offload"]
            res: dict[str, list[dict]] = {w: [] for w in ways}
            for _ in range(args.repeats):
                for way in ways:
                    res[way].append(run(path, dtype, args.device, way))
            med = {
                w: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for w, rs in res.items()
            }
            params = int(med["old"]["params"])
            print(f"  {dtype}: {params / 1e6:.1f}M parameters")
            for w in ways:
                m = med[w]
                print(
                    f"    {w:8s} ru_maxrss {m['ru_maxrss'] / mib:6.0f} MiB  load peak "
                    f"{m['load_peak'] / mib:5.0f} MiB  anon {m['anon'] / mib:5.0f} MiB  "
                    f"resident {m['resident'] / mib:5.0f} MiB  time {m['seconds']:5.2f} s"
                )
            warm = subprocess.run(
                [sys.executable, "-c", WARM, str(path), dtype, args.device, str(args.warm)],
                capture_output=True,
                text=True,
                check=True,
            )
            times = json.loads(warm.stdout.strip().splitlines()[-1])
            wr = [n / o for n, o in zip(times["new"], times["old"], strict=True)]
            print(
                f"    warm, one process, {args.warm} alternating loads each: old "
                f"{statistics.median(times['old']):.3f} s, new {statistics.median(times['new']):.3f} s,"
                f" new/old {statistics.median(times['new']) / statistics.median(times['old']):.2f}"
                f" (per-pair ratios {min(wr):.2f}-{max(wr):.2f})"
            )
            ratios = [
                n["seconds"] / o["seconds"] for n, o in zip(res["new"], res["old"], strict=True)
            ]
            print(
                f"    new/old: load peak {med['new']['load_peak'] / med['old']['load_peak']:.2f}, "
                f"time {statistics.median(ratios):.2f} (median of per-repeat ratios "
                f"{', '.join(f'{r:.2f}' for r in ratios)})"
            )


if __name__ == "__main__":
    main()
