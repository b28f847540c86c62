"""Plots for probes and class-agnostic logits (temperature, entropy, prompt count, L2 path).

Each function takes plain arrays (the fields of `jaxclip.analysis.logits.TemperatureSweep`,
`EntropyStats`, `jaxclip.probes.linear.LogisticPath`, results rows, ...) and returns one
matplotlib Figure; the caller saves it with `jaxclip.report.save_figure`. Accuracies are
fractions and are shown in percent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from jaxclip.report.plots import plt


def _pct(a: Any) -> np.ndarray:
    return 100.0 * np.asarray(a, dtype=np.float64)


def plot_temperature_accuracy(
    taus: Sequence[float],
    acc_scaled: Sequence[float],
    acc_softmax: Sequence[float],
    *,
    acc_scaled_via_l2: Sequence[float] | None = None,
    points: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "Probe accuracy vs temperature",
) -> Figure:
    """tau (log x) vs test accuracy for logits / tau and softmax(logits / tau).

    `points` ({"raw": {...}, "model": {...}} from `TemperatureSweep.points`) marks the raw
    cosines (tau = 1) and the model's logit scale (tau = 1 / s) on both curves.
    """
    taus = np.asarray(taus, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(taus, _pct(acc_scaled), "o-", ms=3, label="features logits / τ (linear: = L2 × τ²)")
    if acc_scaled_via_l2 is not None:
        ax.plot(
            taus,
            _pct(acc_scaled_via_l2),
            "x",
            ms=5,
            color="C0",
            alpha=0.7,
            label="same via identity: logits at L2·τ²",
        )
    ax.plot(taus, _pct(acc_softmax), "s-", ms=3, color="C1", label="features softmax(logits / τ)")
    markers = {"raw": ("*", "raw cosines"), "model": ("D", "model logit scale")}
    for key, pt in (points or {}).items():
        marker, label = markers.get(key, ("P", key))
        ax.scatter(
            [pt["tau"]] * 2,
            [100 * pt["acc_scaled"], 100 * pt["acc_softmax"]],
            marker=marker,
            s=90,
            color="k",
            zorder=5,
            label=f"{label} (τ = {pt['tau']:.3g})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("temperature τ")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_temperature_entropy(
    taus: Sequence[float],
    mean_entropy: Sequence[float],
    ln_k: float,
    *,
    mean_confidence: Sequence[float] | None = None,
    points: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "Mean softmax entropy vs temperature",
) -> Figure:
    """tau (log x) vs mean entropy of softmax(logits / tau), with the ln K ceiling; mean top-1
    confidence on a second axis when given."""
    taus = np.asarray(taus, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(taus, mean_entropy, "o-", ms=3, label="mean entropy")
    ax.axhline(ln_k, color="r", ls="--", label=f"ln K = {ln_k:.4f}")
    for key, pt in (points or {}).items():
        ax.scatter(
            [pt["tau"]],
            [pt["mean_entropy"]],
            marker="*" if key == "raw" else "D",
            s=90,
            color="k",
            zorder=5,
            label=f"{key}: τ = {pt['tau']:.3g}, H = {pt['mean_entropy']:.4f}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("temperature τ")
    ax.set_ylabel("mean entropy (nats)")
    ax.set_ylim(0, ln_k * 1.08)
    ax.grid(True, which="both", alpha=0.3)
    if mean_confidence is not None:
        ax2 = ax.twinx()
        ax2.plot(taus, _pct(mean_confidence), "s--", ms=3, color="C2", label="top-1 confidence")
        ax2.set_ylabel("mean top-1 probability (%)", color="C2")
        ax2.set_ylim(0, 105)
        lines, labels = ax.get_legend_handles_labels()
        l2, lab2 = ax2.get_legend_handles_labels()
        legend_below(ax, handles=lines + l2, labels=labels + lab2)
    else:
        legend_below(ax)
    ax.set_title(title)
    return fig


def _occupied_range(
    histograms: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[float, float] | None:
    """(left edge of the first, right edge of the last) bin holding a count in any histogram."""
    lo, hi = np.inf, -np.inf
    for counts, edges in histograms.values():
        nz = np.flatnonzero(np.asarray(counts) > 0)
        if nz.size:
            e = np.asarray(edges, np.float64)
            lo, hi = min(lo, e[nz[0]]), max(hi, e[nz[-1] + 1])
    return (float(lo), float(hi)) if np.isfinite(lo) else None


def _stairs_panel(
    ax: Any, histograms: Mapping[str, tuple[np.ndarray, np.ndarray]], marks: Sequence[float] = ()
) -> None:
    """Step histograms on a log count axis: x limits around the occupied bins (and `marks`),
    y from below 1 to above the tallest bin, so no spike leaves the axes."""
    for label, (counts, edges) in histograms.items():
        ax.stairs(counts, edges, label=label, fill=False, lw=1.5, baseline=None)
    ax.set_yscale("log")
    top = max((float(np.max(c)) for c, _ in histograms.values() if np.size(c)), default=1.0)
    ax.set_ylim(0.5, max(top, 1.0) * 2.0)
    span = _occupied_range(histograms)
    if span is not None:
        lo, hi = min(span[0], *marks, span[0]), max(span[1], *marks, span[1])
        pad = 0.04 * (hi - lo) if hi > lo else 0.5
        ax.set_xlim(lo - pad, hi + pad)


def legend_below(ax: Any, ncol: int = 2, **kw: Any) -> Any:
    """A legend under the axes (below the x label), where it cannot cover any data."""
    return ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=8, frameon=False, **kw
    )


def legend_right(ax: Any, **kw: Any) -> Any:
    """A legend right of the axes, where it cannot cover any data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=8, **kw)  # fmt: skip


