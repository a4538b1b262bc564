"""Δ aggregation (Tables 1-5, 11-17) on hand-computed cases, and the paired bootstrap CIs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mwork.atomic import atomic_write_text, write_csv
from mwork.errors import MworkError
from mwork.tables import (
    ScoreStats,
    all_tables,
    baseline_table,
    per_language_table,
    per_language_wide,
    summary_table,
    sweep_table,
    table1,
    to_markdown,
)

# (condition, mask_lang, seed, eval_lang) -> per-item scores of items a, b, c, d
RUNS = {
    ("none", "none", -1, "en"): [1, 1, 0, 0],  # 50
    ("none", "none", -1, "zh"): [1, 0, 0, 0],  # 25
    ("none", "none", -1, "de"): [1, 1, 1, 0],  # 75
    ("D_U", "zh", -1, "en"): [1, 0, 0, 0],  # 25
    ("D_U", "zh", -1, "zh"): [0, 0, 0, 0],  # 0
    ("D_U", "de", -1, "en"): [1, 1, 0, 0],  # 50
    ("D_U", "de", -1, "de"): [1, 0, 0, 0],  # 25
    ("D^R_All", "zh", 0, "en"): [1, 1, 1, 0],  # 75  (alias, canonicalised to R_all)
    ("R_all", "zh", 0, "zh"): [1, 1, 0, 0],  # 50
    ("R_all", "zh", 1, "en"): [1, 1, 0, 0],  # 50
    ("R_all", "zh", 1, "zh"): [0, 0, 0, 0],  # 0
    ("D_U-n1_1", "zh", -1, "en"): [1, 1, 0, 0],  # 50
    ("D_U-n1_1", "zh", -1, "zh"): [0, 1, 0, 0],  # 25
}


def tidy(runs=RUNS, model="m", task="t") -> pd.DataFrame:
    rows = [
        {
            "model": model,
            "condition": cond,
            "mask_lang": mask,
            "task": task,
            "eval_lang": lang,
            "seed": seed,
            "metric": "acc",
            "item_id": item,
            "value": v,
        }
        for (cond, mask, seed, lang), values in runs.items()
        for item, v in zip("abcd", values, strict=False)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stats() -> ScoreStats:
    return ScoreStats(tidy(), n_boot=500, seed=0)


def row(df: pd.DataFrame, **kw) -> pd.Series:
    sel = df
    for k, v in kw.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, kw
    return sel.iloc[0]


def test_per_language_deltas(stats):
    per = per_language_table(stats)
    zh = row(per, condition="D_U", lang="zh")
    assert (zh.en_orig, zh.l_orig, zh.en_d, zh.l_d) == (50, 25, 25, 0)
    assert (zh.delta_en, zh.delta_l, zh.delta) == (-25, -25, 0)
    de = row(per, condition="D_U", lang="de")
    assert (de.en_d, de.l_d, de.delta_en, de.delta_l, de.delta) == (50, 25, 0, -50, 50)
    rnd = row(per, condition="R_all", lang="zh")  # mean over seeds 0 and 1
    assert (rnd.en_d, rnd.l_d, rnd.delta_en, rnd.delta_l, rnd.n_seeds) == (62.5, 25, 12.5, 0, 2)


def test_summary_means_over_languages(stats):
    s = row(summary_table(stats), condition="D_U")
    assert (s.eng, s.n_eng, s.delta_eng, s.delta_n_eng, s.delta) == (37.5, 12.5, -12.5, -37.5, 25)
    assert (s.paper, s.U, s["S-ATTN"], s.neurons, s.langs, s.table) == (
        "D_U",
        "D",
        ".",
        "LS",
        "de zh",
        "t",
    )
    r = row(summary_table(stats), condition="R_all")
    assert (r.eng, r.n_eng, r.delta, r.neurons) == (62.5, 25, 12.5, "Rand")


def test_baseline_table1_and_sweep(stats):
    b = row(baseline_table(stats), task="t")
    assert (b.en, b.de, b.zh, b.Avg) == (50, 75, 25, 50)
    assert list(baseline_table(stats).columns[3:]) == [
        "en",
        "de",
        "zh",
        "Avg",
    ]  # paper language order
    t1 = table1(stats, task="t", random="D^R_All", ls="D_U")
    assert list(t1["method"]) == ["Original", "Deactivate Random", "Deactivate Lang-Spec"]
    assert (t1.iloc[0].de, t1.iloc[0].zh, t1.iloc[0].Avg) == (75, 25, 50)
    assert math.isnan(t1.iloc[1].de) and t1.iloc[1].zh == 25
    assert (t1.iloc[2].de, t1.iloc[2].zh, t1.iloc[2].Avg) == (25, 0, 12.5)
    sw = sweep_table(stats)
    assert len(sw) == 1
    r = sw.iloc[0]
    assert (r.base, r.n1, r.lang, r.delta_en, r.delta_l) == ("D_U", 1, "zh", 0, 0)
    assert pd.isna(r.n2)


def test_ci_contains_point_and_is_paired(stats):
    per = per_language_table(stats)
    for name in ("delta_en", "delta_l", "delta"):
        assert (per[f"{name}_lo"] <= per[name] + 1e-9).all() and (
            per[name] <= per[f"{name}_hi"] + 1e-9
        ).all()
    de = row(per, condition="D_U", lang="de")
    assert de.delta_en_lo == de.delta_en_hi == 0  # identical item scores: paired CI collapses
    s = summary_table(stats)
    assert (s["delta_lo"] <= s["delta"] + 1e-9).all() and (s["delta"] <= s["delta_hi"] + 1e-9).all()


def big_scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    runs = {}
    for lang in ("en", "fr", "ru"):
        runs[("none", "none", -1, lang)] = rng.random(40)
    for lang in ("fr", "ru"):
        for ev in ("en", lang):
            runs[("D_G", lang, -1, ev)] = rng.random(40)
    rows = [
        {
            "model": "m",
            "condition": c,
            "mask_lang": m,
            "task": "xlsum",
            "eval_lang": ev,
            "seed": s,
            "metric": "rougeL",
            "item_id": f"i{k}",
            "value": v,
        }
        for (c, m, s, ev), vals in runs.items()
        for k, v in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def test_bootstrap_is_deterministic_by_seed():
    df = big_scores()
    cols = ["delta_eng_lo", "delta_eng_hi", "delta_lo", "delta_hi"]
    a = summary_table(ScoreStats(df, n_boot=300, seed=5))[cols]
    b = summary_table(ScoreStats(df.sample(frac=1.0, random_state=1), n_boot=300, seed=5))[
        cols
    ]  # row order
    c = summary_table(ScoreStats(df, n_boot=300, seed=6))[cols]
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    s = summary_table(ScoreStats(df, n_boot=300, seed=5)).iloc[0]
    assert s.delta_lo < s.delta < s.delta_hi


def test_bad_inputs_raise():
    df = tidy()
    with pytest.raises(MworkError, match="lacks items"):
        ScoreStats(df.drop(index=df.index[-1]), n_boot=10)
    with pytest.raises(MworkError, match="duplicate"):
        ScoreStats(pd.concat([df, df.iloc[:1]]), n_boot=10)
    with pytest.raises(MworkError, match="columns"):
        ScoreStats(df.drop(columns="seed"), n_boot=10)
    no_base = tidy({k: v for k, v in RUNS.items() if k[:2] != ("none", "none") or k[3] != "de"})
    with pytest.raises(MworkError, match="baseline"):
        per_language_table(ScoreStats(no_base, n_boot=10))


def test_writers(tmp_path):
    tables = all_tables(tidy(), n_boot=50)
    assert set(tables) == {
        "baseline",
        "table1",
        "per_language",
        "summary",
        "sweep",
        "fig4",
        "table6",
    }
    write_csv(tmp_path / "s.csv", tables["summary"])
    atomic_write_text(tmp_path / "s.md", to_markdown(tables["summary"]))
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back.columns) == list(tables["summary"].columns) and len(back) == len(
        tables["summary"]
    )
    md = (tmp_path / "s.md").read_text()
    assert md.startswith("| model | table | task |") and "| D_U |" in md and "-12.5" in md
    assert (
        to_markdown(pd.DataFrame({"x": [float("nan")], "y": ["a|b"]})).splitlines()[2]
        == "| - | a\\|b |"
    )
    assert not list(tmp_path.glob(".*tmp"))


def test_per_language_wide_paper_layout(stats):
    wide = per_language_wide(per_language_table(stats))
    assert list(wide.columns) == ["model", "task", "metric", "condition", "de", "zh"]
    d_u = wide[wide["condition"] == "D_U"].iloc[0]
    assert d_u.de == "50.0/25.0 (+0.0/-50.0)" and d_u.zh == "25.0/0.0 (-25.0/-25.0)"
    assert wide[wide["condition"] == "R_all"].iloc[0].de == ""


def test_summary_feeds_the_deactivation_plot(stats):
    from mwork.figures.style import DEACTIVATION_COLUMNS

    summary = summary_table(stats)
    assert set(DEACTIVATION_COLUMNS) <= set(summary.columns)
    assert row(summary, condition="D_U").table == "t"  # unknown tasks keep their name
