"""Snakemake adapter: PLND detection for one (model, language, document shard)."""

from typing import TYPE_CHECKING

from mwork.detect import DetectSettings, detect_to_file
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

w, det, spec = snakemake.wildcards, snakemake.params.detection, snakemake.params.model_spec
setup_rule_logging(snakemake.log[0], model=w.model, lang=w.lang, shard=f"{w.shard}/{w.n}")
settings = DetectSettings(
    importance=det["importance"], top_k_ffn=det["top_k_ffn"], top_k_attn=det["top_k_attn"],
    epsilon_ffn=det["epsilon_ffn"], epsilon_attn=det["epsilon_attn"],
    min_fraction=det["min_fraction"], max_tokens=det["max_tokens"], seed=det["seed"],
)
detect_to_file(
    snakemake.params.model_ref, snakemake.input.corpus, w.lang, snakemake.output.neurons, settings,
    n_docs=det["n_docs"], batch_size=det["batch_size"], dtype=spec.get("dtype", "bfloat16"),
    shard=(int(w.shard), int(w.n)), trust_remote_code=spec.get("trust_remote_code", False),
    model_name=w.model, expect_layers=spec["n_layers"],
)
