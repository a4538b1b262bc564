"""Neuron-set algebra: merge document shards, re-select by document fraction, App. E variants
(subtract, intersection, derive_variant)."""

from __future__ import annotations

import re

import numpy as np

from mwork.errors import MworkError
from mwork.neuronset.core import NeuronSet, select_by_fraction
from mwork.neuronset.fileio import parse_shard

_MERGE_KEYS = (
    "model",
    "model_fingerprint",
    "language",
    "n_layers",
    "units",
    "importance",
    "qk_scoring",
    "selection",
    "max_tokens",
    "corpus_sha256",
    "seed",
    "min_fraction",
    "variant",
)


_LAPE_SAME = (
    "model",
    "model_fingerprint",
    "language",
    "n_layers",
    "units",
    "max_tokens",
    "corpus_sha256",
    "seed",
    "detector",
)


def merge_lape_recordings(parts: list[NeuronSet]) -> NeuronSet:
    """Merge the document shards of one LAPE recording (`mwork.lape`): add act_counts,
    doc_counts, n_docs and n_tokens. Selected LAPE sets and PLND files are refused."""
    if not parts:
        raise MworkError("no LAPE recordings to merge", "pass at least one shard")
    first = parts[0]
    for p in parts:
        if (
            p.meta.get("detector") != "lape"
            or "ffn" not in p.act_counts
            or p.meta.get("selection") != "recording"
        ):
            raise MworkError(
                "a file to merge is not a LAPE recording (a PLND file or a selected LAPE set)",
                "merge only the recording shards (results/{model}/lape/shards/)",
            )
        for k in _LAPE_SAME:
            if p.meta.get(k) != first.meta.get(k):
                raise MworkError(
                    f"cannot merge LAPE recordings that differ in '{k}' "
                    f"({first.meta.get(k)!r} vs {p.meta.get(k)!r})",
                    "merge only shards of one recording",
                )
    check_shard_set(list(parts))
    meta = {k: v for k, v in first.meta.items() if k not in ("shard", "format")}
    meta["n_docs"] = str(sum(p.n_docs for p in parts))
    meta["n_tokens"] = str(sum(int(p.meta["n_tokens"]) for p in parts))
    act = sum(p.act_counts["ffn"] for p in parts)
    docc = sum(p.doc_counts["ffn"].astype(np.int64) for p in parts).astype(np.int32)
    return NeuronSet(
        {"ffn": np.zeros_like(act, dtype=bool)}, {"ffn": docc}, meta, act_counts={"ffn": act}
    )


def check_shard_set(parts: list[NeuronSet]) -> None:
    """The parts must be every shard i/n of one detection run, each once."""
    markers = [p.meta.get("shard") for p in parts]
    if len(parts) == 1 and markers[0] is None:
        return  # one complete file: merging is the identity
    if any(m is None for m in markers):
        if all(m is None for m in markers):
            raise MworkError(
                f"{len(parts)} unsharded neuron files cannot be merged (same corpus and seed: "
                "the same "
                "documents would be counted more than once)",
                "merge the shards of one run (i/n markers)",
            )
        raise MworkError(
            "cannot merge an unsharded neuron file with shards",
            "merge only the shard files of one run",
        )
    parsed = [parse_shard(m) for m in markers]
    totals = sorted({n for _, n in parsed})
    if len(totals) > 1:
        raise MworkError(
            f"shards of different splits ({', '.join(f'of {n}' for n in totals)})",
            "merge the shards of one run",
        )
    n = totals[0]
    seen: dict[int, int] = {}
    for i, _ in parsed:
        if i in seen:
            raise MworkError(
                f"shard {i}/{n} is given twice (its documents would count double)",
                "pass each shard file once",
            )
        seen[i] = 1
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        raise MworkError(
            f"incomplete shard set: shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing",
            f"pass all {n} shards (a partial merge would look complete)",
        )
    sizes = [p.n_docs for p in parts]
    if max(sizes) - min(sizes) > 1:
        raise MworkError(
            f"shard document counts {sizes} differ by more than one (round-robin shards never do)",
            "re-create the shards with `mwork detect --shard`",
        )


