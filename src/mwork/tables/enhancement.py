"""Neuron fine-tuning (enhancement) tables: Figure 4 and Table 6 (paper §4; run labels ft_{kind}-{N})."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mwork.runlabel import BASELINE, is_finetune_label
from mwork.settings import schema_default, schema_field
from mwork.tables.bootstrap import NAN_STAT, ScoreStats, Stat, with_ci


@dataclass(frozen=True)
class EnhancementSettings:
    """Which languages and N the enhancement tables show (config `finetune`).

    Attributes:
        high_resource: Fig. 4 languages (per task, averaged over those the task covers).
        low_resource: Table 6 languages (each averaged over the tasks that exist for it).
        n_docs: N of the LS runs (Fig. 4 bars 100/200/400/800).
        baseline_n_docs: N of the random / full baselines and of Table 6's Lang-Spec row.
    """

    high_resource: tuple[str, ...] = field(default=tuple(schema_default("finetune/high_resource")))
    low_resource: tuple[str, ...] = field(default=tuple(schema_default("finetune/low_resource")))
    n_docs: tuple[int, ...] = field(default=tuple(schema_default("finetune/n_docs")))
    baseline_n_docs: int = schema_field("finetune/baseline_n_docs")

    @classmethod
    def from_mapping(cls, values: dict | None) -> EnhancementSettings:
        values = dict(values or {})
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def methods(self) -> list[tuple[str, str, int | None]]:
        """(method name, condition, N) in Fig. 4's bar order; `none` is the original model."""
        n0 = self.baseline_n_docs
        out = [
            ("Original", BASELINE, None),
            (f"Random-{n0}", f"ft_random-{n0}", n0),
            (f"Full-{n0}", f"ft_full-{n0}", n0),
        ]
        return out + [(f"LS-{n}", f"ft_ls-{n}", n) for n in sorted(set(self.n_docs) | {n0})]


def _ft_cell(
    stats: ScoreStats, key: tuple[str, str, str], lang: str, cond: str, mask: str
) -> Stat | None:
    model, task, metric = key
    if cond == BASELINE:
        return stats.get(model, task, metric, lang, BASELINE, "none")
    return stats.get(model, task, metric, lang, cond, mask)


def _ft_langs(stats: ScoreStats, key: tuple[str, str, str], langs: tuple[str, ...]) -> list[str]:
    """Languages of `langs` with an original score and at least one fine-tuned run on this task."""
    have = {k[5] for k in stats.cells if k[:3] == key and is_finetune_label(k[4])}
    return [lang for lang in langs if lang in have and _ft_cell(stats, key, lang, BASELINE, "none")]


def _mean_or_nan(parts: list[Stat | None]) -> Stat:
    return NAN_STAT if not parts or any(p is None for p in parts) else Stat.mean(parts)  # type: ignore[arg-type]


def _method_rows(
    stats: ScoreStats, settings: EnhancementSettings, cells: dict[str, list[tuple]], english: str
) -> list[dict]:
    """Rows per method of averaged scores: `cells` = lang -> [(model, task, metric)] to average."""
    rows = []
    pairs = [(lang, key) for lang, keys in cells.items() for key in keys]
    for method, cond, n in settings.methods():
        if cond != BASELINE and not any(_ft_cell(stats, k, lang, cond, lang) for lang, k in pairs):
            continue  # a kind that is not configured (e.g. full on 7B models)
        for lang, keys in cells.items():
            score = _mean_or_nan([_ft_cell(stats, k, lang, cond, lang) for k in keys])
            orig = _mean_or_nan([_ft_cell(stats, k, lang, BASELINE, "none") for k in keys])
            rows.append(
                {
                    "method": method,
                    "condition": cond,
                    "n_docs": n,
                    "lang": lang,
                    "stat": score,
                    "delta": score - orig if NAN_STAT not in (score, orig) else NAN_STAT,
                }
            )
        en = _mean_or_nan(
            [
                _mean_or_nan([_ft_cell(stats, k, english, cond, lang) for k in keys])
                for lang, keys in cells.items()
            ]
        )
        en_o = _mean_or_nan(
            [
                _mean_or_nan([_ft_cell(stats, k, english, BASELINE, "none") for k in keys])
                for lang, keys in cells.items()
            ]
        )
        rows.append(
            {
                "method": method,
                "condition": cond,
                "n_docs": n,
                "lang": english,
                "stat": en,
                "delta": en - en_o if NAN_STAT not in (en, en_o) else NAN_STAT,
            }
        )
    return rows


