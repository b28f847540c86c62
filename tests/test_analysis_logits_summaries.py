"""Tests for the class-agnostic summaries of jaxclip/analysis/logits.py: the τ grid, the spread
of the prompt cosines, and the rank of the prompt embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from jaxclip.analysis import logits as lg


def test_tau_grid_is_descending_log_spaced_with_the_extras_once():
    taus = lg.tau_grid(1e-3, 1.0, 4, extra_taus=(0.07, 0.1, 1.0))
    assert taus.tolist() == pytest.approx([1.0, 0.1, 0.07, 0.01, 0.001])
    assert np.all(np.diff(taus) < 0)
    assert lg.tau_grid(0.5, 0.5, 1).tolist() == [0.5]


def test_cosine_spread_and_the_second_order_entropy_gap():
    rng = np.random.default_rng(0)
    z = 0.2 + 0.01 * rng.normal(size=(50, 32))
    sp = lg.cosine_spread(z)
    assert sp["mean_cosine"] == pytest.approx(z.mean())
    assert sp["mean_range"] == pytest.approx(np.mean(z.max(1) - z.min(1)))
    assert sp["mean_std"] == pytest.approx(np.mean(z.std(1)))
    # ln K − H ≈ Var_k(z) / 2 for nearly equal logits
    p = softmax(z, axis=1)
    gap = np.log(32) - np.mean(logsumexp(z, axis=1) - np.sum(p * z, axis=1))
    assert sp["half_mean_var"] == pytest.approx(gap, rel=1e-2)


def test_prompt_rank_ignores_scale_and_counts_independent_directions():
    t = np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 3.0, 0]])
    assert lg.prompt_rank(t) == 2
    assert lg.prompt_rank(np.eye(3) * 5) == 3
