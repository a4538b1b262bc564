"""Agreement and speed of first-order Q/K scoring (mwork.plnd.first_order) against exact Eq. 8.

    python benchmarks/qk_approx_agreement.py [--demo-model DIR] [--demo-corpus DIR]
        [--demo-config demo/config.yaml] [--langs en,de,fr,zh,es,ru]
        [--stories DIR] [--stories-corpus FILE] [--n-docs 100] [--max-tokens 256]
        [--cases demo,stories,layer7b] [--seq-7b 512] [--repeats 2] [--json OUT.json]

Cases:
    demo     the demo's trained model and corpora, with the detection settings of demo/config.yaml
             (top_k_ffn 20, top_k_attn 8, min_fraction 1.0, max_tokens 128, batch 16), one
             detection per language.
    layer7b  speed only: Q/K scoring alone (mwork.plnd.qk_importance) on random pre-RoPE queries
             and keys of one Mistral-7B-shaped layer (32 query / 8 kv heads, head 128, RoPE), one
             --seq-7b-token document; best of --repeats alternating runs per mode.
    stories  stories260K (real trained Llama, GQA 8/4 heads, head 8) on the paper's own English
             detection corpus, with the schema's default settings (proportional top-k: q 16 of 64
             per layer, k 8 of 32; min_fraction 1.0), --n-docs documents of ≤ --max-tokens tokens.

Per case and language, both modes score the same right-padded batches through PLNDProbe (every
component; FFN and V do not depend on the mode). Printed per component attn_q / attn_k:
    topk     mean over documents and layers of |A ∩ B| / |A|, A (B) the exact (first-order)
             per-document top-k of the layer;
    jaccard  |A ∩ B| / |A ∪ B| of the final language sets (selected on ≥ min_fraction of the
             documents, over all layers; 1.0 when both are empty) with both set sizes;
and the speed ratio exact seconds ÷ first-order seconds of the whole PLND pass (forward + all
components + top-k counting), timed batch by batch in alternation so both modes share the noise
of this run. Scoring dtype: float32 (the models' own), CPU, mwork.plnd's Q/K thread default.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import yaml

from mwork.adapters import AttnGeometry, attention_allowed
from mwork.atomic import atomic_write_text
from mwork.corpus import read_corpus, sample_documents
from mwork.detect import count_selected, padded_batches, selection_rule
from mwork.modeling import load_spec
from mwork.neuronset import select_by_fraction
from mwork.plnd import PLNDProbe, qk_importance
from mwork.settings import DetectionSettings, ModelSpec

MODES = ("exact", "first-order")
QK = ("attn_q", "attn_k")
COMPONENTS = ("ffn", "attn_q", "attn_k", "attn_v")


@dataclass
class Agreement:
    """One (case, language): what both modes selected and how long they took."""

    case: str
    lang: str
    n_docs: int
    topk: dict[str, float]  # component -> mean per-document top-k overlap |A∩B|/|A|
    jaccard: dict[str, float]  # component -> Jaccard of the final language sets
    sizes: dict[str, tuple[int, int]]  # component -> (|exact set|, |first-order set|)
    seconds: dict[str, float]  # mode -> seconds of the PLND pass


def _topk_hits(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[b, n_layers, n_units] -> bool of the same shape, True on each row's top-k."""
    top = torch.topk(scores, k, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top, True)


