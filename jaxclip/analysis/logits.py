"""Class-agnostic logit features: cosines to generic prompts, softmax entropy, temperature.

The thesis experiments on class-agnostic logits: each image is described by its cosine similarity
to K generic prompts ("a photo of an object", "a blurry photo", ...); those K numbers are the
features of a probe. Softmax of the raw cosines is nearly uniform (mean entropy 3.4656 vs
ln 32 = 3.4657), and dividing by a temperature tau sharpens it.

Temperature and regularisation (why only the softmax variant is a real change). For an
L2-regularised linear model with logits W x + b (`jaxclip.probes.linear`, sklearn's objective):

    F_tau(W, b; l2) = sum_n CE(W x_n / tau + b, y_n) + l2/2 ||W||^2.

Substituting W = tau V gives sum_n CE(V x_n + b, y_n) + (l2 tau^2)/2 ||V||^2 = F_1(V, b; l2 tau^2):
the probe on x / tau at strength l2 IS the probe on x at strength l2 * tau^2 (sklearn C / tau^2;
the same holds for a linear SVM's C), with W*_tau = tau V*, the same intercept, the same
logits, predictions and optimal objective. With a StandardScaler fitted on the training
features the features themselves do not change, (x/tau - m/tau) / (s/tau) = (x - m) / s, so
variant (a), logits / tau, is exactly invariant. Only variant (b), softmax(logits / tau), a
non-linear map, changes what a linear probe can separate. `tau_l2_equivalence` prints both
sides of the identity; `temperature_sweep` computes (a) directly, (a) through the identity,
and (b) over the whole tau grid (entropy and confidence in one vmapped computation; the
probes as warm-started paths by default, or batched / mapped / vmapped / looped).

Every function is a pure function of arrays; nothing here loads a model or a dataset.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxclip.probes import linear

_HIGHEST = jax.lax.Precision.HIGHEST
DEFAULT_TAUS: tuple[float, ...] = tuple(float(t) for t in np.logspace(-3, 0, 32))
"""32 temperatures log-spaced from 1e-3 to 1."""


def _as_2d(name: str, x: Any) -> jax.Array:
    x = jnp.asarray(x, dtype=jnp.float32)
    if x.ndim != 2 or min(x.shape) < 1:
        raise ValueError(f"{name} must be a non-empty (N, K) array; got shape {x.shape}")
    return x


def _check_taus(taus: Any) -> np.ndarray:
    t = np.asarray(taus, dtype=np.float64).reshape(-1)
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"taus must be non-empty positive numbers; got {np.asarray(taus)}")
    return t


# ----------------------------------------------------------------------------------------------
# Features and entropy
# ----------------------------------------------------------------------------------------------


def prompt_logits(
    image_embeds: Any, prompt_embeds: Any, logit_scale: float | None = None
) -> jax.Array:
    """Cosine similarity of every image to every prompt, optionally times the logit scale.

    logits_nk = s * <x_n / ||x_n||, t_k / ||t_k||>  (s = 1 when logit_scale is None; for the
    model's own scale pass exp(logit_scale), 100 for OpenAI CLIP).

    Args:
      image_embeds: (N, D) raw image embeddings.
      prompt_embeds: (K, D) raw text embeddings of the K prompts.
      logit_scale: optional positive multiplier.

    Returns:
      (N, K) float32.
    """
    x = _as_2d("image_embeds", image_embeds)
    t = _as_2d("prompt_embeds", prompt_embeds)
    if x.shape[1] != t.shape[1]:
        raise ValueError(
            f"image_embeds (N, D) and prompt_embeds (K, D) must share D; got {x.shape}, {t.shape}"
        )
    if logit_scale is not None and not logit_scale > 0:
        raise ValueError(f"logit_scale must be positive or None; got {logit_scale}")
    scale = 1.0 if logit_scale is None else float(logit_scale)
    return _cosine(x, t, jnp.float32(scale))


@jax.jit
def _cosine(x: jax.Array, t: jax.Array, scale: jax.Array) -> jax.Array:
    xn = x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    tn = t / jnp.maximum(jnp.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return scale * jnp.matmul(xn, tn.T, precision=_HIGHEST)


def softmax_entropy(logits: Any, axis: int = -1) -> jax.Array:
    """Shannon entropy (nats) of softmax(logits) along `axis`.

    H = -sum_k p_k log p_k = logsumexp(z) - sum_k p_k z_k, computed on z - max(z) so that it is
    exact for very sharp distributions (no log 0, no 1e-9 fudge as in the thesis code).
    Uniform logits give ln K.
    """
    z = jnp.asarray(logits, dtype=jnp.float32)
    if z.ndim == 0:
        raise ValueError("logits must have at least one axis")
    return _entropy(z, axis)


@functools.partial(jax.jit, static_argnums=1)
def _entropy(z: jax.Array, axis: int) -> jax.Array:
    z = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    lse = jnp.log(jnp.sum(jnp.exp(z), axis=axis))
    p = jax.nn.softmax(z, axis=axis)
    return lse - jnp.sum(p * z, axis=axis)


@jax.jit
def _tau_stats(logits: jax.Array, taus: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """vmapped over tau: per-sample entropies (T, N), mean entropy (T,), mean top-1 prob (T,)."""

    def one(tau):
        z = logits / tau
        h = _entropy(z, -1)
        conf = jnp.max(jax.nn.softmax(z, axis=-1), axis=-1)
        return h, jnp.mean(h), jnp.mean(conf)

    return jax.vmap(one)(taus)


@dataclasses.dataclass
class EntropyStats:
    """Entropy of softmax(logits / tau) over a tau grid (logits: raw cosines).

    Attributes:
      ln_k: the maximum entropy ln K.
      taus: (T,) temperatures; mean_entropy, std_entropy, mean_confidence: (T,) per tau
        (confidence = mean top-1 probability).
      raw: {"tau", "mean_entropy", "std_entropy", "mean_confidence"} at tau = 1 (raw cosines).
      model: the same at tau = 1 / logit_scale (None when no scale was given).
      histograms: {label: (counts, edges)} of per-image entropies for raw, model and a few
        taus, on shared bin edges over [0, ln K].
      gap_histograms: the same settings as histograms of log10(ln K - H) (how far below the
        maximum each image is; raw cosines sit ~1e-4 below it), edges from -8 to log10(ln K).
    """

    ln_k: float
    taus: np.ndarray
    mean_entropy: np.ndarray
    std_entropy: np.ndarray
    mean_confidence: np.ndarray
    raw: dict[str, float]
    model: dict[str, float] | None
    histograms: dict[str, tuple[np.ndarray, np.ndarray]]
    gap_histograms: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict
    )

    def rows(self) -> list[dict[str, float]]:
        """One table row per tau."""
        return [
            {
                "tau": float(t),
                "mean_entropy": float(h),
                "ln_K": self.ln_k,
                "mean_confidence": float(c),
            }
            for t, h, c in zip(self.taus, self.mean_entropy, self.mean_confidence)
        ]


def entropy_stats(
    logits: Any,
    taus: Sequence[float] = DEFAULT_TAUS,
    logit_scale: float | None = None,
    bins: int = 40,
    hist_taus: Sequence[float] = (0.5, 0.07, 0.03, 0.02),
) -> EntropyStats:
    """Mean entropy vs ln K and mean top-1 confidence of softmax(logits / tau).

    Evaluated at the raw cosines (tau = 1, the thesis' 3.4656 vs ln 32), at the model's scale
    (tau = 1 / logit_scale) and over `taus`, all in one vmapped computation.

    Args:
      logits: (N, K) raw cosine similarities (e.g. `prompt_logits` without a scale).
      taus: the temperature grid.
      logit_scale: the model's exp(logit_scale) (e.g. 100), or None.
      bins: histogram bins over [0, ln K].
      hist_taus: extra temperatures to histogram (the thesis' table 4.1 values by default).
    """
    z = _as_2d("logits", logits)
    t = _check_taus(taus)
    if logit_scale is not None and not logit_scale > 0:
        raise ValueError(f"logit_scale must be positive or None; got {logit_scale}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1; got {bins}")
    extra = [1.0] + ([1.0 / float(logit_scale)] if logit_scale else []) + list(hist_taus)
    all_t = np.concatenate([t, _check_taus(extra)])
    h, mh, mc = (np.asarray(a) for a in _tau_stats(z, jnp.asarray(all_t, jnp.float32)))
    sh = h.std(axis=1)
    ln_k = float(np.log(z.shape[1]))
    edges = np.linspace(0.0, ln_k, bins + 1)
    nt = t.size

    def point(i):
        return {
            "tau": float(all_t[i]),
            "mean_entropy": float(mh[i]),
            "std_entropy": float(sh[i]),
            "mean_confidence": float(mc[i]),
        }

    rows_h = {"raw cosine (tau=1)": h[nt]}
    model = None
    if logit_scale:
        model = point(nt + 1)
        rows_h[f"model scale (tau=1/{logit_scale:g})"] = h[nt + 1]
    first_hist = nt + (2 if logit_scale else 1)
    for j, tau in enumerate(hist_taus):
        rows_h[f"tau={tau:g}"] = h[first_hist + j]
    hist = {k: np.histogram(np.clip(v, 0, ln_k), edges) for k, v in rows_h.items()}
    gap_edges = np.linspace(-8.0, np.log10(ln_k), bins + 1)
    gaps = {
        k: np.histogram(np.clip(np.log10(np.maximum(ln_k - v, 1e-8)), -8.0, None), gap_edges)
        for k, v in rows_h.items()
    }
    return EntropyStats(
        ln_k=ln_k,
        taus=t,
        mean_entropy=mh[:nt],
        std_entropy=sh[:nt],
        mean_confidence=mc[:nt],
        raw=point(nt),
        model=model,
        histograms=hist,
        gap_histograms=gaps,
    )


# ----------------------------------------------------------------------------------------------
# Temperature-scaled features and probes
# ----------------------------------------------------------------------------------------------

FEATURE_KINDS = ("scaled", "softmax")


def tau_features(logits: Any, taus: Sequence[float], kind: str = "softmax") -> jax.Array:
    """(T, N, K) probe features for every tau: "scaled" = logits / tau (variant a) or
    "softmax" = softmax(logits / tau) over the K prompts (variant b)."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"kind must be one of {FEATURE_KINDS}; got {kind!r}")
    z = _as_2d("logits", logits)
    t = jnp.asarray(_check_taus(taus), jnp.float32)
    return _tau_features(z, t, kind == "softmax")


@functools.partial(jax.jit, static_argnums=2)
def _tau_features(z: jax.Array, taus: jax.Array, softmax: bool) -> jax.Array:
    scaled = z[None] / taus[:, None, None]
    return jax.nn.softmax(scaled, axis=-1) if softmax else scaled


@jax.jit
def _standardize_sets(xtr: jax.Array, xte: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per feature set (leading axis): StandardScaler fitted on xtr (ddof 0, zero std -> 1)."""
    mean = jnp.mean(xtr, axis=1, keepdims=True)
    std = jnp.sqrt(jnp.mean(jnp.square(xtr - mean), axis=1, keepdims=True))
    tiny = std <= 1e-6 * jnp.maximum(jnp.abs(mean), 1e-30)
    std = jnp.where(tiny | (std == 0), 1.0, std)
    return (xtr - mean) / std, (xte - mean) / std


@jax.jit
def _set_accuracy(coef: jax.Array, intercept: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """(B,) accuracy of model b (coef (B, 1, C, K)) on its own feature set x[b] (B, M, K)."""
    z = jnp.einsum("bmk,bck->bmc", x, coef[:, 0], precision=_HIGHEST) + intercept[:, 0, None, :]
    return jnp.mean((jnp.argmax(z, axis=-1) == y[None]).astype(jnp.float32), axis=1)


@jax.jit
def _set_correct(coef: jax.Array, intercept: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """(B, M) bool: whether model b predicts test example m right (as `_set_accuracy` counts)."""
    z = jnp.einsum("bmk,bck->bmc", x, coef[:, 0], precision=_HIGHEST) + intercept[:, 0, None, :]
    return jnp.argmax(z, axis=-1) == y[None]


SOLVE_MODES = ("path", "batched", "map", "vmap", "loop")


def default_precondition(standardize: bool) -> str:
    """ "diag" on standardised features; "eigh" on raw cosines, whose K columns are nearly
    collinear (every prompt is close to every image), where the full Boehning bound in the
    eigenbasis of X'X cuts the L-BFGS iterations several-fold."""
    return "diag" if standardize else "eigh"


def solve_feature_sets(
    xs: jax.Array,
    y: jax.Array,
    l2: Any,
    *,
    n_classes: int,
    mode: str = "path",
    order: Any = None,
    **solver: Any,
) -> linear.LogisticSolution:
    """One logistic probe per feature set xs[b] (B, N, K), strength l2 (scalar or (B,)).

    mode="path" (default): the sets in `order` (default: as given), each solve warm-started
    from the previous set's solution (`linear.solve_logistic_warm_path`);
    for a temperature grid visited from large to small tau the neighbouring solutions are
    close, so this does 2-8x fewer L-BFGS steps than cold starts (same optimum, to the
    solver tolerance); mode="batched": ONE call of `linear.solve_logistic_grid` with per-set features (a single
    L-BFGS loop for all sets, plain 2-D matmuls per set; every set steps until the slowest
    has converged); mode="map": one jitted `lax.map` of the single-set solver over the sets
    (one dispatch; each set stops on its own and its working set stays in cache: the fast
    form on CPUs); mode="vmap": `jax.vmap` of the single-set solver (batched matmuls; slower
    on CPUs, as measured on 2-core machines; for accelerators); mode="loop": a Python loop over the
    same jitted single-set solver (the reference). Outputs have a leading B axis and a G = 1
    axis after it; all modes give the same numbers.
    """
    if mode not in SOLVE_MODES:
        raise ValueError(f"mode must be one of {SOLVE_MODES}; got {mode!r}")
    b = xs.shape[0]
    l2 = jnp.broadcast_to(jnp.asarray(l2, jnp.float32).reshape(-1), (b,))
    if mode == "path":
        perm = np.arange(b) if order is None else np.asarray(order)
        if sorted(perm.tolist()) != list(range(b)):
            raise ValueError(f"order must be a permutation of range({b}); got {list(perm)}")
        sol = linear.solve_logistic_warm_path(xs[perm], y, l2[perm], n_classes=n_classes, **solver)
        inv = np.argsort(perm)
        return jax.tree.map(lambda a: a[inv][:, None], sol)
    if mode == "batched":
        sol = linear.solve_logistic_grid(xs, y, l2, n_classes=n_classes, **solver)
        return jax.tree.map(lambda a: a[:, None], sol)
    if mode == "vmap":
        return linear.solve_logistic_vmapped(xs, y, l2[:, None], n_classes=n_classes, **solver)
    if mode == "map":
        return _map_solve(xs, y, l2[:, None], n_classes=n_classes, **solver)
    outs = [
        linear.solve_logistic_grid(xs[i], y, l2[i : i + 1], n_classes=n_classes, **solver)
        for i in range(b)
    ]
    return jax.tree.map(lambda *a: jnp.stack(a), *outs)


@functools.partial(jax.jit, static_argnames=("n_classes", "max_iter", "precondition", "memory"))
def _map_solve(xs: jax.Array, y: jax.Array, l2: jax.Array, **solver: Any) -> Any:
    return jax.lax.map(lambda a: linear.solve_logistic_grid(a[0], y, a[1], **solver), (xs, l2))


@dataclasses.dataclass
class TemperatureSweep:
    """Probe accuracy and entropy of class-agnostic logits over a temperature grid.

    Attributes (arrays are (T,) over `taus`; accuracies are test-set fractions):
      taus, ln_k, l2, standardize.
      mean_entropy, mean_confidence: of softmax(test logits / tau).
      acc_scaled: probe on logits / tau (variant a), solved directly per tau.
      acc_scaled_via_l2: the same through the identity: probe on the logits at strength
        l2 * tau^2 (or at l2 for every tau when standardised: exactly invariant), all strengths
        in ONE shared-matmul solve.
      l2_effective: the strength the identity uses per tau.
      acc_softmax: probe on softmax(logits / tau) (variant b).
      points: the same quantities at the raw cosines (tau = 1) and at the model's logit scale
        (tau = 1 / logit_scale), keyed "raw" and "model".
      seconds: wall time of each batched part.
      correct_scaled, correct_softmax: (T, M) bool, whether the probe of (a) (solved directly;
        None when `direct_scaled` is False) and of (b) at each tau gets test example m right:
        for bootstrap intervals and paired tests between temperatures.
    """

    taus: np.ndarray
    ln_k: float
    l2: float
    standardize: bool
    mean_entropy: np.ndarray
    mean_confidence: np.ndarray
    acc_scaled: np.ndarray
    acc_scaled_via_l2: np.ndarray
    l2_effective: np.ndarray
    acc_softmax: np.ndarray
    points: dict[str, dict[str, float]]
    seconds: dict[str, float]
    correct_scaled: np.ndarray | None = None
    correct_softmax: np.ndarray | None = None

    def rows(self) -> list[dict[str, float]]:
        """One table row per tau (both feature variants side by side)."""
        return [
            {
                "tau": float(self.taus[i]),
                "mean_entropy": float(self.mean_entropy[i]),
                "mean_confidence": float(self.mean_confidence[i]),
                "acc_logits_over_tau": float(self.acc_scaled[i]),
                "acc_logits_at_l2_tau2": float(self.acc_scaled_via_l2[i]),
                "l2_effective": float(self.l2_effective[i]),
                "acc_softmax_logits_over_tau": float(self.acc_softmax[i]),
            }
            for i in range(self.taus.size)
        ]


def temperature_sweep(
    train_logits: Any,
    y_train: Any,
    test_logits: Any,
    y_test: Any,
    taus: Sequence[float] = DEFAULT_TAUS,
    *,
    l2: float = 1.0,
    standardize: bool = False,
    logit_scale: float | None = None,
    mode: str = "path",
    direct_scaled: bool = True,
    max_iter: int = 100,
    tol: float = 1e-4,
    precondition: str | None = None,
) -> TemperatureSweep:
    """Entropy, confidence and probe accuracy for every tau, both feature variants.

    (a) features logits / tau; (b) features softmax(logits / tau); a logistic-regression probe
    at fixed strength `l2` (sklearn C = 1 / l2; the thesis used a linear SVM with C = 1, no
    scaler). Each variant's probes over the whole grid are one vmapped solve (`mode="loop"`
    runs the same jitted solver in a Python loop instead); (a) is also computed through the
    identity of the module docstring, as one solve that shares its matmul across all taus.

    Args:
      train_logits, test_logits: (N, K), (M, K) raw cosines to K prompts.
      y_train, y_test: labels.
      taus: temperature grid.
      l2: probe strength.
      standardize: StandardScaler per feature set (fit on train). With it, (a) is invariant.
      logit_scale: the model's exp(logit_scale) to mark (tau = 1 / logit_scale), or None.
      mode: how each grid of probes is solved (see `solve_feature_sets`): "path" (default:
        warm-started paths, tau from large to small; for the identity column the
        regularisation path from strong to weak), "batched", "map", "vmap" or "loop" (cold
        starts; equal results to the solver tolerance).
      direct_scaled: also solve variant (a) directly on logits / tau for every tau (the left
        column of the identity). False skips those T solves and reports the identity's
        column for both (what a sweep needs once the identity is trusted).
      max_iter, tol: solver settings.
      precondition: the solver's preconditioner (default `default_precondition`).
    """
    ztr = _as_2d("train_logits", train_logits)
    zte = _as_2d("test_logits", test_logits)
    if ztr.shape[1] != zte.shape[1]:
        raise ValueError(f"train and test logits must share K; got {ztr.shape}, {zte.shape}")
    if not l2 > 0:
        raise ValueError(f"l2 must be positive; got {l2}")
    t = _check_taus(taus)
    ref = [1.0] + ([1.0 / float(logit_scale)] if logit_scale else [])
    all_t = np.concatenate([t, ref])
    classes = np.unique(np.asarray(y_train))
    ytr = jnp.asarray(linear._encode_labels(classes, y_train, "y_train"))
    yte = jnp.asarray(linear._encode_labels(classes, y_test, "y_test"))
    c = int(classes.size)
    solver = {
        "max_iter": max_iter,
        "tol": tol,
        "precondition": precondition or default_precondition(standardize),
    }
    taus_j = jnp.asarray(all_t, jnp.float32)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    _, mh, mc = (np.asarray(a) for a in _tau_stats(zte, taus_j))
    seconds["entropy"] = time.perf_counter() - t0

    acc, correct = {}, {}
    for kind in FEATURE_KINDS if direct_scaled else ("softmax",):
        t0 = time.perf_counter()
        ftr = _tau_features(ztr, taus_j, kind == "softmax")
        fte = _tau_features(zte, taus_j, kind == "softmax")
        if standardize:
            ftr, fte = _standardize_sets(ftr, fte)
        sol = solve_feature_sets(
            ftr, ytr, l2, n_classes=c, mode=mode, order=np.argsort(-all_t), **solver
        )
        acc[kind] = np.asarray(_set_accuracy(sol.coef, sol.intercept, fte, yte))
        correct[kind] = np.asarray(_set_correct(sol.coef, sol.intercept, fte, yte))[: t.size]
        seconds[kind] = time.perf_counter() - t0

    # (a) through the identity: one solve on the untouched logits, strengths l2 * tau^2.
    t0 = time.perf_counter()
    xtr, xte = (ztr[None], zte[None])
    if standardize:
        xtr, xte = _standardize_sets(xtr, xte)
    l2_eff = np.full(all_t.shape, l2) if standardize else l2 * all_t**2
    grid = np.unique(l2_eff)
    if mode == "path":  # the regularisation path, strongest first, warm-started
        sol = linear.solve_logistic_warm_path(
            xtr[0], ytr, jnp.asarray(grid[::-1].copy(), jnp.float32), n_classes=c, **solver
        )
        sol = jax.tree.map(lambda a: a[::-1], sol)
    else:  # all strengths in one shared-matmul solve
        sol = linear.solve_logistic_grid(
            xtr[0], ytr, jnp.asarray(grid, jnp.float32), n_classes=c, **solver
        )
    acc_grid = np.asarray(linear._grid_accuracy(sol.coef, sol.intercept, xte[0], yte))
    acc_via = acc_grid[np.searchsorted(grid, l2_eff)]
    seconds["scaled_via_l2"] = time.perf_counter() - t0
    if not direct_scaled:
        acc["scaled"] = acc_via

    nt = t.size
    names = ["raw"] + (["model"] if logit_scale else [])
    points = {
        name: {
            "tau": float(all_t[nt + j]),
            "mean_entropy": float(mh[nt + j]),
            "mean_confidence": float(mc[nt + j]),
            "acc_scaled": float(acc["scaled"][nt + j]),
            "acc_scaled_via_l2": float(acc_via[nt + j]),
            "acc_softmax": float(acc["softmax"][nt + j]),
        }
        for j, name in enumerate(names)
    }
    return TemperatureSweep(
        taus=t,
        ln_k=float(np.log(ztr.shape[1])),
        l2=float(l2),
        standardize=standardize,
        mean_entropy=mh[:nt],
        mean_confidence=mc[:nt],
        acc_scaled=acc["scaled"][:nt],
        acc_scaled_via_l2=acc_via[:nt],
        l2_effective=l2_eff[:nt],
        acc_softmax=acc["softmax"][:nt],
        points=points,
        seconds=seconds,
        correct_scaled=correct.get("scaled"),
        correct_softmax=correct["softmax"],
    )


def tau_l2_equivalence(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    taus: Sequence[float] = (1.0, 0.5, 0.07, 0.03, 0.02),
    l2: float = 1.0,
    *,
    max_iter: int = 500,
    tol: float = 1e-6,
    polish_tol: float | None = 1e-9,
) -> list[dict[str, float]]:
    """Both sides of "features x / tau at l2 == features x at l2 * tau^2", per tau.

    Left: a probe fitted on x / tau at `l2` (no standardisation). Right: a probe on x at
    l2 * tau^2. Each side is solved by the float32 L-BFGS (`max_iter`, `tol`) and then, unless
    `polish_tol` is None, refined by float64 Newton steps until the solver's gradient measure is
    <= `polish_tol` and the Newton decrement (the objective's second-order distance to its
    minimum) <= 1e-12 of the objective (`linear.polish_logistic_newton`; float32 L-BFGS alone
    stops percents above the optimum on raw pixel-scale features at small tau). Problems with more than
    `linear.POLISH_MAX_PARAMS` parameters keep the L-BFGS fit (`polished` False).

    Reported per tau: both test accuracies, both objectives (float64) at the fits (equal at
    the optimum), their relative gap `objective_gap`, `converged_left` / `converged_right` (each
    fit's stopping test: the polish's when polished, else the L-BFGS test at `tol`;
    unconverged fits need not agree), `grad_left` / `grad_right` (that gradient measure),
    `newton_steps_left` / `newton_steps_right`, `polished` (both sides refined), the largest |W_tau - tau W'| relative to
    max |W_tau| (0 up to solver tolerance), the fraction of equal test predictions, and the
    accuracy with a StandardScaler on x / tau (equal to the one on x: the invariance).
    """
    xtr = np.asarray(_as_2d("x_train", x_train))
    xte = np.asarray(_as_2d("x_test", x_test))
    t = _check_taus(taus)
    if polish_tol is not None and not polish_tol > 0:
        raise ValueError(f"polish_tol must be positive or None; got {polish_tol}")
    settings = {"max_iter": max_iter, "tol": tol}
    raw = {**settings, "standardize": False, "precondition": default_precondition(False)}
    rows = []
    std_ref = linear.fit_logistic(xtr, y_train, l2_grid=[l2], **settings)
    for tau in t:
        left, f_left, g_left, k_left = _polished_fit(xtr / tau, y_train, l2, polish_tol, raw)
        right, f_right, g_right, k_right = _polished_fit(xtr, y_train, l2 * tau**2, polish_tol, raw)
        std = linear.fit_logistic(xtr / tau, y_train, l2_grid=[l2], **settings)
        denom = max(float(np.max(np.abs(left.coef))), 1e-30)
        rows.append(
            {
                "tau": float(tau),
                "l2": float(l2),
                "l2_times_tau2": float(l2 * tau**2),
                "acc_x_over_tau_at_l2": left.score(xte / tau, y_test),
                "acc_x_at_l2_tau2": right.score(xte, y_test),
                "objective_left": f_left,
                "objective_right": f_right,
                "objective_gap": abs(f_left - f_right) / max(abs(f_right), 1e-30),
                "converged_left": bool(left.converged),
                "converged_right": bool(right.converged),
                "grad_left": g_left,
                "grad_right": g_right,
                "newton_steps_left": max(k_left, 0),
                "newton_steps_right": max(k_right, 0),
                "polished": k_left >= 0 and k_right >= 0,
                "rel_coef_diff": float(np.max(np.abs(left.coef - tau * right.coef)) / denom),
                "same_predictions": float(np.mean(left.predict(xte / tau) == right.predict(xte))),
                "acc_standardized_x_over_tau": std.score(xte / tau, y_test),
                "acc_standardized_x": std_ref.score(xte, y_test),
            }
        )
    return rows


def _polished_fit(
    x: np.ndarray, y: Any, l2: float, polish_tol: float | None, solver: dict[str, Any]
) -> tuple[linear.LinearProbe, float, float, int]:
    """L-BFGS fit on raw x, then the float64 Newton polish when asked and small enough.

    Returns (probe, float64 objective, float64 gradient measure, Newton steps or -1 when not
    polished).
    """
    probe = linear.fit_logistic(x, y, l2_grid=[l2], **solver)
    yi = _labels_of(probe, y)
    c, d = probe.coef.shape
    if polish_tol is None or c * (d + 1) > linear.POLISH_MAX_PARAMS:
        f = linear.logistic_objective64(probe.coef, probe.intercept, x, yi, l2)
        g = linear.logistic_grad_measure64(probe.coef, probe.intercept, x, yi, l2)
        return probe, f, g, -1
    pol = linear.polish_logistic_newton(probe.coef, probe.intercept, x, yi, l2, tol=polish_tol)
    probe = dataclasses.replace(
        probe, coef=pol.coef, intercept=pol.intercept, converged=pol.converged
    )
    return probe, pol.loss, pol.grad_max, pol.n_iter


def _labels_of(probe: linear.LinearProbe, y: Any) -> np.ndarray:
    """Labels of `y` as column indices of `probe`."""
    return linear._encode_labels(probe.classes, y, "y")


def prompt_count_sweep(
    train_logits: Any,
    y_train: Any,
    test_logits: Any,
    y_test: Any,
    sizes: Sequence[int],
    *,
    order: Sequence[int] | None = None,
    seed: int = 0,
    tau: float = 1.0,
    kind: str = "scaled",
    l2: float = 1.0,
    standardize: bool = True,
    mode: str = "path",
    max_iter: int = 100,
    tol: float = 1e-4,
) -> list[dict[str, float]]:
    """Probe accuracy vs the number of prompts, on nested prompt subsets.

    Subset s keeps the first sizes[s] prompts of `order` (default: a random permutation from
    `seed`). All subsets share one shape: the dropped columns are set to 0 (after the softmax
    over the kept prompts, for kind="softmax"), which leaves their weights at exactly 0, so each
    result equals a probe fitted on the kept columns alone. By default (mode="path") the
    subsets are solved in the order of `sizes`, each warm-started from the previous one.

    Returns:
      [{"num_prompts", "accuracy", "train_accuracy"}] in the order of `sizes`.
    """
    ztr = _as_2d("train_logits", train_logits)
    zte = _as_2d("test_logits", test_logits)
    k = ztr.shape[1]
    if zte.shape[1] != k:
        raise ValueError(f"train and test logits must share K; got {ztr.shape}, {zte.shape}")
    if kind not in FEATURE_KINDS:
        raise ValueError(f"kind must be one of {FEATURE_KINDS}; got {kind!r}")
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1 or max(sizes) > k:
        raise ValueError(f"sizes must be in [1, {k}]; got {sizes}")
    perm = np.random.default_rng(seed).permutation(k) if order is None else np.asarray(order)
    if sorted(perm.tolist()) != list(range(k)):
        raise ValueError(f"order must be a permutation of range({k}); got {list(perm)}")
    rank = np.empty(k, int)
    rank[perm] = np.arange(k)
    masks = jnp.asarray(np.stack([rank < s for s in sizes]))  # (S, K)
    classes = np.unique(np.asarray(y_train))
    ytr = jnp.asarray(linear._encode_labels(classes, y_train, "y_train"))
    yte = jnp.asarray(linear._encode_labels(classes, y_test, "y_test"))
    ftr = _masked_features(ztr, masks, jnp.float32(tau), kind == "softmax")
    fte = _masked_features(zte, masks, jnp.float32(tau), kind == "softmax")
    if standardize:
        ftr, fte = _standardize_sets(ftr, fte)
    sol = solve_feature_sets(
        ftr,
        ytr,
        l2,
        n_classes=int(classes.size),
        mode=mode,
        max_iter=max_iter,
        tol=tol,
        precondition=default_precondition(standardize),
    )
    acc = np.asarray(_set_accuracy(sol.coef, sol.intercept, fte, yte))
    acc_tr = np.asarray(_set_accuracy(sol.coef, sol.intercept, ftr, ytr))
    return [
        {"num_prompts": s, "accuracy": float(a), "train_accuracy": float(b)}
        for s, a, b in zip(sizes, acc, acc_tr)
    ]


@functools.partial(jax.jit, static_argnums=3)
def _masked_features(z: jax.Array, masks: jax.Array, tau: jax.Array, softmax: bool) -> jax.Array:
    scaled = z[None] / tau  # (1, N, K)
    m = masks[:, None, :]
    if softmax:
        s = jnp.where(m, scaled, -jnp.inf)
        return jnp.where(m, jax.nn.softmax(s, axis=-1), 0.0)
    return jnp.where(m, scaled, 0.0)


# ----------------------------------------------------------------------------------------------
# Grids and summaries of the class-agnostic study
# ----------------------------------------------------------------------------------------------


def tau_grid(
    tau_min: float, tau_max: float, num_taus: int, extra_taus: Sequence[float] = ()
) -> np.ndarray:
    """Temperatures, descending: `num_taus` log-spaced in [tau_min, tau_max] plus `extra_taus`
    (duplicates within 1e-9 relative removed)."""
    base = np.logspace(math.log10(tau_min), math.log10(tau_max), int(num_taus))
    taus = np.concatenate([base, np.asarray(tuple(extra_taus), np.float64)])
    taus = np.sort(taus)[::-1]
    keep = [0] + [i for i in range(1, taus.size) if taus[i] < taus[i - 1] * (1 - 1e-9)]
    return taus[keep].copy()


def cosine_spread(cosines: Any) -> dict[str, float]:
    """How far the K cosines of one image are from equal, averaged over images.

    Returns mean_cosine, mean_range (max − min per image), mean_std (std per image) and
    half_mean_var (Var_k(z) / 2 per image: ln K − H of softmax(z) for nearly equal logits z, by
    the second-order expansion of the entropy).
    """
    z = np.asarray(cosines)
    return {
        "mean_cosine": float(z.mean()),
        "mean_range": float((z.max(axis=1) - z.min(axis=1)).mean()),
        "mean_std": float(z.std(axis=1).mean()),
        "half_mean_var": float(0.5 * z.astype(np.float64).var(axis=1).mean()),
    }


def prompt_rank(texts: Any) -> int:
    """Rank of the L2-normalised prompt embeddings (K, D): the dimension of the space the K
    cosines see the image through."""
    t = np.asarray(texts, np.float64)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return int(np.linalg.matrix_rank(t))
