"""MLP probes trained for a whole grid of hyper-parameters and seeds in one jitted computation.

Model: x -> standardise -> [Dense -> ReLU -> Dropout] * len(hidden) -> Dense -> logits;
loss: mean softmax cross-entropy over a minibatch; optimiser: optax.adamw (decoupled weight
decay on the kernels only, Loshchilov & Hutter 2019); early stopping on validation accuracy
(the best epoch's parameters are kept; a member stops once `patience` epochs pass without a
better validation accuracy).

Grid: G members = every (learning rate, weight decay, dropout) x every seed. A seed sets the
member's initialisation and dropout masks; the minibatch order is shared by all members (it
comes from `data_seed`), so the first layer of the whole grid is ONE (B, D) x (D, G * H)
matmul per step (vmap turns the unbatched input into a shared operand). The epoch loop is a
`lax.while_loop` that ends when every member has stopped; a stopped member's parameters are
frozen exactly, so member g's result equals a run of member g alone (`mode="loop"`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxclip.probes import linear
from jaxclip.probes.classifier import Classifier
from jaxclip.probes.split import train_val_split

Params = list[dict[str, jax.Array]]


def init_mlp(key: jax.Array, sizes: Sequence[int]) -> Params:
    """LeCun-normal kernels (flax.linen.Dense's default), zero biases; sizes = (D, *hidden, C)."""
    init = jax.nn.initializers.lecun_normal()
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": init(k, (a, b), jnp.float32), "b": jnp.zeros((b,), jnp.float32)}
        for k, a, b in zip(keys, sizes[:-1], sizes[1:])
    ]


def mlp_apply(
    params: Params, x: jax.Array, dropout: jax.Array | float = 0.0, key: jax.Array | None = None
) -> jax.Array:
    """Logits (N, C). With `key`, inverted dropout of rate `dropout` after each hidden ReLU."""
    h = x
    for i, layer in enumerate(params):
        h = h @ layer["w"] + layer["b"]
        if i < len(params) - 1:
            h = jax.nn.relu(h)
            if key is not None:
                keep = 1.0 - dropout
                mask = jax.random.bernoulli(jax.random.fold_in(key, i), keep, h.shape)
                h = jnp.where(mask, h / keep, 0.0)
    return h


def _optimizer(lr: jax.Array, wd: jax.Array, params: Params) -> optax.GradientTransformation:
    mask = [{"w": True, "b": False} for _ in params]
    return optax.adamw(learning_rate=lr, weight_decay=wd, mask=mask)


def _member_step(p, s, xb, yb, key, a, b, r, *, use_dropout: bool):
    """One adamw step of one member on a minibatch: (params, optimiser state, loss)."""

    def loss_fn(p):
        logits = mlp_apply(p, xb, r, key if use_dropout else None)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, s = _optimizer(a, b, p).update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss


def _val_accuracy(p: Params, x_pad: jax.Array, y_val: jax.Array, chunk: int) -> jax.Array:
    """Accuracy of one member on the validation rows, `x_pad` zero-padded to a multiple of
    `chunk` rows (evaluated `chunk` rows at a time; the padding is not counted)."""
    nv = y_val.shape[0]

    def part(i):
        xs = jax.lax.dynamic_slice_in_dim(x_pad, i, chunk)
        return jnp.argmax(mlp_apply(p, xs), axis=-1)

    preds = jnp.concatenate([part(i) for i in range(0, x_pad.shape[0], chunk)])
    return jnp.mean((preds[:nv] == y_val).astype(jnp.float32))


