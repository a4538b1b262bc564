"""`mwork init`, `mwork plan`, `mwork conditions`: start, check and read a study (torch-free).

mwork init STUDY --model DIR_OR_HF_ID --languages en fr [--task xcsqa=ROWS/{lang}.jsonl ...]
mwork plan --configfile STUDY/config.yaml [-d STUDY]
mwork conditions
"""

from __future__ import annotations

import argparse
import os
import unicodedata
from pathlib import Path

from mwork.errors import MworkError

_TASKS = ("mgsm", "xquad", "xcsqa", "xlsum")


def _task(text: str) -> tuple[str, str | None]:
    task, _, template = text.partition("=")
    if task not in _TASKS:
        from mwork.suggest import did_you_mean

        raise argparse.ArgumentTypeError(
            f"unknown task {task!r}; {did_you_mean(task, _TASKS)}tasks: {', '.join(_TASKS)}"
        )
    if template and "{lang}" not in template:
        raise argparse.ArgumentTypeError(f"{text!r}: the rows template needs {{lang}}")
    return task, template or None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The `init`, `plan` and `conditions` subcommands."""
    p = sub.add_parser(
        "init",
        help="write STUDY/config.yaml for your model and languages (docs/your-model.md)",
        description="Write a commented study config whose language-dependent keys follow "
        "--languages; it is validated as the workflow validates it. Then: mwork plan "
        "--configfile STUDY/config.yaml -d STUDY; snakemake --configfile STUDY/config.yaml "
        "-d STUDY --cores N (--configfile replaces the repository's config.yaml).",
    )
    p.add_argument("study", help="folder of the study: its config.yaml and, with -d, its results")
    p.add_argument("--model", required=True, help="local model directory or HF hub id")
    p.add_argument("--languages", nargs="+", required=True, help="codes, e.g. en fr (en is added)")
    p.add_argument("--alias", default=None, help="model name in result paths (default: its name)")
    p.add_argument("--n-layers", type=int, default=None, help="needed for a hub id")
    p.add_argument(
        "--corpus", default=None, help="local detection text, a template with {lang} "
        "(JSONL with `text`); default: FineWeb / FineWeb-2 from the hub",
    )  # fmt: skip
    p.add_argument(
        "--task", type=_task, action="append", default=None, metavar="TASK[=ROWS]",
        help="benchmark to run (mgsm xquad xcsqa xlsum), with local rows as a {lang} template; "
        "repeat for more (default: all four from the hub)",
    )  # fmt: skip
    p.add_argument(
        "--conditions", nargs="+", default=None,
        help="run labels of every task (default: Table 2's D_U D_S D_G R_U R_all)",
    )  # fmt: skip
    p.add_argument(
        "--n-docs", type=int, default=None,
        help="detection.n_docs, documents per language (default: the paper's 1000)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite an existing config.yaml")
    q = sub.add_parser(
        "plan",
        help="pre-flight: what a config runs, drops and warns about (no job starts)",
        description="Validate a config as the workflow does and print, per task, the (condition, "
        "language) runs and what is dropped; per language, the documents the corpus pool has "
        "against detection.n_docs. Exit 2 on a config error, 0 otherwise (warnings included).",
    )
    q.add_argument("--configfile", required=True, help="the study's config (replaces config.yaml)")
    q.add_argument(
        "-d", "--directory", default=None,
        help="run directory, as snakemake -d: relative paths of the config resolve there",
    )  # fmt: skip
    sub.add_parser(
        "conditions", help="every deactivation condition: meaning, paper notation, masked cells"
    )


def run_init(a: argparse.Namespace) -> None:
    from mwork.initconfig import InitRequest, write_config

    tasks = dict(a.task) if a.task else {}
    req = InitRequest(a.model, a.languages, a.alias, a.n_layers, a.corpus, tasks, n_docs=a.n_docs)
    if a.conditions:  # checked with the whole config (schema pattern, "did you mean")
        req.conditions = list(a.conditions)
    path, notes = write_config(req, a.study, a.force)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {path}")
    print(f"check it:  mwork plan --configfile {path} -d {a.study}")
    print(f"run it:    snakemake --configfile {path} -d {a.study} --cores 4")


def run_plan(a: argparse.Namespace) -> int:
    from mwork.plan import Plan
    from mwork.preflight import preflight
    from mwork.studyconfig import load_config

    config_path = Path(a.configfile).resolve()
    if a.directory:
        if not Path(a.directory).is_dir():
            raise MworkError(f"-d {a.directory} is not a folder", "create it or fix the path")
        os.chdir(a.directory)  # as snakemake -d: relative config paths are the run directory's
    config = load_config(config_path)
    lines, warnings = preflight(Plan(config))
    print(f"config {config_path}: valid")
    print("\n".join(lines))
    for w in warnings:
        print(f"warning: {w}")
    print(f"{len(warnings)} warning(s)")
    return 0


def describe(cells: frozenset[tuple[str, str]], random: bool) -> str:
    """What a condition deactivates, in words."""
    names = {
        ("U", "attn"): "U attention", ("U", "ffn"): "U FFN", ("S", "attn"): "S attention",
        ("S", "ffn"): "S FFN", ("G", "attn"): "G attention", ("G", "ffn"): "G FFN",
    }  # fmt: skip
    parts = [names[c] for c in names if c in cells]
    merged = []
    for region in ("U", "S", "G"):
        both = {(region, "attn"), (region, "ffn")} <= cells
        merged += [region] if both else [p for p in parts if p.startswith(region)]
    what = "random neurons, matched in count to the LS set" if random else "LS neurons"
    return f"{what} in {' + '.join(merged)}"


def run_conditions(_a: argparse.Namespace) -> None:
    from mwork.runlabel import CONDITIONS, condition_table

    rows = condition_table()
    print("U = understanding layers (first N1), S = task-solving layers, G = generation layers")
    print("(last N2); ATTN = q/k/v units, FFN = FFN units; D = deactivated; LS = language-specific")
    head = f"{'condition':<13}{'paper':<12}{'U':<3}{'S-ATTN':<8}{'S-FFN':<7}{'G':<3}meaning"
    print(head)
    for r in rows:
        cond = CONDITIONS[r["condition"]]
        paper = r["paper"] + " " * (12 - sum(not unicodedata.combining(c) for c in r["paper"]))
        print(
            f"{r['condition']:<13}{paper}{r['U']:<3}{r['S-ATTN']:<8}{r['S-FFN']:<7}"
            f"{r['G']:<3}{describe(cond.cells, cond.is_random)}"
        )
    print(
        "run labels: CONDITION[-n1_N][-n2_N][.minus-en|.minus-shared]; -n1_N/-n2_N override the "
        "model's N1/N2 (sweep), .minus-en/.minus-shared use App. E's neuron sets; random "
        "conditions run once per evaluation.seeds (path suffix -s<seed>)"
    )
