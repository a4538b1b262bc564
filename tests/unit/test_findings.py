"""mwork.findings: each function on small hand-made frames, one case each where this run agrees
with the paper, disagrees and is inconclusive; the text must say so and carry the numbers."""

import math

import pandas as pd
import pytest
from docutils.core import publish_parts

from mwork.findings import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    agreement_findings,
    baseline_findings,
    english_ratio_findings,
    fig4_findings,
    findings_path,
    language_distribution_findings,
    neuron_count_findings,
    neuron_share_findings,
    overlap_findings,
    per_language_findings,
    ppl_findings,
    summary_findings,
    sweep_findings,
    table1_findings,
    table6_findings,
    table_findings,
    write_findings,
)
from mwork.findings.text import esc, layer_ranges, verdict, with_ci

NAN = math.nan


# --- text ---------------------------------------------------------------------------------


def test_verdict_by_ci():
    assert verdict(5, 1, 9, +1)[0] == AGREES
    assert verdict(-5, -9, -1, +1)[0] == DISAGREES
    assert verdict(-5, -9, -1, -1)[0] == AGREES
    assert verdict(1, -2, 4, +1) == (INCONCLUSIVE, "the CI includes 0")
    assert verdict(0, 0, 0, +1) == (INCONCLUSIVE, "no item changed: the CI is 0 to 0")
    assert "too few items" in verdict(5, -10, 20, +1)[1]  # 30 points wide
    assert verdict(5, NAN, NAN, +1) == (INCONCLUSIVE, "no CI was computed (evaluation.n_boot: 0)")


def test_numbers_and_rst_escaping():
    assert with_ci(-11.25, -18.75, -4.97) == "-11.2 (95% CI -18.8 to -5.0)"
    assert with_ci(2, NAN, NAN) == "+2.0 (no CI)"
    assert with_ci(-0.01, -0.04, 0.0) == "+0.0 (95% CI +0.0 to +0.0)"  # no "-0.0"
    assert layer_ranges([5, 3, 4, 8]) == "3-5, 8" and layer_ranges([]) == "none"
    assert esc("a_ *b* |c|") == r"a\_ \*b\* \|c\|"


def test_write_findings_renders_as_rst(tmp_path):
    path = findings_path(tmp_path / "tables2_5_summary.csv")
    assert path.name == "tables2_5_summary.findings.rst"
    write_findings(path, ["``D_U`` lowered n-Eng most: -11.2.", f"model {esc('m_1_')}: x."])
    html = publish_parts(path.read_text(encoding="utf-8"), writer="html")["body"]
    assert "What this run found" in html and "<li>" in html and "m_1_" in html
    assert "System Message" not in html
    write_findings(path, [])
    assert "Nothing to report" in path.read_text(encoding="utf-8")


# --- Tables 2-5 ---------------------------------------------------------------------------


def _summary_row(task, cond, d_neng, ci_neng, delta, ci_delta, bound="", fid=None):
    row = {
        "model": "m",
        "table": {"xquad": "Table 2 · XQuAD", "xlsum": "Table 5 · XLSum"}[task],
        "task": task,
        "metric": "acc",
        "condition": cond,
        "baseline_at_bound": bound,
        "delta_n_eng": d_neng,
        "delta_n_eng_lo": ci_neng[0],
        "delta_n_eng_hi": ci_neng[1],
        "delta": delta,
        "delta_lo": ci_delta[0],
        "delta_hi": ci_delta[1],
    }
    if fid is not None:
        row |= {
            "delta_fid_n_eng": fid[0],
            "delta_fid_n_eng_lo": fid[1],
            "delta_fid_n_eng_hi": fid[2],
        }
    return row


