"""Which neurons a sparse fine-tuning run trains (paper §4): `build_selection`.

Modes:
    ls      the language-specific neurons of a neuron file (optionally restricted, see below)
    random  as many uniformly random neurons, matched per (layer, component) to what `ls` would
            train (`mwork.selection.random_matched`, seeded by `neuron_seed`): the paper's "Random"
    full    ordinary fine-tuning of every parameter, same loop and data (baseline; no selection)

Restrictions (applied to the LS set before `random` matches its counts): `components`, `regions`
(a subset of U/S/G with the model's N1/N2, `mwork.runlabel.layer_regions`) and the released
code's `cap_per_matrix` (it keeps `islice(set, 100)` indices per matrix per layer; we keep the
`cap` lowest indices of each (layer, component), which is what CPython's iteration over a set of
small ints yields). Default: all of L's neurons in every layer, as the paper.
"""

from __future__ import annotations

import torch

from mwork.adapters import COMPONENTS, ModelAdapter
from mwork.errors import MworkError
from mwork.finetune.settings import FinetuneSettings
from mwork.neuronset import NeuronSet
from mwork.runlabel import layer_regions
from mwork.selection import random_matched


def build_selection(
    neurons: NeuronSet, adapter: ModelAdapter, settings: FinetuneSettings
) -> dict[str, torch.Tensor]:
    """The neurons a sparse run trains: component -> [n_layers, n_units] bool (module docstring)."""
    if neurons.n_layers != adapter.n_layers or any(
        adapter.n_units(c) != n for c, n in neurons.units.items()
    ):
        raise MworkError(
            f"neuron file ({neurons.n_layers} layers, units {neurons.units}) does not fit "
            f"the model "
            f"({adapter.n_layers} layers, units {adapter.unit_counts()})",
            "use a neuron file detected on this model",
        )
    keep_layers = torch.ones(adapter.n_layers, dtype=torch.bool)
    if settings.regions is not None:
        regions = layer_regions(adapter.n_layers, int(settings.n1), int(settings.n2))  # type: ignore[arg-type]
        keep_layers[:] = False
        for r in settings.regions:
            keep_layers[regions[r]] = True
    out = {}
    for comp in COMPONENTS:
        if comp not in neurons.selected or comp not in settings.components:
            out[comp] = torch.zeros(adapter.n_layers, adapter.n_units(comp), dtype=torch.bool)
            continue
        sel = torch.as_tensor(neurons.selected[comp]).bool() & keep_layers[:, None]
        if settings.cap_per_matrix is not None:
            over = sel.cumsum(dim=1) > settings.cap_per_matrix  # beyond the cap lowest indices
            sel = sel & ~over
        out[comp] = sel
    if settings.mode == "random":
        counts = {c: s.sum(dim=1) for c, s in out.items()}
        out = random_matched(counts, {c: s.shape[1] for c, s in out.items()}, settings.neuron_seed)
    return out
