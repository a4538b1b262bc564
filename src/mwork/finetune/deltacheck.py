"""Invariants of a delta file, checked on load before anything is applied (and on save).

A delta is trusted beyond its header nowhere: every slice has an index and a values tensor whose
length along the slice dimension equals the index's; indices are int64, 1-D, non-negative, sorted
and unique (a duplicated index would make `index_copy_` write one of two values, whichever the
device picks); values are floating and finite; the selection pairs are unique and inside
`n_layers` x `units`; the header's counts (`n_trainable`, `n_neurons`, `empty`) equal what the
tensors hold; the mode matches the tensor kinds (full: whole parameters only). Each violation is
one line naming the file and tensor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from mwork.errors import MworkError
from mwork.finite import check_tensors

_FIX = "the delta file is damaged or edited; re-create it with `mwork finetune train`"


def _bad(path: str | Path, what: str) -> MworkError:
    return MworkError(f"delta file {path} is inconsistent: {what}", _FIX)


def _json(path: str | Path, meta: Mapping[str, str], key: str, default: str) -> object:
    try:
        return json.loads(meta.get(key, default))
    except json.JSONDecodeError:
        raise _bad(path, f"header '{key}' = {meta[key]!r} is not JSON") from None


def slice_dims(path: str | Path, meta: Mapping[str, str]) -> dict[str, int]:
    """The header's `slice_dims` ({param: 0 | 1}), checked."""
    dims = _json(path, meta, "slice_dims", "{}")
    if not isinstance(dims, dict) or any(d not in (0, 1) or d is True for d in dims.values()):
        raise _bad(path, f"header 'slice_dims' = {meta.get('slice_dims')!r} is not param -> 0|1")
    return dims


def check_index(path: str | Path, name: str, index: torch.Tensor) -> None:
    """An index tensor: int64, 1-D, non-negative, strictly increasing (sorted, no duplicate)."""
    if index.dtype != torch.int64 or index.dim() != 1:
        raise _bad(path, f"{name} is {index.dtype}{list(index.shape)}, expected int64[n]")
    if index.numel() and (int(index.min()) < 0 or bool((index[1:] <= index[:-1]).any())):
        dup = index.numel() - index.unique().numel()
        what = f"{dup} duplicated" if dup else "negative or unsorted"
        raise _bad(path, f"{name} has {what} position(s); indices must be sorted and unique")


def check_delta_tensors(
    path: str | Path, meta: Mapping[str, str], tensors: Mapping[str, torch.Tensor]
) -> dict[str, int]:
    """Check every invariant of the module docstring; returns the slice dims."""
    mode = meta.get("mode", "")
    dims = slice_dims(path, meta)
    expected = {f"slice.{n}.{part}" for n in dims for part in ("index", "values")}
    missing = sorted(expected - set(tensors))
    if missing:
        raise _bad(path, f"tensor(s) {missing[:3]} named by 'slice_dims' are missing")
    known = ("slice.", "full.", "selection.")
    stray = sorted(
        k
        for k in tensors
        if k not in expected and (k.startswith("slice.") or not k.startswith(known))
    )
    if stray:
        raise _bad(path, f"unexpected tensor(s) {stray[:3]}")
    full = [k for k in tensors if k.startswith("full.")]
    if (mode == "full" and dims) or (mode != "full" and full):
        raise _bad(path, f"mode {mode!r} with {len(dims)} slice(s) and {len(full)} full tensor(s)")
    n_values = 0
    for n, d in dims.items():
        index, values = tensors[f"slice.{n}.index"], tensors[f"slice.{n}.values"]
        check_index(path, f"slice.{n}.index", index)
        if not torch.is_floating_point(values) or values.dim() <= d:
            raise _bad(path, f"slice.{n}.values is {values.dtype}{list(values.shape)}")
        if values.shape[d] != index.numel():
            raise _bad(
                path,
                f"slice.{n}.values has {values.shape[d]} slices along dim {d} but its index "
                f"{index.numel()}",
            )
        n_values += values.numel()
    for k in full:
        if not torch.is_floating_point(tensors[k]):
            raise _bad(path, f"{k} is {tensors[k].dtype}, expected a float tensor")
        n_values += tensors[k].numel()
    check_tensors(
        {k: t for k, t in tensors.items() if not k.startswith("selection.")},
        f"delta file {path}",
        "training diverged or the file was edited; re-train with a lower lr",
    )
    _check_counts(path, meta, tensors, n_values)
    return dims


