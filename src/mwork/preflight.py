"""Pre-flight summary of a study: what will run, what a config drops, and why (torch-free).

`preflight(plan)` returns the lines `mwork plan --configfile X` prints; `preflight_warnings(plan)`
only its warnings, which the workflow prints at start-up (`rules/common.smk`) before any job.
Nothing here fails a config (`mwork.configcheck` does that); these are the things a valid config
does quietly:

- a task whose languages are English only plans no masked run for its conditions;
- a language whose corpus gives fewer documents after the pool's filters than detection.n_docs
  (detection then runs on fewer documents); local sources are counted here, hub sources once
  their pool exists (resources/corpus/{lang}.jsonl, relative to the run directory);
- the N1/N2 sweep on a task or language with no baseline of that task;
- a fine-tuned language no configured task scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mwork.corpus import build_pool, iter_local
from mwork.errors import MworkError
from mwork.layout import ENGLISH
from mwork.plan import Plan


def pool_size(source: Mapping[str, Any], corpus: Mapping[str, Any], lang: str, need: int):
    """(documents the pool of `lang` has, capped at `need`; where they were counted), or
    (None, why not) when they cannot be counted before the corpus stage runs."""
    pool = Path("resources/corpus") / f"{lang}.jsonl"
    limit = min(corpus["pool_size"], need)
    try:
        if pool.is_file():  # the pool already built (downloaded or read) by download_corpus
            return len(build_pool(iter_local(pool), limit, 0, 10**12)), str(pool)
        if "path" in source and Path(source["path"]).is_file():
            docs = iter_local(source["path"], source.get("text_field", "text"))
            kept = build_pool(docs, limit, corpus["min_chars"], corpus["max_chars"])
            return len(kept), source["path"]
    except MworkError as exc:  # a malformed file: download_corpus reports it in full
        return None, f"unreadable ({exc})"
    if "path" in source:
        return None, f"{source['path']} does not exist yet"
    return None, f"{source['dataset']} (hub): counted once downloaded"


def _corpus_lines(plan: Plan) -> tuple[list[str], list[str]]:
    corpus = plan.config["corpus"]
    n_docs = plan.detection["n_docs"]
    lines, warnings = [f"corpus (detection.n_docs {n_docs}):"], []
    for lang in plan.all_langs:
        n, where = pool_size(corpus["sources"][lang], corpus, lang, n_docs)
        if n is None:
            lines.append(f"  {lang}: {where}")
        elif n < n_docs:
            lines.append(f"  {lang}: {n} documents ({where}) < n_docs {n_docs}")
            warnings.append(
                f"corpus.sources.{lang}: only {n} documents of {where} pass the pool's filters "
                f"(corpus.min_chars {corpus['min_chars']}, max_chars {corpus['max_chars']}, "
                f"pool_size {corpus['pool_size']}) but detection.n_docs is {n_docs}: detection "
                f"of {lang} runs on {n} documents (add documents or lower corpus.min_chars)"
            )
        else:
            lines.append(f"  {lang}: >= {n_docs} documents ({where})")
    return lines, warnings


def _task_lines(plan: Plan) -> tuple[list[str], list[str]]:
    if plan.eval is None:
        return ["evaluation: none (no evaluation section: detection only)"], []
    runs = plan.masked_runs()
    models = ", ".join(plan.deactivation_models())
    lines, warnings = (
        [f"evaluation (models {models}; each run scores English and its language):"],
        [],
    )
    for task, spec in plan.eval["tasks"].items():
        lines.append(f"  {task}: baseline {' '.join(spec['langs'])}")
        for cond in spec.get("conditions", []):
            for label in plan.run_labels(cond):
                langs = [l for t, lb, l in runs if t == task and lb == label]
                lines.append(f"    {label}: {' '.join(langs) or 'DROPPED'}")
        if spec.get("conditions") and all(l == ENGLISH for l in spec["langs"]):
            warnings.append(
                f"evaluation.tasks.{task}: langs lists only English, so its conditions "
                f"{', '.join(spec['conditions'])} plan no masked run (add a language besides en)"
            )
    sweep = plan.eval["sweep"]
    if sweep["enabled"]:
        langs = [l for l in sweep["langs"] if l != ENGLISH]
        lines.append(
            f"  sweep on {sweep['task']}: D_U with N1 in {sweep['n1']}, D_G with N2 in "
            f"{sweep['n2']}, masking {' '.join(langs) or 'nothing'}"
        )
        base = plan.eval["tasks"].get(sweep["task"], {}).get("langs", [])
        missing = [l for l in [ENGLISH, *langs] if l not in base]
        if not langs:
            warnings.append("evaluation.sweep.langs has no language besides English: no sweep run")
        if missing:
            warnings.append(
                f"evaluation.sweep: {sweep['task']} has no baseline in {', '.join(missing)} "
                f"(evaluation.tasks.{sweep['task']}.langs), so Tables 12-13 lack their reference; "
                "add them there or set evaluation.sweep.enabled: false"
            )
    return lines, warnings


def _finetune_lines(plan: Plan) -> tuple[list[str], list[str]]:
    if plan.ft is None:
        return [], []
    scored = {l for _, _, l in plan.finetune_eval_runs()}
    runs = ", ".join(f"{k}-{n}" for k, n in plan.finetune_runs())
    lines = [
        f"finetune ({', '.join(plan.ft['models'])}): {runs} for {' '.join(plan.finetune_langs())}"
    ]
    warnings = [
        f"finetune: {l} is trained but no task of evaluation.tasks scores it (finetune.tasks)"
        for l in plan.finetune_langs()
        if plan.eval is not None and l not in scored
    ]
    return lines, warnings


def preflight(plan: Plan) -> tuple[list[str], list[str]]:
    """(summary lines, warnings) of a checked plan, as `mwork plan` prints them."""
    lines = []
    for model, spec in plan.config["models"].items():
        n, n1, n2 = spec["n_layers"], spec.get("n1"), spec.get("n2")
        where = spec.get("path") or spec.get("hf_id")
        split = (
            "no layer split"
            if n1 is None or n2 is None
            else (f"U = first {n1}, G = last {n2}, S = {n - n1 - n2} in between")
        )
        roles = ", ".join(plan.roles.roles(model)) or "none"  # mwork.roles
        lines.append(
            f"model {model}: {where}, {n} layers ({split}), dtype {spec['dtype']}; {roles}"
        )
    enhance = [l for l in plan.all_langs if l not in plan.detect_langs]
    lines.append(f"languages: {' '.join(plan.detect_langs)}; enhance: {' '.join(enhance) or '-'}")
    warnings: list[str] = []
    for part in (_corpus_lines, _task_lines, _finetune_lines):
        more, warn = part(plan)
        lines += more
        warnings += warn
    n_eval = sum(len(plan.eval_jobs(m)) for m in plan.models)
    full = plan.roles.full_models()  # every study language; figure-only models: detect langs
    n_detect = sum(
        len(plan.all_langs if m in full else plan.detect_langs)
        for m in plan.roles.detection_models()
    )
    if plan.detection["group_languages"]:  # one job per (model, shard) scores every language
        n_detect = len(plan.roles.detection_models())
    lines.append(
        f"jobs: {n_detect * plan.detection['shards']} detection, "
        f"{n_eval} evaluation, {len(plan.finetune_targets())} fine-tuning; "
        f"{len(plan.figure_targets())} figures"
    )
    return lines, warnings


def preflight_warnings(plan: Plan) -> list[str]:
    """The warnings of `preflight(plan)` (the workflow prints them at start-up)."""
    return preflight(plan)[1]
