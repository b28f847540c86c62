"""Analyses of a decomposed image embedding: mean-ablation, TextSpan, per-component probes, maps.

Pure functions of arrays (the decomposition itself is `jaxclip.models.decompose`): `heads`
(N, L, H, D), `mlps` (N, L, D), `embed` (N, D) and `bias` (D,) sum to the raw image embeddings.

* Mean-ablation (Gandelsman et al. 2024, §3): a component's direct contribution c_n is replaced
  by its mean over the dataset, so the embedding becomes total_n - sum_ablated (c_n - mean(c)).
  Ablating nothing leaves the embeddings; ablating everything gives every image the dataset's
  mean embedding. `single_head_ablations` ablates the heads of a layer one at a time.
* TextSpan (ibid., Algorithm 1): a greedy basis of text directions for one component's outputs:
  pick the text whose direction carries most variance of the (centred) outputs, project it out
  of the outputs and of every remaining text, repeat; report the variance explained.
* Ridge probes: one-vs-rest ridge regression to +-1 targets, argmax (scikit-learn's
  `RidgeClassifier` with an intercept), fitted in closed form for every component at once.
* Spatial maps: per-patch scores pooled onto a coarser grid by area overlap, and the pointing
  game (does the map's peak cell hold the object?).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


def _check_parts(heads: np.ndarray, mlps: np.ndarray, embed: np.ndarray) -> tuple[int, int]:
    if heads.ndim != 4 or mlps.ndim != 3 or embed.ndim != 2:
        raise ValueError(
            f"heads must be (N, L, H, D), mlps (N, L, D), embed (N, D); got {heads.shape}, "
            f"{mlps.shape}, {embed.shape}"
        )
    n, layers, nh, d = heads.shape
    if mlps.shape != (n, layers, d) or embed.shape != (n, d):
        raise ValueError(
            f"mlps {mlps.shape} / embed {embed.shape} do not match heads {heads.shape}"
        )
    return layers, nh


@dataclasses.dataclass(frozen=True)
class Means:
    """Dataset means of every component: heads (L, H, D), mlps (L, D), embed (D,)."""

    heads: np.ndarray
    mlps: np.ndarray
    embed: np.ndarray


def component_means(heads: np.ndarray, mlps: np.ndarray, embed: np.ndarray) -> Means:
    """Mean of each component's direct contribution over the images (float64)."""
    _check_parts(heads, mlps, embed)
    return Means(
        heads=np.asarray(heads, np.float64).mean(0),
        mlps=np.asarray(mlps, np.float64).mean(0),
        embed=np.asarray(embed, np.float64).mean(0),
    )


def mean_ablate(
    heads: np.ndarray,
    mlps: np.ndarray,
    embed: np.ndarray,
    bias: np.ndarray,
    *,
    head_mask: np.ndarray | None = None,
    mlp_mask: np.ndarray | None = None,
    ablate_embed: bool = False,
    means: Means | None = None,
) -> np.ndarray:
    """Embeddings (N, D) with the masked components replaced by their means.

    Args:
      heads, mlps, embed, bias: the decomposition.
      head_mask: (L, H) bool, True = ablate that head (None: none).
      mlp_mask: (L,) bool, True = ablate that layer's MLP (None: none).
      ablate_embed: also ablate the embedding path.
      means: the means to put in (default: `component_means` of these images).
    """
    layers, nh = _check_parts(heads, mlps, embed)
    hm = np.zeros((layers, nh), bool) if head_mask is None else np.asarray(head_mask, bool)
    mm = np.zeros(layers, bool) if mlp_mask is None else np.asarray(mlp_mask, bool)
    if hm.shape != (layers, nh) or mm.shape != (layers,):
        raise ValueError(
            f"head_mask must be ({layers}, {nh}) and mlp_mask ({layers},); got {hm.shape}, "
            f"{mm.shape}"
        )
    means = means or component_means(heads, mlps, embed)
    h = np.where(hm[None, :, :, None], means.heads[None], np.asarray(heads, np.float64))
    m = np.where(mm[None, :, None], means.mlps[None], np.asarray(mlps, np.float64))
    e = means.embed[None] if ablate_embed else np.asarray(embed, np.float64)
    e = np.broadcast_to(e, embed.shape)
    return (h.sum((1, 2)) + m.sum(1) + e + np.asarray(bias, np.float64)).astype(np.float32)


def single_head_ablations(
    heads: np.ndarray,
    mlps: np.ndarray,
    embed: np.ndarray,
    bias: np.ndarray,
    layer: int,
    *,
    means: Means | None = None,
) -> np.ndarray:
    """(H, N, D) embeddings with one head of `layer` mean-ablated at a time.

    Row h is `mean_ablate` with only head (layer, h) masked: the embedding minus that head's
    direct contribution plus its dataset mean, total_n - c_n + mean(c) (float64 inside).
    """
    layers, _ = _check_parts(heads, mlps, embed)
    if not 0 <= layer < layers:
        raise ValueError(f"layer={layer} must be in [0, {layers})")
    means = means or component_means(heads, mlps, embed)
    total = (
        np.asarray(heads, np.float64).sum((1, 2))
        + np.asarray(mlps, np.float64).sum(1)
        + np.asarray(embed, np.float64)
        + np.asarray(bias, np.float64)
    )
    own = np.moveaxis(np.asarray(heads[:, layer], np.float64), 1, 0)  # (H, N, D)
    return (total[None] - own + means.heads[layer][:, None]).astype(np.float32)


