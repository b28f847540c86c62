"""The CLIP paper's few-shot view (its Fig. 6-7): probe accuracy vs labelled examples per class,
and how many labelled examples per class zero-shot is worth.

Pure functions of arrays: `shot_curve` trains the JAX logistic probes, `crossover` reads the
curve against a zero-shot accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxclip.probes import linear


def tile_factor(shots: Sequence[int]) -> int | None:
    """The common multiple M of the shot counts that every k-shot set is tiled up to (None
    when it would be more than 4 × the largest count: then each k gets its own shape)."""
    m = math.lcm(*shots) if shots else 1
    return m if m <= 4 * max(shots, default=1) else None


def usable_shots(
    shots: Sequence[int], y_fit: np.ndarray, classes: np.ndarray
) -> tuple[list[int], list[int]]:
    """(shot counts to run, shot counts skipped), ascending: a k is skipped when the rarest
    class has fewer than k examples in `y_fit` or k per class would be the whole fit part."""
    rarest = min(int(np.sum(y_fit == k)) for k in classes)
    wanted = sorted({int(s) for s in shots})
    run = [k for k in wanted if k <= rarest and k * len(classes) < len(y_fit)]
    return run, [k for k in wanted if k not in run]


def shot_curve(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    classes: np.ndarray,
    full: linear.LogisticPath,
    best: int,
    *,
    shots: Sequence[int],
    repeats: int,
    l2_grid: Sequence[float],
    max_iter: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[int]]:
    """JAX logistic probes on k examples per class (drawn from the fit part, `repeats` draws
    each; L2 chosen on the shared validation split, no refit), then the whole fit part (the
    point at index `best` of `full`, the path fitted on it). Returns (rows, skipped shots).

    Every k-shot set is tiled M / k times (M = a common multiple of the shot counts) and solved
    at strengths l2 · M / k: the objective is then exactly (M / k) × the k-shot one, with the
    same standardiser, minimiser and stopping test, so the solutions are those of the k-shot
    sets while every solve has one shape (one compilation instead of one per k).
    """
    by_class = [np.flatnonzero(y_fit == k) for k in classes]
    grid = np.asarray([float(v) for v in l2_grid])
    run, skipped = usable_shots(shots, y_fit, classes)
    tile = tile_factor(run)
    rows: list[dict[str, Any]] = []
    for k in run:
        reps = tile // k if tile else 1
        accs, l2s = [], []
        for r in range(int(repeats)):
            rng = np.random.default_rng([seed, k, r])
            idx = np.sort(np.concatenate([rng.choice(ix, k, replace=False) for ix in by_class]))
            kpath = linear.logistic_path(
                np.tile(x_fit[idx], (reps, 1)),
                np.tile(y_fit[idx], reps),
                grid * reps,
                {"val": (x_val, y_val), "test": (x_test, y_test)},
                classes=classes,
                max_iter=int(max_iter),
            )
            b = linear.select_l2(grid, kpath.accuracy["val"])
            accs.append(float(kpath.accuracy["test"][b]))
            l2s.append(float(grid[b]))
        rows.append(
            {
                "shots": k,
                "num_labelled": k * len(classes),
                "mean_accuracy": float(np.mean(accs)),
                "std_accuracy": float(np.std(accs)),
                "accuracies": accs,
                "l2": l2s,
            }
        )
    rows.append(
        {
            "shots": "all",
            "per_class": float(len(y_fit) / len(classes)),
            "num_labelled": len(y_fit),
            "mean_accuracy": float(full.accuracy["test"][best]),
            "std_accuracy": 0.0,
            "accuracies": [float(full.accuracy["test"][best])],
            "l2": [float(full.l2_grid[best])],
        }
    )
    return rows, skipped


def shots_x(row: Mapping[str, Any]) -> float:
    """A curve row's x: its shot count, or the mean examples per class of the "all" row."""
    return float(row["per_class"] if row["shots"] == "all" else row["shots"])


def crossover(curve: Sequence[Mapping[str, Any]], zero_shot: float | None) -> dict[str, Any] | None:
    """Where the few-shot probe reaches zero-shot: the first k with mean accuracy >= zero-shot
    and the labelled examples per class zero-shot is worth (log-linear interpolation between the
    bracketing points, as the CLIP paper's Fig. 7). None without a zero-shot accuracy."""
    if zero_shot is None or not curve:
        return None
    xs = [shots_x(r) for r in curve]
    ys = [r["mean_accuracy"] for r in curve]
    first = next((i for i, y in enumerate(ys) if y >= zero_shot), None)
    if first is None:
        return {"first_k": None, "worth": None, "note": "the probe never reaches zero-shot"}
    if first == 0:
        return {
            "first_k": curve[0]["shots"],
            "worth": None,
            "note": f"already the {curve[0]['shots']}-shot probe beats zero-shot",
        }
    x0, x1, y0, y1 = xs[first - 1], xs[first], ys[first - 1], ys[first]
    frac = (zero_shot - y0) / (y1 - y0) if y1 > y0 else 1.0
    worth = float(2 ** (math.log2(x0) + frac * (math.log2(x1) - math.log2(x0))))
    return {"first_k": curve[first]["shots"], "worth": worth, "note": ""}
