"""File-level neuron-set jobs of the workflow: merge document shards, derive App. E variants.

Torch-free (`mwork.neuronset` works on numpy), so these light jobs start in well under a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mwork.neuronset import (
    NeuronSet,
    derive_variant,
    load_neuron_set,
    merge_neuron_sets,
    save_neuron_set,
)

log = logging.getLogger(__name__)


def merge_shards_to_file(shards: list[str | Path], out: str | Path) -> NeuronSet:
    """Merge the document shards of one (model, language) into its neuron file."""
    merged = merge_neuron_sets([load_neuron_set(p) for p in shards])
    save_neuron_set(merged, out)
    log.info("%d documents, %d language-specific neurons", merged.n_docs, merged.count())
    return merged


def derive_variant_to_file(
    neurons: str | Path, others: list[str | Path], variant: str, out: str | Path
) -> NeuronSet:
    """App. E variant: `minus-en` (N_L minus N_en) or `minus-shared` (minus the overlap of all)."""
    ns = load_neuron_set(neurons)
    derived = derive_variant(
        ns,
        [load_neuron_set(p) for p in others],
        all_overlap=(variant == "minus-shared"),
        variant=variant,
    )
    save_neuron_set(derived, out)
    log.info("%s: %d -> %d neurons", variant, ns.count(), derived.count())
    return derived
