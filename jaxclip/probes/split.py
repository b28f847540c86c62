"""The one train / validation split of the probes: a seeded random share of the rows held out.

Every probe that chooses a setting (C, L2, MLP width / weight decay / seed) on held-out data
uses this rule, so passing the split explicitly or letting a probe draw it gives the same rows.
"""

from __future__ import annotations

import numpy as np


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices), each sorted: a seeded random `val_fraction` of
    range(n) held out (at least one row, and at least one row left to fit on).

    Raises:
      ValueError: n < 2 (no split possible) or `val_fraction` outside (0, 1).
    """
    if n < 2:
        raise ValueError(f"need at least 2 training examples for a validation split; got {n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(val_fraction * n)), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
