"""Evaluation jobs (paper §3 Tables 1-5, 11-17; §4 Fig. 4, Table 6): one model load, every task.

The stage behind rules/evaluate.smk. One job = (model, run label, tasks): the model is loaded once,
then each task (`TaskRun`: a benchmark and its language L) is scored in its own lm-eval call
(`mwork.harness`). A job covers one language (the default) or every language of the label
(`evaluation.group_languages`, for small models where start-up costs dominate):
- a masked label: L's language-specific neurons become the condition's selection for that task
  (`mwork.selection`; the `equal` count rule compares the task's own table, `count_peers`) and
  are masked (`mwork.mask`) around the call, English and L (the paper's "En-D" and "L-D");
- a fine-tuned label (`ft_{kind}-{N}`, §4): nothing is masked; the delta file of L's (kind, N)
  run (`mwork.finetune.delta`) is written into the loaded base model (load it in float32:
  lr-2e-6 changes vanish in bf16) and the original values are put back after L's tasks;
- the baseline (label `none`): L alone, unmasked.
The job writes one JSON (schema `mwork.scores.RESULT_SCHEMA`): the job's model, label and
language ("all" for a grouped job), and one entry per (task, L, evaluated language) in `runs`,
read back by `mwork.scores`. Generation tasks (MGSM, XQuAD, XLSum) also store the language of
every generated item (`items["output_lang"]`, `mwork.fidelity`) and the identifier that found it
(`"fidelity"` in the run entry); the identifier is built only when the job has such a task.

Bad input is refused before the model loads: labels and files (above), the LID backend, and an
X-CSQA local file without labels (`mwork.lmeval_tasks.xcsqa.check_local_labels`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mwork.atomic import write_json
from mwork.errors import MworkError
from mwork.fidelity import OutputLanguage, record_output_languages
from mwork.finetune.delta import Delta, DeltaSlice, apply_delta, load_delta
from mwork.harness import evaluate_tasks
from mwork.lmeval_tasks import BENCHMARKS, TaskSpec
from mwork.lmeval_tasks.xcsqa import check_local_labels, record_dropped
from mwork.mask import mask_neurons
from mwork.modeling import load_spec, model_fingerprint
from mwork.neuronset import NeuronSet, load_neuron_set
from mwork.runlabel import BASELINE, CountRule, RunLabel, layer_regions
from mwork.scores import RESULT_SCHEMA
from mwork.selection import condition_selection, neuron_counts
from mwork.settings import EvaluationSettings, ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskRun:
    """One task of an evaluation job.

    Attributes:
        task: benchmark name (mgsm, xquad, xcsqa, xlsum).
        lang: the mask language (masked and fine-tuned runs) or the baseline's language.
        specs: the task in each evaluated language (English and the mask language, or the
            baseline's one language), scored together in one lm-eval call.
        count_peers: run labels of the task's table (the `equal` count rule; planned by
            `mwork.plan.Plan.count_peers`).
    """

    task: str
    lang: str
    specs: tuple[TaskSpec, ...]
    count_peers: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | TaskRun) -> TaskRun:
        """From the planner's mapping {task, lang, specs: [TaskSpec mappings], count_peers}."""
        if isinstance(values, TaskRun):
            return values
        specs = tuple(TaskSpec.from_config(s) for s in values["specs"])
        if not specs or any(s.task != values["task"] for s in specs):
            raise MworkError(
                f"task run {values['task']!r} has specs of {[s.task for s in specs]}",
                "give one or more specs of that task",
            )
        peers = tuple(values.get("count_peers", ()))
        return cls(values["task"], values["lang"], specs, peers)