def test_summary_agrees_names_the_condition_its_ci_and_random_counterpart():
    summary = pd.DataFrame(
        [
            _summary_row("xquad", "D_U", -12.0, (-18.0, -6.0), 10.0, (4.0, 16.0)),
            _summary_row("xquad", "D_S", -3.0, (-6.0, 0.5), 1.0, (-2.0, 4.0)),
            _summary_row("xquad", "R_U", -1.0, (-3.0, 1.0), 0.5, (-1.0, 2.0)),
            _summary_row("xquad", "D_U-n1_2", -30.0, (-40.0, -20.0), 30.0, (20.0, 40.0)),
        ]
    )
    (text,) = summary_findings(summary)
    # the layer-split sweep row (D_U-n1_2) is not one of Tables 2-5's conditions
    assert "``D_U`` lowered n-Eng most: Δn-Eng -12.0 (95% CI -18.0 to -6.0)" in text
    assert "its random counterpart ``R_U``: -1.0 (95% CI -3.0 to +1.0)" in text
    assert "+10.0 (95% CI +4.0 to +16.0), the largest of the LS conditions: agrees" in text
    assert "Table 2" in text and "D_U-n1_2" not in text


def test_summary_disagrees_and_inconclusive_with_bound_note():
    bad = pd.DataFrame(
        [
            _summary_row("xquad", "D_U", -2.0, (-4.0, -0.5), -6.0, (-9.0, -3.0)),
            _summary_row("xquad", "D_G", -1.0, (-3.0, 1.0), 2.0, (0.5, 4.0)),
        ]
    )
    (text,) = summary_findings(bad)
    assert "-6.0 (95% CI -9.0 to -3.0), not the largest (``D_G``: +2.0): disagrees" in text
    flat = pd.DataFrame(
        [_summary_row("xquad", "D_U", 1.0, (-2.0, 4.0), 0.0, (0.0, 0.0), bound="en=100")]
    )
    (text,) = summary_findings(flat)
    assert "No LS condition lowered n-Eng" in text
    assert f"{INCONCLUSIVE} (no item changed: the CI is 0 to 0; baseline at the floor" in text
    assert "(en=100): it can move one way only" in text


def test_summary_fidelity_d_g_against_random():
    summary = pd.DataFrame(
        [
            _summary_row("xlsum", "D_G", -3.0, (-5.0, -1.0), 2.0, (1.0, 3.0), fid=(-20, -30, -10)),
            _summary_row("xlsum", "R_G", 0.0, (-1.0, 1.0), 0.0, (-1.0, 1.0), fid=(-2, -5, 1)),
        ]
    )
    (text,) = summary_findings(summary)
    assert "under ``D_G``: change -20.0 (95% CI -30.0 to -10.0)" in text
    assert "under ``R_G`` -2.0 (95% CI -5.0 to +1.0); the LS neurons lower it more" in text
    assert "MWork predicts a drop) under ``D_G``" in text and text.endswith(
        f"{AGREES} (the CI excludes 0)."
    )
    summary.loc[0, ["delta_fid_n_eng", "delta_fid_n_eng_lo", "delta_fid_n_eng_hi"]] = [3, 1, 5]
    (text,) = summary_findings(summary)
    assert "do not lower it more" in text and text.endswith(f"{DISAGREES} (the CI excludes 0).")


def test_summary_without_the_papers_condition_says_so():
    summary = pd.DataFrame([_summary_row("xquad", "D_S", -3.0, (-5.0, -1.0), 1.0, (0.5, 2.0))])
    (text,) = summary_findings(summary)
    assert "The paper's condition ``D_U`` was not run" in text


# --- Table 1, 11, 12-17 -------------------------------------------------------------------


def _table1(orig, rnd, ls):
    methods = ["Original", "Deactivate Random", "Deactivate Lang-Spec"]
    return pd.DataFrame(
        {
            "model": "m",
            "metric": "rougeL",
            "method": methods,
            "zh": [orig, rnd, ls],
            "Avg": [orig, rnd, ls],
        }
    )


@pytest.mark.parametrize(
    ("ls", "word", "change"),
    [(0.2, AGREES, "-99%"), (27.0, DISAGREES, "-3%"), (10.0, "partly agrees", "-64%")],
)
def test_table1_relative_drop_against_the_papers_99_percent(ls, word, change):
    (text,) = table1_findings(_table1(27.7, 27.5, ls))
    assert f"relative change of {change}" in text and f"≈-99%: {word}" in text
    assert "random neurons: -1%" in text


