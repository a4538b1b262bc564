"""Table writers: atomic CSV + GitHub Markdown, and the paper's per-language cell layout.

`write_table` writes full-precision CSV and a rounded Markdown view, each via a temp file and
rename, so a killed job never leaves half a table. `per_language_wide` lays out
`mwork.tables.per_language_table` like the paper's Tables 14-17: one row per (model, task,
condition), one column per target language, cells `En-D/L-D (ΔEn/ΔL)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mwork.atomic import atomic_write_text

LANG_ORDER: tuple[str, ...] = ("en", "de", "fr", "zh", "es", "ru", "vi", "th", "ar", "sw")


def lang_sort_key(lang: str) -> tuple[int, str]:
    """Paper order (en, de, fr, zh, es, ru, ...) first, then alphabetical."""
    return (LANG_ORDER.index(lang), "") if lang in LANG_ORDER else (len(LANG_ORDER), lang)


def to_markdown(df: pd.DataFrame, decimals: int = 1) -> str:
    """A GitHub Markdown table; floats rounded to `decimals`, NaN shown as '-'."""

    def fmt(v: object) -> str:
        if isinstance(v, float | np.floating):
            return "-" if np.isnan(v) else f"{v:.{decimals}f}"
        return "-" if v is None or v is pd.NA else str(v).replace("|", "\\|")

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(
    df: pd.DataFrame, csv_path: str | Path, md_path: str | Path | None = None, decimals: int = 1
) -> None:
    """Write `df` as CSV (full precision) and optionally as Markdown, each atomically."""
    atomic_write_text(csv_path, df.to_csv(index=False))
    if md_path is not None:
        atomic_write_text(md_path, to_markdown(df, decimals))


def _signed(v: float, decimals: int) -> str:
    return "-" if np.isnan(v) else f"{v:+.{decimals}f}"


def _plain(v: float, decimals: int) -> str:
    return "-" if np.isnan(v) else f"{v:.{decimals}f}"


def per_language_wide(per_language: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Paper layout of Tables 14-17 from `per_language_table` output.

    Returns:
        One row per (model, task, metric, condition) in input order, one string column per
        target language (paper order), cells `En-D/L-D (ΔEn/ΔL)`; '' where a language is absent.
    """
    if per_language.empty:
        return pd.DataFrame(columns=["model", "task", "metric", "condition"])
    cells = per_language.assign(cell=[
        f"{_plain(r.en_d, decimals)}/{_plain(r.l_d, decimals)} "
        f"({_signed(r.delta_en, decimals)}/{_signed(r.delta_l, decimals)})"
        for r in per_language.itertuples(index=False)
    ])
    langs = sorted(set(cells["lang"]), key=lang_sort_key)
    wide = cells.pivot_table(index=["model", "task", "metric", "condition"], columns="lang", values="cell",
                             aggfunc="first", sort=False)
    return wide.reindex(columns=langs).fillna("").reset_index().rename_axis(columns=None)
