"""A deterministic subset of a dataset source (smoke runs, quick looks, held-out slices)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np


class SubsetSource:
    """The examples `indices` of `source`, in that order, as a source of its own.

    `info.fingerprint` names the subset, so cached features of a subset never mix with the
    full split's. Item dicts keep the parent's `index` (so rows can be traced back). `split`
    renames `info.split` (default: the parent's).
    """

    def __init__(self, source: Any, indices: np.ndarray, *, split: str | None = None):
        indices = np.asarray(indices, np.int64)
        n = len(source)
        if indices.ndim != 1 or (len(indices) and (indices.min() < 0 or indices.max() >= n)):
            raise ValueError(
                f"subset indices must be 1-D within [0, {n}), got shape {indices.shape}"
            )
        self.source = source
        self.indices = indices
        self.skipped = getattr(source, "skipped", [])
        parent = source.info
        sub = hashlib.sha256(indices.tobytes()).hexdigest()[:12]
        self._info = dataclasses.replace(
            parent,
            fingerprint=f"{parent.fingerprint}|subset:{sub}",
            split=parent.split if split is None else split,
        )

    @property
    def info(self):
        return self._info

    def verify(self) -> None:
        if hasattr(self.source, "verify"):
            self.source.verify()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self.indices):
            raise IndexError(f"index {i} out of range for a subset of {len(self.indices)}")
        return self.source[int(self.indices[i])]


def maybe_subset(source: Any, max_examples: int, seed: int = 0) -> Any:
    """`source` itself, or a seeded random subset of `max_examples` in index order (if > 0)."""
    if not max_examples or max_examples >= len(source):
        return source
    if max_examples < 0:
        raise ValueError(f"max_examples must be >= 0 (0 = all), got {max_examples}")
    rng = np.random.default_rng(seed)
    return SubsetSource(source, np.sort(rng.choice(len(source), max_examples, replace=False)))
