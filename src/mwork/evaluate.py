"""Evaluation runs (paper §3, Tables 1-5, 11-17): score tasks with one language's neurons masked.

The runner behind rules/evaluate.smk. One run = (model, run label, mask language L, task specs):
the model is loaded once, L's language-specific neurons become the condition's selection
(`mwork.selection`), and every task spec (English and L, the paper's "En-D" and "L-D") is
scored inside one masking context (`mwork.mask`) in a single lm-eval call (`mwork.harness`).
The baseline is the label `none` with mask language `none` (no neuron file, nothing masked).
A fine-tuned run (`ft_{kind}-{N}`, paper §4) masks nothing: the delta file of L's (kind, N) run
(`mwork.finetune.delta`) is written into the freshly loaded base model (load it in float32:
lr-2e-6 changes vanish in bf16), then the same tasks are scored.
Run labels: `mwork.runlabel.RunLabel`. Result JSONs: schema `mwork.scores.RESULT_SCHEMA`, read
back by `mwork.scores`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mwork.atomic import write_json
from mwork.errors import MworkError
from mwork.finetune.delta import Delta, apply_delta, load_delta
from mwork.harness import evaluate_tasks
from mwork.lmeval_tasks import TaskSpec
from mwork.mask import mask_neurons
from mwork.modeling import model_fingerprint
from mwork.neuronset import load_neuron_set
from mwork.runlabel import BASELINE, CountRule, RunLabel, layer_regions
from mwork.scores import RESULT_SCHEMA
from mwork.selection import condition_selection, neuron_counts
from mwork.settings import EvaluationSettings, ModelSpec

log = logging.getLogger(__name__)


def _split_outputs(
    out_json: str | Path | Mapping[str, str | Path], langs: Iterable[str]
) -> dict[str | None, Path]:
    """eval_lang -> output path (key None: one file for every language)."""
    langs = list(dict.fromkeys(langs))
    if isinstance(out_json, str | Path):
        return {None: Path(out_json)}
    outs = {k: Path(v) for k, v in out_json.items()}
    if set(outs) != set(langs):
        raise MworkError(
            f"outputs are given for languages {sorted(outs)} but tasks are in {sorted(langs)}",
            "give one output per evaluated language",
        )
    return outs


def _check_delta(
    delta_file: str | Path | None, run: RunLabel, mask_lang: str, spec: ModelSpec
) -> Delta:
    """The delta of a fine-tuned run label, checked against the label and language (no model load)."""
    if delta_file is None:
        raise MworkError(
            f"run {run.text} needs the delta file of its fine-tuning", "pass the .delta.safetensors"
        )
    delta = load_delta(delta_file)
    have = (delta.meta.get("language"), delta.mode, delta.meta.get("n_docs"))
    if have != (mask_lang, run.finetune, str(run.n_docs)):
        raise MworkError(
            f"delta file {delta_file} holds a {have[1]} run on {have[2]} {have[0]} documents, "
            f"but the run is {run.text} for {mask_lang}",
            "pass the matching delta file",
        )
    if spec.dtype in ("bfloat16", "float16"):
        log.warning(
            "%s: applying a delta to a %s model rounds most lr-2e-6 changes away; "
            "evaluate fine-tuned runs on a float32 base (finetune.eval_dtype)",
            run.text,
            spec.dtype,
        )
    return delta


def evaluate_run(
    spec: ModelSpec,
    label: str,
    mask_lang: str,
    neuron_file: str | Path | None,
    task_specs: Iterable[Mapping[str, Any] | TaskSpec],
    out_json: str | Path | Mapping[str, str | Path],
    settings: EvaluationSettings,
    device: str = "auto",
) -> dict[str | None, dict[str, Any]]:
    """Load the model once, mask `mask_lang`'s neurons per `label`, score every task spec.

    Args:
        spec: the model; its n1/n2 are the default layer split (labels may override them).
        label: run label (`mwork.runlabel.RunLabel`), "none" for the unmasked baseline.
        mask_lang: language whose neurons are deactivated ("none" for the baseline).
        neuron_file: `mask_lang`'s neuron file (variant file for `.minus-*` labels); None for "none";
            for a fine-tuned label (`ft_{kind}-{N}`) the delta file of that run.
        task_specs: `mwork.lmeval_tasks.TaskSpec` mappings, typically English and `mask_lang`.
        out_json: one path for all tasks, or {eval_lang: path} (one file per evaluated language).
        settings: lm-eval batch size, item limit, generation length, mask mode.
        device: "auto", "cpu", "cuda", ...

    Returns:
        {eval_lang or None: JSON content} of the files written. Each JSON holds the run
        (model, condition, label, variant, seed, mask_lang, eval_langs, n1, n2, neuron counts) and
        `mwork.harness.evaluate_tasks`' lm_eval_version, settings and tasks.

    Raises:
        MworkError: bad label, neuron file of another model/language/variant, or layer mismatch.
    """
    run = RunLabel.parse(label)
    count = CountRule.from_settings(settings)  # checked before the model load
    specs = [TaskSpec.from_config(s) for s in task_specs]
    if not specs:
        raise MworkError("no task specs given", "list at least one {task, lang}")
    outs = _split_outputs(out_json, (s.lang for s in specs))
    if run.is_baseline != (mask_lang == BASELINE) or (not run.is_baseline and neuron_file is None):
        raise MworkError(
            f"condition {label!r} with mask language {mask_lang!r}",
            "the baseline is condition 'none' with mask_lang 'none'; other conditions need a neuron file",
        )
    n1, n2 = (spec.n1, spec.n2) if run.is_baseline or run.is_finetuned else spec.split()
    delta = _check_delta(neuron_file, run, mask_lang, spec) if run.is_finetuned else None
    if not run.is_baseline and delta is None:  # cheap checks before paying for the model load
        meta = load_neuron_set(neuron_file).meta
        file_lang, file_variant = meta.get("language"), meta.get("variant", "all")
        if file_lang != mask_lang or file_variant != run.variant:
            raise MworkError(
                f"neuron file {neuron_file} holds {file_lang}/{file_variant} neurons, "
                f"but the run masks {mask_lang}/{run.variant}",
                "pass the matching neuron file",
            )
    model, tokenizer, adapter = spec.load(device)
    fingerprint = model_fingerprint(model)
    if delta is not None:  # refuses another base model by fingerprint
        apply_delta(model, delta)
    eff_n1, eff_n2 = run.layer_split(n1, n2)
    run_info: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "model": spec.label,
        "model_ref": spec.ref,
        "model_fingerprint": fingerprint,
        "condition": run.table_condition,
        "label": run.text,
        "variant": run.variant,
        "seed": run.seed,
        "mask_lang": mask_lang,
        "n_layers": adapter.n_layers,
        "n1": eff_n1,
        "n2": eff_n2,
        "neuron_file": None if neuron_file is None else str(neuron_file),
    }
    if delta is not None:
        run_info["finetune"] = {
            "kind": run.finetune,
            "n_docs": run.n_docs,
            "dtype": spec.dtype,
            "delta_summary": delta.meta.get("summary", "{}"),
        }
    intervention = None
    if not run.is_baseline and delta is None:
        ns = load_neuron_set(neuron_file, expect_fingerprint=fingerprint)
        selection = condition_selection(
            run.split_condition, ns, adapter.n_layers, n1, n2, run.seed or 0, count=count
        )
        run_info["neurons"] = neuron_counts(
            selection, layer_regions(adapter.n_layers, eff_n1, eff_n2)
        )
        run_info["count_rule"] = count.describe()

        def intervention():
            return mask_neurons(adapter, selection, settings.mask_mode)

        log.info(
            "%s: masking %d %s neurons of %s (%s)",
            run.text,
            run_info["neurons"]["total"],
            run.variant,
            mask_lang,
            run_info["neurons"]["by_region"],
        )
    result = evaluate_tasks(
        model,
        tokenizer,
        specs,
        None,
        batch_size=settings.batch_size,
        limit=settings.limit,
        max_gen_toks=settings.max_gen_toks,
        intervention=intervention,
    )
    written: dict[str | None, dict[str, Any]] = {}
    for lang, path in outs.items():
        tasks = {
            k: v for k, v in result["tasks"].items() if lang is None or v["spec"]["lang"] == lang
        }
        eval_langs = sorted({v["spec"]["lang"] for v in tasks.values()})
        data = {
            **run_info,
            "eval_langs": eval_langs,
            "lm_eval_version": result["lm_eval_version"],
            "settings": result["settings"],
            "tasks": tasks,
        }
        write_json(path, data)
        written[lang] = data
        log.info("wrote %s (%s)", path, ", ".join(f"{k}={v['metrics']}" for k, v in tasks.items()))
    return written
