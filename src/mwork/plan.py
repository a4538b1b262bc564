"""The study's plan: which jobs and targets a validated config asks for (torch-free, no Snakemake).

`Plan(config)` answers the questions the rule files ask: which evaluation jobs exist (one per
(model, run label, mask language), scoring every task of that label in one model load; one
baseline job per (model, language)), which tasks each scores and with which count-rule peers,
which fine-tuning runs, neuron files, tables and figures are targets. `Plan.check()` raises
`ConfigError` for a config the schema accepts but the study cannot run (`mwork.configcheck`).
Paths: `mwork.layout`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mwork.configcheck import ConfigError, check_config
from mwork.layout import BASELINE, ENGLISH, TABLE_FILES, delta_file, eval_file, neuron_file
from mwork.roles import ModelRoles
from mwork.runlabel import RunLabel

__all__ = ["ALL", "ENGLISH", "ConfigError", "Plan"]

ALL = "all"  # the job language of a job that covers every language of its label
_SEED = re.compile(r"-s\d+$")


class Plan:
    """Jobs and targets of one config (validated by the schema, defaults set)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.models: list[str] = list(config["models"])
        self.detect_langs: list[str] = list(config["languages"]["detect"])
        enhance = config["languages"].get("enhance", [])
        self.all_langs = self.detect_langs + [l for l in enhance if l not in self.detect_langs]
        self.detection: Mapping[str, Any] = config["detection"]
        self.eval: Mapping[str, Any] | None = config.get("evaluation")
        self.ft: Mapping[str, Any] | None = config.get("finetune")
        self.figures: Mapping[str, Any] = config.get("figures", {})
        self.roles = ModelRoles(config)  # which stages each model takes part in (mwork.roles)

    def check(self) -> None:
        """Raise ConfigError for the first inconsistency the schema cannot see
        (`mwork.configcheck`)."""
        check_config(self)

    # --- detection ------------------------------------------------------------------------

    @property
    def lape_dir(self) -> str | None:
        """Where LAPE's sets go: neurons/ (method lape), neurons_lape/ (compare_lape), or None."""
        if self.detection["method"] == "lape":
            return "neurons"
        return "neurons_lape" if self.detection["compare_lape"] else None

    @property
    def compares_detectors(self) -> bool:
        """detection.compare_lape with method plnd: LAPE's sets beside PLND's."""
        return self.detection["method"] == "plnd" and bool(self.detection["compare_lape"])

    def variant_langs(self, variant: str) -> list[str]:
        """Languages a variant is derived for (minus-en: all but English)."""
        return [l for l in self.all_langs if not (variant == "minus-en" and l == ENGLISH)]

    def variant_others(self, variant: str, lang: str) -> list[str]:
        """Languages whose sets a variant subtracts: English, or every other shared language."""
        if variant == "minus-en":
            return [ENGLISH]
        return [l for l in self.detection["shared_languages"] if l != lang]

    def neuron_files(self, model: str) -> list[str]:
        """Every neuron file of a model: all languages, then each variant's; a model of the
        neuron figures only (no deactivation, no enhancement): the detection languages."""
        if model not in self.roles.variant_models():
            return [neuron_file(model, l) for l in self.detect_langs]
        files = [neuron_file(model, l) for l in self.all_langs]
        for v in self.detection["variants"]:
            files += [neuron_file(model, l, v) for l in self.variant_langs(v)]
        return files

    def neuron_targets(self) -> list[str]:
        """Neuron files, variants and summaries of every model (+ the detector comparison)."""
        out = []
        if self.compares_detectors:
            out += [f"results/{m}/neurons_lape/agreement.csv" for m in self.roles.full_models()]
        for model in self.roles.detection_models():
            out += self.neuron_files(model) + [f"results/{model}/neurons/summary.csv"]
        return out

    # --- evaluation: labels and runs ------------------------------------------------------

    def run_labels(self, condition: str) -> list[str]:
        """Path labels of one configured condition: the default neuron set, one per seed if random."""
        assert self.eval is not None
        if "." not in condition and self.eval["neuron_set"] != "all":
            condition = f"{condition}.{self.eval['neuron_set']}"
        if condition.startswith("R"):
            return [f"{condition}-s{s}" for s in self.eval["seeds"]]
        return [condition]

    def _sweep_conditions(self) -> list[str]:
        sweep = self.eval["sweep"] if self.eval else {"enabled": False}
        if not sweep["enabled"]:
            return []
        return [f"D_U-n1_{n}" for n in sweep["n1"]] + [f"D_G-n2_{n}" for n in sweep["n2"]]

    def masked_runs(self) -> list[tuple[str, str, str]]:
        """(task, run label, mask language) of every masked run, sweep included, config order."""
        if self.eval is None:
            return []
        runs = []
        for task, spec in self.eval["tasks"].items():
            targets = [l for l in spec["langs"] if l != ENGLISH]
            for cond in spec.get("conditions", []):
                for label in self.run_labels(cond):
                    runs += [(task, label, l) for l in targets]
        sweep = self.eval["sweep"]
        for cond in self._sweep_conditions():
            for label in self.run_labels(cond):
                runs += [(sweep["task"], label, l) for l in sweep["langs"] if l != ENGLISH]
        return list(dict.fromkeys(runs))

    def count_peers(self, task: str, label: str) -> list[str]:
        """Run labels (no seeds) of the table a masked run belongs to (deactivation.count: equal).

        The task's configured conditions, or the N1/N2 sweep's for a sweep label.
        """
        if self.config["deactivation"]["count"] != "equal":
            return []
        assert self.eval is not None
        label = _SEED.sub("", label)
        conds = self.eval["tasks"].get(task, {}).get("conditions", [])
        table = [_SEED.sub("", l) for c in conds for l in self.run_labels(c)]
        sweep = self.eval["sweep"]
        if label not in table and sweep["enabled"] and task == sweep["task"]:
            table = [_SEED.sub("", l) for c in self._sweep_conditions() for l in self.run_labels(c)]
        return sorted(dict.fromkeys(table)) if label in table else [label]

    def deactivation_models(self) -> list[str]:
        """Models of the deactivation study (evaluation.models; null = every non-lens-only one)."""
        return self.roles.deactivation_models()

    # --- fine-tuning ----------------------------------------------------------------------

    def finetune_langs(self) -> list[str]:
        """Fine-tuned languages: Fig. 4's high-resource, then Table 6's low-resource ones."""
        if self.ft is None:
            return []
        return list(dict.fromkeys(self.ft["high_resource"] + self.ft["low_resource"]))

    def finetune_runs(self) -> list[tuple[str, int]]:
        """(kind, N) of every training run per language: ls for each N, baselines at baseline_n_docs."""
        if self.ft is None:
            return []
        runs = []
        for kind in self.ft["kinds"]:
            ns = self.ft["n_docs"] if kind == "ls" else [self.ft["baseline_n_docs"]]
            runs += [(kind, n) for n in ns]
        if "ls" in self.ft["kinds"] and self.ft["baseline_n_docs"] not in self.ft["n_docs"]:
            runs.append(("ls", self.ft["baseline_n_docs"]))  # Table 6 / Fig. 4 compare at it
        return runs

    def finetune_targets(self) -> list[str]:
        """Every delta file (trained even without an evaluation section)."""
        if self.ft is None:
            return []
        return [
            delta_file(m, k, n, l)
            for m in self.ft["models"]
            for k, n in self.finetune_runs()
            for l in self.finetune_langs()
        ]

    def finetune_eval_models(self) -> list[str]:
        """Fine-tuned models that are also evaluated (an evaluation section is needed)."""
        return [] if self.ft is None or self.eval is None else list(self.ft["models"])

    def finetune_eval_runs(self) -> list[tuple[str, str, str]]:
        """(task, ft label, language): tasks of evaluation.tasks, languages finetune.tasks covers."""
        if self.ft is None or self.eval is None:
            return []
        runs = []
        for task in self.eval["tasks"]:
            langs = [l for l in self.finetune_langs() if l in self.ft["tasks"].get(task, [])]
            runs += [(task, f"ft_{k}-{n}", l) for k, n in self.finetune_runs() for l in langs]
        return runs

    # --- evaluation jobs ------------------------------------------------------------------

    def eval_jobs(self, model: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """(run label, job language) -> (task, language) pairs of every evaluation job of a model.

        Label "none" is the unmasked baseline of a language; a masked or fine-tuned label's job
        scores English and the language on each of its tasks. With evaluation.group_languages
        one job per label covers every language (job language `ALL`). Config order throughout.
        """
        base: list[tuple[str, str]] = []  # (task, lang) of the baselines
        runs: list[tuple[str, str, str]] = []
        if self.eval is not None and model in self.deactivation_models():
            for task, spec in self.eval["tasks"].items():
                base += [(task, l) for l in spec["langs"]]
            runs += self.masked_runs()
        if model in self.finetune_eval_models():
            for task, label, lang in self.finetune_eval_runs():
                base += [(task, ENGLISH), (task, lang)]
                runs.append((task, label, lang))
        grouped = self.eval is not None and self.eval["group_languages"]
        jobs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for task, label, lang in [(t, BASELINE, l) for t, l in base] + runs:
            jobs.setdefault((label, ALL if grouped else lang), []).append((task, lang))
        return {k: list(dict.fromkeys(v)) for k, v in jobs.items()}

    def eval_outputs(self, model: str) -> list[str]:
        """Every evaluation JSON of one model (collect_scores' inputs)."""
        return [eval_file(model, label, lang) for label, lang in self.eval_jobs(model)]

    def task_spec(self, task: str, lang: str) -> dict[str, Any]:
        """The `mwork.lmeval_tasks.TaskSpec` mapping of one task and language."""
        assert self.eval is not None
        spec = self.eval["tasks"].get(task, {})
        out = {
            "task": task,
            "lang": lang,
            "prompt_variant": spec.get("prompt_variant", "paper"),
            "n_samples": spec.get("n_samples"),
            "seed": self.eval["sample_seed"],
            "hf_dataset": spec.get("hf_dataset"),
            "hf_revision": spec.get("hf_revision"),
        }
        if task in self.eval["local"]:
            out.update(source="local", path=self.eval["local"][task].format(lang=lang))
        return out

    def _job(self, model: str, label: str, lang: str) -> list[tuple[str, str]]:
        pairs = self.eval_jobs(model).get((label, lang))
        if pairs is None:
            raise ConfigError(
                f"no evaluation job {label}/{lang} is planned for model {model}",
                "ask for a result the config plans (see `snakemake -n`)",
            )
        return pairs

    @staticmethod
    def eval_langs(label: str, lang: str) -> list[str]:
        """Languages one task of a job is scored in: its own (baseline), or English and it."""
        return [lang] if label == BASELINE else [ENGLISH, lang]

    def job_tasks(self, model: str, label: str, lang: str) -> list[dict[str, Any]]:
        """`mwork.evaluate.TaskRun` mappings of one job: task, language, specs, count peers."""
        run = RunLabel.parse(label)
        masked = not (run.is_baseline or run.is_finetuned)
        return [
            {
                "task": task,
                "lang": l,
                "specs": [self.task_spec(task, e) for e in self.eval_langs(label, l)],
                "count_peers": self.count_peers(task, label) if masked else [],
            }
            for task, l in self._job(model, label, lang)
        ]

    def job_sources(self, model: str, label: str, lang: str) -> dict[str, str]:
        """Language -> the file a job applies: its neuron file (the label's variant), or the delta
        of a fine-tuned label; empty for the baseline."""
        if label == BASELINE:
            return {}
        langs = dict.fromkeys(l for _, l in self._job(model, label, lang))
        run = RunLabel.parse(label)
        if run.is_finetuned:
            return {l: delta_file(model, run.finetune, run.n_docs, l) for l in langs}
        return {l: neuron_file(model, l, run.variant) for l in langs}

    def job_data(self, model: str, label: str, lang: str) -> list[str]:
        """Local task data files a job reads (inputs, so a rule generating them runs first)."""
        assert self.eval is not None
        local = self.eval["local"]
        files = [
            local[t].format(lang=e)
            for t, l in self._job(model, label, lang)
            if t in local
            for e in self.eval_langs(label, l)
        ]
        return list(dict.fromkeys(files))

    # --- targets --------------------------------------------------------------------------

    def table_targets(self) -> list[str]:
        """Every table of every evaluated model (none without an evaluation section)."""
        if self.eval is None:
            return []
        evaluated = set(self.deactivation_models()) | set(self.finetune_eval_models())
        return [
            f"results/{m}/tables/{name}.{ext}"
            for m in self.models
            if m in evaluated
            for name in TABLE_FILES.values()
            for ext in ("csv", "md")
        ]

    def final_targets(self) -> list[str]:
        """Default targets: neurons, tables and deltas (perplexity and figures come separately)."""
        return self.neuron_targets() + self.table_targets() + self.finetune_targets()

    def ppl_targets(self) -> list[str]:
        """Perplexity tables of every model; with compare_lape also those of the LAPE sets."""
        if "perplexity" not in self.config:
            return []
        names = ["deactivation"] + (["deactivation_lape"] if self.compares_detectors else [])
        return [f"results/{m}/ppl/{n}.md" for m in self.roles.full_models() for n in names]

    def figure_targets(self) -> list[str]:
        """Every figure the config asks for."""
        fig = self.figures
        names = []
        if self.compares_detectors:
            names.append("detector_agreement")
        if self.roles.fig1:
            names.append("fig1_english_ratio")
        if self.roles.fig7:
            names.append("fig7_language_distribution")
        if self.roles.neuron_figure_models():
            names += ["fig3_neuron_counts", "neuron_share"]
        names += [f for f in fig["overlap"] if self.roles.overlap_models(f)]
        if fig["deactivation"] and self.table_targets():
            names.append("deactivation_summary")
        if self.finetune_eval_models():
            names.append("fig4_enhancement")
        return [f"results/figures/{n}.pdf" for n in names]

    def findings_targets(self) -> list[str]:
        """What this run found beside each table and figure of the report (`mwork.findings`, one
        `.findings.rst` per item), asked for by name so that a run made before they existed
        writes them too."""
        items = [t for t in self.table_targets() if t.endswith(".csv")]
        items += self.ppl_targets() + self.figure_targets()
        out = [t.rsplit(".", 1)[0] + ".findings.rst" for t in items]
        if self.finetune_eval_models():
            out.append("results/tables/table6_low_resource.findings.rst")
        return out

    def overlap_pairs(self, figure: str) -> list[list[str]]:
        """(model, lang) of each neuron file of one overlap figure, model-major."""
        return [[m, l] for m in self.roles.overlap_models(figure) for l in self.detect_langs]
