"""Which neurons a run masks: a condition's cells of a language's neurons, count rules, random sets.

The torch half of the deactivation conditions (the grammar, `Condition`, `RunLabel` and
`CountRule` are torch-free in `mwork.runlabel`). Random counterparts sample, per (layer,
component), uniformly without replacement from all units of that layer/component exactly as many
units as the LS selection has in the same cells. Each (layer, component) uses its own generator
seeded from (seed, layer, component), so the sets do not depend on iteration order. App.-E variants
(N_L minus English, minus the all-language overlap) are just other NeuronSet files; any selection
dict works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from mwork.components import COMPONENTS
from mwork.errors import MworkError
from mwork.neuronset import NeuronSet
from mwork.runlabel import (
    STRUCTURE_NAMES,
    STRUCTURES,
    Condition,
    CountRule,
    RunLabel,
    condition_label,
    layer_regions,
    ls_counterpart,
    parse_condition,
)


def _tensors(arrays: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """component -> tensor of a NeuronSet's numpy arrays (or tensors); no copy."""
    return {c: torch.as_tensor(t) for c, t in arrays.items()}


def cell_mask(condition: Condition, n_layers: int, n1: int, n2: int) -> dict[str, torch.Tensor]:
    """component -> [n_layers] bool, the layers where the condition deactivates that component."""
    regions = layer_regions(n_layers, n1, n2)
    out = {c: torch.zeros(n_layers, dtype=torch.bool) for c in COMPONENTS}
    for region, structure in condition.cells:
        for comp in STRUCTURES[structure]:
            out[comp][regions[region]] = True
    return out


def _stream_seed(seed: int, layer: int, component: str) -> int:
    """Stable seed for one (layer, component) stream; distinct for distinct inputs."""
    return (seed * 0x9E3779B1 + layer * 8 + COMPONENTS.index(component) + 1) % (2**63 - 1)


def random_matched(
    counts: Mapping[str, torch.Tensor], units: Mapping[str, int], seed: int
) -> dict[str, torch.Tensor]:
    """Uniform random units, `counts[c][layer]` of them per (layer, component), without replacement.

    Args:
        counts: component -> [n_layers] int, how many units to draw in each layer.
        units: component -> units per layer.
        seed: random seed (torch.Generator per (layer, component), see `_stream_seed`).

    Returns:
        component -> [n_layers, units[c]] bool.
    """
    out = {}
    for comp, cnt in counts.items():
        sel = torch.zeros(cnt.shape[0], units[comp], dtype=torch.bool)
        for layer, k in enumerate(cnt.tolist()):
            if k:
                g = torch.Generator().manual_seed(_stream_seed(seed, layer, comp))
                sel[layer, torch.randperm(units[comp], generator=g)[:k]] = True
        out[comp] = sel
    return out


def top_units(mask: torch.Tensor, doc_counts: torch.Tensor, k: int) -> torch.Tensor:
    """The `k` units of `mask` selected on the most documents, ties by lower index.

    Args:
        mask: [n_units] bool, candidate units.
        doc_counts: [n_units] int, documents that selected each unit.
        k: how many to keep (all when k >= the candidates).

    Returns:
        [n_units] bool, a subset of `mask` with min(k, mask.sum()) units.
    """
    idx = torch.nonzero(mask).flatten()  # ascending
    if k >= idx.numel():
        return mask.clone()
    order = torch.sort(-doc_counts[idx].to(torch.int64), stable=True).indices
    out = torch.zeros_like(mask)
    out[idx[order[:k]]] = True
    return out


