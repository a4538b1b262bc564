"""LAPE: language activation probability entropy (Tang et al., ACL 2024), a second detector.

Recording (per model, language, document shard; one forward pass per batch, the same document
sampling, sharding and length-sorted batching as PLND, `mwork.detect.padded_batches`): for every
layer i and FFN unit k, the number of (non-padding) tokens on which the activation after the
gate non-linearity is > 0 — act(W_gate x)_k, i.e. SiLU for Llama-style gated FFNs, GELU(W_up x)
for BLOOM (`ModelAdapter.ffn_activation`; the released `activation.py` counts the same
`over_zero`). The recording is a neuron-set file (`mwork.neuronset`, header `detector: lape`,
component `ffn` only) with `act_counts`, the token total `n_tokens`, `doc_counts` = documents on
which the unit fired at all, and an empty selection. Shards merge by adding counts.

Selection (joint over all languages, released `identify.py`):

    p[i,k,l]  = act_counts_l[i,k] / n_tokens_l                    activation probability
    q[i,k,:]  = p[i,k,:] / sum_l p[i,k,l]      (0 where the sum is 0)
    H[i,k]    = -sum_l q log q                                     LAPE score
    filter:   a neuron is a candidate only if some p[i,k,l] > the filter_rate quantile of all p
              (`kthvalue(round(N·filter_rate))` over every layer, unit and language)
    top:      the round(top_rate · n_layers · d_ffn) candidates with the lowest H (ties by
              flat index layer·d_ffn + k; the released code takes topk over all neurons, so
              filtered ones could fill the quota; here they never do)
    assign:   a selected neuron belongs to language l if p[i,k,l] > the activation_bar_ratio
              quantile of all p (a neuron can belong to several languages)

Defaults (settings `detection.lape`): filter_rate 0.95, activation_bar_ratio 0.95 (released code),
top_rate 0.01 (the paper's 1%; the released identify.py has 0.05).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import mwork
from mwork.adapters import ModelAdapter
from mwork.detect import language_documents, padded_batches
from mwork.devices import input_device
from mwork.errors import MworkError
from mwork.modeling import load_spec, model_fingerprint
from mwork.neuronset import (
    NeuronSet,
    load_neuron_set,
    merge_lape_recordings,
    parse_shard,
    save_neuron_set,
)
from mwork.settings import CorpusSettings, DetectionSettings, LapeSettings, ModelSpec

log = logging.getLogger(__name__)

DETECTOR = "lape"


class ActivationRecorder:
    """Forward hooks on every layer's FFN non-linearity counting activations > 0.

    Set `token_mask` ([b, l] bool, True = real token) before each forward pass.
    Attributes after the passes: `act_counts` [n_layers, d_ffn] int64 (tokens with activation
    > 0), `doc_counts` [n_layers, d_ffn] int32 (sequences where the unit fired at least once).
    """

    def __init__(self, adapter: ModelAdapter) -> None:
        self.adapter = adapter
        modules = [adapter.ffn_activation(i) for i in range(adapter.n_layers)]
        if len({id(m) for m in modules}) != len(modules):
            raise MworkError(
                f"{adapter.family}: the FFN activation module is shared between layers",
                "LAPE needs one activation module per layer (unsupported architecture)",
            )
        device = input_device(adapter.model)  # counts gather here from every layer's device
        self.modules = modules
        self.act_counts = torch.zeros(
            adapter.n_layers, adapter.d_ffn, dtype=torch.int64, device=device
        )
        self.doc_counts = torch.zeros(
            adapter.n_layers, adapter.d_ffn, dtype=torch.int32, device=device
        )
        self.nonfinite = torch.zeros(adapter.n_layers, dtype=torch.bool, device=device)
        self.token_mask: torch.Tensor | None = None
        self._handles: list = []

    def _hook(self, layer: int):
        def hook(_module, _inputs, output):
            mask = self.token_mask.to(output.device)[..., None]  # the layer's device (split)
            fired = (output > 0) & mask  # [b, l, d_ffn]
            dev = self.act_counts.device
            self.act_counts[layer] += fired.sum(dim=(0, 1)).to(dev)
            self.doc_counts[layer] += fired.any(dim=1).sum(dim=0).to(dev, torch.int32)
            # NaN > 0 is False: a NaN activation would silently count as "not fired"
            self.nonfinite[layer] |= (~torch.isfinite(output) & mask).any().to(dev)

        return hook

    def __enter__(self) -> ActivationRecorder:
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@torch.inference_mode()
def record_activations(
    adapter: ModelAdapter,
    tokenizer,
    docs: list[str],
    settings: DetectionSettings,
    meta: dict[str, str] | None = None,
    progress: bool = True,
) -> NeuronSet:
    """Count FFN activations > 0 over `docs` (one forward pass per batch).

    Returns:
        A LAPE recording: NeuronSet with component ffn, act_counts [n_layers, d_ffn] int64,
        doc_counts [n_layers, d_ffn] int32, an empty selection; meta n_docs, n_tokens.
    """
    if not docs:
        raise MworkError("no documents to record activations on", "check the corpus and --n-docs")
    device = input_device(adapter.model)
    batches, n_tokens = padded_batches(adapter, tokenizer, docs, settings)
    with ActivationRecorder(adapter) as rec:
        for b, (ids, mask) in enumerate(
            tqdm(batches, desc="LAPE", unit="batch", disable=not progress)
        ):
            rec.token_mask = mask.to(device).bool()
            adapter.model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            if bool(rec.nonfinite.any()):  # one sync per batch
                raise MworkError(
                    f"LAPE activations of ffn in layer {int(rec.nonfinite.nonzero()[0])} are "
                    f"non-finite in batch {b}: the model produces NaN/Inf on this input",
                    "check the weights, or load the model in float32 (float16 overflows)",
                )
    act, docc = rec.act_counts.cpu().numpy(), rec.doc_counts.cpu().numpy()  # NeuronSet: numpy
    info = {
        "detector": DETECTOR,
        "n_layers": str(adapter.n_layers),
        "units": json.dumps({"ffn": adapter.d_ffn}),
        "importance": DETECTOR,
        "selection": "recording",
        "n_docs": str(len(docs)),
        "n_tokens": str(n_tokens),
        "max_tokens": str(settings.max_tokens),
        "seed": str(settings.seed),
        "min_fraction": "1.0",
        "variant": "all",
        "mwork_version": mwork.__version__,
        **(meta or {}),
    }
    empty = {"ffn": np.zeros((adapter.n_layers, adapter.d_ffn), dtype=bool)}
    return NeuronSet(empty, {"ffn": docc}, info, act_counts={"ffn": act})


def record_to_file(
    spec: ModelSpec,
    corpus: str | Path,
    lang: str,
    out: str | Path,
    settings: DetectionSettings,
    shard: tuple[int, int] = (0, 1),
    device: str = "auto",
    pool: CorpusSettings | None = None,
) -> NeuronSet:
    """Load model + corpus, sample and shard documents as PLND does, record, write atomically.

    `pool`: the corpus stage's filters applied to a raw `corpus` (`mwork lape record`), as
    `mwork.detect.detect_to_file`; None: `corpus` is the workflow's pool file.
    """
    return record_to_files(spec, {lang: corpus}, {lang: out}, settings, shard, device, pool)[lang]


def record_to_files(
    spec: ModelSpec,
    corpora: Mapping[str, str | Path],
    outs: Mapping[str, str | Path],
    settings: DetectionSettings,
    shard: tuple[int, int] = (0, 1),
    device: str = "auto",
    pool: CorpusSettings | None = None,
) -> dict[str, NeuronSet]:
    """`record_to_file` for several languages in one model load (`detection.group_languages`):
    each language's recording is byte-identical to its own run (the hooks are removed after
    each language; recording draws no random numbers). Corpora are read before the load."""
    docs, shas = language_documents(corpora, outs, settings, shard, pool)  # before the model load
    model, tokenizer, adapter = load_spec(spec, device)
    fingerprint = model_fingerprint(model)
    recs = {}
    for lang in corpora:
        meta = {
            "model": spec.label,
            "model_fingerprint": fingerprint,
            "language": lang,
            "corpus_sha256": shas[lang],
        }
        if shard[1] > 1:
            meta["shard"] = f"{shard[0]}/{shard[1]}"
        rec = record_activations(adapter, tokenizer, docs[lang], settings, meta)
        save_neuron_set(rec, outs[lang])
        n_tokens = rec.meta["n_tokens"]
        log.info(
            "wrote %s: %d documents, %s tokens of %s", outs[lang], len(docs[lang]), n_tokens, lang
        )
        recs[lang] = rec
    return recs


def merge_recordings(parts: Sequence[NeuronSet]) -> NeuronSet:
    """Merge the document shards of one recording: add act_counts, doc_counts, n_docs, n_tokens
    (`mwork.neuronset.algebra.merge_lape_recordings`, torch-free, also `mwork neurons merge`)."""
    return merge_lape_recordings(list(parts))


def activation_probs(recordings: Mapping[str, NeuronSet]) -> torch.Tensor:
    """[n_layers, d_ffn, n_langs] float64 activation probabilities, languages in mapping order."""
    return torch.stack(
        [
            torch.from_numpy(r.act_counts["ffn"]).double() / max(1, int(r.meta["n_tokens"]))
            for r in recordings.values()
        ],
        dim=-1,
    )


def _quantile_value(flat: torch.Tensor, rate: float) -> float:
    """The released code's `kthvalue(round(N·rate))` (1-based k, clamped to 1..N)."""
    k = min(max(1, round(flat.numel() * rate)), flat.numel())
    return float(flat.kthvalue(k).values)


