"""Tests for jaxclip/report/plots_probes.py: each function returns a Figure whose axes, lines,
bars and legend show what it was given."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from jaxclip.report import plots_probes as P
from jaxclip.report import save_figure


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_probe_methods_bars_and_reference_lines(tmp_path):
    methods = {
        "a": {"method": "probe A", "test_accuracy": 0.5},
        "b": {"method": "probe B", "test_accuracy": 0.75},
    }
    fig = P.plot_probe_methods(methods, {"top1": 0.6}, {"thesis": 78.0}, 0.25, 4)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [round(p.get_width(), 6) for p in ax.patches] == [50.0, 75.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["probe A", "probe B"]
    assert _legend(ax) == ["zero-shot", "chance 1/C", "thesis"]
    assert ax.get_xlabel() == "test accuracy (%)"
    assert ax.get_title() == "Probes on frozen image embeddings (4 classes)"
    assert save_figure(fig, tmp_path, "m.png") == "m.png" and (tmp_path / "m.png").is_file()


def test_few_shot_curve_with_zero_shot_line():
    curve = [
        {"shots": 1, "mean_accuracy": 0.3, "std_accuracy": 0.1},
        {"shots": 2, "mean_accuracy": 0.5, "std_accuracy": 0.05},
        {"shots": "all", "mean_accuracy": 0.9, "std_accuracy": 0.0},
    ]
    fig = P.plot_few_shot(curve, [1, 2, 40], 0.6, 0.25)
    ax = fig.axes[0]
    labels = _legend(ax)
    assert labels == ["zero-shot (60.0 %, no labels)", "chance", "JAX logistic probe"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "all\n(≈40)"]
    assert ax.get_xscale() == "log" and ax.get_title() == "Few-shot probe vs zero-shot"
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), [30, 50, 90])
    assert P.plot_few_shot(curve, [1, 2, 40], None, 0.25).axes[0].get_legend() is not None


def test_attribute_bars_with_chance():
    rows = [{"attribute": "color", "values": 3, "test_accuracy": 0.9, "chance": 1 / 3}]
    fig = P.plot_probe_attributes(rows, 0.8, 0.25, 4)
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [80.0, 90.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "class\n(4 values)",
        "color\n(3 values)",
    ]
    assert sorted(_legend(ax)) == ["attribute probes", "chance 1/K", "class probe"]
    assert len(ax.collections) == 2  # one dashed chance segment per bar


def test_class_agnostic_bars_and_thesis_line():
    items = [("svc", 0.3, "#3b6fb6"), ("zero-shot", 0.9, "#9a9a9a")]
    fig = P.plot_class_agnostic_probes(items, 0.01, 32, thesis_svc=29.3)
    ax = fig.axes[0]
    assert [p.get_facecolor()[:3] for p in ax.patches][1] == (154 / 255, 154 / 255, 154 / 255)
    assert _legend(ax) == ["chance 1/C", "thesis: SVC on cosines"]
    assert "K = 32" in ax.get_title()
    assert _legend(P.plot_class_agnostic_probes(items, 0.01, 32).axes[0]) == ["chance 1/C"]


def test_temperature_and_entropy_figures():
    taus = [1.0, 0.1, 0.01]
    pt = {"tau": 1.0, "acc_scaled": 0.4, "acc_softmax": 0.3, "mean_entropy": 3.46}
    fig = P.plot_temperature_accuracy(taus, [0.4, 0.5, 0.6], [0.3, 0.6, 0.2],
                                      acc_scaled_via_l2=[0.4, 0.5, 0.6], points={"raw": pt})  # fmt: skip
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and ax.get_xlabel() == "temperature τ"
    assert "raw cosines (τ = 1)" in _legend(ax)
    fig = P.plot_temperature_entropy(taus, [3.46, 3.0, 1.0], np.log(32),
                                     mean_confidence=[0.03, 0.2, 0.9], points={"raw": pt})  # fmt: skip
    assert len(fig.axes) == 2  # confidence on a twin axis
    assert fig.axes[1].get_ylabel() == "mean top-1 probability (%)"
    edges = np.linspace(0, np.log(32), 5)
    hist = {"raw": (np.array([0, 0, 1, 9]), edges), "tau=0.07": (np.array([2, 3, 4, 1]), edges)}
    fig = P.plot_entropy_histograms(hist, np.log(32), gap_histograms=hist, title="H")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "H"
    assert _legend(fig.axes[0])[:2] == ["raw", "tau=0.07"]


def test_prompt_count_and_regularisation_path():
    rows = [{"num_prompts": 16, "accuracy": 0.5}, {"num_prompts": 32, "accuracy": 0.6}]
    fig = P.plot_prompt_count(rows, series={"ceiling": rows}, title="K")
    ax = fig.axes[0]
    assert _legend(ax) == ["test accuracy", "ceiling"] and ax.get_title() == "K"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [50, 60])
    fig = P.plot_regularization_path([0.1, 1.0], {"train": [0.9, 0.8], "val": [0.7, 0.75]},
                                     chosen=1.0, reference={"sk": ([0.1, 1.0], [0.7, 0.74])})  # fmt: skip
    ax = fig.axes[0]
    assert _legend(ax) == ["train", "val", "sk", "chosen L2 = 1"]
    assert ax.get_xlabel() == "L2 strength λ (= 1 / C)"
