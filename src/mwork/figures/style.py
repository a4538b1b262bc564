"""Shared plotting style and helpers: page sizes, colour-blind-safe colours, atomic saving."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

from mwork.atomic import atomic_path
from mwork.errors import MworkError

__all__ = [
    "COLUMN_WIDTH",
    "DEACTIVATION_COLUMNS",
    "HEATMAP_CMAP",
    "OKABE_ITO",
    "PAGE_WIDTH",
    "RC",
    "figure",
    "layer_ticks",
    "require",
    "save_figure",
    "styled",
]

COLUMN_WIDTH, PAGE_WIDTH = 3.5, 7.0
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
HEATMAP_CMAP = "cividis"
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
DEACTIVATION_COLUMNS = (
    "model",
    "table",
    "condition",
    "eng",
    "n_eng",
    "delta_eng",
    "delta_n_eng",
    "delta",
    "delta_lo",
    "delta_hi",
)


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a figure-building function inside `RC` (fonts are fixed when artists are created)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> Figure:
        with mpl.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise MworkError if `df` is empty or lacks `columns` (`what` names the frame)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MworkError(f"{what} frame lacks columns {missing}", f"expected {list(columns)}")
    if df.empty:
        raise MworkError(f"{what} frame is empty", "check the upstream rule's output")


def figure(width: float, height: float) -> Figure:
    """An empty constrained-layout Figure of `width` x `height` inches (not registered with pyplot)."""
    with mpl.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, stem: str | Path, dpi: int = 300) -> list[Path]:
    """Write `stem`.pdf and `stem`.png (temp file + rename each); returns the two paths."""
    stem = Path(stem)
    if stem.suffix in (".pdf", ".png"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("pdf", "png"):
        path = stem.parent / f"{stem.name}.{ext}"
        with atomic_path(path) as tmp, mpl.rc_context(RC):
            fig.savefig(tmp, format=ext, dpi=dpi)
        out.append(path)
    return out


def layer_ticks(ax, n: int, axis: str = "x") -> None:
    """Integer layer ticks 0..n-1: every layer up to 16 layers, else every 4th (plus the last)."""
    step = 1 if n <= 16 else 4
    ticks = list(range(0, n, step))
    if ticks[-1] != n - 1 and n - 1 - ticks[-1] >= 0.75 * step:
        ticks.append(n - 1)
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)
