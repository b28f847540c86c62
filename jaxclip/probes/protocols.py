"""Linear-probe protocols of the literature, selectable with `config.probe.protocol`.

- `jaxclip`: the study's own probes (`jaxclip.probes.protocol`), unchanged.
- `clip_paper`: the CLIP paper's (Radford et al., 2021, appendix A.3): L-BFGS multinomial
  logistic regression on the raw features, the L2 strength chosen on a held-out validation split
  of train from `CLIP_PAPER_L2_GRID`, then refit on all train rows, at most 1000 iterations.
  The paper searched lambda with a parametric binary search; a dense log grid is used here.
- `clip_benchmark`: CLIP_benchmark's (`clip_benchmark.metrics.linear_probe`): a linear layer
  trained with AdamW on L2-normalised features (lr 0.1, 10 epochs, batch 64, cosine schedule
  without warmup), weight decay chosen by its coarse-to-fine search over
  logspace(-6, 2, 97) on a validation split, then refit on train + val. Written in JAX + optax;
  each round's weight decays are trained together in one jit (vmap).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxclip.probes import linear
from jaxclip.probes.split import train_val_split

PROTOCOLS = ("jaxclip", "clip_paper", "clip_benchmark")

# clip_paper: 25 strengths, two per decade, 1e-6 ... 1e6.
CLIP_PAPER_L2_GRID = tuple(float(v) for v in np.logspace(-6, 6, 25))
CLIP_PAPER_MAX_ITER = 1000

# clip_benchmark: its weight-decay list, coarse start, and its CLI defaults.
CB_WD_LIST = tuple(np.logspace(-6, 2, num=97).tolist())
CB_WD_COARSE = tuple(np.logspace(-6, 2, num=7).tolist())
CB_LR = 0.1
CB_EPOCHS = 10
CB_BATCH_SIZE = 64


def fit_clip_paper(
    x: Any, y: Any, *, val_fraction: float = 0.2, seed: int = 0, l2_grid=CLIP_PAPER_L2_GRID,
    max_iter: int = CLIP_PAPER_MAX_ITER,
) -> linear.LinearProbe:  # fmt: skip
    """The CLIP paper's probe: `linear.fit_logistic` on raw (unstandardised) features, lambda
    chosen on a seeded `val_fraction` of the rows, refit on all rows."""
    return linear.fit_logistic(
        x, y, l2_grid=l2_grid, standardize=False, refit=True, val_fraction=val_fraction,
        seed=seed, max_iter=max_iter,
    )  # fmt: skip


def l2_normalize(x: Any) -> np.ndarray:
    """Rows divided by their L2 norm (torch.nn.functional.normalize, eps 1e-12)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclasses.dataclass(frozen=True)
class AdamWProbe:
    """A linear layer from the clip_benchmark protocol; predicts argmax(x W^T + b) on
    L2-normalised x (normalisation applied in `predict`)."""

    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)
    weight_decay: float
    searched: tuple[tuple[float, float], ...] = ()  # (weight decay, val accuracy) in search order

    def predict(self, x: Any) -> np.ndarray:
        return np.argmax(l2_normalize(x) @ self.weight.T + self.bias, axis=1)

    def accuracy(self, x: Any, y: Any) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))


def _batches(n: int, epochs: int, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, batch_size) row indices and 0/1 masks: a fresh shuffle each epoch, the last batch
    of an epoch partial (masked), as torch's DataLoader(shuffle=True, drop_last=False)."""
    rng = np.random.default_rng(seed)
    per_epoch = -(-n // batch_size)
    idx = np.zeros((epochs * per_epoch, batch_size), np.int32)
    mask = np.zeros((epochs * per_epoch, batch_size), np.float32)
    for e in range(epochs):
        perm = rng.permutation(n)
        for b in range(per_epoch):
            rows = perm[b * batch_size : (b + 1) * batch_size]
            idx[e * per_epoch + b, : rows.size] = rows
            mask[e * per_epoch + b, : rows.size] = 1.0
    return idx, mask


def _init(key: jax.Array, d: int, c: int) -> tuple[jax.Array, jax.Array]:
    """torch.nn.Linear's default init: U(-1/sqrt(d), 1/sqrt(d)) for weight and bias."""
    bound = 1.0 / np.sqrt(d)
    kw, kb = jax.random.split(key)
    w = jax.random.uniform(kw, (c, d), jnp.float32, -bound, bound)
    b = jax.random.uniform(kb, (c,), jnp.float32, -bound, bound)
    return w, b


@jax.jit
def _train_grid(x, y, idx, mask, w0, b0, weight_decays, lr):
    """Trains one linear layer per weight decay (vmapped) with AdamW + cosine lr; same init and
    batch order for every member, as CLIP_benchmark's per-decay runs share a seed."""
    schedule = optax.cosine_decay_schedule(lr, idx.shape[0])

    def one(wd):
        opt = optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=wd)
        params = (w0, b0)
        state = opt.init(params)

        def step(carry, batch):
            params, state = carry
            bi, bm = batch

            def loss_fn(p):
                z = x[bi] @ p[0].T + p[1]
                nll = jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[bi][:, None], 1)[:, 0]
                return jnp.sum(nll * bm) / jnp.sum(bm)

            grads = jax.grad(loss_fn)(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, state), (idx, mask))
        return params

    return jax.vmap(one)(weight_decays)


