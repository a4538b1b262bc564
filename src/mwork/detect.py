"""Language-specific neuron detection: documents → per-document PLND → selection → NeuronSet.

Per document, layer and component a unit is *selected* if it is among the top-k (the released
code's rank cut-off) or its importance is ≥ ε (the paper's Eq. 2 threshold). `doc_counts` counts
the documents that selected each unit; a neuron is language-specific if selected on every
document (or on ≥ min_fraction of them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path

import torch
from tqdm import tqdm

import mwork
from mwork.adapters import COMPONENTS, ModelAdapter
from mwork.corpus import (
    file_sha256,
    pool_from_file,
    read_corpus,
    sample_documents,
    shard_documents,
)
from mwork.devices import input_device
from mwork.errors import MworkError
from mwork.finite import check_scores
from mwork.languages import check_language
from mwork.modeling import (
    config_shape,
    load_spec,
    model_fingerprint,
    read_model_config,
    resolve_device,
)
from mwork.neuronset import (
    NeuronSet,
    save_neuron_set,
    select_by_fraction,
)
from mwork.plnd import PLNDProbe, qk_kernel_used, work_dtype
from mwork.settings import CorpusSettings, DetectionSettings, ModelSpec, schema_default

log = logging.getLogger(__name__)

# Released README defaults (Mistral-7B: 1000 of 4096 q dims, 2000 of 14336 FFN units).
REF_TOP_K = {"ffn": (2000, 14336), "attn": (1000, 4096)}


def default_top_k(units: int, kind: str) -> int:
    """Released defaults, scaled down proportionally for models with fewer units."""
    base, ref = REF_TOP_K[kind]
    return max(1, min(base, round(units * base / ref)))


def selection_rule(adapter: ModelAdapter, s: DetectionSettings) -> dict[str, tuple[str, float]]:
    """Per component: ("top_k", k) or ("epsilon", ε)."""
    q_units = adapter.n_units("attn_q")
    k_q = s.top_k_attn if s.top_k_attn is not None else default_top_k(q_units, "attn")
    rule: dict[str, tuple[str, float]] = {}
    for c in COMPONENTS:
        eps = s.epsilon_ffn if c == "ffn" else s.epsilon_attn
        if eps is not None:
            rule[c] = ("epsilon", float(eps))
        elif c == "ffn":
            k = s.top_k_ffn if s.top_k_ffn is not None else default_top_k(adapter.d_ffn, "ffn")
            rule[c] = ("top_k", min(k, adapter.d_ffn))
        else:
            k = k_q if c == "attn_q" else max(1, round(k_q * adapter.n_kv_heads / adapter.n_heads))
            rule[c] = ("top_k", min(k, adapter.n_units(c)))
    return rule


def count_selected(scores: torch.Tensor, rule: tuple[str, float]) -> torch.Tensor:
    """Documents selecting each unit in one batch.

    Args:
        scores: [b, n_layers, n_units] importance.
        rule: ("top_k", k) or ("epsilon", ε).

    Returns:
        [n_layers, n_units] int32
    """
    kind, value = rule
    if kind == "epsilon":
        return (scores >= value).sum(dim=0).to(torch.int32)
    top = torch.topk(scores, int(value), dim=-1).indices  # [b, n_layers, k]
    hits = torch.zeros_like(scores, dtype=torch.int32).scatter_(-1, top, 1)
    return hits.sum(dim=0, dtype=torch.int32)


def make_batches(lengths: list[int], batch_size: int, window: int | None) -> list[list[int]]:
    """Length-sorted batches (less padding); with a sliding window, a batch's length spread stays
    below the window, because HF returns NaN for rows that see no key."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if (
            batches
            and len(batches[-1]) < batch_size
            and (window is None or lengths[i] - lengths[batches[-1][0]] < window)
        ):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def padded_batches(
    adapter: ModelAdapter, tokenizer, docs: list[str], settings: DetectionSettings
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """Documents tokenised (truncated to `max_tokens`) into right-padded, length-sorted batches.

    Shared by PLND (`detect_neurons`) and LAPE (`mwork.lape.record_activations`).

    Returns:
        ([(input_ids [b, l] long, attention_mask [b, l] long)], total real tokens), on the CPU.
    """
    encoded = [
        tokenizer(t, truncation=True, max_length=settings.max_tokens)["input_ids"] for t in docs
    ]
    encoded = [ids if ids else [tokenizer.eos_token_id or 0] for ids in encoded]
    lengths = [len(ids) for ids in encoded]
    windows = {adapter.sliding_window(i) for i in range(adapter.n_layers)} - {None}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    for batch in make_batches(lengths, settings.batch_size, min(windows) if windows else None):
        width = max(lengths[i] for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, : lengths[i]] = torch.tensor(encoded[i])
            mask[row, : lengths[i]] = 1
        out.append((ids, mask))
    return out, sum(lengths)


def detect_neurons(
    adapter: ModelAdapter,
    tokenizer,
    docs: list[str],
    settings: DetectionSettings,
    meta: dict[str, str] | None = None,
    progress: bool = True,
) -> NeuronSet:
    """Run PLND over `docs` and return the language-specific neuron set.

    Args:
        adapter: adapter of the loaded model.
        tokenizer: its tokenizer (right padding is applied here).
        docs: the documents (already sampled/sharded).
        settings: detector settings (`batch_size` documents per forward pass).
        meta: extra metadata (model, language, corpus_sha256, fingerprint, ...).
    """
    settings.validate()
    if not docs:
        raise MworkError("no documents to run detection on", "check the corpus and --n-docs")
    rule = selection_rule(adapter, settings)
    device = input_device(adapter.model)  # where the batches go (a split model: its embedding's)
    batches, _ = padded_batches(adapter, tokenizer, docs, settings)
    counts = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.int32, device=device)
        for c in COMPONENTS
    }
    budget = None if settings.qk_budget_mb is None else int(settings.qk_budget_mb * 2**20)
    probe = PLNDProbe(
        adapter,
        COMPONENTS,
        settings.importance,
        qk_budget_bytes=budget,
        qk_scoring=settings.qk_scoring,
        qk_kernel=settings.qk_kernel,
    )
    with probe:
        for b, (ids, mask) in enumerate(
            tqdm(batches, desc="PLND", unit="batch", disable=not progress)
        ):
            scores = probe.run(ids.to(device), mask.to(device))
            check_scores(scores, "PLND importance", b)  # NaN ranks nothing (mwork.finite)
            for c in COMPONENTS:
                counts[c] += count_selected(scores[c], rule[c]).to(device)
    counts = {c: t.cpu().numpy() for c, t in counts.items()}  # NeuronSet holds numpy
    n_docs = len(docs)
    info = {
        "n_layers": str(adapter.n_layers),
        "units": json.dumps(adapter.unit_counts(), sort_keys=True),
        "unit_layout": json.dumps(adapter.unit_layout(), sort_keys=True),
        "importance": settings.importance,
        "qk_scoring": settings.qk_scoring,
        "qk_kernel": qk_kernel_used(
            settings.qk_kernel,
            device,
            work_dtype(next(adapter.model.parameters()).dtype),
            adapter.head_dim,
        ),
        "selection": json.dumps({c: list(r) for c, r in rule.items()}, sort_keys=True),
        "n_docs": str(n_docs),
        "max_tokens": str(settings.max_tokens),
        "seed": str(settings.seed),
        "min_fraction": repr(float(settings.min_fraction)),
        "variant": "all",
        "mwork_version": mwork.__version__,
        **(meta or {}),
    }
    return NeuronSet(select_by_fraction(counts, n_docs, settings.min_fraction), counts, info)


