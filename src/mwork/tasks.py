"""Concrete lm-eval task YAMLs for MGSM, XQuAD, X-CSQA and XLSum, one per (task, language, variant).

A task spec (a mapping, e.g. from the workflow config) names the benchmark, the language, the
prompt variant and the data source. `write_task_dir` renders each spec into a YAML that
`include:`s a static template of `mwork/lmeval_tasks/` by absolute path and adds the task name,
an explicit `tag:`, the dataset (the real HF dataset, or local JSONL in the same schema), the
language's prompt from `mwork/data/prompts.yaml` as a Jinja `doc_to_text`, stop strings and the
generation length. Load the directory with
`TaskManager(include_path=run_dir, include_defaults=False)`.

Task names: `mwork_{task}_{lang}` for the default variant ("paper"), otherwise
`mwork_{task}_{variant}_{lang}` (e.g. `mwork_mgsm_native_cot_zh`, `mwork_xcsqa_letters_de`).
"""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mwork.errors import MworkError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

TEMPLATE_DIR = Path(str(resources.files("mwork") / "lmeval_tasks"))
PROMPTS_FILE = Path(str(resources.files("mwork") / "data" / "prompts.yaml"))
TASKS = ("mgsm", "xquad", "xcsqa", "xlsum")
DEFAULT_VARIANT = "paper"
UTILS = "mwork.lmeval_tasks.utils"
HF_DATASETS = {
    "mgsm": "juletxara/mgsm",  # a script-less mirror: jbross-ibm-research/mgsm (set hf_dataset)
    "xquad": "google/xquad",
    "xcsqa": "INK-USC/xcsr",
    "xlsum": "csebuetnlp/xlsum",
}
# Languages of the HF datasets (space-separated ISO codes; X-CSQA spells Japanese "jap").
_MGSM_LANGS = "bn de en es fr ja ru sw te th zh"
_XQUAD_LANGS = "ar de el en es hi ro ru th tr vi zh"
_XCSQA_LANGS = "en zh de es fr it ja nl pl pt ru ar vi hi sw ur"
_XLSUM_NAMES = {  # XLSum has no German, Italian or Dutch; more languages exist upstream
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
}
HF_CONFIGS: dict[str, dict[str, str]] = {
    "mgsm": {lang: lang for lang in _MGSM_LANGS.split()},
    "xquad": {lang: f"xquad.{lang}" for lang in _XQUAD_LANGS.split()},
    "xcsqa": {lang: f"X-CSQA-{'jap' if lang == 'ja' else lang}" for lang in _XCSQA_LANGS.split()},
    "xlsum": _XLSUM_NAMES,
}
SPLITS = {"mgsm": "test", "xquad": "validation", "xcsqa": "validation", "xlsum": "test"}
DEFAULT_MAX_GEN_TOKS = {"mgsm": 512, "xquad": 64, "xlsum": 128}  # mgsm: the paper's script
DEFAULT_N_SAMPLES = {"xlsum": 500}  # paper: 500 random XLSum test items per language
DEFAULT_MAX_ARTICLE_CHARS = 2000  # XLSum articles are cut so the instruction is never truncated
_EXTRA_STOPS = ["</s>", "<|im_end|>"]  # as lm-eval's MGSM tasks
_FLEXIBLE_EXTRACT = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"  # lm-eval's MGSM flexible-extract
_OPTIONS_JINJA = (
    "{% for label in question.choices.label %}{{label}}. {{question.choices.text[loop.index0]}}"
    "{% if not loop.last %}\n{% endif %}{% endfor %}"
)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One benchmark x language x prompt variant x data source.

    Attributes:
        task: "mgsm", "xquad", "xcsqa" or "xlsum".
        lang: ISO 639-1 code (a key of prompts.yaml for this task and variant).
        source: "hf" (the real dataset from the Hub/cache) or "local" (JSONL, same schema).
        path: the local JSONL file (source "local" only).
        prompt_variant: mgsm: paper | code | native_cot | direct; xcsqa: paper | letters;
            xquad, xlsum: paper.
        n_samples: keep a seeded random sample of this many items (default 500 for xlsum,
            all items otherwise).
        seed: seed of that sample.
        hf_dataset: override the HF dataset id (e.g. a mirror).
        hf_name: override the HF config name.
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
            kw["n_samples"] = DEFAULT_N_SAMPLES.get(str(kw["task"]))
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
                f"add it to {PROMPTS_FILE} or choose from {sorted(variants[self.prompt_variant])}",
            )
        if self.source == "local":
            if not self.path:
                raise MworkError(f"{self.name}: source 'local' needs a 'path' to a JSONL file")
        elif self.source == "hf":
            if self.hf_name is None and self.lang not in HF_CONFIGS[self.task]:
                raise MworkError(
                    f"the HF dataset of {self.task} has no language {self.lang!r}",
                    f"use source: local, set hf_name, or choose from "
                    f"{sorted(HF_CONFIGS[self.task])}",
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
def load_prompts(path: Path = PROMPTS_FILE) -> dict[str, Any]:
    """The prompts data file: {task: {variant: {lang: {prompt, stop?, strict_regex?}}}}."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise MworkError(f"cannot read prompts file {path}: {err}", "restore it") from err
    if not isinstance(data, dict):
        raise MworkError(f"prompts file {path} is not a mapping", "restore it")
    return data


def _template(spec: TaskSpec) -> Path:
    if spec.task == "mgsm" and spec.prompt_variant in ("native_cot", "direct"):
        return TEMPLATE_DIR / "mgsm_upstream_template.yaml"
    return TEMPLATE_DIR / f"{spec.task}_template.yaml"


def _jinja_fields(spec: TaskSpec) -> dict[str, str]:
    """Jinja expression of each prompt placeholder of the task."""
    if spec.task == "mgsm":
        return {"question": "{{question}}"}
    if spec.task == "xquad":
        return {"context": "{{context}}", "question": "{{question}}"}
    if spec.task == "xcsqa":
        return {"question": "{{question.stem}}", "options": _OPTIONS_JINJA}
    cut = f"[:{spec.max_article_chars}]" if spec.max_article_chars else ""
    return {"title": "{{title}}", "text": "{{text" + cut + "}}"}


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


def _dataset_keys(spec: TaskSpec, cache_dir: str | Path | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if spec.source == "local":
        local = Path(spec.path or "").expanduser().resolve()
        if not local.is_file():
            raise MworkError(f"{spec.name}: data file {local} does not exist", "fix 'path'")
        kwargs["data_files"] = {SPLITS[spec.task]: str(local)}
        path, name = "json", None
    else:
        path = spec.hf_dataset or HF_DATASETS[spec.task]
        name = spec.hf_name or HF_CONFIGS[spec.task][spec.lang]
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
    entry = load_prompts()[spec.task][spec.prompt_variant][spec.lang]
    cfg: dict[str, Any] = {
        "task": spec.name,
        "tag": f"mwork_{spec.task}",
        "include": str(_template(spec)),
        **_dataset_keys(spec, cache_dir),
        "doc_to_text": prompt_to_jinja(entry["prompt"], _jinja_fields(spec)),
    }
    functions: dict[str, str] = {}
    if spec.task != "xcsqa":
        cfg["generation_kwargs"] = {
            "until": list(entry.get("stop") or []) + _EXTRA_STOPS,
            "do_sample": False,
            "max_gen_toks": spec.max_gen_toks or DEFAULT_MAX_GEN_TOKS[spec.task],
        }
    if spec.task == "mgsm" and spec.prompt_variant == "native_cot":
        cfg["filter_list"] = [
            {"name": "none", "filter": [{"function": "take_first"}]},
            _regex_filter("strict-match", entry["strict_regex"], 0),
            _regex_filter("flexible-extract", _FLEXIBLE_EXTRACT, -1),
        ]
    if spec.task == "xquad":
        functions["process_results"] = f"{UTILS}.xquad_process_results_{spec.lang}"
    if spec.task == "xcsqa" and spec.prompt_variant == "letters":
        functions["doc_to_choice"] = f"{UTILS}.xcsqa_choice_labels"
    if spec.n_samples is not None:
        functions["process_docs"] = f"{UTILS}.sample_docs_n{spec.n_samples}_seed{spec.seed}"
    text = "# Generated by mwork.tasks; edit the template or prompts.yaml, not this file.\n"
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