def _finish(rows: list[dict], level: float) -> list[dict]:
    out = []
    for r in rows:
        row = {k: v for k, v in r.items() if k not in ("stat", "delta")}
        with_ci(row, "score", r["stat"], level)
        with_ci(row, "delta", r["delta"], level)
        out.append(row)
    return out


def fig4_table(
    stats: ScoreStats, settings: EnhancementSettings, english: str = "en", level: float = 0.95
) -> pd.DataFrame:
    """Figure 4's data: per (model, task, metric) and method (Original, Random-N0, [Full-N0], LS-N),
    the score averaged over the high-resource languages the task covers (`lang` = "avg"), and the
    fine-tuned models' English score (`lang` = en, averaged the same way), with paired bootstrap
    CIs of the score and of its difference from the original model (`delta`).

    Columns: model, task, metric, langs, method, condition, n_docs, lang, score(+_lo/_hi),
    delta(+_lo/_hi).
    """
    rows = []
    keys = sorted({k[:3] for k in stats.cells if is_finetune_label(k[4])})
    for key in keys:
        langs = _ft_langs(stats, key, settings.high_resource)
        if not langs:
            continue
        model, task, metric = key
        # the average over languages is one "language" (avg) of len(langs) cells
        per = _method_rows(stats, settings, {lang: [key] for lang in langs}, english)
        grouped: dict[str, dict] = {}
        for r in per:
            if r["lang"] == english:
                grouped.setdefault(r["method"] + "|en", dict(r))
                continue
            g = grouped.setdefault(r["method"] + "|avg", {**r, "lang": "avg", "_s": [], "_d": []})
            g["_s"].append(r["stat"])
            g["_d"].append(r["delta"])
        for g in grouped.values():
            if "_s" in g:
                g["stat"] = (
                    NAN_STAT if any(s is NAN_STAT for s in g["_s"]) else Stat.mean(g.pop("_s"))
                )
                g["delta"] = (
                    NAN_STAT if any(s is NAN_STAT for s in g["_d"]) else Stat.mean(g.pop("_d"))
                )
                g.pop("_s", None), g.pop("_d", None)
        for r in _finish(list(grouped.values()), level):
            rows.append(
                {"model": model, "task": task, "metric": metric, "langs": " ".join(langs), **r}
            )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    order = {m: i for i, (m, _, _) in enumerate(settings.methods())}
    df["_o"] = df["method"].map(order)
    df["_l"] = (df["lang"] == english).astype(int)
    return (
        df.sort_values(["model", "task", "_l", "_o"], kind="stable")
        .drop(columns=["_o", "_l"])
        .reset_index(drop=True)
    )


def table6(
    stats: ScoreStats, settings: EnhancementSettings, english: str = "en", level: float = 0.95
) -> pd.DataFrame:
    """Table 6: per model and method (Original, Random, [Full], Lang-Spec at baseline_n_docs), each
    low-resource language's score averaged over the tasks that exist for it, and En = the mean over
    the fine-tuned models (each averaged over its language's tasks), with paired bootstrap CIs of
    the score and of the change from the original model.

    Columns: model, method, condition, n_docs, lang, tasks, score(+_lo/_hi), delta(+_lo/_hi).
    """
    n0 = settings.baseline_n_docs
    only = EnhancementSettings(settings.high_resource, settings.low_resource, (n0,), n0)
    names = {
        "Original": "Original",
        f"Random-{n0}": "Random",
        f"Full-{n0}": "Full",
        f"LS-{n0}": "Lang-Spec",
    }
    rows = []
    for model in sorted({k[0] for k in stats.cells if is_finetune_label(k[4])}):
        keys = sorted({k[:3] for k in stats.cells if k[0] == model})
        cells = {}
        for lang in settings.low_resource:
            have = [k for k in keys if lang in _ft_langs(stats, k, (lang,))]
            if have:
                cells[lang] = have
        if not cells:
            continue
        for r in _finish(_method_rows(stats, only, cells, english), level):
            tasks = (
                sorted({k[1] for k in cells.get(r["lang"], [])})
                if r["lang"] != english
                else ["mean"]
            )
            rows.append(
                {
                    "model": model,
                    **r,
                    "method": names.get(r["method"], r["method"]),
                    "tasks": " ".join(tasks),
                }
            )
    return pd.DataFrame(rows)