def lape_entropy(probs: torch.Tensor) -> torch.Tensor:
    """[n_layers, d_ffn] entropy of the language-normalised probabilities (0·log 0 = 0)."""
    norm = probs / probs.sum(dim=-1, keepdim=True)
    norm = torch.nan_to_num(norm, nan=0.0)
    logs = torch.where(norm > 0, norm.log(), torch.zeros_like(norm))
    return -(norm * logs).sum(dim=-1)


def lape_select(probs: torch.Tensor, settings: LapeSettings) -> torch.Tensor:
    """LAPE's joint selection.

    Args:
        probs: [n_layers, d_ffn, n_langs] activation probabilities.
        settings: filter_rate, top_rate, activation_bar_ratio.

    Returns:
        [n_langs, n_layers, d_ffn] bool, the language-specific neurons of each language.
    """
    settings.validate()
    n_layers, d_ffn, n_langs = probs.shape
    flat = probs.flatten()
    entropy = lape_entropy(probs).flatten()  # [n_layers * d_ffn]
    filter_value = _quantile_value(flat, settings.filter_rate)
    candidate = (probs > filter_value).any(dim=-1).flatten()
    keep = round(entropy.numel() * settings.top_rate)
    if keep == 0 or bool(flat.min() == flat.max()):  # every language's set would be empty
        why = (
            f"top_rate {settings.top_rate:g} keeps round({entropy.numel()} x "
            f"{settings.top_rate:g}) = 0 of the model's FFN neurons"
            if keep == 0
            else f"the recordings are constant (every activation probability is {float(flat[0]):g})"
        )
        raise MworkError(
            f"LAPE selection: {why}; every language's set would be empty",
            "raise detection.lape.top_rate / lower filter_rate, or check the recordings",
        )
    quota = min(keep, int(candidate.sum()))
    cand_idx = torch.nonzero(candidate).flatten()  # ascending flat index
    order = torch.sort(entropy[cand_idx], stable=True).indices  # ties: lower flat index first
    chosen = cand_idx[order[:quota]]
    bar = _quantile_value(flat, settings.activation_bar_ratio)
    out = torch.zeros(n_langs, n_layers * d_ffn, dtype=torch.bool)
    for lang in range(n_langs):
        member = probs.reshape(-1, n_langs)[chosen, lang] > bar
        out[lang, chosen[member]] = True
    if not bool(out.any()):  # data-dependent (a small model saturates): said, not refused
        why = (
            f"no activation probability exceeds the filter_rate {settings.filter_rate:g} quantile"
            if quota == 0
            else f"none of the {quota} chosen neurons exceeds the activation_bar_ratio "
            f"{settings.activation_bar_ratio:g} quantile in any language"
        )
        log.warning(
            "LAPE selection: %s; every language's set is empty (lower "
            "detection.lape.filter_rate / activation_bar_ratio or raise top_rate)",
            why,
        )
    return out.reshape(n_langs, n_layers, d_ffn)


