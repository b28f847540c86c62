"""Tests for jaxclip.analysis.geometry on planted double-ellipsoid data with known answers."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from jaxclip import losses
from jaxclip.analysis import conformity as conf
from jaxclip.analysis import geometry as geo

D = 32
SEP_FEATURES = (5, 20)  # planted: Δmean 10 and 6, unit variance in both modalities


def _planted(n=3000, seed=0):
    """Two anisotropic, tilted Gaussian shells with different means (known mean and C)."""
    rng = np.random.default_rng(seed)
    others = [k for k in range(D) if k not in SEP_FEATURES]
    common = np.zeros(D)
    common[others[:4]] = [4.0, -3.0, 2.0, 3.0]  # shared offset from the origin
    m_i, m_t = common.copy(), common.copy()
    m_i[5], m_t[5] = 5.0, -5.0
    m_i[20], m_t[20] = -3.0, 3.0
    q, _ = np.linalg.qr(rng.normal(size=(len(others), len(others))))
    cov_o = {
        "i": q @ np.diag(np.linspace(0.2, 3.0, len(others))) @ q.T,
        "t": q @ np.diag(np.linspace(0.3, 2.5, len(others))) @ q.T,
    }
    out = {}
    for key, m in (("i", m_i), ("t", m_t)):
        c = np.zeros((D, D))
        c[np.ix_(others, others)] = cov_o[key]
        c[5, 5] = c[20, 20] = 1.0
        x = rng.multivariate_normal(m, c, size=n)
        out[key] = (x, m, c)
    return out


@pytest.fixture(scope="module")
def planted():
    return _planted()


def test_separability_ranks_planted_features_first(planted):
    (xi, mi, ci), (xt, mt, ct) = planted["i"], planted["t"]
    sep = geo.feature_separability(xi, xt)
    assert tuple(sep.order[:2]) == SEP_FEATURES
    analytic = np.abs(mi - mt) / np.sqrt(np.diag(ci) + np.diag(ct))
    np.testing.assert_allclose(sep.sep[list(SEP_FEATURES)], analytic[list(SEP_FEATURES)], rtol=0.05)
    assert sep.sep[sep.order[2]] < 0.1  # nothing else separates
    # formula by hand on one feature
    f = 7
    by_hand = abs(xi[:, f].mean() - xt[:, f].mean()) / np.sqrt(xi[:, f].var() + xt[:, f].var())
    np.testing.assert_allclose(sep.sep[f], by_hand, rtol=1e-12)


def test_svm_two_features_separates(planted):
    xi, xt = planted["i"][0], planted["t"][0]
    svm = geo.svm_two_features(xi, xt, max_plot_points=500)
    assert svm.features == SEP_FEATURES
    assert svm.accuracy == 1.0
    side = svm.points @ svm.coef + svm.intercept > 0
    np.testing.assert_array_equal(side, svm.labels == 1)
    with pytest.raises(ValueError, match="two indices"):
        geo.svm_two_features(xi, xt, features=(0, D))


def test_thin_shell_radius_matches_sqrt_trace(planted):
    x, _, c = planted["i"]
    sh = geo.thin_shell(x)
    analytic = np.sqrt(np.trace(c))
    assert abs(sh.sqrt_trace - analytic) / analytic < 0.02
    assert 0 < sh.rel_error < 0.05  # thin shell: mean norm a little below sqrt(tr C)
    # exact identity E‖y‖² = μ² + var(‖y‖) = tr C (population moments)
    cov = np.cov(x, rowvar=False, bias=True)
    np.testing.assert_allclose(sh.mean_norm**2 + sh.var_norm, np.trace(cov), rtol=1e-12)
    assert sh.norms.min() > 0.3 * analytic  # no mass near the centre


def test_moments_ratio(planted):
    x, m, c = planted["t"]
    mom = geo.modality_moments(x)
    np.testing.assert_allclose(mom.ratio, np.linalg.norm(m) / np.sqrt(np.trace(c)), rtol=0.03)
    np.testing.assert_allclose(mom.std, x.std(0), rtol=1e-12)


def test_variance_spectrum_and_covariance(planted):
    x, _, c = planted["i"]
    sp = geo.variance_spectrum(x)
    np.testing.assert_allclose(sp.variances, np.sort(np.diag(np.cov(x.T, bias=True)))[::-1])
    np.testing.assert_allclose(sp.eigenvalues[0], np.linalg.eigvalsh(c)[-1], rtol=0.1)
    np.testing.assert_allclose(sp.eigenvalues.sum(), sp.variances.sum(), rtol=1e-10)
    np.testing.assert_allclose(sp.variance_ratio, np.diag(c).max() / np.diag(c).min(), rtol=0.15)
    assert sp.eigenvalues[0] / sp.eigenvalues[-1] > 5  # an ellipsoid (tilted), not a sphere
    assert 1 < sp.participation_ratio < D


def test_odd_hand_example():
    c = np.array([[4.0, 1.0, -2.0], [1.0, 2.0, 0.5], [-2.0, 0.5, 1.0]])
    np.testing.assert_allclose(geo.off_diagonal_dominance(c), [0.75, 0.75, 2.5])
    np.testing.assert_allclose(geo.off_diagonal_dominance(np.diag([1.0, 2.0])), [0.0, 0.0])


@pytest.mark.parametrize("method", ["zca", "pca"])
def test_whitening_gives_identity_covariance(planted, method):
    x = planted["t"][0]
    w = geo.whitening(x, method=method, eps=0.0)
    y = geo.whiten(x, w)
    np.testing.assert_allclose(np.cov(y.T, bias=True), np.eye(D), atol=1e-8)
    if method == "zca":
        np.testing.assert_allclose(w.matrix, w.matrix.T, atol=1e-10)
    with pytest.raises(ValueError, match="'zca' or 'pca'"):
        geo.whitening(x, method="pcb")


def test_modality_gap(planted):
    xi, xt = planted["i"][0], planted["t"][0]
    gap = geo.modality_gap(xi, xt)
    np.testing.assert_allclose(gap.vector, xi.mean(0) - xt.mean(0))
    assert abs(gap.vector[5] - 10) < 0.2 and abs(gap.vector[20] + 6) < 0.2


def _small_pairs(n=48, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 12))
    v = z + 0.7 * rng.normal(size=(n, 12)) + np.r_[3.0, -2.0, np.zeros(10)]
    t = z + 0.7 * rng.normal(size=(n, 12)) + np.r_[-2.0, 0.0, 2.0, np.zeros(9)]
    return v.astype(np.float32), t.astype(np.float32)


@pytest.mark.parametrize("side", ["image", "text"])
def test_alpha_sweep_vmap_equals_python_loop(side):
    v, t = _small_pairs()
    alphas = np.linspace(-1, 1, 7).astype(np.float32)
    sweep = geo.alpha_shift_loss_sweep(v, t, alphas, side=side, logit_scale=15.0, block_size=10)
    for k, a in enumerate(alphas):
        vv = v - a * v.mean(0) if side == "image" else v
        tt = t - a * t.mean(0) if side == "text" else t
        ref = losses.clip_loss_parts(vv, tt, 15.0)
        for name in ref._fields:
            np.testing.assert_allclose(
                np.asarray(getattr(sweep, name))[k], np.asarray(getattr(ref, name)),
                rtol=2e-5, atol=2e-5, err_msg=f"{name} at alpha={a}",
            )  # fmt: skip
    auto = geo.alpha_shift_loss_sweep(v, t, alphas, side=side, logit_scale=15.0)
    np.testing.assert_allclose(np.asarray(auto.total), np.asarray(sweep.total), rtol=1e-6)


def test_alpha_sweep_against_float64_numpy_and_eager():
    v, t = _small_pairs(n=30, seed=4)
    alphas = np.array([-0.5, 0.0, 0.8], np.float32)
    sweep = geo.alpha_shift_loss_sweep(v, t, alphas, logit_scale=20.0, block_size=8)
    v64, t64 = v.astype(np.float64), t.astype(np.float64)
    for k, a in enumerate(alphas):
        vv = v64 - float(a) * v64.mean(0)
        vn = vv / np.linalg.norm(vv, axis=1, keepdims=True)
        tn = t64 / np.linalg.norm(t64, axis=1, keepdims=True)
        lg = 20.0 * vn @ tn.T
        ref = 0.5 * (np.mean(logsumexp(lg, 1)) + np.mean(logsumexp(lg, 0))) - np.mean(np.diag(lg))
        np.testing.assert_allclose(float(sweep.total[k]), ref, rtol=1e-5)
        np.testing.assert_allclose(float(sweep.alignment[k]), -np.mean(np.diag(lg)), rtol=1e-5)
    # jit == eager: the same computation with jit disabled (scan and vmap run op by op)
    small = (v[:12], t[:12], alphas[:2])
    jitted = geo.alpha_shift_loss_sweep(*small, logit_scale=20.0, block_size=5)
    with jax.disable_jit():
        eager = geo.alpha_shift_loss_sweep(*small, logit_scale=20.0, block_size=5)
    for name in jitted._fields:
        np.testing.assert_allclose(
            np.asarray(getattr(eager, name)), np.asarray(getattr(jitted, name)), rtol=1e-5,
            err_msg=name,
        )  # fmt: skip


def test_gap_sweep_closes_the_gap():
    v, t = _small_pairs(n=20, seed=6)
    betas = np.array([0.0, 0.5, 1.0], np.float32)
    sweep = geo.gap_shift_loss_sweep(v, t, betas, mode="both", logit_scale=10.0)
    g = v.mean(0) - t.mean(0)
    for k, b in enumerate(betas):
        ref = losses.clip_loss_parts(v - b * g / 2, t + b * g / 2, 10.0)
        np.testing.assert_allclose(float(sweep.total[k]), float(ref.total), rtol=1e-5)


def test_histogram_and_gaussian_kl():
    rng = np.random.default_rng(0)
    p, q = rng.normal(0, 1, 4000), rng.normal(0.5, 1.5, 3000)
    lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
    cp = np.histogram(p, 40, (lo, hi))[0] + 0.5
    cq = np.histogram(q, 40, (lo, hi))[0] + 0.5
    np.testing.assert_allclose(geo.histogram_kl(p, q, bins=40), stats.entropy(cp, cq), rtol=1e-12)
    assert geo.histogram_kl(p, p) == pytest.approx(0.0, abs=1e-15)
    # Gaussian KL against the analytic value for standardised samples
    z = rng.normal(size=5000)
    z = (z - z.mean()) / z.std()
    kl = geo.gaussian_kl(z, 1.0 + 2.0 * z)
    np.testing.assert_allclose(kl, np.log(2.0) + (1 + 1) / 8 - 0.5, rtol=1e-12)


def test_conformity_kl_sweep_rows_and_minimum():
    rng = np.random.default_rng(3)
    x_all = _planted(n=1200, seed=5)["i"][0]
    v, t = x_all[:600], x_all[600:]  # same distribution: the match is best unshifted
    alphas = np.linspace(-1, 1, 9)
    kl = geo.conformity_kl_sweep(v, t, alphas, bins=30)
    assert kl.alphas[np.argmin(kl.kl_image_text)] == 0.0
    for k, a in enumerate(alphas[::4]):
        ref = conf.conformity(v - a * v.mean(0))
        np.testing.assert_allclose(kl.image_conformity[4 * k], ref, atol=2e-6)
    np.testing.assert_allclose(kl.text_conformity[3], conf.conformity(t), atol=2e-6)
    k = 2
    np.testing.assert_allclose(
        kl.kl_text_image[k],
        geo.histogram_kl(kl.text_conformity[k], kl.image_conformity[k], bins=30),
    )
    gauss = geo.conformity_kl_sweep(v, t, alphas, method="gaussian")
    assert gauss.method == "gaussian" and np.all(np.isfinite(gauss.kl_image_text))
    del rng


def test_slerp_endpoints_norms_and_midpoint():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=8).astype(np.float32), 3 * rng.normal(size=8).astype(np.float32)
    for mode in ("raw", "linear"):
        np.testing.assert_allclose(geo.slerp(u, v, 0.0, norm_mode=mode), u, atol=1e-5)
        np.testing.assert_allclose(geo.slerp(u, v, 1.0, norm_mode=mode), v, atol=1e-5)
    th = np.linspace(0, 1, 5, dtype=np.float32)
    lin = geo.slerp(u[None], v[None], th, norm_mode="linear")
    np.testing.assert_allclose(
        np.linalg.norm(lin, axis=-1),
        (1 - th) * np.linalg.norm(u) + th * np.linalg.norm(v),
        rtol=1e-5,
    )
    # equal norms: raw SLERP stays on the sphere; orthogonal units: midpoint (e0 + e1)/√2
    w = v / np.linalg.norm(v) * np.linalg.norm(u)
    raw = geo.slerp(u[None], w[None], th)
    np.testing.assert_allclose(np.linalg.norm(raw, axis=-1), np.linalg.norm(u), rtol=1e-5)
    e0, e1 = np.eye(2, dtype=np.float32)
    np.testing.assert_allclose(geo.slerp(e0, e1, 0.5), [2**-0.5, 2**-0.5], atol=1e-6)
    np.testing.assert_allclose(geo.slerp(e0, 2 * e0, 0.5), 1.5 * e0, atol=1e-6)  # parallel


def test_vslerp_rotates_about_the_mean():
    rng = np.random.default_rng(1)
    m = np.r_[5.0, 0.0, 0.0, 0.0].astype(np.float32)
    d1, d2 = rng.normal(size=4), rng.normal(size=4)
    u = (m + 2 * d1 / np.linalg.norm(d1)).astype(np.float32)
    v = (m + 2 * d2 / np.linalg.norm(d2)).astype(np.float32)
    th = np.linspace(0, 1, 6, dtype=np.float32)
    out = geo.vslerp(u[None], v[None], th, 1.0, m)
    np.testing.assert_allclose(np.linalg.norm(out - m, axis=-1), 2.0, rtol=1e-5)  # on the shell
    np.testing.assert_allclose(out[0], u, atol=1e-5)
    np.testing.assert_allclose(out[-1], v, atol=1e-5)
    np.testing.assert_allclose(geo.vslerp(u, v, 0.3, 0.0, m), geo.slerp(u, v, 0.3), atol=1e-6)
    jitted = jax.jit(geo.vslerp)(u, v, 0.3, 0.7, m)
    np.testing.assert_allclose(jitted, geo.vslerp(u, v, 0.3, 0.7, m), atol=1e-6)
    with pytest.raises(ValueError, match="norm_mode"):
        geo.slerp(u, v, 0.5, norm_mode="cubic")


def test_summary_is_json_ready(planted):
    s = geo.double_ellipsoid_summary(planted["i"][0][:500], planted["t"][0][:500], top_k=3)
    assert s["separability_top_features"][:2] == list(SEP_FEATURES)
    json.dumps(s)


def test_bad_arguments():
    v, t = _small_pairs(n=6)
    with pytest.raises(ValueError, match="side must be"):
        geo.alpha_shift_loss_sweep(v, t, [0.0], side="both")
    with pytest.raises(ValueError, match=r"\(6, 12\) and \(5, 12\)"):
        geo.shift_loss_sweep(v, t[:5], [0.0])
    with pytest.raises(ValueError, match="coefficients"):
        geo.shift_loss_sweep(v, t, jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="mode must be"):
        geo.gap_shift_loss_sweep(v, t, [0.0], mode="up")
    with pytest.raises(ValueError, match="N >= 2"):
        geo.thin_shell(np.ones((1, 3)))
