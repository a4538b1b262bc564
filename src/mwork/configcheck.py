"""Config checks the schema cannot express: a study the config describes but cannot run.

Each check raises `ConfigError` (problem + fix, the workflow's one-line `error: config: ...`)
before any job starts: a layer split that does not fit the model (or its config.json), a masked
or fine-tuned language without neurons, a language without a corpus, an unknown model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mwork.configcheck_values import check_values
from mwork.layout import ENGLISH
from mwork.runlabel import RunLabel

if TYPE_CHECKING:
    from mwork.plan import Plan


class ConfigError(ValueError):
    """A config the study cannot run: `problem` and `fix` make the one-line error."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem, self.fix = problem, fix


def local_layer_count(path: str) -> int | None:
    """Layer count in a local model's config.json; None if it is not there (yet)."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg)
    n = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    return n if isinstance(n, int) else None


def check_config(plan: Plan) -> None:
    """Raise ConfigError for the first inconsistency of `plan`'s config the schema cannot see."""
    check_values(plan)  # non-finite numbers, counts no job can satisfy (configcheck_values)
    det = plan.detection
    if det["qk_scoring"] != "exact" and det["importance"] != "paper":
        raise ConfigError(
            f"detection.qk_scoring {det['qk_scoring']} needs importance: paper",
            "use qk_scoring: exact with importance: released-code",
        )
    missing = [l for l in plan.all_langs if l not in plan.config["corpus"]["sources"]]
    if missing:
        raise ConfigError(
            f"no corpus source for language(s) {missing}",
            f"add corpus.sources.{missing[0]} (a path or a dataset) to the config",
        )
    _check_model_names(plan)
    _check_shared_languages(plan)
    _check_layer_splits(plan)
    _check_task_data(plan)
    sweep = plan.eval["sweep"] if plan.eval is not None else {"enabled": False}
    undetected = [l for l in sweep.get("langs", []) if l not in plan.all_langs]
    if sweep["enabled"] and undetected:
        raise ConfigError(
            f"evaluation.sweep.langs lists {', '.join(undetected)}, which is not detected "
            "(the N1/N2 sweep masks its neurons)",
            "set evaluation.sweep.langs to detected languages, or evaluation.sweep.enabled: false",
        )
    for _, _, lang in plan.masked_runs():
        if lang not in plan.all_langs:
            raise ConfigError(
                f"evaluation masks language '{lang}' but no neurons are detected for it",
                "add it to languages.detect or languages.enhance",
            )
    if plan.ft is not None:
        for model in plan.ft["models"]:
            if model not in plan.models:
                raise ConfigError(
                    f"finetune.models lists '{model}', which is not under models",
                    "add it to models or remove it from finetune.models",
                )
        bad = [l for l in plan.finetune_langs() if l not in plan.all_langs or l == ENGLISH]
        if bad:
            raise ConfigError(
                f"finetune.high_resource / finetune.low_resource list {', '.join(bad)}, which "
                "have no neurons (or are English)",
                "add them to languages.detect or languages.enhance, or set both keys to detected "
                f"languages (the defaults are the paper's; e.g. high_resource: "
                f"[{', '.join(l for l in plan.detect_langs if l != ENGLISH)}], low_resource: [])",
            )


def _check_model_names(plan: Plan) -> None:
    """Every model a stage or figure list names is configured under `models`."""
    fig = plan.figures
    lists = {"evaluation.models": (plan.eval or {}).get("models") or []}
    lists["figures.lens.models"] = plan.roles.fig1
    lists["figures.lens.fig7_models"] = plan.roles.fig7
    lists["figures.neuron_models"] = fig.get("neuron_models") or []
    lists |= {f"figures.overlap.{k}": v or [] for k, v in fig.get("overlap", {}).items()}
    for key, models in lists.items():
        for model in models:
            if model not in plan.models:
                raise ConfigError(
                    f"{key} lists '{model}', which is not under models",
                    f"add it to models or remove it from {key}",
                )


def _layer_labels(plan: Plan) -> list[tuple[str, str]]:
    """(config key, run label) of every configured condition and sweep label."""
    labels: list[tuple[str, str]] = []
    if plan.eval is None:
        return labels
    for task, spec in plan.eval["tasks"].items():
        where = f"evaluation.tasks.{task}.conditions"
        labels += [(where, c) for c in spec.get("conditions", [])]
    sweep = plan.eval["sweep"]
    if sweep["enabled"]:
        labels += [("evaluation.sweep.n1", f"D_U-n1_{n}") for n in sweep["n1"]]
        labels += [("evaluation.sweep.n2", f"D_G-n2_{n}") for n in sweep["n2"]]
    return labels


