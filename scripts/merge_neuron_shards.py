"""Snakemake adapter: merge document shards into results/{model}/neurons/{lang}.safetensors."""

from typing import TYPE_CHECKING

from mwork.neuronset import load_neuron_set, merge_neuron_sets, save_neuron_set
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

log = setup_rule_logging(snakemake.log[0], shards=list(snakemake.input.shards))
merged = merge_neuron_sets([load_neuron_set(p) for p in snakemake.input.shards])
save_neuron_set(merged, snakemake.output.neurons)
log.info("%d documents, %d language-specific neurons", merged.n_docs, merged.count())
