"""Snakemake adapter: tidy score table -> paper Tables 1-5, 11-17 (CSV + Markdown)."""

from pathlib import Path
from typing import TYPE_CHECKING

from mwork.collect import make_tables
from mwork.runlog import setup_rule_logging

if TYPE_CHECKING:
    from snakemake.script import snakemake

ev = snakemake.params.settings
setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, n_boot=ev["n_boot"], seed=ev["boot_seed"])
make_tables(snakemake.input.scores, Path(snakemake.output.tables[0]).parent, n_boot=ev["n_boot"], seed=ev["boot_seed"])
