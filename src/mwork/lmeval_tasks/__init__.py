"""The benchmarks: one folder each, one row each in `BENCHMARKS`, one lm-eval YAML per task spec.

A benchmark folder (`mgsm/`, `xquad/`, `xcsqa/`, `xlsum/`) holds its lm-eval template(s)
(`template.yaml`, no `task:` key on purpose), its prompts (`prompts.yaml`: variant -> language ->
{prompt, stop?, strict_regex?}; provenance in PROMPTS.md) and its hook functions (`__init__.py`,
referenced as `!function mwork.lmeval_tasks.<name>.<function>`, which lm-eval imports by module
name, so generated YAMLs work from any directory). `BENCHMARKS` holds everything else about it:
HF dataset and configs, split, templates per prompt variant, generation length, sample size,
primary metric and paper table. Adding a fifth benchmark means one folder plus one entry.

    benchmarks  `Benchmark`, `BENCHMARKS`, `TASKS`, the prompts of every folder (`load_prompts`)
    spec        `TaskSpec`: benchmark x language x prompt variant x data source; its task name
    sources     the dataset keys of a spec: Hub revision, the Hub's parquet export, local files
    render      one spec -> one lm-eval YAML (`render_task_yaml`), a directory (`write_task_dir`)
    hooks, metrics, <benchmark>/   the functions lm-eval calls (`!function ...`)

Load a directory written by `write_task_dir` with
`TaskManager(include_path=run_dir, include_defaults=False)`.
"""

from mwork.lmeval_tasks.benchmarks import (
    BENCHMARKS,
    LOCAL_BUILDERS,
    PARQUET_EXPORT,
    TASKS,
    TEMPLATE_DIR,
    Benchmark,
    load_prompts,
)
from mwork.lmeval_tasks.render import prompt_to_jinja, render_task_yaml, write_task_dir
from mwork.lmeval_tasks.sources import hf_source, parquet_export_files
from mwork.lmeval_tasks.spec import DEFAULT_MAX_ARTICLE_CHARS, DEFAULT_VARIANT, TaskSpec

__all__ = [
    "BENCHMARKS",
    "DEFAULT_MAX_ARTICLE_CHARS",
    "DEFAULT_VARIANT",
    "LOCAL_BUILDERS",
    "PARQUET_EXPORT",
    "TASKS",
    "TEMPLATE_DIR",
    "Benchmark",
    "TaskSpec",
    "hf_source",
    "load_prompts",
    "parquet_export_files",
    "prompt_to_jinja",
    "render_task_yaml",
    "write_task_dir",
]
