"""Wall time of the neuron-file tools on a 7B-sized file, each a fresh `mwork` process as a user
runs it, against the old code path (the same command with torch imported first, as
`mwork neurons summary` did before the tools became torch-free), measured in the same run.

Usage: python benchmarks/neuron_tools.py [--repeats 5] [--dir /tmp/neuron-tools]

The file: Mistral-7B's shapes (32 layers, FFN 14336, q 4096, k/v 1024 units per layer), 0.5% of
the units selected at random, doc_counts for every unit (what detection writes). Prints the
median wall and CPU seconds of each command and the CPU ratio baseline / tool.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mwork.neuronset import NeuronSet, save_neuron_set

SHAPES = {"ffn": 14336, "attn_q": 4096, "attn_k": 1024, "attn_v": 1024}
N_LAYERS, N_DOCS = 32, 1000
MAIN = "from mwork.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
OLD = "import torch; " + MAIN  # what the command cost while it imported torch


def seven_b_file(path: Path, seed: int) -> Path:
    """A 7B-sized neuron file (random selection, random doc_counts)."""
    rng = np.random.default_rng(seed)
    selected = {c: rng.random((N_LAYERS, n)) < 0.005 for c, n in SHAPES.items()}
    counts = {}
    for c, n in SHAPES.items():  # selected = picked on every document (Eq. 2)
        counts[c] = rng.integers(0, N_DOCS, (N_LAYERS, n)).astype(np.int32)
        counts[c][selected[c]] = N_DOCS
    meta = {
        "model": "7b-shaped",
        "language": f"l{seed}",
        "n_docs": str(N_DOCS),
        "n_layers": str(N_LAYERS),
        "units": json.dumps(SHAPES, sort_keys=True),
    }
    save_neuron_set(NeuronSet(selected, counts, meta), path)
    return path


def timed(code: str, args: list[str], repeats: int) -> tuple[float, float]:
    """Median (wall, CPU = user + system) seconds of `python -c code args` (output discarded).
    CPU time is what the command costs; wall time also counts waiting on a loaded machine."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/neuron-tools")
    args = ap.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    a, b = seven_b_file(folder / "a.safetensors", 0), seven_b_file(folder / "b.safetensors", 1)
    print(f"file: {a} ({a.stat().st_size / 1e6:.1f} MB), median of {args.repeats} fresh processes")
    print(
        "| command | wall s | CPU s | baseline wall s (torch imported) | baseline CPU s | CPU ratio |"
    )
    print("|---|---|---|---|---|---|")
    for name, cmd in (
        ("neurons summary", ["neurons", "summary", str(a)]),
        ("neurons compare", ["neurons", "compare", str(a), str(b)]),
        ("--help", ["--help"]),
    ):
        (new, new_cpu), (old, old_cpu) = (
            timed(MAIN, cmd, args.repeats),
            timed(OLD, cmd, args.repeats),
        )
        print(
            f"| mwork {name} | {new:.2f} | {new_cpu:.2f} | {old:.2f} | {old_cpu:.2f} "
            f"| {old_cpu / new_cpu:.1f}x |"
        )


if __name__ == "__main__":
    main()
