"""JAX logistic-regression probe: scikit-learn parity, separable data, grid == loop, jit == eager."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from jaxclip.probes import linear
from jaxclip.probes.split import train_val_split

N, D, C = 600, 12, 4


def _overlapping(seed: int, n: int, offset: float = 3.0):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(123).standard_normal((C, D)) * 0.6
    y = rng.integers(0, C, n)
    x = means[y] + rng.standard_normal((n, D)) * np.linspace(0.5, 2.0, D) + offset
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    xtr, ytr = _overlapping(0, N)
    xte, yte = _overlapping(1, 300)
    return xtr, ytr, xte, yte


def _np_objective(w, b, x, y, l2):
    """float64 numpy reference of sklearn's multinomial objective."""
    w, b, x = (np.asarray(a, np.float64) for a in (w, b, x))
    z = x @ w.T + b
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return float(np.sum(lse - z[np.arange(len(y)), y]) + 0.5 * l2 * np.sum(w * w))


def test_objective_matches_float64_reference(data):
    xtr, ytr, _, _ = data
    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((C, D)), rng.standard_normal(C)
    xs = StandardScaler().fit_transform(xtr)
    got = float(linear.logistic_objective(w, b, xs, ytr, 0.7))
    assert got == pytest.approx(_np_objective(w, b, xs, ytr, 0.7), rel=1e-5)


@pytest.mark.parametrize("c_value", [0.02, 1.0, 50.0])
def test_matches_sklearn_at_same_c(data, c_value):
    xtr, ytr, xte, yte = data
    scaler = StandardScaler().fit(xtr)
    ref = LogisticRegression(C=c_value, tol=1e-10, max_iter=10_000).fit(scaler.transform(xtr), ytr)
    probe = linear.fit_logistic(xtr, ytr, l2_grid=[1.0 / c_value], tol=1e-6, max_iter=500)
    ref_pred = ref.predict(scaler.transform(xte))
    assert np.mean(probe.predict(xte) == ref_pred) >= 0.98
    assert abs(probe.score(xte, yte) - np.mean(ref_pred == yte)) <= 0.005
    # Same objective, same optimum: ours is no worse than sklearn's tight solution.
    xs = scaler.transform(xtr)
    f_ref = _np_objective(ref.coef_, ref.intercept_, xs, ytr, 1.0 / c_value)
    f_ours = _np_objective(probe.coef, probe.intercept, xs, ytr, 1.0 / c_value)
    assert f_ours <= f_ref * (1 + 1e-5)
    np.testing.assert_allclose(probe.coef, ref.coef_, atol=2e-3 * max(1.0, np.abs(ref.coef_).max()))
    np.testing.assert_allclose(
        probe.predict_proba(xte), ref.predict_proba(scaler.transform(xte)), atol=2e-3
    )


def test_binary_equals_sklearn_binomial_at_double_c():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    x = (rng.standard_normal((400, 6)) + 0.8 * y[:, None]).astype(np.float32)
    l2 = 2.0
    probe = linear.fit_logistic(x, y, l2_grid=[l2], tol=1e-7, max_iter=500)
    ref = LogisticRegression(C=2.0 / l2, tol=1e-10, max_iter=10_000)
    ref.fit(StandardScaler().fit_transform(x), y)
    v = probe.coef[1] - probe.coef[0]
    np.testing.assert_allclose(v, ref.coef_[0], atol=1e-3)
    np.testing.assert_allclose(probe.coef[0], -probe.coef[1], atol=1e-4)


def test_separable_data_is_learned_perfectly():
    rng = np.random.default_rng(3)
    centers = np.eye(C, D) * 10.0
    y = rng.integers(0, C, 200)
    x = (centers[y] + rng.standard_normal((200, D)) * 0.5).astype(np.float32)
    yt = rng.integers(0, C, 100)
    xt = (centers[yt] + rng.standard_normal((100, D)) * 0.5).astype(np.float32)
    probe = linear.fit_logistic(x, y, l2_grid=[1e-2, 1.0, 10.0])
    assert probe.score(x, y) == 1.0
    assert probe.score(xt, yt) == 1.0
    assert probe.train_accuracy == 1.0


