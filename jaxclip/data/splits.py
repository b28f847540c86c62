"""Train / test splits of one labelled set, and how many examples two splits share.

`stratified_split(labels, test_fraction, seed)` splits a folder of class subfolders that has no
split folders of its own (`image_folder` reads `DIR/<class>/*.jpg` this way). The rule, per
class c with n_c examples (examples in the source's order, i.e. sorted by file name):

    n_test(c) = floor(test_fraction * n_c + 1/2)      (rounded half up)
    then clipped to [1, n_c - 1] when n_c >= 2;  n_test(c) = 0 when n_c = 1

so every class with two or more examples is both trained and tested on, and a class of one
example is trained on only. Which examples are held out: `np.random.default_rng(seed)` draws one
permutation per class, classes in label order; the first n_test(c) of it are the test part.
NumPy's PCG64 stream is the same on every machine, so the split is too.

`shared_examples(a, b)` counts the examples two sources have in common: by real file path for
image folders (and subsets of them), else by dataset and split name (identical splits share
everything; different split names of the same dataset are taken to be disjoint).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

# The two parts a stratified split gives; "val" and "test" both name the held-out part.
TRAIN_PARTS = ("train",)
TEST_PARTS = ("val", "test")


def held_out_counts(class_sizes: np.ndarray, test_fraction: float) -> np.ndarray:
    """n_test(c) for each class size n_c (the rule in the module docstring)."""
    sizes = np.asarray(class_sizes, np.int64)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    counts = np.array([math.floor(test_fraction * int(n) + 0.5) for n in sizes], np.int64)
    counts = np.clip(counts, 1, np.maximum(sizes - 1, 1))
    return np.where(sizes >= 2, counts, 0)


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), each sorted, of a seeded split stratified by label.

    Args:
      labels: (N,) int class labels, in the source's (file-name) order.
      test_fraction: the share of each class held out, in (0, 1).
      seed: the split's seed (config.seed).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    n_test = held_out_counts(np.array([len(m) for m in members]), test_fraction)
    rng = np.random.default_rng(seed)
    test = [m[rng.permutation(len(m))[:k]] for m, k in zip(members, n_test, strict=True)]
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def example_keys(source: Any) -> list[str] | None:
    """One key per example of `source` naming the underlying image (a real file path), or None
    when the source does not know its files (TFDS, webdatasets, ...)."""
    from jaxclip.data.datasets import FolderSource
    from jaxclip.data.subset import SubsetSource

    if isinstance(source, SubsetSource):
        parent = example_keys(source.source)
        return None if parent is None else [parent[int(i)] for i in source.indices]
    if isinstance(source, FolderSource):
        return [os.path.realpath(source.root / rel) for rel in source.files]
    return None


def shared_examples(train: Any, test: Any) -> int:
    """How many examples the two sources share (see the module docstring)."""
    a, b = example_keys(train), example_keys(test)
    if a is not None and b is not None:
        return len(set(a) & set(b))
    ia, ib = train.info, test.info
    if (ia.name, ia.split, ia.fingerprint) == (ib.name, ib.split, ib.fingerprint):
        return len(train)
    return 0
