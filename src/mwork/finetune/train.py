"""The fine-tuning stage's file entry: `finetune_to_file` (used by `mwork finetune train` and the
workflow's training jobs).

It validates the inputs and output paths before anything is loaded, reads and nested-samples the
documents (mwork.finetune.data), loads the neuron file and the base model, fine-tunes
(`mwork.finetune.run.finetune`) and writes the delta (mwork.finetune.delta) and an optional JSON
run log. Settings: mwork.finetune.settings; which neurons: mwork.finetune.neurons.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from mwork.atomic import atomic_write_text
from mwork.corpus import file_sha256, read_corpus
from mwork.errors import MworkError
from mwork.finetune.data import nested_sample
from mwork.finetune.delta import save_delta
from mwork.finetune.run import FinetuneResult, finetune
from mwork.finetune.settings import FinetuneSettings
from mwork.languages import check_language
from mwork.modeling import load_spec, model_fingerprint
from mwork.neuronset import load_neuron_set
from mwork.paths import check_output
from mwork.settings import ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneInputs:
    """Files of one `finetune_to_file` run.

    Attributes:
        model: the base model (`mwork.settings.ModelSpec`: ref, name, dtype, trust_remote_code,
            n_layers checked after loading).
        docs: document pool (JSONL with `text`).
        out: delta file to write.
        language: language of the documents (recorded).
        neurons: neuron file (required unless mode is full).
        n_docs: documents to train on, nested-sampled by `data_seed` (None = the whole pool).
        data_seed: document sampling seed.
        device: "auto", "cpu", "cuda", ...
        log: optional JSON run log (summary + timing) to write next to the delta.
    """

    model: ModelSpec
    docs: str
    out: str
    language: str
    neurons: str | None = None
    n_docs: int | None = None
    data_seed: int = 0
    device: str = "auto"
    log: str | None = None


def check_train_outputs(
    out: str | Path,
    log: str | Path | None,
    docs: str | Path,
    neurons: str | Path | None,
    model_dir: str | Path,
) -> None:
    """Refuse a delta (`out`) or log path over an input or inside the model directory.

    The checks of `mwork.paths.check_output` (same file through links, unwritable folder, ...);
    used by `mwork finetune train` and by the workflow's jobs before anything is loaded.
    """
    reads = [p for p in (docs, neurons) if p]
    check_output(out, inputs=reads, model_dirs=[model_dir])
    if log:
        if Path(log).resolve() == Path(out).resolve():
            raise MworkError(f"--log {log} is the --out path", "choose another --log path")
        check_output(log, inputs=reads, model_dirs=[model_dir], option="--log")


def finetune_to_file(inputs: FinetuneInputs, settings: FinetuneSettings) -> FinetuneResult:
    """Validate inputs, load model/documents/neurons, fine-tune, write the delta (+ log)."""
    settings.validate()
    check_language(inputs.language)
    check_train_outputs(inputs.out, inputs.log, inputs.docs, inputs.neurons, inputs.model.ref)
    pool = read_corpus(inputs.docs)  # validated before the model load
    n_docs = len(pool) if inputs.n_docs is None else inputs.n_docs  # 0 is an error, not all
    docs = nested_sample(pool, n_docs, inputs.data_seed)
    neurons = None
    prov = {
        "model": inputs.model.label,
        "language": inputs.language,
        "data_file": str(inputs.docs),
        "data_file_sha256": file_sha256(inputs.docs),
        "data_seed": str(inputs.data_seed),
    }
    if settings.mode != "full":
        if not inputs.neurons:
            raise MworkError(f"mode {settings.mode} needs a neuron file", "pass --neurons FILE")
        neurons = load_neuron_set(inputs.neurons)
        prov.update(
            neuron_file=str(inputs.neurons),
            neuron_sha256=file_sha256(inputs.neurons),
            neuron_language=neurons.meta.get("language", ""),
            neuron_variant=neurons.meta.get("variant", ""),
        )
        if neurons.meta.get("language") not in (None, inputs.language):
            log.warning(
                "training %s documents on %s's neurons",
                inputs.language,
                neurons.meta.get("language"),
            )
    model, tokenizer, adapter = load_spec(inputs.model, inputs.device)
    if neurons is not None and neurons.meta.get("model_fingerprint") != model_fingerprint(model):
        raise MworkError(
            f"neuron file {inputs.neurons} was detected on another model "
            f"({neurons.meta.get('model')}) than "
            f"{inputs.model.label}",
            "use neurons detected on this base model",
        )
    if settings.mode == "full" and next(model.parameters()).dtype in (
        torch.bfloat16,
        torch.float16,
    ):
        log.warning(
            "full fine-tuning of a %s model: updates of lr %.1e mostly vanish below its "
            "resolution; "
            "load it with dtype float32",
            next(model.parameters()).dtype,
            settings.lr,
        )
    result = finetune(adapter, tokenizer, docs, settings, neurons, prov)
    save_delta(result.delta, inputs.out)
    if inputs.log:
        atomic_write_text(
            inputs.log,
            json.dumps(
                {"summary": result.summary, "timing": result.timing}, indent=1, sort_keys=True
            )
            + "\n",
        )
    return result
