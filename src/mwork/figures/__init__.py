"""The paper's figures (rules/figures.smk): read tidy files, plot, save PDF + PNG.

Each `plot_*_figure` is the one package call of a `scripts/plot_*.py` adapter: it reads inputs,
picks the frame and writes `<stem>.pdf` + `<stem>.png` (and, for overlaps, the plotted table)
atomically, and with `findings=` what this run found in the same frame (`mwork.findings`,
`<stem>.findings.rst` for the report caption). The plotting itself is DataFrame in, Figure out:

    figures.layers   fig_english_ratio (Fig. 1), fig_language_distribution (Fig. 7),
                     fig_neuron_counts (Fig. 3), fig_overlap (Figs. 5/6),
                     fig_detector_agreement (PLND vs LAPE per language and layer)
    figures.bars     fig_deactivation (Tables 2-5), fig_neuron_share, grouped_bars (Fig. 4, Table 6)
    figures.style    page sizes, colour-blind-safe colours, atomic `save_figure`
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from mwork.atomic import write_csv
from mwork.errors import MworkError
from mwork.figures.bars import fig_deactivation, fig_enhancement, fig_neuron_share
from mwork.figures.layers import (
    fig_detector_agreement,
    fig_english_ratio,
    fig_language_distribution,
    fig_neuron_counts,
    fig_overlap,
)
from mwork.figures.style import save_figure
from mwork.findings import (
    agreement_findings,
    english_ratio_findings,
    fig4_findings,
    language_distribution_findings,
    neuron_count_findings,
    neuron_share_findings,
    overlap_findings,
    summary_findings,
    table6_findings,
    write_findings,
)
from mwork.neuronset import load_neuron_set
from mwork.neuronstats import count_frame_from_summary, overlap_frame

log = logging.getLogger("mwork.figures")
Findings = str | Path | None  # where to write what this run found (None: not written)


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
    findings: Findings = None,
) -> None:
    """Fig. 1 (kind "english_ratio") or Fig. 7 ("language_distribution") from lens CSVs.

    Args:
        tables: lens CSVs (mwork.lens.LENS_COLUMNS), one per (model, variant); panels in this order.
        langs: row order of Fig. 7 (default: order in the tables).
    """
    lens = _read_csvs(tables, "lens")
    if kind == "english_ratio":
        fig = fig_english_ratio(lens, drop_layer0=drop_layer0)
        found = english_ratio_findings(lens, drop_layer0)
    elif kind == "language_distribution":
        fig = fig_language_distribution(lens, drop_layer0=drop_layer0, langs=langs)
        found = language_distribution_findings(lens, drop_layer0)
    else:
        raise MworkError(
            f"unknown lens figure {kind!r}", "use english_ratio or language_distribution"
        )
    log.info("%s: %d lens rows from %d tables -> %s", kind, len(lens), len(tables), out_pdf)
    save_figure(fig, out_pdf)
    if findings is not None:
        write_findings(findings, found, "this figure's data")


def plot_neuron_figure(
    summaries: Sequence[str | Path],
    out_pdf: str | Path,
    kind: str,
    variant: str = "all",
    normalise: bool = False,
    findings: Findings = None,
    splits: Mapping[str, Sequence[int] | None] | None = None,
) -> None:
    """Fig. 3 (kind "counts") or the per-component share bars ("share") from neuron summary CSVs.

    Args:
        splits: model -> (N1, N2), the U/S/G regions the findings of Fig. 3 count in.
    """
    counts = count_frame_from_summary(_read_csvs(summaries, "neuron summary"), variant)
    if kind == "counts":
        fig = fig_neuron_counts(counts, normalise=normalise)
        found = neuron_count_findings(counts, splits)
    elif kind == "share":
        fig = fig_neuron_share(counts)
        found = neuron_share_findings(counts)
    else:
        raise MworkError(f"unknown neuron figure {kind!r}", "use counts or share")
    log.info(
        "%s: %d models, %d languages -> %s",
        kind,
        counts["model"].nunique(),
        counts["lang"].nunique(),
        out_pdf,
    )
    save_figure(fig, out_pdf)
    if findings is not None:
        write_findings(findings, found, "this figure's data")


def plot_overlap_figure(
    neuron_files: Sequence[str | Path],
    pairs: Sequence[tuple[str, str]],
    out_pdf: str | Path,
    out_table: str | Path,
    findings: Findings = None,
) -> None:
    """Figs. 5/6: Eq. 11 overlaps from neuron files; also writes the tidy overlap CSV.

    Args:
        neuron_files: results/{model}/neurons/{lang}.safetensors.
        pairs: (model, lang) of each file, same order (languages in plot order).
    """
    if len(neuron_files) != len(pairs) or not pairs:
        raise MworkError(
            f"{len(neuron_files)} neuron files but {len(pairs)} (model, lang) pairs",
            "pass one pair per file",
        )
    by_model: dict[str, dict] = {}
    for path, (model, lang) in zip(neuron_files, pairs, strict=False):
        by_model.setdefault(model, {})[lang] = load_neuron_set(path)
    frame = pd.concat([overlap_frame(m, sets) for m, sets in by_model.items()], ignore_index=True)
    write_csv(out_table, frame)
    log.info("overlap: models %s -> %s", list(by_model), out_pdf)
    save_figure(fig_overlap(frame), out_pdf)
    if findings is not None:
        write_findings(findings, overlap_findings(frame), "this figure's data")


def plot_detector_agreement_figure(
    agreement_csvs: Sequence[str | Path],
    out_pdf: str | Path,
    out_table: str | Path | None = None,
    findings: Findings = None,
) -> None:
    """PLND vs LAPE agreement heatmaps from the per-model agreement CSVs
    (`mwork.neuronstats.agreement_to_file`); optionally also writes them as one CSV.

    Args:
        agreement_csvs: results/{model}/neurons_lape/agreement.csv, one per model (rows of panels).
    """
    agreement = _read_csvs(list(agreement_csvs), "detector agreement")
    if out_table is not None:
        write_csv(out_table, agreement)
    models = list(dict.fromkeys(agreement["model"]))
    log.info("detector agreement: models %s -> %s", models, out_pdf)
    save_figure(fig_detector_agreement(agreement), out_pdf)
    if findings is not None:
        write_findings(findings, agreement_findings(agreement), "this figure's data")


def plot_deactivation_figure(
    summary_csvs: Sequence[str | Path], out_pdf: str | Path, findings: Findings = None
) -> None:
    """Tables 2-5 as bars from the per-model summary CSVs (`mwork.tables.summary_table`)."""
    summary = _read_csvs(list(summary_csvs), "deactivation summary")
    log.info("deactivation: %d rows -> %s", len(summary), out_pdf)
    save_figure(fig_deactivation(summary), out_pdf)
    if findings is not None:
        write_findings(findings, summary_findings(summary), "this figure's data")


def plot_enhancement_figure(
    fig4_csvs: Sequence[str | Path],
    table6_csvs: Sequence[str | Path],
    out_pdf: str | Path,
    out_table6: str | Path,
    findings: Findings = None,
    table6_findings_path: Findings = None,
) -> None:
    """Fig. 4 (neuron fine-tuning): per task, the score averaged over the high-resource languages
    for Original / Random / [Full] / LS-N, with paired bootstrap CIs; one panel per (model, task).
    Also writes the models' Table 6 rows as one CSV (`mwork.tables.table6`) for the report, and
    (optionally) the findings of each.
    """
    frames = [pd.read_csv(p) for p in fig4_csvs if Path(p).stat().st_size > 1]
    fig4 = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if fig4.empty:
        raise MworkError(
            "no Figure 4 rows: no fine-tuned runs were scored",
            "check finetune.models / high_resource and evaluation.tasks",
        )
    fig = fig_enhancement(fig4)
    t6 = [pd.read_csv(p) for p in table6_csvs if Path(p).stat().st_size > 1]
    table6 = pd.concat(t6, ignore_index=True) if t6 else pd.DataFrame(columns=["model"])
    write_csv(out_table6, table6)
    log.info("enhancement: %d Fig. 4 rows -> %s", len(fig4), out_pdf)
    save_figure(fig, out_pdf)
    if findings is not None:
        write_findings(findings, fig4_findings(fig4), "this figure's data")
    if table6_findings_path is not None:
        found = table6_findings(table6) if "method" in table6.columns else []
        write_findings(table6_findings_path, found, "this table")
