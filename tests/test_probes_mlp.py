"""MLP probe: separable data, an independent optax reference loop, vmap == loop, save/load."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxclip.probes import io as probe_io
from jaxclip.probes import mlp
from jaxclip.probes.split import train_val_split

D, C = 6, 3


def _data(seed: int, n: int, sep: float):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(11).standard_normal((C, D)) * sep
    y = rng.integers(0, C, n)
    return (centers[y] + rng.standard_normal((n, D))).astype(np.float32), y


def test_separable_data_is_learned_perfectly():
    rng = np.random.default_rng(0)
    centers = np.eye(C, D) * 10.0
    y, yt = rng.integers(0, C, 300), rng.integers(0, C, 100)
    x = (centers[y] + rng.standard_normal((300, D)) * 0.5).astype(np.float32)
    xt = (centers[yt] + rng.standard_normal((100, D)) * 0.5).astype(np.float32)
    probe = mlp.fit_mlp(x, y, hidden=(16,), epochs=15, batch_size=32, learning_rates=(1e-2,))
    assert probe.score(xt, yt) == 1.0
    assert probe.val_accuracy == 1.0


def _reference_training(x, y, xv, yv, lr, wd, seed, data_seed, sizes, batch, epochs):
    """Plain Python loop over epochs and minibatches with optax.adamw (no dropout)."""
    params = mlp.init_mlp(jax.random.fold_in(jax.random.key(seed), 0), sizes)
    opt = optax.adamw(lr, weight_decay=wd, mask=[{"w": True, "b": False} for _ in params])
    state = opt.init(params)

    def loss_fn(p, xb, yb):
        h = xb
        for i, layer in enumerate(p):
            h = jnp.dot(h, layer["w"]) + layer["b"]
            if i < len(p) - 1:
                h = jnp.maximum(h, 0.0)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(logp[jnp.arange(yb.shape[0]), yb])

    n = x.shape[0]
    steps = n // batch
    history = []
    for e in range(epochs):
        perm = np.asarray(
            jax.random.permutation(jax.random.fold_in(jax.random.key(data_seed), e), n)
        )
        for s in range(steps):
            idx = perm[s * batch : (s + 1) * batch]
            g = jax.grad(loss_fn)(params, x[idx], y[idx])
            upd, state = opt.update(g, state, params)
            params = optax.apply_updates(params, upd)
        history.append(params)
    return history


def test_grid_matches_independent_optax_loop():
    x, y = _data(2, 96, 1.0)
    xv, yv = _data(3, 40, 1.0)
    sizes, batch, epochs = (D, 8, C), 16, 3
    members = [
        {"lr": 1e-2, "wd": 1e-3, "dropout": 0.0, "seed": 0},
        {"lr": 3e-3, "wd": 0.0, "dropout": 0.0, "seed": 5},
    ]
    out = mlp.train_mlp_members(
        jnp.asarray(x),
        jnp.asarray(y),
        jnp.asarray(xv),
        jnp.asarray(yv),
        members,
        data_seed=9,
        sizes=sizes,
        batch_size=batch,
        epochs=epochs,
        patience=epochs,
    )
    for g, m in enumerate(members):
        hist = _reference_training(
            x, y, xv, yv, m["lr"], m["wd"], m["seed"], 9, sizes, batch, epochs
        )
        best = int(out["best_epoch"][g])
        assert 1 <= best <= epochs
        for layer, ref in zip(out["params"], hist[best - 1]):
            np.testing.assert_allclose(layer["w"][g], ref["w"], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(layer["b"][g], ref["b"], rtol=1e-4, atol=1e-5)
        # Its recorded validation accuracy is that of those parameters.
        logits = mlp.mlp_apply(hist[best - 1], jnp.asarray(xv))
        acc = float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(yv)))
        assert float(out["best_val_acc"][g]) == pytest.approx(acc)


def test_vmap_equals_loop_with_dropout_and_early_stopping():
    x, y = _data(4, 128, 1.5)
    xv, yv = _data(5, 50, 1.5)
    members = mlp.grid_members((1e-2, 1e-3), (1e-4,), (0.0, 0.3), seeds=(0, 1))
    kw = {"sizes": (D, 12, C), "batch_size": 32, "epochs": 6, "patience": 2}
    args = [jnp.asarray(a) for a in (x, y, xv, yv)]
    vm = mlp.train_mlp_members(*args, members, mode="vmap", **kw)
    lp = mlp.train_mlp_members(*args, members, mode="loop", **kw)
    np.testing.assert_array_equal(vm["best_epoch"], lp["best_epoch"])
    np.testing.assert_array_equal(vm["epochs_run"], lp["epochs_run"])
    np.testing.assert_allclose(vm["best_val_acc"], lp["best_val_acc"])
    for a, b in zip(jax.tree.leaves(vm["params"]), jax.tree.leaves(lp["params"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_members_sharded_over_devices_equal_one_device():
    devices = jax.devices()
    if len(devices) < 2:
        pytest.skip("needs 2 devices (tests/conftest.py sets 2 virtual CPU devices)")
    x, y = _data(10, 96, 1.5)
    xv, yv = _data(11, 40, 1.5)
    members = mlp.grid_members((1e-2,), (1e-4,), (0.0, 0.2), seeds=(0, 1, 2))[:5]  # padded
    kw = {"sizes": (D, 8, C), "batch_size": 32, "epochs": 3, "patience": 3}
    args = [jnp.asarray(a) for a in (x, y, xv, yv)]
    one = mlp.train_mlp_members(*args, members, **kw)
    two = mlp.train_mlp_members(*args, members, devices=devices[:2], **kw)
    assert two["best_val_acc"].shape == (5,)
    np.testing.assert_allclose(two["best_val_acc"], one["best_val_acc"])
    for a, b in zip(jax.tree.leaves(one["params"]), jax.tree.leaves(two["params"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_early_stopping_stops_a_member_that_cannot_improve():
    x, y = _data(6, 64, 1.0)
    out = mlp.train_mlp_members(
        *(jnp.asarray(a) for a in (x, y, x, y)),
        [{"lr": 0.0, "wd": 0.0, "dropout": 0.0, "seed": 0}],
        sizes=(D, 4, C),
        batch_size=16,
        epochs=10,
        patience=2,
    )
    # Epoch 1 sets the best; epochs 2 and 3 bring nothing (lr = 0): stop after 3.
    assert int(out["epochs_run"][0]) == 3
    assert int(out["best_epoch"][0]) == 1
    assert np.isnan(np.asarray(out["val_acc"][0, 3:])).all()


def test_jit_equals_eager():
    x, y = _data(7, 24, 1.0)
    args = [jnp.asarray(a) for a in (x, y, x, y)]
    kw = {
        "lr": jnp.asarray([1e-2]),
        "wd": jnp.asarray([1e-4]),
        "dropout": jnp.asarray([0.2]),
        "seeds": jnp.asarray([3], jnp.uint32),
        "data_seed": jnp.asarray(1, jnp.uint32),
        "sizes": (D, 4, C),
        "batch_size": 8,
        "epochs": 2,
        "patience": 2,
    }
    jitted = mlp.train_mlp_grid(*args, **kw)
    with jax.disable_jit():
        eager = mlp.train_mlp_grid(*args, **kw)
    for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_save_load_same_predictions(tmp_path):
    x, y = _data(8, 120, 2.0)
    names = np.array(["a", "b", "c"])
    probe = mlp.fit_mlp(x, names[y], hidden=(8, 8), epochs=3, batch_size=32, seeds=(0, 1))
    path = probe_io.save_probe(probe, tmp_path / "mlp")
    loaded = probe_io.load_probe(path)
    assert isinstance(loaded, mlp.MLPProbe)
    np.testing.assert_array_equal(loaded.predict(x), probe.predict(x))
    np.testing.assert_array_equal(loaded.decision_function(x), probe.decision_function(x))
    assert loaded.config == probe.config and loaded.hidden == (8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"learning_rates": (-1.0,)}, "learning_rates"),
        ({"dropouts": (1.0,)}, "dropouts"),
        ({"hidden": (0,)}, "hidden"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    x, y = _data(9, 40, 1.0)
    with pytest.raises(ValueError, match=match):
        mlp.fit_mlp(x, y, **kwargs)


def test_default_validation_split_is_train_val_split():
    x, y = _data(5, 120, 2.0)
    kw = {"hidden": (8,), "epochs": 3, "batch_size": 32, "val_fraction": 0.3, "data_seed": 2}
    drawn = mlp.fit_mlp(x, y, **kw)
    fit, val = train_val_split(len(y), 0.3, 2)
    given = mlp.fit_mlp(x[fit], y[fit], x[val], y[val], **kw)
    assert drawn.grid == given.grid
    np.testing.assert_array_equal(drawn.params[0]["w"], given.params[0]["w"])
