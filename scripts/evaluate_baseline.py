"""Snakemake adapter: score one task in one language without any deactivation (Table 11)."""

from typing import TYPE_CHECKING

from mwork.deactivate import evaluate_condition
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

w, ev, spec = snakemake.wildcards, snakemake.params.settings, snakemake.params.model_spec
setup_rule_logging(snakemake.log[0], model=w.model, condition="none", task=w.task, eval_lang=w.eval_lang)
evaluate_condition(
    snakemake.params.model_ref, None, "none", "none", snakemake.params.specs,
    {w.eval_lang: snakemake.output.scores},
    n1=spec["n1"], n2=spec["n2"], batch_size=ev["batch_size"], limit=ev["limit"],
    max_gen_toks=ev["max_gen_toks"], dtype=spec.get("dtype", "bfloat16"),
    trust_remote_code=spec.get("trust_remote_code", False), model_name=w.model,
    expect_layers=spec["n_layers"],
)