def apportion(counts: list[int], target: int) -> list[int]:
    """Split `target` over cells proportionally to `counts` (largest remainder, exact integers).

    Remainders tie in cell order. Requires 0 <= target <= sum(counts); every quota <= its count.
    """
    total = sum(counts)
    if total == 0 or target >= total:
        return list(counts)
    quotas = [n * target // total for n in counts]
    rems = [n * target % total for n in counts]
    left = target - sum(quotas)
    for i in sorted(range(len(counts)), key=lambda i: (-rems[i], i))[:left]:
        quotas[i] += 1
    return quotas


def _ls_cells(
    cond: Condition, selected: Mapping[str, torch.Tensor], n_layers: int, n1: int, n2: int
):
    layers = cell_mask(cond, n_layers, n1, n2)
    return {c: s.bool() & layers[c][:, None] for c, s in selected.items()}


def _ls_of_label(label: str, selected, n_layers: int, n1: int, n2: int) -> dict[str, torch.Tensor]:
    """LS cells of a (peer) label: random -> its LS counterpart; variant/seed ignored."""
    run = RunLabel.parse(label)
    if run.is_baseline:
        return {c: torch.zeros_like(s, dtype=torch.bool) for c, s in selected.items()}
    e1, e2 = run.layer_split(n1, n2)
    return _ls_cells(ls_counterpart(run.spec), selected, n_layers, e1, e2)


def _apply_count(
    ls_part: dict[str, torch.Tensor],
    doc_counts: Mapping[str, torch.Tensor],
    rule: CountRule,
    peer_total: int | None,
) -> dict[str, torch.Tensor]:
    """Reduce an LS selection by `rule` (see CountRule); `peer_total` is T of the equal rule."""
    if rule.rule == "all":
        return ls_part
    out = {c: s.clone() for c, s in ls_part.items()}
    if rule.rule == "per_layer":
        for c, s in out.items():
            cap = rule.ffn_n if c == "ffn" else rule.attn_n
            if cap is None:
                continue
            for layer in range(s.shape[0]):
                out[c][layer] = top_units(s[layer], doc_counts[c][layer], cap)
        return out
    cells = [
        (layer, c)
        for layer in range(next(iter(out.values())).shape[0])
        for c in COMPONENTS
        if c in out
    ]
    counts = [int(out[c][layer].sum()) for layer, c in cells]
    quotas = apportion(
        counts, min(peer_total if peer_total is not None else sum(counts), sum(counts))
    )
    for (layer, c), q in zip(cells, quotas, strict=True):
        out[c][layer] = top_units(out[c][layer], doc_counts[c][layer], q)
    return out


def equal_target(
    labels: Iterable[str],
    ls: NeuronSet | Mapping[str, torch.Tensor],
    n_layers: int,
    n1: int,
    n2: int,
) -> int:
    """T of the equal rule: the smallest non-zero LS total over the LS counterparts of `labels`.

    A condition whose cells hold no LS neuron of this set (e.g. D_S_attn for an FFN-only LAPE
    set) masks nothing whatever the rule and is left out, so it cannot zero the whole table.
    """
    selected = _tensors(ls.selected if isinstance(ls, NeuronSet) else ls)
    labels = list(labels)
    if not labels:
        raise MworkError("the equal count rule needs the table's conditions", "pass count peers")
    totals = [
        sum(int(s.sum()) for s in _ls_of_label(lab, selected, n_layers, n1, n2).values())
        for lab in labels
    ]
    return min([t for t in totals if t > 0], default=0)


def condition_selection(
    name: str,
    ls: NeuronSet | Mapping[str, torch.Tensor],
    n_layers: int,
    n1: int,
    n2: int,
    seed: int = 0,
    count: CountRule | None = None,
) -> dict[str, torch.Tensor]:
    """The neurons a condition deactivates for one language.

    Args:
        name: condition name, alias or label (label overrides of N1/N2 win over the arguments).
        ls: the language-specific neurons, NeuronSet or component -> [n_layers, n_units] bool
            (a plain mapping has no doc_counts: the count rules then rank by index only).
        n_layers: model layers (must equal the selection's first dimension).
        n1, n2: understanding / generation layer counts.
        seed: random seed (random conditions only).
        count: how many LS neurons are masked (`CountRule`; None: all of them).

    Returns:
        component -> [n_layers, n_units] bool for every component in `ls` (all False for the
        baseline). Random conditions match the (count-reduced) LS counts per (layer, component)
        in their cells.
    """
    selected = _tensors(ls.selected if isinstance(ls, NeuronSet) else ls)
    for comp, sel in selected.items():
        if comp not in COMPONENTS or sel.dim() != 2 or sel.shape[0] != n_layers:
            raise MworkError(
                f"neuron selection '{comp}' has shape {tuple(sel.shape)}",
                f"expected a component of {', '.join(COMPONENTS)} with {n_layers} layers",
            )
    cond, o1, o2 = parse_condition(name)
    if cond is None:
        return {c: torch.zeros_like(s, dtype=torch.bool) for c, s in selected.items()}
    e1, e2 = n1 if o1 is None else o1, n2 if o2 is None else o2
    ls_part = _ls_cells(ls_counterpart(cond), selected, n_layers, e1, e2)
    rule = count or CountRule()
    if rule.rule != "all":
        doc_counts = (
            _tensors(ls.doc_counts)
            if isinstance(ls, NeuronSet)
            else {c: torch.zeros(s.shape, dtype=torch.int32) for c, s in selected.items()}
        )
        target = None
        if rule.rule == "equal":
            own = condition_label(ls_counterpart(cond).name, o1, o2)
            target = equal_target([*rule.peers, own], selected, n_layers, n1, n2)
        ls_part = _apply_count(ls_part, doc_counts, rule, target)
    if not cond.is_random:
        return ls_part
    counts = {c: s.sum(dim=1) for c, s in ls_part.items()}
    return random_matched(counts, {c: s.shape[1] for c, s in selected.items()}, seed)


def neuron_counts(
    selection: Mapping[str, torch.Tensor], regions: Mapping[str, list[int]]
) -> dict[str, Any]:
    """Deactivated neurons: total, share, per component, per region x component and x structure.

    Args:
        selection: component -> [n_layers, n_units] bool.
        regions: region -> 0-based layers (`layer_regions`).
    """
    by_comp = {c: int(s.sum()) for c, s in selection.items()}
    by_region = {
        r: {c: int(s[layers].sum()) for c, s in selection.items()} for r, layers in regions.items()
    }
    by_structure = {
        r: {st: sum(v for c, v in comps.items() if c in STRUCTURES[st]) for st in STRUCTURE_NAMES}
        for r, comps in by_region.items()
    }
    units = sum(int(s.numel()) for s in selection.values())
    total = sum(by_comp.values())
    return {
        "total": total,
        "share": total / units if units else 0.0,
        "units": units,
        "by_component": by_comp,
        "by_region": by_region,
        "by_structure": by_structure,
    }
