"""Text summary of a neuron set without pandas (`mwork neurons summary`'s fast path).

The same content as `mwork.neuronstats.format_summary`: a header line, selected units per layer
(components as columns) and totals with their share of all units.
"""

from __future__ import annotations

from collections.abc import Mapping

from mwork.neuronset.core import NeuronSet


def format_summary_rows(ns: NeuronSet, meta: Mapping[str, str]) -> str:
    """Header (from `meta`, e.g. escaped for the terminal), per-layer counts, totals."""
    head = (
        f"{meta.get('model')} · {meta.get('language')} · {meta.get('n_docs')} documents · "
        f"importance={meta.get('importance')} · min_fraction={meta.get('min_fraction')} · "
        f"variant={meta.get('variant')}"
    )
    comps = list(ns.units)
    per_layer = {c: ns.selected[c].sum(axis=1) for c in comps}
    width = {c: max(len(c), 6) for c in comps}
    lines = [head, "layer  " + "  ".join(f"{c:>{width[c]}}" for c in comps)]
    for i in range(ns.n_layers):
        cells = "  ".join(f"{int(per_layer[c][i]):>{width[c]}}" for c in comps)
        lines.append(f"{i:>5}  {cells}")
    totals = ", ".join(
        f"{c} {ns.count(c)}/{ns.n_layers * n} ({100 * ns.count(c) / (ns.n_layers * n):.3f}%)"
        for c, n in ns.units.items()
    )
    share = 100 * ns.count() / ns.total_units()
    lines.append(f"total: {ns.count()} of {ns.total_units()} neurons ({share:.4f}%): {totals}")
    return "\n".join(lines)
