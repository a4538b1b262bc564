"""Fig. 4 / Table 6 tables from fine-tuned run labels (ft_{kind}-{N}), against hand-computed means."""

import numpy as np
import pandas as pd
import pytest

from mwork.tables import EnhancementSettings, ScoreStats, fig4_table, per_language_table, table6

ITEMS = 6


def rows(cond, mask, task, lang, values, metric="acc"):
    seed = -1
    return [
        {
            "model": "m",
            "condition": cond,
            "variant": "all",
            "n1": -1,
            "n2": -1,
            "mask_lang": mask,
            "task": task,
            "eval_lang": lang,
            "seed": seed,
            "metric": metric,
            "item_id": f"i{i}",
            "value": v,
        }
        for i, v in enumerate(values)
    ]


def score_frame():
    rng = np.random.default_rng(0)
    out = []
    cells = {("xquad", "de"), ("xquad", "fr"), ("xquad", "vi"), ("xcsqa", "de"), ("xcsqa", "sw")}
    for task in ("xquad", "xcsqa"):
        out += rows("none", "none", task, "en", rng.integers(0, 2, ITEMS))
    for task, lang in cells:
        out += rows("none", "none", task, lang, rng.integers(0, 2, ITEMS))
        for cond in ("ft_ls-100", "ft_ls-400", "ft_random-400"):
            out += rows(cond, lang, task, lang, rng.integers(0, 2, ITEMS))
            out += rows(cond, lang, task, "en", rng.integers(0, 2, ITEMS))
    return pd.DataFrame(out)


def mean(df, cond, mask, task, lang):
    sel = df[
        (df.condition == cond) & (df.mask_lang == mask) & (df.task == task) & (df.eval_lang == lang)
    ]
    assert len(sel) == ITEMS
    return 100 * sel["value"].mean()


SETTINGS = EnhancementSettings(("de", "fr"), ("vi", "sw"), (100, 400), 400)


def test_fig4_averages_high_resource_languages_per_task():
    df = score_frame()
    t = fig4_table(ScoreStats(df, n_boot=50), SETTINGS)
    assert list(dict.fromkeys(t["method"])) == ["Original", "Random-400", "LS-100", "LS-400"]
    row = t[(t.task == "xquad") & (t.method == "LS-400") & (t.lang == "avg")].iloc[0]
    assert row["langs"] == "de fr"  # vi is low-resource, not in Fig. 4
    want = np.mean([mean(df, "ft_ls-400", lang, "xquad", lang) for lang in ("de", "fr")])
    orig = np.mean([mean(df, "none", "none", "xquad", lang) for lang in ("de", "fr")])
    assert row["score"] == pytest.approx(want) and row["delta"] == pytest.approx(want - orig)
    assert row["delta_lo"] <= row["delta_hi"]
    en = t[(t.task == "xquad") & (t.method == "LS-400") & (t.lang == "en")].iloc[0]
    want_en = np.mean([mean(df, "ft_ls-400", lang, "xquad", "en") for lang in ("de", "fr")])
    assert en["score"] == pytest.approx(want_en)
    assert en["delta"] == pytest.approx(want_en - mean(df, "none", "none", "xquad", "en"))
    xcsqa = t[(t.task == "xcsqa") & (t.lang == "avg")]
    assert set(xcsqa["langs"]) == {"de"}
    assert (t[t.method == "Original"]["delta"] == 0).all()


def test_table6_averages_each_language_over_its_tasks_and_english_over_models():
    df = score_frame()
    t = table6(ScoreStats(df, n_boot=50), SETTINGS)
    assert list(dict.fromkeys(t["method"])) == ["Original", "Random", "Lang-Spec"]
    ls = t[t.method == "Lang-Spec"].set_index("lang")
    assert ls.loc["vi", "tasks"] == "xquad" and ls.loc["sw", "tasks"] == "xcsqa"
    assert ls.loc["vi", "score"] == pytest.approx(mean(df, "ft_ls-400", "vi", "xquad", "vi"))
    want_en = np.mean(
        [mean(df, "ft_ls-400", "vi", "xquad", "en"), mean(df, "ft_ls-400", "sw", "xcsqa", "en")]
    )
    assert ls.loc["en", "score"] == pytest.approx(want_en)
    assert "ft_ls-100" not in set(t["condition"])  # Table 6 is at baseline_n_docs only


def test_finetuned_runs_stay_out_of_the_deactivation_tables():
    assert per_language_table(ScoreStats(score_frame(), n_boot=0)).empty
