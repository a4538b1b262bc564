"""Snakemake adapter of rule select_lape_neurons: joint LAPE selection, one file per language."""

from typing import TYPE_CHECKING

from mwork.lape import select_to_files
from mwork.runlog import setup_rule_logging
from mwork.settings import LapeSettings

if TYPE_CHECKING:
    from snakemake.script import snakemake

langs, files = list(snakemake.params.langs), list(snakemake.input.recordings)
per = len(files) // len(langs)  # language-major (rules/detect.smk get_lape_shards)
setup_rule_logging(snakemake.log[0], model=snakemake.wildcards.model, langs=langs)
select_to_files(
    {lang: files[i * per : (i + 1) * per] for i, lang in enumerate(langs)},
    dict(zip(langs, snakemake.output.neurons, strict=True)),
    LapeSettings.from_mapping(snakemake.params.settings),
)
