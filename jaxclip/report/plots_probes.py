"""Plots for probes and class-agnostic logits (temperature, entropy, prompt count, L2 path).

Each function takes plain arrays (the fields of `jaxclip.analysis.logits.TemperatureSweep`,
`EntropyStats`, `jaxclip.probes.linear.LogisticPath`, ...), draws one figure, saves it with
`jaxclip.report.save_figure` and returns the PNG's name (for `Report.figure`). Accuracies are
fractions and are shown in percent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.ticker
import numpy as np

from jaxclip.report.plots import plt, save_figure


def _pct(a: Any) -> np.ndarray:
    return 100.0 * np.asarray(a, dtype=np.float64)


def plot_temperature_accuracy(
    workdir: str | os.PathLike,
    taus: Sequence[float],
    acc_scaled: Sequence[float],
    acc_softmax: Sequence[float],
    *,
    acc_scaled_via_l2: Sequence[float] | None = None,
    points: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "Probe accuracy vs temperature",
    name: str = "tau_accuracy.png",
) -> str:
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
    return save_figure(fig, workdir, name)


def plot_temperature_entropy(
    workdir: str | os.PathLike,
    taus: Sequence[float],
    mean_entropy: Sequence[float],
    ln_k: float,
    *,
    mean_confidence: Sequence[float] | None = None,
    points: Mapping[str, Mapping[str, float]] | None = None,
    title: str = "Mean softmax entropy vs temperature",
    name: str = "tau_entropy.png",
) -> str:
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
        ax.legend(lines + l2, labels + lab2, fontsize=8, loc="center right")
    else:
        ax.legend(fontsize=8)
    ax.set_title(title)
    return save_figure(fig, workdir, name)


def plot_entropy_histograms(
    workdir: str | os.PathLike,
    histograms: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ln_k: float,
    *,
    gap_histograms: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    title: str = "Per-image softmax entropy",
    name: str = "entropy_histograms.png",
) -> str:
    """Step histograms of per-image entropy (counts, edges) with ln K marked; with
    `gap_histograms` (log10(ln K - H), from `EntropyStats`) a second panel resolves the
    near-uniform settings that all sit in the last bin of the first."""
    ncols = 2 if gap_histograms else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0, 0]
    for label, (counts, edges) in histograms.items():
        ax.stairs(counts, edges, label=label, fill=False, lw=1.5)
    ax.axvline(ln_k, color="r", ls="--", label=f"ln K = {ln_k:.3f}")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("entropy H (nats)")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend(fontsize=8)
    if gap_histograms:
        ax = axes[0, 1]
        for label, (counts, edges) in gap_histograms.items():
            ax.stairs(counts, edges, label=label, fill=False, lw=1.5)
        ax.set_yscale("symlog", linthresh=1)
        ax.set_xlabel("log10(ln K − H)  (distance below the maximum entropy)")
        ax.set_ylabel("images")
        ax.set_title("How close to uniform")
        ax.legend(fontsize=8)
    return save_figure(fig, workdir, name)


def plot_prompt_count(
    workdir: str | os.PathLike,
    rows: Sequence[Mapping[str, float]],
    *,
    series: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    title: str = "Probe accuracy vs number of prompts",
    name: str = "prompt_count.png",
) -> str:
    """Accuracy vs K from `prompt_count_sweep` rows; more curves via `series` ({label: rows})."""
    curves = {"test accuracy": rows, **(series or {})}
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, rs in curves.items():
        k = [r["num_prompts"] for r in rs]
        ax.plot(k, _pct([r["accuracy"] for r in rs]), "o-", label=label)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("number of prompts K (nested subsets)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, workdir, name)


def plot_regularization_path(
    workdir: str | os.PathLike,
    l2_grid: Sequence[float],
    accuracy: Mapping[str, Sequence[float]],
    *,
    chosen: float | None = None,
    reference: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    title: str = "Regularisation path",
    name: str = "regularization_path.png",
) -> str:
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
    return save_figure(fig, workdir, name)
