"""CLIP's symmetric contrastive (InfoNCE) loss and its parts, optax style.

With unit vectors v̂_j = v_j/‖v_j‖ (images), t̂_k = t_k/‖t_k‖ (texts) and a logit scale s = 1/τ
(CLIP learns log s and uses s = exp(log s), clipped at 100), the logits are

    L_jk = s · v̂_jᵀ t̂_k                                   (N × N, matched pairs on the diagonal)

and the loss of a batch of N pairs (Radford et al. 2021, Eq. 7 of Levi & Gilboa 2025) is

    ℓ = ½ [ (1/N) Σ_j ℓ^{i→t}_j + (1/N) Σ_j ℓ^{t→i}_j ],
    ℓ^{i→t}_j = −L_jj + logsumexp_k L_jk     (row j: image j picks its caption among N),
    ℓ^{t→i}_j = −L_jj + logsumexp_k L_kj     (column j: caption j picks its image).

**Alignment / uniformity split** (Wang & Isola 2020; Eq. 8 of Levi & Gilboa): the −L_jj term
appears once in each direction, so exactly

    ℓ = alignment + uniformity,
    alignment  = −(1/N) Σ_j L_jj = −s · mean_j cos(v_j, t_j),
    uniformity = (1/N) Σ_j [ ½ logsumexp_k L_jk + ½ logsumexp_k L_kj ].

**Correct / wrong split** (Levi & Gilboa Sec. 5, Fig. 6): each of the 2N terms is classified by
its own direction: ℓ^{i→t}_j is "correct" when argmax_k L_jk = j, ℓ^{t→i}_j when argmax_k L_kj = j
(`jnp.argmax` convention: the first maximum wins a tie). The groups are disjoint and cover all
2N terms, so ``total == (n_correct · correct + n_wrong · wrong) / (2N)``. The mean of an empty
group is NaN.

**Sigmoid loss** (SigLIP, Zhai et al. 2023, Eq. 1): every image-text pair is its own binary
problem, with a learned scale t = exp(t') and bias b,

    L_jk = t · v̂_jᵀ t̂_k + b,     z_jk = +1 if j = k else −1,
    ℓ = −(1/N) Σ_j Σ_k log σ(z_jk L_jk)
      = positive + negative,
    positive = (1/N) Σ_j softplus(−L_jj)               (pull matched pairs up),
    negative = (1/N) Σ_j Σ_{k≠j} softplus(L_jk)        (push the N² − N others down),

the split playing the part alignment / uniformity play for the softmax loss. The sum runs over
texts and the mean over images, as big_vision's trainer (`trainers/proj/image_text/siglip.py`:
``-sum(log_sigmoid(m1_diag1 * logits), axis=-1).mean()``); the loss is symmetric in images and
texts, so there are no directions to average.

Everything is pure and jit/vmap/grad-safe. `clip_loss` is the cheap training loss;
`clip_loss_parts` returns every part; `clip_loss_parts_blockwise` streams row blocks of logits
(O(block · N) memory) so a whole evaluation set can be one batch.

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", 2021.
  Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and
  Uniformity on the Hypersphere", ICML 2020.
  Levi & Gilboa, "The Double-Ellipsoid Geometry of CLIP", 2025 (Eqs. 7, 8; Sec. 5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

Array = jax.Array

__all__ = [
    "ClipLossParts",
    "PairLosses",
    "SigmoidLossParts",
    "clip_logits",
    "clip_loss",
    "clip_loss_parts",
    "clip_loss_parts_blockwise",
    "clip_loss_parts_from_logits",
    "clip_loss_per_pair",
    "l2_normalize",
    "logit_scale_from_temperature",
    "sigmoid_logits",
    "sigmoid_loss",
    "sigmoid_loss_parts",
    "sigmoid_loss_parts_blockwise",
    "sigmoid_loss_parts_from_logits",
]

_EPS = 1e-12  # squared-norm floor: a zero vector normalises to zero, with a finite gradient


class PairLosses(NamedTuple):
    """Per-pair loss terms, each of shape (N,)."""

    image_to_text: Array  # ℓ^{i→t}_j = −L_jj + logsumexp_k L_jk
    text_to_image: Array  # ℓ^{t→i}_j = −L_jj + logsumexp_k L_kj

    @property
    def symmetric(self) -> Array:
        """½(ℓ^{i→t}_j + ℓ^{t→i}_j); its mean is `clip_loss`."""
        return 0.5 * (self.image_to_text + self.text_to_image)


class ClipLossParts(NamedTuple):
    """All parts of the symmetric CLIP loss of one batch (scalars; a pytree, so vmap stacks them).

    ``total == alignment + uniformity`` and
    ``total == (n_correct * correct + n_wrong * wrong) / (n_correct + n_wrong)`` up to rounding.
    """

    total: Array  # ½ (image_to_text + text_to_image)
    alignment: Array  # −mean_j L_jj
    uniformity: Array  # mean_j ½ (lse_row_j + lse_col_j)
    image_to_text: Array  # mean_j ℓ^{i→t}_j
    text_to_image: Array  # mean_j ℓ^{t→i}_j
    correct: Array  # mean of the correctly matched terms (of both directions); NaN if none
    wrong: Array  # mean of the wrongly matched terms; NaN if none
    n_correct: Array  # int32 count of correct terms, out of 2N
    n_wrong: Array  # int32 count of wrong terms, out of 2N
    accuracy_i2t: Array  # fraction of rows whose argmax is the diagonal (image→text R@1)
    accuracy_t2i: Array  # fraction of columns whose argmax is the diagonal (text→image R@1)


def _check_pair(image_embeds: Array, text_embeds: Array) -> None:
    if image_embeds.ndim != 2 or text_embeds.ndim != 2 or image_embeds.shape != text_embeds.shape:
        raise ValueError(
            "image_embeds and text_embeds must both be (N, D) with the same shape, got "
            f"{image_embeds.shape} and {text_embeds.shape}"
        )
    if image_embeds.shape[0] < 1:
        raise ValueError(f"need at least one pair, got N = {image_embeds.shape[0]}")


def _check_scale(logit_scale: Array) -> None:
    if logit_scale.ndim != 0:
        raise ValueError(f"logit_scale must be a scalar, got shape {logit_scale.shape}")


def l2_normalize(x: ArrayLike, axis: int = -1) -> Array:
    """x / ‖x‖ along `axis`; a zero vector maps to zero (norm floored at 1e-6)."""
    x = jnp.asarray(x)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), _EPS))


def logit_scale_from_temperature(temperature: ArrayLike) -> Array:
    """s = 1/τ (CLIP initialises τ = 0.07, i.e. s ≈ 14.3; trained ViT-B/32 has s = 100)."""
    return 1.0 / jnp.asarray(temperature)


def clip_logits(image_embeds: ArrayLike, text_embeds: ArrayLike, logit_scale: ArrayLike) -> Array:
    """L = s · v̂ t̂ᵀ, shape (N_images, N_texts); rows are images, columns texts.

    Embeddings may be raw: they are L2-normalised here.
    """
    image_embeds, text_embeds = jnp.asarray(image_embeds), jnp.asarray(text_embeds)
    logit_scale = jnp.asarray(logit_scale)
    if (
        image_embeds.ndim != 2
        or text_embeds.ndim != 2
        or image_embeds.shape[1] != text_embeds.shape[1]
    ):
        raise ValueError(
            f"expected (N, D) and (M, D) embeddings, got {image_embeds.shape} and {text_embeds.shape}"
        )
    _check_scale(logit_scale)
    return logit_scale * (l2_normalize(image_embeds) @ l2_normalize(text_embeds).T)


def clip_loss(image_embeds: ArrayLike, text_embeds: ArrayLike, logit_scale: ArrayLike) -> Array:
    """The symmetric InfoNCE loss of CLIP, a scalar (cheap; use it to train).

    ℓ = ½ [mean_j CE(L_j·, j) + mean_j CE(L_·j, j)] with L = s · v̂ t̂ᵀ (see the module docstring).

    Args:
      image_embeds: (N, D) image embeddings, raw or normalised (normalised here).
      text_embeds: (N, D) text embeddings; row j is the caption of image j.
      logit_scale: scalar s = 1/τ, an array so it can be learned (pass ``jnp.exp(log_s)`` for
        CLIP's parameterisation).

    Returns:
      Scalar loss, differentiable in all three arguments.

    References: Radford et al. 2021 (Fig. 3 pseudo-code).

    Example:
      >>> v = jnp.eye(3); clip_loss(v, v, 100.0)  # perfectly matched: ≈ 0
    """
    image_embeds, text_embeds = jnp.asarray(image_embeds), jnp.asarray(text_embeds)
    _check_pair(image_embeds, text_embeds)
    logits = clip_logits(image_embeds, text_embeds, logit_scale)
    diag = jnp.diagonal(logits)
    row = jax.nn.logsumexp(logits, axis=1)
    col = jax.nn.logsumexp(logits, axis=0)
    return jnp.mean(0.5 * (row + col) - diag)


def clip_loss_per_pair(
    image_embeds: ArrayLike, text_embeds: ArrayLike, logit_scale: ArrayLike
) -> PairLosses:
    """Per-pair terms ℓ^{i→t}_j and ℓ^{t→i}_j, each (N,); ``.symmetric.mean() == clip_loss``."""
    image_embeds, text_embeds = jnp.asarray(image_embeds), jnp.asarray(text_embeds)
    _check_pair(image_embeds, text_embeds)
    logits = clip_logits(image_embeds, text_embeds, logit_scale)
    diag = jnp.diagonal(logits)
    return PairLosses(
        image_to_text=jax.nn.logsumexp(logits, axis=1) - diag,
        text_to_image=jax.nn.logsumexp(logits, axis=0) - diag,
    )


def _parts_from_vectors(
    diag: Array, row_lse: Array, col_lse: Array, row_ok: Array, col_ok: Array
) -> ClipLossParts:
    """Assembles `ClipLossParts` from the per-row / per-column vectors (all shape (N,))."""
    n = diag.shape[0]
    i2t = row_lse - diag
    t2i = col_lse - diag
    terms = jnp.concatenate([i2t, t2i])
    ok = jnp.concatenate([row_ok, col_ok])
    n_correct = jnp.sum(ok, dtype=jnp.int32)
    n_wrong = 2 * n - n_correct
    sum_correct = jnp.sum(jnp.where(ok, terms, 0.0))
    sum_wrong = jnp.sum(jnp.where(ok, 0.0, terms))
    nan = jnp.asarray(jnp.nan, terms.dtype)
    mean_i2t, mean_t2i = jnp.mean(i2t), jnp.mean(t2i)
    return ClipLossParts(
        total=0.5 * (mean_i2t + mean_t2i),
        alignment=-jnp.mean(diag),
        uniformity=jnp.mean(0.5 * (row_lse + col_lse)),
        image_to_text=mean_i2t,
        text_to_image=mean_t2i,
        correct=jnp.where(n_correct > 0, sum_correct / jnp.maximum(n_correct, 1), nan),
        wrong=jnp.where(n_wrong > 0, sum_wrong / jnp.maximum(n_wrong, 1), nan),
        n_correct=n_correct,
        n_wrong=n_wrong,
        accuracy_i2t=jnp.mean(row_ok.astype(terms.dtype)),
        accuracy_t2i=jnp.mean(col_ok.astype(terms.dtype)),
    )


def clip_loss_parts_from_logits(logits: ArrayLike) -> ClipLossParts:
    """All parts of the loss from a square (N, N) logits matrix (rows images, columns texts).

    Formulas in the module docstring (Eqs. 7-8 of Levi & Gilboa; Wang & Isola 2020).
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits must be square (N, N), got {logits.shape}")
    idx = jnp.arange(logits.shape[0])
    return _parts_from_vectors(
        diag=jnp.diagonal(logits),
        row_lse=jax.nn.logsumexp(logits, axis=1),
        col_lse=jax.nn.logsumexp(logits, axis=0),
        row_ok=jnp.argmax(logits, axis=1) == idx,
        col_ok=jnp.argmax(logits, axis=0) == idx,
    )


def clip_loss_parts_blockwise(
    logits_rows: Callable[[Array], Array], n: int, block_size: int
) -> ClipLossParts:
    """Loss parts of an implicit (n, n) logits matrix streamed in blocks of rows.

    Only a (block_size, n) block of logits is alive at a time: row log-sum-exps and row argmaxes
    come from each block; column log-sum-exps are accumulated with `logaddexp`, column argmaxes
    with a running max (strict `>`, so the first maximum wins, as in `jnp.argmax`). The result
    equals `clip_loss_parts_from_logits` on the full matrix up to float rounding.

    Args:
      logits_rows: maps a (B,) int array of row indices (all in [0, n)) to the (B, n) logits of
        those rows. It is traced once; it may close over arrays (and over a vmapped scalar: the
        work that does not depend on it is then shared across the vmapped axis).
      n: number of pairs (static).
      block_size: rows per block (static); n is padded up to a multiple, pad rows are masked.

    Returns:
      `ClipLossParts` (scalars).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    block_size = min(block_size, n)
    n_blocks = -(-n // block_size)
    rows_all = jnp.arange(n_blocks * block_size, dtype=jnp.int32).reshape(n_blocks, block_size)
    cols = jnp.arange(n, dtype=jnp.int32)

    def step(carry, rows):
        col_lse, col_max, col_arg = carry
        valid = rows < n
        safe_rows = jnp.minimum(rows, n - 1)
        block = logits_rows(safe_rows)
        if block.shape != (block_size, n):
            raise ValueError(f"logits_rows returned {block.shape}, expected {(block_size, n)}")
        diag = jnp.take_along_axis(block, safe_rows[:, None], axis=1)[:, 0]
        row_lse = jax.nn.logsumexp(block, axis=1)
        row_ok = jnp.argmax(block, axis=1) == safe_rows
        masked = jnp.where(valid[:, None], block, -jnp.inf)
        col_lse = jnp.logaddexp(col_lse, jax.nn.logsumexp(masked, axis=0))
        bmax = jnp.max(masked, axis=0)
        barg = jnp.argmax(masked, axis=0).astype(jnp.int32) + rows[0]
        better = bmax > col_max
        carry = (col_lse, jnp.where(better, bmax, col_max), jnp.where(better, barg, col_arg))
        return carry, (diag, row_lse, row_ok)

    dtype = jax.eval_shape(logits_rows, jnp.zeros((block_size,), jnp.int32)).dtype
    init = (
        jnp.full((n,), -jnp.inf, dtype),
        jnp.full((n,), -jnp.inf, dtype),
        jnp.zeros((n,), jnp.int32),
    )
    (col_lse, _, col_arg), (diag, row_lse, row_ok) = jax.lax.scan(step, init, rows_all)
    return _parts_from_vectors(
        diag=diag.reshape(-1)[:n],
        row_lse=row_lse.reshape(-1)[:n],
        col_lse=col_lse,
        row_ok=row_ok.reshape(-1)[:n],
        col_ok=col_arg == cols,
    )


def clip_loss_parts(
    image_embeds: ArrayLike,
    text_embeds: ArrayLike,
    logit_scale: ArrayLike,
    *,
    block_size: int | None = None,
) -> ClipLossParts:
    """Total, alignment, uniformity, per-direction and correct/wrong parts of the CLIP loss.

    ``total = alignment + uniformity`` with alignment = −s·mean_j cos(v_j, t_j) and uniformity =
    mean_j ½(logsumexp_k L_jk + logsumexp_k L_kj) (Wang & Isola 2020; Levi & Gilboa Eq. 8).
    Correct/wrong: see the module docstring (Levi & Gilboa Sec. 5).

    Args:
      image_embeds, text_embeds: (N, D) raw or normalised embeddings; row j of each is pair j.
      logit_scale: scalar s = 1/τ.
      block_size: None builds the full (N, N) logits; an int streams blocks of that many rows
        (memory O(block_size · N)), for whole evaluation sets as one batch.
    """
    image_embeds, text_embeds = jnp.asarray(image_embeds), jnp.asarray(text_embeds)
    logit_scale = jnp.asarray(logit_scale)
    _check_pair(image_embeds, text_embeds)
    _check_scale(logit_scale)
    if block_size is None:
        return clip_loss_parts_from_logits(clip_logits(image_embeds, text_embeds, logit_scale))
    v_hat = l2_normalize(image_embeds)
    t_hat = l2_normalize(text_embeds)
    return clip_loss_parts_blockwise(
        lambda rows: logit_scale * (v_hat[rows] @ t_hat.T), image_embeds.shape[0], block_size
    )


# --- SigLIP's pairwise sigmoid loss -------------------------------------------------------------


class SigmoidLossParts(NamedTuple):
    """The sigmoid loss of one batch and its parts (scalars; a pytree).

    ``total == positive + negative`` up to rounding (module docstring).
    """

    total: Array  # −(1/N) Σ_j Σ_k log σ(z_jk L_jk)
    positive: Array  # (1/N) Σ_j softplus(−L_jj)
    negative: Array  # (1/N) Σ_{j≠k} softplus(L_jk)
    mean_positive_logit: Array  # mean_j L_jj
    mean_negative_logit: Array  # mean_{j≠k} L_jk (NaN when N = 1)
    accuracy: Array  # fraction of the N² pairs classified right (L > 0 exactly on the diagonal)


def sigmoid_logits(
    image_embeds: ArrayLike, text_embeds: ArrayLike, logit_scale: ArrayLike, logit_bias: ArrayLike
) -> Array:
    """L = t · v̂ t̂ᵀ + b, shape (N_images, N_texts) (transformers' `logits_per_image`).

    Args:
      image_embeds, text_embeds: (N, D) and (M, D), raw or normalised (normalised here).
      logit_scale: scalar t (pass ``jnp.exp(t')`` for SigLIP's parameterisation).
      logit_bias: scalar b.
    """
    logit_bias = jnp.asarray(logit_bias)
    if logit_bias.ndim != 0:
        raise ValueError(f"logit_bias must be a scalar, got shape {logit_bias.shape}")
    return clip_logits(image_embeds, text_embeds, logit_scale) + logit_bias


def sigmoid_loss_parts_from_logits(logits: ArrayLike) -> SigmoidLossParts:
    """All parts of the sigmoid loss from a square (N, N) logits matrix (matched on the diagonal)."""
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits must be square (N, N), got {logits.shape}")
    n = logits.shape[0]
    eye = jnp.eye(n, dtype=bool)
    diag = jnp.diagonal(logits)
    positive = jnp.sum(jax.nn.softplus(-diag)) / n
    negative = jnp.sum(jnp.where(eye, 0.0, jax.nn.softplus(logits))) / n
    n_neg = n * n - n
    nan = jnp.asarray(jnp.nan, logits.dtype)
    mean_neg = jnp.where(n_neg > 0, jnp.sum(jnp.where(eye, 0.0, logits)) / max(n_neg, 1), nan)
    right = jnp.where(eye, logits > 0, logits <= 0)
    return SigmoidLossParts(
        total=positive + negative,
        positive=positive,
        negative=negative,
        mean_positive_logit=jnp.mean(diag),
        mean_negative_logit=mean_neg,
        accuracy=jnp.mean(right.astype(logits.dtype)),
    )


def sigmoid_loss_parts_blockwise(
    logits_rows: Callable[[Array], Array], n: int, block_size: int
) -> SigmoidLossParts:
    """`sigmoid_loss_parts_from_logits` of an implicit (n, n) logits matrix streamed in row
    blocks (the sigmoid twin of `clip_loss_parts_blockwise`, same `logits_rows` contract).

    Every part is a sum over entries, so each block adds its sums of softplus(−L_jj),
    softplus(L_jk) (k ≠ j), L_jj, L_jk (k ≠ j) and of the rightly classified entries; only a
    (block_size, n) block is alive at a time. Equal to the full-matrix parts up to rounding.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    block_size = min(block_size, n)
    n_blocks = -(-n // block_size)
    rows_all = jnp.arange(n_blocks * block_size, dtype=jnp.int32).reshape(n_blocks, block_size)
    cols = jnp.arange(n, dtype=jnp.int32)

    def step(carry, rows):
        valid = rows < n
        block = logits_rows(jnp.minimum(rows, n - 1))
        if block.shape != (block_size, n):
            raise ValueError(f"logits_rows returned {block.shape}, expected {(block_size, n)}")
        eye = rows[:, None] == cols[None, :]
        neg = (~eye) & valid[:, None]
        pos = eye & valid[:, None]
        right = jnp.where(eye, block > 0, block <= 0) & valid[:, None]
        sums = jnp.stack(
            [
                jnp.sum(jnp.where(pos, jax.nn.softplus(-block), 0.0)),
                jnp.sum(jnp.where(neg, jax.nn.softplus(block), 0.0)),
                jnp.sum(jnp.where(pos, block, 0.0)),
                jnp.sum(jnp.where(neg, block, 0.0)),
                jnp.sum(right.astype(block.dtype)),
            ]
        )
        return carry + sums, None

    dtype = jax.eval_shape(logits_rows, jnp.zeros((block_size,), jnp.int32)).dtype
    sums, _ = jax.lax.scan(step, jnp.zeros((5,), dtype), rows_all)
    positive, negative = sums[0] / n, sums[1] / n
    n_neg = n * n - n
    nan = jnp.asarray(jnp.nan, dtype)
    return SigmoidLossParts(
        total=positive + negative,
        positive=positive,
        negative=negative,
        mean_positive_logit=sums[2] / n,
        mean_negative_logit=sums[3] / n_neg if n_neg > 0 else nan,
        accuracy=sums[4] / (n * n),
    )


def sigmoid_loss(
    image_embeds: ArrayLike, text_embeds: ArrayLike, logit_scale: ArrayLike, logit_bias: ArrayLike
) -> Array:
    """SigLIP's pairwise sigmoid loss, a scalar: −(1/N) Σ_j Σ_k log σ(z_jk (t v̂_jᵀ t̂_k + b)).

    Args:
      image_embeds: (N, D) image embeddings, raw or normalised (normalised here).
      text_embeds: (N, D); row j is the caption of image j.
      logit_scale: scalar t > 0 (``jnp.exp(t')``; SigLIP initialises t' = log 10).
      logit_bias: scalar b (SigLIP initialises b = −10).

    Returns:
      Scalar loss, differentiable in all four arguments.

    References: Zhai et al. 2023, Eq. 1 and Algorithm 1.
    """
    image_embeds, text_embeds = jnp.asarray(image_embeds), jnp.asarray(text_embeds)
    _check_pair(image_embeds, text_embeds)
    logits = sigmoid_logits(image_embeds, text_embeds, logit_scale, logit_bias)
    n = logits.shape[0]
    sign = 2.0 * jnp.eye(n, dtype=logits.dtype) - 1.0
    return jnp.sum(jax.nn.softplus(-sign * logits)) / n


def sigmoid_loss_parts(
    image_embeds: ArrayLike, text_embeds: ArrayLike, logit_scale: ArrayLike, logit_bias: ArrayLike
) -> SigmoidLossParts:
    """`sigmoid_loss` with its positive / negative split and diagnostics (`SigmoidLossParts`)."""
    image_embeds, text_embeds = jnp.asarray(image_embeds), jnp.asarray(text_embeds)
    _check_pair(image_embeds, text_embeds)
    return sigmoid_loss_parts_from_logits(
        sigmoid_logits(image_embeds, text_embeds, logit_scale, logit_bias)
    )