def settings_dict(settings: DetectionSettings) -> dict:
    """Settings as a plain dict (for logs)."""
    return asdict(settings)


def check_against_config(spec: ModelSpec, settings: DetectionSettings) -> None:
    """Settings that only make sense for a model of some size, checked from its config alone.

    A top-k of at least the component's unit count selects every unit on every document (100%
    "language-specific"); a layer count other than the config's is a wrong model or config.
    """
    n_layers, units = config_shape(read_model_config(spec.ref, spec.trust_remote_code))
    if spec.n_layers is not None and spec.n_layers != n_layers:
        raise MworkError(
            f"config says {spec.label} has {spec.n_layers} layers but the model has {n_layers}",
            "fix models.<alias>.n_layers in the config",
        )
    top_k = (
        ("top_k_ffn", "ffn", settings.top_k_ffn),
        ("top_k_attn", "attn_q", settings.top_k_attn),
    )
    for name, comp, k in top_k:
        if k is not None and k >= units[comp]:
            raise MworkError(
                f"{name}={k} is not below the model's {units[comp]} {comp} units per layer "
                "(every unit would be selected on every document)",
                f"use a {name} below {units[comp]} (or unset: the proportional default)",
            )


def corpus_documents(
    corpus: str | Path, lang: str, settings: DetectionSettings, pool: CorpusSettings | None
) -> tuple[list[str], str]:
    """(documents, corpus_sha256) of a pool file (`pool` None) or a raw file through the pool's
    filters; a warning when there are fewer than n_docs (detection runs on fewer)."""
    if pool is None:
        docs, sha = read_corpus(corpus), file_sha256(corpus)
    else:
        docs, sha = pool_from_file(corpus, pool)
    if len(docs) < settings.n_docs:
        log.warning(
            "corpus %s of %s has only %d documents but n_docs is %d: detection runs on %d "
            "(add documents or lower corpus.min_chars)",
            corpus,
            lang,
            len(docs),
            settings.n_docs,
            len(docs),
        )
    return docs, sha


