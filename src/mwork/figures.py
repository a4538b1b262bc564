"""File-level figure builders for the Snakemake `plot_*` rules: read tidy files, plot, save.

Each function is the one package call of a `scripts/plot_*.py` adapter. The plotting itself is
`mwork.plots` (DataFrame in, Figure out); here we only read inputs, pick the frame, and write
`<stem>.pdf` + `<stem>.png` (and, for overlaps, the plotted table) atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mwork import plots
from mwork.errors import MworkError
from mwork.neuronset import load_neuron_set
from mwork.overlap import count_frame_from_summary, overlap_frame
from mwork.tableio import atomic_write_text

log = logging.getLogger("mwork.figures")


def _read_csvs(paths: Sequence[str | Path], what: str) -> pd.DataFrame:
    if not paths:
        raise MworkError(f"no {what} files to plot", "check the figures section of the config")
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def plot_lens_figure(
    tables: Sequence[str | Path],
    out_pdf: str | Path,
    kind: str,
    drop_layer0: bool = False,
    langs: Sequence[str] | None = None,
) -> None:
    """Fig. 1 (kind "english_ratio") or Fig. 7 ("language_distribution") from lens CSVs.

    Args:
        tables: lens CSVs (mwork.lens.LENS_COLUMNS), one per (model, variant); panels in this order.
        langs: row order of Fig. 7 (default: order in the tables).
    """
    lens = _read_csvs(tables, "lens")
    if kind == "english_ratio":
        fig = plots.fig_english_ratio(lens, drop_layer0=drop_layer0)
    elif kind == "language_distribution":
        fig = plots.fig_language_distribution(lens, drop_layer0=drop_layer0, langs=langs)
    else:
        raise MworkError(f"unknown lens figure {kind!r}", "use english_ratio or language_distribution")
    log.info("%s: %d lens rows from %d tables -> %s", kind, len(lens), len(tables), out_pdf)
    plots.save_figure(fig, out_pdf)


def plot_neuron_figure(
    summaries: Sequence[str | Path], out_pdf: str | Path, kind: str, variant: str = "all",
    normalise: bool = False,
) -> None:
    """Fig. 3 (kind "counts") or the per-component share bars ("share") from neuron summary CSVs."""
    counts = count_frame_from_summary(_read_csvs(summaries, "neuron summary"), variant)
    if kind == "counts":
        fig = plots.fig_neuron_counts(counts, normalise=normalise)
    elif kind == "share":
        fig = plots.fig_neuron_share(counts)
    else:
        raise MworkError(f"unknown neuron figure {kind!r}", "use counts or share")
    log.info("%s: %d models, %d languages -> %s", kind, counts["model"].nunique(), counts["lang"].nunique(), out_pdf)
    plots.save_figure(fig, out_pdf)


def plot_overlap_figure(
    neuron_files: Sequence[str | Path],
    pairs: Sequence[tuple[str, str]],
    out_pdf: str | Path,
    out_table: str | Path,
) -> None:
    """Figs. 5/6: Eq. 11 overlaps from neuron files; also writes the tidy overlap CSV.

    Args:
        neuron_files: results/{model}/neurons/{lang}.safetensors.
        pairs: (model, lang) of each file, same order (languages in plot order).
    """
    if len(neuron_files) != len(pairs) or not pairs:
        raise MworkError(f"{len(neuron_files)} neuron files but {len(pairs)} (model, lang) pairs",
                         "pass one pair per file")
    by_model: dict[str, dict] = {}
    for path, (model, lang) in zip(neuron_files, pairs):
        by_model.setdefault(model, {})[lang] = load_neuron_set(path)
    frame = pd.concat([overlap_frame(m, sets) for m, sets in by_model.items()], ignore_index=True)
    atomic_write_text(out_table, frame.to_csv(index=False))
    log.info("overlap: models %s -> %s", list(by_model), out_pdf)
    plots.save_figure(plots.fig_overlap(frame), out_pdf)


def plot_deactivation_figure(summary_csvs: Sequence[str | Path], out_pdf: str | Path) -> None:
    """Tables 2-5 as bars from the per-model summary CSVs (`mwork.tables.summary_table`)."""
    summary = _read_csvs(list(summary_csvs), "deactivation summary")
    log.info("deactivation: %d rows -> %s", len(summary), out_pdf)
    plots.save_figure(plots.fig_deactivation(summary), out_pdf)


def plot_bars_figure(table_csv: str | Path, out_pdf: str | Path, **bar_args: object) -> None:
    """Any grouped-bar figure (Fig. 4, Table 6) from one tidy CSV; `bar_args` go to `grouped_bars`."""
    df = _read_csvs([table_csv], "bar")
    plots.save_figure(plots.grouped_bars(df, **bar_args), out_pdf)
