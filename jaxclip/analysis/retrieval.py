"""Cross-modal retrieval from embeddings: exact ranks and Recall@K, top-k queries, query refinement.

Pure functions of embedding arrays (raw encoder outputs; cosine similarity is used throughout, so
every function L2-normalises its inputs). The similarity matrix is never built whole: queries are
processed in blocks on the JAX default device (`jax.lax.scan` over blocks inside one `jax.jit`),
so device memory is O(block_size * gallery) and only rank vectors come back to the host.

Conventions (CLIP paper, Radford et al. 2021, Table 13; LAION CLIP_benchmark `zeroshot_retrieval`):

- text -> image: every caption t is a query; its target is its own image i(t). Hit at K iff that
  image is among the K most similar images.
- image -> text: every image is a query; it has one or more captions. Hit at K iff ANY of its
  captions is among the K most similar texts.

Rank and tie rule. rank = number of gallery items with a STRICTLY higher cosine than the target
(0 = retrieved first); for image -> text the target is the image's best caption, so
rank(i) = #{texts u : cos(x_i, u) > max_{c in captions(i)} cos(x_i, c)}. A hit at K is rank < K.
Items tied exactly with the target do not count against it ("optimistic" ties); the number of
tied items (other images; for image -> text, texts that are not captions of the image) is
returned beside every rank, so rank + ties is the pessimistic rank. Exact ties occur with
duplicate embeddings (e.g. two images with the same caption string).

Exactness. The cosines that define the ranks are those of the float32-normalised embeddings,
evaluated exactly (in practice: in float64). The device computes them in float32 (matmul at
`Precision.HIGHEST`, so no TF32/bf16 on GPUs/TPUs) and settles every comparison whose two sides
differ by more than a proven bound on float32 rounding; the few queries with a comparison inside
that margin (all exact ties among them) are recomputed in float64 on the host. The ranks are
therefore independent of block size, device and matmul kernel, and equal a float64 brute force.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_HIGHEST = jax.lax.Precision.HIGHEST
_EPS = 1e-12
#: Default block: about this many float32 similarities per block (16 MiB; cache-friendly).
DEFAULT_BLOCK_ELEMENTS = 1 << 22
#: At most this many terms per packed count, so two 16-bit counts share one int32 sum.
_PACK = (1 << 15) - 1
#: Multiple of gamma_D used as the margin (see `rounding_margin`).
_MARGIN_FACTOR = 2.25
#: Host float64 refinement works on chunks of about this many similarities (32 MiB).
_HOST_CHUNK_ELEMENTS = 1 << 22


def rounding_margin(dim: int) -> float:
    """delta = 2.25 gamma_D with gamma_D = D u / (1 - D u), u = 2**-24 (6.9e-5 for D = 512).

    Higham (Accuracy and Stability of Numerical Algorithms, 2nd ed. 2002, eq. 3.5): any float32
    evaluation of a D-term dot product <x, y> is within gamma_D * sum_k |x_k y_k| of the exact
    value, whatever the summation order or kernel, and sum_k |x_k y_k| <= ||x|| ||y|| ~ 1 here.
    So two computed cosines more than 2 gamma_D apart are ordered as their exact values are.
    The extra 0.25 gamma_D covers the normalised vectors' norms (1 +- 1e-7) and float32
    emulation (TPU `HIGHEST`: bf16x6, about gamma_D + 3u, i.e. + 3/D relative).
    """
    u = 2.0**-24
    return _MARGIN_FACTOR * dim * u / (1.0 - dim * u)


def _unit(name: str, x: Any) -> np.ndarray:
    """Checked (N, D) float32 embeddings, L2-normalised (a zero vector stays zero)."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty (N, D) array; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity; ranks would be meaningless")
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norm, np.float32(_EPS))


def _check_pair(a: np.ndarray, b: np.ndarray, a_name: str, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{a_name} {a.shape} and {b_name} {b.shape} must share the embedding width D"
        )


def _text_to_image(t2i: Any, num_texts: int, num_images: int) -> np.ndarray:
    a = np.asarray(t2i)
    if a.shape != (num_texts,) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"text_to_image must be ({num_texts},) integers (one image index per caption); "
            f"got shape {a.shape}, dtype {a.dtype}"
        )
    if a.min() < 0 or a.max() >= num_images:
        raise ValueError(
            f"text_to_image must lie in [0, {num_images}); got min {a.min()}, max {a.max()}"
        )
    return a.astype(np.int32)


