"""Snakemake adapter: App. E neuron-set variant (minus-en / minus-shared) of one language."""

from typing import TYPE_CHECKING

from mwork.neuronset import derive_variant, load_neuron_set, save_neuron_set
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

variant = snakemake.wildcards.variant
log = setup_rule_logging(snakemake.log[0], variant=variant, others=list(snakemake.input.others))
ns = load_neuron_set(snakemake.input.neurons)
others = [load_neuron_set(p) for p in snakemake.input.others]
out = derive_variant(ns, others, all_overlap=(variant == "minus-shared"), variant=variant)
save_neuron_set(out, snakemake.output.neurons)
log.info("%s: %d -> %d neurons", variant, ns.count(), out.count())
