"""What this run found in the deactivation tables (Tables 1-5, 11-17) and their figure.

Each function takes the table exactly as `mwork.tables` writes it (CSV columns) and returns
plain sentences; nothing is hard-coded but the paper's claims (`PAPER_CLAIMS`, paper §3.2-3.3).
"""

from __future__ import annotations

import pandas as pd

from mwork.findings.text import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    bound_note,
    esc,
    fmt,
    is_num,
    join_list,
    lit,
    verdict,
    with_ci,
)
from mwork.runlabel import CONDITIONS

# task -> (the LS condition the paper says gives the largest Δ = ΔEng - Δn-Eng, the claim)
PAPER_CLAIMS: dict[str, tuple[str, str]] = {
    "xquad": (
        "D_U",
        "deactivating the understanding layers' LS neurons (D_U) hurts non-English "
        "more than English, giving the largest Δ (Table 2)",
    ),
    "mgsm": (
        "Dbar_S_attn",
        "sparing the task-solving attention neurons (D̄_S(A)) gives the best Δ "
        "for reasoning (Table 3)",
    ),
    "xcsqa": (
        "D_S_ffn",
        "the task-solving FFN's LS neurons (D_S(F)) mainly hurt non-English knowledge (Table 4)",
    ),
    "xlsum": (
        "D_G",
        "the generation layers' LS neurons (D_G) mainly hurt non-English generation (Table 5)",
    ),
}
FIDELITY_CONDITION = "D_G"  # the generation stage: its LS neurons should break the output language


def random_counterpart(cond: str) -> str:
    """R_U for D_U, Rbar_S_attn for Dbar_S_attn (the matched random condition)."""
    return "R" + cond[1:] if cond.startswith("D") else cond


def _ci(row: pd.Series, col: str) -> str:
    return with_ci(row.get(col), row.get(f"{col}_lo"), row.get(f"{col}_hi"))


def _verdict(row: pd.Series, col: str, sign: int) -> tuple[str, str]:
    return verdict(row.get(col), row.get(f"{col}_lo"), row.get(f"{col}_hi"), sign)


def _head(part: pd.DataFrame, model: str, task: str) -> str:
    name = part["table"].iloc[0] if "table" in part.columns else task
    metric = part["metric"].iloc[0] if "metric" in part.columns else ""
    return f"{esc(model)}, {esc(name)} ({esc(metric)}):"


def _base(label: str) -> str:
    """`Dbar_S_attn` of `Dbar_S_attn.minus-en` (a layer-split label keeps its `-n1_N`)."""
    return str(label).split(".")[0]


def _main_rows(part: pd.DataFrame) -> pd.DataFrame:
    """The rows of canonical conditions (no layer-split override, no App.-E variant), indexed by
    condition; a task run only with variants (e.g. `Dbar_S_attn.minus-en`) keeps those rows."""
    names = part["condition"].astype(str)
    keep = names.isin(list(CONDITIONS))
    if not keep.any():
        keep = names.map(_base).isin(list(CONDITIONS))
    return part.loc[keep.to_numpy()].set_index("condition")


def _find(index: pd.Index, cond: str) -> str | None:
    """The label of `cond` among `index` (itself, else its first variant)."""
    if cond in index:
        return cond
    return next((c for c in index if _base(c) == cond), None)


def _fidelity_sentence(main: pd.DataFrame) -> str | None:
    """D_G vs D^R_G on output-language fidelity (beyond the paper)."""
    cond = _find(main.index, FIDELITY_CONDITION)
    if cond is None or "delta_fid_n_eng" not in main.columns:
        return None
    row = main.loc[cond]
    if not is_num(row.get("delta_fid_n_eng")):
        return None
    v, reason = _verdict(row, "delta_fid_n_eng", -1)
    text = (
        "Output-language fidelity (the share of non-English answers in the query's language; "
        f"beyond the paper, MWork predicts a drop) under {lit(cond)}: change "
        f"{_ci(row, 'delta_fid_n_eng')}"
    )
    rand = random_counterpart(cond)
    if rand in main.index and is_num(main.loc[rand].get("delta_fid_n_eng")):
        r = main.loc[rand]
        text += f", under {lit(rand)} {_ci(r, 'delta_fid_n_eng')}"
        more = float(row["delta_fid_n_eng"]) < float(r["delta_fid_n_eng"])
        text += (
            "; the LS neurons lower it more" if more else "; the LS neurons do not lower it more"
        )
    return f"{text}: {v} ({reason})."


