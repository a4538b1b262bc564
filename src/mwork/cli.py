"""The `mwork` command line: detection, neuron-file tools, corpus preparation, tiny models.

    mwork detect --model DIR_OR_HF_ID --corpus FILE.jsonl --lang L --out FILE.safetensors [...]
    mwork neurons summary FILE [--csv OUT]
    mwork neurons merge --out OUT SHARD [SHARD ...]
    mwork neurons select FILE --min-fraction F --out OUT
    mwork neurons subtract FILE --minus OTHER [OTHER ...] [--all-overlap] --out OUT
    mwork corpus --lang L --out FILE (--path LOCAL | --dataset ID [--config C] [--split S])
    mwork tiny-model --family F --texts FILE.jsonl --out DIR
    mwork finetune train --model M --docs FILE.jsonl --lang L --out DELTA [--neurons FILE] [...]
    mwork finetune merge --base DIR --delta DELTA --out DIR

Input problems print one line `error: ...` and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import unicodedata
from pathlib import Path

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


def _add_detect(sub: argparse._SubParsersAction) -> None:
    d = schema_default
    p = sub.add_parser("detect", help="PLND language-specific neuron detection")
    p.add_argument("--model", required=True, help="local model directory or HF hub id")
    p.add_argument("--corpus", required=True, help="JSONL corpus with a `text` field")
    p.add_argument("--lang", required=True, help="language code of the corpus (e.g. zh)")
    p.add_argument("--out", required=True, help="output neuron file (.safetensors)")
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
    p.add_argument("--batch-size", type=int, default=d("detection/batch_size"))
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
        choices=["auto", "compiled", "torch"],
        default=d("detection/qk_kernel"),
        help="exact Q/K scoring on CPU: the C kernel for head dims >= 16 when it builds (auto), "
        "always (compiled), or never (torch)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--dtype",
        default=d("models/dtype"),
        help="auto, float32, bfloat16, float16, float64 (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d("detection/seed"),
        help="document sampling seed (released code: 112)",
    )
    p.add_argument(
        "--shard", type=_shard, default=(0, 1), help="process shard I of N of the documents"
    )
    p.add_argument(
        "--model-name", default=None, help="name recorded in the file (default: --model)"
    )
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub")


def _run_detect(a: argparse.Namespace) -> None:
    from mwork.detect import detect_to_file

    settings = DetectionSettings(
        importance=a.importance,
        top_k_ffn=a.top_k_ffn,
        top_k_attn=a.top_k_attn,
        epsilon_ffn=a.epsilon_ffn,
        epsilon_attn=a.epsilon_attn,
        min_fraction=a.min_fraction,
        max_tokens=a.max_tokens,
        seed=a.seed,
        n_docs=a.n_docs,
        batch_size=a.batch_size,
        qk_budget_mb=a.qk_budget_mb,
        qk_scoring=a.qk_scoring,
        qk_kernel=a.qk_kernel,
    )
    spec = ModelSpec(
        ref=a.model, name=a.model_name, dtype=a.dtype, trust_remote_code=a.trust_remote_code
    )
    check_output(a.out, inputs=[a.corpus], model_dirs=[a.model])
    detect_to_file(spec, a.corpus, a.lang, a.out, settings, a.shard, a.device)


def _add_neurons(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neurons", help="inspect and combine neuron files")
    nsub = p.add_subparsers(dest="neurons_cmd", required=True)
    s = nsub.add_parser("summary", help="counts per layer/component and share of all neurons")
    s.add_argument("file")
    s.add_argument("--csv", default=None, help="also write the table as CSV")
    m = nsub.add_parser("merge", help="merge document shards (adds doc_counts)")
    m.add_argument("--out", required=True)
    m.add_argument("shards", nargs="+")
    f = nsub.add_parser("select", help="re-select with another document fraction")
    f.add_argument("file")
    f.add_argument("--min-fraction", type=float, required=True)
    f.add_argument("--out", required=True)
    d = nsub.add_parser(
        "subtract", help="App. E variants: minus English / minus all-language overlap"
    )
    d.add_argument("file")
    d.add_argument("--minus", nargs="+", required=True, help="neuron files to subtract")
    d.add_argument(
        "--all-overlap",
        action="store_true",
        help="subtract the intersection of FILE and all --minus files instead of their union",
    )
    d.add_argument("--variant", default=None, help="variant name recorded in the file")
    d.add_argument("--out", required=True)


def _run_neurons(a: argparse.Namespace) -> None:
    from mwork import neuronset as nsm
    from mwork.atomic import write_csv
    from mwork.neuronstats import format_summary, summary_table

    if a.neurons_cmd == "summary":
        if a.csv:
            check_output(a.csv, inputs=[a.file], option="--csv")
        ns = nsm.load_neuron_set(a.file)
        table = summary_table(ns)
        shown = dataclasses.replace(ns, meta={k: printable(v) for k, v in ns.meta.items()})
        print(format_summary(shown, table))
        if a.csv:
            write_csv(a.csv, table)
    elif a.neurons_cmd == "merge":
        check_output(a.out, inputs=a.shards)
        nsm.save_neuron_set(
            nsm.merge_neuron_sets([nsm.load_neuron_set(p) for p in a.shards]), a.out
        )
    elif a.neurons_cmd == "select":
        check_output(a.out, inputs=[a.file])
        nsm.select_by_fraction({}, 1, a.min_fraction)  # the range, before reading the file
        nsm.save_neuron_set(nsm.reselect(nsm.load_neuron_set(a.file), a.min_fraction), a.out)
    elif a.neurons_cmd == "subtract":
        check_output(a.out, inputs=[a.file, *a.minus])
        ns = nsm.load_neuron_set(a.file)
        others = [nsm.load_neuron_set(p) for p in a.minus]
        nsm.save_neuron_set(nsm.derive_variant(ns, others, a.all_overlap, a.variant), a.out)


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
    parser = argparse.ArgumentParser(prog="mwork", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for add in (_add_detect, _add_neurons, _add_corpus, _add_tiny, finetune_cli.add_parser):
        add(sub)
    a = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if a.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run = {
        "detect": _run_detect,
        "neurons": _run_neurons,
        "corpus": _run_corpus,
        "tiny-model": _run_tiny,
        "finetune": finetune_cli.run,
    }
    try:
        run[a.cmd](a)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers
    except MworkError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
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
