"""CLIP_benchmark's zero-shot and retrieval metrics, reproduced from embeddings (numpy).

LAION's CLIP_benchmark 1.6.2 (`clip_benchmark/metrics/zeroshot_classification.py` and
`zeroshot_retrieval.py`) defines its numbers differently from jaxclip's own metrics
(`jaxclip.analysis.metrics`, `jaxclip.analysis.retrieval`) in a few cases; this module computes
them as CLIP_benchmark does, without calling it (the tests compare against its `evaluate`):

- Scores are float32: unit vectors x / max(||x||, 1e-12) (torch's F.normalize), zero-shot
  logits (100 x) @ W with W[:, c] = normalise(mean_t normalise(e_ct)), retrieval scores
  texts @ images^T. Values that differ only beyond float32 precision become ties (jaxclip ranks
  exactly, in float64). Dot products are taken in float64 and rounded once to float32, so equal
  embeddings give equal scores.
- Top-k is the index set of `torch.topk(scores, k)`: ties are ordered as PyTorch's CPU kernel
  orders them (`jaxclip.analysis.torch_topk`), not by class index. Zero-shot top-1 is the first
  of `topk(5)` (CLIP_benchmark's `accuracy` takes one topk with the largest k); with fewer than
  5 classes it is the first of `topk(1)` and top-5 is NaN (written as null).
- Mean per-class recall is scikit-learn's balanced accuracy of the argmax predictions (first
  maximum on ties, as torch.argmax), over the classes present in the labels.
- Retrieval: image_retrieval_recall@k (text -> image) is the share of captions whose image is in
  the top k; text_retrieval_recall@k (image -> text) the share of ALL images with one of their
  captions in the top k, so an image without captions counts as a miss. Means are float32, as
  `.float().mean().item()`. k above the gallery size is an error in CLIP_benchmark (torch.topk);
  here it gives None.

The record written per task mirrors CLIP_benchmark's CLI output (`clip_benchmark/cli.py`):
{"dataset", "model", "pretrained", "task", "metrics", "language"}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxclip.analysis import metrics
from jaxclip.analysis.torch_topk import topk_contains

#: Values of the common config field `metrics_protocol`.
PROTOCOLS = ("jaxclip", "clip_benchmark")
_EPS = 1e-12
_BLOCK_ELEMENTS = 1 << 22  # scores per block (32 MiB as float64)


def normalize(x: Any) -> np.ndarray:
    """x / max(||x||_2, 1e-12) per row in float32 (torch.nn.functional.normalize)."""
    a = np.asarray(x, dtype=np.float32)
    norm = np.sqrt(np.sum(a.astype(np.float64) ** 2, axis=-1, keepdims=True)).astype(np.float32)
    return a / np.maximum(norm, np.float32(_EPS))


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T of float32 arrays, exact in float64 and rounded once to float32."""
    return (a.astype(np.float64) @ b.astype(np.float64).T).astype(np.float32)


def classifier(text_embeds: Any) -> np.ndarray:
    """(C, D) float32 class weights: normalise(mean_t normalise(e_ct)) of (C, T, D) raw text
    embeddings (CLIP_benchmark's `zero_shot_classifier`, transposed)."""
    e = np.asarray(text_embeds, dtype=np.float32)
    if e.ndim == 2:
        e = e[:, None, :]
    if e.ndim != 3 or min(e.shape) < 1:
        raise ValueError(f"text_embeds must be (C, T, D) or (C, D); got shape {e.shape}")
    mean = normalize(e).astype(np.float64).mean(axis=1).astype(np.float32)
    norm = np.sqrt(np.sum(mean.astype(np.float64) ** 2, axis=1, keepdims=True))
    return mean / norm.astype(np.float32)


def zero_shot_logits(image_embeds: Any, text_embeds: Any) -> np.ndarray:
    """(N, C) float32 logits (100 normalise(x)) @ W, W from `classifier(text_embeds)`."""
    x = np.asarray(image_embeds, dtype=np.float32)
    w = classifier(text_embeds)
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"need image_embeds (N, D) with D = {w.shape[1]}; got {x.shape}")
    return _dot(np.float32(100.0) * normalize(x), w)


def zero_shot(image_embeds: Any, text_embeds: Any, labels: Any) -> dict[str, float | None]:
    """CLIP_benchmark's zero-shot classification metrics of raw embeddings.

    Args:
      image_embeds: (N, D) raw image embeddings.
      text_embeds: (C, T, D) raw embeddings of every (class, template) prompt, or (C, D).
      labels: (N,) integer classes in [0, C).

    Returns:
      {"acc1", "acc5", "mean_per_class_recall"}; acc5 is None (CLIP_benchmark: NaN) when C < 5.
    """
    logits = zero_shot_logits(image_embeds, text_embeds)
    if not np.all(np.isfinite(logits)):
        raise ValueError("image_embeds or text_embeds contain NaN or infinity")
    y = np.asarray(labels)
    n, c = logits.shape
    if (
        y.shape != (n,)
        or not np.issubdtype(y.dtype, np.integer)
        or (y.size and (y.min() < 0 or y.max() >= c))
    ):
        raise ValueError(f"labels must be (N,) = ({n},) integers in [0, {c}); got {y.shape}")
    if n == 0:
        raise ValueError("zero_shot needs at least one image; got N = 0")
    positive = np.arange(c)[None, :] == y[:, None]
    k = 5 if c >= 5 else 1
    acc1 = float(topk_contains(logits, positive, k, within=1).sum()) / n
    acc5 = float(topk_contains(logits, positive, 5).sum()) / n if c >= 5 else None
    pred = np.argmax(logits, axis=1)  # first maximum, as torch.argmax
    confusion = metrics.confusion_matrix(y.astype(np.int64), pred, c)
    return {
        "acc1": acc1,
        "acc5": acc5,
        "mean_per_class_recall": metrics.mean_per_class_recall(confusion),
    }