def test_string_labels_round_trip(data):
    xtr, ytr, xte, _ = data
    names = np.array(["cat", "dog", "emu", "fox"])
    probe = linear.fit_logistic(xtr, names[ytr], l2_grid=[1.0])
    ref = linear.fit_logistic(xtr, ytr, l2_grid=[1.0])
    np.testing.assert_array_equal(probe.predict(xte), names[ref.predict(xte)])


def test_grid_solve_equals_loop_over_single_strengths(data):
    xtr, ytr, _, _ = data
    xs = jnp.asarray(StandardScaler().fit_transform(xtr), jnp.float32)
    y = jnp.asarray(ytr)
    l2 = jnp.asarray([0.01, 1.0, 30.0], jnp.float32)
    kw = {"n_classes": C, "max_iter": 25, "tol": 1e-5}
    grid = linear.solve_logistic_grid(xs, y, l2, **kw)
    for i in range(3):
        one = linear.solve_logistic_grid(xs, y, l2[i : i + 1], **kw)
        np.testing.assert_allclose(grid.coef[i], one.coef[0], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(grid.loss[i], one.loss[0], rtol=1e-6)
        assert int(grid.n_iter[i]) == int(one.n_iter[0])


def test_vmapped_feature_sets_equal_loop(data):
    xtr, ytr, _, _ = data
    xs = StandardScaler().fit_transform(xtr).astype(np.float32)
    sets = jnp.asarray(np.stack([xs, xs[:, ::-1] * 0.5, np.tanh(xs)]))
    y = jnp.asarray(ytr)
    l2 = jnp.asarray([[1.0], [0.3], [3.0]], jnp.float32)
    kw = {"n_classes": C, "max_iter": 25, "tol": 1e-5}
    batched = linear.solve_logistic_vmapped(sets, y, l2, **kw)
    for b in range(3):
        one = linear.solve_logistic_grid(sets[b], y, l2[b], **kw)
        np.testing.assert_allclose(batched.coef[b, 0], one.coef[0], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(batched.loss[b, 0], one.loss[0], rtol=1e-5)


def test_warm_path_reaches_the_cold_start_optima(data):
    xtr, ytr, _, _ = data
    xs = jnp.asarray(StandardScaler().fit_transform(xtr), jnp.float32)
    y = jnp.asarray(ytr)
    l2 = jnp.asarray([30.0, 1.0, 0.01], jnp.float32)
    kw = {"n_classes": C, "max_iter": 200, "tol": 1e-6}
    path = linear.solve_logistic_warm_path(xs, y, l2, **kw)
    cold = linear.solve_logistic_grid(xs, y, l2, **kw)
    np.testing.assert_allclose(path.loss, cold.loss, rtol=1e-5)
    np.testing.assert_allclose(path.coef, cold.coef, atol=5e-3)
    assert int(path.n_iter.sum()) < int(cold.n_iter.sum())
    sets = jnp.stack([xs, xs * 1.1, xs * 1.2])  # related feature sets, one strength each
    spath = linear.solve_logistic_warm_path(sets, y, jnp.ones(3), **kw)
    for i in range(3):
        one = linear.solve_logistic_grid(sets[i], y, jnp.ones(1), **kw)
        np.testing.assert_allclose(spath.loss[i], one.loss[0], rtol=1e-5)


def test_jit_equals_eager():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((40, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, 40))
    l2 = jnp.asarray([0.5, 2.0], jnp.float32)
    kw = {"n_classes": 3, "max_iter": 3, "tol": 0.0, "memory": 2}
    jitted = linear.solve_logistic_grid(x, y, l2, **kw)
    with jax.disable_jit():
        eager = linear.solve_logistic_grid(x, y, l2, **kw)
    np.testing.assert_allclose(jitted.coef, eager.coef, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jitted.loss, eager.loss, rtol=1e-5)


def test_clip_protocol_selects_by_validation_and_refits(data):
    xtr, ytr, _, _ = data
    xv, yv = _overlapping(7, 300)
    grid = [1e-2, 1.0, 100.0, 3000.0]
    probe = linear.fit_logistic(xtr, ytr, xv, yv, l2_grid=grid, tol=1e-6, max_iter=300)
    scaler = StandardScaler().fit(xtr)
    ref_acc = [
        LogisticRegression(C=1 / l2, tol=1e-10, max_iter=10_000)
        .fit(scaler.transform(xtr), ytr)
        .score(scaler.transform(xv), yv)
        for l2 in grid
    ]
    np.testing.assert_allclose(probe.val_accuracy, ref_acc, atol=0.01)
    assert probe.l2 == grid[linear.select_l2(grid, probe.val_accuracy)]
    # The refit is the sklearn model at the chosen C on train + val.
    xa, ya = np.concatenate([xtr, xv]), np.concatenate([ytr, yv])
    sa = StandardScaler().fit(xa)
    ref = LogisticRegression(C=1 / probe.l2, tol=1e-10, max_iter=10_000).fit(sa.transform(xa), ya)
    assert np.mean(probe.predict(xtr) == ref.predict(sa.transform(xtr))) >= 0.98


def test_train_val_split_is_the_rule_fit_logistic_uses(data):
    """Without a validation set, fit_logistic holds out exactly `train_val_split`'s rows."""
    xtr, ytr, _, _ = data
    grid = [1e-2, 1.0, 100.0]
    drawn = linear.fit_logistic(xtr, ytr, l2_grid=grid, refit=False, val_fraction=0.25, seed=3)
    fit, val = train_val_split(len(ytr), 0.25, 3)
    given = linear.fit_logistic(xtr[fit], ytr[fit], xtr[val], ytr[val], l2_grid=grid, refit=False)
    assert drawn.val_accuracy == given.val_accuracy
    np.testing.assert_array_equal(drawn.coef, given.coef)
    np.testing.assert_array_equal(drawn.mean, given.mean)


def test_select_l2_prefers_strongest_on_ties():
    assert linear.select_l2([0.1, 1.0, 10.0], [0.5, 0.7, 0.7]) == 2
    assert linear.select_l2([0.1, 1.0, 10.0], [0.9, 0.7, 0.7]) == 0


def test_path_reports_every_strength(data):
    xtr, ytr, xte, yte = data
    path = linear.logistic_path(xtr, ytr, [0.1, 10.0], {"test": (xte, yte)})
    assert path.accuracy["test"].shape == (2,)
    assert path.probe(1).score(xte, yte) == pytest.approx(float(path.accuracy["test"][1]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"l2_grid": [-1.0]}, "l2_grid"),
        ({"l2_grid": []}, "l2_grid"),
        ({"val_fraction": 1.5, "l2_grid": [1.0, 2.0]}, "val_fraction"),
    ],
)
def test_rejects_bad_arguments(data, kwargs, match):
    xtr, ytr, _, _ = data
    with pytest.raises(ValueError, match=match):
        linear.fit_logistic(xtr, ytr, **kwargs)