@functools.partial(
    jax.jit,
    static_argnames=("sizes", "batch_size", "epochs", "patience", "eval_batch", "use_dropout"),
)
def train_mlp_grid(
    x: jax.Array,
    y: jax.Array,
    x_val: jax.Array,
    y_val: jax.Array,
    lr: jax.Array,
    wd: jax.Array,
    dropout: jax.Array,
    seeds: jax.Array,
    data_seed: jax.Array,
    *,
    sizes: tuple[int, ...],
    batch_size: int,
    epochs: int,
    patience: int,
    eval_batch: int = 8192,
    use_dropout: bool = True,
) -> dict[str, jax.Array]:
    """Trains G MLPs (one per entry of lr / wd / dropout / seeds, all (G,)) in one computation.

    Args:
      x, y: (N, D) float32 standardised training features, (N,) int labels.
      x_val, y_val: validation split for early stopping.
      lr, wd, dropout: (G,) learning rate, adamw weight decay, dropout rate per member.
      seeds: (G,) int seeds (initialisation and dropout).
      data_seed: int seed of the shared minibatch order.
      sizes: (D, *hidden, C) layer sizes (static).
      batch_size, epochs, patience: static training settings (the last partial batch of an
        epoch is dropped).
      use_dropout: False skips the dropout masks altogether (static; their random bits cost
        as much as the small matmuls when every rate is 0).

    Returns:
      {"params": best-epoch params (leading G axis), "best_val_acc": (G,), "best_epoch": (G,),
       "val_acc": (G, epochs) per-epoch validation accuracy (nan after a member stopped),
       "train_loss": (G, epochs) mean minibatch loss, "epochs_run": (G,)}.
    """
    n = x.shape[0]
    g_ = lr.shape[0]
    steps = max(n // batch_size, 1)
    bs = min(batch_size, n)
    keys = jax.vmap(jax.random.key)(seeds)
    params = jax.vmap(lambda k: init_mlp(jax.random.fold_in(k, 0), sizes))(keys)
    opt_states = jax.vmap(lambda p, a, b: _optimizer(a, b, p).init(p))(params, lr, wd)

    member_step = functools.partial(_member_step, use_dropout=use_dropout)
    vstep = jax.vmap(member_step, in_axes=(0, 0, None, None, 0, 0, 0, 0))
    nv = x_val.shape[0]
    eval_batch_ = min(eval_batch, nv)
    nv_pad = -(-nv // eval_batch_) * eval_batch_
    if nv_pad != nv:
        x_val = jnp.concatenate([x_val, jnp.zeros((nv_pad - nv, x_val.shape[1]), x_val.dtype)])

    def epoch_body(st):
        e = st["epoch"]
        perm = jax.random.permutation(jax.random.fold_in(jax.random.key(data_seed), e), n)
        idx = perm[: steps * bs].reshape(steps, bs)
        active = st["active"]

        def step(carry, i):
            p, s = carry
            xb, yb = x[idx[i]], y[idx[i]]
            step_keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, e + 1), i))(
                keys
            )
            p2, s2, loss = vstep(p, s, xb, yb, step_keys, lr, wd, dropout)
            keep = lambda new, old: jnp.where(
                active.reshape((g_,) + (1,) * (new.ndim - 1)), new, old
            )
            return (jax.tree.map(keep, p2, p), jax.tree.map(keep, s2, s)), loss

        (p, s), losses = jax.lax.scan(step, (st["params"], st["opt"]), jnp.arange(steps))
        acc = jax.vmap(lambda q: _val_accuracy(q, x_val, y_val, eval_batch_))(p)
        better = active & (acc > st["best_val_acc"])
        sel = lambda new, old: jnp.where(better.reshape((g_,) + (1,) * (new.ndim - 1)), new, old)
        bad = jnp.where(better, 0, st["bad"] + active.astype(jnp.int32))
        return {
            "epoch": e + 1,
            "params": p,
            "opt": s,
            "best": jax.tree.map(sel, p, st["best"]),
            "best_val_acc": jnp.where(better, acc, st["best_val_acc"]),
            "best_epoch": jnp.where(better, e + 1, st["best_epoch"]),
            "bad": bad,
            "active": active & (bad < patience),
            "val_acc": st["val_acc"].at[:, e].set(jnp.where(active, acc, jnp.nan)),
            "train_loss": st["train_loss"]
            .at[:, e]
            .set(jnp.where(active, jnp.mean(losses, axis=0), jnp.nan)),
            "epochs_run": st["epochs_run"] + active.astype(jnp.int32),
        }

    st = {
        "epoch": jnp.asarray(0, jnp.int32),
        "params": params,
        "opt": opt_states,
        "best": params,
        "best_val_acc": jnp.full((g_,), -1.0, jnp.float32),
        "best_epoch": jnp.zeros((g_,), jnp.int32),
        "bad": jnp.zeros((g_,), jnp.int32),
        "active": jnp.ones((g_,), bool),
        "val_acc": jnp.full((g_, epochs), jnp.nan, jnp.float32),
        "train_loss": jnp.full((g_, epochs), jnp.nan, jnp.float32),
        "epochs_run": jnp.zeros((g_,), jnp.int32),
    }
    st = jax.lax.while_loop(
        lambda st: (st["epoch"] < epochs) & jnp.any(st["active"]), epoch_body, st
    )
    return {
        "params": st["best"],
        "best_val_acc": st["best_val_acc"],
        "best_epoch": st["best_epoch"],
        "val_acc": st["val_acc"],
        "train_loss": st["train_loss"],
        "epochs_run": st["epochs_run"],
    }


