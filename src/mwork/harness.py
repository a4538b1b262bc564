"""The lm-eval adapter: score an in-memory (possibly masked) model on mwork's benchmark tasks.

`evaluate_tasks` writes the concrete task YAMLs (mwork.lmeval_tasks), wraps the model object in lm-eval's
HFLM (batch size set there: simple_evaluate ignores it for model objects), enters the optional
intervention context (e.g. neuron masking hooks) around the whole lm-eval run, and writes one JSON
with the aggregate metrics and the per-item scores of every task (for bootstrap CIs). lm-eval's
answer cache is off by default: its key ignores the model, so masked and unmasked runs would
share answers; pass a distinct `cache_path` per condition if you want one.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lm_eval
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from mwork.atomic import write_json
from mwork.errors import MworkError
from mwork.finite import watch_logits
from mwork.lmeval_tasks import (
    BENCHMARKS,
    PARQUET_EXPORT,
    TaskSpec,
    hf_source,
    render_task_yaml,
    write_task_dir,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

SCHEMA = "mwork.eval/1"


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


SCRIPT_ERROR = "Dataset scripts are no longer supported"


def dataset_script_error(err: BaseException, specs: Iterable[TaskSpec]) -> MworkError | None:
    """The one-line error for datasets 5.x refusing a loading script, or None for other errors.

    Names the Hub datasets of `specs` and the two fixes: the Hub's parquet export as revision,
    or a local parquet/JSONL file.
    """
    if not (isinstance(err, RuntimeError) and SCRIPT_ERROR in str(err)):
        return None
    sources = (hf_source(s) for s in specs if s.source == "hf")
    hub = sorted({f"{d}@{r or 'main'}" for d, _, r in sources})
    found = str(err).split("found", 1)[-1].strip() or "a loading script"
    return MworkError(
        f"the datasets library refuses the loading script {found} of "
        f"{', '.join(hub) or 'a task dataset'}",
        f"set evaluation.tasks.<task>.hf_revision: {PARQUET_EXPORT} (the Hub's parquet export), "
        "point hf_dataset at a script-less mirror, or give a local .parquet/.jsonl file "
        "(evaluation.local)",
    )


def _number(value: Any) -> Any:
    """A JSON-safe plain number (numpy scalars unwrapped, NaN -> None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _prediction(sample: Mapping[str, Any]) -> str | None:
    """The raw generated text of a generate_until sample (None for multiple choice)."""
    try:
        first = sample["resps"][0][0]
    except (IndexError, KeyError, TypeError):
        return None
    return first if isinstance(first, str) else None


def collect_items(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-item scores from lm-eval's logged samples of one task.

    Returns:
        {"doc_id": [...], "id": [...], "prediction": [...] (raw generations, generation tasks
        only), "scores": {"<metric>,<filter>": [value per doc_id]}}, ordered by doc_id.
    """
    by_doc: dict[int, dict[str, Any]] = {}
    scores: dict[str, dict[int, Any]] = {}
    for sample in samples:
        doc_id = int(sample["doc_id"])
        if doc_id not in by_doc:
            doc = sample.get("doc") or {}
            by_doc[doc_id] = {"id": doc.get("id"), "prediction": _prediction(sample)}
        for metric in sample.get("metrics", []):
            scores.setdefault(f"{metric},{sample['filter']}", {})[doc_id] = _number(sample[metric])
    doc_ids = sorted(by_doc)
    items: dict[str, Any] = {"doc_id": doc_ids, "id": [by_doc[d]["id"] for d in doc_ids]}
    predictions = [by_doc[d]["prediction"] for d in doc_ids]
    if any(p is not None for p in predictions):
        items["prediction"] = predictions
    items["scores"] = {k: [v.get(d) for d in doc_ids] for k, v in sorted(scores.items())}
    return items


def _aggregates(task_result: Mapping[str, Any]) -> dict[str, Any]:
    """Metric values of one task from lm-eval's results (stderr and aliases dropped)."""
    return {
        key: _number(value)
        for key, value in task_result.items()
        if "," in key and "_stderr," not in key
    }


def evaluate_tasks(
    model: Any,
    tokenizer: Any,
    task_specs: Iterable[Mapping[str, Any] | TaskSpec],
    out_json: str | Path | None,
    batch_size: int = 8,
    limit: int | None = None,
    max_gen_toks: int | None = None,
    intervention: Callable[[], AbstractContextManager[Any]] | None = None,
    cache_path: str | None = None,
    hf_cache_dir: str | Path | None = None,
    max_length: int | None = None,
    apply_chat_template: bool = False,
    lm: Any = None,
) -> dict[str, Any]:
    """Run lm-eval (simple_evaluate) on `model` for each task spec and collect the results.

    Args:
        model: a loaded transformers causal LM (its device is used as is).
        tokenizer: its tokenizer.
        task_specs: mappings {task, lang, source, path, prompt_variant, n_samples, seed,
            hf_dataset, hf_name, max_gen_toks, max_article_chars} (see mwork.lmeval_tasks.TaskSpec).
        out_json: where to write the result JSON (atomically); None writes nothing.
        batch_size: HFLM batch size.
        limit: evaluate only the first `limit` items of every task (after sampling).
        max_gen_toks: override the generation length of every generation task.
        intervention: factory of a context manager entered around the whole lm-eval run,
            e.g. `lambda: mask_neurons(model, neurons)`.
        cache_path: lm-eval answer cache prefix; None (default) disables it. Use one per
            model x mask condition: the cache key ignores the model.
        hf_cache_dir: HF datasets cache directory for the task data (None: datasets default).
        max_length: HFLM context length (None: taken from the model/tokenizer). Longer prompts
            are cut from the left by lm-eval (the start of an XQuAD context, and the BOS, go).
        apply_chat_template: wrap prompts in the tokenizer's chat template. The paper used none
            (plain prompts, BOS added by the tokenizer), hence False by default.
        lm: an lm-eval model to use instead of wrapping `model` in HFLM (the vllm backend's
            `mwork.vllm_backend.lm.VllmLM`; batch_size and max_length are then its own).

    Returns:
        The JSON content: {"schema", "lm_eval_version", "settings", "tasks": {name: {"spec",
        "primary_metric", "metrics", "n", "items", "task_yaml"}}}.

    Raises:
        MworkError: bad task specs, or CUDA out of memory (with a smaller batch size to try).
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise MworkError(f"limit must be a positive integer or None, got {limit!r}")
    with tempfile.TemporaryDirectory(prefix="mwork_tasks_") as run_dir:
        specs = write_task_dir(task_specs, run_dir, cache_dir=hf_cache_dir)
        lm_kwargs: dict[str, Any] = {"batch_size": batch_size}
        if max_length is not None:
            lm_kwargs["max_length"] = max_length
        backend = "hf" if lm is None else getattr(lm, "mwork_backend", type(lm).__name__)
        if lm is None:
            lm = HFLM(pretrained=model, tokenizer=tokenizer, **lm_kwargs)
        manager = TaskManager(include_path=run_dir, include_defaults=False)
        gen_kwargs = {"max_gen_toks": max_gen_toks} if max_gen_toks else None
        guard = intervention() if intervention is not None else contextlib.nullcontext()
        logits = (  # NaN logits still score 0/1 per item (mwork.finite)
            watch_logits(model, ", ".join(specs))
            if isinstance(model, torch.nn.Module)
            else contextlib.nullcontext()
        )
        try:
            with guard, logits:
                res = simple_evaluate(
                    model=lm,
                    tasks=list(specs),
                    task_manager=manager,
                    limit=limit,
                    num_fewshot=None,
                    gen_kwargs=gen_kwargs,
                    log_samples=True,
                    bootstrap_iters=0,
                    use_cache=cache_path,
                    apply_chat_template=apply_chat_template,
                )
        except Exception as err:
            script = dataset_script_error(err, specs.values())
            if script is not None:
                raise script from err
            if _is_oom(err):
                raise MworkError(
                    f"CUDA out of memory while evaluating {', '.join(specs)} "
                    f"with batch_size={batch_size}",
                    f"rerun with a smaller batch size (e.g. {max(1, batch_size // 2)})",
                ) from err
            raise
    if res is None:  # non-zero ranks of a distributed run
        return {}
    tasks: dict[str, Any] = {}
    for name, spec in specs.items():
        items = collect_items(res["samples"].get(name, []))
        tasks[name] = {
            "spec": spec.to_dict(),
            "primary_metric": BENCHMARKS[spec.task].primary_metric,
            "metrics": _aggregates(res["results"].get(name, {})),
            "n": len(items["doc_id"]),
            "items": items,
            "task_yaml": render_task_yaml(spec),
        }
    result = {
        "schema": SCHEMA,
        "lm_eval_version": lm_eval.__version__,
        "settings": {
            "batch_size": batch_size,
            "limit": limit,
            "max_gen_toks": max_gen_toks,
            "intervention": intervention is not None,
            "cache": cache_path is not None,
            "chat_template": apply_chat_template,
            "backend": backend,
        },
        "tasks": tasks,
    }
    if out_json is not None:
        write_json(out_json, result)
    return result
