"""Study: text <-> image retrieval of one model on one dataset.

Binds `jaxclip.analysis.retrieval` and `jaxclip.analysis.queries` to a model × dataset
(`analyse`); the report is drawn by `jaxclip.studies.retrieval_render.render`:

* captioned datasets (shapes: 5 captions per image; coco_captions: the Karpathy 5k test split):
  text -> image and image -> text Recall@K, MedR, MeanR (exact ranks, `retrieval.ranks`), the
  published numbers for OpenAI ViT-B/32 on COCO beside ours (`references.RETRIEVAL`), the rank
  distribution, and "can a caption find its own image" (the DATA586 slides' question, there
  judged by eye): the share of captions whose image comes first / in the top 5, with example
  captions, their rank and their top images (own image framed);
* ad-hoc text queries -> their top-k images as an image grid;
* refinement chains ("a photo of a bird" -> "a photo of a white bird" -> "a photo of a flying
  white bird"; noun and style swaps): top-k overlap, Jaccard and score shifts per step
  (`retrieval.refinement_study`), one grid per chain.

Recall@K follows the common field `metrics_protocol`: jaxclip's exact ranks (R@K null for K >=
the gallery size; image -> text over captioned images) or CLIP_benchmark's
image_retrieval_recall@K / text_retrieval_recall@K (`jaxclip.analysis.clip_benchmark`), which
`captions.clip_benchmark` holds either way (the record of `WORKDIR/clip_benchmark.json`).

Under both protocols every R@K carries a 95 % bootstrap interval (`R@K_ci`, seeded by
`config.seed`, `jaxclip.analysis.bootstrap`): image -> text resamples the query images (under
CLIP_benchmark's, every image, those without captions counted as misses);
text -> image resamples images and keeps each image's captions together (`grouped_interval`),
since captions of one image are not independent queries.

Where the dataset labels what an image shows, queries are also scored against the labels
(`jaxclip.analysis.queries`: precision@k beside the gallery's base rate, and a ceiling for
captions). The config section is `configs/retrieval.py: study_config`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from jaxclip.analysis import bootstrap
from jaxclip.analysis import clip_benchmark as cbm
from jaxclip.analysis import retrieval as rt
from jaxclip.analysis.queries import QueryParse, caption_ceiling, parse_query, precision_at_k
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.report.references import RETRIEVAL, lookup
from jaxclip.studies.context import Context, Study
from jaxclip.studies.result import StudyResult, optional, sidecar
from jaxclip.studies.retrieval_render import render
from jaxclip.studies.shared import attribute_value_names, embed_texts, metrics_protocol

__all__ = [
    "NATURAL_CHAINS",
    "NATURAL_QUERIES",
    "SHAPES_CHAINS",
    "SHAPES_QUERIES",
    "STUDY",
    "RetrievalResult",
    "analyse",
    "check_config",
    "default_queries",
]

NAME = "retrieval"

# Ad-hoc queries and refinement chains used when the config leaves them empty.
SHAPES_QUERIES: tuple[str, ...] = (
    "a red circle",
    "three small blue stars",
    "a green triangle on a striped background",
    "yellow shapes on a dotted background",
    "two white squares",
)
SHAPES_CHAINS: tuple[tuple[str, ...], ...] = (
    ("a shape", "a red shape", "a small red shape", "two small red circles"),  # adjectives
    ("a red circle", "a red square", "a red star"),  # noun swaps
    ("a photo of a blue star", "a sketch of a blue star", "a painting of a blue star"),  # style
)
NATURAL_QUERIES: tuple[str, ...] = (
    "a photo of a bird",
    "a photo of a dog",
    "a photo of a car",
    "a plate of food on a table",
    "people posing for a group photo",
)
NATURAL_CHAINS: tuple[tuple[str, ...], ...] = (
    ("a photo of a bird", "a photo of a white bird", "a photo of a flying white bird"),
    ("a photo of apples", "a photo of oranges"),  # noun swap (the DATA586 slides)
    ("a photo of a dog", "a sketch of a dog", "a painting of a dog"),  # style swaps
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetrievalResult(StudyResult):
    """The retrieval study's results.json entry, and the arrays its figures need.

    Gallery rows ("top_rows", "image_row") are rows of the split's features, so row r is the
    split's source item r (the image grids read them with `RenderContext.images`).
    """

    split: str
    num_images: int
    skipped: str | None = optional()
    captions: dict | None = optional()  # recalls, own-image retrieval, examples
    queries: list | None = optional()  # per query: top rows, scores, parse, precision@k
    chains: list | None = optional()  # per chain: refinement steps, top rows, precision
    figures: list | None = optional()
    # For the report only: the labels queries are read against (names, in order); the 0-based
    # rank of every caption's image and every image's best caption (-1: none); the example
    # captions', queries' and chain steps' top grid_k rows, cosines and framed cells.
    label_names: np.ndarray | None = sidecar()
    ranks_text_to_image: np.ndarray | None = sidecar()
    ranks_image_to_text: np.ndarray | None = sidecar()
    example_rows: np.ndarray | None = sidecar()
    example_scores: np.ndarray | None = sidecar()
    query_highlight: np.ndarray | None = sidecar()
    chain_rows: np.ndarray | None = sidecar()
    chain_scores: np.ndarray | None = sidecar()
    chain_highlight: np.ndarray | None = sidecar()


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
    check_choice("retrieval.split", cfg.split, ("train", "test"))
    ks = tuple(cfg.ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ConfigError(f"config.retrieval.ks={ks!r} must be a non-empty tuple of ints >= 1")
    for field, lo in (("examples", 0), ("grid_k", 1), ("thumbnail", 8), ("refinement_k", 1)):
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.retrieval.{field}={cfg[field]} must be >= {lo}")
    if isinstance(cfg.queries, str) or not all(
        isinstance(q, str) and q.strip() for q in cfg.queries
    ):
        raise ConfigError(
            f"config.retrieval.queries={cfg.queries!r} must be a tuple of non-empty strings"
        )
    for chain in cfg.chains:
        if (
            isinstance(chain, str)
            or len(chain) < 2
            or not all(isinstance(q, str) and q.strip() for q in chain)
        ):
            raise ConfigError(
                f"config.retrieval.chains entry {chain!r} must be a tuple of >= 2 non-empty strings"
            )


def default_queries(dataset: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(queries, chains) used when the config leaves them empty."""
    if dataset.split("/")[0] == "shapes":
        return SHAPES_QUERIES, SHAPES_CHAINS
    return NATURAL_QUERIES, NATURAL_CHAINS


