"""Agreement and accuracy of the offline LID backends on mwork's labelled token sample.

Usage: python benchmarks/lid_agreement.py [--out benchmarks/lid_agreement.tsv]

Sample: src/mwork/data/lid_sample.tsv (words, short phrases and non-words for en de fr zh es ru).
Per configuration (backend x script shortcut x min_prob) it reports:
    coverage   share of language rows identified reliably (higher = more tokens counted);
    precision  accuracy among reliably identified language rows (what the lens relies on);
    top1       accuracy of the top guess, ignoring reliability;
    false_rel  share of non-words ("none") marked reliable (should be 0).
Then pairwise agreement between backends (default settings): on rows both call reliable, the
share with the same label. Prints Markdown tables and writes a TSV.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pandas as pd

from mwork.lid import DEFAULT_MIN_PROB, TokenLanguageIdentifier, available_backends, lid_sample

CANDIDATES = ("en", "de", "fr", "zh", "es", "ru")


def evaluate(ident: TokenLanguageIdentifier, sample: pd.DataFrame) -> pd.DataFrame:
    """Per-row predictions: columns lang, kind, text, pred, reliable."""
    preds = [ident.identify(t) for t in sample["text"]]
    return sample.assign(pred=[p[0] for p in preds], reliable=[p[1] for p in preds])


def summarise(pred: pd.DataFrame) -> dict[str, float]:
    """coverage, precision, top1 on language rows; false_rel on non-words."""
    lang = pred[pred["lang"] != "none"]
    none = pred[pred["lang"] == "none"]
    rel = lang[lang["reliable"]]
    return {
        "n": len(lang),
        "coverage": len(rel) / len(lang),
        "precision": float((rel["pred"] == rel["lang"]).mean()) if len(rel) else float("nan"),
        "top1": float((lang["pred"] == lang["lang"]).mean()),
        "false_rel": float(none["reliable"].mean()) if len(none) else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/lid_agreement.tsv")
    args = ap.parse_args()
    sample = lid_sample()
    backends = available_backends()
    rows, defaults = [], {}
    for backend in backends:
        probs = (0.5,) if backend == "cld3" else (0.5, 0.7, 0.8, 0.9)
        for shortcut, min_prob in itertools.product((True, False), probs):
            ident = TokenLanguageIdentifier(
                CANDIDATES, backend, min_prob=min_prob, script_shortcut=shortcut
            )
            pred = evaluate(ident, sample)
            rows.append(
                {
                    "backend": backend,
                    "script_shortcut": shortcut,
                    "min_prob": min_prob,
                    **summarise(pred),
                }
            )
            if shortcut and min_prob == DEFAULT_MIN_PROB[backend]:
                defaults[backend] = pred
                for kind in ("word", "phrase"):
                    part = pred[pred["kind"].isin([kind, "nonword"])]
                    rows.append(
                        {
                            "backend": backend,
                            "script_shortcut": shortcut,
                            "min_prob": min_prob,
                            "subset": kind,
                            **summarise(part),
                        }
                    )
    table = pd.DataFrame(rows).fillna({"subset": "all"})
    per_lang = []
    for backend, pred in defaults.items():
        for lang, part in pred[pred["lang"] != "none"].groupby("lang"):
            per_lang.append({"backend": backend, "lang": lang, **summarise(part)})
    agree = []
    for a, b in itertools.combinations(defaults, 2):
        pa, pb = defaults[a], defaults[b]
        lang = pa["lang"] != "none"
        both = lang & pa["reliable"] & pb["reliable"]
        agree.append(
            {
                "a": a,
                "b": b,
                "both_reliable": int(both.sum()),
                "agree_reliable": float((pa["pred"][both] == pb["pred"][both]).mean()),
                "agree_top1": float((pa["pred"][lang] == pb["pred"][lang]).mean()),
            }
        )
    pd.set_option("display.width", 160)
    print(f"backends available: {backends}; sample rows: {len(sample)}")
    print(table.round(3).to_markdown(index=False) if _has_tabulate() else table.round(3))
    print(pd.DataFrame(per_lang).round(3))
    print(pd.DataFrame(agree).round(3))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(
        [
            table.assign(section="config"),
            pd.DataFrame(per_lang).assign(section="per_lang"),
            pd.DataFrame(agree).assign(section="agreement"),
        ]
    ).to_csv(out, sep="\t", index=False)
    print(f"wrote {out}")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
