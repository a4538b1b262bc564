"""Model roles: which stages of the study each configured model takes part in (torch-free).

A model's roles follow from the lists that name it, so each fact lives in one place:

- `deactivation`: in `evaluation.models` (null: every model that is not lens-only); baselines,
  masked runs, Tables 1-5, 11-17.
- `enhancement`: in `finetune.models`; training, fine-tuned runs, Fig. 4, Table 6.
- `detection`: any of the above, `figures.neuron_models` or a `figures.overlap` list; PLND neuron
  files and their summary.
- `lens`: in `figures.lens.models` (Fig. 1) or `figures.lens.fig7_models` (Fig. 7).

A model named only by the lens lists is *lens-only*: it gets no detection and no evaluation
(the paper's Vicuna-13b and Chinese-Llama). A model of a neuron figure only (BLOOMZ in Fig. 6) is
detected in `languages.detect` without the App. E variants; deactivation and enhancement models get
every language of the study and the variants. `summary()` lists, per figure and table, its models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ROLES", "ModelRoles"]

ROLES = ("detection", "deactivation", "enhancement", "lens")


def _names(models: list[str], listed: list[str] | None) -> list[str]:
    """A figure's or stage's models: the listed ones, or (null) the given default, config order."""
    return list(models) if listed is None else list(listed)


class ModelRoles:
    """Roles of the models of one (schema-validated) config."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.models: list[str] = list(config["models"])
        self.eval: Mapping[str, Any] | None = config.get("evaluation")
        self.ft: Mapping[str, Any] | None = config.get("finetune")
        figures = config.get("figures", {})
        lens = figures.get("lens", {})
        self.fig1: list[str] = list(lens.get("models", []))
        fig7 = lens.get("fig7_models")
        self.fig7: list[str] = list(self.fig1 if fig7 is None else fig7)
        self._neuron_models: list[str] | None = figures.get("neuron_models")
        self._overlap: Mapping[str, list[str] | None] = figures.get("overlap", {})

    # --- stages ---------------------------------------------------------------------------

    def lens_models(self) -> list[str]:
        """Models the lens runs on (Fig. 1's, then Fig. 7's), config order, once each."""
        return list(dict.fromkeys(self.fig1 + self.fig7))

    def lens_only(self, model: str) -> bool:
        """Named by a lens list and by no list of another stage or figure."""
        if model not in self.lens_models():
            return False
        listed: list[str] = list(self.ft["models"]) if self.ft is not None else []
        if self.eval is not None and self.eval["models"] is not None:
            listed += self.eval["models"]
        listed += self._neuron_models or []
        listed += [m for ms in self._overlap.values() for m in ms or []]
        return model not in listed

    def studied(self) -> list[str]:
        """Every model that is not lens-only (the default of the null lists)."""
        return [m for m in self.models if not self.lens_only(m)]

    def deactivation_models(self) -> list[str]:
        """Models of the deactivation study (evaluation.models; null = every non-lens-only one)."""
        if self.eval is None:
            return []
        return _names(self.studied(), self.eval["models"])

    def enhancement_models(self) -> list[str]:
        """Models that are fine-tuned (finetune.models)."""
        return [] if self.ft is None else list(self.ft["models"])

    def neuron_figure_models(self) -> list[str]:
        """Models of Fig. 3 and the neuron-share bars (null = every non-lens-only model)."""
        return _names(self.studied(), self._neuron_models)

    def overlap_models(self, figure: str) -> list[str]:
        """Models of one overlap figure (null = every non-lens-only model)."""
        return _names(self.studied(), self._overlap[figure])

    def full_models(self) -> list[str]:
        """Models detected in every study language with the variants: deactivation, enhancement."""
        both = set(self.deactivation_models()) | set(self.enhancement_models())
        return [m for m in self.models if m in both]

    def variant_models(self) -> list[str]:
        """Models that get the App. E variants: the full ones; in a detection-only study (neither
        evaluation nor finetune) every studied model, since its neuron sets are the study."""
        if self.eval is None and self.ft is None:
            return self.studied()
        return self.full_models()

    def detection_models(self) -> list[str]:
        """Models that get neuron files: every stage or figure that reads neurons, config order."""
        need = set(self.full_models()) | set(self.neuron_figure_models())
        for figure in self._overlap:
            need |= set(self.overlap_models(figure))
        return [m for m in self.models if m in need]

    def roles(self, model: str) -> list[str]:
        """The stages `model` takes part in, in `ROLES` order."""
        has = {
            "detection": model in self.detection_models(),
            "deactivation": model in self.deactivation_models(),
            "enhancement": model in self.enhancement_models(),
            "lens": model in self.lens_models(),
        }
        return [r for r in ROLES if has[r]]

    # --- what a person reads --------------------------------------------------------------

    def figure_models(self) -> dict[str, list[str]]:
        """Figure or table group -> the models it shows (only groups the config asks for)."""
        out: dict[str, list[str]] = {}
        if self.fig1:
            out["Fig. 1 (lens, English vs non-English)"] = self.fig1
        if self.fig7:
            out["Fig. 7 (lens, per-language distribution)"] = self.fig7
        if self.neuron_figure_models():
            out["Fig. 3 + neuron share"] = self.neuron_figure_models()
        for figure in self._overlap:
            if self.overlap_models(figure):
                out[f"{figure} (Eq. 11 overlap heatmaps)"] = self.overlap_models(figure)
        if self.deactivation_models():
            out["Tables 1-5, 11-17 (deactivation)"] = self.deactivation_models()
        if self.enhancement_models() and self.eval is not None:
            out["Fig. 4, Table 6 (enhancement)"] = self.enhancement_models()
        return out

    def summary(self) -> list[str]:
        """Lines for a person: each model's roles, then each figure/table group's models."""
        lines = ["model roles:"]
        for model in self.models:
            roles = self.roles(model)
            note = " (lens only: no detection, no evaluation)" if self.lens_only(model) else ""
            lines.append(f"  {model}: {', '.join(roles) or 'none'}{note}")
        lines.append("models per figure/table:")
        lines += [f"  {name}: {', '.join(ms)}" for name, ms in self.figure_models().items()]
        return lines