def layer_masks(
    layers: int, heads: int, direction: str, *, mlps: bool = True
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Masks ablating k = 0..layers layers from the first upward ("first") or the last
    downward ("last"): [(k, head_mask (L, H), mlp_mask (L,))]; attention heads always,
    MLPs too when `mlps`."""
    if direction not in ("first", "last"):
        raise ValueError(f"direction={direction!r} is not valid; choose 'first' or 'last'")
    out = []
    for k in range(layers + 1):
        chosen = np.zeros(layers, bool)
        if direction == "first":
            chosen[:k] = True
        elif k:
            chosen[layers - k :] = True
        out.append((k, np.repeat(chosen[:, None], heads, 1), chosen & mlps))
    return out


@dataclasses.dataclass(frozen=True)
class TextSpanResult:
    """TextSpan of one component: chosen text indices and cumulative variance explained."""

    indices: tuple[int, ...]
    explained: tuple[float, ...]


def text_span(outputs: np.ndarray, texts: np.ndarray, k: int) -> TextSpanResult:
    """Greedy text basis of a component's outputs (Gandelsman et al. 2024, Algorithm 1).

    Args:
      outputs: (N, D) the component's direct contributions over a set of images.
      texts: (M, D) text directions (e.g. text embeddings of a pool of descriptions).
      k: number of texts to choose (k <= M).

    Returns:
      `TextSpanResult`: the chosen rows of `texts` in order, and after each choice the fraction
      of the outputs' total variance that the chosen directions span.
    """
    x = np.asarray(outputs, np.float64)
    t = np.asarray(texts, np.float64)
    if x.ndim != 2 or t.ndim != 2 or x.shape[1] != t.shape[1]:
        raise ValueError(f"outputs (N, D) and texts (M, D) needed; got {x.shape}, {t.shape}")
    if not 1 <= k <= len(t):
        raise ValueError(f"k={k} must be in [1, {len(t)}] (the number of texts)")
    x = x - x.mean(0)
    total = float((x**2).sum())
    t = t.copy()
    chosen: list[int] = []
    explained: list[float] = []
    residual = x
    for _ in range(k):
        norms = np.linalg.norm(t, axis=1)
        unit = np.where(norms[:, None] > 1e-12, t / np.maximum(norms, 1e-12)[:, None], 0.0)
        var = ((residual @ unit.T) ** 2).sum(0)
        var[chosen] = -1.0
        j = int(np.argmax(var))
        chosen.append(j)
        u = unit[j]
        residual = residual - np.outer(residual @ u, u)
        t = t - np.outer(t @ u, u)
        explained.append(1.0 - float((residual**2).sum()) / total if total > 0 else 0.0)
    return TextSpanResult(tuple(chosen), tuple(explained))


def ridge_probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    alpha: float = 1.0,
    num_classes: int | None = None,
) -> np.ndarray:
    """Test accuracy of a one-vs-rest ridge classifier per component (closed form).

    Targets are +-1 per class, the intercept is fitted (features and targets centred), the
    prediction is the argmax: scikit-learn's `RidgeClassifier(alpha)`.

    Args:
      train_x: (..., N, F) one design matrix per leading index (e.g. (L, H, N, D)).
      train_y: (N,) int labels; test_x (..., M, F), test_y (M,).

    Returns:
      (...) accuracies.
    """
    xtr = np.asarray(train_x, np.float64)
    xte = np.asarray(test_x, np.float64)
    ytr, yte = np.asarray(train_y), np.asarray(test_y)
    c = int(num_classes or max(ytr.max(), yte.max()) + 1)
    targets = np.where(np.arange(c)[None] == ytr[:, None], 1.0, -1.0)
    mx = xtr.mean(-2, keepdims=True)
    my = targets.mean(0)
    xc = xtr - mx
    f = xtr.shape[-1]
    gram = np.swapaxes(xc, -1, -2) @ xc + alpha * np.eye(f)
    w = np.linalg.solve(gram, np.swapaxes(xc, -1, -2) @ (targets - my))
    pred = ((xte - mx) @ w + my).argmax(-1)
    return (pred == yte).mean(-1)


def overlap_matrix(cells: int, patches: int) -> np.ndarray:
    """(cells, patches): length of overlap of cell k = [k/cells, (k+1)/cells) with patch i =
    [i/patches, (i+1)/patches), in units of the side (1-D; a 2-D cell is the outer product)."""
    lo = np.maximum.outer(np.arange(cells) / cells, np.arange(patches) / patches)
    hi = np.minimum.outer(np.arange(1, cells + 1) / cells, np.arange(1, patches + 1) / patches)
    return np.clip(hi - lo, 0.0, None)


def grid_pool(maps: np.ndarray, cells: int) -> np.ndarray:
    """(N, P, P) per-patch maps -> (N, cells, cells) area-weighted means over each cell."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2]:
        raise ValueError(f"maps must be (N, P, P); got shape {maps.shape}")
    r = overlap_matrix(cells, maps.shape[1]) * cells  # rows sum to 1
    return np.einsum("kp,npq,lq->nkl", r, maps, r)


def pointing_game(maps: np.ndarray, cells: int, target: Sequence[int]) -> np.ndarray:
    """(N,) bool: the peak of each map pooled to a cells x cells grid lies in its target cell
    (row-major index, e.g. shapes' 3x3 `position`). A random cell scores 1 / cells^2."""
    pooled = grid_pool(maps, cells).reshape(len(maps), -1)
    return pooled.argmax(-1) == np.asarray(target)
