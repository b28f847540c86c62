"""Plots of the double-ellipsoid analyses (Levi & Gilboa 2025, Figs. 2-6, 9-11).

Each function takes plain arrays and numbers (those of a geometry result: its results.json entry
and its sidecar arrays) and returns a matplotlib `Figure`; the caller saves it with
`jaxclip.report.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = [
    "plot_centred_norms",
    "plot_conformity_distributions",
    "plot_conformity_fit",
    "plot_feature_histograms",
    "plot_kl_vs_alpha",
    "plot_loss_vs_alpha",
    "plot_odd",
    "plot_separability",
    "plot_svm_boundary",
    "plot_variance_spectrum",
]

_IMG, _TXT = "tab:blue", "tab:orange"


def _legend_right(ax: Any, **kw: Any) -> Any:
    """A legend right of the axes, where it cannot cover any data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=8, **kw)  # fmt: skip


def _own_ylim(ax: Any, values: Any, pad: float = 0.06) -> None:
    """y limits from this panel's own finite values, `pad` of their range on each side."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    d = pad * (hi - lo) if hi > lo else max(abs(hi), 1.0) * pad
    ax.set_ylim(lo - d, hi + d)


def _floats(values: Any) -> np.ndarray:
    """A JSON list (None where NaN was) as a float array with NaN back."""
    return np.asarray([np.nan if v is None else v for v in values], np.float64)


def plot_feature_histograms(
    image: np.ndarray, text: np.ndarray, features: Sequence[int], seps: Sequence[float]
) -> Figure:
    """Normalised per-modality histograms of some features (Fig. 2 left).

    Args:
      image, text: (N_i, h), (N_t, h): column c holds the values of feature `features[c]`.
      features: the h feature indices (titles); seps: their Sep (titles).
    """
    image, text = np.asarray(image), np.asarray(text)
    fig = Figure(figsize=(4 * len(features), 3.2))
    axes = fig.subplots(1, len(features), squeeze=False)
    for c, (ax, f) in enumerate(zip(axes[0], features)):
        lo = min(image[:, c].min(), text[:, c].min())
        hi = max(image[:, c].max(), text[:, c].max())
        edges = np.linspace(lo, hi, 61)
        ax.hist(image[:, c], bins=edges, density=True, alpha=0.6, color=_IMG, label="image")
        ax.hist(text[:, c], bins=edges, density=True, alpha=0.6, color=_TXT, label="text")
        ax.set_title(f"feature {int(f)}  (Sep = {seps[c]:.2f})")
        ax.set_xlabel("raw value")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend()
    fig.suptitle("Most separating features of the raw embeddings")
    fig.tight_layout()
    return fig


def plot_separability(sep_sorted: np.ndarray) -> Figure:
    """Sep(l) of all features sorted in decreasing order (Fig. 3 left)."""
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    s = np.asarray(sep_sorted)
    ax.plot(np.arange(1, len(s) + 1), s, marker=".", lw=1)
    ax.axhline(1.0, color="gray", ls=":", lw=1, label="Sep = 1")
    ax.set_xscale("log")
    ax.set_xlabel("feature rank")
    ax.set_ylabel("Sep(l)")
    ax.set_title("Feature separability, sorted")
    ax.legend()
    return fig


def plot_svm_boundary(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    features: Sequence[int],
    coef: Sequence[float],
    intercept: float,
    accuracy: float,
) -> Figure:
    """Scatter of two features for image (label 1) and text (label 0) with the linear SVM
    boundary coef·x + intercept = 0 (Fig. 2 right). The points are drawn in a seeded random
    order (neither modality covers the other); the legend sits right of the axes."""
    fig = Figure(figsize=(6.2, 4.2))
    ax = fig.subplots()
    p, lab = np.asarray(points), np.asarray(labels)
    # one scatter in a seeded random order, so neither modality is drawn over the other
    order = np.random.default_rng(0).permutation(len(lab))
    colours = np.where(lab[order] == 1, _IMG, _TXT)
    ax.scatter(*p[order].T, s=4, alpha=0.5, c=colours)
    dot = {"marker": "o", "ls": "", "ms": 4}
    handles = [Line2D([], [], color=_IMG, label="image", **dot),
               Line2D([], [], color=_TXT, label="text", **dot)]  # fmt: skip
    (w0, w1), b = coef, intercept
    x0, x1 = p[:, 0].min(), p[:, 0].max()
    y0, y1 = p[:, 1].min(), p[:, 1].max()
    if abs(w1) > 1e-12:
        xs = np.linspace(x0, x1, 2)
        ax.plot(xs, -(w0 * xs + b) / w1, "k--", lw=1.5, label="SVM boundary")
    else:
        ax.axvline(-b / w0, color="k", ls="--", lw=1.5, label="SVM boundary")
    pad_y = 0.05 * (y1 - y0)
    ax.set_ylim(y0 - pad_y, y1 + pad_y)
    ax.set_xlabel(f"feature {features[0]}")
    ax.set_ylabel(f"feature {features[1]}")
    ax.set_title(f"Linear SVM on two features: accuracy {100 * accuracy:.2f} %")
    handles += ax.get_legend_handles_labels()[0]  # the boundary
    _legend_right(ax, handles=handles)
    return fig


def plot_centred_norms(
    norms: Mapping[str, np.ndarray], shells: Mapping[str, Mapping[str, float]]
) -> Figure:
    """Histograms of ‖v − m‖ per modality ("image", "text") with sqrt(tr C) and the mean norm
    marked (Fig. 4 bottom); `shells[m]` holds sqrt_trace, mean_norm and rel_error."""
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2)
    for ax, lbl, col in ((axes[0], "image", _IMG), (axes[1], "text", _TXT)):
        sh = shells[lbl]
        ax.hist(np.asarray(norms[lbl]), bins=60, density=True, color=col, alpha=0.7)
        ax.axvline(sh["sqrt_trace"], color="k", ls="--",
                   label=f"sqrt(tr C) = {sh['sqrt_trace']:.4f}")  # fmt: skip
        ax.axvline(sh["mean_norm"], color="r", ls=":",
                   label=f"mean ‖v−m‖ = {sh['mean_norm']:.4f}")  # fmt: skip
        ax.set_xlim(0, None)
        ax.set_xlabel("‖v − m‖")
        ax.set_title(f"{lbl}: thin shell (rel. err. {100 * sh['rel_error']:.2f} %)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("density")
    return fig


def plot_variance_spectrum(
    variances: np.ndarray,
    eigenvalues: np.ndarray,
    participation_ratios: Sequence[float],
    *,
    rel_floor: float = 1e-12,
) -> Figure:
    """Sorted per-feature variances and eigenvalues of C, log-y (Fig. 5 left: an ellipsoid).

    Args:
      variances, eigenvalues: (2, D), row 0 images, row 1 texts, each sorted descending.
      participation_ratios: (image, text), shown in the legend.
      rel_floor: eigenvalues below `rel_floor` times the largest are round-off of a
        rank-deficient C (e.g. one text per class); they are left out, and the legend counts
        them, so the y range shows the spectrum rather than 1e-30.
    """
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for row, (lbl, col) in enumerate((("image", _IMG), ("text", _TXT))):
        var, eig = np.asarray(variances[row], np.float64), np.asarray(eigenvalues[row], np.float64)
        r = np.arange(1, len(var) + 1)
        axes[0].plot(r, var, color=col, label=lbl)
        keep = eig > rel_floor * eig.max() if eig.size and eig.max() > 0 else eig > 0
        dropped = int((~keep).sum())
        note = f", {dropped} below {rel_floor:g}·max left out" if dropped else ""
        axes[1].plot(r[keep], eig[keep], color=col,
                     label=f"{lbl} (PR = {participation_ratios[row]:.1f}{note})")  # fmt: skip
    axes[0].set_title(r"per-feature variance $C_{ll}$, sorted")
    axes[0].set_ylabel("variance (log scale)")
    axes[1].set_title("eigenvalues of C")
    axes[1].set_ylabel("eigenvalue (log scale)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("rank")
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_odd(image_odd: np.ndarray, text_odd: np.ndarray) -> Figure:
    """Histograms of off-diagonal dominance ODD(l) (Eq. 6, Fig. 5 right); 1 = dominance limit."""
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    a, b = np.asarray(image_odd), np.asarray(text_odd)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    edges = np.linspace(0, max(a.max(), b.max(), 1.0) * 1.02, 50)
    ax.hist(a, bins=edges, alpha=0.6, color=_IMG, label="image")
    ax.hist(b, bins=edges, alpha=0.6, color=_TXT, label="text")
    ax.axvline(1.0, color="k", ls="--", lw=1, label="ODD = 1")
    ax.set_xlabel(r"ODD($l$) = $\sum_{k \neq l}\, |C_{lk}| \,/\, C_{ll}$")
    ax.set_ylabel("features")
    ax.legend()
    return fig


def plot_loss_vs_alpha(
    alphas: Sequence[float], curves: Mapping[str, Sequence[float | None]], *, side: str = "image"
) -> Figure:
    """Loss vs α of v' = v − α·m (Fig. 6): total, alignment, uniformity, and the loss of the
    correctly and of the wrongly matched pairs, one panel each; for a sigmoid-loss sweep
    (`curves` has "positive") total, positive and negative part, one panel each.

    `curves` maps those names to one value per α (None or NaN: no term). Each panel's y
    range is its own curve's (the correct and wrong losses differ in scale: on one shared axis
    their trends would look flat); a red star marks each curve's minimum.
    """
    al = np.asarray(alphas, np.float64)
    if "positive" in curves:
        panels: tuple[tuple[str, str, str], ...] = (
            ("total", "total sigmoid loss", "k"),
            ("positive", "positive part (matched pairs)", "tab:green"),
            ("negative", "negative part (all other pairs)", "tab:red"),
        )
        fig = Figure(figsize=(12, 3.6))
        axes = fig.subplots(1, 3)
    else:
        panels = (
            ("total", "total loss", "k"),
            ("alignment", "alignment term", "tab:green"),
            ("uniformity", "uniformity term", "tab:purple"),
            ("correct", "loss of correctly matched pairs", "tab:green"),
            ("wrong", "loss of wrongly matched pairs", "tab:red"),
        )
        fig = Figure(figsize=(12, 6.4))
        axes = fig.subplots(2, 3)
        axes[1, 2].remove()
    f = {k: _floats(curves[k]) for k, _, _ in panels}
    for ax, (key, title, col) in zip(np.ravel(axes), panels):
        ax.plot(al, f[key], color=col, marker=".")
        ax.set_title(title)
        ax.set_ylabel("loss")
        ax.set_xlabel(f"α  ({side} v' = v − α m)")
        ax.axvline(0.0, color="gray", ls=":", lw=1)
        if np.isfinite(f[key]).any():
            k = int(np.nanargmin(f[key]))
            ax.plot(al[k], f[key][k], "r*", ms=10, label=f"min at α = {al[k]:.2f}")
            ax.legend(fontsize=8)
            _own_ylim(ax, f[key])
        else:
            ax.text(0.5, 0.5, "no such pairs", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    return fig


def plot_conformity_fit(
    panels: Mapping[str, Mapping[str, Any]], *, max_points: int = 5000
) -> Figure:
    """Conformity vs cos to the mean, with the fit line and Pearson (Fig. 9).

    One row per modality (key of `panels`), columns = raw mean (the paper's estimate) and
    normalised mean (exact). `panels[m]` holds "conformity" (N,) and, for "raw" and
    "normalised", a dict with "cos" (N,) and the fit's "a", "b", "pearson". At most
    `max_points` points per panel are drawn (a subsample seeded with 0).
    """
    rows = list(panels.items())
    fig = Figure(figsize=(9, 3.6 * len(rows)))
    axes = fig.subplots(len(rows), 2, squeeze=False)
    rng = np.random.default_rng(0)
    for r, (label, panel) in enumerate(rows):
        conformity = np.asarray(panel["conformity"])
        keep = rng.permutation(len(conformity))[:max_points]
        for c, kind in enumerate(("raw", "normalised")):
            fit = panel[kind]
            cos = np.asarray(fit["cos"])
            ax = axes[r, c]
            ax.scatter(cos[keep], conformity[keep], s=3, alpha=0.5)
            xs = np.linspace(cos.min(), cos.max(), 2)
            a, b = fit["a"], fit["b"]
            ax.plot(xs, a * xs + b, "r-", lw=1.2,
                    label=f"a = {a:.4f}, b = {b:+.4f}\nPearson = {fit['pearson']:.6f}")  # fmt: skip
            which = "raw m (paper's estimate)" if kind == "raw" else "normalised m̂ (exact)"
            ax.set_title(f"{label}: cos to {which}", fontsize=10)
            ax.set_xlabel("cos(v, m)" if kind == "raw" else r"cos(v, $\hat{\mathrm{m}}$)")
            ax.set_ylabel("conformity C(v)")
            ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_conformity_distributions(image: np.ndarray, text: np.ndarray, *, bins: int) -> Figure:
    """Histograms of the image and text conformities on shared bins (Fig. 10)."""
    image, text = np.asarray(image), np.asarray(text)
    fig = Figure(figsize=(5, 3.4))
    ax = fig.subplots()
    lo, hi = min(image.min(), text.min()), max(image.max(), text.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    ax.hist(image, bins=edges, density=True, alpha=0.6, color=_IMG, label="image")
    ax.hist(text, bins=edges, density=True, alpha=0.6, color=_TXT, label="text")
    ax.set_xlabel("conformity C(v)")
    ax.set_ylabel("density")
    ax.set_title("Conformity distributions at α = 0")
    ax.legend(fontsize=8)
    return fig


def plot_kl_vs_alpha(
    alphas: Sequence[float],
    kl_image_text: Sequence[float | None],
    kl_text_image: Sequence[float | None],
    *,
    method: str,
    side: str = "image",
) -> Figure:
    """KL between the image and text conformity distributions vs α (Fig. 11), the `side`
    modality shifted (named in the title and the x label)."""
    al, kit, kti = np.asarray(alphas, np.float64), _floats(kl_image_text), _floats(kl_text_image)
    fig = Figure(figsize=(5, 3.4))
    ax = fig.subplots()
    ax.plot(al, kit, marker=".", label="KL(image ‖ text)")
    ax.plot(al, kti, marker=".", label="KL(text ‖ image)")
    k = int(np.nanargmin(kit))
    ax.plot(al[k], kit[k], "r*", ms=10, label=f"min at α = {al[k]:.2f}")
    ax.axvline(0.0, color="gray", ls=":", lw=1)
    ax.set_xlabel(f"α  ({side} v' = v − α m)")
    ax.set_ylabel(f"KL (nats, {method})")
    ax.set_title(f"Conformity distribution match, {side}s shifted")
    ax.legend(fontsize=8)
    return fig
