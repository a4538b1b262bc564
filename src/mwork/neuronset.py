"""The neuron-set file: one safetensors file per (model, language), a public format.

Tensors (for every layer i and component c in ffn, attn_q, attn_k, attn_v):

    layers.{i}.{c}             int64 [n_selected]  selected unit indices, sorted ascending
    layers.{i}.{c}.doc_counts  int32 [n_units]     documents whose top-k (or ε rule) picked the unit
    layers.{i}.{c}.act_counts  int64 [n_units]     LAPE files only (header `detector: lape`, FFN
                                                   only): tokens whose activation was > 0; the
                                                   header's `n_tokens` is the token total and
                                                   doc_counts are documents where it fired at all

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
from mwork.atomic import atomic_write_bytes
from mwork.errors import MworkError
from mwork.paths import check_input_file

FORMAT = "mwork-neurons/1"
METADATA_KEYS = (
    "format",
    "model",
    "model_fingerprint",
    "language",
    "n_layers",
    "units",
    "unit_layout",
    "importance",
    "qk_scoring",
    "qk_kernel",
    "selection",
    "n_docs",
    "max_tokens",
    "corpus_sha256",
    "seed",
    "min_fraction",
    "variant",
    "mwork_version",
    "detector",
    "n_tokens",
)


@dataclass
class NeuronSet:
    """Language-specific neurons of one model for one language.

    Attributes:
        selected: component -> [n_layers, n_units] bool, the language-specific neurons.
        doc_counts: component -> [n_layers, n_units] int32, documents that selected each unit.
        meta: header metadata (strings), see METADATA_KEYS.
        act_counts: LAPE files only: component -> [n_layers, n_units] int64, tokens on which
            the unit's activation was > 0 (empty for PLND files).
    """

    selected: dict[str, torch.Tensor]
    doc_counts: dict[str, torch.Tensor]
    meta: dict[str, str] = field(default_factory=dict)
    act_counts: dict[str, torch.Tensor] = field(default_factory=dict)

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


def select_by_fraction(
    doc_counts: dict[str, torch.Tensor], n_docs: int, min_fraction: float
) -> dict[str, torch.Tensor]:
    """Units selected on at least ceil(min_fraction * n_docs) documents (1.0 = every document)."""
    if not 0.0 < min_fraction <= 1.0:
        raise MworkError(
            f"min_fraction {min_fraction} is outside (0, 1]", "use e.g. 1.0 (strict) or 0.9"
        )
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
            if c in ns.act_counts:
                tensors[f"layers.{i}.{c}.act_counts"] = (
                    ns.act_counts[c][i].to(torch.int64).contiguous()
                )
    meta = {"format": FORMAT, **{k: str(v) for k, v in ns.meta.items()}}
    atomic_write_bytes(path, serialize(tensors, meta))


_DTYPES = {
    torch.int64: "I64",
    torch.int32: "I32",
    torch.bool: "BOOL",
    torch.float64: "F64",
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.uint8: "U8",
}


def serialize(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> bytes:
    """Byte-deterministic safetensors bytes (keys sorted; the library's writer orders its header
    through a hash map, so two identical saves can differ in bytes)."""
    header: dict[str, object] = {"__metadata__": dict(sorted(meta.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    head += b" " * (-len(head) % 8)  # the format aligns the data section to 8 bytes
    return len(head).to_bytes(8, "little") + head + b"".join(blobs)


MAX_INDEX_DTYPE, COUNT_DTYPE, ACT_COUNT_DTYPE = "I64", "I32", "I64"
_FIX = "re-create it with `mwork detect` / `mwork neurons merge`"


def _bad(path: Path, what: str) -> MworkError:
    return MworkError(f"neuron file {path} is inconsistent: {what}", _FIX)


def _int_field(path: Path, meta: dict[str, str], key: str, lo: int, hi: int | None = None) -> int:
    """A header integer in [lo, hi], or a one-line error."""
    try:
        value = int(meta[key])
    except KeyError:
        raise _bad(path, f"header has no '{key}'") from None
    except ValueError:
        raise _bad(path, f"header '{key}' = {meta[key]!r} is not an integer") from None
    if value < lo or (hi is not None and value > hi):
        raise _bad(path, f"header '{key}' = {value} is outside {lo}..{'' if hi is None else hi}")
    return value


def parse_shard(marker: str) -> tuple[int, int]:
    """A shard marker "i/n" as (i, n) with 0 <= i < n, n >= 2."""
    try:
        i, n = (int(x) for x in marker.split("/"))
    except ValueError:
        raise MworkError(f"shard marker {marker!r} is not of the form i/n", _FIX) from None
    if not (n >= 2 and 0 <= i < n):
        raise MworkError(f"shard marker {marker!r} is out of range", _FIX)
    return i, n


def _check_header(path: Path, meta: dict[str, str], shapes: dict[str, tuple[str, list[int]]]):
    """Header values checked against the tensors present, before any tensor is read.

    Returns:
        (n_layers, units, n_docs, min_fraction)
    """
    n_layers = _int_field(path, meta, "n_layers", 1, max(1, len(shapes)))  # >= 1 tensor per layer
    try:
        units = json.loads(meta["units"])
    except KeyError:
        raise _bad(path, "header has no 'units'") from None
    except json.JSONDecodeError:
        raise _bad(path, f"header 'units' = {meta['units']!r} is not JSON") from None
    if (
        not isinstance(units, dict)
        or not units
        or set(units) - set(COMPONENTS)
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in units.values()
        )
    ):
        raise _bad(
            path,
            f"header 'units' = {meta['units']!r} is not component -> positive count "
            f"({', '.join(COMPONENTS)})",
        )
    n_docs = _int_field(path, meta, "n_docs", 1)
    try:
        min_fraction = float(meta.get("min_fraction", "1.0"))
    except ValueError:
        raise _bad(
            path, f"header 'min_fraction' = {meta['min_fraction']!r} is not a number"
        ) from None
    if not 0.0 < min_fraction <= 1.0:
        raise _bad(path, f"header 'min_fraction' = {min_fraction} is outside (0, 1]")
    if "shard" in meta:
        parse_shard(meta["shard"])
    suffixes = ("", ".doc_counts") + ((".act_counts",) if meta.get("detector") == "lape" else ())
    expected = {f"layers.{i}.{c}{s}" for i in range(n_layers) for c in units for s in suffixes}
    if set(shapes) != expected:
        extra, missing = sorted(set(shapes) - expected), sorted(expected - set(shapes))
        raise _bad(
            path,
            f"tensors do not match n_layers={n_layers} and units (missing {missing[:3]}, "
            f"unexpected {extra[:3]})",
        )
    for i in range(n_layers):
        for c, n in units.items():
            dt, shape = shapes[f"layers.{i}.{c}.doc_counts"]
            if dt != COUNT_DTYPE or shape != [n]:
                raise _bad(
                    path, f"layers.{i}.{c}.doc_counts is {dt}{shape}, expected {COUNT_DTYPE}[{n}]"
                )
            if f"layers.{i}.{c}.act_counts" in shapes:
                dt, shape = shapes[f"layers.{i}.{c}.act_counts"]
                if dt != ACT_COUNT_DTYPE or shape != [n]:
                    want = f"{ACT_COUNT_DTYPE}[{n}]"
                    raise _bad(path, f"layers.{i}.{c}.act_counts is {dt}{shape}, expected {want}")
            dt, shape = shapes[f"layers.{i}.{c}"]
            if dt != MAX_INDEX_DTYPE or len(shape) != 1 or shape[0] > n:
                raise _bad(
                    path, f"layers.{i}.{c} is {dt}{shape}, expected {MAX_INDEX_DTYPE}[<= {n}]"
                )
    return n_layers, units, n_docs, min_fraction


def load_neuron_set(path: str | Path, expect_fingerprint: str | None = None) -> NeuronSet:
    """Read a neuron-set file; optionally check it was made from the model with this fingerprint.

    The file is checked before anything is allocated from its header: the tensors present must
    match `n_layers` and `units` (names, dtypes, shapes); indices sorted, unique and in range;
    0 <= doc_counts <= n_docs; the selection must equal what the counts imply (a subset of it for
    a variant such as minus-en).
    """
    path = check_input_file(path, "neuron file", "run `mwork detect` (or the workflow) first")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            if meta.get("format") != FORMAT:
                raise MworkError(
                    f"{path} is not an mwork neuron file (format={meta.get('format')!r})",
                    f"expected {FORMAT}",
                )
            shapes = {
                k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in f.keys()
            }
            n_layers, units, n_docs, min_fraction = _check_header(path, meta, shapes)
            tensors = {k: f.get_tensor(k) for k in shapes}
    except MworkError:
        raise
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise MworkError(
            f"{path} is not a readable safetensors neuron file ({exc})", "re-create it"
        ) from None
    if expect_fingerprint is not None and meta.get("model_fingerprint") != expect_fingerprint:
        raise MworkError(
            f"neuron file {path} was made from another model ({meta.get('model')}, fingerprint "
            f"{meta.get('model_fingerprint', '?')[:12]}) than the one loaded "
            f"(fingerprint {expect_fingerprint[:12]})",
            "detect neurons for this model or load the matching model",
        )
    selected, doc_counts, act = {}, {}, {}
    for c, n in units.items():
        counts = torch.zeros(n_layers, n, dtype=torch.int32)
        sel = torch.zeros(n_layers, n, dtype=torch.bool)
        for i in range(n_layers):
            idx = tensors[f"layers.{i}.{c}"]
            if idx.numel() and (
                int(idx.min()) < 0 or int(idx.max()) >= n or bool((idx[1:] <= idx[:-1]).any())
            ):
                raise _bad(
                    path, f"layers.{i}.{c}: indices must be sorted, unique and in 0..{n - 1}"
                )
            counts[i] = tensors[f"layers.{i}.{c}.doc_counts"]
            sel[i, idx] = True
            if f"layers.{i}.{c}.act_counts" in tensors:
                act.setdefault(c, torch.zeros(n_layers, n, dtype=torch.int64))[i] = tensors[
                    f"layers.{i}.{c}.act_counts"
                ]
        if int(counts.min()) < 0 or int(counts.max()) > n_docs:
            raise _bad(path, f"{c} doc_counts outside 0..n_docs={n_docs} (max {int(counts.max())})")
        selected[c], doc_counts[c] = sel, counts
    if meta.get("detector") == "lape":  # joint selection over languages (mwork.lape), not counts
        return NeuronSet(selected=selected, doc_counts=doc_counts, meta=meta, act_counts=act)
    implied = select_by_fraction(doc_counts, n_docs, min_fraction)
    variant = meta.get("variant", "all")
    for c in units:
        if variant == "all" and not torch.equal(selected[c], implied[c]):
            raise _bad(
                path,
                f"{c} selection differs from what doc_counts, n_docs={n_docs} and "
                f"min_fraction={min_fraction} imply",
            )
        if variant != "all" and bool((selected[c] & ~implied[c]).any()):
            raise _bad(path, f"variant {variant!r} selects {c} neurons its doc_counts do not")
    return NeuronSet(selected=selected, doc_counts=doc_counts, meta=meta)


_MERGE_KEYS = (
    "model",
    "model_fingerprint",
    "language",
    "n_layers",
    "units",
    "importance",
    "qk_scoring",
    "selection",
    "max_tokens",
    "corpus_sha256",
    "seed",
    "min_fraction",
    "variant",
)


def _check_shard_set(parts: list[NeuronSet]) -> None:
    """The parts must be every shard i/n of one detection run, each once."""
    markers = [p.meta.get("shard") for p in parts]
    if len(parts) == 1 and markers[0] is None:
        return  # one complete file: merging is the identity
    if any(m is None for m in markers):
        if all(m is None for m in markers):
            raise MworkError(
                f"{len(parts)} unsharded neuron files cannot be merged (same corpus and seed: "
                "the same "
                "documents would be counted more than once)",
                "merge the shards of one run (i/n markers)",
            )
        raise MworkError(
            "cannot merge an unsharded neuron file with shards",
            "merge only the shard files of one run",
        )
    parsed = [parse_shard(m) for m in markers]
    totals = sorted({n for _, n in parsed})
    if len(totals) > 1:
        raise MworkError(
            f"shards of different splits ({', '.join(f'of {n}' for n in totals)})",
            "merge the shards of one run",
        )
    n = totals[0]
    seen: dict[int, int] = {}
    for i, _ in parsed:
        if i in seen:
            raise MworkError(
                f"shard {i}/{n} is given twice (its documents would count double)",
                "pass each shard file once",
            )
        seen[i] = 1
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        raise MworkError(
            f"incomplete shard set: shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing",
            f"pass all {n} shards (a partial merge would look complete)",
        )
    sizes = [p.n_docs for p in parts]
    if max(sizes) - min(sizes) > 1:
        raise MworkError(
            f"shard document counts {sizes} differ by more than one (round-robin shards never do)",
            "re-create the shards with `mwork detect --shard`",
        )


def merge_neuron_sets(parts: list[NeuronSet]) -> NeuronSet:
    """Merge document shards: add doc_counts and n_docs, then re-apply the selection rule.

    The parts must be the complete shard set of one run (each shard i/n exactly once), so the
    merged file, which carries no shard marker, really covers every document.
    """
    if not parts:
        raise MworkError("no neuron files to merge", "pass at least one shard")
    first = parts[0]
    for p in parts:
        if p.meta.get("variant", "all") != "all":
            raise MworkError(
                f"cannot merge the {p.meta.get('variant')!r} variant",
                "merge the detection shards (variant all), then derive variants",
            )
    for p in parts[1:]:
        for k in _MERGE_KEYS:
            if p.meta.get(k) != first.meta.get(k):
                raise MworkError(
                    f"cannot merge neuron files that differ in '{k}' "
                    f"({first.meta.get(k)!r} vs {p.meta.get(k)!r})",
                    "merge only shards of one detection run",
                )
    _check_shard_set(parts)
    counts = {
        c: sum(p.doc_counts[c].to(torch.int64) for p in parts).to(torch.int32)
        for c in first.doc_counts
    }
    n_docs = sum(p.n_docs for p in parts)
    meta = {k: v for k, v in first.meta.items() if k not in ("shard", "format")}
    meta["n_docs"] = str(n_docs)
    selected = select_by_fraction(counts, n_docs, float(meta.get("min_fraction", "1.0")))
    return NeuronSet(selected=selected, doc_counts=counts, meta=meta)


def reselect(ns: NeuronSet, min_fraction: float) -> NeuronSet:
    """`ns` re-selected with another document fraction (only a full set: a variant's removed
    neurons would come back)."""
    variant = ns.meta.get("variant", "all")
    if variant != "all":
        raise MworkError(
            f"the neuron file is the {variant!r} variant; re-selecting it from doc_counts would "
            "put "
            "the removed neurons back",
            "re-select the full set (variant all), then derive the variant again",
        )
    sel = select_by_fraction(ns.doc_counts, ns.n_docs, min_fraction)
    return ns.with_selection(sel, min_fraction=repr(float(min_fraction)))


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


def derive_variant(
    ns: NeuronSet, others: list[NeuronSet], all_overlap: bool, variant: str | None = None
) -> NeuronSet:
    """App. E variants of `ns` (paper.md §5.4).

    all_overlap=False: N_L minus the union of `others` (e.g. minus English: others = [N_en]).
    all_overlap=True:  N_L minus (N_L ∩ every other set), the released MGSM script's set.
    """
    for x in (ns, *others):
        if x.meta.get("variant", "all") != "all" or "shard" in x.meta:
            what = (
                f"shard {x.meta['shard']}"
                if "shard" in x.meta
                else f"variant {x.meta.get('variant')!r}"
            )
            raise MworkError(
                f"the neuron file of {x.meta.get('language')} is a {what}",
                "derive variants from full (merged, variant all) neuron files",
            )
    for o in others:
        if (
            o.units != ns.units
            or o.n_layers != ns.n_layers
            or o.meta.get("model_fingerprint") != ns.meta.get("model_fingerprint")
        ):
            raise MworkError(
                f"neuron file of {o.meta.get('language')} comes from another model than "
                f"{ns.meta.get('language')}'s",
                "use neuron files detected on the same model",
            )
        if o.meta.get("language") is not None and o.meta.get("language") == ns.meta.get("language"):
            raise MworkError(
                f"cannot subtract {ns.meta.get('language')}'s own neurons from themselves",
                "pass the other languages' neuron files",
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