def summary_findings(summary: pd.DataFrame) -> list[str]:
    """Tables 2-5: per (model, task) which LS condition lowered n-Eng most (Δn-Eng, CI, and its
    random counterpart), whether the paper's condition gives the largest positive Δ, and output-
    language fidelity under D_G vs D^R_G for the generation tasks."""
    out = []
    for (model, task), part in summary.groupby(["model", "task"], sort=False):
        main = _main_rows(part)
        keep = [
            not CONDITIONS[_base(c)].is_random and is_num(r) for c, r in main["delta_n_eng"].items()
        ]
        ls = main.iloc[[i for i, k in enumerate(keep) if k]]
        if ls.empty:
            continue
        sentences = [_head(part, model, task)]
        worst = ls["delta_n_eng"].astype(float).idxmin()
        row = ls.loc[worst]
        if float(row["delta_n_eng"]) < 0:
            s = f"{lit(worst)} lowered n-Eng most: Δn-Eng {_ci(row, 'delta_n_eng')}"
        else:
            s = f"no LS condition lowered n-Eng (smallest change: {lit(worst)}, {_ci(row, 'delta_n_eng')})"
        rand = random_counterpart(worst)
        if rand in main.index:
            s += f"; its random counterpart {lit(rand)}: {_ci(main.loc[rand], 'delta_n_eng')}"
        sentences.append(s[0].upper() + s[1:] + ".")
        if task in PAPER_CLAIMS:
            paper_cond, claim = PAPER_CLAIMS[task]
            cond = _find(ls.index, paper_cond)
            if cond is not None:
                r = ls.loc[cond]
                v, reason = _verdict(r, "delta", +1)
                deltas = ls["delta"].astype(float)
                best = deltas.idxmax() if deltas.notna().any() else cond
                rank = (
                    "the largest of the LS conditions"
                    if best == cond or deltas[best] == deltas[cond]
                    else f"not the largest ({lit(best)}: {fmt(deltas[best])})"
                )
                sentences.append(
                    f"The paper: {claim}. Here Δ under {lit(cond)} is {_ci(r, 'delta')}, {rank}: "
                    f"{v} ({reason}{bound_note(r.get('baseline_at_bound'))})."
                )
            else:
                sentences.append(
                    f"The paper's condition {lit(paper_cond)} was not run for this task."
                )
        fid = _fidelity_sentence(main)
        if fid:
            sentences.append(fid)
        out.append(" ".join(sentences))
    return out


def table1_findings(table: pd.DataFrame) -> list[str]:
    """Table 1: the relative drop of the task metric (Avg over languages) with all LS neurons
    deactivated vs with as many random neurons, against the paper's ≈99%."""
    out = []
    for model, part in table.groupby("model", sort=False):
        for metric, rows in part.groupby("metric", sort=False):
            avg = rows.set_index("method")["Avg"]
            orig, ls, rnd = (
                avg.get(k) for k in ("Original", "Deactivate Lang-Spec", "Deactivate Random")
            )
            if not (is_num(orig) and is_num(ls)):
                continue
            if metric == "fidelity":
                out.append(
                    f"{esc(model)}: answers in the query's language (beyond the paper): "
                    f"{fmt(orig, sign=False)}% originally, {fmt(ls, sign=False)}% with the LS "
                    f"neurons deactivated"
                    + (f", {fmt(rnd, sign=False)}% with random neurons." if is_num(rnd) else ".")
                )
                continue
            if float(orig) <= 0:
                out.append(
                    f"{esc(model)}: the original {esc(metric)} is 0, so no drop can show: "
                    f"{INCONCLUSIVE}."
                )
                continue
            drop = 100 * (float(orig) - float(ls)) / float(orig)
            rdrop = 100 * (float(orig) - float(rnd)) / float(orig) if is_num(rnd) else float("nan")
            if drop >= 90 and not rdrop >= 90:
                v = AGREES
            elif drop < 10 or (is_num(rdrop) and drop <= rdrop):
                v = DISAGREES
            else:
                v = "partly agrees"
            out.append(
                f"{esc(model)}: deactivating the LS neurons changes {esc(metric)} (Avg) from "
                f"{fmt(orig, sign=False)} to {fmt(ls, sign=False)}, a relative change of {fmt(-drop, 0)}%"
                + (f" (random neurons: {fmt(-rdrop, 0)}%)" if is_num(rdrop) else "")
                + f"; the paper reports ≈-99%: {v} (Table 1 has no CIs; Tables 14-17 give the "
                "per-language CIs)."
            )
    return out