def figure_names(has_captions: bool, examples: int, queries: int, chains: int) -> list[str]:
    """The study's figure files, in report order."""
    names = ["retrieval_rank_distribution.png"] if has_captions else []
    names += ["retrieval_captions.png"] if has_captions and examples else []
    names += ["retrieval_queries.png"] if queries else []
    return names + [f"retrieval_chain_{i + 1}.png" for i in range(chains)]


@dataclasses.dataclass(frozen=True)
class _Gallery:
    """What the parts of one retrieval analysis share."""

    x: np.ndarray  # (N, D) raw image embeddings
    indices: np.ndarray  # (N,) dataset index of each row
    names: dict[str, tuple[str, ...]]  # label -> value names (queries are scored on them)
    labels: dict[str, np.ndarray]  # label -> (N,) values
    grid_k: int  # images per grid row

    def parse(self, text: str) -> QueryParse:
        return parse_query(text, self.names) if self.names else QueryParse({})

    def highlight(self, texts: list[str], rows: np.ndarray) -> np.ndarray:
        """(Q, k) bool: the grid cells whose image has every property the text names."""
        n = len(self.x)
        return np.stack(
            [
                p.mask(self.labels, n)[rows[j]] if p.constraints else np.zeros(rows.shape[1], bool)
                for j, p in enumerate(self.parse(t) for t in texts)
            ]
        )