def _check_layer_splits(plan: Plan) -> None:
    """Every model's N1/N2 and each label's override fit its layers (and its config.json)."""
    labels = _layer_labels(plan)
    full = plan.roles.full_models()
    for model, spec in plan.config["models"].items():
        n_layers = spec["n_layers"]
        real = local_layer_count(spec["path"]) if "path" in spec else None
        if real is not None and real != n_layers:
            raise ConfigError(
                f"models.{model}.n_layers is {n_layers} but {spec['path']}/config.json has {real}",
                f"set models.{model}.n_layers: {real}",
            )
        if "n1" not in spec or "n2" not in spec:
            if model in full:
                raise ConfigError(
                    f"models.{model} has no n1/n2 but takes part in the deactivation or "
                    "enhancement study",
                    f"set models.{model}.n1 and n2 (paper App. H), or list the study's models "
                    "in evaluation.models (null means every model that is not lens-only)",
                )
            continue
        n1, n2 = spec["n1"], spec["n2"]
        if n1 + n2 > n_layers:
            raise ConfigError(
                f"models.{model}: n1 + n2 = {n1} + {n2} exceeds its {n_layers} layers",
                "lower n1 or n2 (understanding and generation layers must not overlap)",
            )
        for where, label in labels:
            l1, l2 = RunLabel.parse(label).layer_split(n1, n2)
            if l1 + l2 > n_layers:
                raise ConfigError(
                    f"{where}: {label} needs N1 + N2 = {l1} + {l2} layers but model {model} "
                    f"has {n_layers}",
                    "use values with N1 + N2 <= n_layers",
                )


def _uses_minus_shared(plan: Plan) -> bool:
    """Whether any output needs the minus-shared set (a variant file or a label of one)."""
    if "minus-shared" in plan.detection["variants"]:
        return True
    if plan.eval is not None and plan.eval["neuron_set"] == "minus-shared":
        return True
    return any(".minus-shared" in label for _, label in _layer_labels(plan))


def _check_shared_languages(plan: Plan) -> None:
    """detection.shared_languages (minus-shared's intersection) names detected languages only."""
    shared = plan.detection["shared_languages"]
    missing = [l for l in shared if l not in plan.all_langs]
    if missing and _uses_minus_shared(plan):
        raise ConfigError(
            f"detection.shared_languages lists {', '.join(missing)}, which languages.detect and "
            "languages.enhance do not detect (the minus-shared variant needs their neurons)",
            f"set detection.shared_languages: [{', '.join(plan.detect_langs)}] (or a subset), or "
            "drop minus-shared from detection.variants",
        )


def _check_task_data(plan: Plan) -> None:
    """Every evaluated (task, language) has data: its local file, or a config of the hub dataset.

    Local files a workflow rule builds (the embedded demo's) are not checked here.
    """
    from mwork.lmeval_tasks.benchmarks import BENCHMARKS

    heldout = plan.config.get("perplexity", {}).get("heldout")
    if heldout and "demo" not in plan.config:
        for lang in plan.all_langs:
            if not Path(heldout.format(lang=lang)).is_file():
                raise ConfigError(
                    f"perplexity.heldout: no file {heldout.format(lang=lang)} for language {lang}",
                    "add held-out text for every detected language, or drop the perplexity section",
                )
    if plan.eval is None:
        return
    local = plan.eval["local"]
    for task, spec in plan.eval["tasks"].items():
        for lang in spec["langs"]:
            if task in local:
                path = local[task].format(lang=lang)
                if "demo" not in plan.config and not Path(path).is_file():
                    raise ConfigError(
                        f"evaluation.local.{task}: no file {path} for language {lang} (listed in "
                        f"evaluation.tasks.{task}.langs)",
                        f"add the file or remove {lang} from evaluation.tasks.{task}.langs",
                    )
                if task == "xcsqa" and Path(path).is_file():  # the unlabelled test split
                    _check_xcsqa_labels(path, lang)
            elif spec.get("hf_dataset") is None and lang not in BENCHMARKS[task].hf_configs:
                have = ", ".join(BENCHMARKS[task].hf_configs)
                raise ConfigError(
                    f"evaluation.tasks.{task}.langs: {task} has no {lang} data on the hub "
                    f"({BENCHMARKS[task].hf_dataset} covers {have})",
                    f"remove {lang} or give local rows (evaluation.local.{task})",
                )


def _check_xcsqa_labels(path: str, lang: str) -> None:
    """A local X-CSQA file with no answerKey at all (the test split) stops the study at start-up
    (`mwork.lmeval_tasks.xcsqa.check_local_labels`; the evaluation job checks it again)."""
    from mwork.errors import MworkError
    from mwork.lmeval_tasks.spec import TaskSpec
    from mwork.lmeval_tasks.xcsqa import check_local_labels

    try:
        check_local_labels(TaskSpec("xcsqa", lang, source="local", path=path))
    except MworkError as exc:
        problem, _, fix = str(exc).partition("; ")
        raise ConfigError(f"evaluation.local.xcsqa: {problem}", fix) from None
