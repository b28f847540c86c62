"""Tests for jaxclip.report.plots_geometry: each plot's Figure shows what it is given (axes,
lines, bars, legend entries, titles), from plain arrays as a reloaded geometry result holds."""

import numpy as np
from matplotlib.figure import Figure

from jaxclip.report import plots_geometry as pg
from jaxclip.report import save_figure

RNG = np.random.default_rng(0)


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_feature_histograms_and_separability():
    fig = pg.plot_feature_histograms(
        RNG.normal(size=(50, 2)), RNG.normal(size=(40, 2)) + 3, [17, 4], [2.5, 1.25]
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == [
        "feature 17  (Sep = 2.50)",
        "feature 4  (Sep = 1.25)",
    ]
    assert len(fig.axes[0].patches) == 120  # 60 bins per modality
    assert _legend(fig.axes[0]) == ["image", "text"]
    fig = pg.plot_separability(np.array([3.0, 1.5, 0.2]))
    (ax,) = fig.axes
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [3.0, 1.5, 0.2])
    assert ax.get_ylabel() == "Sep(l)" and _legend(ax) == ["Sep = 1"]


def test_svm_boundary(tmp_path):
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [-1.0, -1.0], [-2.0, -1.5]])
    fig = pg.plot_svm_boundary(
        pts, np.array([1, 1, 0, 0]), features=[5, 20], coef=[1.0, 1.0], intercept=0.0,
        accuracy=1.0,
    )  # fmt: skip
    (ax,) = fig.axes
    assert ax.get_title() == "Linear SVM on two features: accuracy 100.00 %"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("feature 5", "feature 20")
    assert _legend(ax) == ["image", "text", "SVM boundary"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2.0, -2.0])  # y = -x at x = -2, 2
    assert [len(c.get_offsets()) for c in ax.collections] == [4]  # one scatter, mixed order
    name = save_figure(fig, tmp_path, "svm")
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_centred_norms_spectrum_and_odd():
    stats = {m: {"sqrt_trace": 2.0, "mean_norm": 1.9, "rel_error": 0.05} for m in ("image", "text")}
    fig = pg.plot_centred_norms({"image": RNG.random(30), "text": RNG.random(20)}, stats)
    assert [ax.get_title() for ax in fig.axes] == [
        "image: thin shell (rel. err. 5.00 %)",
        "text: thin shell (rel. err. 5.00 %)",
    ]
    assert _legend(fig.axes[0]) == ["sqrt(tr C) = 2.0000", "mean ‖v−m‖ = 1.9000"]
    var = np.array([[3.0, 2.0, 1.0], [2.0, 1.0, 0.5]])
    fig = pg.plot_variance_spectrum(var, var, [2.5, 1.5])
    assert _legend(fig.axes[1]) == ["image (PR = 2.5)", "text (PR = 1.5)"]
    np.testing.assert_array_equal(fig.axes[0].lines[1].get_ydata(), [2.0, 1.0, 0.5])
    fig = pg.plot_odd(np.array([0.5, 2.0, np.inf]), np.array([0.1, 0.3, 0.2]))
    (ax,) = fig.axes
    assert _legend(ax) == ["image", "text", "ODD = 1"]
    assert sum(p.get_height() for p in ax.patches) == 5  # the infinite value is left out


def test_loss_and_kl_vs_alpha():
    alphas = [-1.0, 0.0, 1.0]
    curves = {
        "total": [3.0, 1.0, 2.0],
        "alignment": [-1.0, -2.0, -3.0],
        "uniformity": [4.0, 3.0, 5.0],
        "correct": [1.0, 0.5, None],  # None: no term (NaN before JSON)
        "wrong": [5.0, 4.0, 3.0],
    }
    fig = pg.plot_loss_vs_alpha(alphas, curves, side="text")
    assert [ax.get_title() for ax in fig.axes] == [
        "total loss", "alignment term", "uniformity term", "loss of correctly matched pairs",
        "loss of wrongly matched pairs",
    ]  # fmt: skip
    assert _legend(fig.axes[0]) == ["min at α = 0.00"]
    assert _legend(fig.axes[1]) == ["min at α = 1.00"]
    assert _legend(fig.axes[3]) == ["min at α = 0.00"]
    assert np.isnan(fig.axes[3].lines[0].get_ydata()[2])
    assert fig.axes[0].get_xlabel() == "α  (text v' = v − α m)"
    fig = pg.plot_kl_vs_alpha(alphas, [0.5, 0.1, None], [0.4, 0.2, 0.3], method="histogram")
    (ax,) = fig.axes
    assert _legend(ax) == ["KL(image ‖ text)", "KL(text ‖ image)", "min at α = 0.00"]
    assert ax.get_ylabel() == "KL (nats, histogram)"


def test_conformity_fit_and_distributions():
    c = RNG.random(40)
    fit = {"cos": 2 * c, "a": 0.5, "b": 0.0, "pearson": 1.0}
    panels = {"image": {"conformity": c, "raw": fit, "normalised": fit}}
    fig = pg.plot_conformity_fit(panels, max_points=10)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "image: cos to raw m (paper's estimate)"
    assert fig.axes[1].get_title() == "image: cos to normalised m̂ (exact)"
    assert len(fig.axes[0].collections[0].get_offsets()) == 10
    assert _legend(fig.axes[0]) == ["a = 0.5000, b = +0.0000\nPearson = 1.000000"]
    fig = pg.plot_conformity_distributions(c, c + 0.5, bins=7)
    (ax,) = fig.axes
    assert len(ax.patches) == 14 and _legend(ax) == ["image", "text"]
    assert ax.get_title() == "Conformity distributions at α = 0"