def select_lape(
    recordings: Mapping[str, NeuronSet], settings: LapeSettings
) -> dict[str, NeuronSet]:
    """One LAPE neuron set per language (joint selection over every language of `recordings`).

    The sets keep the language's recording (act_counts, doc_counts, n_docs, n_tokens) and record
    the settings and the joint languages in the header.
    """
    if len(recordings) < 2:
        raise MworkError(
            f"LAPE selects jointly over languages but got only {len(recordings)}",
            "record at least two languages",
        )
    ref = next(iter(recordings.values()))
    for lang, r in recordings.items():
        if (
            r.meta.get("model_fingerprint") != ref.meta.get("model_fingerprint")
            or r.units != ref.units
        ):
            raise MworkError(
                f"LAPE recording of {lang} comes from another model",
                "record every language on the same model",
            )
    sel = lape_select(activation_probs(recordings), settings)
    rule = {
        "filter_rate": settings.filter_rate,
        "top_rate": settings.top_rate,
        "activation_bar_ratio": settings.activation_bar_ratio,
        "languages": list(recordings),
    }
    out = {}
    for j, (lang, r) in enumerate(recordings.items()):
        meta = {**r.meta, "selection": json.dumps(rule, sort_keys=True)}
        out[lang] = NeuronSet({"ffn": sel[j].numpy()}, r.doc_counts, meta, act_counts=r.act_counts)
    return out


def select_to_files(
    shards: Mapping[str, Sequence[str | Path]],
    outs: Mapping[str, str | Path],
    settings: LapeSettings,
) -> dict[str, NeuronSet]:
    """Merge each language's recording shards, select jointly, write one neuron file per language."""
    if set(shards) != set(outs):
        raise MworkError(
            f"recordings for {sorted(shards)} but outputs for {sorted(outs)}",
            "give one output per recorded language",
        )
    settings.validate()
    recs = {}
    for lang, files in shards.items():
        parts = [load_neuron_set(p) for p in files]
        for p in parts:
            if "shard" in p.meta:
                parse_shard(p.meta["shard"])
        recs[lang] = merge_recordings(parts)
    sets = select_lape(recs, settings)
    for lang, ns in sets.items():
        save_neuron_set(ns, outs[lang])
        log.info("LAPE %s: %d FFN neurons", lang, ns.count())
    return sets
