"""Class-agnostic logits: cosines, entropy, the tau / L2 identity, temperature sweeps."""

import math

import jax
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from jaxclip.analysis import logits as L
from jaxclip.probes import linear

D, K, C = 16, 8, 4


def _embeds(seed: int, n: int):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).standard_normal((C, D))
    y = rng.integers(0, C, n)
    x = 3.0 + means[y] * 0.8 + rng.standard_normal((n, D))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def logit_data():
    prompts = np.random.default_rng(7).standard_normal((K, D)).astype(np.float32)
    xtr, ytr = _embeds(0, 400)
    xte, yte = _embeds(1, 200)
    ztr = np.asarray(L.prompt_logits(xtr, prompts))
    zte = np.asarray(L.prompt_logits(xte, prompts))
    return ztr, ytr, zte, yte


def _np_entropy(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


def test_prompt_logits_are_cosines():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((5, D)) * 4, rng.standard_normal((3, D)) * 0.1
    ref = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        t / np.linalg.norm(t, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(L.prompt_logits(x, t), ref, atol=1e-6)
    np.testing.assert_allclose(L.prompt_logits(x, t, logit_scale=100.0), 100 * ref, atol=1e-4)
    with pytest.raises(ValueError, match="share D"):
        L.prompt_logits(x, t[:, :5])
    with pytest.raises(ValueError, match="logit_scale"):
        L.prompt_logits(x, t, logit_scale=-1.0)


@pytest.mark.parametrize("k", [1, 2, 32, 1000])
def test_entropy_of_uniform_logits_is_ln_k(k):
    h = L.softmax_entropy(np.full((3, k), 0.37, np.float32))
    np.testing.assert_allclose(h, math.log(k), rtol=1e-6, atol=1e-6)


def test_entropy_matches_float64_reference_including_sharp_logits():
    rng = np.random.default_rng(1)
    for scale in (0.01, 1.0, 30.0, 1e4):
        z = rng.standard_normal((50, 32)) * scale
        np.testing.assert_allclose(L.softmax_entropy(z), _np_entropy(z), atol=2e-5, rtol=1e-4)
    z = rng.standard_normal((4, 6, 5))
    np.testing.assert_allclose(
        L.softmax_entropy(z, axis=1), _np_entropy(np.moveaxis(z, 1, -1)), atol=1e-5
    )


def test_entropy_jit_equals_eager():
    z = np.random.default_rng(2).standard_normal((10, 7)).astype(np.float32)
    with jax.disable_jit():
        eager = L.softmax_entropy(z)
    np.testing.assert_allclose(L.softmax_entropy(z), eager, rtol=1e-6)


def test_entropy_stats_vmap_equals_loop(logit_data):
    ztr = logit_data[0]
    taus = [1.0, 0.1, 0.03]
    stats = L.entropy_stats(ztr, taus, logit_scale=100.0, bins=10)
    assert stats.ln_k == pytest.approx(math.log(K))
    for i, tau in enumerate(taus):
        h = _np_entropy(ztr / tau)
        assert stats.mean_entropy[i] == pytest.approx(h.mean(), abs=1e-5)
        p = np.exp(ztr / tau - (ztr / tau).max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        assert stats.mean_confidence[i] == pytest.approx(p.max(1).mean(), abs=1e-5)
    assert stats.raw["mean_entropy"] == pytest.approx(_np_entropy(ztr).mean(), abs=1e-5)
    assert stats.model["mean_entropy"] == pytest.approx(_np_entropy(ztr * 100).mean(), abs=1e-4)
    counts, edges = stats.histograms["raw cosine (tau=1)"]
    assert counts.sum() == ztr.shape[0] and edges[-1] == pytest.approx(math.log(K))


def test_tau_over_features_equals_l2_times_tau_squared_sklearn():
    """The identity itself, checked with scikit-learn (an independent solver)."""
    x, y = _embeds(3, 300)
    x = StandardScaler().fit_transform(x.astype(np.float64))  # fixed features, float64 fits
    tau, c = 0.05, 0.005
    left = LogisticRegression(C=c, tol=1e-10, max_iter=20_000).fit(x / tau, y)
    right = LogisticRegression(C=c / tau**2, tol=1e-10, max_iter=20_000).fit(x, y)
    scale = np.abs(right.coef_).max()
    np.testing.assert_allclose(left.coef_ / tau, right.coef_, atol=1e-3 * scale)
    np.testing.assert_allclose(left.intercept_, right.intercept_, atol=1e-3)


def test_tau_l2_equivalence_rows(logit_data):
    ztr, ytr, zte, yte = logit_data
    rows = L.tau_l2_equivalence(ztr, ytr, zte, yte, taus=(1.0, 0.1, 0.02), l2=1.0)
    for r in rows:
        assert r["l2_times_tau2"] == pytest.approx(r["tau"] ** 2)
        assert r["objective_left"] == pytest.approx(r["objective_right"], rel=1e-5)
        assert r["rel_coef_diff"] < 1e-2
        assert r["same_predictions"] >= 0.99
        assert abs(r["acc_x_over_tau_at_l2"] - r["acc_x_at_l2_tau2"]) <= 0.01
        # With a StandardScaler the features do not change at all: exact invariance.
        assert r["acc_standardized_x_over_tau"] == r["acc_standardized_x"]


def test_temperature_sweep_vmap_equals_loop_and_identity(logit_data):
    ztr, ytr, zte, yte = logit_data
    taus = [1.0, 0.1, 0.02]
    kw = {"l2": 1.0, "logit_scale": 100.0, "tol": 1e-6, "max_iter": 300}
    sv = L.temperature_sweep(ztr, ytr, zte, yte, taus, mode="batched", **kw)
    for mode in ("map", "vmap", "loop"):  # cold starts: the same iterates
        other = L.temperature_sweep(ztr, ytr, zte, yte, taus, mode=mode, **kw)
        np.testing.assert_allclose(sv.acc_scaled, other.acc_scaled, atol=1e-6)
        np.testing.assert_allclose(sv.acc_softmax, other.acc_softmax, atol=1e-6)
    # Warm-started path (the default): the same optima, to the solver tolerance.
    sp = L.temperature_sweep(ztr, ytr, zte, yte, taus, **kw)
    np.testing.assert_allclose(sp.acc_scaled, sv.acc_scaled, atol=0.011)
    np.testing.assert_allclose(sp.acc_softmax, sv.acc_softmax, atol=0.011)
    np.testing.assert_allclose(sv.acc_scaled, sv.acc_scaled_via_l2, atol=0.01)
    np.testing.assert_allclose(sv.l2_effective, np.square(taus))
    assert sv.points["model"]["tau"] == pytest.approx(0.01)
    assert sv.points["raw"]["acc_scaled"] == pytest.approx(sv.acc_scaled[0])
    # Entropy column is softmax(test logits / tau).
    np.testing.assert_allclose(
        sv.mean_entropy, [_np_entropy(zte / t).mean() for t in taus], atol=1e-5
    )
    # A direct reference for one point: the probe on softmax(logits / tau) with fit_logistic.
    f = lambda z: np.asarray(L.tau_features(z, [0.1], "softmax"))[0]
    ref = linear.fit_logistic(f(ztr), ytr, l2_grid=[1.0], standardize=False, tol=1e-6)
    assert sv.acc_softmax[1] == pytest.approx(ref.score(f(zte), yte), abs=0.006)


def test_standardized_scaled_variant_is_invariant(logit_data):
    ztr, ytr, zte, yte = logit_data
    sw = L.temperature_sweep(ztr, ytr, zte, yte, [1.0, 0.1, 0.02], standardize=True, tol=1e-6)
    assert np.ptp(sw.acc_scaled) <= 0.006
    np.testing.assert_allclose(sw.l2_effective, 1.0)


def test_prompt_count_sweep_equals_fitting_on_kept_columns(logit_data):
    ztr, ytr, zte, yte = logit_data
    order = np.arange(K)[::-1]
    rows = L.prompt_count_sweep(ztr, ytr, zte, yte, [2, 5, K], order=order, tol=1e-6)
    for r in rows:
        keep = order[: r["num_prompts"]]
        ref = linear.fit_logistic(ztr[:, keep], ytr, l2_grid=[1.0], tol=1e-6)
        assert r["accuracy"] == pytest.approx(ref.score(zte[:, keep], yte), abs=0.006)
    with pytest.raises(ValueError, match="sizes"):
        L.prompt_count_sweep(ztr, ytr, zte, yte, [0, 3])


def test_tau_features_and_bad_taus():
    z = np.random.default_rng(0).standard_normal((6, K)).astype(np.float32)
    f = np.asarray(L.tau_features(z, [0.5, 2.0], "softmax"))
    np.testing.assert_allclose(f.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(L.tau_features(z, [0.5], "scaled"))[0], z / 0.5, rtol=1e-6
    )
    with pytest.raises(ValueError, match="taus"):
        L.entropy_stats(z, taus=[0.1, -1.0])
    with pytest.raises(ValueError, match="kind"):
        L.tau_features(z, [1.0], "relu")
