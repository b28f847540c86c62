"""Predictions of a fitted probe from its logits: shared by the linear and the MLP probes.

A probe class defines `decision_function(x) -> (N, C) logits` and a `classes` array (the
original label values in column order); `Classifier` adds probabilities, labels and accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Classifier:
    """Mixin: `predict_proba`, `predict` and `score` from `decision_function` and `classes`."""

    classes: np.ndarray

    def decision_function(self, x: Any) -> np.ndarray:
        """(N, C) logits of the probe (defined by each probe class)."""
        raise NotImplementedError

    def predict_proba(self, x: Any) -> np.ndarray:
        """(N, C) softmax of the logits."""
        z = self.decision_function(x).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, x: Any) -> np.ndarray:
        """(N,) predicted labels (original values; ties go to the lower class index)."""
        return self.classes[np.argmax(self.decision_function(x), axis=1)]

    def score(self, x: Any, y: Any) -> float:
        """Accuracy (fraction) on (x, y)."""
        return float(np.mean(self.predict(x) == np.asarray(y)))
