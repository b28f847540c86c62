"""Classification plots: a clustered confusion matrix, per-class F1, template comparison, and
zero-shot on extra attributes.

Every function takes arrays / result rows (never models) and returns one matplotlib Figure; the
caller saves it with `jaxclip.report.save_figure(fig, workdir, name)`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from jaxclip.analysis.metrics import row_normalize, top_confusions

#: Above this many classes only every k-th tick label is printed.
MAX_TICK_LABELS = 40
#: Optimal leaf ordering is O(C^3); above this many classes the plain dendrogram order is used.
_MAX_OPTIMAL_ORDERING = 400


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


def plot_confusion_matrix(
    confusion: Any,
    classnames: Sequence[str],
    title: str | None = None,
    reorder: bool = True,
    max_tick_labels: int = MAX_TICK_LABELS,
    top_n: int = 10,
) -> plt.Figure:
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
    return fig


def plot_per_class_f1(
    f1: Any,
    classnames: Sequence[str],
    title: str | None = None,
) -> plt.Figure:
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
    return fig


def plot_template_comparison(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("top1", "top5"),
    title: str | None = None,
    sort: bool = True,
) -> plt.Figure:
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
    return fig


def plot_attribute_accuracy(attributes: Mapping[str, Mapping[str, Any]]) -> plt.Figure:
    """Zero-shot top-1 per attribute, one bar per prompt kind, chance 1/K dashed.

    Args:
      attributes: attribute -> {"values": K names, "chance": 1/K, "generic": {"top1"}, and
        optionally "class_marginal": {"top1"}} (fractions), as the zero-shot study stores them.
    """
    attrs = list(attributes)
    if not attrs:
        raise ValueError("attributes is empty; nothing to plot")
    kinds = [k for k in ("generic", "class_marginal") if any(k in attributes[a] for a in attrs)]
    fig, ax = plt.subplots(figsize=(1.6 * len(attrs) + 3.0, 4.2))
    width = 0.8 / len(kinds)
    palette = {"generic": "#3b6fb6", "class_marginal": "#e69f00"}
    xs = np.arange(len(attrs))
    for i, kind in enumerate(kinds):
        vals = [
            100 * attributes[a][kind]["top1"] if kind in attributes[a] else np.nan for a in attrs
        ]
        pos = xs - 0.4 + width * (i + 0.5)
        label = kind.replace("_", "-") + " prompts"
        bars = ax.bar(pos, vals, width * 0.92, color=palette[kind], label=label)
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=8)
    for j, a in enumerate(attrs):
        ax.hlines(
            100 * attributes[a]["chance"],
            j - 0.45,
            j + 0.45,
            colors="k",
            linestyles="--",
            label="chance 1/K" if j == 0 else None,
        )
    ax.set_xticks(xs, [f"{a}\n({len(attributes[a]['values'])} values)" for a in attrs])
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    # right of the axes: inside, it hid the value printed above a tall bar
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    ax.set_title("Zero-shot on the attributes (dashed: chance)")
    return fig


def plot_attribute_confusions(
    confusions: Mapping[str, tuple[Any, Sequence[str]]],
) -> plt.Figure:
    """Row-normalised confusion matrices, one panel per attribute, cells annotated.

    Args:
      confusions: attribute -> ((K, K) counts, rows true, columns predicted; K value names).
    """
    n = len(confusions)
    if not n:
        raise ValueError("confusions is empty; nothing to plot")
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.3 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (attr, (conf, names)) in zip(axes.ravel(), confusions.items()):
        conf = np.asarray(conf)
        p = row_normalize(conf)
        ax.imshow(p, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
        k = len(names)
        ax.set_xticks(range(k), names, rotation=90, fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        for i in range(k):
            for j in range(k):
                if p[i, j] >= 0.005:
                    ax.text(
                        j, i, "1" if p[i, j] >= 0.995 else f"{p[i, j]:.2f}"[1:], ha="center",
                        va="center", fontsize=6 if k > 6 else 7,
                        color="white" if p[i, j] > 0.45 else "black",
                    )  # fmt: skip
        acc = np.trace(conf) / max(conf.sum(), 1)
        ax.set_title(f"{attr}: top-1 {100 * acc:.1f} % (chance {100 / k:.1f} %)", fontsize=10)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    fig.tight_layout()
    return fig


def plot_text_norms(per_class: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """Per class: the raw prompt embedding's norm against the share of images predicted as the
    class, by the raw dot product and by the cosine, with the true share.

    Args:
      per_class: rows with "class", "text_norm", "share_dot", "share_cosine", "share_true"
        (shares as fractions), e.g. `zero_shot.text_norm_effects`'s.
    """
    if not per_class:
        raise ValueError("per_class is empty; nothing to plot")
    t_norm = np.asarray([r["text_norm"] for r in per_class], np.float64)
    share_dot = np.asarray([r["share_dot"] for r in per_class], np.float64)
    share_cos = np.asarray([r["share_cosine"] for r in per_class], np.float64)
    share_true = np.asarray([r["share_true"] for r in per_class], np.float64)
    c = len(per_class)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.scatter(t_norm, 100 * share_dot, s=28, color="#e66101", label="raw dot product", zorder=3)
    ax.scatter(t_norm, 100 * share_cos, s=28, color="#3b6fb6", marker="s", label="cosine", zorder=3)
    lo, hi = float(t_norm.min()), float(t_norm.max())
    pad = 0.04 * (hi - lo) if hi > lo else 0.5
    if np.allclose(share_true, share_true.mean()):
        ax.axhline(
            100 * share_true.mean(),
            color="#555555",
            linestyle="--",
            linewidth=1,
            label="true share (balanced)",
        )
    else:
        ax.scatter(
            t_norm,
            100 * share_true,
            s=90,
            color="#555555",
            marker="_",
            linewidths=1.5,
            label="true share",
        )
    order = np.argsort(-np.abs(share_dot - share_true))
    for k in order[: 8 if c <= 20 else 5]:
        ax.annotate(
            str(per_class[k]["class"]),
            (t_norm[k], 100 * share_dot[k]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel("‖t_c‖: norm of the class's raw prompt embedding")
    ax.set_ylabel("% of images predicted as the class")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Prompt embedding norm vs share of predictions: dot product and cosine")
    return fig