def plot_entropy_histograms(
    histograms: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ln_k: float,
    *,
    gap_histograms: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    title: str = "Per-image softmax entropy",
) -> Figure:
    """Step histograms of per-image entropy (counts, edges) with ln K marked; with
    `gap_histograms` (log10(ln K - H), from `EntropyStats`) a second panel resolves the
    near-uniform settings that all sit in the last bin of the first.

    Counts are on a log axis from 0.5 (empty bins drop off the bottom) to twice the tallest
    bin; each panel's x range spans the bins that hold images (and ln K), not empty edges.
    """
    ncols = 2 if gap_histograms else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0, 0]
    _stairs_panel(ax, histograms, marks=(ln_k,))
    ax.axvline(ln_k, color="r", ls="--", label=f"ln K = {ln_k:.3f}")
    ax.set_xlabel("entropy H (nats)")
    ax.set_ylabel("images (log scale)")
    ax.set_title(title)
    legend_below(ax)
    if gap_histograms:
        ax = axes[0, 1]
        _stairs_panel(ax, gap_histograms)
        ax.set_xlabel("log10(ln K − H)  (distance below the maximum entropy)")
        ax.set_ylabel("images (log scale)")
        ax.set_title("How close to uniform")
        legend_below(ax)
    fig.tight_layout()
    return fig


