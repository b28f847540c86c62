"""Retrieval plots: the distribution of the true item's rank, and top-k image grids for queries.

Every function takes arrays (never models) and returns one matplotlib Figure; the caller saves
it with `jaxclip.report.save_figure(fig, workdir, name)`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

_COLORS = ["#3b6fb6", "#e66101", "#1b9e77", "#7570b3"]


def _rank_sets(ranks: Any) -> dict[str, np.ndarray]:
    if hasattr(ranks, "text_to_image") and hasattr(ranks, "image_to_text"):  # RetrievalRanks
        ranks = {"text → image": ranks.text_to_image, "image → text": ranks.image_to_text}
    if not isinstance(ranks, Mapping) or not ranks:
        raise ValueError("ranks must be a non-empty {name: (N,) ranks} mapping or RetrievalRanks")
    out = {}
    for key, r in ranks.items():
        a = np.asarray(r)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"ranks[{key!r}] must be a 1-D integer array; got {a.shape} {a.dtype}")
        a = a[a >= 0]  # -1 = query without a target
        if a.size == 0:
            raise ValueError(f"ranks[{key!r}] has no valid (>= 0) rank")
        out[str(key)] = a
    return out


def plot_rank_distribution(
    ranks: Any,
    ks: Sequence[int] = (1, 5, 10),
    title: str | None = None,
) -> plt.Figure:
    """Histogram (log-spaced bins) and cumulative curve of the target's rank, log x axis.

    The x axis is the 1-based position rank + 1, so the cumulative curve at x = K is Recall@K;
    those values are marked for K in `ks`.

    Args:
      ranks: {label: (N,) int ranks, 0 = first, -1 ignored} or a `RetrievalRanks`.
    """
    sets = _rank_sets(ranks)
    top = max(int(r.max()) for r in sets.values()) + 1
    edges = np.unique(np.round(np.logspace(0, np.log10(max(top, 2)) + 1e-9, 40)).astype(int))
    edges = np.append(edges, edges[-1] + 1).astype(float) - 0.5
    fig, (ax_h, ax_c) = plt.subplots(1, 2, figsize=(12, 4.4))
    lines: list[str] = []
    for i, (label, r) in enumerate(sets.items()):
        color = _COLORS[i % len(_COLORS)]
        pos = r + 1
        counts, _ = np.histogram(pos, bins=edges)
        per_position = 100.0 * counts / np.diff(edges) / pos.size  # bins widen: divide by width
        ax_h.stairs(np.where(counts > 0, per_position, np.nan), edges, color=color, linewidth=1.8, baseline=None,
                    label=label)  # fmt: skip
        xs = np.sort(pos)
        ys = np.arange(1, xs.size + 1) / xs.size * 100.0
        ax_c.step(xs, ys, where="post", color=color, linewidth=1.8, label=label)
        recalls = [100.0 * float(np.mean(r < k)) for k in ks]
        ax_c.plot(list(ks), recalls, "o", color=color, markersize=5)
        lines.append(f"{label:14s}" + "".join(f"{v:8.1f}" for v in recalls))
    for k in ks:
        ax_c.axvline(k, color="#999999", linestyle=":", linewidth=1)
    header = " " * 14 + "".join(f"{'R@' + str(k):>8s}" for k in ks)
    ax_c.text(0.97, 0.04, "\n".join([header, *lines]), transform=ax_c.transAxes, ha="right",
              va="bottom", family="monospace", fontsize=8,
              bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#bbbbbb"})  # fmt: skip
    for ax in (ax_h, ax_c):
        ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("position of the target (rank + 1, log scale)")
        ax.set_xlim(0.8, edges[-1] * 1.05)
    ax_h.legend(fontsize=9)
    ax_c.legend(fontsize=9, loc="center right")
    ax_h.set_yscale("log")
    ax_h.set_ylabel("% of queries per position (log scale)")
    ax_h.set_title("Rank histogram (log-spaced bins, per unit width)")
    ax_c.set_ylabel("% of queries with rank + 1 ≤ x  (= Recall@x)")
    ax_c.set_ylim(0, 101)
    ax_c.set_title("Cumulative")
    fig.suptitle(title or "Where does the true match rank?")
    fig.tight_layout()
    return fig


def image_grid(
    images: Any,
    titles: Sequence[str],
    scores: Any,
    highlight: Any = None,
    cell_inches: float = 1.9,
) -> plt.Figure:
    """One row per query: its top-k images, best first, each with its similarity score.

    Args:
      images: (Q, k, H, W, 3) uint8 images (e.g. gallery[indices] from `query_topk`).
      titles: Q row titles (the query texts).
      scores: (Q, k) scores shown under each image.
      highlight: optional (Q, k) bool; True cells get a green frame (e.g. the ground truth).
      cell_inches: size of one image cell.
    """
    imgs = np.asarray(images)
    sc = np.asarray(scores, dtype=np.float64)
    if imgs.ndim != 5 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
        raise ValueError(f"images must be (Q, k, H, W, 3) uint8; got {imgs.shape} {imgs.dtype}")
    q, k = imgs.shape[:2]
    if sc.shape != (q, k) or len(titles) != q:
        raise ValueError(
            f"need scores (Q, k) = {(q, k)} and Q = {q} titles; got {sc.shape} and {len(titles)}"
        )
    hl = None if highlight is None else np.asarray(highlight, dtype=bool)
    if hl is not None and hl.shape != (q, k):
        raise ValueError(f"highlight must be (Q, k) = {(q, k)}; got {hl.shape}")
    fig = plt.figure(figsize=(cell_inches * k, (cell_inches + 0.55) * q), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(q, 1))
    for i in range(q):
        sub = subfigs[i]
        sub.suptitle(textwrap.shorten(f"“{titles[i]}”", 18 * k), fontsize=11, x=0.01, ha="left")
        axes = np.atleast_1d(sub.subplots(1, k))
        for j in range(k):
            ax = axes[j]
            ax.imshow(imgs[i, j], interpolation="nearest" if imgs.shape[2] < 96 else "antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            good = hl is not None and hl[i, j]
            for spine in ax.spines.values():
                spine.set_visible(hl is not None)
                spine.set_color("#1a9850" if good else "#cccccc")
                spine.set_linewidth(4 if good else 0.8)
            ax.set_xlabel(f"#{j + 1}  {sc[i, j]:.3f}", fontsize=9, color="#1a9850" if good else "k")
    return fig


def thumbnail(image: Any, side: int) -> np.ndarray:
    """An HWC (or HW grey) image as a side × side RGB uint8 thumbnail: centre square crop,
    bicubic resize (unchanged when it already is side × side)."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3]
    h, w = image.shape[:2]
    if (h, w) == (side, side):
        return image
    from PIL import Image

    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(image[top : top + s, left : left + s])
    return np.asarray(crop.resize((side, side), Image.BICUBIC), np.uint8)


def thumbnail_grid(images: Sequence[Any], shape: tuple[int, int], max_side: int) -> np.ndarray:
    """(Q, k, S, S, 3) uint8 thumbnails of Q·k images (row-major): S = max_side, or the largest
    of the images' shorter sides when that is smaller (small images are not blown up)."""
    imgs = [np.asarray(i, np.uint8) for i in images]
    if len(imgs) != shape[0] * shape[1] or not imgs:
        raise ValueError(f"need {shape[0]} x {shape[1]} images; got {len(imgs)}")
    side = min(int(max_side), max(min(i.shape[:2]) for i in imgs))
    return np.stack([thumbnail(i, side) for i in imgs]).reshape(*shape, side, side, 3)
