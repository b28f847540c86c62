"""The probe protocol the studies share: labelled rows, the CLIP-protocol JAX logistic probe,
the MLP grid over widths, scores of a probe and zero-shot scores on the same features.

Pure functions of arrays (and of extracted `ImageFeatures`): no config, no report.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxclip.analysis import metrics
from jaxclip.analysis import zero_shot as zs
from jaxclip.probes import linear, mlp


@dataclasses.dataclass
class LabelledSplits:
    """Labelled train / test rows of one dataset, ready for probes.

    x_*: (N, D) float32 features; y_*: (N,) int labels (original values); classnames: by label;
    classes: the label values seen in training; attributes_*: extra labels of the same rows;
    dropped: {"train_unlabelled", "test_unlabelled", "test_unseen_class"} row counts.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classnames: tuple[str, ...]
    classes: np.ndarray
    attributes_train: dict[str, np.ndarray]
    attributes_test: dict[str, np.ndarray]
    dropped: dict[str, int]

    def class_name(self, label: Any) -> str:
        """The name of a label value (the value itself when the dataset names no such class)."""
        k = int(label)
        return self.classnames[k] if 0 <= k < len(self.classnames) else str(k)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def labelled_splits(train: Any, test: Any, *, normalize: bool = False) -> LabelledSplits | str:
    """The labelled rows of two `ImageFeatures` (embeds, labels, classnames, attributes), or a
    one-line reason why a probe cannot use them.

    Test rows whose class never occurs in training are dropped (a probe cannot predict them).
    """
    ytr_all = np.asarray(train.labels, np.int64)
    yte_all = np.asarray(test.labels, np.int64)
    ktr = ytr_all >= 0
    classes = np.unique(ytr_all[ktr])
    if classes.size < 2:
        return (
            "the train split has no class labels"
            if classes.size == 0
            else "the train split has only one class; a probe needs at least 2"
        )
    kte = (yte_all >= 0) & np.isin(yte_all, classes)
    if not kte.any():
        return "the test split has no labelled rows of a class seen in training"
    xtr = np.asarray(train.embeds, np.float32)[ktr]
    xte = np.asarray(test.embeds, np.float32)[kte]
    if normalize:
        xtr, xte = normalize_rows(xtr), normalize_rows(xte)
    atr = dict(getattr(train, "attributes", None) or {})
    ate = dict(getattr(test, "attributes", None) or {})
    common = [a for a in atr if a in ate]
    return LabelledSplits(
        x_train=xtr,
        y_train=ytr_all[ktr],
        x_test=xte,
        y_test=yte_all[kte],
        classnames=tuple(str(c) for c in train.classnames),
        classes=classes,
        attributes_train={a: np.asarray(atr[a], np.int64)[ktr] for a in common},
        attributes_test={a: np.asarray(ate[a], np.int64)[kte] for a in common},
        dropped={
            "train_unlabelled": int((~ktr).sum()),
            "test_unlabelled": int((yte_all < 0).sum()),
            "test_unseen_class": int(((yte_all >= 0) & ~np.isin(yte_all, classes)).sum()),
        },
    )