def _check_counts(
    path: str | Path, meta: Mapping[str, str], tensors: Mapping[str, torch.Tensor], n_values: int
) -> None:
    """Header counts against the tensors; selection pairs in range and unique."""
    if "n_trainable" in meta and meta["n_trainable"] != str(n_values):
        raise _bad(
            path, f"header n_trainable = {meta['n_trainable']} but the tensors hold {n_values}"
        )
    if "empty" in meta and meta["empty"] != ("true" if n_values == 0 else "false"):
        raise _bad(path, f"header empty = {meta['empty']} but the tensors hold {n_values} values")
    sel_keys = [k for k in tensors if k.startswith("selection.")]
    if "units" not in meta:
        if sel_keys:
            raise _bad(path, f"selection tensor(s) {sel_keys[:3]} without header 'units'")
        return
    units = _json(path, meta, "units", "{}")
    try:
        n_layers = int(meta["n_layers"])
    except (KeyError, ValueError):
        raise _bad(
            path, f"header 'n_layers' = {meta.get('n_layers')!r} is not an integer"
        ) from None
    if not isinstance(units, dict) or n_layers < 1:
        raise _bad(path, f"header 'units' = {meta['units']!r} / n_layers = {n_layers}")
    if sorted(sel_keys) != sorted(f"selection.{c}" for c in units):
        raise _bad(path, f"selection tensors {sorted(sel_keys)} do not match units {sorted(units)}")
    n_neurons = 0
    for comp, n in units.items():
        pairs = tensors[f"selection.{comp}"]
        if pairs.dtype != torch.int64 or pairs.dim() != 2 or pairs.shape[1] != 2:
            raise _bad(
                path, f"selection.{comp} is {pairs.dtype}{list(pairs.shape)}, expected int64[n, 2]"
            )
        if pairs.numel() and (
            int(pairs.min()) < 0
            or int(pairs[:, 0].max()) >= n_layers
            or int(pairs[:, 1].max()) >= n
        ):
            raise _bad(path, f"selection.{comp} has (layer, unit) pairs outside {n_layers} x {n}")
        if pairs.unique(dim=0).shape[0] != pairs.shape[0]:
            raise _bad(path, f"selection.{comp} lists a neuron twice")
        n_neurons += pairs.shape[0]
    if "n_neurons" in meta and meta["n_neurons"] != str(n_neurons):
        raise _bad(
            path, f"header n_neurons = {meta['n_neurons']} but the selection has {n_neurons}"
        )


def _params_at(params: Mapping[str, torch.Tensor], delta) -> dict[str, torch.Tensor]:
    """Copies of the model values the delta overwrites, where the model's dtype differs from the
    stored values' (only there can applying round a trained value away)."""
    out = {}
    for name, s in delta.slices.items():
        p = params[name]
        if p.dtype != s.values.dtype:
            out[name] = p.detach().index_select(s.dim, s.index.to(p.device)).clone()
    for name, t in delta.full.items():
        if params[name].dtype != t.dtype:
            out[name] = params[name].detach().clone()
    return out


def snapshot(model: torch.nn.Module, delta) -> dict[str, torch.Tensor]:
    """Before `apply_delta`: the base values that `rounding_report` compares against."""
    return _params_at(dict(model.named_parameters()), delta)


def rounding_report(model: torch.nn.Module, delta, before: Mapping[str, torch.Tensor]):
    """After `apply_delta`: (kept, trained) counts of trained changes that survived the cast to
    the model's dtype; (0, 0) when every stored dtype equals the model's (nothing can round).

    A trained change is a value that differs from the base's; it survives when the model's value
    at that position now differs from the base's too.
    """
    after = _params_at(dict(model.named_parameters()), delta)
    kept = trained = 0
    for name, old in before.items():
        stored = delta.slices[name].values if name in delta.slices else delta.full[name]
        changed = stored.to(old.device, torch.float64) != old.to(torch.float64)
        trained += int(changed.sum())
        kept += int((changed & (after[name] != old)).sum())
    return kept, trained
