"""Measure the demo model: held-out perplexity and task accuracy per language, trained vs untrained.

Usage:
    python demo/measure_model.py [--model results/demo/model] [--world results/demo/world]
                                 [--config demo/config.yaml] [--limit 50] [--threads 2]

Prints a Markdown table. The untrained baseline is the same architecture, freshly initialised
with the configured seed. X-CSQA chance is 1/5; extractive QA has no fixed chance level (the
untrained model's score is the baseline). Also prints the training mixture's token share per
language (the mixture is regenerated from the config and tokenised with the model's tokenizer).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from mwork.demo import quality as V
from mwork.demo.emit import WorldConfig
from mwork.demo.mixture import language_shares, training_docs
from mwork.demo.world import build_world


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows[:limit] if limit else rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="results/demo/model")
    ap.add_argument("--world", default="results/demo/world")
    ap.add_argument("--config", default="demo/config.yaml")
    ap.add_argument("--limit", type=int, default=50, help="items per task and language")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    demo = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))["demo"]
    langs, world_dir = demo["languages"], Path(args.world)
    tok = AutoTokenizer.from_pretrained(args.model)
    trained = AutoModelForCausalLM.from_pretrained(args.model).eval()
    torch.manual_seed(demo["seed"])
    untrained = AutoModelForCausalLM.from_config(trained.config).eval()
    start = time.perf_counter()
    print(
        "| lang | PPL untrained | PPL trained | XQuAD untrained | XQuAD trained | X-CSQA untrained "
        "| X-CSQA trained | X-CSQA chance | MGSM trained |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for lang in langs:
        held = [r["text"] for r in read_jsonl(world_dir / "heldout" / f"{lang}.jsonl")]
        qa = read_jsonl(world_dir / "bench" / "xquad" / f"{lang}.jsonl", args.limit)
        mc = read_jsonl(world_dir / "bench" / "xcsqa" / f"{lang}.jsonl", args.limit)
        gsm = read_jsonl(world_dir / "bench" / "mgsm" / f"{lang}.jsonl", args.limit)
        cells = [
            f"{V.perplexity(untrained, tok, held):.1f}",
            f"{V.perplexity(trained, tok, held):.2f}",
            f"{V.xquad_accuracy(untrained, tok, qa, lang):.2f}",
            f"{V.xquad_accuracy(trained, tok, qa, lang):.2f}",
            f"{V.xcsqa_accuracy(untrained, tok, mc, lang):.2f}",
            f"{V.xcsqa_accuracy(trained, tok, mc, lang):.2f}",
            "0.20",
            f"{V.mgsm_accuracy(trained, tok, gsm, lang):.2f}",
        ]
        print(f"| {lang} | " + " | ".join(cells) + " |", flush=True)
    cfg = WorldConfig.from_dict(demo["world"])
    world = build_world(demo["seed"], cfg.n_people, cfg.n_events)
    docs = training_docs(
        world,
        langs,
        cfg.train_docs,
        cfg.english_share,
        cfg.parallel_share,
        cfg.codeswitch_share,
        demo["seed"],
        cfg.language_weights,
    )
    shares = language_shares(docs, lambda s: len(tok(s, add_special_tokens=False)["input_ids"]))
    print("\nTraining-mixture token share: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    log = json.loads((Path(args.model) / "train_log.json").read_text(encoding="utf-8"))
    print(
        f"Model: {log['n_params']:,} parameters, {log['config']['steps']} steps, {log['epochs']} epochs "
        f"over {log['n_tokens']:,} tokens, final train loss {log['final_loss']:.3f}, "
        f"training wall time {log['wall_s']} s; measured in {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
