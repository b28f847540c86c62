"""Classification plots: a clustered confusion matrix, per-class F1, template comparison.

Every function takes arrays / result rows (never models), draws one figure, saves it with
`jaxclip.report.save_figure(fig, workdir, name)` and returns the file name for `Report.figure`.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from jaxclip.report.plots import save_figure

#: Above this many classes only every k-th tick label is printed.
MAX_TICK_LABELS = 40
#: Optimal leaf ordering is O(C^3); above this many classes the plain dendrogram order is used.
_MAX_OPTIMAL_ORDERING = 400


def row_normalize(confusion: Any) -> np.ndarray:
    """P[i, j] = M[i, j] / sum_j M[i, j] (rows with no samples stay zero)."""
    m = np.asarray(confusion, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix; got shape {m.shape}")
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def confusion_order(confusion: Any) -> np.ndarray:
    """A class order that puts classes confused with each other next to each other.

    Affinity A = (P + P^T) / 2 of the row-normalised confusion P with a zero diagonal (how often
    i and j are mistaken for one another, either way); distance = max(A) - A; average-linkage
    hierarchical clustering (scipy) with optimal leaf ordering (Bar-Joseph et al., 2001) for up
    to 400 classes. Returns a permutation of range(C); the identity when nothing is confused.
    """
    p = row_normalize(confusion)
    c = p.shape[0]
    a = (p + p.T) / 2.0
    np.fill_diagonal(a, 0.0)
    if c < 3 or a.max() <= 0:
        return np.arange(c)
    dist = a.max() - a
    np.fill_diagonal(dist, 0.0)
    z = hierarchy.linkage(
        squareform(dist, checks=False),
        method="average",
        optimal_ordering=c <= _MAX_OPTIMAL_ORDERING,
    )
    return hierarchy.leaves_list(z).astype(np.int64)


def _tick_step(c: int, max_labels: int) -> int:
    return 1 if c <= max_labels else math.ceil(c / max_labels)


def top_confusions(confusion: Any, classnames: Sequence[str], n: int = 10) -> list[dict[str, Any]]:
    """The n largest off-diagonal cells: {"true", "predicted", "count", "fraction"} rows, where
    fraction is the share of the true class's samples (ties: lower flat index first)."""
    m = np.asarray(confusion)
    p = row_normalize(m)
    off = p.copy()
    np.fill_diagonal(off, -1.0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    rows = []
    for f in flat:
        i, j = divmod(int(f), m.shape[1])
        if off[i, j] <= 0:
            break
        rows.append(
            {
                "true": classnames[i],
                "predicted": classnames[j],
                "count": int(m[i, j]),
                "fraction": float(p[i, j]),
            }
        )
    return rows


def plot_confusion_matrix(
    confusion: Any,
    classnames: Sequence[str],
    workdir: str | os.PathLike,
    name: str = "confusion_matrix.png",
    title: str | None = None,
    reorder: bool = True,
    max_tick_labels: int = MAX_TICK_LABELS,
    top_n: int = 10,
) -> str:
    """Row-normalised confusion matrix, readable from 2 to 1000 classes.

    Rows are true classes, columns predictions, each row sums to 1. Classes are reordered by
    `confusion_order` so that groups of mutually confused classes form visible blocks on the
    diagonal; the colour scale is a square-root (PowerNorm 0.5) so 1-5 % confusions show beside
    90 % diagonals. All tick labels are shown up to `max_tick_labels` classes, else every k-th;
    cells are annotated up to 12 classes; the `top_n` largest confusions are listed at the side.
    """
    m = np.asarray(confusion)
    c = m.shape[0] if m.ndim == 2 else -1
    if m.ndim != 2 or m.shape[1] != c or len(classnames) != c:
        raise ValueError(
            f"confusion must be (C, C) with C = len(classnames) = {len(classnames)}; got {m.shape}"
        )
    order = confusion_order(m) if reorder else np.arange(c)
    p = row_normalize(m)[np.ix_(order, order)]
    names = [str(classnames[i]) for i in order]

    side = float(np.clip(0.16 * c + 3.0, 5.0, 15.0))
    if top_n:
        fig, (ax, tax) = plt.subplots(
            1, 2, figsize=(side + 4.2, side), gridspec_kw={"width_ratios": [side, 3.4]}
        )
        tax.axis("off")
    else:
        fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(
        p,
        cmap="magma_r",
        norm=colors.PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0),
        interpolation="nearest",
    )
    step = _tick_step(c, max_tick_labels)
    ticks = np.arange(0, c, step)
    fontsize = float(np.clip(220.0 / max(len(ticks), 1), 5.0, 10.0))
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=fontsize)
    ax.set_xlabel("predicted class" + (f" (one label in {step})" if step > 1 else ""))
    ax.set_ylabel("true class")
    if c <= 12:
        for i in range(c):
            for j in range(c):
                if p[i, j] > 0:
                    ax.text(
                        j, i, f"{p[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if p[i, j] > 0.45 else "black",
                    )  # fmt: skip
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cbar.set_label("fraction of the true class (row-normalised, sqrt scale)")
    cbar.set_ticks([0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0])
    ax.set_title(
        title or f"Confusion matrix ({c} classes" + (", clustered order)" if reorder else ")")
    )
    if top_n:
        lines = [
            f"{r['true']} → {r['predicted']}: {100 * r['fraction']:.1f}% ({r['count']})"
            for r in top_confusions(m, classnames, top_n)
        ]
        text = "Top confusions\n(true → predicted)\n\n" + (
            "\n".join(textwrap.shorten(s, 44) for s in lines) if lines else "none"
        )
        tax.text(
            0.0, 1.0, text, transform=tax.transAxes, va="top", ha="left", fontsize=9,
            family="monospace",
            bbox={"boxstyle": "round", "facecolor": "#f4f4f4", "edgecolor": "#bbbbbb"},
        )  # fmt: skip
    return save_figure(fig, workdir, name)


