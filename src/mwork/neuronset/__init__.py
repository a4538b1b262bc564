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

Modules: `core` (the in-memory `NeuronSet`, numpy arrays, and `select_by_fraction`), `fileio`
(write, read and check files), `algebra` (merge, re-select, App. E variants). Nothing here imports
torch: jobs that only combine or summarise neuron files stay light.
"""

from mwork.neuronset.algebra import (
    check_shard_set,
    derive_variant,
    intersection,
    merge_lape_recordings,
    merge_neuron_sets,
    reselect,
    subtract,
)
from mwork.neuronset.core import NeuronSet, select_by_fraction
from mwork.neuronset.fileio import (
    FORMAT,
    METADATA_KEYS,
    load_neuron_set,
    parse_shard,
    save_neuron_set,
    serialize,
)

__all__ = [
    "FORMAT",
    "METADATA_KEYS",
    "NeuronSet",
    "check_shard_set",
    "derive_variant",
    "intersection",
    "load_neuron_set",
    "merge_lape_recordings",
    "merge_neuron_sets",
    "parse_shard",
    "reselect",
    "save_neuron_set",
    "select_by_fraction",
    "serialize",
    "subtract",
]