def compare(
    adapter,
    tokenizer,
    docs: list[str],
    settings: DetectionSettings,
    case: str,
    lang: str,
    repeats: int,
) -> Agreement:
    """Run PLND with both Q/K scorings over `docs`; agreement of their selections, and times
    (per batch the best of `repeats` alternating runs of each mode, summed over batches)."""
    rule = selection_rule(adapter, settings)
    batches, _ = padded_batches(adapter, tokenizer, docs, settings)
    probes = {m: PLNDProbe(adapter, COMPONENTS, settings.importance, qk_scoring=m) for m in MODES}
    counts = {
        m: {c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.int32) for c in QK}
        for m in MODES
    }
    seconds = dict.fromkeys(MODES, 0.0)
    overlap = dict.fromkeys(QK, 0.0)
    rows = 0
    for probe in probes.values():
        probe.__enter__()
    try:
        probes["exact"].run(*batches[0])  # warm-up (allocator, kernels), not timed
        probes["first-order"].run(*batches[0])
        for ids, mask in batches:
            scores, picked, best = {}, {}, dict.fromkeys(MODES, float("inf"))
            for _ in range(repeats):  # the work of detection: PLND pass + per-document top-k
                for m in MODES:
                    t0 = time.perf_counter()
                    scores[m] = probes[m].run(ids, mask)
                    picked[m] = {c: count_selected(scores[m][c], rule[c]) for c in COMPONENTS}
                    best[m] = min(best[m], time.perf_counter() - t0)
            for m in MODES:
                seconds[m] += best[m]
                for c in QK:
                    counts[m][c] += picked[m][c]
            for c in QK:
                kind, k = rule[c]
                if kind != "top_k":
                    raise SystemExit(f"{case}: {c} uses an ε threshold; this benchmark needs top-k")
                a = _topk_hits(scores["exact"][c], int(k))
                b = _topk_hits(scores["first-order"][c], int(k))
                overlap[c] += float(((a & b).sum(-1).double() / int(k)).sum())
            rows += ids.shape[0] * adapter.n_layers
    finally:
        for probe in probes.values():
            probe.__exit__(None, None, None)
    jaccard, sizes = {}, {}
    for c in QK:
        sel = {
            m: select_by_fraction({c: counts[m][c]}, len(docs), settings.min_fraction)[c]
            for m in MODES
        }
        a, b = sel["exact"], sel["first-order"]
        union = int((a | b).sum())
        jaccard[c] = 1.0 if union == 0 else int((a & b).sum()) / union
        sizes[c] = (int(a.sum()), int(b.sum()))
    topk = {c: overlap[c] / rows for c in QK}
    return Agreement(case, lang, len(docs), topk, jaccard, sizes, seconds)