def train_mlp_members(
    x: jax.Array,
    y: jax.Array,
    x_val: jax.Array,
    y_val: jax.Array,
    members: Sequence[dict[str, float]],
    *,
    data_seed: int = 0,
    mode: str = "vmap",
    devices: Sequence[Any] | None = None,
    **static: Any,
) -> dict[str, jax.Array]:
    """`train_mlp_grid` for a list of members {"lr", "wd", "dropout", "seed"}.

    mode="vmap": one call for all members; mode="loop": a Python loop over the same jitted
    function with one member per call (the reference; same results, used for timing).
    devices: with mode="vmap", shard the member axis over these devices (the data is
    replicated; members are padded to a multiple of the device count). On a CPU host run
    with XLA_FLAGS=--xla_force_host_platform_device_count=<cores>, this puts each core to
    work on its own members: XLA runs the grid's small batched ops on one thread otherwise.
    """
    if mode not in ("vmap", "loop"):
        raise ValueError(f"mode must be 'vmap' or 'loop'; got {mode!r}")
    if not members:
        raise ValueError("need at least one grid member")
    cols = {
        "lr": np.asarray([m["lr"] for m in members], np.float32),
        "wd": np.asarray([m["wd"] for m in members], np.float32),
        "dropout": np.asarray([m["dropout"] for m in members], np.float32),
        "seeds": np.asarray([m["seed"] for m in members], np.uint32),
    }
    ds = jnp.asarray(data_seed, jnp.uint32)
    static = {"use_dropout": any(m["dropout"] > 0 for m in members), **static}
    g_ = len(members)
    if mode == "vmap":
        data = (x, y, x_val, y_val)
        if devices is not None and len(devices) > 1:
            from jax.sharding import Mesh, NamedSharding, PartitionSpec

            mesh = Mesh(np.asarray(devices), ("members",))
            pad = (-g_) % len(devices)
            cols = {k: np.concatenate([v, np.repeat(v[-1:], pad)]) for k, v in cols.items()}
            cols = {
                k: jax.device_put(v, NamedSharding(mesh, PartitionSpec("members")))
                for k, v in cols.items()
            }
            data = tuple(jax.device_put(a, NamedSharding(mesh, PartitionSpec())) for a in data)
        out = train_mlp_grid(*data, **cols, data_seed=ds, **static)
        return jax.tree.map(lambda a: a[:g_], out)
    outs = [
        train_mlp_grid(
            x, y, x_val, y_val, **{k: v[i : i + 1] for k, v in cols.items()}, data_seed=ds, **static
        )
        for i in range(g_)
    ]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


@dataclasses.dataclass
class MLPProbe(Classifier):
    """A trained MLP probe (the grid member with the best validation accuracy).

    Attributes:
      params: [{"w": (in, out), "b": (out,)}] numpy arrays; mean, scale: the standardiser;
      classes: original label values; hidden: hidden sizes; config: the chosen member's
      {"lr", "wd", "dropout", "seed"}; val_accuracy: its best validation accuracy;
      best_epoch: the epoch it was taken from; grid: one dict per member (its settings,
      best_val_acc, best_epoch, epochs_run); seconds: training wall time.
    """

    params: list[dict[str, np.ndarray]]
    mean: np.ndarray
    scale: np.ndarray
    classes: np.ndarray
    hidden: tuple[int, ...]
    config: dict[str, float]
    val_accuracy: float = float("nan")
    best_epoch: int = 0
    grid: list[dict[str, float]] = dataclasses.field(default_factory=list)
    seconds: float = float("nan")

    def decision_function(self, x: Any) -> np.ndarray:
        """(N, C) logits."""
        x = np.asarray(x, dtype=np.float32)
        d = self.params[0]["w"].shape[0]
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"expected (N, {d}) features; got shape {x.shape}")
        h = (x - self.mean) / self.scale
        for i, layer in enumerate(self.params):
            h = h @ layer["w"] + layer["b"]
            if i < len(self.params) - 1:
                h = np.maximum(h, 0.0)
        return h.astype(np.float32)


def grid_members(
    learning_rates: Sequence[float] = (1e-3,),
    weight_decays: Sequence[float] = (1e-4,),
    dropouts: Sequence[float] = (0.0,),
    seeds: Sequence[int] = (0,),
) -> list[dict[str, float]]:
    """Every combination, seeds innermost: [{"lr", "wd", "dropout", "seed"}, ...]."""
    for name, vals, lo, hi in (
        ("learning_rates", learning_rates, 0.0, np.inf),
        ("weight_decays", weight_decays, -1e-300, np.inf),
        ("dropouts", dropouts, -1e-300, 1.0),
    ):
        v = np.asarray(vals, dtype=np.float64)
        if v.size == 0 or not np.all((v > lo) & (v < hi)):
            raise ValueError(f"{name} must be non-empty, in ({lo:g}, {hi:g}); got {list(vals)}")
    if len(seeds) == 0:
        raise ValueError("seeds must be non-empty")
    return [
        {"lr": float(a), "wd": float(b), "dropout": float(c), "seed": int(s)}
        for a, b, c, s in itertools.product(learning_rates, weight_decays, dropouts, seeds)
    ]


