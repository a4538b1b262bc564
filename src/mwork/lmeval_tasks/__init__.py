"""The benchmarks: one folder each, one row each in `BENCHMARKS`, one lm-eval YAML per task spec.

A benchmark folder (`mgsm/`, `xquad/`, `xcsqa/`, `xlsum/`) holds its lm-eval template(s)
(`template.yaml`, no `task:` key on purpose), its prompts (`prompts.yaml`: variant -> language ->
{prompt, stop?, strict_regex?}; provenance in PROMPTS.md) and its hook functions (`__init__.py`,
referenced as `!function mwork.lmeval_tasks.<name>.<function>`, which lm-eval imports by module
name, so generated YAMLs work from any directory). `BENCHMARKS` holds everything else about it:
HF dataset and configs, split, templates per prompt variant, generation length, sample size,
primary metric and paper table. Adding a fifth benchmark means one folder plus one entry.

A task spec (`TaskSpec`, e.g. from the workflow config) names the benchmark, the language, the
prompt variant and the data source. `write_task_dir` renders each spec into a YAML that
`include:`s the folder's template by absolute path and adds the task name, an explicit `tag:`,
the dataset (the real HF dataset, or local JSONL in the same schema), the language's prompt as a
Jinja `doc_to_text`, stop strings and the generation length. Load the directory with
`TaskManager(include_path=run_dir, include_defaults=False)`.

Data sources. `datasets` 5.x refuses loading scripts (`RuntimeError: Dataset scripts are no longer
supported`). Each benchmark has a default Hub revision that loads without one: `juletxara/mgsm`
and `google/xquad` hold parquet on their main branch (MGSM since 2026, lm-eval issue #3390);
`INK-USC/xcsr` and `csebuetnlp/xlsum` are script repositories, read from the Hub's automatic parquet
export, the `refs/convert/parquet` branch (`PARQUET_EXPORT`). That branch holds one folder per
config (`<config>/<split>/*.parquet`) and no dataset card, so `load_dataset(id, name=config,
revision=...)` would not find the config (datasets infers a single "default" config that mixes all
languages); such a task therefore reads that config's parquet files by URL
(`hf://datasets/<id>@refs%2Fconvert%2Fparquet/<config>/<split>/*.parquet`) with the packaged
parquet builder. Any other revision (a branch, tag or commit) is passed to `load_dataset` as
`revision=` through lm-eval's `dataset_kwargs`. A local file (`source: local`, `.jsonl`/`.json` or
`.parquet`, the HF schema) overrides the Hub.

Task names: `mwork_{task}_{lang}` for the default variant ("paper"), otherwise
`mwork_{task}_{variant}_{lang}` (e.g. `mwork_mgsm_native_cot_zh`, `mwork_xcsqa_letters_de`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mwork.errors import MworkError

if TYPE_CHECKING:
    from collections.abc import Iterable

TEMPLATE_DIR = Path(str(resources.files("mwork") / "lmeval_tasks"))
DEFAULT_VARIANT = "paper"
DEFAULT_MAX_ARTICLE_CHARS = 2000  # XLSum articles are cut so the instruction is never truncated
PARQUET_EXPORT = "refs/convert/parquet"  # the Hub's automatic parquet export branch
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
_EXTRA_STOPS = ["</s>", "<|im_end|>"]  # as lm-eval's MGSM tasks
_FLEXIBLE_EXTRACT = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"  # lm-eval's MGSM flexible-extract
_OPTIONS_JINJA = (
    "{% for label in question.choices.label %}{{label}}. {{question.choices.text[loop.index0]}}"
    "{% if not loop.last %}\n{% endif %}{% endfor %}"
)


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """Everything mwork knows about one benchmark besides its folder.

    Attributes:
        name: folder and task key (mgsm, xquad, ...).
        hf_dataset: default HF dataset id.
        hf_configs: language -> HF config name.
        revision: default Hub revision of hf_dataset that loads with datasets 5.x (None: main;
            PARQUET_EXPORT: the automatic parquet export of a script dataset).
        split: the split scored.
        templates: prompt variant -> template file in the folder ("*": every other variant).
        fields: prompt placeholder -> Jinja expression ({text} of XL-Sum is cut, see below).
        max_gen_toks: default generation length (None: multiple choice, nothing generated).
        n_samples: default seeded sample size (None: every item).
        primary_metric: the paper's metric, lm-eval key "<metric>,<filter>".
        paper_table: label of the paper's summary table (Tables 2-5).
        lang_hooks: lm-eval key -> folder function resolved per language as `<function>_<lang>`.
        variant_hooks: prompt variant -> {lm-eval key: folder function}.
        cut_field: placeholder cut to `TaskSpec.max_article_chars` characters.
    """

    name: str
    hf_dataset: str
    hf_configs: Mapping[str, str]
    split: str
    templates: Mapping[str, str]
    fields: Mapping[str, str]
    max_gen_toks: int | None
    n_samples: int | None
    primary_metric: str
    paper_table: str
    lang_hooks: Mapping[str, str] = dataclasses.field(default_factory=dict)
    variant_hooks: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    cut_field: str | None = None
    revision: str | None = None

    @property
    def module(self) -> str:
        """Python module of the folder's hook functions."""
        return f"mwork.lmeval_tasks.{self.name}"

    def template(self, variant: str) -> Path:
        return TEMPLATE_DIR / self.name / self.templates.get(variant, self.templates["*"])


