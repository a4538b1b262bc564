"""What this run found in the enhancement results (Fig. 4, Table 6) and beyond the paper
(held-out perplexity under deactivation, PLND vs LAPE agreement).

Inputs are the tables as written: `mwork.tables.fig4_table` / `table6` (delta and CI columns),
`mwork.perplexity.ppl_summary` and `mwork.neuronstats.detector_agreement`.
"""

from __future__ import annotations

import re

import pandas as pd

from mwork.findings.text import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    esc,
    fmt,
    is_num,
    join_list,
    verdict,
    with_ci,
)

PAPER_FIG4 = 3.6  # points, LS neurons fine-tuned on 400 documents, average (paper §4)
PAPER_TABLE6 = (2.2, 3.5)  # points, low-resource average and English (paper Table 6)
_METHOD = re.compile(r"^(?P<kind>LS|Random|Full)-(?P<n>\d+)$")


def _ci(row: pd.Series, col: str = "delta") -> str:
    return with_ci(row.get(col), row.get(f"{col}_lo"), row.get(f"{col}_hi"))


def fig4_findings(fig4: pd.DataFrame) -> list[str]:
    """Fig. 4: per (model, task), LS fine-tuning's change of the non-English average at the random
    baseline's N (its CI and verdict), the random neurons' change, and the best N."""
    out = []
    avg = fig4[fig4["lang"] == "avg"]
    for (model, task), part in avg.groupby(["model", "task"], sort=False):
        methods = {}
        for _, row in part.iterrows():
            m = _METHOD.match(str(row["method"]))
            if m:
                methods[(m["kind"], int(m["n"]))] = row
        ls = {n: r for (k, n), r in methods.items() if k == "LS"}
        if not ls:
            continue
        rand_n = [n for (k, n) in methods if k == "Random"]
        n = max(rand_n) if rand_n else max(ls)
        s = f"{esc(model)}, {esc(task)}:"
        if n in ls:
            v, reason = verdict(ls[n]["delta"], ls[n]["delta_lo"], ls[n]["delta_hi"], +1)
            s += f" LS neurons fine-tuned on {n} documents change the non-English average by {_ci(ls[n])}"
            if ("Random", n) in methods:
                s += f", random neurons by {_ci(methods[('Random', n)])}"
            s += f"; an improvement (the paper: +{PAPER_FIG4} at 400): {v} ({reason})."
        best = max(ls, key=lambda k: float(ls[k]["delta"]) if is_num(ls[k]["delta"]) else -1e9)
        s += f" The best N is {best} ({fmt(ls[best]['delta'])})"
        larger = [k for k in ls if k > n]
        if larger and n in ls:
            drop = all(float(ls[k]["delta"]) < float(ls[n]["delta"]) for k in larger)
            s += f"; beyond {n} documents it {'drops' if drop else 'does not drop'} (the paper: a drop at 800)"
        out.append(s + ".")
    return out


def table6_findings(table6: pd.DataFrame) -> list[str]:
    """Table 6: LS fine-tuning's change per low-resource language and for English (with CIs),
    beside random-neuron fine-tuning, against the paper's +2.2 / +3.5."""
    out = []
    for model, part in table6.groupby("model", sort=False):
        ls = part[part["method"] == "Lang-Spec"]
        if ls.empty:
            continue
        langs = ls[ls["lang"] != "en"]
        verdicts = [
            verdict(r["delta"], r["delta_lo"], r["delta_hi"], +1)[0] for _, r in langs.iterrows()
        ]
        detail = join_list([f"{esc(r['lang'])} {_ci(r)}" for _, r in langs.iterrows()])
        s = (
            f"{esc(model)}: LS fine-tuning changes the low-resource languages by {detail}; "
            f"an improvement with a CI excluding 0 ({AGREES}) in {verdicts.count(AGREES)} of "
            f"{len(verdicts)} languages (the paper: +{PAPER_TABLE6[0]} on average)."
        )
        en = ls[ls["lang"] == "en"]
        if not en.empty:
            s += f" English: {_ci(en.iloc[0])} (the paper: +{PAPER_TABLE6[1]})."
        rnd = part[(part["method"] == "Random") & (part["lang"] != "en")]
        if not rnd.empty and rnd["delta"].notna().any():
            s += f" Random neurons: mean {fmt(rnd['delta'].astype(float).mean())}."
        out.append(s)
    return out


def ppl_findings(summary: pd.DataFrame, english: str = "en") -> list[str]:
    """Held-out perplexity (`ppl_summary`): in how many languages deactivating N_L raises L's
    log-perplexity more than English's, and more than as many random neurons do."""
    rows = summary[summary["lang"] != english]
    if rows.empty:
        return []
    n = len(rows)
    more_en = int((rows["ls_delta_L"] > rows["ls_delta_en"]).sum())
    more_rand = int((rows["ls_delta_L"] > rows["rand_delta_L"]).sum())
    v = (
        AGREES
        if more_en == n and more_rand == n
        else (DISAGREES if 2 * more_en < n else "partly agrees")
    )
    return [
        f"Deactivating language L's neurons raises L's held-out log-perplexity by "
        f"{fmt(rows['ls_delta_L'].mean(), 3)} on average and English's by "
        f"{fmt(rows['ls_delta_en'].mean(), 3)} (random neurons: {fmt(rows['rand_delta_L'].mean(), 3)}"
        f" on L). L is hurt more than English in {more_en} of {n} languages and more than by "
        f"random neurons in {more_rand} of {n}; language-specific: {v} (means over the random "
        "seeds, no CIs)."
    ]


def agreement_findings(agreement: pd.DataFrame) -> list[str]:
    """PLND vs LAPE: per model, the pooled (layer -1) Jaccard and overlaps, mean and range over
    languages (beyond the paper: no claim to agree with)."""
    out = []
    pooled = agreement[agreement["layer"] == -1]
    for model, part in pooled.groupby("model", sort=False):
        jac = part.set_index("lang")["jaccard"].dropna()
        if jac.empty:
            out.append(
                f"{esc(model)}: the two detectors' FFN sets are empty or disjoint everywhere: {INCONCLUSIVE}."
            )
            continue
        lo, hi = jac.idxmin(), jac.idxmax()
        out.append(
            f"{esc(model)}: PLND and LAPE share on average {fmt(part['overlap_lape'].mean(), 2, False)} "
            f"of LAPE's FFN neurons and {fmt(part['overlap_plnd'].mean(), 2, False)} of PLND's "
            f"(Jaccard {fmt(jac.mean(), 2, False)}, from {esc(lo)} {fmt(jac[lo], 2, False)} to "
            f"{esc(hi)} {fmt(jac[hi], 2, False)}); "
            + (
                "low agreement: findings on one detector's neurons need not transfer."
                if jac.mean() < 0.5
                else "the detectors largely agree."
            )
        )
    return out