def retrieval(
    image_embeds: Any, text_embeds: Any, text_to_image: Any, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float | None]:
    """CLIP_benchmark's zero-shot retrieval recalls of raw embeddings.

    The means of `retrieval_hits` (float32, as CLIP_benchmark's torch code computes them).

    Args:
      image_embeds: (Ni, D) raw image embeddings (images without captions included).
      text_embeds: (Nt, D) raw caption embeddings.
      text_to_image: (Nt,) image index of every caption.
      ks: the k values (CLIP_benchmark's `--recall_k`, default 1 5 10).

    Returns:
      {"image_retrieval_recall@k": ..., "text_retrieval_recall@k": ...} for each k, in that
      order per k (CLIP_benchmark's key order); None where k exceeds the gallery.
    """
    return recalls(*retrieval_hits(image_embeds, text_embeds, text_to_image, ks))


def recalls(
    found_images: dict[int, np.ndarray | None], found_texts: dict[int, np.ndarray | None]
) -> dict[str, float | None]:
    """`retrieval`'s dict from the hits of `retrieval_hits`."""
    out: dict[str, float | None] = {}
    for k in found_images:
        out[f"image_retrieval_recall@{k}"] = _float32_mean(found_images[k])
        out[f"text_retrieval_recall@{k}"] = _float32_mean(found_texts[k])
    return out


def retrieval_hits(
    image_embeds: Any, text_embeds: Any, text_to_image: Any, ks: Sequence[int] = (1, 5, 10)
) -> tuple[dict[int, np.ndarray | None], dict[int, np.ndarray | None]]:
    """The per-query hits behind `retrieval` (same arguments): (k -> (Nt,) bool, "caption j's
    image is in its top k images"; k -> (Ni,) bool, "one of image i's captions is in its top k
    texts", False for images without captions), None where k exceeds the gallery."""
    img = normalize(image_embeds)
    txt = normalize(text_embeds)
    t2i = np.asarray(text_to_image)
    if img.ndim != 2 or txt.ndim != 2 or img.shape[1] != txt.shape[1]:
        raise ValueError(f"need images (Ni, D) and texts (Nt, D); got {img.shape}, {txt.shape}")
    ni, nt = len(img), len(txt)
    if t2i.shape != (nt,) or not np.issubdtype(t2i.dtype, np.integer):
        raise ValueError(f"text_to_image must be ({nt},) integers; got {t2i.shape} {t2i.dtype}")
    if nt and (t2i.min() < 0 or t2i.max() >= ni):
        raise ValueError(f"text_to_image must lie in [0, {ni}); got {t2i.min()}..{t2i.max()}")
    if ni == 0 or nt == 0:
        raise ValueError(f"retrieval needs images and captions; got {ni} images, {nt} captions")
    if not (np.all(np.isfinite(img)) and np.all(np.isfinite(txt))):
        raise ValueError("image_embeds or text_embeds contain NaN or infinity")
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive; got {ks}")
    # Image retrieval: caption rows ranked over images; text retrieval: image rows over texts.
    found_images = _found(txt, img, lambda r: t2i[r][:, None] == np.arange(ni), ks)
    found_texts = _found(img, txt, lambda r: r[:, None] == t2i[None, :], ks)
    return found_images, found_texts


def _found(
    queries: np.ndarray, gallery: np.ndarray, positives: Any, ks: tuple[int, ...]
) -> dict[int, np.ndarray | None]:
    """k -> (Q,) bool "a positive is in torch.topk's top k", None for k > gallery; row blocks
    of about 2**22 scores, positives(rows) -> (len(rows), G) bool."""
    q, g = len(queries), len(gallery)
    block = max(1, _BLOCK_ELEMENTS // max(g, 1))
    out: dict[int, list[np.ndarray] | None] = {k: ([] if k <= g else None) for k in ks}
    for lo in range(0, q, block):
        rows = np.arange(lo, min(q, lo + block))
        scores = _dot(queries[rows], gallery)
        pos = positives(rows)
        for k, parts in out.items():
            if parts is not None:
                parts.append(topk_contains(scores, pos, k))
    return {k: None if v is None else np.concatenate(v) for k, v in out.items()}


def _float32_mean(hits: np.ndarray | None) -> float | None:
    if hits is None:
        return None
    return float(np.float32(hits.sum()) / np.float32(hits.size))


def record(
    dataset: str, model: str, task: str, values: dict[str, Any], pretrained: str = ""
) -> dict[str, Any]:
    """One CLIP_benchmark result record (the dict its CLI dumps per run); NaN becomes None."""
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}
    return {
        "dataset": dataset,
        "model": model,
        "pretrained": pretrained,
        "task": task,
        "metrics": clean,
        "language": "en",
    }
