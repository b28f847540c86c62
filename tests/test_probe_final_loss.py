"""The reported final loss is the objective at the returned coefficients (numpy float64)."""

import numpy as np
from scipy.special import logsumexp
from sklearn.datasets import load_digits

from jaxclip.probes import linear


def _objective64(w, b, x, y, l2):
    w, b, x = (np.asarray(a, np.float64) for a in (w, b, x))
    z = x @ w.T + b
    nll = logsumexp(z, axis=1) - z[np.arange(len(y)), y]
    return float(np.sum(nll) + 0.5 * l2 * np.sum(w * w))


def test_reported_loss_is_objective_at_solution():
    x, y = load_digits(return_X_y=True)
    l2 = np.array([1e-2, 1.0])  # sklearn C = 100 and 1
    path = linear.logistic_path(x, y, l2, max_iter=300)
    xs = path.standardizer.transform(x).astype(np.float32)
    for g in range(2):
        sol = path.solution
        ref = _objective64(sol.coef[g], sol.intercept[g], xs, y, l2[g])
        assert abs(path.loss[g] - ref) <= 1e-12 * abs(ref), (g, path.loss[g], ref)
        # the solver's own float32 value is recomputed at the solution too, not a running sum
        assert abs(float(sol.loss[g]) - ref) <= 2e-5 * abs(ref), (g, float(sol.loss[g]), ref)
