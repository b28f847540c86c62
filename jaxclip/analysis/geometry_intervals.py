"""Bootstrap intervals of the geometry study's scalars: modality means and the modality gap.

The unit resampled is the image: a resample draws the paired images with replacement (the
index rows of `jaxclip.analysis.bootstrap`, same seed, chunks and keys) and every text goes with
its image as often as the image was drawn (`owner`: the image of each text row), so an image's
captions stay together as in the retrieval intervals. With one text per image (a chosen caption,
or class prompts) that is resampling pairs.

Per resample, with counts c (the number of times each image was drawn) and the texts' counts
c[owner], every statistic is a function of weighted means, so one chunk of resamples is a few
matrix products of the (rows, N) count matrix with the embeddings (float32, centred on the
full-sample mean so that E[x²] − E[x]² does not cancel):

* per modality (as `geometry.modality_moments`): ‖m‖, ‖σ‖ (population std per feature), ‖m‖/‖σ‖;
* the gap (as `geometry.modality_gap`): ‖m_i − m_t‖, cos(m_i, m_t), and ‖Δ‖ of the normalised
  embeddings.

The point values are the study's own (float64) numbers; the interval is the 2.5 / 97.5
percentiles of the resampled statistic. `n` is the number of images.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jaxclip.analysis import bootstrap
from jaxclip.analysis import geometry as geo
from jaxclip.errors import UserValueError

__all__ = ["GAP_KEYS", "MOMENT_KEYS", "geometry_intervals", "resampled_geometry"]

MOMENT_KEYS = ("mean_norm", "std_norm", "ratio")
GAP_KEYS = ("norm", "cos_means", "normalised_norm")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)


@partial(jax.jit, static_argnames=("rows",))
def _chunk(key, image, text, owner, mean_image, mean_text, rows):
    """Statistics of `rows` resamples; image / text are [x − μ, (x − μ)², x/‖x‖] per row."""
    n, d = image.shape[0], mean_image.shape[0]
    idx = bootstrap.draw_indices(key, n, rows)
    counts = jnp.zeros((rows, n), jnp.float32).at[jnp.arange(rows)[:, None], idx].add(1.0)
    text_counts = counts[:, owner]
    wi = image.T @ counts.T / n  # (3d, rows)
    wt = text.T @ text_counts.T / text_counts.sum(axis=1)

    def moments(w, mean):
        shift, sq, unit = w[:d], w[d : 2 * d], w[2 * d :]
        m = mean[:, None] + shift
        std = jnp.sqrt(jnp.maximum(sq - shift * shift, 0.0))
        return m, jnp.linalg.norm(m, axis=0), jnp.linalg.norm(std, axis=0), unit

    mi, mi_norm, si_norm, ui = moments(wi, mean_image)
    mt, mt_norm, st_norm, ut = moments(wt, mean_text)
    cos = jnp.sum(mi * mt, axis=0) / jnp.maximum(mi_norm * mt_norm, 1e-30)
    return {
        "image.mean_norm": mi_norm,
        "image.std_norm": si_norm,
        "image.ratio": mi_norm / si_norm,
        "text.mean_norm": mt_norm,
        "text.std_norm": st_norm,
        "text.ratio": mt_norm / st_norm,
        "gap.norm": jnp.linalg.norm(mi - mt, axis=0),
        "gap.cos_means": cos,
        "gap.normalised_norm": jnp.linalg.norm(ui - ut, axis=0),
    }


def resampled_geometry(
    image: np.ndarray,
    text: np.ndarray,
    owner: np.ndarray,
    num_resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    chunk: int | None = None,
) -> dict[str, np.ndarray]:
    """Every statistic of the module docstring per resample: "image.mean_norm", …,
    "gap.normalised_norm" -> (num_resamples,) float64.

    Args:
      image: (N, D) raw image embeddings, each image once.
      text: (N_t, D) raw text embeddings.
      owner: (N_t,) the row of `image` each text belongs to.
      num_resamples, seed, chunk: as in `jaxclip.analysis.bootstrap`: the index rows are those
        of `bootstrap.resample_indices(N, num_resamples, seed, chunk)`, with `chunk` (when None)
        = max(1, 2**24 // max(N, N_t)) rows so that the text counts stay bounded too.
    """
    xi = np.asarray(image, np.float64)
    xt = np.asarray(text, np.float64)
    own = np.asarray(owner)
    if xi.ndim != 2 or xt.ndim != 2 or xi.shape[1] != xt.shape[1] or len(xi) < 1:
        raise UserValueError(
            f"image {xi.shape} and text {xt.shape} embeddings must be (N, D) and (N_t, D)"
        )
    if own.shape != (len(xt),) or (own.size and (own.min() < 0 or own.max() >= len(xi))):
        raise UserValueError(
            f"owner has shape {own.shape}: expected ({len(xt)},) indices into {len(xi)} images"
        )
    mean_i, mean_t = xi.mean(axis=0), xt.mean(axis=0)

    def stack(x, mean):
        c = x - mean
        return jnp.asarray(np.concatenate([c, c * c, _unit_rows(x)], axis=1), jnp.float32)

    si, st = stack(xi, mean_i), stack(xt, mean_t)
    mi, mt = jnp.asarray(mean_i, jnp.float32), jnp.asarray(mean_t, jnp.float32)
    own_j = jnp.asarray(own, jnp.int32)
    parts: dict[str, list[np.ndarray]] = {}
    bootstrap.check_resamples(num_resamples)
    if chunk is None:  # bound the (rows, N_t) text counts too
        chunk = max(1, bootstrap.MAX_CHUNK_INDICES // max(len(xi), len(xt)))
    for c, rows, keep in bootstrap.chunks(len(xi), num_resamples, chunk):
        out = _chunk(bootstrap.chunk_key(seed, c), si, st, own_j, mi, mt, rows)
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v, np.float64)[:keep])
    return {k: np.concatenate(v) for k, v in parts.items()}


def geometry_intervals(
    image: np.ndarray,
    text: np.ndarray,
    owner: np.ndarray,
    num_resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = bootstrap.LEVEL,
) -> dict[str, dict]:
    """The study's `moments_ci` and `gap_ci` entries: {"moments_ci": {"image": {"mean_norm":
    Interval dict, …}, "text": {…}}, "gap_ci": {"norm": …, "cos_means": …,
    "normalised_norm": …}}, point values from `geometry.modality_moments` / `modality_gap`."""
    samples = resampled_geometry(image, text, owner, num_resamples, seed)
    n = int(np.shape(image)[0])
    g = geo.modality_gap(image, text)
    points = {
        "gap.norm": g.norm,
        "gap.cos_means": g.cos_means,
        "gap.normalised_norm": g.normalised_norm,
    }
    for side, x in (("image", image), ("text", text)):
        m = geo.modality_moments(x)
        points.update(
            {
                f"{side}.mean_norm": m.mean_norm,
                f"{side}.std_norm": m.std_norm,
                f"{side}.ratio": m.ratio,
            }
        )

    def interval(key):
        lo, hi = bootstrap.percentile_interval(samples[key], level)
        return bootstrap.Interval(float(points[key]), float(lo), float(hi), n).as_dict()

    return {
        "moments_ci": {
            s: {k: interval(f"{s}.{k}") for k in MOMENT_KEYS} for s in ("image", "text")
        },
        "gap_ci": {k: interval(f"gap.{k}") for k in GAP_KEYS},
    }
