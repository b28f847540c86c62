"""Plots of the double-ellipsoid analyses (Levi & Gilboa 2025, Figs. 2-6, 9, 11).

Each function takes the result objects of `jaxclip.analysis.geometry` / `.conformity` (or plain
arrays), writes one PNG into `workdir` through `jaxclip.report.save_figure` and returns its name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from jaxclip.analysis.conformity import ConformityEstimate
from jaxclip.analysis.geometry import (
    ConformityKLSweep,
    Separability,
    SvmResult,
    ThinShell,
    VarianceSpectrum,
)
from jaxclip.losses import ClipLossParts
from jaxclip.report import save_figure

__all__ = [
    "plot_centred_norms",
    "plot_conformity_fit",
    "plot_feature_histograms",
    "plot_kl_vs_alpha",
    "plot_loss_vs_alpha",
    "plot_odd",
    "plot_separability",
    "plot_svm_boundary",
    "plot_variance_spectrum",
]

PathLike = str | os.PathLike
_IMG, _TXT = "tab:blue", "tab:orange"


def plot_feature_histograms(
    image: np.ndarray,
    text: np.ndarray,
    separability: Separability,
    workdir: PathLike,
    *,
    top_k: int = 3,
    name: str = "geometry_feature_histograms",
) -> str:
    """Normalised per-modality histograms of the `top_k` most separating features (Fig. 2)."""
    image, text = np.asarray(image), np.asarray(text)
    feats = [int(k) for k in separability.order[:top_k]]
    fig, axes = plt.subplots(1, len(feats), figsize=(4 * len(feats), 3.2), squeeze=False)
    for ax, f in zip(axes[0], feats):
        lo = min(image[:, f].min(), text[:, f].min())
        hi = max(image[:, f].max(), text[:, f].max())
        edges = np.linspace(lo, hi, 61)
        ax.hist(image[:, f], bins=edges, density=True, alpha=0.6, color=_IMG, label="image")
        ax.hist(text[:, f], bins=edges, density=True, alpha=0.6, color=_TXT, label="text")
        ax.set_title(f"feature {f}  (Sep = {separability.sep[f]:.2f})")
        ax.set_xlabel("raw value")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend()
    fig.suptitle("Most separating features of the raw embeddings")
    fig.tight_layout()
    return save_figure(fig, workdir, name)


def plot_separability(
    separability: Separability, workdir: PathLike, *, name: str = "geometry_separability"
) -> str:
    """Sep(l) of all features sorted in decreasing order (Fig. 3 left)."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    s = separability.sep[separability.order]
    ax.plot(np.arange(1, len(s) + 1), s, marker=".", lw=1)
    ax.axhline(1.0, color="gray", ls=":", lw=1, label="Sep = 1")
    ax.set_xscale("log")
    ax.set_xlabel("feature rank")
    ax.set_ylabel("Sep(l)")
    ax.set_title("Feature separability, sorted")
    ax.legend()
    return save_figure(fig, workdir, name)