def test_table1_floor_and_fidelity():
    (text,) = table1_findings(_table1(0.0, 0.0, 0.0))
    assert "is 0" in text and INCONCLUSIVE in text
    fid = _table1(100.0, 100.0, 40.0).assign(metric="fidelity")
    (text,) = table1_findings(fid)
    assert "100.0% originally, 40.0% with the LS neurons deactivated" in text


def test_baseline_names_bounds_and_the_lowest_language():
    table = pd.DataFrame(
        [
            {
                "model": "m",
                "task": "xquad",
                "metric": "contains",
                "en": 100.0,
                "de": 70.0,
                "zh": 0.0,
                "Avg": 35.0,
            }
        ]
    )
    (text,) = baseline_findings(table)
    assert "English 100.0, non-English mean 35.0 (lowest zh 0.0)" in text
    assert "en=100 zh=0" in text


def _lang_row(cond, lang, delta, lo, hi, **kw):
    return {"model": "m", "task": "xquad", "condition": cond, "lang": lang, "delta": delta,
            "delta_lo": lo, "delta_hi": hi, "delta_en": 0.0, "delta_l": -delta, **kw}  # fmt: skip


def test_sweep_picks_the_split_with_the_largest_delta():
    sweep = pd.DataFrame(
        [
            _lang_row("D_U-n1_1", "zh", 15.0, 2.0, 28.0, base="D_U", n1=1, n2=NAN),
            _lang_row("D_U-n1_2", "zh", 2.0, -8.0, 15.0, base="D_U", n1=2, n2=NAN),
            _lang_row("D_G-n2_1", "zh", -10.0, -20.0, -1.0, base="D_G", n1=NAN, n2=1),
        ]
    )
    du, dg = sweep_findings(sweep)
    assert "of 2 splits, N1 = 1 gives the largest Δ, +15.0 (95% CI +2.0 to +28.0)" in du
    assert du.endswith(f"{AGREES} (the CI excludes 0).") and "baseline at" not in du
    assert "of 1 splits, N2 = 1" in dg and DISAGREES in dg


def test_per_language_counts_agreeing_languages():
    per = pd.DataFrame(
        [
            _lang_row("D_U", "de", 12.5, 2.4, 25.0),
            _lang_row("D_U", "zh", 2.5, -7.5, 15.0),
            _lang_row("D_U", "es", -5.0, -9.0, -1.0),
            _lang_row("D_S", "es", 50.0, 40.0, 60.0),  # not the paper's condition for XQuAD
        ]
    )
    (text,) = per_language_findings(per)
    assert f"({AGREES}) in 1 of 3 languages, negative ({DISAGREES}) in 1" in text
    assert "de +12.5 (95% CI +2.4 to +25.0)" in text and "+50.0" not in text


def test_table_findings_dispatch_and_empty():
    assert table_findings("summary", pd.DataFrame()) == []
    assert table_findings("table1", _table1(27.7, 27.5, 0.2))[0].startswith("m: deactivating")


# --- lens, neurons, overlap ---------------------------------------------------------------


def _lens(en_by_layer, other="zh"):
    rows = []
    for layer, en in enumerate(en_by_layer):
        for prompt in ("de", "zh"):
            rows.append(("m", "normed", prompt, layer, "en", en))
            rows.append(("m", "normed", prompt, layer, other, 1 - en))
    return pd.DataFrame(rows, columns=["model", "variant", "prompt_lang", "layer", "lang", "share"])


def test_english_ratio_middle_layers():
    (text,) = english_ratio_findings(_lens([0.1, 0.2, 0.7, 0.8, 0.6, 0.2, 0.1]))
    assert "layers 2-4 of 0-6" in text and "peaks at 80% in layer 3" in text
    assert text.endswith(f"as the paper reports: {AGREES}.")
    (text,) = english_ratio_findings(_lens([0.1, 0.2, 0.3, 0.2, 0.3, 0.2, 0.9]))
    assert "no layer" not in text and "layers 6 of" in text and text.endswith(f"{DISAGREES}.")
    (text,) = english_ratio_findings(_lens([0.1, 0.2, 0.6, 0.2, 0.3, 0.2, 0.9]))
    assert text.endswith("partly agrees.")  # English leads a middle layer, peaks at the end
    (text,) = english_ratio_findings(_lens([0.1] * 7), drop_layer0=True)
    assert "no layer of 1-6" in text


