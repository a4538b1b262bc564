"""Tables a person can read (mwork.tables.views): paper column names, a legend that decodes the
cells and states the scale, ‡ on a baseline at the floor or ceiling of its metric (tables and the
deactivation figure), and an empty table that says which config key would fill it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mwork.figures.bars import fig_deactivation
from mwork.scores import SCORE_COLUMNS, label_columns
from mwork.tables import make_tables


def _scores() -> pd.DataFrame:
    """XQuAD, en + de: English at the ceiling (every item right), German at 50; D_U hurts German."""
    values = {
        ("none", "none", "en"): [1, 1, 1, 1],
        ("none", "none", "de"): [1, 1, 0, 0],
        ("D_U", "de", "en"): [1, 1, 1, 1],
        ("D_U", "de", "de"): [1, 0, 0, 0],
    }
    rows = [
        {
            "model": "m",
            "condition": cond,
            **label_columns(cond),
            "mask_lang": mask,
            "task": "xquad",
            "eval_lang": lang,
            "seed": -1,
            "n_masked": 0 if cond == "none" else 12,
            "metric": "contains",
            "item_id": f"q{i}",
            "value": float(v),
        }
        for (cond, mask, lang), vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def test_markdown_uses_paper_names_legend_scale_and_bound_mark(tmp_path: Path) -> None:
    _scores().to_csv(tmp_path / "scores.csv", index=False)
    tables = make_tables(tmp_path / "scores.csv", tmp_path / "t", n_boot=100)
    md = (tmp_path / "t" / "tables2_5_summary.md").read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| model"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[cols.index("Eng") :][:5] == ["Eng", "n-Eng", "ΔEng", "Δn-Eng", "Δ"]
    assert not [c for c in cols if "_" in c]  # no snake_case column in the view
    assert "Scores ×100 on a 0-100 scale" in md and "95% paired percentile bootstrap" in md
    row = next(line for line in md.splitlines() if "| D_U |" in line)
    assert "| 100.0 ‡ |" in row  # English baseline at the ceiling: ΔEng can only fall
    assert "| -25.0 [" in row  # Δn-Eng with its CI in the cell
    assert tables["summary"].loc[0, "baseline_at_bound"] == "en=100"
    per = (tmp_path / "t" / "tables14_17_per_language.md").read_text(encoding="utf-8")
    assert "Cell = `En-D/L-D (ΔEn/ΔL) n=N fid=F`" in per and "100.0/25.0 (+0.0/-25.0) n=12 ‡" in per
    sweep = (tmp_path / "t" / "tables12_13_sweep.md").read_text(encoding="utf-8")
    assert sweep == "_No rows: the N1/N2 sweep is off (evaluation.sweep.enabled)._\n"
    fig = fig_deactivation(tables["summary"])
    titles = [" ".join(ax.get_title(loc="left").split()) for ax in fig.axes]
    assert any("‡ baseline at 0/100: en=100" in t for t in titles), titles