def _label_names(
    ctx: Context, cfg: ml_collections.ConfigDict, features: Any
) -> tuple[dict[str, tuple[str, ...]], dict[str, np.ndarray]]:
    """Label -> value names and label -> (N,) values, for the labels a query can name."""
    names: dict[str, tuple[str, ...]] = {}
    values: dict[str, np.ndarray] = {}
    lab = np.asarray(features.labels)
    if len(features.classnames) >= 2 and (lab >= 0).any():
        names["label"] = tuple(str(c) for c in features.classnames)
        values["label"] = lab
    attrs = dict(getattr(features, "attributes", None) or {})
    if attrs:
        for a, vals in attribute_value_names(ctx, cfg.split).items():
            if a in attrs:  # the dataset's order (stable, unlike the features' dict order)
                names[a] = vals
                values[a] = np.asarray(attrs[a])
    return names, values


def analyse(ctx: Context, cfg: ml_collections.ConfigDict) -> RetrievalResult:
    """Caption retrieval, ad-hoc queries and refinement chains on the `cfg.split` gallery."""
    check_config(cfg)
    features = ctx.features(cfg.split)
    split = ctx.split_name(cfg.split)
    x = np.asarray(features.embeds, np.float32)
    n = len(x)
    queries, chains = default_queries(str(ctx.config.dataset))
    queries = tuple(cfg.queries) or queries
    chains = tuple(tuple(c) for c in cfg.chains) or chains
    names, labels = _label_names(ctx, cfg, features) if cfg.score_queries else ({}, {})
    if n < 2:
        why = f"the gallery has {n} image(s); retrieval needs at least 2"
        return RetrievalResult(split=split, num_images=n, skipped=why)

    # Every text of the study in one encoder call.
    has_caps = features.captions is not None and any(len(c) for c in features.captions)
    cap_texts, t2i = features.caption_arrays() if has_caps else ([], np.zeros(0, np.int64))
    chain_texts = [q for ch in chains for q in ch]
    emb = embed_texts(ctx, list(cap_texts) + list(queries) + chain_texts)
    if emb.shape[1] != x.shape[1]:
        raise ValueError(f"image {x.shape} and text {emb.shape} embeddings differ in D")
    nc, nq = len(cap_texts), len(queries)
    g = _Gallery(x, np.asarray(features.indices), names, labels, min(int(cfg.grid_k), n))
    fields: dict[str, Any] = {"label_names": np.asarray(list(names)) if names else None}
    if has_caps:
        fields |= _captions(g, emb[:nc], list(cap_texts), np.asarray(t2i), cfg, ctx)
    else:
        fields["captions"] = {"skipped": "this dataset has no captions"}
    if queries:
        fields |= _queries(g, emb[nc : nc + nq], list(queries))
    if chains:
        fields |= _chains(g, emb[nc + nq :], chains, min(int(cfg.refinement_k), n))
    examples = len(fields["captions"].get("examples", []))
    figures = figure_names(has_caps, examples, len(queries), len(chains))
    return RetrievalResult(split=split, num_images=n, **fields, figures=figures)


