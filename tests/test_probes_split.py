"""Tests for jaxclip/probes/split.py: the one train / validation split of every probe."""

from __future__ import annotations

import numpy as np
import pytest

from jaxclip.probes.split import train_val_split


def test_split_is_sorted_disjoint_complete_and_seeded():
    fit, val = train_val_split(50, 0.2, 3)
    assert len(val) == 10 and len(fit) == 40
    assert np.all(np.diff(fit) > 0) and np.all(np.diff(val) > 0)
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(50))
    again = train_val_split(50, 0.2, 3)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(train_val_split(50, 0.2, 4)[1], val)


def test_split_keeps_a_row_on_each_side():
    fit, val = train_val_split(2, 0.9, 0)
    assert len(fit) == len(val) == 1
    fit, val = train_val_split(10, 0.01, 0)
    assert len(val) == 1 and len(fit) == 9


@pytest.mark.parametrize(
    ("n", "frac", "match"), [(1, 0.2, "at least 2"), (10, 1.0, "val_fraction")]
)
def test_split_rejects_impossible_requests(n, frac, match):
    with pytest.raises(ValueError, match=match):
        train_val_split(n, frac, 0)
