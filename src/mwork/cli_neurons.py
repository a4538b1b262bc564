"""`mwork neurons ...` (torch-free neuron-file tools) and `mwork lape record|select`.

    mwork neurons summary FILE [--csv OUT]
    mwork neurons compare A B [--per-layer] [--csv OUT]
    mwork neurons merge --out OUT SHARD [SHARD ...]
    mwork neurons select FILE --min-fraction F --out OUT
    mwork neurons subtract FILE --minus OTHER [OTHER ...] [--all-overlap] --out OUT
    mwork lape record --model M --corpus FILE --lang L --out FILE [--shard I/N] [...]
    mwork lape select RECORDING [RECORDING ...] --out-dir DIR [--filter-rate ...]

The neuron tools import neither torch nor pandas for a summary (numpy + safetensors): a 7B file's
summary takes well under a second (benchmarks/neuron_tools.py). The LAPE commands write what the
workflow's record_activations / select_lape_neurons write, byte for byte, for the same inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from mwork.errors import MworkError
from mwork.paths import check_output
from mwork.settings import LapeSettings, schema_default


def add_neurons(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("neurons", help="inspect, compare and combine neuron files (torch-free)")
    nsub = p.add_subparsers(dest="neurons_cmd", required=True)
    s = nsub.add_parser("summary", help="counts per layer/component and share of all neurons")
    s.add_argument("file")
    s.add_argument("--csv", default=None, help="also write the table as CSV")
    c = nsub.add_parser(
        "compare", help="two files (languages, detectors, settings): Eq. 11 overlap and Jaccard"
    )
    c.add_argument("a", help="neuron file A")
    c.add_argument("b", help="neuron file B (same model)")
    c.add_argument("--per-layer", action="store_true", help="also one row per layer")
    c.add_argument("--csv", default=None, help="also write the rows as CSV")
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


def run_neurons(a: argparse.Namespace, printable) -> None:
    from mwork import neuronset as nsm

    if a.neurons_cmd == "summary":
        if a.csv:
            check_output(a.csv, inputs=[a.file], option="--csv")
        ns = nsm.load_neuron_set(a.file)
        if a.csv:  # the CSV is summary_table's (pandas), as summarize_neurons writes it
            from mwork.atomic import write_csv
            from mwork.neuronstats import format_summary, summary_table

            table = summary_table(ns)
            shown = dataclasses.replace(ns, meta={k: printable(v) for k, v in ns.meta.items()})
            print(format_summary(shown, table))
            write_csv(a.csv, table)
        else:  # no pandas: the text alone
            from mwork.neuronset.summary import format_summary_rows

            print(format_summary_rows(ns, {k: printable(v) for k, v in ns.meta.items()}))
    elif a.neurons_cmd == "compare":
        from mwork.neuronset.compare import COMPARE_COLUMNS, compare_sets, format_compare

        if a.csv:
            check_output(a.csv, inputs=[a.a, a.b], option="--csv")
        rows = compare_sets(nsm.load_neuron_set(a.a), nsm.load_neuron_set(a.b), a.per_layer)
        print(format_compare(rows, printable(a.a), printable(a.b)))
        if a.csv:
            import pandas as pd

            from mwork.atomic import write_csv

            write_csv(a.csv, pd.DataFrame(rows, columns=list(COMPARE_COLUMNS)))
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


def add_lape(sub: argparse._SubParsersAction, add_sampling) -> None:
    p = sub.add_parser("lape", help="LAPE (Tang et al. 2024): record activations, select jointly")
    lsub = p.add_subparsers(dest="lape_cmd", required=True)
    r = lsub.add_parser("record", help="FFN activation counts of one language (a GPU job)")
    add_sampling(r)  # --model --corpus --lang --out, sampling, batching, pool filters, dtype
    s = lsub.add_parser(
        "select", help="joint selection over languages: one neuron file per language"
    )
    s.add_argument(
        "recordings",
        nargs="+",
        help="recording files (shards of a language are merged); languages in the order given "
        "(the config's order reproduces the workflow's files byte for byte)",
    )
    s.add_argument("--out-dir", required=True, help="writes OUT_DIR/{lang}.safetensors")
    for key in ("filter_rate", "top_rate", "activation_bar_ratio"):
        s.add_argument(
            f"--{key.replace('_', '-')}",
            type=float,
            default=schema_default(f"detection/lape/{key}"),
            help="default %(default)s (detection.lape)",
        )


def run_lape(a: argparse.Namespace, spec_and_settings) -> None:
    if a.lape_cmd == "record":
        from mwork.lape import record_to_file

        spec, settings, pool = spec_and_settings(a)
        check_output(a.out, inputs=[a.corpus], model_dirs=[a.model])
        record_to_file(spec, a.corpus, a.lang, a.out, settings, a.shard, a.device, pool=pool)
        return
    from mwork.lape import select_to_files
    from mwork.neuronset import load_neuron_set

    shards: dict[str, list[str]] = {}
    for path in a.recordings:
        lang = load_neuron_set(path).meta.get("language")
        if not lang:
            raise MworkError(f"{path} has no language in its header", "pass LAPE recordings")
        shards.setdefault(lang, []).append(path)
    outs = {lang: str(Path(a.out_dir) / f"{lang}.safetensors") for lang in shards}
    for out in outs.values():
        check_output(out, inputs=a.recordings, option="--out-dir")
    settings = LapeSettings(a.filter_rate, a.top_rate, a.activation_bar_ratio)
    settings.validate()
    Path(a.out_dir).mkdir(parents=True, exist_ok=True)
    select_to_files(shards, outs, settings)
    for out in outs.values():
        print(out)
