"""Conformity: how typical an embedding is within a set (Levi & Gilboa 2025, Sec. 6.1).

Definition (Eq. 10 of the paper): the conformity of v_j within a set S of N vectors is the mean
cosine similarity to all *other* members,

    C(v_j) = 1/(N−1) · Σ_{k≠j} cos(v_j, v_k),

and with a separate reference set R (v_j need not belong to R) the mean over all of R,
C(v_j) = 1/|R| · Σ_{r∈R} cos(v_j, r).

**Closed form (exact, O(N·d)).** With unit vectors x_k = v_k/‖v_k‖ and S = Σ_k x_k,

    C_j = (x_j·S − x_j·x_j) / (N − 1) = (x_j·S − 1) / (N − 1),          (reference: x_j·S_R / |R|)

so with m̂ = S/N (the mean of the *normalised* vectors) C_j = a·cos(v_j, m̂) + b exactly, with
a = N‖m̂‖/(N−1) and b = −1/(N−1) (reference set: a = ‖m̂_R‖, b = 0). The paper's estimate
Ĉ = a·cos(v_j, m) + b (Eq. 11) uses the mean m of the *raw* vectors instead, which is why it is
an (excellent) approximation there (Pearson 0.9998 on COCO, a ≈ 1.41-1.46) and exact here.
`conformity_estimate` returns both fits side by side.

`conformity_blockwise` is an independent brute force over blocks of the N×N similarity matrix
(memory O(block² + N·d)), for checking and for similarity functions other than the cosine.
`conformity_under_shift` gives the conformity of v − α·m for a whole α grid at O(A·N·d) cost.

Reference: M. Y. Levi, G. Gilboa, "The Double-Ellipsoid Geometry of CLIP", 2025 (Eqs. 10-11).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

Array = jax.Array
Similarity = Callable[[Array, Array], Array]

__all__ = [
    "ConformityEstimate",
    "ConformityFit",
    "conformity",
    "conformity_blockwise",
    "conformity_estimate",
    "conformity_under_shift",
    "cosine_similarity",
    "dot_similarity",
    "pearson",
]

_EPS = 1e-12


def _check_2d(name: str, x) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {x.shape}")


def cosine_similarity(a: Array, b: Array) -> Array:
    """(B, D), (M, D) -> (B, M) cosines; zero vectors have cosine 0 with everything."""
    an = a * jax.lax.rsqrt(jnp.maximum(jnp.sum(a * a, axis=1, keepdims=True), _EPS))
    bn = b * jax.lax.rsqrt(jnp.maximum(jnp.sum(b * b, axis=1, keepdims=True), _EPS))
    return an @ bn.T


def dot_similarity(a: Array, b: Array) -> Array:
    """(B, D), (M, D) -> (B, M) raw dot products."""
    return a @ b.T


def _normalise_np(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.maximum(np.einsum("nd,nd->n", x, x), _EPS))
    return x / norms[:, None]


def conformity(embeds: ArrayLike, reference: ArrayLike | None = None) -> Array | np.ndarray:
    """Exact conformity by the closed form, O(N·d) time and memory.

    C_j = (x_j·S − x_j·x_j)/(N − 1) with x = v/‖v‖, S = Σ_k x_k (self set), or
    C_j = x_j·S_R/|R| with S_R the sum of the normalised reference vectors.

    Args:
      embeds: (N, D) raw embeddings (N ≥ 2 without a reference).
      reference: optional (M, D) reference set; conformity is then the mean over all of it.

    Returns:
      (N,) conformities. A NumPy input is computed in float64 NumPy (the exact reference path);
      a JAX input (or tracer) in JAX at its own dtype, so this is jit- and vmap-safe.
    """
    use_np = not isinstance(embeds, jax.Array) and not isinstance(reference, jax.Array)
    if use_np:
        x = np.asarray(embeds, dtype=np.float64)
        _check_2d("embeds", x)
        xn = _normalise_np(x)
        if reference is None:
            if x.shape[0] < 2:
                raise ValueError(f"conformity within a set needs N >= 2, got N = {x.shape[0]}")
            s = xn.sum(axis=0)
            self_sim = np.einsum("nd,nd->n", xn, xn)
            return (xn @ s - self_sim) / (x.shape[0] - 1)
        r = np.asarray(reference, dtype=np.float64)
        _check_2d("reference", r)
        if r.shape[1] != x.shape[1]:
            raise ValueError(f"embeds {x.shape} and reference {r.shape} differ in D")
        return xn @ _normalise_np(r).sum(axis=0) / r.shape[0]
    x = jnp.asarray(embeds)
    _check_2d("embeds", x)
    xn = x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=1, keepdims=True), _EPS))
    if reference is None:
        if x.shape[0] < 2:
            raise ValueError(f"conformity within a set needs N >= 2, got N = {x.shape[0]}")
        s = jnp.sum(xn, axis=0)
        return (xn @ s - jnp.sum(xn * xn, axis=1)) / (x.shape[0] - 1)
    r = jnp.asarray(reference)
    _check_2d("reference", r)
    if r.shape[1] != x.shape[1]:
        raise ValueError(f"embeds {x.shape} and reference {r.shape} differ in D")
    rn = r * jax.lax.rsqrt(jnp.maximum(jnp.sum(r * r, axis=1, keepdims=True), _EPS))
    return xn @ jnp.sum(rn, axis=0) / r.shape[0]


@functools.partial(jax.jit, static_argnames=("similarity", "block_size", "symmetric", "self_set"))
def _blockwise(
    x: Array, r: Array, similarity: Similarity, block_size: int, symmetric: bool, self_set: bool
) -> Array:
    n, m = x.shape[0], r.shape[0]
    bx, br = min(block_size, n), min(block_size, m)
    nbx, nbr = -(-n // bx), -(-m // br)
    if self_set and symmetric:
        pairs = [(i, j) for i in range(nbx) for j in range(i, nbx)]
    else:
        pairs = [(i, j) for i in range(nbx) for j in range(nbr)]
    pairs = jnp.asarray(np.asarray(pairs, dtype=np.int32))

    def rows(data: Array, size: int, block: Array, total: int) -> tuple[Array, Array, Array]:
        # The last block is slid back to stay in range (no padded copy of the data); the rows
        # it shares with the previous block are masked out.
        start = jnp.minimum(block * size, total - size)
        mask = (start + jnp.arange(size)) >= block * size
        return jax.lax.dynamic_slice_in_dim(data, start, size), start, mask

    def step(sums: Array, pair: Array) -> tuple[Array, None]:
        i, j = pair[0], pair[1]
        a, sa, ma = rows(x, bx, i, n)
        b, sb, mb = rows(r, br, j, m)
        sim = similarity(a, b)
        sim = jnp.where(ma[:, None] & mb[None, :], sim, 0.0)
        add_rows = jnp.sum(sim, axis=1)
        if self_set:
            # On a diagonal block the self-similarities sit on its diagonal (sa == sb there).
            add_rows = add_rows - jnp.where(i == j, jnp.diagonal(sim), 0.0)
        sums = jax.lax.dynamic_update_slice_in_dim(
            sums, jax.lax.dynamic_slice_in_dim(sums, sa, bx) + add_rows, sa, 0
        )
        if self_set and symmetric:
            add_cols = jnp.where(i != j, jnp.sum(sim, axis=0), 0.0)
            sums = jax.lax.dynamic_update_slice_in_dim(
                sums, jax.lax.dynamic_slice_in_dim(sums, sb, br) + add_cols, sb, 0
            )
        return sums, None

    dtype = jax.eval_shape(similarity, x[:1], r[:1]).dtype
    sums, _ = jax.lax.scan(step, jnp.zeros((n,), dtype), pairs)
    return sums / (n - 1 if self_set else m)


def conformity_blockwise(
    embeds: ArrayLike,
    reference: ArrayLike | None = None,
    *,
    similarity: Similarity = cosine_similarity,
    block_size: int = 2048,
    symmetric: bool = True,
) -> Array:
    """Brute-force conformity over blocks of the similarity matrix (jit; for checking).

    C_j = 1/(N−1) Σ_{k≠j} sim(v_j, v_k)  (self set; the diagonal is removed by subtracting the
    computed sim(v_j, v_j), not by assuming it is 1), or 1/|R| Σ_r sim(v_j, r) (reference set).
    Blocks of rows are slid into range (no padded copy); memory is O(block_size² + N·D).

    Args:
      embeds: (N, D) embeddings.
      reference: optional (M, D) reference set.
      similarity: maps (B, D), (B', D) blocks to (B, B') similarities; default cosine. Must be
        a hashable function (it is a static argument of the jitted kernel).
      block_size: rows per block.
      symmetric: for a self set, assume sim(a, b) == sim(b, a) and compute only the upper
        triangle of blocks (half the work; cosine, dot and RBF kernels are symmetric).

    Returns:
      (N,) conformities (JAX array, dtype of the similarity).
    """
    x = jnp.asarray(embeds)
    _check_2d("embeds", x)
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if reference is None:
        if x.shape[0] < 2:
            raise ValueError(f"conformity within a set needs N >= 2, got N = {x.shape[0]}")
        return _blockwise(x, x, similarity, block_size, bool(symmetric), True)
    r = jnp.asarray(reference)
    _check_2d("reference", r)
    if r.shape[1] != x.shape[1]:
        raise ValueError(f"embeds {x.shape} and reference {r.shape} differ in D")
    return _blockwise(x, r, similarity, block_size, False, False)


def conformity_under_shift(
    embeds: ArrayLike, alphas: ArrayLike, mean: ArrayLike | None = None
) -> Array:
    """Conformity of the shifted set {v_k − α·m} for every α of a grid, shape (A, N).

    Uses the closed form without materialising the A shifted copies: with w_k(α) =
    1/‖v_k − α m‖, S(α) = Σ_k w_k (v_k − α m) = Vᵀw − α m Σ_k w_k, and
    C_j(α) = (w_j (v_j − α m)·S(α) − 1)/(N − 1). Cost: two (A, N)×(N, D) matmuls.

    Args:
      embeds: (N, D) raw embeddings.
      alphas: (A,) shift coefficients (α = 0 is the unshifted set; α = 1 centres it at 0).
      mean: (D,) shift direction m; default the mean of `embeds` (Levi & Gilboa Eq. 9).
    """
    v = jnp.asarray(embeds)
    _check_2d("embeds", v)
    alphas = jnp.asarray(alphas, v.dtype)
    if alphas.ndim != 1:
        raise ValueError(f"alphas must be 1-D, got shape {alphas.shape}")
    n = v.shape[0]
    if n < 2:
        raise ValueError(f"conformity within a set needs N >= 2, got N = {n}")
    m = jnp.mean(v, axis=0) if mean is None else jnp.asarray(mean, v.dtype)
    if m.shape != (v.shape[1],):
        raise ValueError(f"mean must be ({v.shape[1]},), got {m.shape}")
    vv = jnp.sum(v * v, axis=1)  # (N,)
    vm = v @ m  # (N,)
    mm = m @ m
    a = alphas[:, None]
    sq = vv[None, :] - 2.0 * a * vm[None, :] + a * a * mm  # (A, N) = ‖v − αm‖²
    w = jax.lax.rsqrt(jnp.maximum(sq, _EPS))
    s = w @ v - (alphas * jnp.sum(w, axis=1))[:, None] * m[None, :]  # (A, D)
    # (v_j − α m)·S(α) = v_j·S − α m·S
    dots = s @ v.T - (alphas * (s @ m))[:, None]  # (A, N)
    self_sim = sq * w * w
    return (w * dots - self_sim) / (n - 1)


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson correlation in float64 NumPy."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    xc, yc = x - x.mean(), y - y.mean()
    return float(xc @ yc / np.sqrt((xc @ xc) * (yc @ yc)))


class ConformityFit(NamedTuple):
    """Least-squares fit C ≈ a·cos(v, mean) + b for one choice of mean."""

    mean_kind: str  # "raw" (the paper's m = mean of v) or "normalised" (m̂ = mean of v/‖v‖)
    mean: np.ndarray  # (D,) the mean vector used
    cos_to_mean: np.ndarray  # (N,) cos(v_j, mean)
    a: float  # least-squares slope
    b: float  # least-squares intercept
    pearson: float  # Pearson(cos_to_mean, C)
    max_abs_error: float  # max_j |C_j − (a·cos_j + b)|
    a_exact: float  # closed-form slope (normalised mean only; NaN for the raw mean)
    b_exact: float  # closed-form intercept (normalised mean only; NaN for the raw mean)


class ConformityEstimate(NamedTuple):
    """Exact conformity and the two mean-cosine estimates side by side."""

    conformity: np.ndarray  # (N,) exact, float64 closed form
    raw: ConformityFit  # the paper's estimate (Eq. 11): mean of the raw vectors
    normalised: ConformityFit  # mean of the normalised vectors: exact affine relation


def _fit(kind: str, x: np.ndarray, mean: np.ndarray, c: np.ndarray, a_ex: float, b_ex: float):
    cos = _normalise_np(x) @ (mean / max(np.linalg.norm(mean), 1e-300))
    cc, yc = cos - cos.mean(), c - c.mean()
    a = float(cc @ yc / (cc @ cc))
    b = float(c.mean() - a * cos.mean())
    return ConformityFit(
        mean_kind=kind,
        mean=mean,
        cos_to_mean=cos,
        a=a,
        b=b,
        pearson=pearson(cos, c),
        max_abs_error=float(np.max(np.abs(c - (a * cos + b)))),
        a_exact=a_ex,
        b_exact=b_ex,
    )


def conformity_estimate(
    embeds: ArrayLike, reference: ArrayLike | None = None
) -> ConformityEstimate:
    """The paper's conformity estimate Ĉ = a·cos(v, m) + b, with two choices of m (float64).

    * raw: m = mean of the raw vectors (Levi & Gilboa Eq. 11; COCO ViT-B/32: Pearson 0.9998,
      a = 1.461, b = −0.002 images; a = 1.411, b = −0.008 text). An approximation.
    * normalised: m̂ = mean of v/‖v‖. Exact: C_j = (N‖m̂‖ cos(v_j, m̂) − 1)/(N − 1), i.e.
      a = N‖m̂‖/(N−1), b = −1/(N−1), Pearson = 1 (reference set R: m̂ = mean over R of r/‖r‖,
      C_j = ‖m̂‖ cos(v_j, m̂), a = ‖m̂‖, b = 0).

    a and b are least-squares fits of the exact conformity on the cosine; for the normalised
    mean the closed-form a_exact, b_exact are reported beside them.

    Args:
      embeds: (N, D) raw embeddings.
      reference: optional (M, D) reference set (its means are used).
    """
    x = np.asarray(embeds, np.float64)
    _check_2d("embeds", x)
    ref = x if reference is None else np.asarray(reference, np.float64)
    _check_2d("reference", ref)
    if ref.shape[1] != x.shape[1]:
        raise ValueError(f"embeds {x.shape} and reference {ref.shape} differ in D")
    c = conformity(x, None if reference is None else ref)
    m_raw = ref.mean(axis=0)
    m_hat = _normalise_np(ref).mean(axis=0)
    norm_hat = float(np.linalg.norm(m_hat))
    if reference is None:
        n = x.shape[0]
        a_ex, b_ex = n * norm_hat / (n - 1), -1.0 / (n - 1)
    else:
        a_ex, b_ex = norm_hat, 0.0
    return ConformityEstimate(
        conformity=c,
        raw=_fit("raw", x, m_raw, c, float("nan"), float("nan")),
        normalised=_fit("normalised", x, m_hat, c, a_ex, b_ex),
    )
