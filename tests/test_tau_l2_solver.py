"""x / tau at l2 vs x at l2 tau^2 on raw pixel-scale features: both sides reach the optimum.

scikit-learn's digits pixels (0..16, unstandardised) at tau = 0.07 and 0.02 are where the
float32 L-BFGS alone stops percents above the optimum; the float64 Newton polish of
`tau_l2_equivalence` must reach its gradient tolerance there, and both sides' objectives must
equal scikit-learn's own float64 optimum (newton-cholesky, tight tol).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from jaxclip.analysis import logits as L
from jaxclip.probes import linear
from jaxclip.studies.class_agnostic_render_tau import equivalence_sentence

TAUS = (0.07, 0.02)
POLISH_TOL = 1e-9
REL_OBJ = 1e-7  # stated agreement of each side with the reference optimum (relative)


def objective64(w, b, x, y, l2):
    """sum_n CE(W x_n + b, y_n) + l2 / 2 ||W||^2 in float64 (written here, not jaxclip's)."""
    z = x @ w.T + b
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return float(np.sum(lse - z[np.arange(len(y)), y]) + 0.5 * l2 * np.sum(w * w))


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te = idx[:300], idx[300:500]
    return x[tr].astype(np.float32), y[tr], x[te].astype(np.float32), y[te]


@pytest.fixture(scope="module")
def rows(digits):
    xtr, ytr, xte, yte = digits
    return L.tau_l2_equivalence(
        xtr, ytr, xte, yte, taus=TAUS, l2=1.0, max_iter=100, polish_tol=POLISH_TOL
    )


def reference_optimum(x, y, l2):
    """scikit-learn's multinomial optimum in float64: C * sum CE + ||W||^2 / 2 has the
    minimiser of sum CE + l2 / 2 ||W||^2 at C = 1 / l2 (intercept unpenalised in both)."""
    with threadpool_limits(limits=1, user_api="blas"):
        ref = LogisticRegression(C=1.0 / l2, solver="newton-cholesky", tol=1e-12, max_iter=200)
        ref.fit(x.astype(np.float64), y)
    return objective64(ref.coef_, ref.intercept_, x.astype(np.float64), y, l2)


def test_both_sides_reach_the_reference_optimum(digits, rows):
    xtr, ytr, _, _ = digits
    for r in rows:
        tau = r["tau"]
        f_ref = reference_optimum(xtr, ytr, tau**2)  # the right side; the left equals it
        assert r["converged_left"] and r["converged_right"], r
        assert r["polished"] and max(r["grad_left"], r["grad_right"]) <= POLISH_TOL
        assert abs(r["objective_left"] - f_ref) <= REL_OBJ * f_ref, (tau, r, f_ref)
        assert abs(r["objective_right"] - f_ref) <= REL_OBJ * f_ref, (tau, r, f_ref)
        assert r["objective_gap"] <= 2 * REL_OBJ
        assert r["same_predictions"] == 1.0
    s = equivalence_sentence(rows)
    gap = max(r["objective_gap"] for r in rows)
    assert s.startswith(f"Objectives equal within {gap:.1e} (relative)"), s


def test_lbfgs_alone_is_reported_unconverged(digits):
    """Without the polish the float32 L-BFGS stops short here, and says so."""
    xtr, ytr, xte, yte = digits
    (r,) = L.tau_l2_equivalence(
        xtr, ytr, xte, yte, taus=(0.02,), l2=1.0, max_iter=100, polish_tol=None
    )
    assert not r["polished"] and not r["converged_left"]
    f_ref = reference_optimum(xtr, ytr, 0.02**2)
    assert r["objective_left"] > (1 + 1e-3) * f_ref  # measurably above the optimum
    assert "equal" not in equivalence_sentence([r]).lower()


def test_polish_on_clip_like_cosines():
    """Raw cosines to K prompts (all close to one another): nearly collinear columns."""
    rng = np.random.default_rng(3)
    d, k, c, n = 32, 16, 5, 300
    means = rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    emb = 3.0 + 0.8 * means[y] + rng.standard_normal((n, d))
    prompts = 1.0 + 0.3 * rng.standard_normal((k, d))
    z = np.asarray(L.prompt_logits(emb, prompts), np.float64)
    assert z.max() - z.min() < 0.3 and np.linalg.cond(z) > 300  # a narrow band of cosines
    for tau in TAUS:
        x = z / tau
        start = linear.fit_logistic(x, y, l2_grid=[1.0], standardize=False, max_iter=50)
        pol = linear.polish_logistic_newton(start.coef, start.intercept, x, y, 1.0, tol=1e-9)
        assert pol.converged and pol.grad_max <= 1e-9 and pol.decrement <= 1e-12 * pol.loss
        assert pol.grad_max == pytest.approx(
            linear.logistic_grad_measure64(pol.coef, pol.intercept, x, y, 1.0), rel=1e-3, abs=1e-12
        )
        f_ref = reference_optimum(x, y, 1.0)
        assert abs(pol.loss - f_ref) <= REL_OBJ * f_ref
        assert pol.loss == pytest.approx(objective64(pol.coef, pol.intercept, x, y, 1.0), rel=1e-12)


def test_polish_rejects_bad_input():
    w, b, x, y = np.zeros((3, 4)), np.zeros(3), np.ones((5, 4)), np.zeros(5, int)
    with pytest.raises(ValueError, match="l2 must be positive; got 0"):
        linear.polish_logistic_newton(w, b, x, y, 0.0)
    with pytest.raises(ValueError, match=r"need coef \(C, D\)"):
        linear.polish_logistic_newton(w, b, x[:, :3], y, 1.0)
    too_big = np.zeros((2, linear.POLISH_MAX_PARAMS))
    with pytest.raises(ValueError, match="dense Newton polish allows at most"):
        linear.polish_logistic_newton(
            too_big, np.zeros(2), np.ones((3, too_big.shape[1])), y[:3], 1.0
        )
