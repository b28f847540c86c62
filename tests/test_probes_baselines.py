"""scikit-learn baselines: the thesis' SVC setting, LinearSVC, the CLIP-protocol logistic probe."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from jaxclip.probes import baselines
from jaxclip.probes.split import train_val_split

D, C = 10, 4


def _data(seed: int, n: int, sep: float, offset: float = 2.0):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(42).standard_normal((C, D)) * sep
    y = rng.integers(0, C, n)
    return (offset + centers[y] + rng.standard_normal((n, D))).astype(np.float32), y


def _separable(seed: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    return (np.eye(C, D)[y] * 10 + rng.standard_normal((n, D)) * 0.5).astype(np.float32), y


@pytest.mark.parametrize("fn", [baselines.svc_linear, baselines.linear_svc])
def test_svms_learn_separable_data(fn):
    x, y = _separable(0, 200)
    xt, yt = _separable(1, 100)
    r = fn(x, y, xt, yt)
    assert r.train_accuracy == 1.0 and r.test_accuracy == 1.0 and r.macro_f1 == 1.0
    assert r.C == 1.0 and r.fit_seconds > 0 and r.predict_seconds > 0


def test_svc_is_the_thesis_pipeline():
    x, y = _data(0, 300, 0.5)
    xt, yt = _data(1, 200, 0.5)
    r = baselines.svc_linear(x, y, xt, yt)
    ref = make_pipeline(StandardScaler(), SVC(kernel="linear", C=1.0, random_state=42))
    pred = ref.fit(x, y).predict(xt)
    assert r.test_accuracy == pytest.approx(np.mean(pred == yt))
    assert r.macro_f1 == pytest.approx(f1_score(yt, pred, average="macro"))
    assert r.train_accuracy == pytest.approx(ref.score(x, y))


def test_logistic_clip_protocol_chooses_on_validation_and_refits():
    x, y = _data(2, 400, 0.4)
    xv, yv = _data(3, 200, 0.4)
    xt, yt = _data(4, 200, 0.4)
    cs = [1e-3, 1e-1, 10.0]
    r = baselines.logistic_regression_clip(x, y, xt, yt, xv, yv, Cs=cs)
    val = {
        c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        .fit(x, y)
        .score(xv, yv)
        for c in cs
    }
    assert r.val_accuracy == pytest.approx(val)
    best = min(c for c in cs if val[c] == max(val.values()))
    assert r.C == best
    refit = make_pipeline(StandardScaler(), LogisticRegression(C=best, max_iter=1000))
    refit.fit(np.concatenate([x, xv]), np.concatenate([y, yv]))
    assert r.test_accuracy == pytest.approx(refit.score(xt, yt))


def test_logistic_sweep_one_result_per_c():
    x, y = _data(5, 200, 0.5)
    xt, yt = _data(6, 100, 0.5)
    rs = baselines.logistic_regression_sweep(x, y, xt, yt, Cs=[0.01, 1.0])
    assert [r.C for r in rs] == [0.01, 1.0]
    assert all(0.0 <= r.test_accuracy <= 1.0 and r.n_iter >= 1 for r in rs)


def test_rejects_bad_arguments():
    x, y = _data(7, 50, 0.5)
    with pytest.raises(ValueError, match="C must be"):
        baselines.svc_linear(x, y, x, y, C=0.0)
    with pytest.raises(ValueError, match="x_test"):
        baselines.linear_svc(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="val_fraction"):
        baselines.logistic_regression_clip(x, y, x, y, val_fraction=0.0)


def test_logistic_clip_draws_the_split_with_train_val_split():
    x, y = _data(3, 150, 1.0)
    drawn = baselines.logistic_regression_clip(x, y, x, y, Cs=(0.1, 1.0), seed=4)
    fit, val = train_val_split(len(y), 0.2, 4)
    given = baselines.logistic_regression_clip(x[fit], y[fit], x, y, x[val], y[val], Cs=(0.1, 1.0))
    assert drawn.val_accuracy == given.val_accuracy
    assert drawn.test_accuracy == given.test_accuracy
