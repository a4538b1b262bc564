"""The Markdown tables a person reads: the paper's column names, a legend that decodes every cell
and states the scale, marks for baselines at the floor or ceiling of their metric, and, for a table
the config does not ask for, one line saying why it is empty. The CSVs keep every column in
snake_case at full precision for code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mwork.tables.render import to_markdown

SCALE = (
    "Scores ×100 on a 0-100 scale: accuracy (MGSM, X-CSQA), answer containment (XQuAD), "
    "ROUGE-L F1 (XLSum); fidelity = % of answers identified (offline LID) as the query's language."
)
BOUND = (
    "‡ a baseline sits at the floor (0) or ceiling (100) of its metric: that change can only go "
    "one way, or not at all."
)
CI = "[lo, hi] = 95% paired percentile bootstrap interval over items."

LEGENDS = {
    "summary": (
        "Tables 2-5 (paper notation). Eng = English score with target language L's neurons "
        "deactivated (En-D); n-Eng = L's own score with them deactivated (L-D); ΔEng, Δn-Eng = "
        "change from the unmasked model; Δ = ΔEng − Δn-Eng; all averaged over the target languages "
        "(langs). Fid. n-Eng = share of L answers in L under the condition; ΔFid. n-Eng = its change "
        "(generation tasks only). U / S-ATTN / S-FFN / G: D = deactivated in that stage, R = random "
        "neurons, . = untouched. n masked = neurons deactivated per run (mean over languages)."
    ),
    "per_language": (
        "Tables 14-17. Cell = `En-D/L-D (ΔEn/ΔL) n=N fid=F`: English and L scores with L's "
        "neurons deactivated, their changes from the unmasked model, the neurons deactivated, and "
        "(generation tasks) the % of L answers in L."
    ),
    "sweep": (
        "Tables 12-13: the N1 (understanding layers, with D_U) and N2 (generation layers, with D_G) "
        "sweep; en_d / l_d = English / L score with L's neurons deactivated, delta_* = changes."
    ),
    "baseline": "Table 11: the unmasked model's score per language; Avg = mean over non-English.",
    "table1": "Table 1 (XLSum): Original, all language-specific neurons deactivated, and as many random ones.",
    "fig4": (
        "Fig. 4 data: cell = `score (Δ [lo, hi])`, Δ = change from Original after fine-tuning "
        "(Random-N, Full-N: baselines; LS-N: language-specific neurons only, on N documents)."
    ),
    "table6": "Table 6: low-resource languages, cell = `score (Δ [lo, hi])` as Fig. 4.",
}
EMPTY = {
    "summary": "no masked run is configured (evaluation.tasks.<task>.conditions)",
    "per_language": "no masked run is configured (evaluation.tasks.<task>.conditions)",
    "sweep": "the N1/N2 sweep is off (evaluation.sweep.enabled)",
    "baseline": "no baseline run is configured",
    "table1": "Table 1 needs XLSum with R_all and D_all (evaluation.tasks.xlsum.conditions)",
    "fig4": "no fine-tuned model is evaluated on a high-resource language (finetune.models, finetune.tasks)",
    "table6": "no fine-tuned model is evaluated on a low-resource language (finetune.low_resource, finetune.tasks)",
}


def _num(v: float, decimals: int, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:+.{decimals}f}" if signed else f"{v:.{decimals}f}"


def _with_ci(row: pd.Series, col: str, decimals: int) -> str:
    """`+1.2 [-0.5, +3.0]`: a change with its interval ('-' where undefined)."""
    point = _num(row.get(col, np.nan), decimals, signed=True)
    lo, hi = row.get(f"{col}_lo", np.nan), row.get(f"{col}_hi", np.nan)
    if point == "-" or pd.isna(lo) or pd.isna(hi):
        return point
    return f"{point} [{_num(lo, decimals, True)}, {_num(hi, decimals, True)}]"


def _marked(value: str, bound: bool) -> str:
    return f"{value} ‡" if bound else value


def summary_view(summary: pd.DataFrame, decimals: int = 1, english: str = "en") -> pd.DataFrame:
    """Tables 2-5 with the paper's column names; CIs inside the cells, ‡ on bounded baselines."""
    rows = []
    for _, r in summary.iterrows():
        bounds = str(r.get("baseline_at_bound", "") or "").split()
        en_bound = any(b.startswith(f"{english}=") for b in bounds)
        l_bound = any(not b.startswith(f"{english}=") for b in bounds)
        row = {
            "model": r["model"],
            "table": r["table"],
            "condition": r["condition"],
            "paper": r.get("paper", ""),
            **{k: r.get(k, "") for k in ("U", "S-ATTN", "S-FFN", "G", "neurons")},
            "langs": r.get("langs", ""),
            "Eng": _marked(_num(r["eng"], decimals), en_bound),
            "n-Eng": _marked(_num(r["n_eng"], decimals), l_bound),
            "ΔEng": _with_ci(r, "delta_eng", decimals),
            "Δn-Eng": _with_ci(r, "delta_n_eng", decimals),
            "Δ": _with_ci(r, "delta", decimals),
        }
        if "fid_n_eng" in summary.columns:
            fid = _num(r["fid_n_eng"], decimals)
            lo, hi = r.get("fid_n_eng_lo"), r.get("fid_n_eng_hi")
            if fid != "-" and not pd.isna(lo) and not pd.isna(hi):
                fid += f" [{_num(lo, decimals)}, {_num(hi, decimals)}]"
            row["Fid. n-Eng"] = fid
            row["ΔFid. n-Eng"] = _with_ci(r, "delta_fid_n_eng", decimals)
        row["n masked"] = _num(r.get("n_masked", np.nan), 0)
        rows.append(row)
    return pd.DataFrame(rows)


def legend(key: str, bounded: bool) -> str:
    """The lines above a table's Markdown view: what it is, the scale, the CI, the ‡ mark."""
    lines = [LEGENDS[key], SCALE]
    if key in ("summary", "fig4", "table6"):
        lines.append(CI)
    if bounded:
        lines.append(BOUND)
    return "".join(f"_{line}_\n\n" for line in lines)


def markdown_view(key: str, table: pd.DataFrame, view: pd.DataFrame, decimals: int = 1) -> str:
    """The whole Markdown file of one table: legend + table, or why it has no rows."""
    if table.empty:
        return f"_No rows: {EMPTY[key]}._\n"
    bounded = (
        "baseline_at_bound" in table.columns
        and table["baseline_at_bound"].astype(str).str.strip().ne("").any()
    )
    return legend(key, bounded) + to_markdown(view, decimals)
