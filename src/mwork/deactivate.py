"""Deactivation runs (paper §3, Tables 1-5, 11-17): score tasks with one language's neurons masked.

One run = (model, condition label, mask language L, task specs). The model is loaded once, L's
language-specific neurons are turned into the condition's selection (`mwork.conditions`), and
every task spec (English and L, paper digest §4.1 "En-D" and "L-D") is scored inside
`mask_neurons` in a single lm-eval call. The baseline is the label `none` with mask language
`none` (no neuron file, no hooks).

Run labels (the `{condition}` segment of the workflow's result paths):

    {condition}[-n1_{N1}][-n2_{N2}][.{variant}][-s{seed}]

    D_U, D_S_attn, Dbar_S_attn      canonical condition names (`mwork.conditions.CONDITIONS`)
    D_U-n1_6, D_G-n2_3              layer-split overrides of the N1/N2 sweep (Tables 12-13)
    Dbar_S_attn.minus-en            App.-E neuron-set variant (N_L minus N_en; minus-shared)
    R_U-s0                          random condition with its sampling seed

`table_condition` drops the seed (tables average over seeds) and keeps the variant.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mwork.errors import MworkError

log = logging.getLogger(__name__)

SCHEMA = "mwork.deactivation/1"
BASELINE = "none"
VARIANTS: tuple[str, ...] = ("all", "minus-en", "minus-shared")
_LABEL = re.compile(r"^(?P<cond>.+?)(?:\.(?P<variant>minus-en|minus-shared))?(?:-s(?P<seed>\d+))?$")


@dataclass(frozen=True)
class RunLabel:
    """A parsed run label.

    Attributes:
        condition: condition label with any N1/N2 overrides (e.g. "D_U-n1_6"), or "none".
        variant: neuron-set variant, "all", "minus-en" or "minus-shared".
        seed: random-set seed (random conditions), else None.
    """

    condition: str
    variant: str = "all"
    seed: int | None = None

    @property
    def table_condition(self) -> str:
        """The `condition` column of the score table: the label without the seed."""
        return self.condition + ("" if self.variant == "all" else f".{self.variant}")

    @property
    def text(self) -> str:
        """The label as written in result paths."""
        return self.table_condition + ("" if self.seed is None else f"-s{self.seed}")


def parse_run_label(label: str, seed: int | None = None) -> RunLabel:
    """Parse and check a run label; `seed` is used for a random condition whose label has none.

    Raises:
        MworkError: unknown condition, a seed on a non-random condition, or a variant on `none`.
    """
    from mwork.conditions import condition_label, parse_condition

    m = _LABEL.match(label.strip())
    if m is None:
        raise MworkError(f"empty run label {label!r}", "use e.g. D_U, R_all-s0, Dbar_S_attn.minus-en")
    cond, n1, n2 = parse_condition(m.group("cond"))
    variant = m.group("variant") or "all"
    if cond is None:
        if variant != "all" or m.group("seed") or n1 is not None or n2 is not None:
            raise MworkError(f"the baseline label {label!r} takes no variant, seed or layer split", "use 'none'")
        return RunLabel(BASELINE)
    label_seed = int(m.group("seed")) if m.group("seed") else None
    if not cond.is_random and label_seed is not None:
        raise MworkError(f"run label {label!r} has a seed but {cond.name} is not random", "drop the -s suffix")
    if cond.is_random and label_seed is None:
        label_seed = 0 if seed is None else seed
    return RunLabel(condition_label(cond.name, n1, n2), variant, label_seed if cond.is_random else None)


def neuron_counts(selection: Mapping[str, Any], regions: Mapping[str, list[int]]) -> dict[str, Any]:
    """Deactivated neurons: total, per component, per region x component.

    Args:
        selection: component -> [n_layers, n_units] bool.
        regions: region -> 0-based layers (`mwork.conditions.layer_regions`).
    """
    by_comp = {c: int(s.sum()) for c, s in selection.items()}
    by_region = {r: {c: int(s[layers].sum()) for c, s in selection.items()} for r, layers in regions.items()}
    units = sum(int(s.numel()) for s in selection.values())
    total = sum(by_comp.values())
    return {"total": total, "share": total / units if units else 0.0, "units": units,
            "by_component": by_comp, "by_region": by_region}


def _split_outputs(
    out_json: str | Path | Mapping[str, str | Path], langs: Iterable[str]
) -> dict[str | None, Path]:
    """eval_lang -> output path (key None: one file for every language)."""
    langs = list(dict.fromkeys(langs))
    if isinstance(out_json, str | Path):
        return {None: Path(out_json)}
    outs = {k: Path(v) for k, v in out_json.items()}
    if set(outs) != set(langs):
        raise MworkError(f"outputs are given for languages {sorted(outs)} but tasks are in {sorted(langs)}",
                         "give one output per evaluated language")
    return outs


def _mask_factory(adapter: Any, selection: Mapping[str, Any], mode: str = "hooks") -> Callable[[], Any]:
    from mwork.mask import mask_neurons

    return lambda: mask_neurons(adapter, selection, mode)


def evaluate_condition(
    model_ref: str,
    neuron_file: str | Path | None,
    condition: str,
    mask_lang: str,
    task_specs: Iterable[Mapping[str, Any]],
    out_json: str | Path | Mapping[str, str | Path],
    n1: int,
    n2: int,
    seed: int | None = None,
    batch_size: int = 8,
    limit: int | None = None,
    max_gen_toks: int | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    model_name: str | None = None,
    expect_layers: int | None = None,
    mask_mode: str = "weights",
) -> dict[str, Any]:
    """Load the model once, mask `mask_lang`'s neurons per `condition`, score every task spec.

    Args:
        model_ref: local model directory or hub id.
        neuron_file: `mask_lang`'s neuron file (variant file for `.minus-*` labels); None for "none".
        condition: run label (see module docstring), "none" for the unmasked baseline.
        mask_lang: language whose neurons are deactivated ("none" for the baseline).
        task_specs: `mwork.tasks.TaskSpec` mappings, typically English and `mask_lang`.
        out_json: one path for all tasks, or {eval_lang: path} (one file per evaluated language).
        n1, n2: the model's understanding / generation layer counts (labels may override).
        seed: random-set seed for a random label without `-s{seed}` (default 0).
        batch_size, limit, max_gen_toks: passed to `mwork.evaluate.evaluate_tasks`.
        dtype, device, trust_remote_code: passed to `mwork.modeling.load_model`.
        model_name: model alias written into the JSON (default `model_ref`).
        expect_layers: the config's layer count, checked against the model.

    Returns:
        {eval_lang or None: JSON content} of the files written. Each JSON holds the run
        (model, condition, label, variant, seed, mask_lang, eval_langs, n1, n2, neuron counts) and
        `mwork.evaluate.evaluate_tasks`' lm_eval_version, settings and tasks.

    Raises:
        MworkError: bad label, neuron file of another model/language/variant, or layer mismatch.
    """
    from mwork.conditions import condition_selection, layer_regions, parse_condition
    from mwork.evaluate import evaluate_tasks, write_json_atomic
    from mwork.modeling import load_model, model_fingerprint
    from mwork.neuronset import load_neuron_set
    from mwork.tasks import TaskSpec

    run = parse_run_label(condition, seed)
    specs = [TaskSpec.from_config(s) for s in task_specs]
    if not specs:
        raise MworkError("no task specs given", "list at least one {task, lang}")
    outs = _split_outputs(out_json, (s.lang for s in specs))
    baseline = run.condition == BASELINE
    if baseline != (mask_lang == BASELINE) or (not baseline and neuron_file is None):
        raise MworkError(f"condition {condition!r} with mask language {mask_lang!r}",
                         "the baseline is condition 'none' with mask_lang 'none'; other conditions need a neuron file")
    if not baseline:  # cheap checks before paying for the model load
        meta = load_neuron_set(neuron_file).meta
        file_lang, file_variant = meta.get("language"), meta.get("variant", "all")
        if file_lang != mask_lang or file_variant != run.variant:
            raise MworkError(f"neuron file {neuron_file} holds {file_lang}/{file_variant} neurons, "
                             f"but the run masks {mask_lang}/{run.variant}", "pass the matching neuron file")
    model, tokenizer, adapter = load_model(model_ref, dtype, device, trust_remote_code)
    if expect_layers is not None and expect_layers != adapter.n_layers:
        raise MworkError(f"config says {model_name or model_ref} has {expect_layers} layers but the model has "
                         f"{adapter.n_layers}", "fix models.<alias>.n_layers in the config")
    fingerprint = model_fingerprint(model)
    _, o1, o2 = parse_condition(run.condition)
    eff_n1, eff_n2 = (n1 if o1 is None else o1), (n2 if o2 is None else o2)
    run_info: dict[str, Any] = {
        "schema": SCHEMA, "model": model_name or model_ref, "model_ref": model_ref,
        "model_fingerprint": fingerprint, "condition": run.table_condition, "label": run.text,
        "variant": run.variant, "seed": run.seed, "mask_lang": mask_lang, "n_layers": adapter.n_layers,
        "n1": eff_n1, "n2": eff_n2, "neuron_file": None if neuron_file is None else str(neuron_file),
    }
    intervention = None
    if not baseline:
        ns = load_neuron_set(neuron_file, expect_fingerprint=fingerprint)
        selection = condition_selection(run.condition, ns, adapter.n_layers, n1, n2, run.seed or 0)
        run_info["neurons"] = neuron_counts(selection, layer_regions(adapter.n_layers, eff_n1, eff_n2))
        intervention = _mask_factory(adapter, selection, mask_mode)
        log.info("%s: masking %d %s neurons of %s (%s)", run.text, run_info["neurons"]["total"],
                 run.variant, mask_lang, run_info["neurons"]["by_region"])
    result = evaluate_tasks(model, tokenizer, specs, None, batch_size=batch_size, limit=limit,
                            max_gen_toks=max_gen_toks, intervention=intervention)
    written: dict[str | None, dict[str, Any]] = {}
    for lang, path in outs.items():
        tasks = {k: v for k, v in result["tasks"].items() if lang is None or v["spec"]["lang"] == lang}
        eval_langs = sorted({v["spec"]["lang"] for v in tasks.values()})
        data = {**run_info, "eval_langs": eval_langs, "lm_eval_version": result["lm_eval_version"],
                "settings": result["settings"], "tasks": tasks}
        write_json_atomic(data, path)
        written[lang] = data
        log.info("wrote %s (%s)", path, ", ".join(f"{k}={v['metrics']}" for k, v in tasks.items()))
    return written