def chance_and_majority(y: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(1 / C, share of the most frequent class in `y`): the two floors of a probe's accuracy."""
    counts = np.bincount(np.searchsorted(classes, y), minlength=int(classes.size))
    return 1.0 / int(classes.size), float(counts.max() / counts.sum())


def score_probe(scores: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """top1, top5 (None when there are at most 5 classes) and macro F1 of (N, C) scores whose
    columns are `classes`; labels must be in `classes`."""
    scores = np.asarray(scores, np.float64)
    idx = np.searchsorted(classes, y)
    if scores.ndim != 2 or scores.shape != (len(y), len(classes)):
        raise ValueError(f"scores {scores.shape} do not match {len(y)} labels × {len(classes)}")
    c = len(classes)
    topk = metrics.topk_accuracy(scores, idx, ks=(1, 5) if c > 5 else (1,))
    conf = metrics.confusion_matrix(idx, np.argmax(scores, axis=1), c)
    return {
        "top1": topk["top1"],
        "top5": topk.get("top5"),
        "macro_f1": metrics.macro_f1(conf),
    }


def jax_logistic(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    l2_grid: Sequence[float],
    *,
    classes: np.ndarray,
    max_iter: int = 100,
    refit: bool = True,
) -> tuple[linear.LinearProbe | None, linear.LogisticPath, int]:
    """The CLIP protocol with the JAX solver, keeping the path for plots.

    One batched solve of the whole `l2_grid` on (x_fit, y_fit) scored on train / val / test
    (`logistic_path`), the strength with the best validation accuracy (`select_l2`: ties go to
    the strongest), then, if `refit`, `fit_logistic` on train + val at that strength (the
    probe returned; None without refit). Returns (probe, path, index of the chosen strength).
    """
    path = linear.logistic_path(
        x_fit,
        y_fit,
        l2_grid,
        {"val": (x_val, y_val), "test": (x_test, y_test)},
        classes=classes,
        max_iter=max_iter,
    )
    best = linear.select_l2(path.l2_grid, path.accuracy["val"])
    if not refit:
        return None, path, best
    probe = linear.fit_logistic(
        np.concatenate([x_fit, x_val]),
        np.concatenate([y_fit, y_val]),
        l2_grid=[float(path.l2_grid[best])],
        max_iter=max_iter,
    )
    probe.l2_grid = tuple(float(v) for v in path.l2_grid)
    probe.val_accuracy = tuple(float(a) for a in path.accuracy["val"])
    return probe, path, best


def zero_shot_scores(x: np.ndarray, class_texts: np.ndarray) -> np.ndarray:
    """(N, C) cosine similarities of images `x` to one text embedding per class (C, D)."""
    w = zs.class_text_embeddings(np.asarray(class_texts, np.float32)[:, None, :])
    return np.asarray(zs.zero_shot_logits(x, w, logit_scale=1.0), np.float64)


@dataclasses.dataclass(frozen=True)
class MLPGrid:
    """The MLP probe's grid: widths × learning rates × weight decays × dropouts × seeds, each
    width `layers` hidden layers deep, trained with early stopping on validation accuracy."""

    widths: tuple[int, ...]
    layers: int
    learning_rates: tuple[float, ...]
    weight_decays: tuple[float, ...]
    dropouts: tuple[float, ...]
    seeds: tuple[int, ...]
    epochs: int
    patience: int
    batch_size: int


def fit_mlp_grid(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    grid: MLPGrid,
    seed: int,
) -> tuple[mlp.MLPProbe, list[dict[str, Any]], float]:
    """One vmapped `fit_mlp` per width of `grid.widths`; the best member over all widths.

    Returns (best probe, one row per member with its width, total seconds). Ties go to the
    first width in the grid's order.
    """
    best: mlp.MLPProbe | None = None
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    for width in grid.widths:
        hidden = (int(width),) * int(grid.layers)
        t0 = time.perf_counter()
        probe = mlp.fit_mlp(
            x_fit,
            y_fit,
            x_val,
            y_val,
            hidden=hidden,
            learning_rates=tuple(grid.learning_rates),
            weight_decays=tuple(grid.weight_decays),
            dropouts=tuple(grid.dropouts),
            seeds=tuple(int(s) for s in grid.seeds),
            batch_size=int(grid.batch_size),
            epochs=int(grid.epochs),
            patience=int(grid.patience),
            data_seed=seed,
        )
        seconds += time.perf_counter() - t0
        for m in probe.grid:
            rows.append({"hidden": list(hidden), **m})
        if best is None or probe.val_accuracy > best.val_accuracy:
            best = probe
    assert best is not None
    return best, rows, seconds