def test_rejects_bad_shapes_and_unknown_labels(data):
    xtr, ytr, xte, _ = data
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        linear.fit_logistic(xtr[:, 0], ytr)
    with pytest.raises(ValueError, match="not seen in training"):
        linear.logistic_path(xtr, ytr, [1.0], {"test": (xte, np.full(len(xte), 99))})
    probe = linear.fit_logistic(xtr, ytr, l2_grid=[1.0])
    with pytest.raises(ValueError, match="features"):
        probe.predict(xte[:, :3])


def test_save_load_same_predictions(data, tmp_path):
    from jaxclip.probes import io as probe_io

    xtr, ytr, xte, _ = data
    probe = linear.fit_logistic(xtr, ytr, l2_grid=[0.1, 10.0])
    path = probe_io.save_probe(probe, tmp_path / "sub" / "linear.npz")
    loaded = probe_io.load_probe(path)
    np.testing.assert_array_equal(loaded.predict(xte), probe.predict(xte))
    np.testing.assert_array_equal(loaded.predict_proba(xte), probe.predict_proba(xte))
    assert loaded.l2 == probe.l2 and loaded.val_accuracy == probe.val_accuracy
    assert not list(path.parent.glob("*.tmp"))
    path.write_bytes(b"not a probe")
    with pytest.raises(Exception):  # noqa: B017 - any load error; numpy raises several kinds
        probe_io.load_probe(path)
