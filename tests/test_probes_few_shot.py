"""Tests for jaxclip/probes/few_shot.py: the shot grid, the tiling factor and the crossover with
zero-shot (the curve itself is checked against scikit-learn in tests/test_study_probe.py)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxclip.probes import few_shot, linear


def test_tile_factor_and_crossover():
    assert few_shot.tile_factor([1, 2, 4, 8, 16]) == 16
    assert few_shot.tile_factor([3, 7, 16]) is None  # lcm 336 > 4 * 16: separate shapes
    curve = [
        {"shots": 1, "mean_accuracy": 0.2},
        {"shots": 2, "mean_accuracy": 0.4},
        {"shots": 4, "mean_accuracy": 0.6},
        {"shots": "all", "per_class": 100.0, "mean_accuracy": 0.9},
    ]
    out = few_shot.crossover(curve, 0.5)
    assert out["first_k"] == 4 and out["worth"] == pytest.approx(2**1.5)
    assert few_shot.crossover(curve, 0.95)["first_k"] is None
    assert few_shot.crossover(curve, 0.1)["first_k"] == 1
    out = few_shot.crossover(curve, 0.75)
    assert out["first_k"] == "all"
    assert out["worth"] == pytest.approx(2 ** (2 + 0.5 * (np.log2(100) - 2)))
    assert few_shot.crossover(curve, None) is None


def test_usable_shots_skips_counts_above_the_rarest_class():
    y = np.array([0] * 5 + [1] * 3 + [2] * 8)
    run, skipped = few_shot.usable_shots([4, 1, 2, 2, 16], y, np.array([0, 1, 2]))
    assert run == [1, 2] and skipped == [4, 16]
    # k per class equal to the whole fit part is no few-shot point
    run, skipped = few_shot.usable_shots([1, 2], np.array([0, 0, 1, 1]), np.array([0, 1]))
    assert run == [1] and skipped == [2]


def test_shot_curve_rows_and_the_whole_fit_part_point():
    rng = np.random.default_rng(0)
    centres = 3.0 * np.eye(4)[:3]
    y_fit = np.arange(60) % 3
    x_fit = (centres[y_fit] + 0.3 * rng.normal(size=(60, 4))).astype(np.float32)
    y_val = np.arange(30) % 3
    x_val = (centres[y_val] + 0.3 * rng.normal(size=(30, 4))).astype(np.float32)
    classes = np.arange(3)
    grid = (0.1, 1.0)
    full = linear.logistic_path(x_fit, y_fit, grid, {"val": (x_val, y_val), "test": (x_val, y_val)},
                                classes=classes, max_iter=50)  # fmt: skip
    rows, skipped = few_shot.shot_curve(
        x_fit, y_fit, x_val, y_val, x_val, y_val, classes, full, 1,
        shots=(1, 2, 50), repeats=2, l2_grid=grid, max_iter=50, seed=0,
    )  # fmt: skip
    assert skipped == [50]
    assert [r["shots"] for r in rows] == [1, 2, "all"]
    assert [len(r["accuracies"]) for r in rows] == [2, 2, 1]
    assert rows[0]["num_labelled"] == 3 and rows[-1]["num_labelled"] == 60
    assert rows[-1]["mean_accuracy"] == float(full.accuracy["test"][1])
    assert rows[-1]["per_class"] == 20.0
    assert rows[1]["mean_accuracy"] >= 0.9  # well separated: 2 examples per class suffice
    for r in rows:
        assert r["mean_accuracy"] == pytest.approx(np.mean(r["accuracies"]))
        assert set(r["l2"]) <= set(grid)