def time_layer7b(seq: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds of exact and first-order Q/K scoring of one 7B-shaped layer."""
    g = torch.Generator().manual_seed(0)
    n_heads, n_kv, d = 32, 8, 128
    q = torch.randn(1, n_heads, seq, d, generator=g)
    k = torch.randn(1, n_kv, seq, d, generator=g)
    tm = torch.ones(1, seq)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2) / d))
    freqs = torch.arange(seq)[:, None] * inv_freq[None]
    emb = torch.cat([freqs, freqs], dim=-1)[None]
    geo = AttnGeometry(emb.cos(), emb.sin(), None, attention_allowed(tm, None), d**-0.5, None)
    best = dict.fromkeys(MODES, float("inf"))
    for _ in range(repeats):
        for m in MODES:
            t0 = time.perf_counter()
            qk_importance(q, k, geo, tm, scoring=m)
            best[m] = min(best[m], time.perf_counter() - t0)
    return best


def demo_settings(config: Path, n_docs: int) -> DetectionSettings:
    """DetectionSettings of the demo config's `detection` section (keys the detector uses)."""
    section = yaml.safe_load(config.read_text(encoding="utf-8"))["detection"]
    known = {f.name for f in fields(DetectionSettings)}
    values = {k: v for k, v in section.items() if k in known}
    settings = DetectionSettings(**values)
    return replace(settings, n_docs=min(n_docs, settings.n_docs or n_docs), qk_scoring="exact")


def run_case(
    case: str,
    model_dir: str,
    corpora: dict[str, Path],
    settings: DetectionSettings,
    repeats: int,
) -> list[Agreement]:
    settings.validate()
    spec = ModelSpec(ref=model_dir, name=case, dtype="float32")
    model, tokenizer, adapter = load_spec(spec, "cpu")
    out = []
    for lang, path in corpora.items():
        docs = sample_documents(read_corpus(path), settings.n_docs, settings.seed)
        out.append(compare(adapter, tokenizer, docs, settings, case, lang, repeats))
        print_row(out[-1], flush=True)
    del model
    return out


HEADER = (
    f"{'case':<8} {'lang':<4} {'docs':>4}  "
    f"{'q topk':>6} {'q jacc':>6} {'q sets':>9}  {'k topk':>6} {'k jacc':>6} {'k sets':>9}  "
    f"{'exact s':>8} {'f-o s':>7} {'ratio':>6}"
)


def print_row(r: Agreement, flush: bool = False) -> None:
    cells = []
    for c in QK:
        e, f = r.sizes[c]
        cells.append(f"{r.topk[c]:6.3f} {r.jaccard[c]:6.3f} {f'{e}/{f}':>9}")
    ex, fo = r.seconds["exact"], r.seconds["first-order"]
    print(
        f"{r.case:<8} {r.lang:<4} {r.n_docs:>4}  {cells[0]}  {cells[1]}  "
        f"{ex:8.2f} {fo:7.2f} {ex / fo:6.2f}",
        flush=flush,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="demo,stories,layer7b")
    ap.add_argument("--demo-model", default="results/demo/model")
    ap.add_argument("--demo-corpus", default="results/demo/world/corpus", help="{lang}.jsonl dir")
    ap.add_argument("--demo-config", default="demo/config.yaml")
    ap.add_argument("--langs", default="en,de,fr,zh,es,ru")
    ap.add_argument("--stories", default="../shared/realdata/models/stories260K")
    ap.add_argument("--stories-corpus", default="../shared/realdata/corpus/en.jsonl")
    ap.add_argument("--n-docs", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=256, help="stories260K (demo: its config)")
    ap.add_argument("--seq-7b", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per batch and mode (best)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    a = ap.parse_args()
    cases = a.cases.split(",")
    torch.manual_seed(0)
    if {"demo", "stories"} & set(cases):
        print(HEADER, flush=True)
    results: list[Agreement] = []
    if "demo" in cases:
        corpora = {lang: Path(a.demo_corpus) / f"{lang}.jsonl" for lang in a.langs.split(",")}
        settings = demo_settings(Path(a.demo_config), a.n_docs)
        results += run_case("demo", a.demo_model, corpora, settings, a.repeats)
    if "stories" in cases:
        settings = DetectionSettings(n_docs=a.n_docs, max_tokens=a.max_tokens)
        corpora = {"en": Path(a.stories_corpus)}
        results += run_case("stories", a.stories, corpora, settings, a.repeats)
    for case in dict.fromkeys(r.case for r in results):
        rs = [r for r in results if r.case == case]
        ex = sum(r.seconds["exact"] for r in rs)
        fo = sum(r.seconds["first-order"] for r in rs)
        mean = {
            f"{c} {m}": sum(getattr(r, m)[c] for r in rs) / len(rs)
            for c in QK
            for m in ("topk", "jaccard")
        }
        print(
            f"{case}: mean "
            + ", ".join(f"{k} {v:.3f}" for k, v in mean.items())
            + f"; exact {ex:.2f} s / first-order {fo:.2f} s = {ex / fo:.2f}x"
        )
    layer7b = None
    if "layer7b" in cases:
        t = layer7b = time_layer7b(a.seq_7b, a.repeats)
        ex, fo = t["exact"], t["first-order"]
        print(
            f"layer7b: Q/K only, {a.seq_7b} tokens: exact {ex:.2f} s / "
            f"first-order {fo:.2f} s = {ex / fo:.2f}x"
        )
    if a.json:
        rows = {"runs": [r.__dict__ for r in results], "layer7b_seconds": layer7b}
        atomic_write_text(a.json, json.dumps(rows, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
