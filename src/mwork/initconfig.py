"""`mwork init`: a commented study config for one model and a language list (torch-free).

Every language-dependent key is derived from the languages given, so the paper's defaults (its six
languages) never leak into a smaller study: `languages.detect` (English first),
`corpus.sources` (local files from a `{lang}` template, or FineWeb / FineWeb-2 on the hub),
`detection.shared_languages`, each task's `langs` (the languages that have data: a local file or
a config of the hub dataset; the others are dropped with a comment), and the N1/N2 sweep's task
and languages. The layer count comes from a local model's config.json (a hub id needs
`--n-layers`); N1/N2 scale Mistral's App. H split (6 and 3 of 32 layers) to the model's depth.
The config is validated exactly as the workflow does (`mwork.studyconfig`) before it is written.
Local paths are written absolute, so the study runs from any directory (`snakemake -d STUDY`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mwork.atomic import atomic_write_text
from mwork.configcheck import ConfigError, local_layer_count
from mwork.errors import MworkError
from mwork.languages import check_language
from mwork.layout import ENGLISH

# FineWeb (English) and FineWeb-2 configs (ISO 639-3 + script) of the languages mwork knows
FINEWEB2 = {
    "de": "deu_Latn", "fr": "fra_Latn", "zh": "cmn_Hani", "es": "spa_Latn", "ru": "rus_Cyrl",
    "vi": "vie_Latn", "th": "tha_Thai", "ar": "arb_Arab", "sw": "swh_Latn", "ja": "jpn_Jpan",
    "it": "ita_Latn", "pt": "por_Latn", "id": "ind_Latn", "ms": "zsm_Latn", "bn": "ben_Beng",
    "te": "tel_Telu", "hi": "hin_Deva", "ko": "kor_Hang", "tr": "tur_Latn",
}  # fmt: skip
PAPER_CONDITIONS = ("D_U", "D_S", "D_G", "R_U", "R_all")  # Table 2's (XQuAD) conditions
TASK_ORDER = ("xquad", "mgsm", "xcsqa", "xlsum")


@dataclass
class InitRequest:
    """What `mwork init` was asked for (CLI arguments).

    Attributes:
        model: local model directory or HF hub id.
        languages: language codes (English is added first when missing).
        alias: the model's alias in result paths (default: from the model's name).
        n_layers: decoder layers (read from a local config.json when None).
        corpus: local corpus template with {lang}, or None for FineWeb / FineWeb-2 on the hub.
        tasks: task -> local rows template with {lang}, or None for the hub dataset.
        conditions: run labels of every task.
        n_docs: detection.n_docs (None: the schema's 1000, the paper's).
    """

    model: str
    languages: list[str]
    alias: str | None = None
    n_layers: int | None = None
    corpus: str | None = None
    tasks: dict[str, str | None] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=lambda: list(PAPER_CONDITIONS))
    n_docs: int | None = None


def layer_split(n_layers: int) -> tuple[int, int]:
    """(N1, N2): Mistral's App. H split (6 and 3 of 32 layers) scaled to `n_layers`, >= 1 each
    while they leave a task-solving layer between them."""
    n1 = max(1, round(n_layers * 6 / 32))
    n2 = max(1, round(n_layers * 3 / 32))
    while n1 + n2 >= n_layers and n2 > 0:
        n2 -= 1
    while n1 + n2 >= n_layers and n1 > 0:
        n1 -= 1
    return n1, n2


def _abs(path: str) -> str:
    """An absolute path, `{lang}` kept."""
    return str(Path(path).expanduser().resolve())


def _model_facts(req: InitRequest) -> tuple[str, dict, int, str]:
    """(alias, models.<alias> mapping, n_layers, dtype comment) of the requested model."""
    local = Path(req.model).expanduser()
    is_local = local.is_dir()
    name = local.resolve().name if is_local else req.model.rsplit("/", 1)[-1]
    alias = req.alias or re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.") or "model"
    n_layers = local_layer_count(str(local)) if is_local else None
    if req.n_layers is not None:
        if n_layers is not None and n_layers != req.n_layers:
            raise MworkError(
                f"--n-layers {req.n_layers} but {local}/config.json has {n_layers}",
                "drop --n-layers (it is read from the model)",
            )
        n_layers = req.n_layers
    if n_layers is None:
        raise MworkError(
            f"cannot read the layer count of {req.model} (no local config.json)",
            "pass --n-layers N (num_hidden_layers of the model's config.json)",
        )
    spec: dict = {"path": str(local.resolve())} if is_local else {"hf_id": req.model}
    dtype, note = "bfloat16", "the schema's default; PLND scores in float32 regardless"
    if is_local:
        cfg = json.loads((local / "config.json").read_text(encoding="utf-8"))
        stored = cfg.get("dtype") or cfg.get("torch_dtype")
        if stored in ("float32", "bfloat16", "float16"):
            dtype, note = stored, "the dtype stored in the model's config.json"
    spec["dtype"] = dtype
    return alias, spec, n_layers, note


def _task_langs(task: str, template: str | None, langs: list[str]) -> tuple[list[str], list[str]]:
    """(languages with data, languages dropped) of one task."""
    from mwork.lmeval_tasks.benchmarks import BENCHMARKS

    if template is None:
        have = [l for l in langs if l in BENCHMARKS[task].hf_configs]
    else:
        have = [l for l in langs if Path(template.format(lang=l)).is_file()]
    return have, [l for l in langs if l not in have]


def _dump(value: object) -> str:
    """A value in YAML flow style on one line (JSON is YAML)."""
    return json.dumps(value, ensure_ascii=False)


def build_config(req: InitRequest) -> tuple[str, list[str]]:
    """(config text, notes for the terminal) of a request; raises MworkError / ConfigError."""
    langs = [check_language(l) for l in dict.fromkeys(req.languages)]
    langs = [ENGLISH] + [l for l in langs if l != ENGLISH]
    if len(langs) < 2:
        raise MworkError("--languages needs a language besides en", "e.g. --languages en fr")
    alias, spec, n_layers, dtype_note = _model_facts(req)
    n1, n2 = layer_split(n_layers)
    notes: list[str] = []
    out = [
        f"# mwork study: {alias} on {', '.join(langs)} (written by `mwork init`; edit freely).",
        "# Every key not given takes the schema's default (src/mwork/data/config.schema.yaml,",
        "# docs/configuration.md). Check it:  mwork plan --configfile THIS_FILE",
        "",
        "models:",
        f"  {alias}:",
        *(f"    {k}: {_dump(v)}" for k, v in spec.items() if k != "dtype"),
        f"    n_layers: {n_layers}                        # from the model's config.json",
        f"    n1: {n1}   # understanding layers (first N1): Mistral's 6 of 32 (App. H) scaled",
        f"    n2: {n2}   # generation layers (last N2): Mistral's 3 of 32 scaled; tune both",
        f"    dtype: {spec['dtype']}   # {dtype_note}",
        "",
        "languages:",
        f"  detect: {_dump(langs)}   # English first: the pivot of every table",
        "",
        "corpus:   # detection text: each language's pool is its first pool_size documents of",
        "          # at least min_chars characters (short sentences are dropped: see mwork plan)",
        "  sources:",
    ]
    for lang in langs:
        if req.corpus is None:
            src = (
                {"dataset": "HuggingFaceFW/fineweb", "config": "sample-10BT"}
                if lang == ENGLISH
                else {"dataset": "HuggingFaceFW/fineweb-2", "config": FINEWEB2[lang]}
            )
        else:
            path = _abs(req.corpus.format(lang=lang))
            if not Path(path).is_file():
                raise MworkError(
                    f"--corpus: no file {path} for language {lang}",
                    "give every language a corpus file or leave it out of --languages",
                )
            src = {"path": path}
        out.append(f"    {lang}: {_dump(src)}")
    out += ["", "detection:"]
    if req.n_docs is not None:
        out.append(f"  n_docs: {req.n_docs}   # documents per language (paper: 1000)")
    out += [
        f"  shared_languages: {_dump(langs)}   # minus-shared removes their common neurons",
        "",
    ]
    tasks = req.tasks or dict.fromkeys(TASK_ORDER)
    task_langs = {}
    local = {}
    for task, template in tasks.items():
        have, dropped = _task_langs(task, template and _abs(template), langs)
        if ENGLISH not in have:
            raise MworkError(
                f"--task {task}: no English data ({template or 'hub'})",
                "every task needs English (the pivot); give its en file",
            )
        if dropped:
            notes.append(f"{task}: no data for {', '.join(dropped)}, dropped from its langs")
        if len(have) < 2:
            notes.append(f"{task}: English only, so no masked run; left out")
            continue
        task_langs[task] = (have, dropped)
        if template is not None:
            local[task] = _abs(template)
    if not task_langs:
        raise MworkError("no task has data in a language besides English", "add rows (--task)")
    out += ["evaluation:   # deactivation experiments (paper §3); `mwork conditions` explains them"]
    out.append(f"  local: {_dump(local)}   # task -> local rows with {{lang}}; others: the hub")
    out.append("  group_languages: false   # true: one job per run label (small models, CPU)")
    out.append("  tasks:")
    for task, (have, dropped) in task_langs.items():
        gone = f"   # no data: {', '.join(dropped)}" if dropped else ""
        out.append(f"    {task}:")
        out.append(f"      langs: {_dump(have)}{gone}")
        out.append(f"      conditions: {_dump(list(req.conditions))}")
    sweep_task = next(iter(task_langs))
    sweep_langs = [l for l in task_langs[sweep_task][0] if l != ENGLISH][:1]
    n1s = sorted({max(1, math.ceil(n1 * f)) for f in (1, 0.75, 0.5)}, reverse=True)
    n2s = sorted({max(1, math.ceil(n2 * f)) for f in (1, 0.75, 0.5)} if n2 else {0}, reverse=True)
    out += [
        "  sweep:   # Tables 12-13: D_U for each N1, D_G for each N2 (true to run it)",
        "    enabled: false",
        f"    task: {sweep_task}",
        f"    langs: {_dump(sweep_langs)}",
        f"    n1: {_dump(n1s)}",
        f"    n2: {_dump(n2s)}",
        "",
        "# Not configured here (see docs/configuration.md): perplexity (held-out text per",
        "# language), finetune (the paper's §4 enhancement), figures.lens (prompts ship for",
        "# en de fr zh es ru).",
    ]
    text = "\n".join(out) + "\n"
    from mwork.studyconfig import validate_config

    try:
        validate_config(yaml.safe_load(text))
    except ConfigError as exc:  # a bug here, or a request the study cannot run
        raise MworkError(f"the written config would not run: {exc.problem}", exc.fix) from None
    return text, notes


def write_config(
    req: InitRequest, study: str | Path, force: bool = False
) -> tuple[Path, list[str]]:
    """Write `study`/config.yaml for `req`; (its path, notes). Refuses to overwrite unless `force`."""
    path = Path(study) / "config.yaml"
    if path.exists() and not force:
        raise MworkError(f"{path} exists", "pass --force to overwrite it, or choose another folder")
    text, notes = build_config(req)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path, notes