def plot_prompt_count(
    rows: Sequence[Mapping[str, float]],
    *,
    label: str = "test accuracy",
    series: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    rank_cap: int | None = None,
    title: str = "Probe accuracy vs number of prompts",
) -> Figure:
    """Accuracy vs K from `prompt_count_sweep` rows (the curve called `label`); more curves via
    `series` ({label: rows}). Ticks sit at the K values; `rank_cap` (the embedding dimension D:
    K prompt embeddings span at most D dimensions) is marked by a vertical line."""
    curves = {label: rows, **(series or {})}
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ks: set[float] = set()
    for name, rs in curves.items():
        k = [r["num_prompts"] for r in rs]
        ks.update(k)
        ax.plot(k, _pct([r["accuracy"] for r in rs]), "o-", label=name)
    if rank_cap is not None:
        ax.axvline(rank_cap, color="gray", ls=":", lw=1.5,
                   label=f"K = D = {rank_cap}: rank cap of the prompts")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ticks = sorted(ks)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("number of prompts K (nested subsets)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    legend_below(ax, ncol=1)
    return fig


def plot_regularization_path(
    l2_grid: Sequence[float],
    accuracy: Mapping[str, Sequence[float]],
    *,
    chosen: float | None = None,
    reference: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    title: str = "Regularisation path",
) -> Figure:
    """Accuracy per set ({"train": ..., "val": ..., "test": ...}) vs L2 strength (log x).

    `chosen` marks the selected strength; `reference` adds other curves as {label: (l2, acc)}
    (e.g. scikit-learn's over the same grid).
    """
    grid = np.asarray(l2_grid, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, acc in accuracy.items():
        ax.plot(grid, _pct(acc), "o-", ms=4, label=label)
    for label, (g, acc) in (reference or {}).items():
        ax.plot(np.asarray(g, np.float64), _pct(acc), "x--", ms=6, label=label)
    if chosen is not None:
        ax.axvline(chosen, color="k", ls=":", label=f"chosen L2 = {chosen:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("L2 strength λ (= 1 / C)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _bar_values(ax: Any, bars: Any, vals: Sequence[float]) -> None:
    for b, v in zip(bars, vals):
        ax.text(v + 0.5, b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center", fontsize=8)


def plot_probe_methods(
    methods: Mapping[str, Mapping[str, Any]],
    zero_shot: Mapping[str, Any] | None,
    published: Mapping[str, float],
    chance: float,
    num_classes: int,
) -> Figure:
    """Horizontal bars: test accuracy of each probe (`methods` rows), with zero-shot, chance
    and published numbers (in %) as vertical lines."""
    labels = [m["method"] for m in methods.values()]
    vals = [100 * m["test_accuracy"] for m in methods.values()]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(labels) + 1.8))
    ys = np.arange(len(labels))[::-1]
    _bar_values(ax, ax.barh(ys, vals, color="#3b6fb6", height=0.6), vals)
    if zero_shot is not None:
        ax.axvline(100 * zero_shot["top1"], color="#e69f00", ls="--", label="zero-shot")
    ax.axvline(100 * chance, color="k", ls=":", label="chance 1/C")
    for i, (src, v) in enumerate(published.items()):
        ax.axvline(v, color=f"C{i + 2}", ls="-.", label=src)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Probes on frozen image embeddings ({num_classes} classes)")
    return fig


def plot_few_shot(
    curve: Sequence[Mapping[str, Any]],
    xs: Sequence[float],
    zero_shot: float | None,
    chance: float,
) -> Figure:
    """Mean ± std test accuracy vs labelled examples per class (`xs`, log 2 axis; the last point
    is the whole fit part), with zero-shot and chance as horizontal lines."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = np.asarray(xs, np.float64)
    ys = 100 * np.asarray([r["mean_accuracy"] for r in curve])
    sd = 100 * np.asarray([r["std_accuracy"] for r in curve])
    ax.errorbar(xs, ys, yerr=sd, fmt="o-", ms=4, capsize=3, label="JAX logistic probe")
    if zero_shot is not None:
        ax.axhline(
            100 * zero_shot,
            color="#e69f00",
            ls="--",
            label=f"zero-shot ({100 * zero_shot:.1f} %, no labels)",
        )
    ax.axhline(100 * chance, color="k", ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    labels = [str(r["shots"]) for r in curve[:-1]] + [f"all\n(≈{xs[-1]:.0f})"]
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 102)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Few-shot probe vs zero-shot")
    return fig


def plot_probe_attributes(
    rows: Sequence[Mapping[str, Any]], class_accuracy: float, chance: float, num_classes: int
) -> Figure:
    """Bars: the class probe's (green) and each attribute probe's (blue) test accuracy, chance
    1/K dashed; the legend, right of the axes, names each colour."""
    names = ["class"] + [r["attribute"] for r in rows]
    ks = [num_classes] + [r["values"] for r in rows]
    acc = [100 * class_accuracy] + [100 * r["test_accuracy"] for r in rows]
    chances = [100 * chance] + [100 * r["chance"] for r in rows]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2.5, 4.2))
    xs = np.arange(len(names))
    bars = list(ax.bar(xs[:1], acc[:1], 0.6, color="#6b8e23", label="class probe"))
    if rows:
        bars += ax.bar(xs[1:], acc[1:], 0.6, color="#3b6fb6", label="attribute probes")
    for b, v in zip(bars, acc):
        ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=8)
    for j, ch in enumerate(chances):
        ax.hlines(ch, j - 0.4, j + 0.4, colors="k", linestyles="--",
                  label="chance 1/K" if j == 0 else None)  # fmt: skip
    ax.set_xticks(xs, [f"{n}\n({k} values)" for n, k in zip(names, ks)], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 108)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    legend_right(ax)
    ax.set_title("JAX logistic probe per label (dashed: chance)")
    return fig


def plot_class_agnostic_probes(
    items: Sequence[tuple[str, float, str]],
    chance: float,
    num_prompts: int,
    thesis_svc: float | None = None,
) -> Figure:
    """Horizontal bars of (label, test accuracy, colour) items, chance dotted, the thesis's SVC
    on the cosines (in %) dash-dotted when given."""
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(items) + 1.8))
    ys = np.arange(len(items))[::-1]
    vals = [100 * v for _, v, _ in items]
    _bar_values(ax, ax.barh(ys, vals, color=[col for _, _, col in items], height=0.6), vals)
    ax.axvline(100 * chance, color="k", ls=":", label="chance 1/C")
    if thesis_svc is not None:
        ax.axvline(thesis_svc, color="C3", ls="-.", label="thesis: SVC on cosines")
    ax.set_yticks(ys, [name for name, _, _ in items], fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Probes on K = {num_prompts} class-agnostic features (grey: references)")
    return fig
