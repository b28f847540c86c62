"""Checks of what a matplotlib figure draws, shared by the plot tests: where the legend sits
relative to the data (in display coordinates, as matplotlib lays it out), and whether label
text is plain or valid mathtext."""

from __future__ import annotations

import itertools
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.mathtext import MathTextParser
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox


def draw(fig: Figure) -> None:
    """Lays out and draws `fig` on an Agg canvas, so window extents are final."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()


def _dense(xy: np.ndarray, steps: int = 40) -> np.ndarray:
    """Display points along a polyline: its vertices and `steps` points on each segment."""
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return xy
    t = np.linspace(0.0, 1.0, steps)[:, None]
    segs = [a + t * (b - a) for a, b in itertools.pairwise(xy)]
    return np.concatenate(segs)


def data_points(ax) -> np.ndarray:
    """(n, 2) display coordinates of what `ax` draws as data, inside the axes: line vertices
    and their segments, scatter offsets, the paths of line collections and step patches."""
    pts = []
    for line in ax.lines:
        pts.append(_dense(line.get_transform().transform(line.get_xydata())))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(coll.get_offset_transform().transform(np.asarray(coll.get_offsets())))
        elif isinstance(coll, LineCollection):
            for path in coll.get_paths():
                pts.append(_dense(coll.get_transform().transform(path.vertices)))
    for patch in ax.patches:
        if not isinstance(patch, Rectangle):  # bars are checked as boxes (data_boxes)
            xy = patch.get_transform().transform(patch.get_path().vertices)
            pts.append(_dense(xy))
    if not pts:
        return np.zeros((0, 2))
    p = np.concatenate(pts)
    box = ax.get_window_extent()
    inside = (
        np.isfinite(p).all(axis=1)
        & (p[:, 0] >= box.x0)
        & (p[:, 0] <= box.x1)
        & (p[:, 1] >= box.y0)
        & (p[:, 1] <= box.y1)
    )
    return p[inside]


def data_boxes(ax) -> list[Bbox]:
    """Display boxes of bars (Rectangle patches) and of text drawn in data coordinates (bar
    value labels)."""
    boxes = [p.get_window_extent() for p in ax.patches if isinstance(p, Rectangle)]
    boxes += [t.get_window_extent() for t in ax.texts if t.get_text()]
    return [b for b in boxes if b.width > 0 and b.height > 0]


def legend_overlaps(fig: Figure) -> list[str]:
    """What each legend of `fig` covers: data points or boxes of any axes (empty: nothing)."""
    draw(fig)
    problems = []
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    legends += list(fig.legends)
    for leg in legends:
        lb = leg.get_window_extent()
        for i, ax in enumerate(fig.axes):
            p = data_points(ax)
            hit = (p[:, 0] > lb.x0) & (p[:, 0] < lb.x1) & (p[:, 1] > lb.y0) & (p[:, 1] < lb.y1)
            if hit.any():
                problems.append(f"legend covers {int(hit.sum())} data points of axes {i}")
            for box in data_boxes(ax):
                if lb.overlaps(box):
                    problems.append(f"legend covers a bar or value label of axes {i}: {box}")
    return problems


_MATH = re.compile(r"(?<!\\)\$(.*?)(?<!\\)\$")


def text_problems(fig: Figure) -> list[str]:
    """Texts of `fig` that show raw TeX: a backslash, brace or underscore outside $...$, an
    unpaired $, or a $...$ part that matplotlib's mathtext cannot parse."""
    parser = MathTextParser("path")
    bad = []
    for t in fig.findobj(Text):
        s = t.get_text()
        if not s:
            continue
        if s.count("$") % 2:
            bad.append(f"unpaired $ in {s!r}")
            continue
        plain = _MATH.sub("", s)
        if any(c in plain for c in "\\{}_"):
            bad.append(f"raw TeX outside mathtext in {s!r}")
        if "$" in s:
            try:
                parser.parse(s, dpi=72)
            except ValueError as e:
                bad.append(f"invalid mathtext {s!r}: {e}")
    return bad


def legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]
