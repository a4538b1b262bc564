# mwork: reproducible workflow for "How do Large Language Models Handle Multilingualism?"
# (Zhao et al., NeurIPS 2024). This file only lists includes and targets.
#
# Every output path: src/mwork/layout.py (and the README). Which jobs exist: src/mwork/plan.py.

from snakemake.utils import min_version

min_version("9.0")


# The paper's study by default; `--configfile demo/config.yaml` (or your own) replaces it
# instead of being merged into it.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/helpers.smk"


if "demo" in config:  # the embedded demo builds its own world and model (demo/config.yaml)

    include: "rules/demo.smk"


include: "rules/corpus.smk"
include: "rules/detect.smk"
include: "rules/perplexity.smk"
include: "rules/evaluate.smk"
include: "rules/finetune.smk"
include: "rules/tables.smk"
include: "rules/lens.smk"
include: "rules/figures.smk"


onsuccess:  # again at the end: pools downloaded during the run are counted now (mwork.preflight)
    for line in preflight_warnings(PLAN):
        print(f"warning: {line}", file=sys.stderr)


onerror:  # the terminal shows the end of each failed job's rule log (mwork.runlog)
    print(failed_log_tails(RUN_STARTED), file=sys.stderr)


rule all:
    default_target: True
    input:
        PLAN.final_targets(),
        PLAN.ppl_targets(),
        PLAN.figure_targets(),
        PLAN.findings_targets(),


rule neurons_only:
    input:
        PLAN.neuron_targets(),


rule eval_only:
    input:
        PLAN.table_targets(),