def test_language_distribution_counts_the_middle_layers():
    (text,) = language_distribution_findings(_lens([0.1, 0.2, 0.7, 0.8, 0.3, 0.2, 0.1]))
    assert "middle layers 2-4 is en in 2, zh in 1 of 3 layers" in text


def _counts(attn, ffn):
    rows = []
    for layer, (a, f) in enumerate(zip(attn, ffn, strict=True)):
        for lang in ("de", "zh"):
            rows.append(("m", lang, layer, "attn_q", a, 100))
            rows.append(("m", lang, layer, "ffn", f, 300))
    return pd.DataFrame(rows, columns=["model", "lang", "layer", "component", "count", "n_units"])


def test_neuron_counts_by_region():
    counts = _counts(attn=[10, 10, 2, 2, 10, 10], ffn=[5, 5, 5, 5, 5, 5])
    (text,) = neuron_count_findings(counts, {"m": [2, 2]})
    assert "N1 = 2, N2 = 2" in text and "attention 45% / 9% / 45%; FFN 33% / 33% / 33%" in text
    assert "0.20x the attention units" in text and "1.00x the FFN units" in text
    assert text.endswith(f"(the paper, Fig. 3): {AGREES}.")
    (text,) = neuron_count_findings(_counts([1, 1, 5, 5, 1, 1], [5] * 6), {"m": None})
    assert "no layer split configured: thirds" in text and text.endswith(f"{DISAGREES}.")


def test_neuron_share_in_percent():
    (text,) = neuron_share_findings(_counts([1] * 6, [3] * 6))
    assert "1.00% of all attention and FFN units" in text  # (6 + 18) / (600 + 1800)


def test_overlap_with_english_vs_between_others():
    def frame(en_pairs, other_pairs):
        rows = [("m", "ffn", x, "en", v) for x, v in en_pairs]
        rows += [("m", "ffn", x, y, v) for (x, y), v in other_pairs]
        rows += [("m", "ffn", "en", "en", 1.0)]
        return pd.DataFrame(rows, columns=["model", "group", "lang_x", "lang_y", "overlap"])

    (text,) = overlap_findings(frame([("de", 0.1), ("zh", 0.2)], [(("de", "zh"), 0.6)]))
    assert "on average 0.15 of English's" in text and "0.60 of each other's" in text
    assert text.endswith(f"{AGREES}.")
    (text,) = overlap_findings(frame([("de", 0.9)], [(("de", "zh"), 0.3)]))
    assert text.endswith(f"{DISAGREES}.")


# --- enhancement, perplexity, detectors ---------------------------------------------------


def _fig4(rows):
    cols = ["model", "task", "lang", "method", "delta", "delta_lo", "delta_hi"]
    return pd.DataFrame([("m", "xcsqa", "avg", *r) for r in rows], columns=cols)


def test_fig4_ls_at_the_random_n_and_the_drop_beyond():
    fig4 = _fig4(
        [
            ("Original", 0.0, 0.0, 0.0),
            ("Random-400", 0.5, -2.0, 3.0),
            ("LS-100", 1.0, -1.0, 3.0),
            ("LS-400", 4.0, 1.5, 6.5),
            ("LS-800", 2.0, -0.5, 4.5),
        ]
    )
    (text,) = fig4_findings(fig4)
    assert "400 documents change the non-English average by +4.0 (95% CI +1.5 to +6.5)" in text
    assert "random neurons by +0.5 (95% CI -2.0 to +3.0)" in text
    assert f"(the paper: +3.6 at 400): {AGREES}" in text
    assert "The best N is 400 (+4.0); beyond 400 documents it drops" in text
    (text,) = fig4_findings(_fig4([("Random-400", 0.0, 0.0, 0.0), ("LS-400", -3.0, -5.0, -1.0)]))
    assert DISAGREES in text


