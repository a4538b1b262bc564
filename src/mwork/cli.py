"""The `mwork` command line: detection, neuron-file tools, corpus preparation, tiny models.

    mwork detect --model DIR_OR_HF_ID --corpus FILE.jsonl --lang L --out FILE.safetensors [...]
    mwork neurons summary FILE [--csv OUT]
    mwork neurons merge --out OUT SHARD [SHARD ...]
    mwork neurons select FILE --min-fraction F --out OUT
    mwork neurons subtract FILE --minus OTHER [OTHER ...] [--all-overlap] --out OUT
    mwork corpus --lang L --out FILE (--path LOCAL | --dataset ID [--config C] [--split S])
    mwork tiny-model --family F --texts FILE.jsonl --out DIR

Input problems print one line `error: ...` and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mwork.errors import MworkError


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like I/N, got {text!r}") from None
    return i, n


def _add_detect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="PLND language-specific neuron detection")
    p.add_argument("--model", required=True, help="local model directory or HF hub id")
    p.add_argument("--corpus", required=True, help="JSONL corpus with a `text` field")
    p.add_argument("--lang", required=True, help="language code of the corpus (e.g. zh)")
    p.add_argument("--out", required=True, help="output neuron file (.safetensors)")
    p.add_argument("--n-docs", type=int, default=1000, help="documents sampled by --seed (default 1000)")
    p.add_argument("--max-tokens", type=int, default=512, help="truncate documents to T tokens")
    p.add_argument("--top-k-ffn", type=int, default=None, help="per-document FFN top-k (default 2000, proportional)")
    p.add_argument("--top-k-attn", type=int, default=None, help="per-document q top-k (default 1000, proportional)")
    p.add_argument("--epsilon-ffn", type=float, default=None, help="absolute FFN threshold (replaces top-k)")
    p.add_argument("--epsilon-attn", type=float, default=None, help="absolute attention threshold")
    p.add_argument("--min-fraction", type=float, default=1.0, help="share of documents (1.0 = all, Eq. 2)")
    p.add_argument("--importance", choices=["paper", "released-code"], default="paper")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16, float64")
    p.add_argument("--seed", type=int, default=112, help="document sampling seed (released code: 112)")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="process shard I of N of the documents")
    p.add_argument("--model-name", default=None, help="name recorded in the file (default: --model)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the hub")


def _run_detect(a: argparse.Namespace) -> None:
    from mwork.detect import DetectSettings, detect_to_file

    settings = DetectSettings(a.importance, a.top_k_ffn, a.top_k_attn, a.epsilon_ffn, a.epsilon_attn,
                              a.min_fraction, a.max_tokens, a.seed)
    detect_to_file(a.model, a.corpus, a.lang, a.out, settings, a.n_docs, a.batch_size, a.device,
                   a.dtype, a.shard, a.trust_remote_code, a.model_name)


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
    d = nsub.add_parser("subtract", help="App. E variants: minus English / minus all-language overlap")
    d.add_argument("file")
    d.add_argument("--minus", nargs="+", required=True, help="neuron files to subtract")
    d.add_argument("--all-overlap", action="store_true",
                   help="subtract the intersection of FILE and all --minus files instead of their union")
    d.add_argument("--variant", default=None, help="variant name recorded in the file")
    d.add_argument("--out", required=True)


def _run_neurons(a: argparse.Namespace) -> None:
    from mwork import neuronset as nsm

    if a.neurons_cmd == "summary":
        ns = nsm.load_neuron_set(a.file)
        table = nsm.summary_table(ns)
        print(nsm.format_summary(ns, table))
        if a.csv:
            nsm.write_csv(table, a.csv)
    elif a.neurons_cmd == "merge":
        nsm.save_neuron_set(nsm.merge_neuron_sets([nsm.load_neuron_set(p) for p in a.shards]), a.out)
    elif a.neurons_cmd == "select":
        ns = nsm.load_neuron_set(a.file)
        sel = nsm.select_by_fraction(ns.doc_counts, ns.n_docs, a.min_fraction)
        nsm.save_neuron_set(ns.with_selection(sel, min_fraction=repr(float(a.min_fraction))), a.out)
    elif a.neurons_cmd == "subtract":
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
    p.add_argument("--split", default="train")
    p.add_argument("--text-field", default="text")
    p.add_argument("--pool-size", type=int, default=10000)
    p.add_argument("--min-chars", type=int, default=200)
    p.add_argument("--max-chars", type=int, default=20000)


def _run_corpus(a: argparse.Namespace) -> None:
    from mwork.corpus import CorpusSource, prepare_corpus
    from mwork.languages import check_language

    check_language(a.lang)
    src = CorpusSource(a.path, a.dataset, a.config, a.split, a.text_field)
    n = prepare_corpus(src, a.out, a.pool_size, a.min_chars, a.max_chars)
    print(f"{a.out}: {n} documents")


def _add_tiny(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tiny-model", help="write a tiny random model + trained tokenizer (for trying things)")
    p.add_argument("--family", default="llama")
    p.add_argument("--texts", required=True, help="JSONL with `text` to train the tokenizer on")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)


def _run_tiny(a: argparse.Namespace) -> None:
    from mwork.corpus import read_corpus
    from mwork.tiny import save_tiny_model_dir

    save_tiny_model_dir(a.out, a.family, read_corpus(a.texts), seed=a.seed)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mwork` command."""
    parser = argparse.ArgumentParser(prog="mwork", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for add in (_add_detect, _add_neurons, _add_corpus, _add_tiny):
        add(sub)
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = {"detect": _run_detect, "neurons": _run_neurons, "corpus": _run_corpus, "tiny-model": _run_tiny}
    try:
        run[a.cmd](a)
    except MworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
