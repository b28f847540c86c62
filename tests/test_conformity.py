"""Tests for jaxclip.analysis.conformity against float64 NumPy N×N references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclip.analysis import conformity as conf


def _shell(n=300, d=16, offset=3.0, seed=0):
    """A Gaussian ellipsoid shell shifted away from the origin (anisotropic, tilted)."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(0.3, 2.0, d)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mean = offset * rng.normal(size=d) / np.sqrt(d) * 3
    return mean + (rng.normal(size=(n, d)) * scales) @ q.T


def _naive(x, ref=None, sim="cos"):
    """The definition, Eq. 10 of Levi & Gilboa, as an N×N float64 matrix."""
    x = np.asarray(x, np.float64)
    r = x if ref is None else np.asarray(ref, np.float64)
    if sim == "cos":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        rn = r / np.linalg.norm(r, axis=1, keepdims=True)
        s = xn @ rn.T
    else:
        s = x @ r.T
    if ref is None:
        np.fill_diagonal(s, 0.0)
        return s.sum(1) / (len(x) - 1)
    return s.mean(1)


def test_closed_form_equals_naive_float64():
    x = _shell()
    np.testing.assert_allclose(conf.conformity(x), _naive(x), rtol=0, atol=1e-13)
    r = _shell(n=77, seed=1)
    np.testing.assert_allclose(conf.conformity(x, r), _naive(x, r), rtol=0, atol=1e-13)


@pytest.mark.parametrize("block", [1, 64, 97, 300, 1000])
def test_blockwise_equals_naive(block):
    x = _shell(seed=2)
    ref = _naive(x)
    got = conf.conformity_blockwise(jnp.asarray(x, jnp.float32), block_size=block)
    np.testing.assert_allclose(np.asarray(got), ref, atol=2e-6)
    got_full = conf.conformity_blockwise(x.astype(np.float32), block_size=block, symmetric=False)
    np.testing.assert_allclose(np.asarray(got_full), ref, atol=2e-6)


def test_blockwise_reference_set_and_other_similarity():
    x, r = _shell(n=130, seed=3), _shell(n=71, seed=4)
    got = conf.conformity_blockwise(x.astype(np.float32), r.astype(np.float32), block_size=32)
    np.testing.assert_allclose(np.asarray(got), _naive(x, r), atol=2e-6)
    dots = conf.conformity_blockwise(
        x.astype(np.float32), similarity=conf.dot_similarity, block_size=40
    )
    np.testing.assert_allclose(np.asarray(dots), _naive(x, sim="dot"), rtol=1e-5)


def test_jax_closed_form_jit_equals_eager_and_numpy():
    x = _shell(seed=5).astype(np.float32)
    eager = conf.conformity(jnp.asarray(x))
    jitted = jax.jit(conf.conformity)(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-7)
    np.testing.assert_allclose(np.asarray(eager), _naive(x), atol=1e-6)
    assert conf.conformity(x).dtype == np.float64  # NumPy path is float64


def test_estimate_normalised_mean_is_exact_and_raw_mean_close():
    x = _shell(n=500, offset=4.0, seed=6)
    est = conf.conformity_estimate(x)
    np.testing.assert_allclose(est.conformity, _naive(x), atol=1e-13)
    nf = est.normalised
    assert abs(nf.pearson - 1.0) < 1e-9
    np.testing.assert_allclose(nf.a, nf.a_exact, rtol=1e-9)
    np.testing.assert_allclose(nf.b, nf.b_exact, atol=1e-12)
    np.testing.assert_allclose(nf.b_exact, -1 / 499)
    assert nf.max_abs_error < 1e-12
    # the paper's estimate with the raw mean: an excellent approximation on shifted shells
    assert est.raw.pearson > 0.99
    assert np.isnan(est.raw.a_exact)
    # by hand: cos to the mean of the normalised vectors
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    m = xn.mean(0)
    np.testing.assert_allclose(nf.cos_to_mean, xn @ m / np.linalg.norm(m), atol=1e-13)


def test_estimate_with_reference_set():
    x, r = _shell(n=60, seed=7), _shell(n=90, seed=8)
    est = conf.conformity_estimate(x, r)
    np.testing.assert_allclose(est.conformity, _naive(x, r), atol=1e-13)
    rn = r / np.linalg.norm(r, axis=1, keepdims=True)
    np.testing.assert_allclose(est.normalised.a_exact, np.linalg.norm(rn.mean(0)))
    assert est.normalised.b_exact == 0.0 and abs(est.normalised.pearson - 1) < 1e-9


def test_under_shift_equals_loop_of_closed_form():
    x = _shell(n=120, seed=9).astype(np.float32)
    alphas = np.linspace(-1.0, 1.0, 9).astype(np.float32)
    got = np.asarray(conf.conformity_under_shift(jnp.asarray(x), alphas))
    m = x.astype(np.float64).mean(0)
    for k, a in enumerate(alphas):
        ref = _naive(x.astype(np.float64) - float(a) * m)
        np.testing.assert_allclose(got[k], ref, atol=5e-6, err_msg=f"alpha={a}")
    jitted = jax.jit(conf.conformity_under_shift)(jnp.asarray(x), alphas)
    np.testing.assert_allclose(np.asarray(jitted), got, atol=1e-6)


def test_pearson_and_bad_inputs():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    assert conf.pearson(a, 3 * a + 1) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        conf.conformity(np.zeros(5))
    with pytest.raises(ValueError, match="N >= 2"):
        conf.conformity(np.ones((1, 3)))
    with pytest.raises(ValueError, match="differ in D"):
        conf.conformity(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="block_size"):
        conf.conformity_blockwise(np.ones((4, 3), np.float32), block_size=0)