def reproduce_command(
    spec: ModelSpec, lang: str, settings: DetectionSettings, shard: tuple[int, int]
) -> str:
    """The `mwork detect` line that reproduces a neuron file: every setting that differs from
    the schema's default is a flag (MODEL, CORPUS and OUT stand for the paths)."""
    flags = [f"mwork detect --model MODEL --corpus CORPUS --lang {lang} --out OUT"]
    defaults = DetectionSettings()
    for f in fields(DetectionSettings):
        value = getattr(settings, f.name)
        if value != getattr(defaults, f.name):
            flags.append(f"--{f.name.replace('_', '-')} {value}")
    if spec.dtype != schema_default("models/dtype"):
        flags.append(f"--dtype {spec.dtype}")
    if spec.name and spec.name != spec.ref:
        flags.append(f"--model-name {spec.name}")
    if shard[1] > 1:
        flags.append(f"--shard {shard[0]}/{shard[1]}")
    return " ".join(flags)


def detect_to_file(
    spec: ModelSpec,
    corpus: str | Path,
    lang: str,
    out: str | Path,
    settings: DetectionSettings,
    shard: tuple[int, int] = (0, 1),
    device: str = "auto",
    pool: CorpusSettings | None = None,
) -> NeuronSet:
    """Load model + corpus, sample documents by seed, detect, write the neuron file atomically.

    Args:
        spec: the model (its `n_layers`, when set, is checked against the loaded model).
        corpus: JSONL/Parquet corpus of `lang`.
        lang: language code.
        out: output neuron file (.safetensors).
        settings: detector settings (`n_docs` documents sampled by `seed`).
        shard: (i, n): score only document shard i of n (merged later by `merge_shards_to_file`).
        device: "auto", "cpu", "cuda", "cuda:1", ...
        pool: the corpus stage's filters, applied to `corpus` in memory (`mwork detect` on a
            raw file: the same documents and corpus_sha256 as the workflow's pool); None: the
            file is a pool already (the workflow's resources/corpus/{lang}.jsonl).
    """
    return detect_to_files(spec, {lang: corpus}, {lang: out}, settings, shard, device, pool)[lang]


def language_documents(
    corpora: Mapping[str, str | Path],
    outs: Mapping[str, object],
    settings: DetectionSettings,
    shard: tuple[int, int],
    pool: CorpusSettings | None,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The documents of each language's shard and its corpus SHA-256, read before any model load
    (PLND's `detect_to_files` and LAPE's `record_to_files`): at least one language, one output
    per corpus, each language known; the seeded sample of `settings.n_docs`, then the shard."""
    if not corpora or set(corpora) != set(outs):
        raise MworkError(
            f"corpora for {sorted(corpora)} but outputs for {sorted(outs)}",
            "give one corpus and one output per language (at least one)",
        )
    for lang in corpora:
        check_language(lang)
    docs: dict[str, list[str]] = {}
    shas: dict[str, str] = {}
    for lang, corpus in corpora.items():
        pool_docs, shas[lang] = corpus_documents(corpus, lang, settings, pool)
        docs[lang] = shard_documents(
            sample_documents(pool_docs, settings.n_docs, settings.seed), *shard
        )
    return docs, shas


def detect_to_files(
    spec: ModelSpec,
    corpora: Mapping[str, str | Path],
    outs: Mapping[str, str | Path],
    settings: DetectionSettings,
    shard: tuple[int, int] = (0, 1),
    device: str = "auto",
    pool: CorpusSettings | None = None,
) -> dict[str, NeuronSet]:
    """`detect_to_file` for several languages in one model load (`detection.group_languages`).

    Every language's file is byte-identical to its own `detect_to_file` run: the same documents,
    settings and header, and PLND draws no random numbers (the probe leaves the model as it
    found it). Every corpus is read and checked before the model load.

    Args:
        corpora: language -> corpus file (in this order).
        outs: language -> output neuron file (the same languages).
        Other arguments: as `detect_to_file`.
    """
    settings.validate()
    resolve_device(device)
    check_against_config(spec, settings)  # config.json only: settings vs the model's sizes
    docs, shas = language_documents(corpora, outs, settings, shard, pool)  # before the model load
    torch.manual_seed(settings.seed)
    hf_model, tokenizer, adapter = load_spec(spec, device)
    fingerprint = model_fingerprint(hf_model)
    sets = {}
    for lang in corpora:
        log.info(
            "model %s (%s, %d layers, units %s); %d documents of %s; settings %s",
            spec.ref,
            adapter.family,
            adapter.n_layers,
            adapter.unit_counts(),
            len(docs[lang]),
            lang,
            settings_dict(settings),
        )
        meta = {
            "model": spec.label,
            "model_fingerprint": fingerprint,
            "language": lang,
            "corpus_sha256": shas[lang],
            "reproduce": reproduce_command(spec, lang, settings, shard),
        }
        if shard[1] > 1:
            meta["shard"] = f"{shard[0]}/{shard[1]}"
        ns = detect_neurons(adapter, tokenizer, docs[lang], settings, meta)
        save_neuron_set(ns, outs[lang])
        log.info(
            "wrote %s: %d language-specific neurons (%.4f%% of %d)",
            outs[lang],
            ns.count(),
            100 * ns.count() / ns.total_units(),
            ns.total_units(),
        )
        sets[lang] = ns
    return sets