def merge_neuron_sets(parts: list[NeuronSet]) -> NeuronSet:
    """Merge document shards: add doc_counts and n_docs, then re-apply the selection rule.

    The parts must be the complete shard set of one run (each shard i/n exactly once), so the
    merged file, which carries no shard marker, really covers every document.
    """
    if not parts:
        raise MworkError("no neuron files to merge", "pass at least one shard")
    if any(p.meta.get("detector") == "lape" for p in parts):  # act_counts, n_tokens: not PLND's
        return merge_lape_recordings(parts)
    first = parts[0]
    for p in parts:
        if p.meta.get("variant", "all") != "all":
            raise MworkError(
                f"cannot merge the {p.meta.get('variant')!r} variant",
                "merge the detection shards (variant all), then derive variants",
            )
    for p in parts[1:]:
        for k in _MERGE_KEYS:
            if p.meta.get(k) != first.meta.get(k):
                raise MworkError(
                    f"cannot merge neuron files that differ in '{k}' "
                    f"({first.meta.get(k)!r} vs {p.meta.get(k)!r})",
                    "merge only shards of one detection run",
                )
    check_shard_set(parts)
    counts = {
        c: sum(p.doc_counts[c].astype(np.int64) for p in parts).astype(np.int32)
        for c in first.doc_counts
    }
    n_docs = sum(p.n_docs for p in parts)
    meta = {k: v for k, v in first.meta.items() if k not in ("shard", "format")}
    meta["n_docs"] = str(n_docs)
    if "reproduce" in meta:  # the merged file is what one unsharded run writes
        meta["reproduce"] = re.sub(r" --shard \d+/\d+", "", meta["reproduce"])
    selected = select_by_fraction(counts, n_docs, float(meta.get("min_fraction", "1.0")))
    return NeuronSet(selected=selected, doc_counts=counts, meta=meta)


def reselect(ns: NeuronSet, min_fraction: float) -> NeuronSet:
    """`ns` re-selected with another document fraction (only a full set: a variant's removed
    neurons would come back)."""
    if ns.meta.get("detector") == "lape":
        raise MworkError(
            "the neuron file is a LAPE set (selected jointly over languages by entropy, not by a "
            "document fraction); --min-fraction does not apply to it",
            "re-run LAPE selection with other detection.lape settings",
        )
    variant = ns.meta.get("variant", "all")
    if variant != "all":
        raise MworkError(
            f"the neuron file is the {variant!r} variant; re-selecting it from doc_counts would "
            "put "
            "the removed neurons back",
            "re-select the full set (variant all), then derive the variant again",
        )
    sel = select_by_fraction(ns.doc_counts, ns.n_docs, min_fraction)
    return ns.with_selection(sel, min_fraction=repr(float(min_fraction)))


def subtract(ns: NeuronSet, other: dict[str, np.ndarray], variant: str) -> NeuronSet:
    """`ns` minus another selection (App. E: minus English, minus the all-language overlap)."""
    sel = {c: ns.selected[c] & ~other[c] for c in ns.selected}
    return ns.with_selection(sel, variant=variant)


def intersection(sets: list[NeuronSet]) -> dict[str, np.ndarray]:
    """Neurons selected in every set (component -> [n_layers, n_units] bool)."""
    out = {c: t.copy() for c, t in sets[0].selected.items()}
    for s in sets[1:]:
        for c in out:
            out[c] &= s.selected[c]
    return out


def derive_variant(
    ns: NeuronSet, others: list[NeuronSet], all_overlap: bool, variant: str | None = None
) -> NeuronSet:
    """App. E variants of `ns` (paper.md §5.4).

    all_overlap=False: N_L minus the union of `others` (e.g. minus English: others = [N_en]).
    all_overlap=True:  N_L minus (N_L ∩ every other set), the released MGSM script's set.
    """
    for x in (ns, *others):
        if x.meta.get("variant", "all") != "all" or "shard" in x.meta:
            what = (
                f"shard {x.meta['shard']}"
                if "shard" in x.meta
                else f"variant {x.meta.get('variant')!r}"
            )
            raise MworkError(
                f"the neuron file of {x.meta.get('language')} is a {what}",
                "derive variants from full (merged, variant all) neuron files",
            )
    for o in others:
        if (
            o.units != ns.units
            or o.n_layers != ns.n_layers
            or o.meta.get("model_fingerprint") != ns.meta.get("model_fingerprint")
        ):
            raise MworkError(
                f"neuron file of {o.meta.get('language')} comes from another model than "
                f"{ns.meta.get('language')}'s",
                "use neuron files detected on the same model",
            )
        if o.meta.get("language") is not None and o.meta.get("language") == ns.meta.get("language"):
            raise MworkError(
                f"cannot subtract {ns.meta.get('language')}'s own neurons from themselves",
                "pass the other languages' neuron files",
            )
    if all_overlap:
        remove = intersection([ns, *others])
        name = variant or "minus-shared"
    else:
        remove = {c: np.zeros_like(t) for c, t in ns.selected.items()}
        for o in others:
            for c in remove:
                remove[c] |= o.selected[c]
        name = variant or "minus-" + "-".join(o.meta.get("language", "x") for o in others)
    return subtract(ns, remove, name)