def _langs(codes: str, fmt: str = "{}") -> dict[str, str]:
    return {lang: fmt.format(lang) for lang in codes.split()}


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            name="mgsm",
            hf_dataset="juletxara/mgsm",  # a script-less mirror: jbross-ibm-research/mgsm
            hf_configs=_langs("bn de en es fr ja ru sw te th zh"),
            split="test",
            templates={
                "*": "template.yaml",
                "native_cot": "upstream_template.yaml",
                "direct": "upstream_template.yaml",
            },
            fields={"question": "{{question}}"},
            max_gen_toks=512,  # the paper's script
            n_samples=None,
            primary_metric="acc,none",
            paper_table="Table 3 · MGSM",
        ),
        Benchmark(
            name="xquad",
            hf_dataset="google/xquad",
            hf_configs=_langs("ar de el en es hi ro ru th tr vi zh", "xquad.{}"),
            split="validation",
            templates={"*": "template.yaml"},
            fields={"context": "{{context}}", "question": "{{question}}"},
            max_gen_toks=64,
            n_samples=None,
            primary_metric="contains,none",
            paper_table="Table 2 · XQuAD",
            lang_hooks={"process_results": "process_results"},
        ),
        Benchmark(
            name="xcsqa",
            hf_dataset="INK-USC/xcsr",
            # X-CSQA spells Japanese "jap"
            hf_configs={
                lang: f"X-CSQA-{'jap' if lang == 'ja' else lang}"
                for lang in "en zh de es fr it ja nl pl pt ru ar vi hi sw ur".split()
            },
            split="validation",
            templates={"*": "template.yaml"},
            fields={"question": "{{question.stem}}", "options": _OPTIONS_JINJA},
            max_gen_toks=None,
            n_samples=None,
            primary_metric="acc,none",
            paper_table="Table 4 · X-CSQA",
            variant_hooks={"letters": {"doc_to_choice": "choice_labels"}},
            revision=PARQUET_EXPORT,  # a script dataset (xcsr.py)
        ),
        Benchmark(
            name="xlsum",
            hf_dataset="csebuetnlp/xlsum",
            hf_configs={  # XLSum has no German, Italian or Dutch; more languages exist upstream
                "en": "english",
                "fr": "french",
                "zh": "chinese_simplified",
                "es": "spanish",
                "ru": "russian",
                "vi": "vietnamese",
                "th": "thai",
                "ar": "arabic",
                "sw": "swahili",
                "ja": "japanese",
            },
            split="test",
            templates={"*": "template.yaml"},
            fields={"title": "{{title}}", "text": "{{text}}"},
            max_gen_toks=128,
            n_samples=500,  # paper: 500 random XLSum test items per language
            primary_metric="rougeL,none",
            paper_table="Table 5 · XLSum",
            cut_field="text",
            revision=PARQUET_EXPORT,  # a script dataset (xlsum.py)
        ),
    )
}
TASKS: tuple[str, ...] = tuple(BENCHMARKS)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One benchmark x language x prompt variant x data source.

    Attributes:
        task: "mgsm", "xquad", "xcsqa" or "xlsum".
        lang: ISO 639-1 code (a key of prompts.yaml for this task and variant).
        source: "hf" (the real dataset from the Hub/cache) or "local" (JSONL or parquet, same
            schema).
        path: the local .jsonl/.json/.parquet file (source "local" only).
        prompt_variant: mgsm: paper | code | native_cot | direct; xcsqa: paper | letters;
            xquad, xlsum: paper.
        n_samples: keep a seeded random sample of this many items (default 500 for xlsum,
            all items otherwise).
        seed: seed of that sample.
        hf_dataset: override the HF dataset id (e.g. a mirror).
        hf_name: override the HF config name.
        hf_revision: Hub revision (branch, tag, commit, or PARQUET_EXPORT); None: the
            benchmark's default (`Benchmark.revision`).
        max_gen_toks: generation length (default mgsm 512, xquad 64, xlsum 128).
        max_article_chars: xlsum: cut the article to this many characters (None: no cut).
    """

    task: str
    lang: str
    source: str = "hf"
    path: str | None = None
    prompt_variant: str = DEFAULT_VARIANT
    n_samples: int | None = None
    seed: int = 0
    hf_dataset: str | None = None
    hf_name: str | None = None
    hf_revision: str | None = None
    max_gen_toks: int | None = None
    max_article_chars: int | None = DEFAULT_MAX_ARTICLE_CHARS

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | TaskSpec) -> TaskSpec:
        """Validate a mapping (unknown keys are errors) and fill defaults."""
        if isinstance(cfg, TaskSpec):
            return cfg
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise MworkError(f"unknown task spec key(s) {unknown}", f"use only {sorted(known)}")
        if "task" not in cfg or "lang" not in cfg:
            raise MworkError(f"task spec {dict(cfg)} lacks 'task' or 'lang'", "give both")
        kw = dict(cfg)
        if kw.get("prompt_variant") is None:
            kw["prompt_variant"] = DEFAULT_VARIANT
        if kw.get("n_samples") is None:
            kw["n_samples"] = BENCHMARKS[kw["task"]].n_samples if kw["task"] in BENCHMARKS else None
        spec = cls(**kw)
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise MworkError on an impossible combination."""
        if self.task not in TASKS:
            raise MworkError(f"unknown task {self.task!r}", f"choose from {list(TASKS)}")
        variants = load_prompts()[self.task]
        if self.prompt_variant not in variants:
            raise MworkError(
                f"{self.task} has no prompt variant {self.prompt_variant!r}",
                f"choose from {sorted(variants)}",
            )
        if self.lang not in variants[self.prompt_variant]:
            raise MworkError(
                f"no {self.task}/{self.prompt_variant} prompt for language {self.lang!r}",
                f"add it to {TEMPLATE_DIR / self.task / 'prompts.yaml'} or choose from "
                f"{sorted(variants[self.prompt_variant])}",
            )
        if self.source == "local":
            if not self.path:
                raise MworkError(f"{self.name}: source 'local' needs a 'path' to a JSONL file")
            if Path(self.path).suffix.lower() not in LOCAL_BUILDERS:
                raise MworkError(
                    f"{self.name}: local data file {self.path} is neither JSONL nor parquet",
                    f"give a file ending in {', '.join(LOCAL_BUILDERS)}",
                )
        elif self.source == "hf":
            if self.hf_name is None and self.lang not in BENCHMARKS[self.task].hf_configs:
                raise MworkError(
                    f"the HF dataset of {self.task} has no language {self.lang!r}",
                    f"use source: local, set hf_name, or choose from "
                    f"{sorted(BENCHMARKS[self.task].hf_configs)}",
                )
        else:
            raise MworkError(f"unknown data source {self.source!r}", "use 'hf' or 'local'")
        for key in ("n_samples", "max_gen_toks", "max_article_chars"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise MworkError(f"{self.name}: {key} must be a positive integer, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise MworkError(f"{self.name}: seed must be a non-negative integer, got {self.seed!r}")

    @property
    def name(self) -> str:
        """The lm-eval task name."""
        variant = "" if self.prompt_variant == DEFAULT_VARIANT else f"{self.prompt_variant}_"
        return f"mwork_{self.task}_{variant}{self.lang}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict (for result JSON)."""
        return dataclasses.asdict(self)


@cache
def load_prompts() -> dict[str, Any]:
    """Every benchmark's prompts: {task: {variant: {lang: {prompt, stop?, strict_regex?}}}}."""
    out = {}
    for name in BENCHMARKS:
        path = TEMPLATE_DIR / name / "prompts.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise MworkError(f"cannot read prompts file {path}: {err}", "restore it") from err
        if not isinstance(data, dict):
            raise MworkError(f"prompts file {path} is not a mapping", "restore it")
        out[name] = data
    return out


def _jinja_fields(spec: TaskSpec) -> dict[str, str]:
    """Jinja expression of each prompt placeholder of the task."""
    bench = BENCHMARKS[spec.task]
    fields = dict(bench.fields)
    if bench.cut_field and spec.max_article_chars:
        fields[bench.cut_field] = "{{" + bench.cut_field + f"[:{spec.max_article_chars}]" + "}}"
    return fields


def prompt_to_jinja(prompt: str, fields: Mapping[str, str]) -> str:
    """Turn a prompts.yaml string with {field} placeholders into a Jinja doc_to_text."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in fields:
            raise MworkError(
                f"prompt placeholder {{{match.group(1)}}} is unknown here",
                f"use only {sorted(fields)} in {prompt!r}",
            )
        return "\0" + match.group(1) + "\0"

    marked = re.sub(r"\{(\w+)\}", replace, prompt)
    if "{" in marked or "}" in marked:
        raise MworkError(f"stray brace in prompt {prompt!r}", "use braces only as {field}")
    parts = marked.split("\0")
    return "".join(fields[p] if i % 2 else p for i, p in enumerate(parts))


def hf_source(spec: TaskSpec) -> tuple[str, str, str | None]:
    """(dataset id, config name, revision) a source-"hf" spec reads."""
    bench = BENCHMARKS[spec.task]
    dataset = spec.hf_dataset or bench.hf_dataset
    revision = spec.hf_revision if spec.hf_revision is not None else bench.revision
    return dataset, spec.hf_name or bench.hf_configs[spec.lang], revision or None


def parquet_export_files(dataset: str, config: str, split: str) -> str:
    """URL pattern of one config/split in the Hub's parquet export (refs/convert/parquet)."""
    branch = PARQUET_EXPORT.replace("/", "%2F")
    return f"hf://datasets/{dataset}@{branch}/{config}/{split}/*.parquet"


def _dataset_keys(spec: TaskSpec, cache_dir: str | Path | None) -> dict[str, Any]:
    """lm-eval's dataset_path / dataset_name / dataset_kwargs (passed to datasets.load_dataset
    as load_dataset(path=dataset_path, name=dataset_name, **dataset_kwargs))."""
    kwargs: dict[str, Any] = {}
    split = BENCHMARKS[spec.task].split
    if spec.source == "local":
        local = Path(spec.path or "").expanduser().resolve()
        if not local.is_file():
            raise MworkError(f"{spec.name}: data file {local} does not exist", "fix 'path'")
        kwargs["data_files"] = {split: str(local)}
        path, name = LOCAL_BUILDERS[local.suffix.lower()], None
    else:
        dataset, config, revision = hf_source(spec)
        if revision == PARQUET_EXPORT:  # no card on that branch: read the config's files
            kwargs["data_files"] = {split: parquet_export_files(dataset, config, split)}
            path, name = "parquet", None
        else:
            path, name = dataset, config
            if revision is not None:
                kwargs["revision"] = revision
    if cache_dir is not None:
        kwargs["cache_dir"] = str(Path(cache_dir).resolve())
    return {"dataset_path": path, "dataset_name": name, "dataset_kwargs": kwargs}


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (the prompts) as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value.strip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _regex_filter(name: str, pattern: str, group_select: int) -> dict[str, Any]:
    """An lm-eval filter: the `group_select`-th regex match, first response."""
    regex = {"function": "regex", "regex_pattern": pattern, "group_select": group_select}
    return {"name": name, "filter": [regex, {"function": "take_first"}]}


def render_task_yaml(spec: TaskSpec, cache_dir: str | Path | None = None) -> str:
    """The YAML text of one concrete task.

    Args:
        spec: a validated spec.
        cache_dir: HF datasets cache for this task's data (None: the datasets default).
    """
    bench = BENCHMARKS[spec.task]
    entry = load_prompts()[spec.task][spec.prompt_variant][spec.lang]
    cfg: dict[str, Any] = {
        "task": spec.name,
        "tag": f"mwork_{spec.task}",
        "include": str(bench.template(spec.prompt_variant)),
        **_dataset_keys(spec, cache_dir),
        "doc_to_text": prompt_to_jinja(entry["prompt"], _jinja_fields(spec)),
    }
    functions: dict[str, str] = {}
    if bench.max_gen_toks is not None:
        cfg["generation_kwargs"] = {
            "until": list(entry.get("stop") or []) + _EXTRA_STOPS,
            "do_sample": False,
            "max_gen_toks": spec.max_gen_toks or bench.max_gen_toks,
        }
    if "strict_regex" in entry:  # lm-eval's native-CoT answer filters (MGSM native_cot)
        cfg["filter_list"] = [
            {"name": "none", "filter": [{"function": "take_first"}]},
            _regex_filter("strict-match", entry["strict_regex"], 0),
            _regex_filter("flexible-extract", _FLEXIBLE_EXTRACT, -1),
        ]
    for key, fn in bench.lang_hooks.items():
        functions[key] = f"{bench.module}.{fn}_{spec.lang}"
    for key, fn in bench.variant_hooks.get(spec.prompt_variant, {}).items():
        functions[key] = f"{bench.module}.{fn}"
    if spec.n_samples is not None:
        functions["process_docs"] = (
            f"mwork.lmeval_tasks.hooks.sample_docs_n{spec.n_samples}_seed{spec.seed}"
        )
    text = "# Generated by mwork.lmeval_tasks; edit the template or prompts.yaml, not this file.\n"
    text += yaml.dump(cfg, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1 << 20)
    text += "".join(f"{key}: !function {value}\n" for key, value in functions.items())
    return text


def write_task_dir(
    specs: Iterable[Mapping[str, Any] | TaskSpec],
    run_dir: str | Path,
    cache_dir: str | Path | None = None,
) -> dict[str, TaskSpec]:
    """Write one `<task name>.yaml` per spec into `run_dir`.

    Args:
        specs: task specs (mappings as in the workflow config, or TaskSpec).
        run_dir: directory for the generated YAMLs (created).
        cache_dir: HF datasets cache passed to every task's load_dataset.

    Returns:
        {task name: spec}, in the order given.
    """
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, TaskSpec] = {}
    for raw in specs:
        spec = TaskSpec.from_config(raw)
        if spec.name in by_name:
            raise MworkError(
                f"two task specs share the name {spec.name}",
                "evaluate different sources of one task/language in separate calls",
            )
        by_name[spec.name] = spec
        (out / f"{spec.name}.yaml").write_text(render_task_yaml(spec, cache_dir), encoding="utf-8")
    if not by_name:
        raise MworkError("no task specs given", "list at least one {task, lang}")
    return by_name
