"""Classification metrics: top-k accuracy with a stated tie rule, confusion matrix, per-class P/R/F1.

Pure numpy functions of score and label arrays (numpy or JAX arrays in, numpy / Python out); they
know nothing of models or files.

Tie rule (top-k). The rank of the true class of sample i is

    rank_i = #{c : s_ic > s_iy}  +  tie term,

and sample i is correct at k iff rank_i < k. The tie term is chosen by `ties`:

- "first" (default): + #{c < y : s_ic == s_iy}. Tied classes are ordered by class index, lowest
  first, exactly as `np.argmax`, `jnp.argmax` and `jax.lax.top_k` order them, so top-1 accuracy
  always equals the accuracy of the `argmax` predictions (the trace of the confusion matrix / N).
  Deterministic, but depends on the class order when there are ties.
- "optimistic": + 0. A tie with the true class never hurts it (rank = number of strictly higher
  scores). Independent of class order; a constant score vector counts as correct at every k.
- "pessimistic": + #{c != y : s_ic == s_iy}. Every tie is lost. Independent of class order.

scikit-learn's `top_k_accuracy_score` sorts with `np.argsort(kind="mergesort")` ascending and
reverses, so among tied scores the HIGHEST class index comes first: "last wins", the mirror image
of our "first". Without ties all rules and scikit-learn agree; with ties,
sklearn(scores, y) == topk_accuracy(scores[:, ::-1], C - 1 - y, ties="first") (tested).
CLIP_benchmark ranks with `torch.topk`, whose tie order is neither (`jaxclip.analysis.clip_benchmark`
reproduces it; the common config field `metrics_protocol` picks whose numbers a run reports).
For k >= C every sample is trivially correct: `informative_topk` returns None there, and the
studies write null and leave it out of tables and plots.

Zero-division rules (per class, from the confusion matrix with rows = true, columns = predicted):
precision = tp / (tp + fp), 0 when the class is never predicted; recall = tp / (tp + fn), 0 when
the class has no samples; F1 = 2 tp / (2 tp + fp + fn), 0 when the class is neither present nor
predicted. These are scikit-learn's values with `zero_division=0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TIE_RULES = ("first", "optimistic", "pessimistic")


def _check_ties(ties: str) -> None:
    if ties not in TIE_RULES:
        raise ValueError(f"ties={ties!r} is not valid; choose one of: {', '.join(TIE_RULES)}")


def _scores_and_labels(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(logits)
    y = np.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"logits must be (N, C); got shape {scores.shape}")
    if y.shape != (scores.shape[0],):
        raise ValueError(
            f"labels must be (N,) with N = logits.shape[0]; got labels {y.shape}, "
            f"logits {scores.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= scores.shape[1]):
        raise ValueError(
            f"labels must lie in [0, {scores.shape[1]}); got min {y.min()}, max {y.max()}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("logits contain NaN or infinity; ranks would be meaningless")
    return scores, y.astype(np.int64)


def class_ranks(logits: Any, labels: Any, ties: str = "first") -> np.ndarray:
    """Rank of the true class among all classes for every sample (0 = ranked first).

    rank_i = #{c : s_ic > s_iy} + tie term (see the module docstring for `ties`).

    Args:
      logits: (N, C) scores, higher = more likely.
      labels: (N,) integer true classes in [0, C).
      ties: "first" (default; argmax order), "optimistic" or "pessimistic".

    Returns:
      (N,) int64 ranks in [0, C).
    """
    _check_ties(ties)
    scores, y = _scores_and_labels(logits, labels)
    true = np.take_along_axis(scores, y[:, None], axis=1)
    rank = (scores > true).sum(axis=1)
    equal = scores == true
    if ties == "first":
        rank += (equal & (np.arange(scores.shape[1])[None, :] < y[:, None])).sum(axis=1)
    elif ties == "pessimistic":
        rank += equal.sum(axis=1) - 1
    return rank.astype(np.int64)


def topk_accuracy(
    logits: Any, labels: Any, ks: Sequence[int] = (1, 5), ties: str = "first"
) -> dict[str, float]:
    """Fraction of samples whose true class ranks in the top k, for each k in `ks`.

    correct_i(k) = [rank_i < k] with rank_i from `class_ranks` (tie rule: module docstring).
    For k >= C every sample is correct (accuracy 1.0), as in scikit-learn.

    Args:
      logits: (N, C) scores.
      labels: (N,) integer classes.
      ks: positive integers.
      ties: "first" (default), "optimistic" or "pessimistic".

    Returns:
      {"top1": float, "top5": float, ...} as fractions in [0, 1].

    Example:
      >>> topk_accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 1], ks=(1, 2))
      {'top1': 0.5, 'top2': 1.0}
    """
    ks = tuple(ks)
    for k in ks:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks must be positive integers; got {k!r} in ks={ks}")
    rank = class_ranks(logits, labels, ties)
    if rank.size == 0:
        raise ValueError("topk_accuracy needs at least one sample; got N = 0")
    return {f"top{int(k)}": float(np.mean(rank < k)) for k in ks}


def informative_topk(
    logits: Any, labels: Any, ks: Sequence[int] = (1, 5), ties: str = "first"
) -> dict[str, float | None]:
    """`topk_accuracy`, with None for every k >= C (jaxclip's top-k rule).

    With k >= C classes every sample is correct by definition, so the 1.0 says nothing about
    the model; results.json writes null and tables and plots leave it out (CLIP_benchmark's
    `accuracy` gives NaN for top-5 with fewer than 5 classes, scikit-learn 1.0).
    """
    num_classes = np.asarray(logits).shape[-1]
    acc = topk_accuracy(logits, labels, ks, ties)
    return {key: (None if int(k) >= num_classes else acc[key]) for k, key in zip(ks, acc)}


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts M[i, j] = #{n : y_true[n] = i and y_pred[n] = j}; rows true, columns predicted.

    Same orientation as `sklearn.metrics.confusion_matrix(y_true, y_pred,
    labels=range(num_classes))`.

    Returns:
      (num_classes, num_classes) int64.
    """
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must be equal (N,) arrays; got {t.shape}, {p.shape}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    for name, a in (("y_true", t), ("y_pred", p)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must be integers; got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(
                f"{name} must lie in [0, {num_classes}); got min {a.min()}, max {a.max()}"
            )
    flat = t.astype(np.int64) * num_classes + p.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _check_confusion(confusion: Any) -> np.ndarray:
    m = np.asarray(confusion)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix; got shape {m.shape}")
    if np.any(m < 0):
        raise ValueError("confusion must hold non-negative counts")
    return m.astype(np.float64)


def per_class_prf(confusion: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a (C, C) confusion matrix.

    With tp = M[c, c], fp = sum_i M[i, c] - tp, fn = sum_j M[c, j] - tp:
      precision = tp / (tp + fp)        (0 if the class is never predicted)
      recall    = tp / (tp + fn)        (0 if the class has no samples)
      F1        = 2 tp / (2 tp + fp + fn)  (0 if the class is neither present nor predicted)
      support   = tp + fn.
    Equals `sklearn.metrics.precision_recall_fscore_support(..., zero_division=0)`.

    Returns:
      precision, recall, f1 as (C,) float64; support as (C,) int64.
    """
    m = _check_confusion(confusion)
    tp = np.diag(m)
    predicted = m.sum(axis=0)
    support = m.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = predicted + support  # = 2 tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support.astype(np.int64)


def mean_per_class_recall(confusion: Any) -> float:
    """Mean of the per-class recalls over the classes that have samples (support > 0).

    Equals `sklearn.metrics.balanced_accuracy_score`; classes absent from y_true are skipped.
    """
    m = _check_confusion(confusion)
    _, recall, _, support = per_class_prf(m)
    present = support > 0
    if not present.any():
        raise ValueError("mean_per_class_recall needs at least one sample; confusion is all zero")
    return float(recall[present].mean())


def macro_f1(confusion: Any) -> float:
    """Unweighted mean F1 over the classes present in y_true or y_pred.

    Equals `sklearn.metrics.f1_score(y_true, y_pred, average="macro")` (whose default label set
    is the union of the labels seen); classes neither present nor predicted are skipped.
    """
    m = _check_confusion(confusion)
    _, _, f1, _ = per_class_prf(m)
    seen = (m.sum(axis=0) + m.sum(axis=1)) > 0
    if not seen.any():
        raise ValueError("macro_f1 needs at least one sample; confusion is all zero")
    return float(f1[seen].mean())


def best_worst_classes(
    f1: Any, classnames: Sequence[str], k: int = 5
) -> dict[str, list[dict[str, Any]]]:
    """The k classes with the highest and the k with the lowest score (e.g. F1).

    Ties are ordered by class index (lower first) in both lists, so the result is deterministic.

    Returns:
      {"best": [{"class": name, "index": c, "f1": value}, ...] (descending),
       "worst": [...] (ascending)}.
    """
    scores = np.asarray(f1, dtype=np.float64)
    if scores.ndim != 1 or scores.shape[0] != len(classnames):
        raise ValueError(
            f"f1 must be (C,) with C = len(classnames); got {scores.shape} and {len(classnames)}"
        )
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    k = min(int(k), scores.shape[0])
    best = np.argsort(-scores, kind="stable")[:k]
    worst = np.argsort(scores, kind="stable")[:k]

    def rows(idx: np.ndarray) -> list[dict[str, Any]]:
        return [{"class": classnames[i], "index": int(i), "f1": float(scores[i])} for i in idx]

    return {"best": rows(best), "worst": rows(worst)}


def row_normalize(confusion: Any) -> np.ndarray:
    """P[i, j] = M[i, j] / sum_j M[i, j] (rows with no samples stay zero)."""
    m = np.asarray(confusion, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix; got shape {m.shape}")
    rows = m.sum(axis=1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def top_confusions(confusion: Any, classnames: Sequence[str], n: int = 10) -> list[dict[str, Any]]:
    """The n largest off-diagonal cells: {"true", "predicted", "count", "fraction"} rows, where
    fraction is the share of the true class's samples (ties: lower flat index first)."""
    m = np.asarray(confusion)
    p = row_normalize(m)
    off = p.copy()
    np.fill_diagonal(off, -1.0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    rows = []
    for f in flat:
        i, j = divmod(int(f), m.shape[1])
        if off[i, j] <= 0:
            break
        rows.append(
            {
                "true": classnames[i],
                "predicted": classnames[j],
                "count": int(m[i, j]),
                "fraction": float(p[i, j]),
            }
        )
    return rows
