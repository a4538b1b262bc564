"""The delta file: what a neuron fine-tuning run changed, as a small safetensors file.

Tensors (safetensors; loading never executes code):

    slice.{param}.index    int64 [n]         positions along `dim` of the trained slices of the
                                             base parameter `param` (a `named_parameters()` name)
    slice.{param}.values   float [n, d_in] (rows), [n] (bias entries) or [d_out, n] (columns):
                                             the trained values of those slices (float32 for a
                                             bf16/fp16 base, else the base dtype)
    full.{param}           float, the whole trained parameter (mode `full` only)
    selection.{component}  int64 [n_neurons, 2] (layer, unit) of the trained neurons (sparse modes)

Header metadata (strings, JSON where structured): `format`, `mode` (ls | random | full),
`slice_dims` ({param: dim}), `n_layers`, `units`, `n_neurons`, `n_trainable`, `empty`, and the
provenance written by `mwork.finetune.train`: `model`, `model_fingerprint` (of the base, see
`mwork.modeling.model_fingerprint`), `neuron_file`, `neuron_sha256`, `language`, `data_file`,
`data_sha256`, `n_docs`, `settings` (hyperparameters), `summary` (loss, steps, tokens),
`mwork_version`, `torch_version`, `transformers_version`.

`apply_delta` writes the slices into a loaded base model (after checking the fingerprint);
`merge_delta` writes a normal Hugging Face model directory for other tools.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from mwork.adapters import COMPONENTS
from mwork.atomic import atomic_write_bytes, atomic_write_text
from mwork.errors import MworkError
from mwork.finetune.deltacheck import check_delta_tensors, rounding_report, snapshot
from mwork.modeling import load_model, model_fingerprint
from mwork.neuronset import serialize

log = logging.getLogger(__name__)

FORMAT = "mwork-delta/1"
MODES: tuple[str, ...] = ("ls", "random", "full")
PROVENANCE_FILE = "mwork_delta.json"
_WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")
_MODEL_FILES = ("config.json", "generation_config.json")


@dataclass
class DeltaSlice:
    """Trained slices of one base parameter.

    Attributes:
        dim: 0 = rows / bias entries, 1 = columns.
        index: [n] int64 sorted positions along `dim`.
        values: trained values, the parameter's shape with `dim` replaced by n.
    """

    dim: int
    index: torch.Tensor
    values: torch.Tensor


@dataclass
class Delta:
    """The content of a delta file.

    Attributes:
        mode: "ls", "random" or "full".
        slices: parameter name -> DeltaSlice (sparse modes).
        full: parameter name -> whole trained tensor (mode "full").
        selection: component -> [n_layers, n_units] bool, the trained neurons (sparse modes).
        meta: header metadata (strings).
    """

    mode: str
    slices: dict[str, DeltaSlice] = field(default_factory=dict)
    full: dict[str, torch.Tensor] = field(default_factory=dict)
    selection: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def n_values(self) -> int:
        """Trained scalars stored in the file."""
        return sum(s.values.numel() for s in self.slices.values()) + sum(
            t.numel() for t in self.full.values()
        )

    @property
    def empty(self) -> bool:
        """True when the delta changes nothing (no neurons were trained)."""
        return self.n_values == 0

    def n_neurons(self, component: str | None = None) -> int:
        """Trained neurons (in one component, or all); 0 for mode full."""
        comps = [component] if component else list(self.selection)
        return int(sum(int(self.selection[c].sum()) for c in comps if c in self.selection))


def delta_tensors(delta: Delta) -> dict[str, torch.Tensor]:
    """The tensors of `delta` under their file names."""
    out: dict[str, torch.Tensor] = {}
    for name, s in delta.slices.items():
        out[f"slice.{name}.index"] = s.index.to(torch.int64)
        out[f"slice.{name}.values"] = s.values
    for name, t in delta.full.items():
        out[f"full.{name}"] = t
    for comp, sel in delta.selection.items():
        out[f"selection.{comp}"] = torch.nonzero(sel).to(torch.int64)  # [n, 2] (layer, unit)
    return out


def save_delta(delta: Delta, path: str | Path) -> None:
    """Write `delta` atomically (temp file + rename), byte-deterministic."""
    if delta.mode not in MODES:
        raise MworkError(
            f"unknown fine-tuning mode '{delta.mode}'", f"use one of {', '.join(MODES)}"
        )
    meta = {
        **delta.meta,
        "format": FORMAT,
        "mode": delta.mode,
        "slice_dims": json.dumps({n: s.dim for n, s in delta.slices.items()}, sort_keys=True),
        "n_neurons": str(delta.n_neurons()),
        "n_trainable": str(delta.n_values),
        "empty": "true" if delta.empty else "false",
    }
    if delta.selection:
        first = next(iter(delta.selection.values()))
        meta["n_layers"] = str(first.shape[0])
        meta["units"] = json.dumps(
            {c: int(s.shape[1]) for c, s in delta.selection.items()}, sort_keys=True
        )
    tensors = delta_tensors(delta)
    check_delta_tensors(path, meta, tensors)  # never write a NaN delta (diverged training)
    atomic_write_bytes(path, serialize(tensors, meta))


def load_delta(path: str | Path) -> Delta:
    """Read a delta file (safetensors only; nothing is executed)."""
    path = Path(path)
    if not path.is_file():
        raise MworkError(f"delta file {path} does not exist", "run `mwork finetune train` first")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except Exception as exc:  # noqa: BLE001 -- safetensors raises several types for corrupt files
        raise MworkError(
            f"{path} is not a readable safetensors delta file ({exc})", "re-create it"
        ) from None
    if meta.get("format") != FORMAT:
        raise MworkError(
            f"{path} is not an mwork delta file (format={meta.get('format')!r})",
            f"expected {FORMAT}",
        )
    mode = meta.get("mode", "")
    if mode not in MODES:
        raise MworkError(f"{path} has unknown mode {mode!r}", f"expected one of {', '.join(MODES)}")
    dims = check_delta_tensors(path, meta, tensors)  # invariants + finiteness (deltacheck)
    slices = {
        n: DeltaSlice(int(d), tensors[f"slice.{n}.index"], tensors[f"slice.{n}.values"])
        for n, d in dims.items()
    }
    full = {k[len("full.") :]: t for k, t in tensors.items() if k.startswith("full.")}
    selection = {}
    if "units" in meta:
        n_layers = int(meta["n_layers"])
        for comp, n in json.loads(meta["units"]).items():
            sel = torch.zeros(n_layers, n, dtype=torch.bool)
            pairs = tensors[f"selection.{comp}"]
            sel[pairs[:, 0], pairs[:, 1]] = True
            selection[comp] = sel
    ordered = {c: selection[c] for c in COMPONENTS if c in selection}
    return Delta(mode=mode, slices=slices, full=full, selection=ordered, meta=meta)


def check_base(model: nn.Module, delta: Delta, fingerprint: str | None = None) -> None:
    """Raise MworkError unless `model` is the base model `delta` was trained from.

    Args:
        fingerprint: the model's fingerprint if already computed (else computed here).
    """
    want = delta.meta.get("model_fingerprint")
    have = fingerprint or model_fingerprint(model)
    if want != have:
        raise MworkError(
            f"the delta was trained on another model ({delta.meta.get('model', '?')}, fingerprint "
            f"{(want or '?')[:12]}) than the one loaded (fingerprint {have[:12]})",
            "load the base model the delta was trained from (a merged model is not a base)",
        )


def apply_delta(model: nn.Module, delta: Delta, check_fingerprint: bool = True) -> nn.Module:
    """Write the delta's trained values into `model`'s parameters in place (no hooks remain).

    Args:
        model: the loaded base model (any dtype/device; values are cast to the parameter's dtype,
            so a bf16 model rounds the trained values).
        delta: from `load_delta` or a training run.
        check_fingerprint: refuse a model whose fingerprint differs from the delta's base.

    Returns:
        `model`.
    """
    if check_fingerprint:
        check_base(model, delta)
    params = dict(model.named_parameters())
    for name in [*delta.slices, *delta.full]:
        if name not in params:
            raise MworkError(
                f"the delta changes parameter {name}, which the model lacks",
                "load the base model the delta was trained from",
            )
        if params[name].device.type == "meta":  # offloaded: writing it would change nothing
            raise MworkError(
                f"the delta changes parameter {name}, which is offloaded to cpu/disk "
                "(models.<alias>.devices)",
                "split the model over GPUs without cpu or disk entries",
            )
    with torch.no_grad():
        for name, s in delta.slices.items():
            p = params[name]
            want = list(p.shape)
            want[s.dim] = s.index.numel()
            if list(s.values.shape) != want or s.dim not in (0, 1):
                raise MworkError(
                    f"delta slice of {name} has shape {list(s.values.shape)}, expected {want}",
                    "the delta does not belong to this model",
                )
            if s.index.numel() and int(s.index.max()) >= p.shape[s.dim]:
                raise MworkError(
                    f"delta slice of {name} writes position {int(s.index.max())} but the "
                    f"parameter has {p.shape[s.dim]} along dim {s.dim}",
                    "the delta does not belong to this model",
                )
            p.index_copy_(s.dim, s.index.to(p.device), s.values.to(p.device, p.dtype))
        for name, t in delta.full.items():
            p = params[name]
            if tuple(t.shape) != tuple(p.shape):
                raise MworkError(
                    f"delta tensor {name} has shape {list(t.shape)}, expected {list(p.shape)}",
                    "the delta does not belong to this model",
                )
            p.copy_(t.to(p.device, p.dtype))
    return model


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _copy_tokenizer(base: str, out: Path, trust_remote_code: bool) -> None:
    """Copy the base directory's tokenizer files byte for byte (hub id: save a fresh one)."""
    src = Path(base).expanduser()
    if src.is_dir():
        for f in sorted(src.iterdir()):
            if (
                f.is_file()
                and not f.name.startswith(".")
                and not f.name.endswith(_WEIGHT_FILES)
                and f.name not in _MODEL_FILES
                and not f.name.endswith(".index.json")
                and f.name != PROVENANCE_FILE
            ):
                shutil.copy2(f, out / f.name)
        return
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(base, trust_remote_code=trust_remote_code).save_pretrained(out)


