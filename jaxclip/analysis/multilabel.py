"""Multi-label classification: per-class average precision and their mean (mAP).

The metric CLIP_benchmark reports for VOC2007 multi-label zero-shot classification: for each
class, rank the images by their score for it and average the precision over the ranking,

    AP_c = sum_k (R_k - R_{k-1}) P_k,

over the distinct score thresholds k (highest first), with P_k and R_k the precision and recall
of "score >= threshold k". Tied scores form one threshold, so the value does not depend on the
order of tied images; this is scikit-learn's `average_precision_score` (tested) and, when no
scores tie, CLIP_benchmark's (torchnet's) per-class AP exactly. A class with no positive image
has no AP (NaN) and is left out of the mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def average_precision(scores: Any, targets: Any) -> np.ndarray:
    """Per-class average precision (C,) of scores (N, C) against bool targets (N, C).

    NaN for a class without positives.
    """
    s = np.asarray(scores, np.float64)
    t = np.asarray(targets)
    if s.ndim != 2 or t.shape != s.shape:
        raise ValueError(f"scores and targets must both be (N, C); got {s.shape}, {t.shape}")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("targets must be 0/1 (or bool)")
    t = t.astype(bool)
    ap = np.full(s.shape[1], np.nan)
    for c in range(s.shape[1]):
        positives = int(t[:, c].sum())
        if positives == 0:
            continue
        order = np.argsort(-s[:, c], kind="stable")
        sc, hit = s[order, c], t[order, c]
        tp = np.cumsum(hit)
        # The last position of each run of equal scores: one threshold per distinct score.
        last = np.r_[np.flatnonzero(np.diff(sc)), len(sc) - 1]
        precision = tp[last] / (last + 1)
        recall = tp[last] / positives
        ap[c] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return ap


def mean_average_precision(scores: Any, targets: Any) -> dict[str, Any]:
    """{"map": mean AP over classes with positives, "ap": per-class (C,), "classes": count}."""
    ap = average_precision(scores, targets)
    valid = ~np.isnan(ap)
    if not valid.any():
        raise ValueError("no class has a positive example; mAP is undefined")
    return {"map": float(ap[valid].mean()), "ap": ap, "classes": int(valid.sum())}
