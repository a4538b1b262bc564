"""Helpers shared by the tests: file digests, the CLI's exit-2 check, a neuron file of a model."""

import hashlib
import json
from pathlib import Path

import torch

from mwork.adapters import COMPONENTS, get_adapter
from mwork.cli import main
from mwork.modeling import model_fingerprint
from mwork.neuronset import NeuronSet, save_neuron_set


def digest(paths) -> dict[str, str]:
    """sha256 of every file among `paths` (folders recursively)."""
    out = {}
    for p in map(Path, paths):
        for f in [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()):
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def fails(capsys, argv, inputs, alone: bool = False) -> str:
    """Run the CLI; assert exit 2, one `error: problem; fix` line (the last; with `alone` the only
    line on stderr), no traceback, inputs untouched."""
    before = digest(inputs)
    assert before, "a case without input files checks nothing"
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and "; " in errors[0], err
    assert not alone or len(err) == 1, err
    assert not any("Traceback" in line for line in err), err
    assert digest(inputs) == before
    return errors[0]


def fails_alone(capsys, argv, inputs) -> str:
    """`fails` where the error line must be all of stderr (commands that load no model)."""
    return fails(capsys, argv, inputs, alone=True)


def make_neuron_file(model, path: Path, p: float = 0.25, seed: int = 0) -> Path:
    """A neuron file of `model` (language de): each unit selected with probability p."""
    adapter = get_adapter(model)
    g = torch.Generator().manual_seed(seed)
    sel = {c: torch.rand(adapter.n_layers, adapter.n_units(c), generator=g) < p for c in COMPONENTS}
    meta = {
        "model": "tiny",
        "model_fingerprint": model_fingerprint(model),
        "language": "de",
        "n_layers": str(adapter.n_layers),
        "units": json.dumps(adapter.unit_counts()),
        "n_docs": "1",
        "variant": "all",
    }
    save_neuron_set(NeuronSet(sel, {c: s.to(torch.int32) for c, s in sel.items()}, meta), path)
    return path