def _check_delta(delta_file: str | Path, run: RunLabel, lang: str, spec: ModelSpec) -> Delta:
    """The delta of a fine-tuned run label, checked against the label and language (no model load)."""
    delta = load_delta(delta_file)
    have = (delta.meta.get("language"), delta.mode, delta.meta.get("n_docs"))
    if have != (lang, run.finetune, str(run.n_docs)):
        raise MworkError(
            f"delta file {delta_file} holds a {have[1]} run on {have[2]} {have[0]} documents, "
            f"but the run is {run.text} for {lang}",
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


def _check_neurons(neuron_file: str | Path, run: RunLabel, lang: str) -> None:
    """The neuron file holds `lang`'s set of the label's variant (header only, no model load)."""
    meta = load_neuron_set(neuron_file).meta
    file_lang, file_variant = meta.get("language"), meta.get("variant", "all")
    if file_lang != lang or file_variant != run.variant:
        raise MworkError(
            f"neuron file {neuron_file} holds {file_lang}/{file_variant} neurons, "
            f"but the run masks {lang}/{run.variant}",
            "pass the matching neuron file",
        )


def _output_lid(runs: Sequence[TaskRun], settings: EvaluationSettings) -> OutputLanguage | None:
    """The output-language identifier of a job with a generation task (built here, before the
    model load, so a missing backend stops the job early); None without one, or without
    `settings.lid_languages`."""
    generates = any(BENCHMARKS[s.task].max_gen_toks is not None for t in runs for s in t.specs)
    if not generates or not settings.lid_languages:
        return None
    return OutputLanguage(settings.lid_languages, settings.lid_backend).build()


@contextmanager
def _delta_applied(model: Any, delta: Delta) -> Iterator[None]:
    """The delta's values written into `model`, the original values put back afterwards (exact)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        slices = {
            n: DeltaSlice(
                s.dim, s.index, params[n].index_select(s.dim, s.index.to(params[n].device)).clone()
            )
            for n, s in delta.slices.items()
            if n in params
        }
        full = {n: params[n].detach().clone() for n in delta.full if n in params}
    apply_delta(model, delta)  # refuses another base model by fingerprint
    try:
        yield
    finally:
        apply_delta(model, Delta(delta.mode, slices=slices, full=full), check_fingerprint=False)


def evaluate_job(
    spec: ModelSpec,
    label: str | RunLabel,
    lang: str,
    sources: Mapping[str, str | Path],
    tasks: Sequence[Mapping[str, Any] | TaskRun],
    out_json: str | Path,
    settings: EvaluationSettings,
    device: str = "auto",
) -> dict[str, Any]:
    """Load the model once and score every task of one evaluation job.

    Args:
        spec: the model; its n1/n2 are the default layer split (labels may override them).
        label: run label (`mwork.runlabel.RunLabel`); "none" for the unmasked baseline.
        lang: the job's language (recorded in the file), "all" for a grouped job.
        sources: language -> its neuron file (the variant's file for `.minus-*` labels), or its
            delta file for a fine-tuned label; empty for the baseline. One per task language.
        tasks: the job's tasks (`TaskRun` or the planner's mappings).
        out_json: the job's result file.
        settings: lm-eval batch size, item limit, generation length, mask mode, count rule,
            backend (hf, or vllm: one engine per job, `mwork.vllm_backend`; masks always in
            weights mode, mirrored into the engine), and the output-language identifier
            (`lid_backend`, `lid_languages`; without languages no output language is stored).
        device: "auto", "cpu", "cuda", ...

    Returns:
        The JSON written: {schema, model, label, lang, runs: [one entry per (task, language,
        evaluated language): model, condition, base_condition, label, variant, seed, mask_lang,
        n_layers, n1, n2, neuron_file, neurons and count_rule (masked), finetune (fine-tuned),
        fidelity (generation tasks: the identifier of items.output_lang), eval_langs,
        lm_eval_version, settings, tasks]}.

    Raises:
        MworkError: bad label, neuron or delta file of another model/language/variant, a task
            language without its file, no tasks, an X-CSQA local file without labels, an
            unusable LID backend, or a layer mismatch; all but the fingerprint check before the
            model load.
    """
    run = label if isinstance(label, RunLabel) else RunLabel.parse(label)
    runs = [TaskRun.from_mapping(t) for t in tasks]
    if not runs:
        raise MworkError(f"evaluation job {run.text}/{lang} has no tasks", "plan at least one")
    langs = list(dict.fromkeys(t.lang for t in runs))
    want = set() if run.is_baseline else set(langs)
    if set(sources) != want:
        raise MworkError(
            f"run {run.text} has files for {sorted(sources)} but tasks in {sorted(want)}",
            "the baseline takes no file; masked runs need each language's neuron file, "
            "fine-tuned runs its delta",
        )
    n1, n2 = (spec.n1, spec.n2) if run.is_baseline or run.is_finetuned else spec.split()
    deltas = {l: _check_delta(sources[l], run, l, spec) for l in langs} if run.is_finetuned else {}
    masked = not run.is_baseline and not run.is_finetuned
    if masked:
        for l in langs:
            _check_neurons(sources[l], run, l)
    if settings.backend not in ("hf", "vllm"):
        raise MworkError(f"unknown evaluation backend {settings.backend!r}", "use hf or vllm")
    for task in runs:
        for task_spec in task.specs:
            check_local_labels(task_spec)  # X-CSQA's unlabelled test split (source: local)
    lid = _output_lid(runs, settings)
    vllm = settings.backend == "vllm"
    if vllm:  # vLLM runs the model; the HF copy on the CPU is what masks and deltas edit
        from mwork.vllm_backend import open_backend, require_vllm

        require_vllm()
    model, tokenizer, adapter = load_spec(spec, "cpu" if vllm else device)
    backend = open_backend(spec, settings, model, tokenizer) if vllm else None
    fingerprint = model_fingerprint(model)
    sets = (
        {l: load_neuron_set(sources[l], expect_fingerprint=fingerprint) for l in langs}
        if masked
        else {}
    )
    eff_n1, eff_n2 = run.layer_split(n1, n2)
    entries = []
    for task in runs:
        info: dict[str, Any] = {
            "model": spec.label,
            "model_ref": spec.ref,
            "model_fingerprint": fingerprint,
            "condition": run.table_condition,
            "base_condition": run.base_condition,
            "label": run.text,
            "variant": run.variant,
            "seed": run.seed,
            "mask_lang": BASELINE if run.is_baseline else task.lang,
            "n_layers": adapter.n_layers,
            "n1": eff_n1,
            "n2": eff_n2,
            "neuron_file": str(sources[task.lang]) if task.lang in sources else None,
        }
        intervention, delta = None, deltas.get(task.lang)
        if delta is not None:
            info["finetune"] = {
                "kind": run.finetune,
                "n_docs": run.n_docs,
                "dtype": spec.dtype,
                "delta_summary": delta.meta.get("summary", "{}"),
            }
            intervention = lambda d=delta: _delta_applied(model, d)  # noqa: E731
        elif masked:
            count = CountRule.from_settings(settings, task.count_peers)
            info, intervention = _masking(
                info, run, sets[task.lang], adapter, (n1, n2), count, settings
            )
        result = evaluate_tasks(
            model,
            tokenizer,
            task.specs,
            None,
            batch_size=settings.batch_size,
            limit=settings.limit,
            max_gen_toks=settings.max_gen_toks,
            intervention=backend.wrap(intervention) if backend else intervention,
            lm=backend.lm if backend else None,
        )
        record_dropped(result["tasks"])  # X-CSQA items dropped for an empty option, counted
        for eval_lang in dict.fromkeys(s.lang for s in task.specs):
            scored = {k: v for k, v in result["tasks"].items() if v["spec"]["lang"] == eval_lang}
            identified = lid is not None and record_output_languages(scored, lid)
            entries.append(
                {
                    **info,
                    **({"fidelity": lid.describe()} if identified else {}),
                    "eval_langs": [eval_lang],
                    "lm_eval_version": result["lm_eval_version"],
                    "settings": result["settings"],
                    "tasks": scored,
                }
            )
            log.info(
                "%s %s/%s: %s",
                run.text,
                task.task,
                eval_lang,
                ", ".join(f"{k}={v['metrics']}" for k, v in scored.items()),
            )
    if backend is not None:
        backend.close()
    data = {"schema": RESULT_SCHEMA, "model": spec.label, "label": run.text, "lang": lang}
    data["runs"] = entries
    write_json(out_json, data)
    log.info("wrote %s (%d task x language entries)", out_json, len(entries))
    return data


def _masking(
    info: dict[str, Any],
    run: RunLabel,
    ns: NeuronSet,
    adapter: Any,
    split: tuple[int, int],
    count: CountRule,
    settings: EvaluationSettings,
) -> tuple[dict[str, Any], Any]:
    """The run record and mask factory of one task: the label's selection under the task's rule."""
    n1, n2 = split
    seed = run.seed or 0  # the label's seed (random conditions)
    selection = condition_selection(run.split_condition, ns, adapter.n_layers, n1, n2, seed, count)
    regions = layer_regions(adapter.n_layers, info["n1"], info["n2"])
    info = {**info, "neurons": neuron_counts(selection, regions), "count_rule": count.describe()}
    log.info(
        "%s: masking %d %s neurons of %s (%s)",
        run.text,
        info["neurons"]["total"],
        run.variant,
        info["mask_lang"],
        info["neurons"]["by_region"],
    )
    mode = "weights" if settings.backend == "vllm" else settings.mask_mode  # vLLM: no hooks
    return info, lambda: mask_neurons(adapter, selection, mode)