def baseline_findings(table: pd.DataFrame) -> list[str]:
    """Table 11: English vs the non-English mean per task, and baselines at 0 or 100."""
    out = []
    fixed = {"model", "task", "metric", "Avg", "en"}
    langs = [c for c in table.columns if c not in fixed]
    for _, row in table[table["metric"] != "fidelity"].iterrows():
        present = {l: float(row[l]) for l in langs if is_num(row[l])}
        s = f"{esc(row['model'])}, {esc(row['task'])} ({esc(row['metric'])}): English {fmt(row.get('en'), sign=False)}"
        if present:
            low = min(present, key=present.get)
            s += (
                f", non-English mean {fmt(row.get('Avg'), sign=False)} (lowest {esc(low)} "
                f"{fmt(present[low], sign=False)})"
            )
        bound = [
            f"{l}={v:.0f}"
            for l, v in ({"en": row.get("en")} | present).items()
            if is_num(v) and float(v) in (0.0, 100.0)
        ]
        if bound:
            s += (
                f"; at the floor or ceiling: {esc(' '.join(bound))}, where a deactivation can "
                "move the score one way only"
            )
        out.append(s + ".")
    return out


def sweep_findings(sweep: pd.DataFrame) -> list[str]:
    """Tables 12-13: per (model, task, D_U/D_G, language) the split with the largest Δ = ΔEn - ΔL
    (the paper picks the split that hurts English least and the target most)."""
    out = []
    for (model, task, base, lang), part in sweep.groupby(
        ["model", "task", "base", "lang"], sort=False
    ):
        part = part.loc[part["delta"].map(is_num).astype(bool).to_numpy()]
        if part.empty:
            continue
        key = "n1" if base == "D_U" else "n2"
        best = part.loc[part["delta"].astype(float).idxmax()]
        n = best.get(key)
        n_txt = f"{key.upper()} = {int(float(n))}" if is_num(n) else lit(best["condition"])
        v, reason = _verdict(best, "delta", +1)
        out.append(
            f"{esc(model)}, {esc(task)}, {lit(base)} on {esc(lang)}: of {len(part)} splits, "
            f"{n_txt} gives the largest Δ, {_ci(best, 'delta')} (ΔEn {fmt(best['delta_en'])}, "
            f"ΔL {fmt(best['delta_l'])}); hurting the target more than English: {v} ({reason}"
            f"{bound_note(best.get('baseline_at_bound'))})."
        )
    return out


def per_language_findings(per: pd.DataFrame) -> list[str]:
    """Tables 14-17: per (model, task), the paper's condition language by language: in how many
    languages Δ = ΔEn - ΔL is positive with a CI excluding 0."""
    out = []
    for (model, task), part in per.groupby(["model", "task"], sort=False):
        if task not in PAPER_CLAIMS:
            continue
        cond = PAPER_CLAIMS[task][0]
        rows = part[part["condition"] == cond]
        if rows.empty:
            continue
        verdicts = [(r["lang"], _verdict(r, "delta", +1)[0], r) for _, r in rows.iterrows()]
        n_agree = sum(v == AGREES for _, v, _ in verdicts)
        n_dis = sum(v == DISAGREES for _, v, _ in verdicts)
        detail = join_list([f"{esc(l)} {_ci(r, 'delta')}" for l, _, r in verdicts])
        out.append(
            f"{esc(model)}, {esc(task)}, {lit(cond)} (the paper's condition for this task): Δ is "
            f"positive with a CI excluding 0 ({AGREES}) in {n_agree} of {len(verdicts)} "
            f"languages, negative ({DISAGREES}) in {n_dis}, {INCONCLUSIVE} in the rest: {detail}."
        )
    return out
