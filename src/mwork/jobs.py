"""Job entries of rules that build typed settings: plain (JSON) values in, settings built, one call.

The scripts of those rules hand one of these to `mwork.worker.run_job` (by name, as
"mwork.jobs:<function>"), which runs it in the warm worker on local runs and in-process
elsewhere; the arguments are exactly the rule's params, inputs and outputs. Rules whose package
function takes plain values already (merging shards, figures, ...) name that function directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mwork.detect import detect_to_file
from mwork.evaluate import evaluate_run
from mwork.finetune.train import FinetuneInputs, FinetuneSettings, finetune_to_file
from mwork.lape import record_to_file, select_to_files
from mwork.lens import lens_to_file
from mwork.perplexity import deactivation_ppl, write_ppl_tables
from mwork.settings import (
    DetectionSettings,
    EvaluationSettings,
    LapeSettings,
    LensSettings,
    ModelSpec,
    PerplexitySettings,
    TableSettings,
)
from mwork.tables import EnhancementSettings, make_tables

Json = Mapping[str, Any]
log = logging.getLogger(__name__)


def detect(
    model: Json, corpus: str, lang: str, out: str, settings: Json, shard: Sequence[int]
) -> None:
    """rules/detect.smk detect_neurons: PLND for one (model, language, document shard)."""
    detect_to_file(
        ModelSpec.from_mapping(model),
        corpus,
        lang,
        out,
        DetectionSettings.from_mapping(settings),
        shard=(int(shard[0]), int(shard[1])),
    )


def record(
    model: Json, corpus: str, lang: str, out: str, settings: Json, shard: Sequence[int]
) -> None:
    """rules/detect.smk record_activations: LAPE activation counts of one shard."""
    record_to_file(
        ModelSpec.from_mapping(model),
        corpus,
        lang,
        out,
        DetectionSettings.from_mapping(settings),
        shard=(int(shard[0]), int(shard[1])),
    )


def evaluate(
    model: Json,
    label: str,
    mask_lang: str,
    neuron_file: str | None,
    task_specs: list[Json],
    outputs: Mapping[str, str],
    settings: Json,
) -> None:
    """rules/evaluate.smk evaluate_baseline / evaluate_condition."""
    evaluate_run(
        ModelSpec.from_mapping(model),
        label,
        mask_lang,
        neuron_file,
        task_specs,
        outputs,
        EvaluationSettings.from_mapping(settings),
    )


def perplexity(
    model: Json,
    neurons: Mapping[str, str],
    heldout: Mapping[str, str],
    settings: Json,
    detector: str,
    table: str,
    summary: str,
) -> None:
    """rules/perplexity.smk measure_deactivation_ppl(_lape)."""
    long = deactivation_ppl(
        ModelSpec.from_mapping(model),
        neurons,
        heldout,
        PerplexitySettings.from_mapping(settings),
        detector=detector,
    )
    write_ppl_tables(long, table, summary, detector=detector)
    log.info("wrote %s and %s", table, summary)


def lens(model: Json, out: str, candidates: list[str], variants: list[str], settings: Json) -> None:
    """rules/lens.smk run_language_lens."""
    lens_to_file(
        ModelSpec.from_mapping(model),
        out,
        candidates,
        variants,
        LensSettings.from_mapping(settings),
    )
    log.info("wrote %s", out)


def finetune(
    model: Json,
    docs: str,
    out: str,
    language: str,
    neurons: str | None,
    n_docs: int,
    data_seed: int,
    log: str,
    settings: Json,
) -> None:
    """rules/finetune.smk finetune_neurons."""
    inputs = FinetuneInputs(
        model=ModelSpec.from_mapping(model),
        docs=docs,
        out=out,
        language=language,
        neurons=neurons,
        n_docs=n_docs,
        data_seed=data_seed,
        log=log,
    )
    finetune_to_file(inputs, FinetuneSettings.from_mapping({**settings, "progress": False}))


def select_lape(
    shards: Mapping[str, Sequence[str]], outs: Mapping[str, str], settings: Json
) -> None:
    """rules/detect.smk select_lape_neurons: joint LAPE selection, one file per language."""
    select_to_files(shards, outs, LapeSettings.from_mapping(settings))


def tables(scores: str, out_dir: str, settings: Json, enhancement: Json | None) -> None:
    """rules/tables.smk make_tables: the paper's tables from the tidy scores of a model."""
    table = TableSettings.from_mapping(settings)
    make_tables(
        scores,
        out_dir,
        n_boot=table.n_boot,
        seed=table.boot_seed,
        enhancement=EnhancementSettings.from_mapping(enhancement),
    )
