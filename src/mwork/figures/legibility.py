"""Is a figure legible at the size the report shows it? Text boxes inside the canvas, none overlapping.

`text_boxes(fig)` lays the figure out (constrained layout) and returns the window extent of every
piece of text a reader sees: the figure title, legends (one box each), axes titles, axis labels,
drawn tick labels, and texts inside axes (bar value labels, heatmap cell values). `legibility_problems`
lists, in words, each box that leaves the canvas and each pair of boxes that overlap. The figure
tests assert that list is empty for every figure drawn with demo-shaped data.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = ["TextBox", "legibility_problems", "text_boxes"]

_TOLERANCE = 0.5  # pixels: boxes that only touch do not overlap


@dataclass(frozen=True)
class TextBox:
    """One text element: what it is (kind, text) and where (window extent in pixels)."""

    kind: str
    text: str
    box: Bbox


def _visible(t: Text) -> bool:
    return bool(t.get_visible() and t.get_text().strip())


def _axis_ticklabels(axis) -> list[Text]:  # noqa: ANN001 (matplotlib.axis.Axis)
    ticks = axis._update_ticks()  # the ticks actually drawn (inside the view limits)
    labels = [t.label1 for t in ticks] + [t.label2 for t in ticks]
    return [t for t in labels if _visible(t)]


def text_boxes(fig: Figure) -> list[TextBox]:
    """Every visible text of `fig` after layout, as window extents (pixels at the figure's dpi)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    out: list[TextBox] = []

    def add(kind: str, t: Text) -> None:
        if _visible(t):
            out.append(TextBox(kind, t.get_text(), t.get_window_extent(renderer)))

    if fig._suptitle is not None:
        add("figure title", fig._suptitle)
    for t in fig.texts:
        if t is not fig._suptitle:
            add("figure text", t)
    for legend in fig.legends:
        if legend.get_visible():
            out.append(TextBox("legend", "legend", legend.get_window_extent(renderer)))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            add("axes title", t)
        add("x label", ax.xaxis.label)
        add("y label", ax.yaxis.label)
        for name, axis in (("x tick label", ax.xaxis), ("y tick label", ax.yaxis)):
            for t in _axis_ticklabels(axis):
                add(name, t)
        for t in ax.texts:
            add("text in axes", t)
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            out.append(TextBox("legend", "legend", legend.get_window_extent(renderer)))
    return out


def _overlap(a: Bbox, b: Bbox) -> bool:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w > _TOLERANCE and h > _TOLERANCE


def legibility_problems(fig: Figure) -> list[str]:
    """Texts outside the canvas and overlapping pairs of texts, one line each (empty: legible)."""
    boxes = text_boxes(fig)
    canvas = fig.bbox
    problems = []
    for b in boxes:
        x = b.box
        if (
            x.x0 < canvas.x0 - _TOLERANCE
            or x.y0 < canvas.y0 - _TOLERANCE
            or x.x1 > canvas.x1 + _TOLERANCE
            or x.y1 > canvas.y1 + _TOLERANCE
        ):
            problems.append(f"{b.kind} {b.text!r} leaves the canvas ({_fmt(x)} vs {_fmt(canvas)})")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if _overlap(a.box, b.box):
                problems.append(f"{a.kind} {a.text!r} overlaps {b.kind} {b.text!r}")
    return problems


def _fmt(b: Bbox) -> str:
    return f"[{b.x0:.0f}, {b.y0:.0f}, {b.x1:.0f}, {b.y1:.0f}]"
