"""The in-memory neuron set (`NeuronSet`, numpy arrays) and the document-fraction selection rule."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from mwork.errors import MworkError


def _arrays(values: Mapping[str, object]) -> dict[str, np.ndarray]:
    """component -> numpy array (array-likes such as CPU torch tensors are converted, no copy)."""
    return {c: np.asarray(t) for c, t in values.items()}


@dataclass
class NeuronSet:
    """Language-specific neurons of one model for one language.

    Arrays are numpy (torch code converts at the point of use with `torch.from_numpy`);
    array-likes given to the constructor are converted.

    Attributes:
        selected: component -> [n_layers, n_units] bool, the language-specific neurons.
        doc_counts: component -> [n_layers, n_units] int32, documents that selected each unit.
        meta: header metadata (strings), see METADATA_KEYS.
        act_counts: LAPE files only: component -> [n_layers, n_units] int64, tokens on which
            the unit's activation was > 0 (empty for PLND files).
    """

    selected: dict[str, np.ndarray]
    doc_counts: dict[str, np.ndarray]
    meta: dict[str, str] = field(default_factory=dict)
    act_counts: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.selected = _arrays(self.selected)
        self.doc_counts = _arrays(self.doc_counts)
        self.act_counts = _arrays(self.act_counts)

    @property
    def n_layers(self) -> int:
        return next(iter(self.doc_counts.values())).shape[0]

    @property
    def n_docs(self) -> int:
        return int(self.meta["n_docs"])

    @property
    def units(self) -> dict[str, int]:
        return {c: t.shape[1] for c, t in self.doc_counts.items()}

    def indices(self, layer: int, component: str) -> np.ndarray:
        """Sorted int64 indices of the selected units of `component` in `layer`."""
        return np.flatnonzero(self.selected[component][layer]).astype(np.int64, copy=False)

    def count(self, component: str | None = None) -> int:
        """Number of selected neurons (in one component, or all)."""
        comps = [component] if component else list(self.selected)
        return int(sum(int(self.selected[c].sum()) for c in comps))

    def total_units(self) -> int:
        """Number of probed neurons in all layers and components."""
        return sum(self.n_layers * n for n in self.units.values())

    def with_selection(self, selected: dict[str, np.ndarray], **meta: str) -> NeuronSet:
        """A copy with another selection (doc_counts kept) and updated metadata."""
        return replace(self, selected=selected, meta={**self.meta, **meta})


def select_by_fraction(
    doc_counts: Mapping[str, np.ndarray], n_docs: int, min_fraction: float
) -> dict[str, np.ndarray]:
    """Units selected on at least ceil(min_fraction * n_docs) documents (1.0 = every document).

    Works on any array type with `>=` (numpy arrays, or torch tensors in torch code).
    """
    if not 0.0 < min_fraction <= 1.0:
        raise MworkError(
            f"min_fraction {min_fraction} is outside (0, 1]", "use e.g. 1.0 (strict) or 0.9"
        )
    need = max(1, math.ceil(min_fraction * n_docs - 1e-9))
    return {c: counts >= need for c, counts in doc_counts.items()}