def merge_delta(
    base: str,
    delta_path: str | Path,
    out_dir: str | Path,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> Path:
    """Base model + delta -> a normal HF model directory (safetensors weights, tokenizer copied).

    Written into a temp directory next to `out_dir`, then renamed onto it (an existing `out_dir`
    is replaced). Refuses to write into (or over) an input. `mwork_delta.json` in the result
    records the delta's metadata.

    Args:
        base: base model directory (or hub id) the delta was trained from.
        delta_path: the delta file.
        out_dir: the directory to create.
        dtype: dtype to load and save the merged model in ("auto" = the checkpoint's; a bf16
            checkpoint rounds the trained values, use float32 to keep them exactly).
    """
    out = Path(out_dir).expanduser().resolve()
    delta_file = Path(delta_path).expanduser().resolve()
    base_path = Path(base).expanduser().resolve()
    if Path(base).expanduser().is_dir() and (_inside(out, base_path) or _inside(base_path, out)):
        raise MworkError(
            f"merge output {out} overlaps the base model directory {base_path}",
            "choose an output directory outside the base model",
        )
    if _inside(delta_file, out):
        raise MworkError(
            f"merge output {out} would replace the delta file {delta_file}",
            "choose another output directory",
        )
    delta = load_delta(delta_file)  # validated before the model load
    model, _, _ = load_model(base, dtype=dtype, device="cpu", trust_remote_code=trust_remote_code)
    before = snapshot(model, delta)
    apply_delta(model, delta)
    kept, trained = rounding_report(model, delta, before)
    if kept < trained:  # the evaluation warns about the same loss (mwork.evaluate)
        log.warning(
            "merging in %s keeps %d of %d trained changes (the rest round back to the base "
            "values); merge with --dtype float32 to keep them all",
            dtype,
            kept,
            trained,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        _copy_tokenizer(base, tmp, trust_remote_code)
        atomic_write_text(
            tmp / PROVENANCE_FILE,
            json.dumps(
                {"base": base, "delta": str(delta_path), **delta.meta, "merge_dtype": dtype}
                | ({"kept_changes": f"{kept} of {trained}"} if trained else {}),
                indent=1,
                sort_keys=True,
            )
            + "\n",
        )
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "merged %s + %s (%s, %d values) into %s", base, delta_path, delta.mode, delta.n_values, out
    )
    return out
