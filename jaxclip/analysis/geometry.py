"""Geometry of the raw CLIP embedding space: the "double ellipsoid" (Levi & Gilboa 2025).

All functions are pure functions of arrays of *raw* (unnormalised) embeddings: images (N, D)
and texts (M, D), row j of each being pair j where pairs matter. Statistics use population
moments (ddof = 0) so the identities below hold exactly. Descriptive statistics run in float64
NumPy; the loss sweep and conformity grids run in JAX.

What is here (paper sections in brackets):

* `modality_moments` – mean m, per-feature std σ, and ‖m‖/‖σ‖ (Sec. 4; COCO ViT-B/32: 0.94
  images, 1.03 text).
* `feature_separability` – Sep(l) = |m_i(l) − m_t(l)| / sqrt(var_i(l) + var_t(l)) (Eq. 5) and
  its ranking; `svm_two_features` – a linear SVM on the two most separating features (Fig. 2).
* `thin_shell` – with y = v − m: μ_norm = E‖y‖, var(‖y‖), sqrt(tr C) (Eqs. 3-4). Exactly
  E‖y‖² = μ_norm² + var(‖y‖) = tr C, so sqrt(tr C) ≈ μ_norm when var(‖y‖) ≪ μ_norm²
  (COCO images: 7.5873 vs 7.6007, 0.18 %).
* `variance_spectrum` (Fig. 5), `off_diagonal_dominance` ODD(l) = Σ_{k≠l}|C_lk| / C_ll (Eq. 6),
  `whitening` (ZCA / PCA).
* `modality_gap` – the gap vector m_i − m_t.
* `shift_loss_sweep`, `alpha_shift_loss_sweep`, `gap_shift_loss_sweep` – the CLIP loss, or with
  a `logit_bias` SigLIP's sigmoid loss (total / positive / negative on scores t·cos + b), (total /
  alignment / uniformity, correct / wrong) while one or both modalities move, v' = v − α·m
  (Eq. 9), for a whole α grid in one vmapped, blockwise computation (Sec. 5, Fig. 6).
* `conformity_kl_sweep` – KL between the image and text conformity distributions vs α
  (Sec. 6.2, Fig. 11).
* `slerp`, `vslerp` – vSLERP(u, v, θ, α) = SLERP(u − αm, v − αm, θ) + αm (Eq. 12).

Reference: M. Y. Levi, G. Gilboa, "The Double-Ellipsoid Geometry of CLIP", 2025.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxclip.analysis.conformity import conformity_under_shift
from jaxclip.losses import (
    ClipLossParts,
    SigmoidLossParts,
    clip_loss_parts_blockwise,
    sigmoid_loss_parts_blockwise,
)

Array = jax.Array

__all__ = [
    "ConformityKLSweep",
    "ModalityGap",
    "ModalityMoments",
    "Separability",
    "SvmResult",
    "ThinShell",
    "VarianceSpectrum",
    "Whitening",
    "alpha_shift_loss_sweep",
    "auto_block_size",
    "conformity_kl_sweep",
    "covariance",
    "double_ellipsoid_summary",
    "feature_separability",
    "gap_shift_loss_sweep",
    "gaussian_kl",
    "histogram_kl",
    "modality_gap",
    "modality_moments",
    "off_diagonal_dominance",
    "shift_loss_sweep",
    "slerp",
    "svm_two_features",
    "thin_shell",
    "variance_spectrum",
    "vslerp",
    "whiten",
    "whitening",
]

_EPS = 1e-12


def _as2d(name: str, x: ArrayLike) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be (N, D) with N >= 2, got shape {x.shape}")
    return x


def _same_d(image: np.ndarray, text: np.ndarray) -> None:
    if image.shape[1] != text.shape[1]:
        raise ValueError(f"image {image.shape} and text {text.shape} differ in D")


# --------------------------------------------------------------------------- moments, Sep, SVM


class ModalityMoments(NamedTuple):
    mean: np.ndarray  # (D,) m
    std: np.ndarray  # (D,) σ, population std per feature
    mean_norm: float  # ‖m‖
    std_norm: float  # ‖σ‖ = sqrt(tr C)
    ratio: float  # ‖m‖ / ‖σ‖ (paper: 0.94 images, 1.03 text)


def modality_moments(embeds: ArrayLike) -> ModalityMoments:
    """Mean m, per-feature std σ and ‖m‖/‖σ‖ of one modality (Levi & Gilboa Sec. 4, Property 5).

    ‖σ‖ is read as the size of the ellipsoid shell; a ratio near 1 means the centre is as far
    from the origin as the shell is wide.
    """
    x = _as2d("embeds", embeds)
    m, s = x.mean(axis=0), x.std(axis=0)
    mn, sn = float(np.linalg.norm(m)), float(np.linalg.norm(s))
    return ModalityMoments(m, s, mn, sn, mn / sn if sn > 0 else float("inf"))


class Separability(NamedTuple):
    sep: np.ndarray  # (D,) Sep(l)
    order: np.ndarray  # (D,) feature indices, most separating first
    mean_image: np.ndarray  # (D,)
    mean_text: np.ndarray  # (D,)
    var_image: np.ndarray  # (D,) population variance
    var_text: np.ndarray  # (D,)


def feature_separability(image: ArrayLike, text: ArrayLike) -> Separability:
    """Per-feature separability Sep(l) = |m_i(l) − m_t(l)| / sqrt(var_i(l) + var_t(l)) (Eq. 5).

    `order` ranks features by decreasing Sep (ties by index, stable sort).
    """
    xi, xt = _as2d("image", image), _as2d("text", text)
    _same_d(xi, xt)
    mi, mt = xi.mean(axis=0), xt.mean(axis=0)
    vi, vt = xi.var(axis=0), xt.var(axis=0)
    sep = np.abs(mi - mt) / np.sqrt(np.maximum(vi + vt, 1e-300))
    order = np.argsort(-sep, kind="stable")
    return Separability(sep, order, mi, mt, vi, vt)


class SvmResult(NamedTuple):
    features: tuple[int, int]  # the two feature indices used
    accuracy: float  # training accuracy on all points (as in the paper's Fig. 2)
    coef: np.ndarray  # (2,) w; the boundary is w·x + b = 0 in raw feature units
    intercept: float  # b
    points: np.ndarray  # (P, 2) a subsample of the 2-feature points, for plotting
    labels: np.ndarray  # (P,) 1 = image, 0 = text
    n_image: int
    n_text: int


def svm_two_features(
    image: ArrayLike,
    text: ArrayLike,
    features: tuple[int, int] | None = None,
    *,
    C: float = 1.0,
    max_plot_points: int = 4000,
    seed: int = 0,
) -> SvmResult:
    """Linear SVM (scikit-learn `LinearSVC`, squared hinge, C) separating image from text on two
    features: by default the two with the largest Sep (Levi & Gilboa Fig. 2: 100 % on COCO).

    Accuracy is measured on the fitted points, as in the paper. Features are used raw (no
    scaling), so `coef`/`intercept` draw the boundary directly on a scatter of the raw values.
    """
    from sklearn.svm import LinearSVC  # lazy: keeps `import jaxclip.analysis` light

    xi, xt = _as2d("image", image), _as2d("text", text)
    _same_d(xi, xt)
    if features is None:
        order = feature_separability(xi, xt).order
        features = (int(order[0]), int(order[1]))
    f = tuple(int(k) for k in features)
    if len(f) != 2 or not all(0 <= k < xi.shape[1] for k in f):
        raise ValueError(f"features must be two indices in [0, {xi.shape[1]}), got {features!r}")
    if C <= 0:
        raise ValueError(f"C must be > 0, got {C!r}")
    pts = np.concatenate([xi[:, f], xt[:, f]])
    lab = np.concatenate([np.ones(len(xi), np.int64), np.zeros(len(xt), np.int64)])
    clf = LinearSVC(C=C, dual=False, max_iter=10000).fit(pts, lab)
    acc = float(np.mean(clf.predict(pts) == lab))
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(pts))[:max_plot_points]
    return SvmResult(
        features=(f[0], f[1]),
        accuracy=acc,
        coef=clf.coef_[0].astype(np.float64),
        intercept=float(clf.intercept_[0]),
        points=pts[keep],
        labels=lab[keep],
        n_image=len(xi),
        n_text=len(xt),
    )


# ------------------------------------------------------------------------------ thin shell, C


class ThinShell(NamedTuple):
    mean_norm: float  # μ_norm = E‖v − m‖
    var_norm: float  # var(‖v − m‖)
    sqrt_trace: float  # sqrt(tr C) = sqrt(E‖v − m‖²) = sqrt(μ_norm² + var_norm)
    rel_error: float  # (sqrt_trace − μ_norm) / μ_norm  (paper: 0.18 % on COCO images)
    norms: np.ndarray  # (N,) ‖v − m‖, for histograms


def thin_shell(embeds: ArrayLike) -> ThinShell:
    """Thin-shell statistics of the centred vectors y = v − m (Levi & Gilboa Eqs. 3-4).

    E‖y‖² = tr C = μ_norm² + var(‖y‖) holds exactly with population moments; the thin shell is
    the regime var(‖y‖) ≪ μ_norm² where μ_norm ≈ sqrt(tr C) (COCO images: 7.5873 vs 7.6007).
    """
    x = _as2d("embeds", embeds)
    norms = np.linalg.norm(x - x.mean(axis=0), axis=1)
    mu, var = float(norms.mean()), float(norms.var())
    st = float(np.sqrt(np.mean(norms**2)))
    return ThinShell(mu, var, st, (st - mu) / mu if mu > 0 else float("nan"), norms)


def covariance(embeds: ArrayLike) -> np.ndarray:
    """Population covariance C = (1/N) Σ (v − m)(v − m)ᵀ, (D, D) float64."""
    x = _as2d("embeds", embeds)
    y = x - x.mean(axis=0)
    return (y.T @ y) / x.shape[0]


class VarianceSpectrum(NamedTuple):
    variances: np.ndarray  # (D,) per-feature variances C_ll, sorted descending
    order: np.ndarray  # (D,) feature indices of `variances`
    eigenvalues: np.ndarray  # (D,) eigenvalues of C, descending
    participation_ratio: float  # (Σλ)² / Σλ²: D for a sphere, 1 for a line
    variance_ratio: float  # max / min per-feature variance (1 for a sphere)


def variance_spectrum(embeds: ArrayLike, cov: np.ndarray | None = None) -> VarianceSpectrum:
    """Per-feature variances and the eigen-spectrum of C (ellipsoid, not sphere: Property 3)."""
    c = covariance(embeds) if cov is None else np.asarray(cov, np.float64)
    var = np.diag(c)
    order = np.argsort(-var, kind="stable")
    eig = np.clip(np.linalg.eigvalsh(c)[::-1], 0.0, None)
    pr = float(eig.sum() ** 2 / max(float(np.sum(eig**2)), 1e-300))
    vmin = float(var.min())
    return VarianceSpectrum(
        var[order], order, eig, pr, float(var.max()) / vmin if vmin > 0 else float("inf")
    )


def off_diagonal_dominance(cov: ArrayLike) -> np.ndarray:
    """ODD(l) = Σ_{k≠l} |C_lk| / C_ll for every row l of a covariance matrix (Eq. 6).

    All ODD(l) < 1 means C is diagonally dominant; larger values mean strongly correlated
    features, a tilted ellipsoid (Property 4).
    """
    c = np.asarray(cov, np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cov must be square (D, D), got shape {c.shape}")
    diag = np.diag(c)
    off = np.abs(c).sum(axis=1) - np.abs(diag)
    return off / np.where(diag != 0, diag, np.nan)


class Whitening(NamedTuple):
    mean: np.ndarray  # (D,)
    matrix: np.ndarray  # (D, D) W: whitened = (v − mean) @ W
    method: str  # "zca" or "pca"


def whitening(embeds: ArrayLike, method: str = "zca", eps: float = 1e-5) -> Whitening:
    """Whitening transform of one modality (Kessy et al. 2018).

    With C = U Λ Uᵀ: PCA whitening W = U (Λ + eps)^{-1/2} (rotated to the eigenbasis), ZCA
    W = U (Λ + eps)^{-1/2} Uᵀ (closest to the original axes). Then (v − m) W has covariance
    Λ/(Λ + eps) ≈ I.
    """
    if method not in ("zca", "pca"):
        raise ValueError(f"method must be 'zca' or 'pca', got {method!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    x = _as2d("embeds", embeds)
    lam, u = np.linalg.eigh(covariance(x))
    scale = 1.0 / np.sqrt(np.clip(lam, 0.0, None) + eps)
    w = u * scale[None, :]
    if method == "zca":
        w = w @ u.T
    return Whitening(x.mean(axis=0), w, method)


def whiten(embeds: ArrayLike, transform: Whitening) -> np.ndarray:
    """Applies a `Whitening`: (v − mean) @ W."""
    x = np.asarray(embeds, np.float64)
    if x.ndim != 2 or x.shape[1] != transform.mean.shape[0]:
        raise ValueError(f"embeds must be (N, {transform.mean.shape[0]}), got {x.shape}")
    return (x - transform.mean) @ transform.matrix


class ModalityGap(NamedTuple):
    vector: np.ndarray  # (D,) m_i − m_t
    norm: float  # ‖m_i − m_t‖
    cos_means: float  # cos(m_i, m_t)
    normalised_vector: np.ndarray  # (D,) mean(v̂_i) − mean(t̂_i): the gap on the unit sphere
    normalised_norm: float  # its norm (Liang et al. 2022's ‖Δ‖)


def modality_gap(image: ArrayLike, text: ArrayLike) -> ModalityGap:
    """The modality-gap vector m_i − m_t of the raw embeddings, and of the normalised ones."""
    xi, xt = _as2d("image", image), _as2d("text", text)
    _same_d(xi, xt)
    mi, mt = xi.mean(axis=0), xt.mean(axis=0)
    g = mi - mt
    ni = (xi / np.linalg.norm(xi, axis=1, keepdims=True)).mean(axis=0)
    nt = (xt / np.linalg.norm(xt, axis=1, keepdims=True)).mean(axis=0)
    cos = float(mi @ mt / max(np.linalg.norm(mi) * np.linalg.norm(mt), 1e-300))
    return ModalityGap(g, float(np.linalg.norm(g)), cos, ni - nt, float(np.linalg.norm(ni - nt)))


# ------------------------------------------------------------------------------- loss sweeps


def auto_block_size(n: int, n_coefficients: int, budget_bytes: int = 2**28) -> int:
    """Rows per block so that ~4 live (A, block, N) float32 temporaries fit in `budget_bytes`."""
    per_row = 4 * 4 * max(n_coefficients, 1) * max(n, 1)
    return int(max(1, min(n, budget_bytes // per_row)))


@functools.partial(jax.jit, static_argnames=("block_size",))
def _shift_sweep(v, t, a, b, coefficients, logit_scale, logit_bias, block_size):
    n = v.shape[0]
    vb, vv, va = v @ b, jnp.sum(v * v, 1), v @ a
    ta, tt, tb = t @ a, jnp.sum(t * t, 1), t @ b
    ab, aa, bb = a @ b, a @ a, b @ b

    def one(c):
        inv_nv = jax.lax.rsqrt(jnp.maximum(vv - 2 * c * va + c * c * aa, _EPS))  # 1/‖v − c a‖
        inv_nt = jax.lax.rsqrt(jnp.maximum(tt - 2 * c * tb + c * c * bb, _EPS))  # 1/‖t − c b‖
        col = (-c * ta + c * c * ab) * inv_nt  # (N,) the per-column part of the numerator

        def rows(r):
            g = v[r] @ t.T  # shared by every coefficient: vmap leaves it unbatched
            cosines = ((g - c * vb[r][:, None]) * inv_nt[None, :] + col[None, :]) * inv_nv[r][
                :, None
            ]
            if logit_bias is None:
                return logit_scale * cosines
            return logit_scale * cosines + logit_bias

        if logit_bias is None:
            return clip_loss_parts_blockwise(rows, n, block_size)
        return sigmoid_loss_parts_blockwise(rows, n, block_size)

    return jax.vmap(one)(coefficients)


def shift_loss_sweep(
    image: ArrayLike,
    text: ArrayLike,
    coefficients: ArrayLike,
    *,
    image_shift: ArrayLike | None = None,
    text_shift: ArrayLike | None = None,
    logit_scale: float | ArrayLike = 100.0,
    logit_bias: float | ArrayLike | None = None,
    block_size: int | None = None,
    budget_bytes: int = 2**28,
) -> ClipLossParts | SigmoidLossParts:
    """CLIP loss parts while the embeddings move: v' = v − c·a, t' = t − c·b, for all c at once.

    The whole set is one batch (N pairs; Levi & Gilboa Sec. 5 use all of COCO val). One vmapped
    computation over the grid: the logits are rebuilt from a single shared G = V Tᵀ, since

        L_jk(c) = s · (G_jk − c v_j·b − c a·t_k + c² a·b) / (‖v_j − c a‖ ‖t_k − c b‖),

    and streamed in row blocks (`clip_loss_parts_blockwise`), so memory is O(A · block · N)
    and the N×N×D matmul is done once per block for the whole grid.

    Args:
      image, text: (N, D) raw embeddings, row j of each a matched pair.
      coefficients: (A,) the grid of c.
      image_shift, text_shift: (D,) directions a, b (None = no shift of that modality).
      logit_scale: s = 1/τ (CLIP ViT-B/32: 100).
      logit_bias: None for CLIP's softmax loss; a scalar b for a sigmoid-loss model (SigLIP):
        the logits are then the scores s·cos + b and the loss SigLIP's sigmoid loss
        (`jaxclip.losses.sigmoid_loss_parts_blockwise`).
      block_size: rows per block; default from `budget_bytes` (`auto_block_size`).

    Returns:
      `ClipLossParts` (or `SigmoidLossParts` with a `logit_bias`) whose fields have a leading
      axis of length A.
    """
    v = jnp.asarray(image, jnp.float32)
    t = jnp.asarray(text, jnp.float32)
    if v.ndim != 2 or v.shape != t.shape:
        raise ValueError(f"image and text must both be (N, D), got {v.shape} and {t.shape}")
    d = v.shape[1]
    cs = jnp.asarray(coefficients, jnp.float32)
    if cs.ndim != 1 or cs.shape[0] < 1:
        raise ValueError(f"coefficients must be a non-empty 1-D grid, got shape {cs.shape}")
    a = (
        jnp.zeros((d,), jnp.float32)
        if image_shift is None
        else jnp.asarray(image_shift, jnp.float32)
    )
    b = jnp.zeros((d,), jnp.float32) if text_shift is None else jnp.asarray(text_shift, jnp.float32)
    if a.shape != (d,) or b.shape != (d,):
        raise ValueError(f"image_shift and text_shift must be ({d},), got {a.shape} and {b.shape}")
    s = jnp.asarray(logit_scale, jnp.float32)
    if s.ndim != 0:
        raise ValueError(f"logit_scale must be a scalar, got shape {s.shape}")
    bias = None if logit_bias is None else jnp.asarray(logit_bias, jnp.float32)
    if bias is not None and bias.ndim != 0:
        raise ValueError(f"logit_bias must be a scalar, got shape {bias.shape}")
    if block_size is None:
        block_size = auto_block_size(v.shape[0], cs.shape[0], budget_bytes)
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    return _shift_sweep(v, t, a, b, cs, s, bias, min(block_size, v.shape[0]))


def alpha_shift_loss_sweep(
    image: ArrayLike,
    text: ArrayLike,
    alphas: ArrayLike,
    *,
    side: str = "image",
    logit_scale: float | ArrayLike = 100.0,
    logit_bias: float | ArrayLike | None = None,
    block_size: int | None = None,
    budget_bytes: int = 2**28,
) -> ClipLossParts | SigmoidLossParts:
    """The α-shift experiment (Levi & Gilboa Eq. 9, Fig. 6): v' = v − α·m for α in a grid.

    side="image" shifts every image by α·m_i (m_i = mean raw image embedding), texts fixed;
    side="text" shifts every text by α·m_t. α = 0 is CLIP as trained, α = 1 centres that
    modality at the origin, α = −1 doubles its offset. See `shift_loss_sweep` (with a
    `logit_bias`, the sigmoid loss of a SigLIP-style model).
    """
    if side not in ("image", "text"):
        raise ValueError(f"side must be 'image' or 'text', got {side!r}")
    v, t = jnp.asarray(image, jnp.float32), jnp.asarray(text, jnp.float32)
    if side == "image":
        return shift_loss_sweep(
            v, t, alphas, image_shift=jnp.mean(v, 0), logit_scale=logit_scale,
            logit_bias=logit_bias, block_size=block_size, budget_bytes=budget_bytes,
        )  # fmt: skip
    return shift_loss_sweep(
        v, t, alphas, text_shift=jnp.mean(t, 0), logit_scale=logit_scale,
        logit_bias=logit_bias, block_size=block_size, budget_bytes=budget_bytes,
    )  # fmt: skip


def gap_shift_loss_sweep(
    image: ArrayLike,
    text: ArrayLike,
    betas: ArrayLike,
    *,
    mode: str = "both",
    logit_scale: float | ArrayLike = 100.0,
    block_size: int | None = None,
    budget_bytes: int = 2**28,
) -> ClipLossParts:
    """The loss as the embeddings move along the modality-gap vector g = m_i − m_t.

    mode="both": v' = v − β g/2, t' = t + β g/2 (both means meet at β = 1);
    mode="image": v' = v − β g (image mean reaches m_t at β = 1); mode="text": t' = t + β g.
    """
    if mode not in ("both", "image", "text"):
        raise ValueError(f"mode must be 'both', 'image' or 'text', got {mode!r}")
    v, t = jnp.asarray(image, jnp.float32), jnp.asarray(text, jnp.float32)
    g = jnp.mean(v, 0) - jnp.mean(t, 0)
    a = {"both": 0.5 * g, "image": g, "text": None}[mode]
    b = {"both": -0.5 * g, "image": None, "text": -g}[mode]
    return shift_loss_sweep(
        v, t, betas, image_shift=a, text_shift=b, logit_scale=logit_scale,
        block_size=block_size, budget_bytes=budget_bytes,
    )  # fmt: skip


# -------------------------------------------------------------------------------- KL vs α


def histogram_kl(
    p_samples: ArrayLike,
    q_samples: ArrayLike,
    *,
    bins: int = 100,
    smoothing: float = 0.5,
) -> float:
    """KL(P‖Q) from histograms: `bins` equal-width bins over [min, max] of both samples together,
    probabilities (count + smoothing)/(n + bins·smoothing) (additive smoothing; 0.5 is the
    Krichevsky–Trofimov / Jeffreys prior), KL = Σ_k p_k log(p_k/q_k) in nats.
    """
    p = np.asarray(p_samples, np.float64).ravel()
    q = np.asarray(q_samples, np.float64).ravel()
    if bins < 1 or smoothing < 0 or p.size == 0 or q.size == 0:
        raise ValueError(
            f"need bins >= 1, smoothing >= 0 and non-empty samples, got bins={bins}, "
            f"smoothing={smoothing}, sizes {p.size}, {q.size}"
        )
    lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
    if hi <= lo:
        hi = lo + 1.0
    cp, _ = np.histogram(p, bins=bins, range=(lo, hi))
    cq, _ = np.histogram(q, bins=bins, range=(lo, hi))
    pp = (cp + smoothing) / (p.size + bins * smoothing)
    qq = (cq + smoothing) / (q.size + bins * smoothing)
    nz = pp > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(pp[nz] * np.log(pp[nz] / qq[nz])))


def gaussian_kl(p_samples: ArrayLike, q_samples: ArrayLike) -> float:
    """KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²)) of Gaussians fitted to the samples (nats):
    log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − ½."""
    p = np.asarray(p_samples, np.float64).ravel()
    q = np.asarray(q_samples, np.float64).ravel()
    mp, mq, sp, sq = p.mean(), q.mean(), p.std(), q.std()
    return float(np.log(sq / sp) + (sp**2 + (mp - mq) ** 2) / (2 * sq**2) - 0.5)


class ConformityKLSweep(NamedTuple):
    alphas: np.ndarray  # (A,)
    kl_image_text: np.ndarray  # (A,) KL(P_image ‖ P_text)
    kl_text_image: np.ndarray  # (A,) KL(P_text ‖ P_image)
    image_conformity: np.ndarray  # (A, N_i) conformities of the (shifted) images
    text_conformity: np.ndarray  # (A, N_t) conformities of the (shifted) texts
    method: str  # "histogram" or "gaussian"


def conformity_kl_sweep(
    image: ArrayLike,
    text: ArrayLike,
    alphas: ArrayLike,
    *,
    side: str = "image",
    method: str = "histogram",
    bins: int = 100,
    smoothing: float = 0.5,
) -> ConformityKLSweep:
    """KL between the image and text conformity distributions as one modality is shifted by
    α·(its mean) (Levi & Gilboa Sec. 6.2, Fig. 11; paper: minimum near α = 0, KL ≈ 0.14).

    Conformity is within each modality's own set (exact closed form for the whole α grid,
    `conformity_under_shift`). KL by `histogram_kl` (shared equal-width bins per α, additive
    smoothing) or `gaussian_kl` (method="gaussian"); both directions are returned.
    """
    if side not in ("image", "text"):
        raise ValueError(f"side must be 'image' or 'text', got {side!r}")
    if method not in ("histogram", "gaussian"):
        raise ValueError(f"method must be 'histogram' or 'gaussian', got {method!r}")
    al = np.asarray(alphas, np.float32)
    if al.ndim != 1:
        raise ValueError(f"alphas must be 1-D, got shape {al.shape}")
    xi = jnp.asarray(image, jnp.float32)
    xt = jnp.asarray(text, jnp.float32)
    zero = jnp.zeros_like(jnp.asarray(al))
    ci = conformity_under_shift(xi, al if side == "image" else zero)
    ct = conformity_under_shift(xt, al if side == "text" else zero)
    ci, ct = np.asarray(ci, np.float64), np.asarray(ct, np.float64)
    if method == "histogram":
        kl = functools.partial(histogram_kl, bins=bins, smoothing=smoothing)
    else:
        kl = gaussian_kl
    kit = np.array([kl(ci[k], ct[k]) for k in range(len(al))])
    kti = np.array([kl(ct[k], ci[k]) for k in range(len(al))])
    return ConformityKLSweep(al.astype(np.float64), kit, kti, ci, ct, method)


# ------------------------------------------------------------------------------------- SLERP


def slerp(u: ArrayLike, v: ArrayLike, theta: ArrayLike, *, norm_mode: str = "raw") -> Array:
    """Spherical linear interpolation between u and v (..., D) at θ ∈ [0, 1] (broadcasts).

    With Ω = ∠(u, v):
    * norm_mode="raw" (default; the SLERP of unCLIP, Ramesh et al. 2022, that Levi & Gilboa
      extend): sin((1−θ)Ω)/sin Ω · u + sin(θΩ)/sin Ω · v on the raw vectors. Endpoints are
      exact; norms are preserved when ‖u‖ = ‖v‖.
    * norm_mode="linear": the same on the unit directions, times (1−θ)‖u‖ + θ‖v‖, so the norm
      moves linearly.
    Nearly parallel vectors (sin Ω < 1e-6) fall back to linear interpolation; antipodal ones
    have no unique great circle and also fall back.
    """
    if norm_mode not in ("raw", "linear"):
        raise ValueError(f"norm_mode must be 'raw' or 'linear', got {norm_mode!r}")
    u, v = jnp.asarray(u), jnp.asarray(v)
    if u.shape[-1:] != v.shape[-1:]:
        raise ValueError(f"u and v must share the last axis, got {u.shape} and {v.shape}")
    th = jnp.asarray(theta, u.dtype)[..., None]
    nu = jnp.sqrt(jnp.maximum(jnp.sum(u * u, -1, keepdims=True), _EPS))
    nv = jnp.sqrt(jnp.maximum(jnp.sum(v * v, -1, keepdims=True), _EPS))
    uh, vh = u / nu, v / nv
    cos = jnp.clip(jnp.sum(uh * vh, -1, keepdims=True), -1.0, 1.0)
    omega = jnp.arccos(cos)
    so = jnp.sin(omega)
    ok = so > 1e-6
    so_safe = jnp.where(ok, so, 1.0)
    w0 = jnp.where(ok, jnp.sin((1.0 - th) * omega) / so_safe, 1.0 - th)
    w1 = jnp.where(ok, jnp.sin(th * omega) / so_safe, th)
    if norm_mode == "raw":
        return w0 * u + w1 * v
    direction = w0 * uh + w1 * vh
    direction = direction / jnp.sqrt(jnp.maximum(jnp.sum(direction**2, -1, keepdims=True), _EPS))
    return ((1.0 - th) * nu + th * nv) * direction


def vslerp(
    u: ArrayLike,
    v: ArrayLike,
    theta: ArrayLike,
    alpha: ArrayLike,
    mean: ArrayLike,
    *,
    norm_mode: str = "raw",
) -> Array:
    """Vertical SLERP (Levi & Gilboa Eq. 12): SLERP(u − αm, v − αm, θ) + αm.

    α = 0 is plain SLERP about the origin; α = 1 rotates about the modality mean m (the centre
    of the ellipsoid), keeping the interpolant on the shell; the paper finds −2 ≤ α ≤ 2 useful.
    """
    m = jnp.asarray(mean)
    al = jnp.asarray(alpha, m.dtype)[..., None]
    return (
        slerp(jnp.asarray(u) - al * m, jnp.asarray(v) - al * m, theta, norm_mode=norm_mode) + al * m
    )


# ------------------------------------------------------------------------------------ summary


def double_ellipsoid_summary(
    image: ArrayLike, text: ArrayLike, *, top_k: int = 10
) -> dict[str, Any]:
    """JSON-ready scalars of the double-ellipsoid analysis (no arrays larger than `top_k`)."""
    xi, xt = _as2d("image", image), _as2d("text", text)
    _same_d(xi, xt)
    sep = feature_separability(xi, xt)
    out: dict[str, Any] = {
        "separability_top_features": [int(k) for k in sep.order[:top_k]],
        "separability_top_values": [float(sep.sep[k]) for k in sep.order[:top_k]],
        "n_features_sep_gt_1": int(np.sum(sep.sep > 1.0)),
    }
    gap = modality_gap(xi, xt)
    out["gap_norm"] = gap.norm
    out["cos_means"] = gap.cos_means
    for name, x in (("image", xi), ("text", xt)):
        mom = modality_moments(x)
        shell = thin_shell(x)
        cov = covariance(x)
        spec = variance_spectrum(x, cov)
        odd = off_diagonal_dominance(cov)
        out[name] = {
            "n": int(x.shape[0]),
            "mean_norm": mom.mean_norm,
            "std_norm": mom.std_norm,
            "mean_over_std_ratio": mom.ratio,
            "shell_mean_norm": shell.mean_norm,
            "shell_var_norm": shell.var_norm,
            "shell_sqrt_trace": shell.sqrt_trace,
            "shell_rel_error": shell.rel_error,
            "participation_ratio": spec.participation_ratio,
            "variance_ratio_max_min": spec.variance_ratio,
            "odd_median": float(np.nanmedian(odd)),
            "odd_fraction_gt_1": float(np.nanmean(odd > 1.0)),
        }
    return out