def plot_svm_boundary(svm: SvmResult, workdir: PathLike, *, name: str = "geometry_svm") -> str:
    """Scatter of two features for image and text with the linear SVM boundary (Fig. 2 right)."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    p, lab = svm.points, svm.labels
    ax.scatter(*p[lab == 1].T, s=4, alpha=0.5, color=_IMG, label="image")
    ax.scatter(*p[lab == 0].T, s=4, alpha=0.5, color=_TXT, label="text")
    (w0, w1), b = svm.coef, svm.intercept
    x0, x1 = p[:, 0].min(), p[:, 0].max()
    y0, y1 = p[:, 1].min(), p[:, 1].max()
    if abs(w1) > 1e-12:
        xs = np.linspace(x0, x1, 2)
        ax.plot(xs, -(w0 * xs + b) / w1, "b--", lw=1.5, label="SVM boundary")
    else:
        ax.axvline(-b / w0, color="b", ls="--", lw=1.5, label="SVM boundary")
    pad_y = 0.05 * (y1 - y0)
    ax.set_ylim(y0 - pad_y, y1 + pad_y)
    ax.set_xlabel(f"feature {svm.features[0]}")
    ax.set_ylabel(f"feature {svm.features[1]}")
    ax.set_title(f"Linear SVM on two features: accuracy {100 * svm.accuracy:.2f} %")
    ax.legend(markerscale=3)
    return save_figure(fig, workdir, name)


def plot_centred_norms(
    image: ThinShell, text: ThinShell, workdir: PathLike, *, name: str = "geometry_thin_shell"
) -> str:
    """Histograms of ‖v − m‖ per modality with sqrt(tr C) marked (Fig. 4 bottom)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, sh, lbl, col in ((axes[0], image, "image", _IMG), (axes[1], text, "text", _TXT)):
        ax.hist(sh.norms, bins=60, density=True, color=col, alpha=0.7)
        ax.axvline(sh.sqrt_trace, color="k", ls="--", label=f"sqrt(tr C) = {sh.sqrt_trace:.4f}")
        ax.axvline(sh.mean_norm, color="r", ls=":", label=f"mean ‖v−m‖ = {sh.mean_norm:.4f}")
        ax.set_xlim(0, None)
        ax.set_xlabel("‖v − m‖")
        ax.set_title(f"{lbl}: thin shell (rel. err. {100 * sh.rel_error:.2f} %)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("density")
    return save_figure(fig, workdir, name)


def plot_variance_spectrum(
    image: VarianceSpectrum,
    text: VarianceSpectrum,
    workdir: PathLike,
    *,
    name: str = "geometry_variance_spectrum",
) -> str:
    """Sorted per-feature variances and eigenvalues of C, log-y (Fig. 5 left: an ellipsoid)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for sp, lbl, col in ((image, "image", _IMG), (text, "text", _TXT)):
        r = np.arange(1, len(sp.variances) + 1)
        axes[0].plot(r, sp.variances, color=col, label=lbl)
        axes[1].plot(r, np.maximum(sp.eigenvalues, 1e-30), color=col,
                     label=f"{lbl} (PR = {sp.participation_ratio:.1f})")  # fmt: skip
    axes[0].set_title("per-feature variance C_ll, sorted")
    axes[1].set_title("eigenvalues of C")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("rank")
        ax.legend(fontsize=8)
    return save_figure(fig, workdir, name)


def plot_odd(
    image_odd: np.ndarray, text_odd: np.ndarray, workdir: PathLike, *, name: str = "geometry_odd"
) -> str:
    """Histograms of off-diagonal dominance ODD(l) (Eq. 6, Fig. 5 right); 1 = dominance limit."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    a, b = np.asarray(image_odd), np.asarray(text_odd)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    edges = np.linspace(0, max(a.max(), b.max(), 1.0) * 1.02, 50)
    ax.hist(a, bins=edges, alpha=0.6, color=_IMG, label="image")
    ax.hist(b, bins=edges, alpha=0.6, color=_TXT, label="text")
    ax.axvline(1.0, color="k", ls="--", lw=1, label="ODD = 1")
    ax.set_xlabel("ODD(l) = Σ_{k≠l}|C_lk| / C_ll")
    ax.set_ylabel("features")
    ax.legend()
    return save_figure(fig, workdir, name)


def plot_loss_vs_alpha(
    alphas: np.ndarray,
    parts: ClipLossParts,
    workdir: PathLike,
    *,
    side: str = "image",
    name: str = "geometry_loss_vs_alpha",
) -> str:
    """Loss vs α of v' = v − α·m (Fig. 6): total, alignment, uniformity; total, correct, wrong."""
    al = np.asarray(alphas)
    f = {k: np.asarray(getattr(parts, k)) for k in parts._fields}
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4))
    for ax, key, col in (
        (axes[0, 0], "total", "k"),
        (axes[0, 1], "alignment", "tab:green"),
        (axes[1, 0], "uniformity", "tab:purple"),
    ):
        ax.plot(al, f[key], color=col, marker=".")
        k = int(np.nanargmin(f[key]))
        ax.plot(al[k], f[key][k], "r*", ms=10, label=f"min at α = {al[k]:.2f}")
        ax.set_title(key)
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.plot(al, f["total"], "k", marker=".", label="all")
    ax.plot(al, f["correct"], "tab:green", marker=".", label="correctly matched")
    ax.plot(al, f["wrong"], "tab:red", marker=".", label="wrongly matched")
    ax.set_title("loss by match")
    ax.legend(fontsize=8)
    for ax in axes.ravel():
        ax.axvline(0.0, color="gray", ls=":", lw=1)
        ax.set_xlabel(f"α  ({side} v' = v − α m)")
    fig.tight_layout()
    return save_figure(fig, workdir, name)


def plot_conformity_fit(
    estimates: Mapping[str, ConformityEstimate],
    workdir: PathLike,
    *,
    max_points: int = 5000,
    name: str = "geometry_conformity_fit",
) -> str:
    """Conformity vs cos to the mean, with the fit line and Pearson (Fig. 9): one row per
    modality (dict key), columns = raw mean (the paper's estimate) and normalised mean (exact)."""
    rows = list(estimates.items())
    fig, axes = plt.subplots(len(rows), 2, figsize=(9, 3.6 * len(rows)), squeeze=False)
    rng = np.random.default_rng(0)
    for r, (label, est) in enumerate(rows):
        keep = rng.permutation(len(est.conformity))[:max_points]
        for c, fit in enumerate((est.raw, est.normalised)):
            ax = axes[r, c]
            x = fit.cos_to_mean[keep]
            ax.scatter(x, est.conformity[keep], s=3, alpha=0.5)
            xs = np.linspace(fit.cos_to_mean.min(), fit.cos_to_mean.max(), 2)
            ax.plot(xs, fit.a * xs + fit.b, "r-", lw=1.2,
                    label=f"a = {fit.a:.4f}, b = {fit.b:+.4f}\nPearson = {fit.pearson:.6f}")  # fmt: skip
            which = "raw m (paper's estimate)" if fit.mean_kind == "raw" else "normalised m̂ (exact)"
            ax.set_title(f"{label}: cos to {which}", fontsize=10)
            ax.set_xlabel("cos(v, m)")
            ax.set_ylabel("conformity C(v)")
            ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, workdir, name)


def plot_kl_vs_alpha(
    kl: ConformityKLSweep, workdir: PathLike, *, name: str = "geometry_kl_vs_alpha"
) -> str:
    """KL between the image and text conformity distributions vs α (Fig. 11)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(kl.alphas, kl.kl_image_text, marker=".", label="KL(image ‖ text)")
    ax.plot(kl.alphas, kl.kl_text_image, marker=".", label="KL(text ‖ image)")
    k = int(np.nanargmin(kl.kl_image_text))
    ax.plot(kl.alphas[k], kl.kl_image_text[k], "r*", ms=10,
            label=f"min at α = {kl.alphas[k]:.2f}")  # fmt: skip
    ax.axvline(0.0, color="gray", ls=":", lw=1)
    ax.set_xlabel("α (shift v' = v − α m)")
    ax.set_ylabel(f"KL (nats, {kl.method})")
    ax.set_title("Conformity distribution match")
    ax.legend(fontsize=8)
    return save_figure(fig, workdir, name)
