"""Markdown views of the tables: rounded cells, CI columns folded into `[lo, hi]`, and the paper's
wide layouts (`En-D/L-D (ΔEn/ΔL)` of Tables 14-17; `score (Δ [lo, hi])` of Fig. 4 / Table 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mwork.languages import lang_sort_key


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


def _signed(v: float, decimals: int) -> str:
    return "-" if np.isnan(v) else f"{v:+.{decimals}f}"


def _plain(v: float, decimals: int) -> str:
    return "-" if np.isnan(v) else f"{v:.{decimals}f}"


def per_language_wide(per_language: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Paper layout of Tables 14-17 from `per_language_table` output.

    Returns:
        One row per (model, task, metric, condition) in input order, one string column per
        target language (paper order), cells `En-D/L-D (ΔEn/ΔL) n=<neurons masked>` (+
        ` fid=<% of L answers in L>` for generation tasks, + ` ‡` for a baseline at 0 or 100);
        '' where a language is absent.
    """
    if per_language.empty:
        return pd.DataFrame(columns=["model", "task", "metric", "condition"])
    masked = (
        per_language["n_masked"] if "n_masked" in per_language else [np.nan] * len(per_language)
    )
    cells = per_language.assign(
        cell=[
            f"{_plain(r.en_d, decimals)}/{_plain(r.l_d, decimals)} "
            f"({_signed(r.delta_en, decimals)}/{_signed(r.delta_l, decimals)})"
            + ("" if pd.isna(n) or n < 0 else f" n={n:.0f}")
            + (
                f" fid={r.fid_l_d:.{decimals}f}"
                if not pd.isna(getattr(r, "fid_l_d", np.nan))
                else ""
            )
            + (" ‡" if str(getattr(r, "baseline_at_bound", "") or "").strip() else "")
            for r, n in zip(per_language.itertuples(index=False), masked, strict=True)
        ]
    )
    langs = sorted(set(cells["lang"]), key=lang_sort_key)
    wide = cells.pivot_table(
        index=["model", "task", "metric", "condition"],
        columns="lang",
        values="cell",
        aggfunc="first",
        sort=False,
    )
    return wide.reindex(columns=langs).fillna("").reset_index().rename_axis(columns=None)


def fold_ci(df: pd.DataFrame, decimals: int = 1) -> pd.DataFrame:
    """Replace each `x_lo`/`x_hi` pair by one `x_ci` string column `[lo, hi]` (Markdown view)."""
    out = df.copy()
    for col in [c for c in df.columns if f"{c}_lo" in df.columns and f"{c}_hi" in df.columns]:
        out[f"{col}_ci"] = [
            "-" if pd.isna(lo) or pd.isna(hi) else f"[{lo:+.{decimals}f}, {hi:+.{decimals}f}]"
            for lo, hi in zip(df[f"{col}_lo"], df[f"{col}_hi"], strict=True)
        ]
        out = out.drop(columns=[f"{col}_lo", f"{col}_hi"])
    return out


def enhancement_wide(df: pd.DataFrame, index: list[str], decimals: int = 1) -> pd.DataFrame:
    """Markdown view: one row per `index`, one column per language, cells `score (Δ [lo, hi])`."""
    if df.empty:
        return df
    cells = df.assign(
        cell=[
            f"{_plain(r.score, decimals)}"
            + (
                ""
                if r.method == "Original"
                else f" ({_signed(r.delta, decimals)} [{_signed(r.delta_lo, decimals)}, "
                f"{_signed(r.delta_hi, decimals)}])"
            )
            for r in df.itertuples(index=False)
        ]
    )
    langs = list(dict.fromkeys(cells["lang"]))
    wide = cells.pivot_table(
        index=index, columns="lang", values="cell", aggfunc="first", sort=False
    )
    return wide.reindex(columns=langs).fillna("").reset_index().rename_axis(columns=None)
