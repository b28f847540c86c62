"""Multinomial logistic-regression probes in JAX, solved for a whole L2 grid at once.

Objective (scikit-learn's `LogisticRegression(C=1/l2)`, multinomial, intercept unpenalised):

    F(W, b) = sum_n [ logsumexp_c(z_nc) - z_{n, y_n} ] + (l2 / 2) ||W||_F^2,   z_n = W x_n + b,

with W (C, D) = sklearn's `coef_`, b (C,) = `intercept_`. For two classes this symmetric
parameterisation equals sklearn's binomial model at C_sklearn = 2 / l2 (the optimum splits the
weight difference v = W_1 - W_0 evenly, so ||W||^2 = ||v||^2 / 2); for three or more classes
the objectives are identical.

Solver (`solve_logistic_grid`): L-BFGS built for CPUs and for grids of regularisation
strengths, following measurements on 2-core CPUs (vmapping a line-search L-BFGS is slower
than a loop on a CPU; share one big matmul instead):

* the G strengths are stacked on the class axis, so each step does ONE (G*C, D) x (D, N)
  matmul for all logits and ONE (G*C, N) x (N, D) matmul for all gradients;
* the line search is shared and almost free: the step's logits change is X d (the one forward
  matmul of the step), so the objective at any step length is a pass over logits + a * X d,
  with no further matmul; the trial at a = 1 also yields the softmax that the next gradient
  needs, so an accepted unit step costs one forward matmul, one softmax pass and one
  backward matmul;
* the initial inverse Hessian comes from Boehning's (1992) bound on the Hessian,
  H <= 1/2 X'X (x) I_C + l2 I (per class; 1/2 N for the intercept with centred features):
  its diagonal by default, or the full bound in the eigenbasis of X'X (one D x D
  eigendecomposition shared by the whole grid), scaled by the usual s'y / y'H0y;
* each strength stops (and is frozen, exactly) when max|grad F| / N <= tol, sklearn's `gtol`
  for lbfgs, with the gradient measured in standardised units (identical on standardised
  features; invariant to rescaling a feature, which the temperature identity needs); the loop ends when every strength has stopped or after `max_iter` steps, so a
  batched run gives the same per-strength results as a loop over single strengths.

`solve_logistic_warm_path` visits members one after another, each warm-started from the
previous solution (the regularisation path, or a sequence of related
feature sets such as a temperature grid); on a CPU that is the cheapest way through a grid
whose members converge at very different speeds.

`fit_logistic` wraps it with the CLIP paper's protocol (Radford et al., 2021, appendix A.3):
standardise on the training features, choose l2 on a validation split from a log grid, refit
on train + val at the chosen strength.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxclip.probes.classifier import Classifier
from jaxclip.probes.split import train_val_split

_HIGHEST = jax.lax.Precision.HIGHEST
DEFAULT_L2_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-4, 3, 8))
"""Default L2 strengths 1e-4 .. 1e3 (sklearn C = 1e4 .. 1e-3), 8 values."""


# ----------------------------------------------------------------------------------------------
# Standardisation
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """x -> (x - mean) / scale, as scikit-learn's StandardScaler (ddof 0; zero std -> 1)."""

    mean: np.ndarray
    scale: np.ndarray

    def transform(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected (N, {self.mean.shape[0]}) features; got shape {x.shape}")
        return ((x - self.mean) / self.scale).astype(np.float32)


def fit_standardizer(x: Any, enabled: bool = True) -> Standardizer:
    """Mean and std (float64, ddof 0) of `x` (N, D); `enabled=False` gives the identity."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D); got shape {x.shape}")
    d = x.shape[1]
    if not enabled:
        return Standardizer(np.zeros(d, np.float32), np.ones(d, np.float32))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=0)
    std = x64.std(axis=0)
    std[std < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
    return Standardizer(mean.astype(np.float32), std.astype(np.float32))


# ----------------------------------------------------------------------------------------------
# Objective (reference form, used by tests and for reporting)
# ----------------------------------------------------------------------------------------------


def logistic_objective(coef: Any, intercept: Any, x: Any, y: Any, l2: float) -> jax.Array:
    """sklearn's multinomial objective: sum_n CE(W x_n + b, y_n) + l2/2 ||W||^2.

    Args:
      coef: (C, D) weights W; intercept: (C,) b; x: (N, D) features; y: (N,) ints in [0, C);
      l2: the strength (= 1 / sklearn C).
    """
    w = jnp.asarray(coef, jnp.float32)
    b = jnp.asarray(intercept, jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    if w.ndim != 2 or x.ndim != 2 or w.shape[1] != x.shape[1] or b.shape != (w.shape[0],):
        raise ValueError(
            f"need coef (C, D), intercept (C,), x (N, D); got {w.shape}, {b.shape}, {x.shape}"
        )
    z = jnp.matmul(x, w.T, precision=_HIGHEST) + b
    nll = jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]
    return jnp.sum(nll) + 0.5 * l2 * jnp.sum(w * w)


def logistic_objective64(coef: Any, intercept: Any, x: Any, y: Any, l2: float) -> float:
    """`logistic_objective` in float64 numpy on the host: the exact final loss of a solution.

    The float32 value carries ~1e-7 |W x| of rounding per sample, which at weak
    regularisation (small objective, large logits) is 1e-6..1e-5 of the objective.
    """
    w, b, x = (np.asarray(a, np.float64) for a in (coef, intercept, x))
    y = np.asarray(y, np.int64)
    z = x @ w.T + b
    m = np.max(z, axis=1)
    lse = np.log(np.sum(np.exp(z - m[:, None]), axis=1)) + m
    return float(np.sum(lse - z[np.arange(z.shape[0]), y]) + 0.5 * float(l2) * np.sum(w * w))


def logistic_grad_measure64(coef: Any, intercept: Any, x: Any, y: Any, l2: float) -> float:
    """`solve_logistic_grid`'s stopping measure in float64 numpy: max over
    |dF/dW_cj| / sqrt(N (sum_n x_nj^2 + 2 l2)) and |dF/db_c| / N of the objective above."""
    w, b, x = (np.asarray(a, np.float64) for a in (coef, intercept, x))
    y = np.asarray(y, np.int64)
    n = x.shape[0]
    z = x @ w.T + b
    p = np.exp(z - np.max(z, axis=1, keepdims=True))
    r = p / np.sum(p, axis=1, keepdims=True)
    r[np.arange(n), y] -= 1.0
    gw = r.T @ x + float(l2) * w
    gscale = 1.0 / np.sqrt(n * (np.sum(x * x, axis=0) + 2.0 * float(l2)))
    return max(float(np.max(np.abs(gw) * gscale)), float(np.max(np.abs(r.sum(axis=0)))) / n)


# ----------------------------------------------------------------------------------------------
# The grid solver
# ----------------------------------------------------------------------------------------------


class LogisticSolution(NamedTuple):
    """Solutions for G strengths (a pytree: vmappable, device arrays).

    coef: (G, C, D); intercept: (G, C); loss: (G,) objective F recomputed at the
    returned coefficients (not the loop's running sum); grad_max: (G,) the stopping
    test's gradient measure (max|grad F| / N in standardised units, see `tol`); n_iter: (G,)
    L-BFGS steps taken; converged: (G,) grad_max <= tol.
    """

    coef: jax.Array
    intercept: jax.Array
    loss: jax.Array
    grad_max: jax.Array
    n_iter: jax.Array
    converged: jax.Array


def _softmax_lse(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Softmax over axis 1 of (G, C, N) logits and the per-sample logsumexp (G, N)."""
    m = jnp.max(logits, axis=1, keepdims=True)
    e = jnp.exp(logits - m)
    s = jnp.sum(e, axis=1, keepdims=True)
    return e / s, jnp.log(s[:, 0]) + m[:, 0]


def _lse(logits: jax.Array) -> jax.Array:
    m = jnp.max(logits, axis=1, keepdims=True)
    return jnp.log(jnp.sum(jnp.exp(logits - m), axis=1)) + m[:, 0]


def _bdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """Per-g inner product of (G, ...) arrays."""
    return jnp.sum(a * b, axis=tuple(range(1, a.ndim)))


def _lbfgs_direction(
    gw: jax.Array,
    gb: jax.Array,
    hist: dict[str, jax.Array],
    k: jax.Array,
    gamma: jax.Array,
    h0: Any,
    memory: int,
) -> tuple[jax.Array, jax.Array]:
    """The L-BFGS direction -H g per strength: the two-loop recursion (Nocedal & Wright, alg.
    7.4) over the `memory` stored pairs, `h0` (times `gamma`) as the initial inverse Hessian.
    A slot whose pair was rejected holds zeros (rho = 0) and drops out of both loops."""
    g_ = gw.shape[0]

    def newest_first(i, carry):
        qw, qb, alphas = carry
        j = (k - 1 - i) % memory
        a = hist["rho"][j] * (_bdot(hist["sw"][j], qw) + _bdot(hist["sb"][j], qb))
        qw = qw - a[:, None, None] * hist["yw"][j]
        qb = qb - a[:, None] * hist["yb"][j]
        return qw, qb, alphas.at[j].set(a)

    qw, qb, alphas = jax.lax.fori_loop(
        0, memory, newest_first, (gw, gb, jnp.zeros((memory, g_), gw.dtype))
    )
    rw, rb = h0(qw, qb)
    rw = rw * gamma[:, None, None]
    rb = rb * gamma[:, None]

    def oldest_first(i, carry):
        rw, rb = carry
        j = (k - memory + i) % memory
        coef = alphas[j] - hist["rho"][j] * (_bdot(hist["yw"][j], rw) + _bdot(hist["yb"][j], rb))
        return rw + coef[:, None, None] * hist["sw"][j], rb + coef[:, None] * hist["sb"][j]

    rw, rb = jax.lax.fori_loop(0, memory, oldest_first, (rw, rb))
    return -rw, -rb


def _push_pair(
    hist: dict[str, jax.Array],
    j: jax.Array,
    sw: jax.Array,
    sb: jax.Array,
    yw: jax.Array,
    yb: jax.Array,
) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
    """Stores the step s and gradient change y in slot `j` of the L-BFGS history where the
    curvature s'y is safely positive (zeros elsewhere); returns (history, accepted, s'y)."""
    sy = _bdot(sw, yw) + _bdot(sb, yb)
    yy = _bdot(yw, yw) + _bdot(yb, yb)
    upd = sy > 1e-10 * jnp.sqrt((_bdot(sw, sw) + _bdot(sb, sb)) * yy)
    keep = upd.astype(sw.dtype)
    hist = {
        "sw": hist["sw"].at[j].set(sw * keep[:, None, None]),
        "sb": hist["sb"].at[j].set(sb * keep[:, None]),
        "yw": hist["yw"].at[j].set(yw * keep[:, None, None]),
        "yb": hist["yb"].at[j].set(yb * keep[:, None]),
        "rho": hist["rho"].at[j].set(jnp.where(upd, 1.0 / jnp.where(upd, sy, 1.0), 0.0)),
    }
    return hist, upd, sy


def solve_logistic_grid(
    x: jax.Array,
    y: jax.Array,
    l2: jax.Array,
    *,
    n_classes: int,
    max_iter: int = 100,
    tol: float = 1e-4,
    memory: int = 10,
    precondition: str = "diag",
    coef0: jax.Array | None = None,
    intercept0: jax.Array | None = None,
    max_backtrack: int = 30,
    set_dot: str = "unroll",
) -> LogisticSolution:
    """Minimises the sklearn objective (module docstring) for every strength in `l2` at once.

    Args:
      x: (N, D) float32 features shared by all G strengths (standardise them first: the
        solver is fastest on centred, unit-variance features, and its intercept
        preconditioner assumes centred columns); or (G, N, D): one feature set per strength
        (e.g. softmax(logits / tau) for G temperatures), solved in the same single loop.
      y: (N,) int labels in [0, n_classes).
      l2: (G,) positive strengths (sklearn C = 1 / l2).
      n_classes: C (static).
      max_iter: most L-BFGS steps; `tol=0` runs exactly `max_iter` steps.
      tol: stop a strength when max_cj |dF/dW_cj| / sqrt(N (sum_n x_nj^2 + 2 l2)) and
        max_c |dF/db_c| / N are <= tol: sklearn's lbfgs `gtol` (max|grad F| / N, default
        1e-4) measured in standardised units, so equal to it on standardised features (up to
        (1 + 2 l2 / N)^-1/2) and unchanged when a feature is rescaled.
      memory: L-BFGS history length (static).
      precondition: "diag" (default: the diagonal of Boehning's bound, 1 / (diag(X'X)/2 + l2);
        on standardised features a per-strength scalar, i.e. plain L-BFGS with a good first
        step) or "eigh" (the full bound in the eigenbasis of X'X: one D x D eigendecomposition;
        it helps on strongly correlated, unstandardised features) (static).
      coef0, intercept0: optional warm start, (G, C, D) and (G, C).
      max_backtrack: most step halvings in the line search.
      set_dot: with (G, N, D) features, "unroll" (G plain matmuls per product, the fast path
        on CPUs, where XLA's batched matmul is slow) or "batched" (one batched matmul).

    Returns:
      LogisticSolution with G entries.
    """
    x, y, l2 = jnp.asarray(x), jnp.asarray(y), jnp.asarray(l2)
    per_set = x.ndim == 3
    if (
        x.ndim not in (2, 3)
        or l2.ndim != 1
        or y.shape != (x.shape[-2],)
        or (per_set and x.shape[0] != l2.shape[0])
    ):
        raise ValueError(
            f"need x (N, D) or (G, N, D), y (N,), l2 (G,); got {x.shape}, {y.shape}, {l2.shape}"
        )
    if precondition not in ("eigh", "diag"):
        raise ValueError(f"precondition must be 'eigh' or 'diag'; got {precondition!r}")
    if set_dot not in ("unroll", "batched"):
        raise ValueError(f"set_dot must be 'unroll' or 'batched'; got {set_dot!r}")
    g_, c, d = l2.shape[0], n_classes, x.shape[-1]
    # One compiled solver serves every step budget and cold or warm start: the budgets are
    # traced scalars and a cold start is a warm start from zeros (the same arithmetic).
    return _solve_logistic_grid(
        x,
        y,
        l2,
        jnp.asarray(max_iter, jnp.int32),
        tol,
        jnp.zeros((g_, c, d), jnp.float32) if coef0 is None else coef0,
        jnp.zeros((g_, c), jnp.float32) if intercept0 is None else intercept0,
        jnp.asarray(max_backtrack, jnp.int32),
        n_classes=n_classes,
        memory=memory,
        precondition=precondition,
        set_dot=set_dot,
    )


@functools.partial(jax.jit, static_argnames=("n_classes", "memory", "precondition", "set_dot"))
def _solve_logistic_grid(
    x: jax.Array,
    y: jax.Array,
    l2: jax.Array,
    max_iter: jax.Array,
    tol: jax.Array,
    coef0: jax.Array,
    intercept0: jax.Array,
    max_backtrack: jax.Array,
    *,
    n_classes: int,
    memory: int,
    precondition: str,
    set_dot: str,
) -> LogisticSolution:
    """`solve_logistic_grid` after its checks, with the warm start filled in."""
    per_set = x.ndim == 3
    n, d = x.shape[-2:]
    c = n_classes
    g_ = l2.shape[0]
    dtype = jnp.float32
    x = x.astype(dtype)
    l2 = l2.astype(dtype)
    xt = jnp.swapaxes(x, -1, -2)  # (.., D, N): the forward matmul reads it, the backward x
    y = y.astype(jnp.int32)
    yoh = jax.nn.one_hot(y, c, dtype=dtype, axis=0)  # (C, N)
    nf = jnp.asarray(n, dtype)

    if precondition == "eigh":
        evals, evecs = jnp.linalg.eigh(jnp.matmul(xt, x, precision=_HIGHEST))
        evals = jnp.maximum(evals, 0.0)
    else:
        evals, evecs = jnp.sum(x * x, axis=-2), None  # diag(X'X)
    evals = evals if per_set else evals[None, :]
    hdiag = 1.0 / (0.5 * evals + l2[:, None])  # (G, D)
    hbias = 2.0 / jnp.maximum(nf, 1.0)

    def h0(vw: jax.Array, vb: jax.Array) -> tuple[jax.Array, jax.Array]:
        if evecs is None:
            return vw * hdiag[:, None, :], vb * hbias
        q = evecs if per_set else evecs[None]
        u = jnp.einsum("gcd,gde->gce", vw, q, precision=_HIGHEST) * hdiag[:, None, :]
        return jnp.einsum("gce,gde->gcd", u, q, precision=_HIGHEST), vb * hbias

    def fwd(w: jax.Array, b: jax.Array) -> jax.Array:
        if not per_set:
            z = (w.reshape(g_ * c, d) @ xt).reshape(g_, c, n)
        elif set_dot == "batched":
            z = jnp.einsum("gcd,gdn->gcn", w, xt)
        else:
            z = jnp.stack([w[i] @ xt[i] for i in range(g_)])
        return z + b[:, :, None]

    def resid_lse(z: jax.Array) -> tuple[jax.Array, jax.Array]:
        # softmax - onehot in the same pass as the logsumexp: one (G, C, N) array written.
        p, lse = _softmax_lse(z)
        return p - yoh[None], lse

    def grad_from(r: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
        if not per_set:
            gw = (r.reshape(g_ * c, n) @ x).reshape(g_, c, d)
        elif set_dot == "batched":
            gw = jnp.einsum("gcn,gnd->gcd", r, x)
        else:
            gw = jnp.stack([r[i] @ x[i] for i in range(g_)])
        return gw + l2[:, None, None] * w, jnp.sum(r, axis=-1)

    def at_label(z: jax.Array) -> jax.Array:
        return jnp.take_along_axis(z, y[None, None, :], axis=1)[:, 0]  # (G, N)

    # Stopping test in standardised units: |dF/dW_cj| / sqrt(N (sum_n x_nj^2 + 2 l2)); on
    # standardised features (sum x^2 = N) this is sklearn's max|grad| / N up to a factor
    # (1 + 2 l2 / N)^-1/2, and it does not move when a feature is rescaled (x / tau at l2
    # stops where x at l2 tau^2 stops), which sklearn's absolute test does.
    colsq = jnp.sum(x * x, axis=-2)
    colsq = colsq if per_set else colsq[None, :]
    gscale = jax.lax.rsqrt(nf * (colsq + 2.0 * l2[:, None]))  # (G, D)

    def gmax(gw: jax.Array, gb: jax.Array) -> jax.Array:
        gw_max = jnp.max(jnp.abs(gw) * gscale[:, None, :], axis=(1, 2))
        return jnp.maximum(gw_max, jnp.max(jnp.abs(gb), axis=1) / nf)

    w0 = coef0.astype(dtype)
    b0 = intercept0.astype(dtype)
    z0 = fwd(w0, b0)
    r0, lse0 = resid_lse(z0)
    f0 = jnp.sum(lse0 - at_label(z0), axis=-1) + 0.5 * l2 * _bdot(w0, w0)
    gw0, gb0 = grad_from(r0, w0)

    hist = {
        "sw": jnp.zeros((memory, g_, c, d), dtype),
        "sb": jnp.zeros((memory, g_, c), dtype),
        "yw": jnp.zeros((memory, g_, c, d), dtype),
        "yb": jnp.zeros((memory, g_, c), dtype),
        "rho": jnp.zeros((memory, g_), dtype),
    }

    def cond(st):
        return (st["it"] < max_iter) & ~jnp.all(st["done"])

    def body(st):
        w, b, z, f, gw, gb, done = (st[k] for k in ("w", "b", "z", "f", "gw", "gb", "done"))
        dw, db = _lbfgs_direction(gw, gb, st["hist"], st["k"], st["gamma"], h0, memory)
        slope = _bdot(gw, dw) + _bdot(gb, db)
        # Not a descent direction (rounding): fall back to the preconditioned gradient.
        bad = ~(slope < 0)
        fw, fb = h0(gw, gb)
        dw = jnp.where(bad[:, None, None], -fw, dw)
        db = jnp.where(bad[:, None], -fb, db)
        slope = jnp.where(bad, -(_bdot(gw, fw) + _bdot(gb, fb)), slope)
        live = ~done
        dw = jnp.where(live[:, None, None], dw, 0.0)
        db = jnp.where(live[:, None], db, 0.0)
        slope = jnp.where(live, slope, 0.0)

        zd = fwd(dw, db)  # X d + db: the step's one forward matmul
        lab1 = at_label(zd)
        wd, dd = _bdot(w, dw), _bdot(dw, dw)
        lse = st["lse"]

        def change(lse_a, a):
            # F(a) - F(0), summed per sample first: the totals are ~|F| but their change near
            # the optimum is ~1e-7 |F|, below float32 resolution of a difference of totals.
            data = jnp.sum(lse_a - lse - a[:, None] * lab1, axis=-1)
            return data + 0.5 * l2 * (2 * a * wd + a * a * dd)

        c1 = 1e-4
        one = jnp.ones((g_,), dtype)
        r1, lse1 = resid_lse(z + zd)
        df1 = change(lse1, one)
        ok1 = (df1 <= c1 * slope) | done

        def accept(_):
            return one, z + zd, r1, lse1, df1

        def backtrack(_):
            def lcond(ls):
                _, ok, t = ls
                return (t < max_backtrack) & ~jnp.all(ok)

            def lbody(ls):
                a, ok, t = ls
                a = jnp.where(ok, a, 0.5 * a)
                dfa = change(_lse(z + a[:, None, None] * zd), a)
                return a, ok | (dfa <= c1 * a * slope), t + 1

            a, ok, _ = jax.lax.while_loop(lcond, lbody, (one, ok1, 0))
            a = jnp.where(ok & live, a, 0.0)  # no acceptable step: stay (and stop below)
            zn = z + a[:, None, None] * zd
            rn, lsen = resid_lse(zn)
            return a, zn, rn, lsen, change(lsen, a)

        a, zn, rn, lsen, df = jax.lax.cond(jnp.all(ok1), accept, backtrack, None)
        fn = f + df
        wn = w + a[:, None, None] * dw
        bn = b + a[:, None] * db
        gwn, gbn = grad_from(rn, wn)

        sw, sb = wn - w, bn - b
        yw, yb = gwn - gw, gbn - gb
        hist, upd, sy = _push_pair(st["hist"], st["k"] % memory, sw, sb, yw, yb)
        hyw, hyb = h0(yw, yb)
        yhy = _bdot(yw, hyw) + _bdot(yb, hyb)
        gamma = jnp.where(upd & (yhy > 0), sy / jnp.where(yhy > 0, yhy, 1.0), st["gamma"])
        stalled = live & (a == 0)
        new_done = done | (gmax(gwn, gbn) <= tol) | stalled
        n_iter = st["n_iter"] + live.astype(jnp.int32)
        return {
            "it": st["it"] + 1,
            "w": wn,
            "b": bn,
            "z": zn,
            "f": fn,
            "lse": lsen,
            "gw": gwn,
            "gb": gbn,
            "done": new_done,
            "hist": hist,
            "k": st["k"] + 1,
            "gamma": gamma,
            "n_iter": n_iter,
        }

    st = {
        "it": jnp.asarray(0, jnp.int32),
        "w": w0,
        "b": b0,
        "z": z0,
        "f": f0,
        "lse": lse0,
        "gw": gw0,
        "gb": gb0,
        "done": gmax(gw0, gb0) <= tol,
        "hist": hist,
        "k": jnp.asarray(0, jnp.int32),
        "gamma": jnp.ones((g_,), dtype),
        "n_iter": jnp.zeros((g_,), jnp.int32),
    }
    st = jax.lax.while_loop(cond, body, st)
    gm = gmax(st["gw"], st["gb"])
    # The reported objective is recomputed from scratch at the solution (a fresh X W^T + b,
    # per-sample terms summed once): the loop's running value f + df drifts by ~1e-4
    # relative over hundreds of steps at weak regularisation.
    zf = fwd(st["w"], st["b"])
    f_final = jnp.sum(_lse(zf) - at_label(zf), axis=-1) + 0.5 * l2 * _bdot(st["w"], st["w"])
    return LogisticSolution(
        coef=st["w"],
        intercept=st["b"],
        loss=f_final,
        grad_max=gm,
        n_iter=st["n_iter"],
        converged=gm <= tol,
    )


def solve_logistic_vmapped(
    xs: jax.Array, y: jax.Array, l2: jax.Array, **solver_kwargs: Any
) -> LogisticSolution:
    """`solve_logistic_grid` vmapped over B feature sets xs (B, N, D) with strengths l2 (B, G).

    All sets share the labels `y`; every output gains a leading B axis. This is how a grid of
    *different* features (e.g. softmax(logits / tau) for many tau) is solved in one call.
    """
    if xs.ndim != 3 or l2.ndim != 2 or xs.shape[0] != l2.shape[0]:
        raise ValueError(f"need xs (B, N, D) and l2 (B, G); got {xs.shape} and {l2.shape}")
    fn = functools.partial(solve_logistic_grid, **solver_kwargs)
    return jax.jit(jax.vmap(lambda xb, lb: fn(xb, y, lb)))(xs, l2)


# ----------------------------------------------------------------------------------------------
# Labels, accuracy, the probe object
# ----------------------------------------------------------------------------------------------


def _encode_labels(classes: np.ndarray, y: Any, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be (N,) labels; got shape {y.shape}")
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    if not np.all(classes[idx] == y):
        unknown = np.setdiff1d(np.unique(y), classes)[:5]
        raise ValueError(f"{name} has labels not seen in training: {unknown.tolist()}")
    return idx.astype(np.int32)


def _check_xy(x: Any, y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"{name}: need features (N, D) and labels (N,) with N > 0; got {x.shape} and {y.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: features contain NaN or infinity")
    return x, y


def _check_grid(l2_grid: Sequence[float]) -> np.ndarray:
    grid = np.asarray(l2_grid, dtype=np.float64).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"l2_grid must be non-empty positive numbers; got {list(l2_grid)}")
    return grid


@jax.jit
def _grid_accuracy(coef: jax.Array, intercept: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """(G,) accuracy of G linear models on (x, y); ties go to the lower class index."""
    g_, c, d = coef.shape
    z = (coef.reshape(g_ * c, d) @ x.T).reshape(g_, c, -1) + intercept[:, :, None]
    return jnp.mean((jnp.argmax(z, axis=1) == y[None]).astype(jnp.float32), axis=1)


@dataclasses.dataclass
class LinearProbe(Classifier):
    """A fitted multinomial logistic-regression probe.

    Predicts argmax_c (W s(x) + b)_c with s(x) = (x - mean) / scale. Accuracies are fractions.

    Attributes:
      coef: (C, D) W on standardised features; intercept: (C,) b.
      mean, scale: (D,) the standardiser (identity when standardize=False).
      classes: (C,) the original label values, in column order.
      l2: the chosen strength (sklearn C = 1 / l2); l2_grid: the strengths tried.
      val_accuracy: (G,) validation accuracy per strength (None without a selection step).
      train_accuracy: training accuracy of the final model.
      n_iter, converged: the final fit's solver record.
    """

    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    classes: np.ndarray
    l2: float
    l2_grid: tuple[float, ...] = ()
    val_accuracy: tuple[float, ...] | None = None
    train_accuracy: float = float("nan")
    n_iter: int = 0
    converged: bool = True

    @property
    def C(self) -> float:
        """sklearn's C = 1 / l2."""
        return 1.0 / self.l2

    def raw_coef(self) -> tuple[np.ndarray, np.ndarray]:
        """(W', b') acting on raw features: W' = W / scale, b' = b - W' mean."""
        w = self.coef / self.scale[None, :]
        return w, self.intercept - w @ self.mean

    def decision_function(self, x: Any) -> np.ndarray:
        """(N, C) logits W s(x) + b."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.coef.shape[1]:
            raise ValueError(f"expected (N, {self.coef.shape[1]}) features; got shape {x.shape}")
        xs = (x - self.mean) / self.scale
        return (xs @ self.coef.T + self.intercept).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Path and fit
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LogisticPath:
    """One fit per strength on the same training set, evaluated on named sets.

    Attributes:
      l2_grid: (G,) strengths; accuracy: {set name: (G,) accuracy}; loss: (G,) the objective
      recomputed in float64 at each solution (`logistic_objective64`); grad_max, n_iter,
      converged: (G,) solver records; seconds: wall time of the solve (compile included on the
      first call of a shape); solution: the raw LogisticSolution; standardizer: fitted on train.
    """

    l2_grid: np.ndarray
    accuracy: dict[str, np.ndarray]
    loss: np.ndarray
    grad_max: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    seconds: float
    solution: LogisticSolution
    standardizer: Standardizer
    classes: np.ndarray

    def probe(self, i: int) -> LinearProbe:
        """The i-th strength's model as a LinearProbe."""
        return LinearProbe(
            coef=np.asarray(self.solution.coef[i]),
            intercept=np.asarray(self.solution.intercept[i]),
            mean=self.standardizer.mean,
            scale=self.standardizer.scale,
            classes=self.classes,
            l2=float(self.l2_grid[i]),
            l2_grid=tuple(float(v) for v in self.l2_grid),
            n_iter=int(self.solution.n_iter[i]),
            converged=bool(self.solution.converged[i]),
        )


def logistic_path(
    x_train: Any,
    y_train: Any,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    eval_sets: Mapping[str, tuple[Any, Any]] | None = None,
    *,
    standardize: bool = True,
    classes: Any = None,
    max_iter: int = 100,
    tol: float = 1e-4,
    precondition: str = "diag",
) -> LogisticPath:
    """Fits every strength of `l2_grid` on (x_train, y_train) in one batched solve.

    Args:
      x_train, y_train: (N, D) features and (N,) labels (any integer or string values).
      l2_grid: strengths (sklearn C = 1 / l2).
      eval_sets: {"val": (x, y), "test": (x, y), ...}; accuracy per strength is reported for
        each, and always for "train".
      standardize: fit mean / std on x_train and apply them everywhere.
      classes: all label values (default: those in y_train).
      max_iter, tol, precondition: solver settings (see `solve_logistic_grid`).
    """
    import time

    x_train, y_train = _check_xy(x_train, y_train, "train")
    grid = _check_grid(l2_grid)
    classes = np.unique(y_train) if classes is None else np.unique(np.asarray(classes))
    if classes.size < 2:
        raise ValueError(f"need at least 2 classes; got {classes.tolist()}")
    scaler = fit_standardizer(x_train, standardize)
    xs = jnp.asarray(scaler.transform(x_train))
    yi = jnp.asarray(_encode_labels(classes, y_train, "y_train"))
    t0 = time.perf_counter()
    sol = solve_logistic_grid(
        xs,
        yi,
        jnp.asarray(grid, jnp.float32),
        n_classes=int(classes.size),
        max_iter=max_iter,
        tol=tol,
        precondition=precondition,
    )
    jax.block_until_ready(sol)
    seconds = time.perf_counter() - t0
    acc = {"train": np.asarray(_grid_accuracy(sol.coef, sol.intercept, xs, yi))}
    for name, (xe, ye) in (eval_sets or {}).items():
        xe, ye = _check_xy(xe, ye, name)
        if xe.shape[1] != x_train.shape[1]:
            raise ValueError(f"{name} has {xe.shape[1]} features; train has {x_train.shape[1]}")
        acc[name] = np.asarray(
            _grid_accuracy(
                sol.coef,
                sol.intercept,
                jnp.asarray(scaler.transform(xe)),
                jnp.asarray(_encode_labels(classes, ye, f"y_{name}")),
            )
        )
    return LogisticPath(
        l2_grid=grid,
        accuracy=acc,
        loss=np.array(
            [
                logistic_objective64(sol.coef[g], sol.intercept[g], xs, yi, grid[g])
                for g in range(grid.size)
            ]
        ),
        grad_max=np.asarray(sol.grad_max),
        n_iter=np.asarray(sol.n_iter),
        converged=np.asarray(sol.converged),
        seconds=seconds,
        solution=sol,
        standardizer=scaler,
        classes=classes,
    )


def select_l2(l2_grid: Any, val_accuracy: Any) -> int:
    """Index of the best validation accuracy; ties go to the strongest regularisation."""
    grid = np.asarray(l2_grid, dtype=np.float64)
    acc = np.asarray(val_accuracy, dtype=np.float64)
    if grid.shape != acc.shape or grid.ndim != 1:
        raise ValueError(f"l2_grid and val_accuracy must be (G,); got {grid.shape}, {acc.shape}")
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return int(best[np.argmax(grid[best])])


def fit_logistic(
    x_train: Any,
    y_train: Any,
    x_val: Any = None,
    y_val: Any = None,
    *,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    standardize: bool = True,
    refit: bool = True,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-4,
    precondition: str = "diag",
) -> LinearProbe:
    """Logistic-regression probe with the CLIP paper's protocol (Radford et al., 2021, A.3).

    1. If `l2_grid` has several values, fit them all on the training set in one batched solve
       (`logistic_path`) and pick the best validation accuracy (ties: strongest l2). Without
       (x_val, y_val), a random `val_fraction` of the training set is held out for this
       (`jaxclip.probes.split.train_val_split`).
    2. If `refit`, fit the chosen strength again on train + val (standardiser refitted on it,
       warm-started from step 1); otherwise keep step 1's model.

    The objective is sklearn's (module docstring), so `fit_logistic(x, y, l2_grid=[1 / C])`
    matches `StandardScaler + LogisticRegression(C=C)` on the same data.

    Args:
      x_train, y_train: (N, D) features, (N,) labels.
      x_val, y_val: optional validation split.
      l2_grid: strengths to choose from (sklearn C = 1 / l2).
      standardize: standardise features (fit on the training data of each fit).
      refit: refit on train + val at the chosen strength.
      val_fraction, seed: the held-out split when no validation set is given.
      max_iter, tol, precondition: solver settings (see `solve_logistic_grid`).

    Returns:
      LinearProbe.
    """
    x_train, y_train = _check_xy(x_train, y_train, "train")
    grid = _check_grid(l2_grid)
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        x_val, y_val = _check_xy(x_val, y_val, "val")
        if x_val.shape[1] != x_train.shape[1]:
            raise ValueError(f"val has {x_val.shape[1]} features; train has {x_train.shape[1]}")
    elif grid.size > 1:
        ti, vi = train_val_split(x_train.shape[0], val_fraction, seed)
        x_train, y_train, x_val, y_val = x_train[ti], y_train[ti], x_train[vi], y_train[vi]
    all_y = y_train if y_val is None else np.concatenate([y_train, y_val])
    classes = np.unique(all_y)
    solver = {"max_iter": max_iter, "tol": tol, "precondition": precondition}

    val_acc = None
    if x_val is not None and grid.size > 1:
        path = logistic_path(
            x_train,
            y_train,
            grid,
            {"val": (x_val, y_val)},
            standardize=standardize,
            classes=classes,
            **solver,
        )
        val_acc = tuple(float(a) for a in path.accuracy["val"])
        best = select_l2(grid, path.accuracy["val"])
    else:
        path, best = None, 0
    l2 = float(grid[best])

    if refit and x_val is not None:
        x_fit = np.concatenate([x_train, x_val])
        y_fit = np.concatenate([y_train, y_val])
    elif path is not None:
        probe = path.probe(best)
        probe.val_accuracy = val_acc
        probe.train_accuracy = float(path.accuracy["train"][best])
        return probe
    else:
        x_fit, y_fit = x_train, y_train
    scaler = fit_standardizer(x_fit, standardize)
    xs = jnp.asarray(scaler.transform(x_fit))
    yi = jnp.asarray(_encode_labels(classes, y_fit, "y"))
    warm = {}
    if path is not None:
        warm = {
            "coef0": path.solution.coef[best : best + 1],
            "intercept0": path.solution.intercept[best : best + 1],
        }
    sol = solve_logistic_grid(
        xs,
        yi,
        jnp.asarray([l2], jnp.float32),
        n_classes=int(classes.size),
        **solver,
        **warm,
    )
    train_acc = float(_grid_accuracy(sol.coef, sol.intercept, xs, yi)[0])
    return LinearProbe(
        coef=np.asarray(sol.coef[0]),
        intercept=np.asarray(sol.intercept[0]),
        mean=scaler.mean,
        scale=scaler.scale,
        classes=classes,
        l2=l2,
        l2_grid=tuple(float(v) for v in grid),
        val_accuracy=val_acc,
        train_accuracy=train_acc,
        n_iter=int(sol.n_iter[0]),
        converged=bool(sol.converged[0]),
    )


def solve_logistic_warm_path(
    x: jax.Array,
    y: jax.Array,
    l2: jax.Array,
    *,
    n_classes: int,
    max_iter: int = 100,
    tol: float = 1e-4,
    memory: int = 10,
    precondition: str = "diag",
) -> LogisticSolution:
    """Solves the members one after another, each warm-started from the previous solution.

    Path following (as glmnet / sklearn's `logistic_regression_path`): each solve starts next
    to its answer and stops on its own. With x (N, D) shared and l2 (G,) it is the
    regularisation path (pass strengths in decreasing order); with x (G, N, D) it walks a
    sequence of related feature sets (e.g. softmax(logits / tau) for decreasing tau). The
    results equal cold-start solves up to the solver tolerance.

    The sequence is driven from Python, one jitted `solve_logistic_grid` call per member
    (compiled once): the same solves inside a `lax.scan` were measured 1.5x slower on a
    2-core CPU, where XLA runs the nested loop's matmuls on one thread.

    Returns:
      LogisticSolution with G entries (coef (G, C, D), ...), in the input order.
    """
    shared = x.ndim == 2
    if x.ndim not in (2, 3) or l2.ndim != 1 or (not shared and x.shape[0] != l2.shape[0]):
        raise ValueError(f"need x (N, D) or (G, N, D) and l2 (G,); got {x.shape}, {l2.shape}")
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y)
    l2 = jnp.asarray(l2, jnp.float32)
    d = x.shape[-1]
    kw = {
        "n_classes": n_classes,
        "max_iter": max_iter,
        "tol": tol,
        "memory": memory,
        "precondition": precondition,
    }
    warm = {
        "coef0": jnp.zeros((1, n_classes, d), jnp.float32),
        "intercept0": jnp.zeros((1, n_classes), jnp.float32),
    }
    sols = []
    for i in range(l2.shape[0]):
        s = solve_logistic_grid(x if shared else x[i], y, l2[i : i + 1], **kw, **warm)
        warm = {"coef0": s.coef, "intercept0": s.intercept}
        sols.append(s)
    return jax.tree.map(lambda *a: jnp.concatenate(a), *sols)


# ----------------------------------------------------------------------------------------------
# Float64 Newton polish
# ----------------------------------------------------------------------------------------------

POLISH_MAX_PARAMS = 4096
"""Largest C * (D + 1) that `polish_logistic_newton` solves (a dense Hessian of that side)."""


class NewtonPolish(NamedTuple):
    """A float64 Newton refinement of one logistic fit.

    coef: (C, D) and intercept: (C,) float64; loss: the float64 objective there; grad_max:
    the solver's stopping measure (`solve_logistic_grid`'s `tol`) in float64; decrement: the
    Newton decrement g'H^-1 g / 2 at the returned point (the objective's distance to its
    minimum, to second order; inf if no Hessian was built there); n_iter: Newton steps taken;
    converged: grad_max <= tol and decrement <= rtol |loss|.
    """

    coef: np.ndarray
    intercept: np.ndarray
    loss: float
    grad_max: float
    decrement: float
    n_iter: int
    converged: bool


def polish_logistic_newton(
    coef: Any,
    intercept: Any,
    x: Any,
    y: Any,
    l2: float,
    *,
    tol: float = 1e-9,
    rtol: float = 1e-12,
    max_iter: int = 50,
) -> NewtonPolish:
    """Newton's method in float64 from (coef, intercept) on sklearn's objective (module doc).

    For small problems where float32 L-BFGS stalls: raw, badly scaled features (pixels,
    x / tau at small tau), whose Hessian spans 8+ decades. Each step builds the exact
    Hessian of the C (D + 1) parameters,

        H = sum_n (diag(p_n) - p_n p_n') (x) [x_n; 1][x_n; 1]' + l2 (I_C (x) diag(1, .., 1, 0)),

    in the eigenbasis of X'X (an exact rotation of W that leaves ||W|| and the logits
    unchanged and decorrelates the columns), scales it by its diagonal (Jacobi), adds the
    intercept's null direction b -> b + t 1 (the softmax ignores it; the gradient is
    orthogonal to it, so the step is too), solves by Cholesky and backtracks (Armijo) on the
    float64 objective. It stops when the solver's gradient measure (`solve_logistic_grid`,
    `tol`: max |dF/dW_cj| / sqrt(N (sum_n x_nj^2 + 2 l2)) and max |dF/db_c| / N) is <= `tol`
    AND the Newton decrement g'H^-1 g / 2 (the second-order distance to the minimum) is
    <= `rtol` |F|: along the flat directions of an ill-conditioned Hessian a small gradient
    alone still leaves the objective 1e-7 (relative) above its minimum (measured on digits
    pixels at tau = 0.02). It also stops when no step decreases the objective (converged
    then says whether both tests were met).

    Args:
      coef, intercept: (C, D), (C,) the starting point (e.g. an L-BFGS solution).
      x: (N, D) features; y: (N,) ints in [0, C); l2: the strength (> 0).
      tol: the gradient tolerance; rtol: the decrement's, relative to |F|; max_iter: most
        Newton steps.
    """
    w = np.asarray(coef, np.float64)
    b = np.asarray(intercept, np.float64)
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.int64)
    c, d = w.shape
    n = x.shape[0]
    if x.ndim != 2 or x.shape[1] != d or b.shape != (c,) or y.shape != (n,):
        raise ValueError(
            f"need coef (C, D), intercept (C,), x (N, D), y (N,); "
            f"got {w.shape}, {b.shape}, {x.shape}, {y.shape}"
        )
    if c * (d + 1) > POLISH_MAX_PARAMS:
        raise ValueError(
            f"C * (D + 1) = {c * (d + 1)} parameters; the dense Newton polish allows at most "
            f"{POLISH_MAX_PARAMS}"
        )
    if not l2 > 0:
        raise ValueError(f"l2 must be positive; got {l2}")
    from threadpoolctl import threadpool_limits

    # Matrices of a few thousand rows: one BLAS thread is as fast, and on shared CPUs several
    # threads contending for the cores were measured 10x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _newton64(w, b, x, y, float(l2), tol, rtol, max_iter)


def _newton64(
    w: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    tol: float,
    rtol: float,
    max_iter: int,
) -> NewtonPolish:
    """The loop of `polish_logistic_newton` (checked float64 inputs)."""
    from scipy.linalg import cho_factor, cho_solve

    c, d = w.shape
    n = x.shape[0]
    _, v = np.linalg.eigh(x.T @ x)
    xa = np.concatenate([x @ v, np.ones((n, 1))], axis=1)  # rotated features and the bias
    theta = np.concatenate([w @ v, b[:, None]], axis=1)  # (C, D + 1)
    pen = np.ones(d + 1)
    pen[d] = 0.0
    yoh = np.eye(c)[y]
    gscale = 1.0 / np.sqrt(n * (np.sum(x * x, axis=0) + 2.0 * l2))
    null = np.zeros((c, d + 1))
    null[:, d] = 1.0 / np.sqrt(c)
    null = null.reshape(-1)

    def objective(th):
        z = xa @ th.T
        m = np.max(z, axis=1, keepdims=True)
        e = np.exp(z - m)
        s = np.sum(e, axis=1, keepdims=True)
        lse = np.log(s)[:, 0] + m[:, 0]
        f = np.sum(lse - z[np.arange(n), y]) + 0.5 * l2 * np.sum(th * th * pen)
        return f, e / s

    def gradient(th, p):
        return (p - yoh).T @ xa + l2 * th * pen

    def measure(g):
        gw = g[:, :d] @ v.T  # back to the original basis, where the scale is defined
        return max(float(np.max(np.abs(gw) * gscale)), float(np.max(np.abs(g[:, d]))) / n)

    # Per-sample outer products once (sum_n p_nc xa_n xa_n' is then one matmul) when small.
    outer = None
    if n * (d + 1) ** 2 <= 2**24:
        outer = (xa[:, :, None] * xa[:, None, :]).reshape(n, (d + 1) ** 2)
    f, p = objective(theta)
    g = gradient(theta, p)
    gm, it, dec = measure(g), 0, float("inf")
    while it < max_iter:
        q = (p[:, :, None] * xa[:, None, :]).reshape(n, c * (d + 1))
        h = -(q.T @ q)
        if outer is not None:
            blocks = (p.T @ outer).reshape(c, d + 1, d + 1)  # sum_n p_nc xa_n xa_n'
        else:
            blocks = np.stack([(xa * p[:, k : k + 1]).T @ xa for k in range(c)])
        for k in range(c):
            sl = slice(k * (d + 1), (k + 1) * (d + 1))
            h[sl, sl] += blocks[k] + l2 * np.diag(pen)
        diag = np.diag(h).copy()
        h += np.outer(null, null) * np.mean(diag)  # the intercept's null direction
        sc = 1.0 / np.sqrt(np.maximum(np.diag(h), np.finfo(np.float64).tiny))
        gv = g.reshape(-1)
        hs = h * sc[:, None] * sc[None, :]
        try:
            u = cho_solve(cho_factor(hs), -gv * sc)
        except np.linalg.LinAlgError:
            u = np.linalg.lstsq(hs, -gv * sc, rcond=None)[0]
        step = (u * sc).reshape(c, d + 1)
        slope = float(gv @ step.reshape(-1))
        dec = -0.5 * slope  # the Newton decrement g'H^-1 g / 2 ~ F - min F near the optimum
        if not slope < 0 or (gm <= tol and dec <= rtol * abs(f)):
            break
        a, accepted = 1.0, False
        for _ in range(40):
            f_new, p_new = objective(theta + a * step)
            if f_new <= f + 1e-4 * a * slope:
                accepted = True
                break
            a *= 0.5
        if not accepted:
            break
        theta, f, p = theta + a * step, f_new, p_new
        g = gradient(theta, p)
        gm, dec = measure(g), float("inf")  # the decrement is measured at the next Hessian
        it += 1
    return NewtonPolish(
        coef=theta[:, :d] @ v.T,
        intercept=theta[:, d].copy(),
        loss=float(f),
        grad_max=gm,
        decrement=dec,
        n_iter=it,
        converged=bool(gm <= tol and dec <= rtol * abs(f)),
    )
