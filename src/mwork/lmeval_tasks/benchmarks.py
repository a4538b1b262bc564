"""The benchmarks: one row each in `BENCHMARKS` (everything besides their folder), and their prompts.

A benchmark folder (`mgsm/`, `xquad/`, `xcsqa/`, `xlsum/`) holds its lm-eval template(s), its
prompts (`prompts.yaml`, read by `load_prompts`) and its hook functions; `Benchmark` holds the HF
dataset and configs, split, templates per prompt variant, generation length, sample size, primary
metric and paper table. Adding a fifth benchmark means one folder plus one entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mwork.errors import MworkError

TEMPLATE_DIR = Path(str(resources.files("mwork") / "lmeval_tasks"))
PARQUET_EXPORT = "refs/convert/parquet"  # the Hub's automatic parquet export branch
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}  # local file -> builder
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
            lang_hooks={"process_docs": "process_docs"},  # labels, empty options, ids (traps)
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
