"""Language-specific neuron detection: documents → per-document PLND → selection → NeuronSet.

Per document, layer and component a unit is *selected* if it is among the top-k (the released
code's rank cut-off) or its importance is ≥ ε (the paper's Eq. 2 threshold). `doc_counts` counts
the documents that selected each unit; a neuron is language-specific if selected on every
document (or on ≥ min_fraction of them).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

import mwork
from mwork.adapters import COMPONENTS, ModelAdapter
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet, select_by_fraction
from mwork.plnd import IMPORTANCE_MODES, PLNDProbe

log = logging.getLogger(__name__)

# Released README defaults (Mistral-7B: 1000 of 4096 q dims, 2000 of 14336 FFN units).
REF_TOP_K = {"ffn": (2000, 14336), "attn": (1000, 4096)}


@dataclass(frozen=True)
class DetectSettings:
    """Detector settings (recorded in the neuron file's metadata).

    Attributes:
        importance: "paper" (Eq. 5/8 exact) or "released-code" (the official code's proxies).
        top_k_ffn / top_k_attn: per-document rank cut-off; None = proportional default.
            top_k_attn counts query dims; k/v (n_kv heads) get k·n_kv/n_heads.
        epsilon_ffn / epsilon_attn: absolute thresholds; when set they replace top-k.
        min_fraction: share of documents that must select a neuron (1.0 = every one, Eq. 2).
        max_tokens: documents are truncated to this many tokens.
    """

    importance: str = "paper"
    top_k_ffn: int | None = None
    top_k_attn: int | None = None
    epsilon_ffn: float | None = None
    epsilon_attn: float | None = None
    min_fraction: float = 1.0
    max_tokens: int = 512
    seed: int = 112

    def validate(self) -> None:
        if self.importance not in IMPORTANCE_MODES:
            raise MworkError(f"unknown importance '{self.importance}'", f"use one of {', '.join(IMPORTANCE_MODES)}")
        for name in ("top_k_ffn", "top_k_attn", "max_tokens"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise MworkError(f"{name} must be >= 1 (got {v})", "pass a positive integer")


def default_top_k(units: int, kind: str) -> int:
    """Released defaults, scaled down proportionally for models with fewer units."""
    base, ref = REF_TOP_K[kind]
    return max(1, min(base, round(units * base / ref)))


def selection_rule(adapter: ModelAdapter, s: DetectSettings) -> dict[str, tuple[str, float]]:
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
        if batches and len(batches[-1]) < batch_size and (
            window is None or lengths[i] - lengths[batches[-1][0]] < window
        ):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def detect_neurons(
    adapter: ModelAdapter,
    tokenizer,
    docs: list[str],
    settings: DetectSettings,
    batch_size: int = 8,
    meta: dict[str, str] | None = None,
    progress: bool = True,
) -> NeuronSet:
    """Run PLND over `docs` and return the language-specific neuron set.

    Args:
        adapter: adapter of the loaded model.
        tokenizer: its tokenizer (right padding is applied here).
        docs: the documents (already sampled/sharded).
        settings: detector settings.
        batch_size: documents per forward pass.
        meta: extra metadata (model, language, corpus_sha256, fingerprint, ...).
    """
    settings.validate()
    if not docs:
        raise MworkError("no documents to run detection on", "check the corpus and --n-docs")
    rule = selection_rule(adapter, settings)
    device = next(adapter.model.parameters()).device
    encoded = [tokenizer(t, truncation=True, max_length=settings.max_tokens)["input_ids"] for t in docs]
    encoded = [ids if ids else [tokenizer.eos_token_id or 0] for ids in encoded]
    lengths = [len(ids) for ids in encoded]
    windows = {adapter.sliding_window(i) for i in range(adapter.n_layers)} - {None}
    batches = make_batches(lengths, batch_size, min(windows) if windows else None)
    counts = {c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.int32, device=device)
              for c in COMPONENTS}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with PLNDProbe(adapter, COMPONENTS, settings.importance) as probe:
        for batch in tqdm(batches, desc="PLND", unit="batch", disable=not progress):
            width = max(lengths[i] for i in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = torch.tensor(encoded[i])
                mask[row, : lengths[i]] = 1
            scores = probe.run(ids.to(device), mask.to(device))
            for c in COMPONENTS:
                counts[c] += count_selected(scores[c], rule[c])
    counts = {c: t.cpu() for c, t in counts.items()}
    n_docs = len(docs)
    info = {
        "n_layers": str(adapter.n_layers),
        "units": json.dumps(adapter.unit_counts(), sort_keys=True),
        "importance": settings.importance,
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


def settings_dict(settings: DetectSettings) -> dict:
    """Settings as a plain dict (for logs)."""
    return asdict(settings)


def detect_to_file(
    model: str,
    corpus: str,
    lang: str,
    out: str,
    settings: DetectSettings,
    n_docs: int | None = 1000,
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "auto",
    shard: tuple[int, int] = (0, 1),
    trust_remote_code: bool = False,
    model_name: str | None = None,
    expect_layers: int | None = None,
) -> NeuronSet:
    """Load model + corpus, sample documents by seed, detect, write the neuron file atomically.

    `expect_layers` (the config's n_layers) is checked against the loaded model.
    """
    from mwork.corpus import file_sha256, read_corpus, sample_documents, shard_documents
    from mwork.languages import check_language
    from mwork.modeling import load_model, model_fingerprint
    from mwork.neuronset import save_neuron_set

    check_language(lang)
    settings.validate()
    docs = read_corpus(corpus)  # validate the corpus before paying for the model load
    docs = shard_documents(sample_documents(docs, n_docs, settings.seed), *shard)
    torch.manual_seed(settings.seed)
    hf_model, tokenizer, adapter = load_model(model, dtype, device, trust_remote_code)
    if expect_layers is not None and expect_layers != adapter.n_layers:
        raise MworkError(f"config says {model_name or model} has {expect_layers} layers but the model has "
                         f"{adapter.n_layers}", "fix models.<alias>.n_layers in the config")
    log.info("model %s (%s, %d layers, units %s); %d documents of %s; settings %s",
             model, adapter.family, adapter.n_layers, adapter.unit_counts(), len(docs), lang,
             settings_dict(settings))
    meta = {
        "model": model_name or model,
        "model_fingerprint": model_fingerprint(hf_model),
        "language": lang,
        "corpus_sha256": file_sha256(corpus),
    }
    if shard[1] > 1:
        meta["shard"] = f"{shard[0]}/{shard[1]}"
    ns = detect_neurons(adapter, tokenizer, docs, settings, batch_size, meta)
    save_neuron_set(ns, out)
    log.info("wrote %s: %d language-specific neurons (%.4f%% of %d)", out, ns.count(),
             100 * ns.count() / ns.total_units(), ns.total_units())
    return ns