def train_adamw_grid(
    x: Any, y: Any, weight_decays: Sequence[float], *, n_classes: int, lr: float = CB_LR,
    epochs: int = CB_EPOCHS, batch_size: int = CB_BATCH_SIZE, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(G, C, D) weights and (G, C) biases, one per weight decay, trained on (x, y) as is (no
    normalisation here), all in one jit."""
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(np.asarray(y), jnp.int32)
    idx, mask = _batches(x.shape[0], epochs, batch_size, seed)
    w0, b0 = _init(jax.random.PRNGKey(seed), x.shape[1], n_classes)
    wds = jnp.asarray(weight_decays, jnp.float32)
    w, b = _train_grid(x, y, jnp.asarray(idx), jnp.asarray(mask), w0, b0, wds, jnp.float32(lr))
    return np.asarray(w), np.asarray(b)


def _val_accuracies(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pred = np.argmax(np.einsum("nd,gcd->gnc", x, w) + b[:, None, :], axis=2)
    return np.mean(pred == y[None, :], axis=1)


def find_peak(accs: Sequence[float], idxs: Sequence[int]) -> int:
    """CLIP_benchmark's choice: the first index whose accuracy is strictly above all before it
    (index 0 of the list when every accuracy is 0)."""
    best, top = 0, 0.0
    for i, a in zip(idxs, accs, strict=True):
        if top < a:
            best, top = i, a
    return best


def fit_clip_benchmark(
    x: Any, y: Any, x_val: Any = None, y_val: Any = None, *, val_fraction: float = 0.2,
    seed: int = 0, lr: float = CB_LR, epochs: int = CB_EPOCHS, batch_size: int = CB_BATCH_SIZE,
) -> AdamWProbe:  # fmt: skip
    """CLIP_benchmark's linear probe: coarse-to-fine weight-decay search on the validation split
    (a seeded `val_fraction` of (x, y) when none is given), then refit on train + val."""
    x = l2_normalize(x)
    y = np.asarray(y).astype(np.int64)
    if x_val is None:
        ti, vi = train_val_split(x.shape[0], val_fraction, seed)
        x, y, x_val, y_val = x[ti], y[ti], x[vi], y[vi]
    else:
        x_val, y_val = l2_normalize(x_val), np.asarray(y_val).astype(np.int64)
    n_classes = int(max(y.max(), y_val.max())) + 1
    kw = {
        "n_classes": n_classes,
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
    }
    searched: list[tuple[float, float]] = []

    def peak(idxs: list[int]) -> int:
        w, b = train_adamw_grid(x, y, [CB_WD_LIST[i] for i in idxs], **kw)
        accs = _val_accuracies(w, b, x_val, y_val)
        searched.extend((CB_WD_LIST[i], float(a)) for i, a in zip(idxs, accs, strict=True))
        return find_peak(accs, idxs)

    peak_idx = peak([CB_WD_LIST.index(v) for v in CB_WD_COARSE])
    span = 8
    while span > 0:
        left, right = max(peak_idx - span, 0), min(peak_idx + span, len(CB_WD_LIST) - 1)
        peak_idx = peak([left, peak_idx, right])
        span //= 2
    wd = CB_WD_LIST[peak_idx]
    w, b = train_adamw_grid(np.concatenate([x, x_val]), np.concatenate([y, y_val]), [wd], **kw)
    return AdamWProbe(w[0], b[0], wd, tuple(searched))
