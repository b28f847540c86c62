"""Legibility of the probe, entropy and prompt-count figures (jaxclip/report/plots_probes.py)
and of the zero-shot attribute bars (plots_classification.py), checked by what matplotlib
draws: one legend entry per colour, legends off the data, limits around the data, ticks at the
K values, the rank cap marked."""

from __future__ import annotations

import numpy as np
from matplotlib import colors as mcolors

from jaxclip.report import plots_classification as pc
from jaxclip.report import plots_probes as P
from tests.plot_checks import draw, legend_labels, legend_overlaps, text_problems


def test_probe_attributes_legend_names_every_bar_colour():
    rows = [
        {"attribute": "color", "values": 3, "test_accuracy": 0.99, "chance": 1 / 3},
        {"attribute": "size", "values": 2, "test_accuracy": 0.97, "chance": 1 / 2},
    ]
    fig = P.plot_probe_attributes(rows, 0.98, 0.125, 8)
    (ax,) = fig.axes
    bar_colours = {mcolors.to_hex(p.get_facecolor()) for p in ax.patches}
    leg = ax.get_legend()
    legend_colours = {
        mcolors.to_hex(h.get_facecolor()) for h in leg.legend_handles if hasattr(h, "get_width")
    }
    assert len(bar_colours) == 2 and legend_colours == bar_colours
    assert sorted(legend_labels(ax)) == ["attribute probes", "chance 1/K", "class probe"]
    assert legend_overlaps(fig) == []


def test_zero_shot_attribute_legend_hides_no_bar_label():
    attrs = {
        "color": {"values": ["r", "g", "b"], "chance": 1 / 3, "generic": {"top1": 0.5},
                  "class_marginal": {"top1": 0.6}},
        "size": {"values": ["s", "l"], "chance": 0.5, "generic": {"top1": 0.98},
                 "class_marginal": {"top1": 0.99}},
    }  # fmt: skip
    fig = pc.plot_attribute_accuracy(attrs)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["50", "98", "60", "99"]
    assert legend_overlaps(fig) == []


def _gap_like_histograms():
    """Counts in a few bins of log10(ln K − H), edges reaching far to the left (as the study
    stores them), one spike much taller than the rest."""
    edges = np.linspace(-8.0, 0.5, 35)
    centres = (edges[:-1] + edges[1:]) / 2
    a = np.where((centres > -2.5) & (centres < 0.5), 3, 0)
    a[np.argmin(np.abs(centres + 1.0))] = 1900
    b = np.where((centres > -1.5) & (centres < 0.4), 40, 0)
    return {"raw cosines": (a, edges), "τ = 0.07": (b, edges)}, centres


def test_entropy_histograms_limits_ticks_and_legend():
    gap, centres = _gap_like_histograms()
    ln_k = np.log(32)
    h_edges = np.linspace(0.0, ln_k, 21)
    h = {"raw cosines": (np.r_[np.zeros(19, int), 2000], h_edges),
         "τ = 0.07": (np.r_[np.zeros(10, int), np.full(10, 200)], h_edges)}  # fmt: skip
    fig = P.plot_entropy_histograms(h, ln_k, gap_histograms=gap, title="H")
    draw(fig)
    ax_h, ax_gap = fig.axes
    for ax, hists in ((ax_h, h), (ax_gap, gap)):
        assert ax.get_yscale() == "log"
        lo, hi = ax.get_ylim()
        top = max(int(c.max()) for c, _ in hists.values())
        assert hi >= top and hi <= 3 * top  # the tallest spike inside, not far below the top
        assert lo > 0 and lo <= 1  # single images visible
        ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
        assert ticks and min(ticks) > 0  # no "0" tick on the log axis
        assert ax.get_ylabel()
    # x range of the gap panel: the occupied bins (-2.5 ... 0.5), not the empty edges to -8
    lo, hi = ax_gap.get_xlim()
    occupied = centres[np.any([c > 0 for c, _ in gap.values()], axis=0)]
    assert lo <= occupied.min() and hi >= occupied.max()
    assert lo > -3.5 and hi < 1.0
    # the entropy panel keeps ln K in view
    lo, hi = ax_h.get_xlim()
    assert lo <= h_edges[10] and hi >= ln_k
    assert legend_labels(ax_h)[:2] == ["raw cosines", "τ = 0.07"]
    assert legend_overlaps(fig) == []


def test_tau_entropy_legend_clear_of_the_curves():
    taus = np.geomspace(1e-3, 1.0, 30)
    ln_k = np.log(32)
    # as in the offline default: entropy rises and confidence falls, crossing near τ = 0.1,
    # right of the middle of the axes
    ent = ln_k / (1 + (0.06 / taus) ** 1.3)
    conf = 1.0 - 0.95 * ent / ln_k
    points = {
        "raw": {"tau": 1.0, "mean_entropy": float(ent[-1])},
        "model": {"tau": 0.04, "mean_entropy": float(np.interp(0.04, taus, ent))},
    }
    fig = P.plot_temperature_entropy(taus, ent, ln_k, mean_confidence=conf, points=points)
    labels = legend_labels(fig.axes[0])
    assert labels[0] == "mean entropy" and labels[-1] == "top-1 confidence"
    assert len(labels) == len(set(labels)) == 5  # entropy, ln K, 2 points, confidence
    assert legend_overlaps(fig) == []


def test_prompt_count_labels_ticks_and_rank_cap():
    ks = [16, 32, 100, 200, 400]
    rows = [{"num_prompts": k, "accuracy": 0.3 + 0.001 * k} for k in ks]
    soft = [{"num_prompts": k, "accuracy": 0.2 + 0.001 * k} for k in ks]
    fig = P.plot_prompt_count(rows, label="standardised cosines, test",
                              series={"softmax, test": soft}, rank_cap=64, title="K")  # fmt: skip
    (ax,) = fig.axes
    draw(fig)
    assert list(ax.get_xticks()) == ks
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in ks]
    labels = legend_labels(ax)
    assert labels[:2] == ["standardised cosines, test", "softmax, test"]
    assert len(labels) == len(ax.lines) == 3  # one entry per drawn line, none unlabelled
    cap = ax.lines[2]
    assert list(cap.get_xdata()) == [64, 64] and "rank cap" in labels[2]
    lo, hi = ax.get_xlim()
    assert lo <= 16 and hi >= 400 and lo > 8 and hi < 800
    assert legend_overlaps(fig) == []
    assert text_problems(fig) == []