def fit_mlp(
    x_train: Any,
    y_train: Any,
    x_val: Any = None,
    y_val: Any = None,
    *,
    hidden: Sequence[int] = (512,),
    learning_rates: Sequence[float] = (1e-3,),
    weight_decays: Sequence[float] = (1e-4,),
    dropouts: Sequence[float] = (0.0,),
    seeds: Sequence[int] = (0,),
    batch_size: int = 256,
    epochs: int = 30,
    patience: int = 5,
    standardize: bool = True,
    val_fraction: float = 0.2,
    data_seed: int = 0,
    mode: str = "vmap",
    devices: Sequence[Any] | None = None,
) -> MLPProbe:
    """Trains the whole grid (hyper-parameters x seeds) at once and keeps the best member.

    Args:
      x_train, y_train: (N, D) features, (N,) labels.
      x_val, y_val: validation split (default: a random `val_fraction` of the training set,
        `jaxclip.probes.split.train_val_split`).
      hidden: hidden layer sizes (() gives a linear softmax model trained by adamw).
      learning_rates, weight_decays, dropouts, seeds: the grid (every combination).
      batch_size, epochs, patience: training schedule and early stopping.
      standardize: StandardScaler fitted on the training split.
      data_seed: seed of the (shared) minibatch order and of the validation split.
      mode: "vmap" (one computation) or "loop" (Python loop over members; same results).
      devices: shard the member axis over these devices (see `train_mlp_members`).

    Returns:
      MLPProbe (best validation accuracy; ties: the first member in grid order).
    """
    import time

    x_train, y_train = linear._check_xy(x_train, y_train, "train")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is None:
        ti, vi = train_val_split(x_train.shape[0], val_fraction, data_seed)
        x_train, y_train, x_val, y_val = x_train[ti], y_train[ti], x_train[vi], y_train[vi]
    else:
        x_val, y_val = linear._check_xy(x_val, y_val, "val")
    if x_val.shape[1] != x_train.shape[1]:
        raise ValueError(f"val has {x_val.shape[1]} features; train has {x_train.shape[1]}")
    hidden = tuple(int(h) for h in hidden)
    if any(h < 1 for h in hidden):
        raise ValueError(f"hidden sizes must be >= 1; got {hidden}")
    for name, v in (("batch_size", batch_size), ("epochs", epochs), ("patience", patience)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1; got {v}")
    members = grid_members(learning_rates, weight_decays, dropouts, seeds)
    classes = np.unique(np.concatenate([y_train, y_val]))
    scaler = linear.fit_standardizer(x_train, standardize)
    xs = jnp.asarray(scaler.transform(x_train))
    xv = jnp.asarray(scaler.transform(x_val))
    yi = jnp.asarray(linear._encode_labels(classes, y_train, "y_train"))
    yv = jnp.asarray(linear._encode_labels(classes, y_val, "y_val"))
    sizes = (x_train.shape[1], *hidden, int(classes.size))
    t0 = time.perf_counter()
    out = train_mlp_members(
        xs,
        yi,
        xv,
        yv,
        members,
        data_seed=data_seed,
        mode=mode,
        devices=devices,
        sizes=sizes,
        batch_size=int(batch_size),
        epochs=int(epochs),
        patience=int(patience),
    )
    jax.block_until_ready(out)
    seconds = time.perf_counter() - t0
    acc = np.asarray(out["best_val_acc"])
    best = int(np.argmax(acc))
    grid = [
        {
            **m,
            "best_val_acc": float(acc[i]),
            "best_epoch": int(out["best_epoch"][i]),
            "epochs_run": int(out["epochs_run"][i]),
        }
        for i, m in enumerate(members)
    ]
    params = [{k: np.asarray(v[best]) for k, v in layer.items()} for layer in out["params"]]
    return MLPProbe(
        params=params,
        mean=scaler.mean,
        scale=scaler.scale,
        classes=classes,
        hidden=hidden,
        config=members[best],
        val_accuracy=float(acc[best]),
        best_epoch=int(out["best_epoch"][best]),
        grid=grid,
        seconds=seconds,
    )
