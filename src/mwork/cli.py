"""The `mwork` command line: studies, detection, neuron-file tools, corpora, tiny models.

    mwork init STUDY --model DIR_OR_HF_ID --languages en fr [--task T=ROWS/{lang}.jsonl ...]
    mwork plan --configfile STUDY/config.yaml [-d STUDY]
    mwork conditions
    mwork detect --model DIR_OR_HF_ID --corpus FILE.jsonl --lang L --out FILE.safetensors [...]
    mwork neurons summary|compare|merge|select|subtract ...      (cli_neurons; torch-free)
    mwork lape record ... | mwork lape select RECORDING ... --out-dir DIR
    mwork corpus --lang L --out FILE (--path LOCAL | --dataset ID [--config C] [--split S])
    mwork tiny-model --family F --texts FILE.jsonl --out DIR
    mwork finetune train --model M --docs FILE.jsonl --lang L --out DELTA [--neurons FILE] [...]
    mwork finetune merge --base DIR --delta DELTA --out DIR

Input problems print one line `error: ...` and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import unicodedata
from pathlib import Path

from mwork import cli_neurons, cli_study
from mwork.configcheck import ConfigError
from mwork.configcheck_values import check_finite_options
from mwork.errors import MworkError
from mwork.finetune import cli as finetune_cli
from mwork.paths import check_output
from mwork.settings import CorpusSettings, DetectionSettings, ModelSpec, schema_default


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like I/N, got {text!r}") from None
    return i, n


def _add_sampling(p: argparse.ArgumentParser) -> None:
    """Model, corpus and document options shared by `detect` and `lape record`; every default
    is the schema's (the workflow's), the corpus passes the pool's filters as the workflow's does."""
    d = schema_default
    p.add_argument("--model", required=True, help="local model directory or HF hub id")
    p.add_argument("--corpus", required=True, help="JSONL/Parquet corpus with a `text` field")
    p.add_argument("--lang", required=True, help="language code of the corpus (e.g. zh)")
    p.add_argument("--out", required=True, help="output file (.safetensors)")
    p.add_argument(
        "--n-docs",
        type=int,
        default=d("detection/n_docs"),
        help="documents sampled by --seed (default %(default)s)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=d("detection/max_tokens"),
        help="truncate documents to T tokens (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d("detection/seed"),
        help="document sampling seed (released code: 112)",
    )
    p.add_argument("--batch-size", type=int, default=d("detection/batch_size"))
    p.add_argument("--pool-size", type=int, default=d("corpus/pool_size"), help="corpus.pool_size")
    p.add_argument("--min-chars", type=int, default=d("corpus/min_chars"), help="corpus.min_chars")
    p.add_argument("--max-chars", type=int, default=d("corpus/max_chars"), help="corpus.max_chars")
    p.add_argument(
        "--shard", type=_shard, default=(0, 1), help="process shard I of N of the documents"
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--dtype",
        default=d("models/dtype"),
        help="auto, float32, bfloat16, float16, float64 (default %(default)s, models.dtype)",
    )
    p.add_argument(
        "--model-name", default=None, help="name recorded in the file (default: --model)"
    )
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub")


def _add_detect(sub: argparse._SubParsersAction) -> None:
    d = schema_default
    p = sub.add_parser(
        "detect",
        help="PLND language-specific neuron detection (rule detect_neurons)",
        description="PLND on one language. Defaults are the workflow's (the config schema's), "
        "and the corpus passes the corpus stage's filters (--min-chars, --max-chars, "
        "--pool-size), so a raw file gives the workflow's neuron file.",
    )
    _add_sampling(p)
    p.add_argument(
        "--top-k-ffn",
        type=int,
        default=d("detection/top_k_ffn"),
        help="per-document FFN top-k (default 2000, proportional)",
    )
    p.add_argument(
        "--top-k-attn",
        type=int,
        default=d("detection/top_k_attn"),
        help="per-document q top-k (default 1000, proportional)",
    )
    p.add_argument(
        "--epsilon-ffn",
        type=float,
        default=d("detection/epsilon_ffn"),
        help="absolute FFN threshold (replaces top-k)",
    )
    p.add_argument(
        "--epsilon-attn",
        type=float,
        default=d("detection/epsilon_attn"),
        help="absolute attention threshold",
    )
    p.add_argument(
        "--min-fraction",
        type=float,
        default=d("detection/min_fraction"),
        help="share of documents (1.0 = all, Eq. 2)",
    )
    p.add_argument(
        "--importance", choices=["paper", "released-code"], default=d("detection/importance")
    )
    p.add_argument(
        "--qk-budget-mb",
        type=float,
        default=d("detection/qk_budget_mb"),
        help="MiB of working memory per Q/K scoring block (default: from the device)",
    )
    p.add_argument(
        "--qk-scoring",
        choices=["exact", "first-order"],
        default=d("detection/qk_scoring"),
        help="Q/K Eq. 8: exact, or first-order (an approximation, see README; default %(default)s)",
    )
    p.add_argument(
        "--qk-kernel",
        choices=["auto", "compiled", "triton", "torch"],
        default=d("detection/qk_kernel"),
        help="exact Q/K scoring: the device's fused kernel where a calibration found it faster "
        "(auto), the C kernel on CPU (compiled), the Triton kernel on CUDA (triton), or torch",
    )


def _spec_and_settings(a: argparse.Namespace, plnd: bool = False):
    """(ModelSpec, DetectionSettings, pool CorpusSettings) of `detect` / `lape record` options."""
    sampling = {k: getattr(a, k) for k in ("max_tokens", "seed", "n_docs", "batch_size")}
    spec = ModelSpec(
        ref=a.model, name=a.model_name, dtype=a.dtype, trust_remote_code=a.trust_remote_code
    )
    pool = CorpusSettings(a.pool_size, a.min_chars, a.max_chars)
    pool.validate()
    if not plnd:
        return spec, DetectionSettings(**sampling), pool
    settings = DetectionSettings(
        importance=a.importance,
        top_k_ffn=a.top_k_ffn,
        top_k_attn=a.top_k_attn,
        epsilon_ffn=a.epsilon_ffn,
        epsilon_attn=a.epsilon_attn,
        min_fraction=a.min_fraction,
        qk_budget_mb=a.qk_budget_mb,
        qk_scoring=a.qk_scoring,
        qk_kernel=a.qk_kernel,
        **sampling,
    )
    return spec, settings, pool


def _run_detect(a: argparse.Namespace) -> None:
    from mwork.detect import detect_to_file

    spec, settings, pool = _spec_and_settings(a, plnd=True)
    check_output(a.out, inputs=[a.corpus], model_dirs=[a.model])
    detect_to_file(spec, a.corpus, a.lang, a.out, settings, a.shard, a.device, pool=pool)


def _add_corpus(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="download or read one language's documents into a JSONL pool")
    p.add_argument("--lang", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--path", default=None, help="local .jsonl/.parquet instead of the hub")
    p.add_argument("--dataset", default=None, help="HF dataset id, e.g. HuggingFaceFW/fineweb-2")
    p.add_argument("--config", default=None, help="dataset config, e.g. deu_Latn")
    p.add_argument("--split", default=schema_default("corpus/sources/split"))
    p.add_argument("--text-field", default=schema_default("corpus/sources/text_field"))
    p.add_argument("--pool-size", type=int, default=schema_default("corpus/pool_size"))
    p.add_argument("--min-chars", type=int, default=schema_default("corpus/min_chars"))
    p.add_argument("--max-chars", type=int, default=schema_default("corpus/max_chars"))


def _run_corpus(a: argparse.Namespace) -> None:
    from mwork.corpus import CorpusSource, prepare_corpus
    from mwork.languages import check_language

    check_language(a.lang)
    settings = CorpusSettings(a.pool_size, a.min_chars, a.max_chars)
    settings.validate()
    check_output(a.out, inputs=[a.path] if a.path else [])
    src = CorpusSource(a.path, a.dataset, a.config, a.split, a.text_field)
    n = prepare_corpus(src, a.out, settings)
    print(f"{a.out}: {n} documents")


def _add_tiny(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tiny-model", help="write a tiny random model + trained tokenizer (for trying things)"
    )
    p.add_argument("--family", default="llama")
    p.add_argument("--texts", required=True, help="JSONL with `text` to train the tokenizer on")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)


def _run_tiny(a: argparse.Namespace) -> None:
    from mwork.corpus import read_corpus
    from mwork.tiny import save_tiny_model_dir

    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise MworkError(f"--out {out} is a file", "tiny-model writes a directory: pass a folder")
    if Path(a.texts).resolve().is_relative_to(out.resolve()):
        raise MworkError(f"--texts {a.texts} lies inside --out {out}", "write the model elsewhere")
    save_tiny_model_dir(out, a.family, read_corpus(a.texts), seed=a.seed)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mwork` command."""
    parser = argparse.ArgumentParser(
        prog="mwork",
        description=__doc__.splitlines()[0],
        epilog="Your own study: mwork init STUDY --model M --languages en fr; mwork plan "
        "--configfile STUDY/config.yaml -d STUDY; snakemake --configfile STUDY/config.yaml -d "
        "STUDY --cores N. --configfile replaces the repository's config.yaml (no merge) and reads "
        "every following word as a file: put target paths before it (docs/your-model.md).",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for add in (_add_detect, cli_neurons.add_neurons, _add_corpus, _add_tiny):
        add(sub)
    cli_neurons.add_lape(sub, _add_sampling)
    finetune_cli.add_parser(sub)
    cli_study.add_parsers(sub)
    a = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if a.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run = {
        "detect": _run_detect,
        "neurons": lambda a: cli_neurons.run_neurons(a, printable),
        "lape": lambda a: cli_neurons.run_lape(a, _spec_and_settings),
        "init": cli_study.run_init,
        "plan": cli_study.run_plan,
        "conditions": cli_study.run_conditions,
        "corpus": _run_corpus,
        "tiny-model": _run_tiny,
        "finetune": finetune_cli.run,
    }
    try:
        check_finite_options(a)  # `--lr inf`, `--min-fraction nan`: before anything runs
        run[a.cmd](a)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers
    except (MworkError, ConfigError) as exc:
        kind = "config: " if isinstance(exc, ConfigError) else ""
        print(f"error: {kind}{printable(' '.join(str(exc).split()))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it
    except BrokenPipeError:  # e.g. `mwork neurons summary F | head -0`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    except OSError as exc:  # unreadable/unwritable paths, full disks: the environment, not a bug
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"error: {printable(exc.strerror or str(exc))}{printable(where)}; check the path, "
            "permissions and free space",
            file=sys.stderr,
        )
        return 2
    return 0


def printable(text: str) -> str:
    """`text` with control/format characters escaped (`\\x1b`, `\\n`, `\\u202e`), so strings
    from someone else's file can neither colour the terminal nor forge output lines."""
    unsafe = _UNPRINTABLE
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in unsafe else ch
        for ch in text
    )


_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


if __name__ == "__main__":
    sys.exit(main())
