"""Bootstrap intervals and paired tests against scipy, scikit-learn, numpy loops and hand sums."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score

from jaxclip.analysis import bootstrap as bs
from jaxclip.errors import UserError


def _loop_means(values, num_resamples, seed, chunk):
    out = [
        values[row].mean(dtype=np.float64)
        for idx in bs.resample_indices(values.size, num_resamples, seed, chunk)
        for row in idx
    ]
    return np.array(out)


def test_coverage_of_percentile_interval():
    # For 0/1 data the resampled count of an index bootstrap is Binomial(n, k / n) exactly, so
    # 1 000 data sets x 2 000 resamples are drawn as counts (vectorised) and go through the same
    # percentile_interval as every study; the 95 % intervals must contain the true rate ~95 %.
    n, p, reps, b = 400, 0.3, 1000, 2000
    rng = np.random.default_rng(0)
    k = rng.binomial(n, p, reps)
    res = rng.binomial(n, np.broadcast_to((k / n)[:, None], (reps, b)))
    lo, hi = bs.percentile_interval(res / n)
    cover = np.mean((lo <= p) & (p <= hi))
    assert 0.93 <= cover <= 0.97, cover


def test_coverage_of_counts_path_interval():
    # The same coverage check through mean_interval's counts path itself: 1 000 data sets, one
    # call each (its own seed), 2 000 resamples.
    n, p, reps, b = 400, 0.3, 1000, 2000
    rng = np.random.default_rng(1)
    hits = 0
    for r in range(reps):
        iv = bs.mean_interval(rng.random(n) < p, b, seed=r)
        hits += iv.ci_low <= p <= iv.ci_high
    assert 0.93 <= hits / reps <= 0.97, hits / reps


def test_mean_interval_matches_numpy_loop_and_is_seeded():
    x = np.random.default_rng(0).random(300) < 0.4
    # index path: several chunks, a partial last one
    s = bs.mean_samples(x, 500, seed=3, chunk=128, method="indices")
    np.testing.assert_array_equal(s, _loop_means(x, 500, 3, 128))
    iv = bs.mean_interval(x, 500, seed=3, chunk=128, method="indices")
    assert iv.value == x.mean() and iv.n == 300
    assert (iv.ci_low, iv.ci_high) == tuple(np.percentile(s, [2.5, 97.5]))
    assert iv == bs.mean_interval(x, 500, seed=3, chunk=128, method="indices")
    assert iv != bs.mean_interval(x, 500, seed=4, chunk=128, method="indices")
    assert iv.ci_low < iv.value < iv.ci_high


def test_counts_path_equals_numpy_loop_of_binomial_draws():
    x = np.random.default_rng(0).random(300) < 0.4
    k = int(x.sum())
    rng = np.random.default_rng(3)
    loop = np.array([rng.binomial(300, k / 300) / 300 for _ in range(500)])
    s = bs.mean_samples(x, 500, seed=3)
    np.testing.assert_array_equal(s, loop)
    iv = bs.mean_interval(x, 500, seed=3)
    assert (iv.ci_low, iv.ci_high) == tuple(bs.percentile_interval(loop))
    assert iv == bs.mean_interval(x, 500, seed=3) and iv != bs.mean_interval(x, 500, seed=4)


def test_counts_and_index_resamples_have_the_same_law():
    # Same data, 20 000 resamples each way: the two resampled-count histograms must be
    # indistinguishable (chi-square on binned counts), and the intervals agree within MC error.
    x = np.random.default_rng(2).random(400) < 0.3
    counts = np.round(bs.mean_samples(x, 20_000, seed=5) * 400).astype(int)
    index = np.round(bs.mean_samples(x, 20_000, seed=5, method="indices") * 400).astype(int)
    edges = np.unique(np.percentile(np.concatenate([counts, index]), np.linspace(0, 100, 21)))
    edges[-1] += 1
    table = np.stack([np.histogram(counts, edges)[0], np.histogram(index, edges)[0]])
    assert stats.chi2_contingency(table).pvalue > 1e-3
    lo_c, hi_c = bs.percentile_interval(counts / 400)
    lo_i, hi_i = bs.percentile_interval(index / 400)
    assert abs(lo_c - lo_i) < 0.01 and abs(hi_c - hi_i) < 0.01  # sd of the mean is 0.023


def test_paired_counts_path_equals_multinomial_loop_and_index_law():
    rng = np.random.default_rng(4)
    a = rng.random(250) < 0.6
    b = np.where(rng.random(250) < 0.7, a, rng.random(250) < 0.5)
    cells = [(a & b).sum(), (a & ~b).sum(), (~a & b).sum(), (~a & ~b).sum()]
    np.testing.assert_array_equal(bs.paired_cells(a, b), cells)
    g = np.random.default_rng(7)
    loop = []
    for _ in range(300):
        c = g.multinomial(250, np.array(cells) / 250)
        loop.append(c[1] / 250 - c[2] / 250)
    s = bs.paired_samples(a, b, 300, seed=7)
    np.testing.assert_array_equal(s, np.array(loop))
    d = bs.paired_difference(a, b, 300, seed=7)
    assert (d.ci_low, d.ci_high) == tuple(bs.percentile_interval(np.array(loop)))
    # the law of the index path: a two-sample KS test on 20 000 resamples each, on the integer
    # count differences (the two paths round n10 / n - n01 / n differently)
    big_c = np.round(bs.paired_samples(a, b, 20_000, seed=1) * 250)
    big_i = np.round(bs.paired_samples(a, b, 20_000, seed=1, method="indices") * 250)
    assert stats.ks_2samp(big_c, big_i).pvalue > 1e-3


def test_paired_comparisons_holm_and_verdict():
    # 200 examples; b differs from a on 30 examples all in a's favour (clear); c on 4 (2 vs 2)
    a = np.zeros(200, bool)
    a[:100] = True
    b = a.copy()
    b[:30] = False
    c = a.copy()
    c[:2] = False
    c[150:152] = True
    rows = bs.paired_comparisons([("a", "b", a, b), ("a", "c", a, c)], 2000, seed=0)
    p1 = stats.binomtest(30, 30, 0.5).pvalue
    p2 = stats.binomtest(2, 4, 0.5).pvalue
    np.testing.assert_allclose([r["p_value"] for r in rows], [p1, p2], rtol=1e-12)
    np.testing.assert_allclose([r["p_holm"] for r in rows], [min(1, 2 * p1), min(1, p2)])
    assert [r["distinguishable"] for r in rows] == [True, False]
    assert rows[0]["difference"] == 0.15 and rows[1]["difference"] == 0.0
    assert rows[0]["ci_low"] > 0 and rows[1]["ci_low"] < 0 < rows[1]["ci_high"]


def test_indices_cover_range_uniformly():
    idx = np.concatenate(list(bs.resample_indices(50, 4000, seed=0)))
    counts = np.bincount(idx.ravel(), minlength=50)
    assert idx.min() == 0 and idx.max() == 49
    assert stats.chisquare(counts).pvalue > 1e-3


def test_jit_equals_eager_and_vmap_equals_loop():
    # vmap over data sets under one key (rbg keys are not split under vmap).
    vs = jnp.asarray(np.random.default_rng(5).random((3, 40, 1)) < 0.5, jnp.int32)
    key = jax.random.key(1, impl="rbg")
    with jax.disable_jit():
        eager = [np.asarray(bs.resampled_sums(key, v, 16)) for v in vs]
    jitted = [np.asarray(bs.resampled_sums(key, v, 16)) for v in vs]
    batched = np.asarray(jax.vmap(lambda v: bs.resampled_sums(key, v, 16))(vs))
    np.testing.assert_array_equal(np.stack(jitted), np.stack(eager))
    np.testing.assert_array_equal(batched, np.stack(eager))


def test_paired_bootstrap_matches_numpy_loop():
    rng = np.random.default_rng(1)
    a, b = rng.random(250) < 0.6, rng.random(250) < 0.5
    s = bs.paired_samples(a, b, 300, seed=7, chunk=100, method="indices")
    loop = [
        a[r].mean(dtype=np.float64) - b[r].mean(dtype=np.float64)
        for idx in bs.resample_indices(250, 300, 7, 100)
        for r in idx
    ]
    np.testing.assert_array_equal(s, np.array(loop))
    d = bs.paired_difference(a, b, 300, seed=7, chunk=100, method="indices")
    assert d.difference == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert (d.ci_low, d.ci_high) == tuple(np.percentile(s, [2.5, 97.5]))


@pytest.mark.parametrize("n01,n10,both", [(3, 12, 5), (0, 0, 4), (7, 7, 0), (40, 21, 9), (0, 6, 1)])
def test_mcnemar_equals_scipy_binomtest(n01, n10, both):
    a = np.array([1] * n01 + [0] * n10 + [1] * both + [0] * 3, bool)
    b = np.array([0] * n01 + [1] * n10 + [1] * both + [0] * 3, bool)
    p, c01, c10 = bs.mcnemar_exact(a, b)
    assert (c01, c10) == (n01, n10)
    want = 1.0 if n01 + n10 == 0 else stats.binomtest(n01, n01 + n10, 0.5).pvalue
    assert p == pytest.approx(want, rel=1e-12)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.03, 0.2 with m = 4: 0.04, max(0.04, 0.06), max(.., 0.06), max(.., 0.2)
    p = np.array([0.03, 0.2, 0.01, 0.02])
    np.testing.assert_allclose(bs.holm(p), [0.06, 0.2, 0.04, 0.06], rtol=1e-12)
    np.testing.assert_allclose(bs.holm([0.5, 0.6]), [1.0, 1.0])
    with pytest.raises(UserError, match="p_values"):
        bs.holm([0.1, 1.5])


@pytest.mark.parametrize("metric", ["macro_f1", "mean_per_class_recall"])
def test_class_interval_matches_sklearn_per_resample(metric):
    rng = np.random.default_rng(2)
    t = rng.integers(0, 5, 120)
    p = np.where(rng.random(120) < 0.6, t, rng.integers(0, 6, 120))
    s = bs.class_samples(t, p, 7, metric, 40, seed=1, chunk=16)
    if metric == "macro_f1":
        fn = lambda a, b: f1_score(a, b, average="macro", zero_division=0)
    else:
        fn = balanced_accuracy_score
    ref = [fn(t[r], p[r]) for idx in bs.resample_indices(120, 40, 1, 16) for r in idx]
    np.testing.assert_allclose(s, ref, rtol=1e-12, atol=1e-15)
    iv = bs.class_interval(t, p, 7, metric, 40, seed=1, chunk=16)
    assert iv.value == pytest.approx(fn(t, p))


def test_retrieval_resampling_keeps_captions_together():
    # image 0: three captions, all hits; image 1: one caption, a miss. Resampling two images
    # gives recall 1 (0, 0), 3/4 (0, 1) or 0 (1, 1); resampling captions alone would give 1/4, 1/2.
    hits = np.array([1, 1, 1, 0], bool)
    groups = np.array([0, 0, 0, 1])
    iv = bs.grouped_interval(hits, groups, num_resamples=400, seed=0)
    assert iv.value == 0.75
    per_group = np.array([[3, 3], [0, 1]], np.int32)
    s = bs._sums(per_group, 400, 0, None)
    r = s[:, 0] / s[:, 1]
    assert set(np.unique(r)) <= {0.0, 0.75, 1.0} and len(np.unique(r)) == 3
    assert (iv.ci_low, iv.ci_high) == tuple(np.percentile(r, [2.5, 97.5]))
    loop = [
        per_group[row, 0].sum() / per_group[row, 1].sum()
        for idx in bs.resample_indices(2, 400, 0)
        for row in idx
    ]
    np.testing.assert_array_equal(r, loop)


def test_bad_input_is_one_line_user_error():
    with pytest.raises(UserError, match="num_resamples=1"):
        bs.mean_interval(np.ones(5, bool), num_resamples=1)
    with pytest.raises(UserError, match="metric='f2'"):
        bs.class_interval(np.zeros(3, int), np.zeros(3, int), 2, "f2")
    with pytest.raises(UserError, match="dtype float"):
        bs.mean_interval(np.ones(5) * 0.5)
    with pytest.raises(UserError, match="method='bins'"):
        bs.mean_interval(np.ones(5, bool), method="bins")
