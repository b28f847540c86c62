"""What an image embedding encodes besides the class: one JAX logistic probe per extra label.

On datasets that label every image with attributes (the built-in shapes: colour, size, ...),
a probe per attribute against chance and majority shows how linearly decodable it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxclip.probes.protocol import jax_logistic


def attribute_probes(
    x_train: np.ndarray,
    x_test: np.ndarray,
    attributes_train: Mapping[str, np.ndarray],
    attributes_test: Mapping[str, np.ndarray],
    value_names: Mapping[str, Sequence[str]],
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    l2_grid: Sequence[float],
    max_iter: int,
) -> list[dict[str, Any]]:
    """One JAX logistic probe per attribute: L2 by validation accuracy on the rows `val_idx`,
    fitted on the rows `fit_idx` (no refit: one batched solve per attribute), scored on the
    test rows. Rows with a negative value (unlabelled) are left out.

    Args:
      x_train, x_test: (N, D) features; attributes_*: attribute -> (N,) int value per row.
      value_names: attribute -> names of its values in the dataset's order (also the order of
        the rows returned; attributes it does not name come last, with no value names).
      fit_idx, val_idx: the fit / validation rows of the train split.
      l2_grid, max_iter: the logistic probes' strengths and solver steps.

    Returns:
      one row per attribute with at least 2 values in training, validation and test rows:
      attribute, values (K), value_names, test / val accuracy, chosen l2, chance 1/K,
      majority (share of the most frequent test value), num_test.
    """
    attrs = list(attributes_train)
    order = [a for a in value_names if a in attrs] + [a for a in attrs if a not in value_names]
    rows = []
    grid = tuple(float(v) for v in l2_grid)
    for attr in order:
        values = tuple(str(v) for v in value_names.get(attr, ()))
        atr, ate = attributes_train[attr], attributes_test[attr]
        ok_tr, ok_te = atr >= 0, ate >= 0
        fit = fit_idx[ok_tr[fit_idx]]
        val = val_idx[ok_tr[val_idx]]
        vals = np.unique(atr[ok_tr])
        if vals.size < 2 or not len(val) or not ok_te.any():
            continue
        te = ok_te & np.isin(ate, vals)
        _, path, best = jax_logistic(
            x_train[fit],
            atr[fit],
            x_train[val],
            atr[val],
            x_test[te],
            ate[te],
            grid,
            classes=vals,
            max_iter=int(max_iter),
            refit=False,
        )
        v = max(len(values), int(vals.size))
        counts = np.bincount(ate[te], minlength=v)
        rows.append(
            {
                "attribute": attr,
                "values": v,
                "value_names": list(values),
                "test_accuracy": float(path.accuracy["test"][best]),
                "val_accuracy": float(path.accuracy["val"][best]),
                "l2": float(path.l2_grid[best]),
                "chance": 1.0 / v,
                "majority": float(counts.max() / counts.sum()),
                "num_test": int(te.sum()),
            }
        )
    return rows