def plot_per_class_f1(
    f1: Any,
    classnames: Sequence[str],
    workdir: str | os.PathLike,
    name: str = "per_class_f1.png",
    title: str | None = None,
) -> str:
    """Per-class F1, sorted best to worst, as horizontal bars with the macro mean marked."""
    scores = np.asarray(f1, dtype=np.float64)
    if scores.ndim != 1 or scores.shape[0] != len(classnames):
        raise ValueError(
            f"f1 must be (C,) with C = len(classnames) = {len(classnames)}; got {scores.shape}"
        )
    c = scores.shape[0]
    order = np.argsort(-scores, kind="stable")
    height = float(np.clip(0.17 * c + 1.4, 3.0, 60.0))
    fig, ax = plt.subplots(figsize=(7.5, height))
    y = np.arange(c)
    cmap = plt.get_cmap("RdYlGn")
    ax.barh(y, scores[order], color=cmap(scores[order]), edgecolor="none", height=0.8)
    ax.set_yticks(y, [str(classnames[i]) for i in order], fontsize=float(np.clip(9 - c / 40, 5, 9)))
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_ylim(c - 0.5, -0.5)
    mean = float(scores.mean())
    ax.axvline(mean, color="#333333", linestyle="--", linewidth=1)
    ax.set_xlabel("F1")
    if c > 40:
        ax.tick_params(axis="x", labeltop=True)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if c <= 40:
        for yi, v in zip(y, scores[order]):
            ax.text(min(v + 0.01, 0.93), yi, f"{v:.2f}", va="center", fontsize=8)
    ax.set_title(title or f"Per-class F1 ({c} classes, sorted); dashed: macro F1 = {mean:.3f}")
    return save_figure(fig, workdir, name)


def plot_template_comparison(
    rows: Sequence[Mapping[str, Any]],
    workdir: str | os.PathLike,
    name: str = "template_comparison.png",
    metrics: Sequence[str] = ("top1", "top5"),
    title: str | None = None,
    sort: bool = True,
) -> str:
    """Grouped horizontal bars of zero-shot accuracy per prompt template.

    Args:
      rows: e.g. `zero_shot.compare_templates` output: dicts with "template" and the metrics
        (fractions in [0, 1]); an "ensemble" row is drawn hatched.
      metrics: which keys to draw, one bar each.
      sort: order templates by the first metric, best on top.
    """
    if not rows:
        raise ValueError("rows is empty; nothing to plot")
    for key in ("template", *metrics):
        if key not in rows[0]:
            raise ValueError(f"rows need a {key!r} key; got keys {sorted(rows[0])}")
    rows = list(rows)
    if sort:
        rows.sort(key=lambda r: -float(r[metrics[0]]))
    n, k = len(rows), len(metrics)
    fig, ax = plt.subplots(figsize=(9.0, 0.55 * n * max(k, 1) * 0.75 + 1.6))
    bar = 0.8 / k
    palette = ["#3b6fb6", "#9cc3e6", "#e69f00", "#56b4e9"]
    y = np.arange(n)
    for m_i, metric in enumerate(metrics):
        vals = np.array([100.0 * float(r[metric]) for r in rows])
        pos = y - 0.4 + bar * (m_i + 0.5)
        bars = ax.barh(pos, vals, height=bar * 0.92, color=palette[m_i % 4], label=metric)
        for b, r, v in zip(bars, rows, vals):
            if r["template"] == "ensemble":
                b.set_hatch("//")
                b.set_edgecolor("white")
            ax.text(v + 0.5, b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center", fontsize=8)
    labels = [textwrap.fill(repr(r["template"]) if r["template"] != "ensemble" else
                            "ensemble (all templates)", 46) for r in rows]  # fmt: skip
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 108)
    ax.set_xlabel("zero-shot accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="lower right", fontsize=9)
    ax.set_title(title or "Prompt templates")
    return save_figure(fig, workdir, name)
