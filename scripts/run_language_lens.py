"""Snakemake adapter: the layer-wise language lens of one (model, lens variant) -> tidy CSV."""

from typing import TYPE_CHECKING

from mwork.lens import lens_to_file
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

w, lens, spec = snakemake.wildcards, snakemake.params.lens, snakemake.params.model_spec
setup_rule_logging(snakemake.log[0], model=w.model, lens_variant=w.lens_variant)
lens_to_file(
    snakemake.params.model_ref, snakemake.output.table, snakemake.params.candidates,
    variants=[w.lens_variant], model_name=w.model, prompts_path=lens["prompts"],
    top_k=lens["top_k"], max_new_tokens=lens["max_new_tokens"], lid_backend=lens["lid_backend"],
    lid_min_prob=lens["lid_min_prob"], prompt_template=lens["prompt_template"],
    dtype=spec.get("dtype", "bfloat16"), trust_remote_code=spec.get("trust_remote_code", False),
)