def _recalls(
    r: Any,
    ks: tuple[int, ...],
    bench: tuple[dict[str, Any], tuple[dict, dict]] | None = None,
    t2i: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Recall@K, MedR, MeanR (1-based), tied and valid query counts of both directions.

    R@K is jaxclip's (null for K >= the gallery: every query is trivially a hit) or, given
    `bench` (CLIP_benchmark's record and its per-query hits, `clip_benchmark.retrieval_hits`),
    CLIP_benchmark's image_retrieval_recall@K (text -> image) and text_retrieval_recall@K
    (image -> text); MedR, MeanR stay jaxclip's. Each R@K carries `R@K_ci`, its bootstrap
    interval (text -> image: captions grouped by their image `t2i`, whole images resampled;
    image -> text: query images resampled, under CLIP_benchmark's protocol every image,
    captionless ones as misses).
    """
    out = {}
    for direction, rank, ties, gallery, key in (
        ("text_to_image", r.text_to_image, r.text_to_image_ties, len(r.image_to_text), "image"),
        ("image_to_text", r.image_to_text, r.image_to_text_ties, len(r.text_to_image), "text"),
    ):
        valid = rank >= 0
        row: dict[str, Any] = rt.recall_from_ranks(rank, ks)
        for k in ks:
            if bench is not None:
                record, (found_images, found_texts) = bench
                row[f"R@{k}"] = record[f"{key}_retrieval_recall@{k}"]
                hits = (found_images if key == "image" else found_texts)[k]
                if hits is not None and t2i is not None:
                    iv = (
                        bootstrap.grouped_interval(hits, t2i, seed=seed)
                        if direction == "text_to_image"
                        else bootstrap.mean_interval(hits, seed=seed)
                    )
                    row[f"R@{k}_ci"] = iv.as_dict()
            elif k >= gallery:
                row[f"R@{k}"] = None
            elif t2i is not None:
                hits = rank[valid] < k
                iv = (
                    bootstrap.grouped_interval(hits, t2i[valid], seed=seed)
                    if direction == "text_to_image"
                    else bootstrap.mean_interval(hits, seed=seed)
                )
                row[f"R@{k}_ci"] = iv.as_dict()
        row["MedR"] = float(np.median(rank[valid] + 1))
        row["MeanR"] = float(np.mean(rank[valid] + 1))
        row["tied_queries"] = int(np.sum(ties[valid] > 0))
        row["num_queries"] = int(valid.sum())
        out[direction] = row
    return out


def _captions(
    g: _Gallery,
    e_cap: np.ndarray,
    texts: list[str],
    t2i: np.ndarray,
    cfg: ml_collections.ConfigDict,
    ctx: Context,
) -> dict[str, Any]:
    """The `captions` entry and the arrays of its figures."""
    n = len(g.x)
    r = rt.ranks(g.x, e_cap, t2i)
    ks = tuple(int(k) for k in cfg.ks)
    bench_hits = cbm.retrieval_hits(g.x, e_cap, t2i, ks)
    bench = cbm.recalls(*bench_hits)
    protocol = metrics_protocol(ctx)
    out: dict[str, Any] = {
        "num_texts": len(texts),
        "num_distinct_texts": len(set(texts)),
        "images_without_captions": int(np.sum(r.image_to_text < 0)),
        "metrics_protocol": protocol,
        **_recalls(
            r,
            ks,
            (bench, bench_hits) if protocol == "clip_benchmark" else None,
            t2i,
            int(ctx.config.seed),
        ),
        # CLIP_benchmark's recalls whatever the protocol (WORKDIR/clip_benchmark.json).
        "clip_benchmark": bench,
    }
    published = lookup(RETRIEVAL, str(ctx.config.model), str(ctx.config.dataset))
    if published:
        out["published_percent"] = {d: dict(v) for d, v in published.items()}
    t_rank = r.text_to_image
    own: dict[str, Any] = {
        "top1": float(np.mean(t_rank < 1)),
        "top5": float(np.mean(t_rank < 5)),
        "chance_top1": 1.0 / n,
        "chance_top5": min(1.0, 5.0 / n),
    }
    # Identical caption strings of different images: text alone cannot tell those images apart.
    owners: dict[str, set[int]] = {}
    for t, i in zip(texts, t2i):
        owners.setdefault(t, set()).add(int(i))
    own["captions_shared_with_other_images"] = sum(1 for t in texts if len(owners[t]) > 1)
    ceiling = caption_ceiling(texts, t2i, g.names, g.labels, n) if g.names else None
    if ceiling:
        own["ceiling"] = ceiling
    out["own_image"] = own
    fields: dict[str, Any] = {
        "ranks_text_to_image": r.text_to_image,
        "ranks_image_to_text": r.image_to_text,
    }
    k_ex = min(int(cfg.examples), len(set(t2i.tolist())))
    if k_ex:
        rng = np.random.default_rng(int(ctx.config.seed))
        # One caption per image, images drawn at random, shown best-ranked first.
        img_pick = rng.choice(np.unique(t2i), size=k_ex, replace=False)
        picks = []
        for i in img_pick:
            cand = np.flatnonzero(t2i == i)
            picks.append(int(cand[rng.integers(len(cand))]))
        picks = sorted(picks, key=lambda t: (int(t_rank[t]), t))
        idx, sc = rt.query_topk_padded(e_cap[picks], g.x, g.grid_k)
        xn = g.x / np.linalg.norm(g.x, axis=1, keepdims=True)
        en = e_cap[picks] / np.linalg.norm(e_cap[picks], axis=1, keepdims=True)
        own_cos = np.einsum("qd,qd->q", en, xn[t2i[picks]])
        out["examples"] = [
            {
                "caption": texts[t],
                "image_row": int(t2i[t]),
                "rank": int(t_rank[t]) + 1,
                "own_cosine": float(own_cos[j]),
                "top1_cosine": float(sc[j, 0]),
            }
            for j, t in enumerate(picks)
        ]
        fields |= {"example_rows": idx, "example_scores": sc}
    return {"captions": out, **fields}


def _queries(g: _Gallery, e_q: np.ndarray, queries: list[str]) -> dict[str, Any]:
    """The `queries` entry and the arrays of its grid."""
    n = len(g.x)
    idx, sc = rt.query_topk_padded(e_q, g.x, g.grid_k)
    out = []
    for j, q in enumerate(queries):
        p = g.parse(q)
        prec, base, count = precision_at_k(p, idx[j], g.labels, n)
        out.append(
            {
                "query": q,
                "top_rows": idx[j].tolist(),
                "top_indices": g.indices[idx[j]].tolist(),
                "scores": sc[j].tolist(),
                "parsed": p.describe(g.names),
                "precision_at_k": prec,
                "base_rate": base,
                "matching_images": count,
            }
        )
    return {"queries": out, "query_highlight": g.highlight(queries, idx)}


def _chains(
    g: _Gallery, e_ch: np.ndarray, chains: tuple[tuple[str, ...], ...], k: int
) -> dict[str, Any]:
    """The `chains` entry (refinement steps at top `k`) and the arrays of their grids."""
    n = len(g.x)
    out, rows, scores, highlight = [], [], [], []
    pos = 0
    for chain in chains:
        q_emb = e_ch[pos : pos + len(chain)]
        pos += len(chain)
        study = rt.refinement_study(list(chain), q_emb, g.x, k=k)
        precs = []
        for j, q in enumerate(chain):
            p = g.parse(q)
            prec, base, _ = precision_at_k(p, study.indices[j], g.labels, n)
            precs.append(
                {
                    "query": q,
                    "parsed": p.describe(g.names),
                    "precision_at_k": prec,
                    "base_rate": base,
                }
            )
        out.append(
            {
                "queries": list(chain),
                "steps": study.rows,
                "top_rows": study.indices.tolist(),
                "top_indices": g.indices[study.indices].tolist(),
                "scores": study.scores.tolist(),
                "precision": precs,
            }
        )
        idx, sc = rt.query_topk_padded(q_emb, g.x, g.grid_k)
        rows.append(idx)
        scores.append(sc)
        highlight.append(g.highlight(list(chain), idx))
    return {
        "chains": out,
        "chain_rows": np.concatenate(rows),
        "chain_scores": np.concatenate(scores),
        "chain_highlight": np.concatenate(highlight),
    }


STUDY = Study(analyse, render, RetrievalResult, check_config)
