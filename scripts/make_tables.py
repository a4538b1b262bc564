"""Snakemake adapter of rule make_tables: the paper's tables from the tidy scores of a model."""

from pathlib import Path
from typing import TYPE_CHECKING

from mwork.runlog import setup_rule_logging
from mwork.settings import TableSettings
from mwork.tables import EnhancementSettings, make_tables

if TYPE_CHECKING:
    from snakemake.script import snakemake

table = TableSettings.from_mapping(snakemake.params.settings)
setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, settings=table)
make_tables(
    snakemake.input.scores,
    Path(snakemake.output.summary).parent,
    n_boot=table.n_boot,
    seed=table.boot_seed,
    enhancement=EnhancementSettings.from_mapping(snakemake.params.enhancement),
)