def test_table6_per_language():
    t6 = pd.DataFrame(
        [
            ("m", "Lang-Spec", "vi", 3.0, 1.0, 5.0),
            ("m", "Lang-Spec", "th", 1.0, -2.0, 4.0),
            ("m", "Lang-Spec", "en", 2.0, 0.5, 3.5),
            ("m", "Random", "vi", 0.0, -1.0, 1.0),
        ],
        columns=["model", "method", "lang", "delta", "delta_lo", "delta_hi"],
    )
    (text,) = table6_findings(t6)
    assert "vi +3.0 (95% CI +1.0 to +5.0) and th +1.0" in text
    assert f"({AGREES}) in 1 of 2 languages" in text
    assert "English: +2.0 (95% CI +0.5 to +3.5) (the paper: +3.5)" in text


def test_ppl_language_specific():
    summary = pd.DataFrame(
        {
            "lang": ["en", "de", "zh"],
            "ls_delta_L": [0.05, 0.12, 0.08],
            "ls_delta_en": [0.05, 0.05, 0.04],
            "rand_delta_L": [0.01, 0.01, 0.01],
        }
    )
    (text,) = ppl_findings(summary)
    assert "by +0.100 on average and English's by +0.045" in text
    assert "2 of 2 languages" in text and f"language-specific: {AGREES}" in text
    summary["ls_delta_en"] = [0.05, 0.2, 0.2]
    assert DISAGREES in ppl_findings(summary)[0]


def test_agreement_pooled_jaccard():
    agreement = pd.DataFrame(
        [
            ("m", "de", -1, 0.5, 0.25, 0.2),
            ("m", "zh", -1, 0.1, 0.05, 0.04),
            ("m", "zh", 0, 1.0, 1.0, 1.0),  # a single layer: not pooled
        ],
        columns=["model", "lang", "layer", "overlap_lape", "overlap_plnd", "jaccard"],
    )
    (text,) = agreement_findings(agreement)
    assert "0.30 of LAPE's FFN neurons and 0.15 of PLND's" in text
    assert "Jaccard 0.12, from zh 0.04 to de 0.20" in text and "low agreement" in text


def test_lens_findings_read_the_numbers_fig_1_draws():
    """lens_means (the findings' numbers) equals the matrix Fig. 1/7 draw (figures.layers)."""
    from mwork.figures.layers import _lens_panels
    from mwork.findings.layers import lens_means

    lens = _lens([0.1, 0.2, 0.7, 0.8, 0.6, 0.2, 0.1])
    lens.loc[lens["prompt_lang"] == "de", "share"] *= 0.5  # prompt languages differ
    ((key, drawn),) = _lens_panels(lens, None, drop_layer0=True)
    mine = lens_means(lens, drop_layer0=True).loc[key]
    pd.testing.assert_frame_equal(mine.loc[drawn.index, drawn.columns], drawn, check_names=False)


def test_summary_task_with_variants_only_or_no_ls_condition():
    """The reduced demo runs MGSM only as Dbar_S_attn.minus-en: its rows stand for the paper's
    condition; a task with random conditions only gives no sentence (and no error)."""
    summary = pd.DataFrame(
        [
            _summary_row("xquad", "Dbar_S_attn.minus-en", -4.0, (-6.0, -2.0), 3.0, (1.0, 5.0)),
            _summary_row("xquad", "D_U-n1_1", -9.0, (-12.0, -6.0), 9.0, (6.0, 12.0)),
            _summary_row("xlsum", "R_all", -1.0, (-2.0, 0.0), 0.0, (-1.0, 1.0)),
        ]
    ).assign(task=["mgsm", "mgsm", "xlsum"])
    (text,) = summary_findings(summary)
    assert "``Dbar_S_attn.minus-en`` lowered n-Eng most" in text and "D_U-n1_1" not in text
    assert "Δ under ``Dbar_S_attn.minus-en`` is +3.0 (95% CI +1.0 to +5.0)" in text
    assert text.count(AGREES) == 1
