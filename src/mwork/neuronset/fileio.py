"""Reading and writing neuron-set files: byte-deterministic safetensors, header checks on load."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors import safe_open

from mwork.atomic import atomic_write_bytes
from mwork.components import COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset.core import NeuronSet, select_by_fraction
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
    "reproduce",
)


def save_neuron_set(ns: NeuronSet, path: str | Path) -> None:
    """Write `ns` atomically (temp file + rename); tensors in layer/component order."""
    tensors: dict[str, np.ndarray] = {}
    for i in range(ns.n_layers):
        for c in COMPONENTS:
            if c not in ns.doc_counts:
                continue
            tensors[f"layers.{i}.{c}"] = ns.indices(i, c).astype(np.int64)
            tensors[f"layers.{i}.{c}.doc_counts"] = ns.doc_counts[c][i].astype(np.int32)
            if c in ns.act_counts:
                tensors[f"layers.{i}.{c}.act_counts"] = ns.act_counts[c][i].astype(np.int64)
    meta = {"format": FORMAT, **{k: str(v) for k, v in ns.meta.items()}}
    atomic_write_bytes(path, serialize(tensors, meta))


_DTYPES = {
    "int64": "I64",
    "int32": "I32",
    "bool": "BOOL",
    "float64": "F64",
    "float32": "F32",
    "bfloat16": "BF16",
    "float16": "F16",
    "uint8": "U8",
}


def _dtype_and_bytes(t: object) -> tuple[str, list[int], bytes]:
    """(safetensors dtype, shape, raw little-endian bytes) of a numpy array or a torch tensor."""
    if isinstance(t, np.ndarray):
        a = np.ascontiguousarray(t)
        return _DTYPES[a.dtype.name], list(a.shape), a.tobytes()
    # a torch tensor (the fine-tuning delta file, `mwork.finetune.delta`): torch is already
    # loaded by its caller, and only torch can give bfloat16 bytes
    import torch

    t = t.detach().contiguous().cpu()
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return _DTYPES[str(t.dtype).removeprefix("torch.")], list(t.shape), raw


def serialize(tensors: Mapping[str, object], meta: dict[str, str]) -> bytes:
    """Byte-deterministic safetensors bytes (keys sorted; the library's writer orders its header
    through a hash map, so two identical saves can differ in bytes).

    Args:
        tensors: name -> numpy array (or torch tensor).
        meta: the header's `__metadata__` (strings).
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(meta.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        dtype, shape, raw = _dtype_and_bytes(tensors[name])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
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
        with safe_open(str(path), framework="np") as f:
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
        counts = np.zeros((n_layers, n), dtype=np.int32)
        sel = np.zeros((n_layers, n), dtype=bool)
        for i in range(n_layers):
            idx = tensors[f"layers.{i}.{c}"]
            if idx.size and (
                int(idx.min()) < 0 or int(idx.max()) >= n or bool((idx[1:] <= idx[:-1]).any())
            ):
                raise _bad(
                    path, f"layers.{i}.{c}: indices must be sorted, unique and in 0..{n - 1}"
                )
            counts[i] = tensors[f"layers.{i}.{c}.doc_counts"]
            sel[i, idx] = True
            if f"layers.{i}.{c}.act_counts" in tensors:
                act.setdefault(c, np.zeros((n_layers, n), dtype=np.int64))[i] = tensors[
                    f"layers.{i}.{c}.act_counts"
                ]
        if int(counts.min()) < 0 or int(counts.max()) > n_docs:
            raise _bad(path, f"{c} doc_counts outside 0..n_docs={n_docs} (max {int(counts.max())})")
        selected[c], doc_counts[c] = sel, counts
    if meta.get("detector") == "lape":  # joint selection over languages (mwork.lape), not counts
        _check_lape_counts(path, meta, n_docs, doc_counts, act)
        return NeuronSet(selected=selected, doc_counts=doc_counts, meta=meta, act_counts=act)
    implied = select_by_fraction(doc_counts, n_docs, min_fraction)
    variant = meta.get("variant", "all")
    for c in units:
        if variant == "all" and not np.array_equal(selected[c], implied[c]):
            raise _bad(
                path,
                f"{c} selection differs from what doc_counts, n_docs={n_docs} and "
                f"min_fraction={min_fraction} imply",
            )
        if variant != "all" and bool((selected[c] & ~implied[c]).any()):
            raise _bad(path, f"variant {variant!r} selects {c} neurons its doc_counts do not")
    return NeuronSet(selected=selected, doc_counts=doc_counts, meta=meta)


def _check_lape_counts(
    path: Path,
    meta: dict[str, str],
    n_docs: int,
    doc_counts: dict[str, np.ndarray],
    act: dict[str, np.ndarray],
) -> None:
    """A LAPE recording's counts agree with its totals: n_docs <= n_tokens <= n_docs·max_tokens,
    0 <= doc_counts <= act_counts <= n_tokens, and a unit fired in some document exactly when it
    fired on some token (an edited n_tokens would rescale every activation probability)."""
    max_tokens = _int_field(path, meta, "max_tokens", 1)
    n_tokens = _int_field(path, meta, "n_tokens", n_docs, n_docs * max_tokens)
    for c, a in act.items():
        d = doc_counts[c]
        if int(a.min()) < 0 or int(a.max()) > n_tokens:
            raise _bad(path, f"{c} act_counts outside 0..n_tokens={n_tokens} (max {int(a.max())})")
        if bool((a < d).any()) or not np.array_equal(a > 0, d > 0):
            raise _bad(
                path,
                f"{c} act_counts and doc_counts disagree (a unit fired in a document "
                "on no token, or on tokens of no document)",
            )