def _block_size(num_queries: int, num_gallery: int, block_size: int | None) -> int:
    """Rows per block: the request (default about 2**22 / gallery similarities), at most the
    number of queries and 32767, balanced so the last block is not mostly padding."""
    if block_size is None:
        block_size = max(1, DEFAULT_BLOCK_ELEMENTS // max(num_gallery, 1))
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise ValueError(f"block_size must be a positive integer or None; got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None; got {block_size}")
    rows = min(int(block_size), num_queries, _PACK)
    return -(-num_queries // -(-num_queries // rows))  # same number of blocks, least padding


def _blocks(x: jax.Array, block: int, fill: Any = 0) -> jax.Array:
    """Pads the leading axis to a multiple of `block` and reshapes to (nb, block, ...)."""
    n = x.shape[0]
    pad = -n % block
    if pad:
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1), constant_values=fill)
    return x.reshape(-1, block, *x.shape[1:])


def _count2(a: jax.Array, b: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """(sum(a), sum(b)) along `axis` for boolean a, b, in ONE int32 reduction.

    a goes to the low 16 bits and b above, at most _PACK terms per partial sum. XLA:CPU runs two
    sibling reductions as one slow variadic loop; one packed sum is about 8x faster.
    """
    code = jnp.where(a, 1, 0) + jnp.where(b, 1 << 16, 0)
    n = code.shape[axis]
    if n <= _PACK:
        total = jnp.sum(code, axis=axis)
        return total & 0xFFFF, total >> 16
    code = jnp.moveaxis(code, axis, -1)
    code = jnp.pad(code, [(0, 0)] * (code.ndim - 1) + [(0, -n % _PACK)])
    part = jnp.sum(code.reshape(*code.shape[:-1], -1, _PACK), axis=-1)
    return jnp.sum(part & 0xFFFF, axis=-1), jnp.sum(part >> 16, axis=-1)


@functools.partial(jax.jit, static_argnames=("block",))
def _device_pass(
    texts: jax.Array,
    images: jax.Array,
    t2i: jax.Array,
    best: jax.Array,
    margin: jax.Array,
    block: int,
) -> tuple[jax.Array, ...]:
    """One float32 matmul pass over caption blocks that settles both directions.

    With s = texts @ images.T (unit vectors), m_i = `best`, the image's best caption cosine
    computed separately (-inf without captions), and margin delta:
      rows (text -> image): above_t = #{j : s_tj - s_t,i(t) > delta},
                            close_t = #{j != i(t) : |s_tj - s_t,i(t)| <= delta}, and of those
                            close images the smallest index and the index sum (which name
                            them when close_t <= 2);
      columns (image -> text): above_i = #{t : s_ti - m_i > delta},
                               close_i = #{t : |s_ti - m_i| <= delta}, and per caption
                               own_close_t = [|s_t,i(t) - m_i(t)| <= delta].
    A query with nothing close (own captions excepted) has rank == above exactly.
    """
    nt, ni = texts.shape[0], images.shape[0]
    valid = jnp.arange(-(-nt // block) * block) < nt

    def step(carry, blk):
        col_above, col_close = carry
        t, target, ok = blk
        s = jnp.matmul(t, images.T, precision=_HIGHEST)  # (B, Ni)
        true = jnp.take_along_axis(s, target[:, None], axis=1)
        d = s - true
        near = jnp.abs(d) <= margin
        above, close = _count2(d > margin, near, axis=1)
        near_other = near & (col[None, :] != target[:, None])
        first = jnp.min(jnp.where(near_other, col, ni), axis=1)
        index_sum = jnp.sum(jnp.where(near_other, col, 0), axis=1)  # may wrap: used if <= 2
        c = s - best[None, :]
        okc = ok[:, None]
        cabove, cclose = _count2((c > margin) & okc, (jnp.abs(c) <= margin) & okc, axis=0)
        own_close = (jnp.abs(true[:, 0] - best[target]) <= margin) & ok
        rows = (above, close - 1, first, index_sum, own_close)
        return (col_above + cabove, col_close + cclose), rows

    col = jnp.arange(ni, dtype=jnp.int32)
    zeros = jnp.zeros(ni, jnp.int32)
    (col_above, col_close), (above, close, first, index_sum, own_close) = jax.lax.scan(
        step, (zeros, zeros), (_blocks(texts, block), _blocks(t2i, block), _blocks(valid, block))
    )
    rows = (above, close, first, index_sum, own_close)
    return (*(r.reshape(-1)[:nt] for r in rows), col_above, col_close)


def _best_caption_cosine(img: np.ndarray, txt: np.ndarray, t2i: np.ndarray) -> np.ndarray:
    """m_i = max over the captions t of image i of the float32 cosine <t, x_i> (-inf if none)."""
    pair = np.einsum("td,td->t", txt, img[t2i])
    best = np.full(img.shape[0], -np.inf, dtype=np.float32)
    np.maximum.at(best, t2i, pair)
    return best


def _host_chunks(idx: np.ndarray, gallery: int) -> list[np.ndarray]:
    step = max(1, _HOST_CHUNK_ELEMENTS // max(gallery, 1))
    return [idx[i : i + step] for i in range(0, idx.size, step)]


def caption_table(text_to_image: Any, num_images: int) -> np.ndarray:
    """(num_images, M) caption indices of every image, padded with -1 (M = most captions).

    Row i lists, in increasing order, the t with text_to_image[t] == i.
    """
    t2i = np.asarray(text_to_image, dtype=np.int64)
    counts = np.bincount(t2i, minlength=num_images)
    width = max(int(counts.max(initial=0)), 1)
    order = np.argsort(t2i, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(t2i.shape[0]) - starts[t2i[order]]
    table = np.full((num_images, width), -1, dtype=np.int32)
    table[t2i[order], slot] = order
    return table


@dataclasses.dataclass
class RetrievalRanks:
    """Exact retrieval ranks (0 = first; tie rule in the module docstring).

    Attributes:
      text_to_image: (Nt,) rank of each caption's own image among all images.
      text_to_image_ties: (Nt,) number of other images with exactly the target's cosine.
      image_to_text: (Ni,) best rank among each image's captions; -1 for an image without
        captions (it is left out of image -> text recall).
      image_to_text_ties: (Ni,) number of non-caption texts tied with the best caption.
      refined_text_queries, refined_image_queries: how many queries had a comparison inside the
        float32 rounding margin and were settled in float64 on the host.
    """

    text_to_image: np.ndarray
    text_to_image_ties: np.ndarray
    image_to_text: np.ndarray
    image_to_text_ties: np.ndarray
    refined_text_queries: int = 0
    refined_image_queries: int = 0


def _ranks(
    image_embeds: Any,
    text_embeds: Any,
    text_to_image: Any,
    block_size: int | None = None,
    margin: float | None = None,
) -> RetrievalRanks:
    """`ranks` with the margin exposed (tests force every query through one path or the other)."""
    img = _unit("image_embeds", image_embeds)
    txt = _unit("text_embeds", text_embeds)
    _check_pair(img, txt, "image_embeds", "text_embeds")
    t2i = _text_to_image(text_to_image, txt.shape[0], img.shape[0])
    ni, nt = img.shape[0], txt.shape[0]
    delta = rounding_margin(img.shape[1]) if margin is None else float(margin)

    best = _best_caption_cosine(img, txt, t2i)
    out = _device_pass(
        jnp.asarray(txt),
        jnp.asarray(img),
        jnp.asarray(t2i),
        jnp.asarray(best),
        jnp.float32(delta),
        block=_block_size(nt, ni, block_size),
    )
    t_above, t_close, t_first, t_sum, own_close, i_above, i_close = (np.asarray(a) for a in out)
    has = np.isfinite(best)
    i_close = i_close - np.bincount(t2i, weights=own_close, minlength=ni).astype(np.int64)
    t_rank = t_above.astype(np.int64)
    t_ties = np.zeros(nt, np.int64)
    i_rank = np.where(has, i_above, -1).astype(np.int64)
    i_ties = np.zeros(ni, np.int64)

    # text -> image: compare in float64 only the images inside the margin. With one or two of
    # them the device named them (smallest index and index sum); otherwise redo the whole row.
    few = np.flatnonzero((t_close > 0) & (t_close <= 2))
    if few.size:
        two = t_close[few] == 2
        cand = np.stack([t_first[few], np.where(two, t_sum[few] - t_first[few], t_first[few])], 1)
        t64 = txt[few].astype(np.float64)
        true = np.einsum("qd,qd->q", t64, img[t2i[few]].astype(np.float64))[:, None]
        other = np.einsum("qd,qkd->qk", t64, img[cand].astype(np.float64))
        other[:, 1] = np.where(two, other[:, 1], -np.inf)  # one candidate: count it once
        t_rank[few] += np.sum(other > true, axis=1)
        t_ties[few] = np.sum(other == true, axis=1)
    redo_t = np.flatnonzero(t_close > 2)
    if redo_t.size:  # float64 on the host: exact up to 1e-16, far inside the margin
        img64 = img.astype(np.float64)
        for q in _host_chunks(redo_t, ni):
            s = txt[q].astype(np.float64) @ img64.T
            true = s[np.arange(q.size), t2i[q]][:, None]
            t_rank[q] = np.sum(s > true, axis=1)
            t_ties[q] = np.sum(s == true, axis=1) - 1
    redo_i = np.flatnonzero(has & (i_close > 0))
    if redo_i.size:
        txt64 = txt.astype(np.float64)
        for q in _host_chunks(redo_i, nt):
            s = img[q].astype(np.float64) @ txt64.T
            own = t2i[None, :] == q[:, None]
            top = np.max(np.where(own, s, -np.inf), axis=1, keepdims=True)
            i_rank[q] = np.sum(s > top, axis=1)
            i_ties[q] = np.sum((s == top) & ~own, axis=1)
    return RetrievalRanks(
        text_to_image=t_rank,
        text_to_image_ties=t_ties,
        image_to_text=i_rank,
        image_to_text_ties=i_ties,
        refined_text_queries=int(few.size + redo_t.size),
        refined_image_queries=int(redo_i.size),
    )


def ranks(
    image_embeds: Any,
    text_embeds: Any,
    text_to_image: Any,
    block_size: int | None = None,
) -> RetrievalRanks:
    """Exact text -> image and image -> text ranks, computed blockwise on the device.

    rank(t) = #{images j : cos(t, x_j) > cos(t, x_i(t))}
    rank(i) = #{texts u : cos(x_i, u) > max_{c : i(c) = i} cos(x_i, c)}

    Method: one pass of caption blocks against all images (a single Nt x Ni x D float32 matmul
    in total) serves both directions: rows give text -> image; columns, compared with each
    image's best-caption cosine (computed separately), give image -> text. A comparison whose
    sides differ by more than `rounding_margin(D)` is settled in float32 (its sign is the exact
    one); comparisons inside the margin, exact ties included, are redone in float64 on the host:
    pairwise when a caption has one or two images inside the margin (the device names them),
    else the whole row. Such queries mostly have targets ranked deep in the gallery, where many
    items score alike: 14 % of the captions and 2 % of the images in the 5k x 25k benchmark,
    four in five of those captions settled pairwise.

    Args:
      image_embeds: (Ni, D) raw image embeddings.
      text_embeds: (Nt, D) raw caption embeddings.
      text_to_image: (Nt,) integer index of each caption's image (several captions may share an
        image, in any order and any number; an image may have none).
      block_size: caption rows per block (None: about 2**22 similarities per block), at most
        32767. Device memory is O(block_size * Ni); the result does not depend on it.

    Returns:
      RetrievalRanks.
    """
    return _ranks(image_embeds, text_embeds, text_to_image, block_size)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks must be positive integers; got {k!r} in ks={ks}")
    return tuple(int(k) for k in ks)


def recall_from_ranks(rank: Any, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """{"R@K": fraction of ranks < K} over ranks >= 0 (rank -1 = no target, left out)."""
    ks = _check_ks(ks)
    r = np.asarray(rank)
    r = r[r >= 0]
    if r.size == 0:
        raise ValueError("no query has a target (every rank is -1); recall is undefined")
    return {f"R@{k}": float(np.mean(r < k)) for k in ks}


def recall_at_k(
    image_embeds: Any,
    text_embeds: Any,
    text_to_image: Any,
    ks: Sequence[int] = (1, 5, 10),
    block_size: int | None = None,
) -> dict[str, Any]:
    """Recall@K both ways (cosine similarity, exact, blockwise on the device).

    R@K(text -> image) = mean_t [rank(t) < K];  R@K(image -> text) = mean_i [rank(i) < K] over
    images with at least one caption (rank definitions and tie rule: `ranks`, module docstring).
    MedR / MeanR are the median / mean of rank + 1 (1-based, as in the retrieval literature).

    Args:
      image_embeds: (Ni, D) raw image embeddings.
      text_embeds: (Nt, D) raw caption embeddings.
      text_to_image: (Nt,) image index of every caption.
      ks: the K values.
      block_size: see `ranks`.

    Returns:
      {"text_to_image": {"R@1": ..., "R@5": ..., "R@10": ..., "MedR": ..., "MeanR": ...,
       "tied_queries": int}, "image_to_text": {... same ...}, "num_images", "num_texts",
       "images_without_captions"}; recalls are fractions in [0, 1]. "tied_queries" counts queries
      whose target is tied exactly with another item (where optimistic and pessimistic differ).
    """
    ks = _check_ks(ks)
    r = ranks(image_embeds, text_embeds, text_to_image, block_size)
    out: dict[str, Any] = {}
    for name, rank, ties in (
        ("text_to_image", r.text_to_image, r.text_to_image_ties),
        ("image_to_text", r.image_to_text, r.image_to_text_ties),
    ):
        valid = rank >= 0
        row: dict[str, Any] = recall_from_ranks(rank, ks)
        row["MedR"] = float(np.median(rank[valid] + 1))
        row["MeanR"] = float(np.mean(rank[valid] + 1))
        row["tied_queries"] = int(np.sum(ties[valid] > 0))
        out[name] = row
    out["num_images"] = int(r.image_to_text.shape[0])
    out["num_texts"] = int(r.text_to_image.shape[0])
    out["images_without_captions"] = int(np.sum(r.image_to_text < 0))
    return out


@jax.jit
def _cosines(q: jax.Array, g: jax.Array) -> jax.Array:
    return jnp.matmul(q, g.T, precision=_HIGHEST)


@functools.partial(jax.jit, static_argnames="k")
def _topk_blocks(q_blocks: jax.Array, gallery: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    def one(q):
        s = jnp.matmul(q, gallery.T, precision=_HIGHEST)
        return jax.lax.top_k(s, k)

    return jax.lax.map(one, q_blocks)


def query_topk(
    query_embeds: Any, gallery_embeds: Any, k: int, block_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar gallery items for every query (blockwise on the device).

    Args:
      query_embeds: (Q, D) raw embeddings (e.g. encoded text queries).
      gallery_embeds: (N, D) raw embeddings (e.g. images).
      k: 1 <= k <= N.
      block_size: queries per block (None: about 2**22 similarities per block).

    Returns:
      indices (Q, k) int64 and cosine scores (Q, k) float32, best first; tied scores keep the
      lower gallery index first (`jax.lax.top_k`).
    """
    q = _unit("query_embeds", query_embeds)
    g = _unit("gallery_embeds", gallery_embeds)
    _check_pair(q, g, "query_embeds", "gallery_embeds")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= g.shape[0]:
        raise ValueError(f"k must be an integer in [1, {g.shape[0]}] (gallery size); got {k!r}")
    bs = _block_size(q.shape[0], g.shape[0], block_size)
    scores, idx = _topk_blocks(_blocks(jnp.asarray(q), bs), jnp.asarray(g), int(k))
    n = q.shape[0]
    return (
        np.asarray(idx).reshape(-1, int(k))[:n].astype(np.int64),
        np.asarray(scores).reshape(-1, int(k))[:n],
    )


def query_topk_padded(
    query_embeds: Any, gallery_embeds: Any, k: int, multiple: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """`query_topk` with the queries padded to a multiple of `multiple` rows.

    A report asks for the top k of a few queries at a time (a chain, a handful of captions);
    padding them (by repeating the last query) lets those calls share one compiled shape. The
    padding rows are dropped, so the answer is `query_topk`'s.

    Returns:
      indices (Q, k) int64 and cosine scores (Q, k) float32, best first.
    """
    q = np.asarray(query_embeds)
    if q.ndim != 2 or q.shape[0] == 0:
        raise ValueError(f"query_embeds must be a non-empty (Q, D) array; got shape {q.shape}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1; got {multiple}")
    n = q.shape[0]
    pad = -n % multiple
    padded = np.concatenate([q, np.repeat(q[-1:], pad, axis=0)]) if pad else q
    idx, sc = query_topk(padded, gallery_embeds, k)
    return idx[:n], sc[:n]


@dataclasses.dataclass
class RefinementStudy:
    """How the top-k images move as a text query is refined step by step.

    Attributes:
      queries: the Q query texts, in chain order.
      indices: (Q, k) top-k gallery indices per query (best first).
      scores: (Q, k) their cosine similarities.
      rows: one dict per consecutive pair (q_{j-1} -> q_j), see `refinement_study`.
    """

    queries: list[str]
    indices: np.ndarray
    scores: np.ndarray
    rows: list[dict[str, Any]]


def refinement_study(
    query_texts: Sequence[str], query_embeds: Any, image_embeds: Any, k: int = 10
) -> RefinementStudy:
    """Compares consecutive queries of a refinement chain ("a photo of a bird" -> "a photo of a
    white bird" -> "a photo of a flying white bird") by their top-k images.

    For each step a = q_{j-1} -> b = q_j, with top-k sets A, B and cosines s_a, s_b:
      overlap = |A ∩ B|, jaccard = |A ∩ B| / |A ∪ B|,
      score_shift = mean_{x in A} (s_b(x) - s_a(x))   (how the old top-k fares under the new query),
      prev_top1_new_rank = #{x : s_b(x) > s_b(top1(A))}  (0 = still first),
      new_top1_prev_rank = #{x : s_a(x) > s_a(top1(B))}  (where the new winner stood before),
      mean_topk_score_prev / mean_topk_score = mean of the top-k cosines under a / b.

    Args:
      query_texts: Q >= 2 strings (labels for the table).
      query_embeds: (Q, D) raw text embeddings of those queries.
      image_embeds: (N, D) raw image embeddings (the gallery).
      k: top-k size, 1 <= k <= N.

    Returns:
      RefinementStudy.
    """
    texts = list(query_texts)
    q = _unit("query_embeds", query_embeds)
    g = _unit("image_embeds", image_embeds)
    _check_pair(q, g, "query_embeds", "image_embeds")
    if len(texts) != q.shape[0] or len(texts) < 2:
        raise ValueError(
            f"need Q >= 2 query texts matching query_embeds (Q, D); got {len(texts)} texts and "
            f"query_embeds {q.shape}"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= g.shape[0]:
        raise ValueError(f"k must be an integer in [1, {g.shape[0]}] (gallery size); got {k!r}")
    # Q is a handful of queries: the (Q, N) cosines fit; top-k and ranks read the same numbers.
    s_dev = _cosines(jnp.asarray(q), jnp.asarray(g))
    top, idx = (np.asarray(a) for a in jax.lax.top_k(s_dev, int(k)))
    s = np.asarray(s_dev)
    rows = []
    for j in range(1, len(texts)):
        a, b = j - 1, j
        set_a, set_b = set(idx[a].tolist()), set(idx[b].tolist())
        inter = len(set_a & set_b)
        prev_top1, new_top1 = idx[a, 0], idx[b, 0]
        rows.append(
            {
                "from": texts[a],
                "to": texts[b],
                "overlap": inter,
                "jaccard": inter / len(set_a | set_b),
                "score_shift": float(np.mean(s[b, idx[a]] - s[a, idx[a]], dtype=np.float64)),
                "prev_top1_new_rank": int(np.sum(s[b] > s[b, prev_top1])),
                "new_top1_prev_rank": int(np.sum(s[a] > s[a, new_top1])),
                "mean_topk_score_prev": float(np.mean(top[a], dtype=np.float64)),
                "mean_topk_score": float(np.mean(top[b], dtype=np.float64)),
            }
        )
    return RefinementStudy(queries=texts, indices=idx.astype(np.int64), scores=top, rows=rows)
