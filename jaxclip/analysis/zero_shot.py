"""Zero-shot classification from embeddings: prompt-ensembled class weights, logits, evaluation.

Everything here is a pure function of embedding arrays (raw, i.e. unnormalised, encoder outputs);
no model or data code is imported. The recipe is the CLIP paper's (Radford et al., 2021, §3.1.4
and the prompt-ensembling notebook of openai/CLIP):

  1. every (class c, template t) prompt is encoded: raw text embedding e_ct (C, T, D);
  2. w_c = normalise(mean_t normalise(e_ct))      -- `class_text_embeddings`;
  3. logits_nc = s * <normalise(x_n), w_c>        -- `zero_shot_logits`, s = exp(logit_scale);
  4. prediction = argmax_c logits_nc, top-k with the tie rule of `jaxclip.analysis.metrics`
     ("first": ties go to the lower class index, as argmax); top-k for k >= C is None
     (`metrics.informative_topk`: every sample is trivially correct there).

The logit scale s (= exp of the model's learned `logit_scale`, 100 for the OpenAI models) is a
positive factor: it changes softmax probabilities, never argmax, top-k or any metric here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from jaxclip.analysis import metrics

_HIGHEST = jax.lax.Precision.HIGHEST
_EPS = 1e-12


def l2_normalize(x: Any, axis: int = -1) -> jax.Array:
    """x / max(||x||_2, 1e-12) along `axis` (a zero vector stays zero instead of becoming NaN)."""
    x = jnp.asarray(x)
    norm = jnp.sqrt(jnp.sum(x * x, axis=axis, keepdims=True))
    return x / jnp.maximum(norm, _EPS)


def _check_finite(name: str, x: Any) -> None:
    if isinstance(x, jax.core.Tracer):  # under jit: values are not known yet
        return
    if not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError(f"{name} contains NaN or infinity")


def class_text_embeddings(text_embeds: Any) -> jax.Array:
    """Prompt-ensembled zero-shot classifier weights.

    w_c = u_c / ||u_c||,  u_c = (1/T) sum_t e_ct / ||e_ct||   (CLIP paper §3.1.4; openai/CLIP
    "Prompt_Engineering_for_ImageNet" notebook: normalise, mean over templates, renormalise).

    Args:
      text_embeds: (C, T, D) raw text embeddings of every (class, template) prompt, or (C, D)
        for a single template (treated as T = 1).

    Returns:
      (C, D) float32 unit-norm class weights.
    """
    e = jnp.asarray(text_embeds, dtype=jnp.float32)
    if e.ndim == 2:
        e = e[:, None, :]
    if e.ndim != 3 or min(e.shape) < 1:
        raise ValueError(f"text_embeds must be (C, T, D) or (C, D); got shape {e.shape}")
    _check_finite("text_embeds", e)
    return l2_normalize(jnp.mean(l2_normalize(e), axis=1))


def zero_shot_logits(
    image_embeds: Any, class_weights: Any, logit_scale: float = 100.0
) -> jax.Array:
    """logits_nc = logit_scale * <x_n / ||x_n||, w_c>.

    Images are L2-normalised here; `class_weights` are used as given (rows from
    `class_text_embeddings` are unit vectors, so the logits are scaled cosines). `logit_scale` is
    the model's exp(logit_scale) (100 for OpenAI CLIP); it must be positive and does not change
    any ranking.

    Args:
      image_embeds: (N, D) raw image embeddings.
      class_weights: (C, D) class weights.
      logit_scale: positive multiplier.

    Returns:
      (N, C) float32 logits.
    """
    x = jnp.asarray(image_embeds, dtype=jnp.float32)
    w = jnp.asarray(class_weights, dtype=jnp.float32)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(
            f"need image_embeds (N, D) and class_weights (C, D); got {x.shape} and {w.shape}"
        )
    if not isinstance(logit_scale, jax.core.Tracer) and not logit_scale > 0:
        raise ValueError(
            f"logit_scale must be positive (exp(model.logit_scale)); got {logit_scale}"
        )
    return _scaled_cosine(x, w, jnp.float32(logit_scale))


@jax.jit
def _scaled_cosine(x: jax.Array, w: jax.Array, scale: jax.Array) -> jax.Array:
    return scale * jnp.matmul(l2_normalize(x), w.T, precision=_HIGHEST)


@dataclasses.dataclass
class ZeroShotResult:
    """Zero-shot evaluation of one classifier on one labelled embedding set (fractions in [0, 1]).

    Attributes:
      top1, top5: top-k accuracy (tie rule "first"); top5 is None with C <= 5 classes.
      mean_per_class_recall: balanced accuracy over classes with samples.
      macro_f1: mean F1 over classes seen in labels or predictions.
      confusion: (C, C) int64 counts, rows true, columns predicted.
      per_class: one dict per class: class, precision, recall, f1, support.
      best, worst: the k_best classes with the highest / lowest F1.
      predictions: (N,) int64 argmax predictions (lowest index on ties).
      num_samples, num_classes: sizes.
    """

    top1: float
    top5: float | None
    mean_per_class_recall: float
    macro_f1: float
    confusion: np.ndarray
    per_class: list[dict[str, Any]]
    best: list[dict[str, Any]]
    worst: list[dict[str, Any]]
    predictions: np.ndarray
    num_samples: int
    num_classes: int

    def summary(self) -> dict[str, float | None]:
        """The scalar metrics only (for metrics.csv and tables)."""
        return {
            "top1": self.top1,
            "top5": self.top5,
            "mean_per_class_recall": self.mean_per_class_recall,
            "macro_f1": self.macro_f1,
        }


def evaluate_zero_shot(
    image_embeds: Any,
    labels: Any,
    class_weights: Any,
    classnames: Sequence[str],
    logit_scale: float = 100.0,
    k_best: int = 5,
) -> ZeroShotResult:
    """Zero-shot top-1/top-5, balanced accuracy, macro F1, confusion and per-class table.

    Args:
      image_embeds: (N, D) raw image embeddings.
      labels: (N,) integer classes in [0, C).
      class_weights: (C, D) weights, e.g. from `class_text_embeddings`.
      classnames: C names, in class-index order.
      logit_scale: exp(model logit_scale); does not change any metric (see module docstring).
      k_best: how many best / worst classes (by F1) to list.

    Returns:
      ZeroShotResult.
    """
    w = np.asarray(class_weights)
    if w.ndim != 2 or w.shape[0] != len(classnames):
        raise ValueError(
            f"class_weights must be (C, D) with C = len(classnames) = {len(classnames)}; "
            f"got {w.shape}"
        )
    _check_finite("image_embeds", image_embeds)
    logits = np.asarray(zero_shot_logits(image_embeds, w, logit_scale))
    labels = np.asarray(labels)
    acc = metrics.informative_topk(logits, labels, ks=(1, 5), ties="first")
    num_classes = logits.shape[1]
    predictions = np.argmax(logits, axis=1).astype(np.int64)
    confusion = metrics.confusion_matrix(labels, predictions, num_classes)
    precision, recall, f1, support = metrics.per_class_prf(confusion)
    per_class = [
        {
            "class": classnames[c],
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
        }
        for c in range(num_classes)
    ]
    bw = metrics.best_worst_classes(f1, classnames, k_best)
    return ZeroShotResult(
        top1=acc["top1"],
        top5=acc["top5"],
        mean_per_class_recall=metrics.mean_per_class_recall(confusion),
        macro_f1=metrics.macro_f1(confusion),
        confusion=confusion,
        per_class=per_class,
        best=bw["best"],
        worst=bw["worst"],
        predictions=predictions,
        num_samples=int(logits.shape[0]),
        num_classes=int(num_classes),
    )


def per_class_with_confusions(
    per_class: Sequence[Mapping[str, Any]], confusion: Any, classnames: Sequence[str]
) -> list[dict[str, Any]]:
    """Per-class rows with the class each class is most often mistaken for.

    Args:
      per_class: one row per class (e.g. `ZeroShotResult.per_class`), in class-index order.
      confusion: (C, C) counts, rows true, columns predicted.
      classnames: C names.

    Returns:
      Each row extended by "index" (its class index), "confused_with" (the name of the most
      frequent wrong prediction, the row maximum off the diagonal, lowest index on ties; None
      when the class is never mistaken) and "confused_share" (that prediction's share of the
      class's samples; 0.0 when never mistaken).
    """
    conf = np.asarray(confusion).astype(np.int64)
    c = len(classnames)
    if conf.shape != (c, c) or len(per_class) != c:
        raise ValueError(
            f"need a ({c}, {c}) confusion and {c} per-class rows; got {conf.shape} and "
            f"{len(per_class)}"
        )
    counts = conf.sum(axis=1)
    off = conf.copy()
    np.fill_diagonal(off, -1)
    rows = []
    for k, row in enumerate(per_class):
        j = int(np.argmax(off[k]))
        wrong = off[k, j] > 0
        rows.append(
            {
                **row,
                "index": k,
                "confused_with": classnames[j] if wrong else None,
                "confused_share": float(off[k, j] / max(int(counts[k]), 1)) if wrong else 0.0,
            }
        )
    return rows


def value_scores(
    image_embeds: Any,
    labels: Any,
    weights: Mapping[str, Any],
    names: Sequence[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Zero-shot on one labelled property with several prompt kinds (e.g. generic prompts and
    class-marginal ones), each its own (V, D) weights.

    Returns:
      (scores, confusions): scores[kind] = {"top1", "mean_per_class_recall", "macro_f1",
      "per_value_recall": value name -> recall, for values with samples}; confusions[kind] =
      the (V, V) counts.
    """
    scores: dict[str, dict[str, Any]] = {}
    confusions: dict[str, np.ndarray] = {}
    for kind, w in weights.items():
        r = evaluate_zero_shot(image_embeds, labels, w, names, k_best=1)
        scores[kind] = {
            "top1": r.top1,
            "mean_per_class_recall": r.mean_per_class_recall,
            "macro_f1": r.macro_f1,
            "per_value_recall": {p["class"]: p["recall"] for p in r.per_class if p["support"] > 0},
        }
        confusions[kind] = r.confusion
    return scores, confusions


def similarity_variants(
    image_embeds: Any,
    text_embeds: Any,
    labels: Any,
    logit_scale: float = 100.0,
    return_ranks: bool = False,
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Zero-shot with three scores: cosine, raw dot product, logit-scaled cosine.

    The quantity the source reports (IT5005 Part 1, "Step 10", ViT-B/32 on an ImageNet subset,
    prompt "a photo of a {}") is top-1 ACCURACY: 0.5885 with cosine similarity vs 0.1608 with the
    dot product of the unnormalised embeddings -- not a mean similarity. Both are reproduced here,
    with the mean matched score (score of each image with its own class) beside them:

      cosine:        s_nc = <x_n, t_c> / (||x_n|| ||t_c||)
      dot:           s_nc = <x_n, t_c>               (raw encoder outputs)
      scaled_cosine: s_nc = logit_scale * cosine     (what CLIP's forward pass returns)

    Why dot differs: s_nc(dot) = ||x_n|| ||t_c|| cos_nc, and ||x_n|| is the same for every class
    of one image, so only the text norms ||t_c|| re-rank classes; classes with long text vectors
    win. scaled_cosine has exactly the cosine's accuracy (a positive factor never re-ranks).

    Args:
      image_embeds: (N, D) raw image embeddings.
      text_embeds: (C, D) raw text embeddings, one prompt per class.
      labels: (N,) integer classes.
      logit_scale: positive factor for "scaled_cosine".
      return_ranks: also return {variant: (N,) rank of the true class} (tie rule "first", so
        top-k correct iff rank < k), for paired comparisons and bootstrap intervals.

    Returns:
      One row per variant: {"similarity", "top1", "top5", "mean_matched", "mean_unmatched",
      "mean_top1_score"}; top5 is None with C <= 5 classes; "mean_unmatched" averages s_nc over c != y_n, "mean_top1_score" is the
      mean of max_c s_nc. With `return_ranks`, (rows, ranks).
    """
    x = np.asarray(image_embeds, dtype=np.float32)
    t = np.asarray(text_embeds, dtype=np.float32)
    y = np.asarray(labels)
    if x.ndim != 2 or t.ndim != 2 or x.shape[1] != t.shape[1]:
        raise ValueError(
            f"need image_embeds (N, D) and text_embeds (C, D); got {x.shape}, {t.shape}"
        )
    _check_finite("image_embeds", x)
    _check_finite("text_embeds", t)
    if not logit_scale > 0:
        raise ValueError(f"logit_scale must be positive; got {logit_scale}")
    dot = np.asarray(jnp.matmul(jnp.asarray(x), jnp.asarray(t).T, precision=_HIGHEST))
    cos = np.asarray(zero_shot_logits(x, l2_normalize(t), 1.0))
    rows, ranks = [], {}
    for name, s in (
        ("cosine", cos),
        ("dot", dot),
        ("scaled_cosine", cos * np.float32(logit_scale)),
    ):
        acc = metrics.informative_topk(s, y, ks=(1, 5))
        if return_ranks:
            ranks[name] = metrics.class_ranks(s, y, ties="first")
        matched = np.take_along_axis(s, y[:, None], axis=1)[:, 0].astype(np.float64)
        n, c = s.shape
        unmatched = (s.astype(np.float64).sum() - matched.sum()) / max(n * (c - 1), 1)
        rows.append(
            {
                "similarity": name,
                "top1": acc["top1"],
                "top5": acc["top5"],
                "mean_matched": float(matched.mean()),
                "mean_unmatched": float(unmatched),
                "mean_top1_score": float(s.max(axis=1).astype(np.float64).mean()),
            }
        )
    return (rows, ranks) if return_ranks else rows


def text_norm_effects(
    image_embeds: Any, text_embeds: Any, labels: Any, classnames: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Why the raw dot product ranks classes differently from the cosine: the text norms.

    <x, t_c> = |x| |t_c| cos(x, t_c): the image norm scales all of an image's scores alike, the
    text norms |t_c| re-rank the classes. This measures the norms and the share of images each
    class receives under both scores (float64, argmax ties to the lower class).

    Args:
      image_embeds: (N, D) raw image embeddings.
      text_embeds: (C, D) raw text embeddings, one prompt per class.
      labels: (N,) classes in [0, C).
      classnames: C names.

    Returns:
      (norms, per_class): norms = text_norm_min / max / mean, text_norm_cv (std / mean),
      text_norm_ratio_max_min, image_norm_mean, image_norm_cv, longest_text_class,
      dot_share_of_longest_text_class, spearman_text_norm_vs_dot_share (None for C <= 2 or
      when undefined), dot_max_class_share, cosine_max_class_share; per_class = one row per
      class: class, text_norm, share_true, share_dot, share_cosine.
    """
    x = np.asarray(image_embeds)
    text = np.asarray(text_embeds)
    y = np.asarray(labels)
    c = len(classnames)
    if text.shape[0] != c or x.ndim != 2 or text.ndim != 2 or x.shape[1] != text.shape[1]:
        raise ValueError(f"need (N, D) images and (C={c}, D) texts; got {x.shape}, {text.shape}")
    t_norm = np.linalg.norm(text.astype(np.float64), axis=1)
    i_norm = np.linalg.norm(x.astype(np.float64), axis=1)
    dot_pred = np.argmax(x.astype(np.float64) @ text.astype(np.float64).T, axis=1)
    cos_pred = np.argmax(
        (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
        @ (text / t_norm[:, None]).T,
        axis=1,
    )
    share_dot = np.bincount(dot_pred, minlength=c) / len(y)
    share_cos = np.bincount(cos_pred, minlength=c) / len(y)
    share_true = np.bincount(y, minlength=c) / len(y)
    rho = float(stats.spearmanr(t_norm, share_dot).statistic) if c > 2 else None
    top = int(np.argmax(t_norm))
    norms = {
        "text_norm_min": float(t_norm.min()),
        "text_norm_max": float(t_norm.max()),
        "text_norm_mean": float(t_norm.mean()),
        "text_norm_cv": float(t_norm.std() / t_norm.mean()),
        "text_norm_ratio_max_min": float(t_norm.max() / t_norm.min()),
        "image_norm_mean": float(i_norm.mean()),
        "image_norm_cv": float(i_norm.std() / i_norm.mean()),
        "longest_text_class": classnames[top],
        "dot_share_of_longest_text_class": float(share_dot[top]),
        "spearman_text_norm_vs_dot_share": rho if rho is None or np.isfinite(rho) else None,
        "dot_max_class_share": float(share_dot.max()),
        "cosine_max_class_share": float(share_cos.max()),
    }
    per_class = [
        {
            "class": classnames[k],
            "text_norm": float(t_norm[k]),
            "share_true": float(share_true[k]),
            "share_dot": float(share_dot[k]),
            "share_cosine": float(share_cos[k]),
        }
        for k in range(c)
    ]
    return norms, per_class


def _block_size(n: int, other: int, block_size: int | None) -> int:
    if block_size is None:
        block_size = max(8, (1 << 24) // max(other, 1))
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None; got {block_size!r}")
    return int(min(block_size, max(n, 1)))


@jax.jit
def _template_ranks(
    x_blocks: jax.Array, y_blocks: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Rank (tie rule "first") and score of the true class per template, (nb, P, B) each."""
    num_classes = weights.shape[1]
    cls = jnp.arange(num_classes)

    def one(block):
        x, y = block
        s = jnp.einsum("bd,pcd->pbc", l2_normalize(x), weights, precision=_HIGHEST)
        true = jnp.take_along_axis(s, jnp.broadcast_to(y[None, :, None], (*s.shape[:2], 1)), 2)
        higher = jnp.sum(s > true, axis=2)
        tied_before = jnp.sum((s == true) & (cls[None, None, :] < y[None, :, None]), axis=2)
        return higher + tied_before, true[..., 0]

    return jax.lax.map(one, (x_blocks, y_blocks))


def compare_templates(
    image_embeds: Any,
    labels: Any,
    text_embeds_per_template: Mapping[str, Any],
    logit_scale: float = 100.0,
    ks: Sequence[int] = (1, 5),
    ensemble: bool = True,
    block_size: int | None = None,
    return_ranks: bool = False,
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], np.ndarray]:
    """Zero-shot top-k accuracy of each prompt template, plus the prompt ensemble.

    All templates are scored in one batched contraction per image block,
    s_pnc = <x_n/||x_n||, t_pc/||t_pc||> (einsum "bd,pcd->pbc"), never a Python loop over images
    or templates. Tie rule "first" (as `metrics.topk_accuracy`). The "ensemble" row uses
    `class_text_embeddings` over all templates (normalise, average, renormalise).

    Args:
      image_embeds: (N, D) raw image embeddings.
      labels: (N,) integer classes.
      text_embeds_per_template: template string -> (C, D) raw text embeddings of its C prompts.
      logit_scale: accepted for symmetry with `zero_shot_logits`; it cannot change accuracy.
      ks: the k of top-k.
      ensemble: add an "ensemble" row (needs >= 2 templates).
      block_size: images per block (None: about 2**24 scores per block); memory O(block * P * C).
      return_ranks: also return the (rows, N) int rank of the true class per row and image
        (top-k correct iff rank < k), for paired comparisons and bootstrap intervals.

    Returns:
      One row per template (input order, then "ensemble"):
      {"template", "top1", "top5", ..., "mean_matched_cosine"}; top-k for k >= C is None.
      With `return_ranks`, (rows, ranks).
    """
    if not text_embeds_per_template:
        raise ValueError("text_embeds_per_template is empty; give at least one template")
    if not logit_scale > 0:
        raise ValueError(f"logit_scale must be positive; got {logit_scale}")
    names = list(text_embeds_per_template)
    arrays = [np.asarray(text_embeds_per_template[n], dtype=np.float32) for n in names]
    shapes = {n: a.shape for n, a in zip(names, arrays)}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"every template needs the same (C, D) shape; got {shapes}")
    raw = np.stack(arrays)
    x = np.asarray(image_embeds, dtype=np.float32)
    y = np.asarray(labels)
    if raw.ndim != 3 or x.ndim != 2 or raw.shape[2] != x.shape[1]:
        raise ValueError(
            f"need image_embeds (N, D) and every template (C, D) with the same C, D; got images "
            f"{x.shape}, templates stacked {raw.shape}"
        )
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be (N,) integers, N = {x.shape[0]}; got {y.shape} {y.dtype}")
    num_classes = raw.shape[1]
    if y.size == 0 or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must be non-empty and lie in [0, {num_classes})")
    ks = tuple(int(k) for k in ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers; got {ks}")
    _check_finite("image_embeds", x)
    _check_finite("text_embeds_per_template", raw)
    weights = l2_normalize(jnp.asarray(raw))  # (P, C, D)
    if ensemble and len(names) >= 2:
        ens = class_text_embeddings(jnp.swapaxes(jnp.asarray(raw), 0, 1))  # (C, D)
        weights = jnp.concatenate([weights, ens[None]], axis=0)
        names.append("ensemble")

    n = x.shape[0]
    bs = _block_size(n, weights.shape[0] * num_classes, block_size)
    nb = -(-n // bs)
    pad = nb * bs - n
    xp = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)]).reshape(nb, bs, -1)
    yp = np.concatenate([y.astype(np.int32), np.zeros(pad, np.int32)]).reshape(nb, bs)
    rank, true = _template_ranks(jnp.asarray(xp), jnp.asarray(yp), weights)
    rank = np.moveaxis(np.asarray(rank), 1, 0).reshape(len(names), nb * bs)[:, :n]  # (P, N)
    true = np.moveaxis(np.asarray(true), 1, 0).reshape(len(names), nb * bs)[:, :n]
    matched = true.astype(np.float64).mean(axis=1)
    rows = []
    for p, name in enumerate(names):
        row: dict[str, Any] = {"template": name}
        for k in ks:
            row[f"top{k}"] = float(np.mean(rank[p] < k)) if k < num_classes else None
        row["mean_matched_cosine"] = float(matched[p])
        rows.append(row)
    return (rows, rank) if return_ranks else rows
