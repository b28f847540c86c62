"""Image-text pairs for the geometry analyses: which images, which texts, which pairs.

`plan_pairs` picks them from the arrays of a split (captions, or labels and class names)
without embedding anything; `make_pairs` joins the plan with the image embeddings and the
embeddings of its texts (each text embedded by the caller, e.g. once per distinct string).

Captioned data: each image is paired with one caption (an index into its captions) or with every
caption ("all": the image repeats once per caption in the pairs). Data without captions: each
labelled image is paired with a class template filled with its class name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PairPlan", "Pairs", "make_pairs", "parse_caption", "plan_pairs"]


@dataclasses.dataclass(frozen=True)
class PairPlan:
    """Which rows of a split are paired with which texts.

    Attributes:
      rows: (N_i,) rows of the split's embeddings kept, each image once.
      texts: (N_t,) the text of every text row, in pair order.
      owner: (P,) = (N_t,) index into `rows` of the image of each pair (text j with image
        `rows[owner[j]]`).
      source: "captions" or "class_prompts".
      n_split: images in the split.
      n_sampled: images left after the seeded subset (`n_split` without one).
    """

    rows: np.ndarray
    texts: list[str]
    owner: np.ndarray
    source: str
    n_split: int
    n_sampled: int


@dataclasses.dataclass(frozen=True)
class Pairs:
    """The embeddings one geometry run analyses.

    `image` / `text` are the two modalities for the per-modality statistics (each image once;
    every text used once); `pair_image[j]`, `pair_text[j]` is pair j of the loss sweep.
    """

    image: np.ndarray  # (N_i, D) raw image embeddings, each image once
    text: np.ndarray  # (N_t, D) raw text embeddings
    texts: list[str]  # (N_t,) the text of each row of `text`
    pair_image: np.ndarray  # (P, D)
    pair_text: np.ndarray  # (P, D)
    source: str  # "captions" or "class_prompts"
    owner: np.ndarray  # (N_t,) the row of `image` of each text (pair j = image[owner[j]], text[j])


def parse_caption(value: Any) -> int | str:
    """A caption choice: "first" -> 0, "3" (or 3) -> 3, "all" -> "all".

    Raises:
      ValueError: anything else.
    """
    v = str(value).strip().lower()
    if v == "first":
        return 0
    if v == "all":
        return "all"
    if v.isdigit():
        return int(v)
    raise ValueError(f"caption choice {value!r} is not 'first', 'all' or a 0-based index")


def _subset(n: int, max_pairs: int, seed: int) -> np.ndarray:
    if max_pairs and n > max_pairs:
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, size=int(max_pairs), replace=False))
    return np.arange(n)


def plan_pairs(
    n_images: int,
    *,
    captions: Sequence[Sequence[str]] | None,
    labels: Any,
    classnames: Sequence[str],
    caption: int | str = "first",
    class_template: str = "a photo of a {}.",
    max_pairs: int = 0,
    seed: int = 0,
) -> PairPlan | str:
    """Pairs the `n_images` images of a split with texts, or says why it cannot.

    Args:
      n_images: rows of the split.
      captions: per image, its captions (None: the dataset has none).
      labels: (n_images,) class indices, -1 = no label (used without captions).
      classnames: names of the classes.
      caption: the caption paired with each image (`parse_caption`: "first", a 0-based index)
        or "all" (every caption, the image repeated once per caption); images without such a
        caption are left out.
      class_template: without captions, the text of an image is this template filled with its
        class name (unlabelled images are left out).
      max_pairs: > 0: a seeded random subset of this many images first (0 = all).
      seed: seed of that subset.

    Returns:
      The plan, or a one-line reason (str) when no image can be paired.
    """
    rows = _subset(n_images, max_pairs, seed)
    n_sampled = len(rows)
    if captions is not None:
        caps = [list(captions[r]) for r in rows]
        choice = parse_caption(caption)
        if choice == "all":
            keep = np.asarray([len(c) > 0 for c in caps], bool)
            texts = [t for c, k in zip(caps, keep) if k for t in c]
            owner = np.repeat(np.arange(int(keep.sum())), [len(c) for c, k in zip(caps, keep) if k])
        else:
            index = int(choice)
            keep = np.asarray([len(c) > index for c in caps], bool)
            texts = [c[index] for c, k in zip(caps, keep) if k]
            owner = np.arange(int(keep.sum()))
        if not keep.any():
            return f"no image of this split has caption {caption!r}"
        return PairPlan(rows[keep], texts, owner, "captions", n_images, n_sampled)
    labels = np.asarray(labels)[rows]
    keep = labels >= 0
    if not keep.any():
        return "this split has neither captions nor labels, so images cannot be paired with texts"
    names = list(classnames)
    texts = [class_template.format(names[int(k)]) for k in labels[keep]]
    owner = np.arange(int(keep.sum()))
    return PairPlan(rows[keep], texts, owner, "class_prompts", n_images, n_sampled)


def make_pairs(image_embeds: Any, plan: PairPlan, text_embeds: Any) -> Pairs:
    """The pairs of `plan`: its rows of `image_embeds` (N, D) and `text_embeds` (N_t, D), the
    embeddings of `plan.texts` in order.

    Raises:
      ValueError: the embeddings are not 2-D, there is not one text row per text, or the two
        modalities differ in D.
    """
    emb = np.asarray(image_embeds, np.float32)
    if emb.ndim != 2:
        raise ValueError(f"image embeddings must be (N, D), got shape {emb.shape}")
    text = np.asarray(text_embeds, np.float32)
    if text.ndim != 2 or len(text) != len(plan.texts):
        raise ValueError(f"text embeddings have shape {text.shape} for {len(plan.texts)} texts")
    image = emb[plan.rows]
    if text.shape[1] != image.shape[1]:
        raise ValueError(f"image {image.shape} and text {text.shape} embeddings differ in D")
    return Pairs(image, text, list(plan.texts), image[plan.owner], text, plan.source, plan.owner)
