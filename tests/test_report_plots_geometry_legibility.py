"""Legibility of the geometry figures (jaxclip/report/plots_geometry.py), checked by what
matplotlib draws: legends off the data, one modality not hidden under the other, y labels,
each panel's y range from its own data, valid mathtext, distinct titles."""

from __future__ import annotations

import numpy as np
from matplotlib import colors as mcolors

from jaxclip.report import plots_geometry as pg
from tests.plot_checks import draw, legend_labels, legend_overlaps, text_problems

RNG = np.random.default_rng(0)


def _svm_points(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping blobs filling the axes (so a legend inside would cover points)."""
    img = RNG.normal([0.0, 0.0], 1.0, size=(n, 2))
    txt = RNG.normal([0.8, 0.8], 1.0, size=(n, 2))
    return np.concatenate([img, txt]), np.r_[np.ones(n, int), np.zeros(n, int)]


def test_svm_legend_off_the_points_and_modalities_interleaved():
    pts, lab = _svm_points()
    fig = pg.plot_svm_boundary(pts, lab, features=[3, 7], coef=[1.0, 1.0], intercept=-0.8,
                               accuracy=0.71)  # fmt: skip
    (ax,) = fig.axes
    assert legend_overlaps(fig) == []
    assert legend_labels(ax) == ["image", "text", "SVM boundary"]
    # the legend's marker colours are the scatter's two colours, one entry each
    handles = ax.get_legend().legend_handles
    want = {mcolors.to_hex(pg._IMG), mcolors.to_hex(pg._TXT)}
    assert {mcolors.to_hex(h.get_color()) for h in handles[:2]} == want
    # one scatter drawn in mixed order: the last fifth drawn (on top) holds both modalities
    (coll,) = ax.collections
    faces = [mcolors.to_hex(c) for c in coll.get_facecolors()]
    assert len(faces) == len(lab)
    top = faces[-len(faces) // 5 :]
    assert set(top) == want
    n_img = sum(f == mcolors.to_hex(pg._IMG) for f in faces)
    assert n_img == int(lab.sum())  # every point drawn once, in its modality's colour
    # the drawn offsets are the input points (as a set)
    got = np.asarray(coll.get_offsets())
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(pts, axis=0))


def test_variance_spectrum_labels_and_own_ranges():
    d = 32
    var = np.sort(RNG.random((2, d)) + 0.01, axis=1)[:, ::-1]
    eig = var.copy()
    eig[1, 8:] = 1e-19  # a rank-8 text covariance: round-off eigenvalues
    fig = pg.plot_variance_spectrum(var, eig, [10.0, 4.0])
    ax_var, ax_eig = fig.axes
    assert ax_var.get_ylabel() and ax_eig.get_ylabel()
    assert ax_var.get_yscale() == ax_eig.get_yscale() == "log"
    assert text_problems(fig) == []
    draw(fig)
    # each panel's y range covers its kept data and stays within a decade of it
    lo, hi = ax_eig.get_ylim()
    kept = eig[eig > 1e-12 * eig.max(axis=1, keepdims=True)]
    assert lo <= kept.min() and hi >= kept.max()
    assert lo > kept.min() / 10 and hi < kept.max() * 10
    lo, hi = ax_var.get_ylim()
    assert lo <= var.min() and hi >= var.max() and lo > var.min() / 10
    assert legend_labels(ax_eig)[1] == "text (PR = 4.0, 24 below 1e-12·max left out)"
    assert len(ax_eig.lines[1].get_xdata()) == 8


def test_loss_panels_have_labels_and_their_own_y_range():
    alphas = np.linspace(-1, 1, 9)
    curves = {
        "total": 5.0 + alphas**2,
        "alignment": -2.0 + 0.1 * alphas,
        "uniformity": 7.0 + alphas**2,
        "correct": 0.02 + 0.01 * alphas**2,  # small and curved
        "wrong": 9.0 - 0.5 * alphas,  # large: on a shared axis the correct curve looks flat
    }
    curves = {k: [float(v) for v in c] for k, c in curves.items()}
    fig = pg.plot_loss_vs_alpha(alphas, curves, side="image")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 5 and len(set(titles)) == 5
    draw(fig)
    for ax, key in zip(fig.axes, ("total", "alignment", "uniformity", "correct", "wrong")):
        assert ax.get_ylabel() == "loss"
        y = np.asarray(curves[key])
        lo, hi = ax.get_ylim()
        assert lo <= y.min() and hi >= y.max(), key
        assert hi - lo <= 1.25 * (y.max() - y.min()), key  # its own range, not a shared one
    assert "correct" in titles[3] and "wrong" in titles[4]
    assert text_problems(fig) == []


def test_odd_label_is_valid_mathtext():
    fig = pg.plot_odd(RNG.random(50) * 2, RNG.random(50))
    (ax,) = fig.axes
    label = ax.get_xlabel()
    assert "$" in label and r"\sum" in label  # rendered by mathtext, not shown raw
    assert text_problems(fig) == []


def test_conformity_fit_x_labels_name_the_mean_used():
    c = RNG.random(60)
    fit = {"cos": 2 * c, "a": 0.5, "b": 0.0, "pearson": 1.0}
    panels = {m: {"conformity": c, "raw": fit, "normalised": fit} for m in ("image", "text")}
    fig = pg.plot_conformity_fit(panels, max_points=30)
    xlabels = [ax.get_xlabel() for ax in fig.axes]
    assert xlabels == ["cos(v, m)", r"cos(v, $\hat{\mathrm{m}}$)"] * 2
    assert text_problems(fig) == []


def test_kl_titles_differ_by_shifted_side():
    a = [-1.0, 0.0, 1.0]
    figs = {
        side: pg.plot_kl_vs_alpha(a, [0.5, 0.1, 0.3], [0.4, 0.2, 0.3], method="kde", side=side)
        for side in ("image", "text")
    }
    titles = {side: f.axes[0].get_title() for side, f in figs.items()}
    assert titles["image"] != titles["text"]
    assert "images shifted" in titles["image"] and "texts shifted" in titles["text"]
    assert figs["text"].axes[0].get_xlabel().startswith("α  (text")


def test_every_geometry_figure_text_is_plain_or_valid_mathtext():
    var = np.sort(RNG.random((2, 8)), axis=1)[:, ::-1]
    stats = {m: {"sqrt_trace": 2.0, "mean_norm": 1.9, "rel_error": 0.05} for m in ("image", "text")}
    figs = [
        pg.plot_feature_histograms(RNG.random((20, 2)), RNG.random((20, 2)), [1, 2], [1.5, 1.2]),
        pg.plot_separability(np.array([3.0, 1.5, 0.2])),
        pg.plot_centred_norms({"image": RNG.random(30), "text": RNG.random(20)}, stats),
        pg.plot_variance_spectrum(var, var, [2.5, 1.5]),
        pg.plot_conformity_distributions(RNG.random(30), RNG.random(30), bins=10),
    ]
    for fig in figs:
        assert text_problems(fig) == []
