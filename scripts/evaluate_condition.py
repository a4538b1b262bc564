"""Snakemake adapter: score English and the mask language with its neurons deactivated (one load)."""

from typing import TYPE_CHECKING

from mwork.deactivate import evaluate_condition
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

w, ev, spec = snakemake.wildcards, snakemake.params.settings, snakemake.params.model_spec
setup_rule_logging(snakemake.log[0], model=w.model, condition=w.condition, mask_lang=w.mask_lang, task=w.task)
evaluate_condition(
    snakemake.params.model_ref, snakemake.input.neurons, w.condition, w.mask_lang, snakemake.params.specs,
    {"en": snakemake.output.english, w.mask_lang: snakemake.output.target},
    n1=spec["n1"], n2=spec["n2"], batch_size=ev["batch_size"], limit=ev["limit"],
    max_gen_toks=ev["max_gen_toks"], dtype=spec.get("dtype", "bfloat16"),
    trust_remote_code=spec.get("trust_remote_code", False), model_name=w.model,
    expect_layers=spec["n_layers"], mask_mode=ev.get("mask_mode", "weights"),
)
