"""The neuron-set file: one safetensors file per (model, language), a public format.

Tensors (for every layer i and component c in ffn, attn_q, attn_k, attn_v):

    layers.{i}.{c}             int64 [n_selected]  selected unit indices, sorted ascending
    layers.{i}.{c}.doc_counts  int32 [n_units]     documents whose top-k (or ε rule) picked the unit

Header metadata (all strings; JSON where structured): see `METADATA_KEYS`. Loading never executes
code (safetensors only). The selection is re-derivable from `doc_counts` and `n_docs`: strict
(selected on every document, paper Eq. 2), fractional (≥ f of documents), and shard merges
(add the counts) all come from the same file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open

from mwork.adapters import COMPONENTS
from mwork.atomic import atomic_write_bytes, atomic_write_text
from mwork.errors import MworkError

FORMAT = "mwork-neurons/1"
METADATA_KEYS = (
    "format", "model", "model_fingerprint", "language", "n_layers", "units", "importance",
    "selection", "n_docs", "max_tokens", "corpus_sha256", "seed", "min_fraction", "variant",
    "mwork_version",
)


@dataclass
class NeuronSet:
    """Language-specific neurons of one model for one language.

    Attributes:
        selected: component -> [n_layers, n_units] bool, the language-specific neurons.
        doc_counts: component -> [n_layers, n_units] int32, documents that selected each unit.
        meta: header metadata (strings), see METADATA_KEYS.
    """

    selected: dict[str, torch.Tensor]
    doc_counts: dict[str, torch.Tensor]
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return next(iter(self.doc_counts.values())).shape[0]

    @property
    def n_docs(self) -> int:
        return int(self.meta["n_docs"])

    @property
    def units(self) -> dict[str, int]:
        return {c: t.shape[1] for c, t in self.doc_counts.items()}

    def indices(self, layer: int, component: str) -> torch.Tensor:
        """Sorted int64 indices of the selected units of `component` in `layer`."""
        return torch.nonzero(self.selected[component][layer]).flatten()

    def count(self, component: str | None = None) -> int:
        """Number of selected neurons (in one component, or all)."""
        comps = [component] if component else list(self.selected)
        return int(sum(int(self.selected[c].sum()) for c in comps))

    def total_units(self) -> int:
        """Number of probed neurons in all layers and components."""
        return sum(self.n_layers * n for n in self.units.values())

    def with_selection(self, selected: dict[str, torch.Tensor], **meta: str) -> NeuronSet:
        """A copy with another selection (doc_counts kept) and updated metadata."""
        return replace(self, selected=selected, meta={**self.meta, **meta})


def select_by_fraction(doc_counts: dict[str, torch.Tensor], n_docs: int, min_fraction: float) -> dict[str, torch.Tensor]:
    """Units selected on at least ceil(min_fraction * n_docs) documents (1.0 = every document)."""
    if not 0.0 < min_fraction <= 1.0:
        raise MworkError(f"min_fraction {min_fraction} is outside (0, 1]", "use e.g. 1.0 (strict) or 0.9")
    need = max(1, math.ceil(min_fraction * n_docs - 1e-9))
    return {c: counts >= need for c, counts in doc_counts.items()}


def save_neuron_set(ns: NeuronSet, path: str | Path) -> None:
    """Write `ns` atomically (temp file + rename); tensors in layer/component order."""
    tensors: dict[str, torch.Tensor] = {}
    for i in range(ns.n_layers):
        for c in COMPONENTS:
            if c not in ns.doc_counts:
                continue
            tensors[f"layers.{i}.{c}"] = ns.indices(i, c).to(torch.int64).contiguous()
            tensors[f"layers.{i}.{c}.doc_counts"] = ns.doc_counts[c][i].to(torch.int32).contiguous()
    meta = {"format": FORMAT, **{k: str(v) for k, v in ns.meta.items()}}
    atomic_write_bytes(path, _serialize(tensors, meta))


_DTYPES = {torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL", torch.float32: "F32"}


def _serialize(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> bytes:
    """Byte-deterministic safetensors serialisation (the safetensors library orders the header
    through a hash map, so two identical saves can differ in bytes). Keys are written sorted."""
    header: dict[str, object] = {"__metadata__": dict(sorted(meta.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous().cpu()
        raw = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    head += b" " * (-len(head) % 8)  # the format aligns the data section to 8 bytes
    return len(head).to_bytes(8, "little") + head + b"".join(blobs)


def load_neuron_set(path: str | Path, expect_fingerprint: str | None = None) -> NeuronSet:
    """Read a neuron-set file; optionally check it was made from the model with this fingerprint."""
    path = Path(path)
    if not path.is_file():
        raise MworkError(f"neuron file {path} does not exist", "run `mwork detect` (or the workflow) first")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise MworkError(f"{path} is not a readable safetensors neuron file ({exc})", "re-create it") from None
    if meta.get("format") != FORMAT:
        raise MworkError(f"{path} is not an mwork neuron file (format={meta.get('format')!r})", f"expected {FORMAT}")
    if expect_fingerprint is not None and meta.get("model_fingerprint") != expect_fingerprint:
        raise MworkError(
            f"neuron file {path} was made from another model ({meta.get('model')}, fingerprint "
            f"{meta.get('model_fingerprint', '?')[:12]}) than the one loaded (fingerprint {expect_fingerprint[:12]})",
            "detect neurons for this model or load the matching model",
        )
    n_layers = int(meta["n_layers"])
    units = json.loads(meta["units"])
    selected, doc_counts = {}, {}
    for c, n in units.items():
        counts = torch.zeros(n_layers, n, dtype=torch.int32)
        sel = torch.zeros(n_layers, n, dtype=torch.bool)
        for i in range(n_layers):
            counts[i] = tensors[f"layers.{i}.{c}.doc_counts"]
            sel[i, tensors[f"layers.{i}.{c}"]] = True
        selected[c], doc_counts[c] = sel, counts
    return NeuronSet(selected=selected, doc_counts=doc_counts, meta=meta)


_MERGE_KEYS = ("model", "model_fingerprint", "language", "units", "importance", "selection",
               "max_tokens", "corpus_sha256", "seed", "min_fraction")


def merge_neuron_sets(parts: list[NeuronSet]) -> NeuronSet:
    """Merge document shards: add doc_counts and n_docs, then re-apply the selection rule."""
    if not parts:
        raise MworkError("no neuron files to merge", "pass at least one shard")
    first = parts[0]
    for p in parts[1:]:
        for k in _MERGE_KEYS:
            if p.meta.get(k) != first.meta.get(k):
                raise MworkError(
                    f"cannot merge neuron files that differ in '{k}' ({first.meta.get(k)!r} vs {p.meta.get(k)!r})",
                    "merge only shards of one detection run",
                )
    counts = {c: sum((p.doc_counts[c].to(torch.int64) for p in parts)).to(torch.int32) for c in first.doc_counts}
    n_docs = sum(p.n_docs for p in parts)
    meta = {k: v for k, v in first.meta.items() if k not in ("shard", "format")}
    meta["n_docs"] = str(n_docs)
    selected = select_by_fraction(counts, n_docs, float(meta.get("min_fraction", "1.0")))
    return NeuronSet(selected=selected, doc_counts=counts, meta=meta)


def subtract(ns: NeuronSet, other: dict[str, torch.Tensor], variant: str) -> NeuronSet:
    """`ns` minus another selection (App. E: minus English, minus the all-language overlap)."""
    sel = {c: ns.selected[c] & ~other[c] for c in ns.selected}
    return ns.with_selection(sel, variant=variant)


def intersection(sets: list[NeuronSet]) -> dict[str, torch.Tensor]:
    """Neurons selected in every set (component -> [n_layers, n_units] bool)."""
    out = {c: t.clone() for c, t in sets[0].selected.items()}
    for s in sets[1:]:
        for c in out:
            out[c] &= s.selected[c]
    return out


def derive_variant(ns: NeuronSet, others: list[NeuronSet], all_overlap: bool, variant: str | None = None) -> NeuronSet:
    """App. E variants of `ns` (paper.md §5.4).

    all_overlap=False: N_L minus the union of `others` (e.g. minus English: others = [N_en]).
    all_overlap=True:  N_L minus (N_L ∩ every other set), the released MGSM script's set.
    """
    for o in others:
        if o.units != ns.units or o.meta.get("model_fingerprint") != ns.meta.get("model_fingerprint"):
            raise MworkError(
                f"neuron file of {o.meta.get('language')} comes from another model than {ns.meta.get('language')}'s",
                "use neuron files detected on the same model",
            )
    if all_overlap:
        remove = intersection([ns, *others])
        name = variant or "minus-shared"
    else:
        remove = {c: torch.zeros_like(t) for c, t in ns.selected.items()}
        for o in others:
            for c in remove:
                remove[c] |= o.selected[c]
        name = variant or "minus-" + "-".join(o.meta.get("language", "x") for o in others)
    return subtract(ns, remove, name)


def summary_table(ns: NeuronSet):
    """pandas DataFrame: layer, component, selected, units, share (of that layer's units)."""
    import pandas as pd

    rows = [
        {"layer": i, "component": c, "selected": int(ns.selected[c][i].sum()), "units": n,
         "share": float(ns.selected[c][i].sum()) / n}
        for i in range(ns.n_layers) for c, n in ns.units.items()
    ]
    return pd.DataFrame(rows)


def format_summary(ns: NeuronSet, table) -> str:
    """Human-readable summary: header, per-layer counts (components as columns), totals."""
    wide = table.pivot(index="layer", columns="component", values="selected")[list(ns.units)]
    m = ns.meta
    head = (f"{m.get('model')} · {m.get('language')} · {m.get('n_docs')} documents · "
            f"importance={m.get('importance')} · min_fraction={m.get('min_fraction')} · variant={m.get('variant')}")
    totals = ", ".join(f"{c} {ns.count(c)}/{ns.n_layers * n} ({100 * ns.count(c) / (ns.n_layers * n):.3f}%)"
                       for c, n in ns.units.items())
    share = 100 * ns.count() / ns.total_units()
    return f"{head}\n{wide.to_string()}\ntotal: {ns.count()} of {ns.total_units()} neurons ({share:.4f}%): {totals}"


def write_csv(table, path: str | Path) -> None:
    """Write a DataFrame as CSV atomically."""
    atomic_write_text(path, table.to_csv(index=False))


def summarize_files(paths: list[str], out: str | Path) -> None:
    """Tidy CSV over neuron files: model, lang, variant, layer, component, selected, units, share."""
    import pandas as pd

    frames = []
    for p in paths:
        ns = load_neuron_set(p)
        t = summary_table(ns)
        t.insert(0, "variant", ns.meta.get("variant", "all"))
        t.insert(0, "lang", ns.meta.get("language"))
        t.insert(0, "model", ns.meta.get("model"))
        frames.append(t)
    write_csv(pd.concat(frames, ignore_index=True), out)
