"""Study: text <-> image retrieval of one model on one dataset (DESIGN.md item 6).

Binds `jaxclip.analysis.retrieval` to a model × dataset and writes its report:

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

Where the dataset labels what an image shows (class names, and the shapes attributes colour,
size, count, background, position), a query's words are matched against those labels
(`parse_query`), so a query like "three small blue stars" is also scored: precision@k = the
share of its top-k images that have every named property, beside the share of the whole gallery
that has them (what a random ranking gets). For captions the same parse gives a ceiling: a
ranker that knew exactly the properties a caption names, and broke ties at random, would find the
caption's own image first with probability 1/m (m = images with those properties).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxclip.analysis import retrieval as rt
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.report import Report
from jaxclip.report import plots_retrieval as plots
from jaxclip.report.references import RETRIEVAL, lookup
from jaxclip.studies.legacy import LegacySection as Section
from jaxclip.studies.zero_shot import embed_texts, plural

__all__ = [
    "NATURAL_CHAINS",
    "NATURAL_QUERIES",
    "SHAPES_CHAINS",
    "SHAPES_QUERIES",
    "QueryParse",
    "check_config",
    "default_config",
    "default_queries",
    "parse_query",
    "run",
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


def default_config() -> ml_collections.ConfigDict:
    """The retrieval study's section of the config (`config.retrieval`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role searched (the gallery): "test" or "train"
    c.ks = (1, 5, 10)  # K of Recall@K
    c.examples = 6  # captions shown with their rank and top images (seeded random, 0 = none)
    c.grid_k = 8  # images per row in the example, query and chain grids
    c.thumbnail = 128  # grid image side in px (larger images are centre-cropped and resized)
    # Ad-hoc text queries. () = the defaults for the dataset: SHAPES_QUERIES on shapes,
    # NATURAL_QUERIES elsewhere (jaxclip.studies.retrieval).
    c.queries = ()
    # Refinement chains, each a tuple of >= 2 queries compared step by step. () = the defaults:
    # SHAPES_CHAINS on shapes, NATURAL_CHAINS elsewhere.
    c.chains = ()
    c.refinement_k = 10  # top-k of the refinement table (overlap, Jaccard, score shift)
    c.score_queries = True  # match query words to the dataset's labels and report precision@k
    return c


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


# ---------------------------------------------------------------------------- query parsing


@dataclasses.dataclass
class QueryParse:
    """What a query asks for, in the dataset's labels.

    constraints: label name ("label" = the class, or an attribute) -> allowed value indices.
    An image satisfies the query when its value is allowed for every constrained label.
    """

    constraints: dict[str, tuple[int, ...]]

    def describe(self, names: Mapping[str, Sequence[str]]) -> str:
        if not self.constraints:
            return ""
        parts = []
        for key in [k for k in names if k in self.constraints]:
            vals = self.constraints[key]
            words = [str(names[key][v]) for v in vals]
            shown = words[0] if len(words) == 1 else "{" + ", ".join(words) + "}"
            parts.append(f"{'class' if key == 'label' else key}={shown}")
        return ", ".join(parts)

    def mask(self, labels: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """(n,) bool: the images that satisfy every constraint."""
        out = np.ones(n, bool)
        for key, vals in self.constraints.items():
            out &= np.isin(np.asarray(labels[key]), np.asarray(vals))
        return out


def parse_query(text: str, names: Mapping[str, Sequence[str]]) -> QueryParse:
    """Matches the words of `text` against label value names (longest phrase first).

    Args:
      text: the query.
      names: label -> value names, "label" for the class names (e.g. {"label": ("circle", ...),
        "color": ("red", ...), "count": ("one", "two", "three"), ...}).

    Class names also match in the plural. With a "count" label whose first value is "one"
    (the shapes dataset) and no count word in the query, a singular class noun means count
    "one" and a plural one any other count, as the shapes captions are written.
    """
    low = " " + re.sub(r"[^a-z0-9 ]+", " ", text.lower()) + " "
    phrases: list[tuple[str, str, int, str | None]] = []
    for key, values in names.items():
        for v, name in enumerate(values):
            name = re.sub(r"[^a-z0-9 ]+", " ", str(name).lower()).strip()
            if not name:
                continue
            if key == "label":
                phrases.append((name, key, v, "singular"))
                phrases.append((plural(name), key, v, "plural"))
            else:
                phrases.append((name, key, v, None))
    phrases.sort(key=lambda p: -len(p[0]))
    found: dict[str, list[int]] = {}
    number: str | None = None
    for phrase, key, v, num in phrases:
        pat = re.compile(rf"(?<= ){re.escape(phrase)}(?= )")
        if pat.search(low):
            low = pat.sub(" ".join("#" * len(w) for w in phrase.split()), low)
            if v not in found.setdefault(key, []):
                found[key].append(v)
            if num is not None:
                number = num
    counts = [str(c).lower() for c in names.get("count", ())]
    if "count" in names and "count" not in found and counts[:1] == ["one"] and number:
        found["count"] = [0] if number == "singular" else list(range(1, len(counts)))
    return QueryParse({k: tuple(sorted(v)) for k, v in found.items()})


# ------------------------------------------------------------------------------- the study


def run(ctx: Any, cfg: ml_collections.ConfigDict) -> Section:
    """Runs the retrieval study on `ctx` (a `Context`) with `cfg` = config.retrieval."""
    check_config(cfg)
    model, dataset = str(ctx.config.model), str(ctx.config.dataset)
    seed = int(getattr(ctx.config, "seed", 0))
    report = Report("Text-image retrieval")
    features = ctx.features(cfg.split)
    split_name = ctx.split_name(cfg.split) if hasattr(ctx, "split_name") else cfg.split
    x = np.asarray(features.embeds, np.float32)
    n = len(x)
    queries, chains = default_queries(dataset)
    queries = tuple(cfg.queries) or queries
    chains = tuple(tuple(c) for c in cfg.chains) or chains
    names, labels = _label_names(ctx, cfg, features) if cfg.score_queries else ({}, {})
    results: dict[str, Any] = {"split": split_name, "num_images": n}
    if n < 2:
        why = f"the gallery has {n} image(s); retrieval needs at least 2"
        report.text(f"Skipped: {why}.")
        return Section(NAME, {**results, "skipped": why}, report)

    # Every text of the study in one encoder call.
    has_caps = features.captions is not None and any(len(c) for c in features.captions)
    cap_texts, t2i = features.caption_arrays() if has_caps else ([], np.zeros(0, np.int64))
    chain_texts = [q for ch in chains for q in ch]
    emb = embed_texts(ctx, list(cap_texts) + list(queries) + chain_texts)
    if emb.shape[1] != x.shape[1]:
        raise ValueError(f"image {x.shape} and text {emb.shape} embeddings differ in D")
    e_cap = emb[: len(cap_texts)]
    e_q = emb[len(cap_texts) : len(cap_texts) + len(queries)]
    e_ch = emb[len(cap_texts) + len(queries) :]

    scope = (
        f"The gallery is the {n} images of the `{split_name}` split of `{dataset}`, embedded by "
        f"`{model}`; every score is the cosine similarity of the L2-normalised embeddings."
    )
    if names:
        shown = ", ".join(f"{'class' if k == 'label' else k}" for k in names)
        scope += (
            f" The dataset labels each image's {shown}, so queries are also scored: their "
            "words are matched to these labels, and precision@k is the share of the top k "
            "images that have every property the query names; the base rate is the share of "
            "the whole gallery that has them (the expected precision of a random ranking)."
        )
    report.text(scope)
    figures: list[str] = []
    run_ = _Run(
        x,
        features,
        cfg,
        names,
        labels,
        _ImageCache(ctx, cfg, features),
        min(int(cfg.grid_k), n),
        results,
        report,
        figures,
        ctx.workdir,
    )

    # ------------------------------------------------------------------------------ captions
    report.section("Caption retrieval", level=2)
    if not has_caps:
        results["captions"] = {"skipped": "this dataset has no captions"}
        report.text(
            f"Skipped: `{dataset}` has no captions, so there are no paired texts to retrieve."
        )
    else:
        _captions(run_, e_cap, list(cap_texts), np.asarray(t2i), model, dataset, seed)

    # ------------------------------------------------------------------------------- queries
    if queries:
        _queries(run_, e_q, list(queries))
    if chains:
        _chains(run_, e_ch, chains)
    results["figures"] = figures
    return Section(NAME, results, report)


def _label_names(
    ctx: Any, cfg: ml_collections.ConfigDict, features: Any
) -> tuple[dict[str, tuple[str, ...]], dict[str, np.ndarray]]:
    """Label -> value names and label -> (N,) values, for the labels a query can name."""
    names: dict[str, tuple[str, ...]] = {}
    values: dict[str, np.ndarray] = {}
    lab = np.asarray(features.labels)
    if len(features.classnames) >= 2 and (lab >= 0).any():
        names["label"] = tuple(str(c) for c in features.classnames)
        values["label"] = lab
    attrs = dict(getattr(features, "attributes", None) or {})
    if attrs and hasattr(ctx, "source"):
        info = dict(getattr(ctx.source(cfg.split).info, "attributes", {}) or {})
        for a in info:  # the dataset's order (stable, unlike the features' dict order)
            if a in attrs:
                names[a] = tuple(str(v) for v in info[a])
                values[a] = np.asarray(attrs[a])
    return names, values


@dataclasses.dataclass
class _Run:
    """What the parts of one retrieval run share."""

    x: np.ndarray  # (N, D) raw image embeddings (the gallery)
    features: Any  # the split's ImageFeatures
    cfg: ml_collections.ConfigDict
    names: dict[str, tuple[str, ...]]  # label -> value names (queries are scored on them)
    labels: dict[str, np.ndarray]  # label -> (N,) values
    images: _ImageCache
    grid_k: int
    results: dict[str, Any]
    report: Report
    figures: list[str]
    wd: Any  # output folder


class _ImageCache:
    """Grid thumbnails of gallery rows, read from the dataset source once each."""

    def __init__(self, ctx: Any, cfg: ml_collections.ConfigDict, features: Any):
        self._ctx, self._cfg, self._features = ctx, cfg, features
        self._source: Any = None
        self._raw: dict[int, np.ndarray] = {}

    def _item(self, row: int) -> np.ndarray:
        if row not in self._raw:
            if self._source is None:
                self._source = self._ctx.source(self._cfg.split)
            # Features are in source order, so row r is source[r]; its "index" must agree.
            item = self._source[int(row)]
            want = int(self._features.indices[row])
            if "index" in item and int(item["index"]) != want:
                item = self._source[want]
            self._raw[row] = np.asarray(item["image"], np.uint8)
        return self._raw[row]

    def grid(self, rows: np.ndarray) -> np.ndarray:
        """(Q, k, S, S, 3) uint8 thumbnails of rows (Q, k)."""
        rows = np.asarray(rows)
        imgs = [self._item(int(r)) for r in rows.ravel()]
        side = min(int(self._cfg.thumbnail), max(min(i.shape[:2]) for i in imgs))
        out = np.stack([_thumb(i, side) for i in imgs])
        return out.reshape(*rows.shape, side, side, 3)


def _thumb(image: np.ndarray, side: int) -> np.ndarray:
    """Centre square crop resized to side × side (unchanged if it already is)."""
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


def _topk(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`retrieval.query_topk` with the queries padded to a multiple of 8 rows, so the grids'
    few queries share one compiled shape (the padding rows are dropped)."""
    q = len(queries)
    pad = -q % 8
    padded = np.concatenate([queries, np.repeat(queries[-1:], pad, axis=0)]) if pad else queries
    idx, sc = rt.query_topk(padded, gallery, k)
    return idx[:q], sc[:q]


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * float(x)


def _p(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}"


def _captions(
    r_: _Run,
    e_cap: np.ndarray,
    texts: list[str],
    t2i: np.ndarray,
    model: str,
    dataset: str,
    seed: int,
) -> None:
    x, cfg, names, labels, images = r_.x, r_.cfg, r_.names, r_.labels, r_.images
    grid_k, results, report, figures, wd = r_.grid_k, r_.results, r_.report, r_.figures, r_.wd
    ks = tuple(int(k) for k in cfg.ks)
    n = len(x)
    r = rt.ranks(x, e_cap, t2i)
    out: dict[str, Any] = {
        "num_texts": len(texts),
        "num_distinct_texts": len(set(texts)),
        "images_without_captions": int(np.sum(r.image_to_text < 0)),
    }
    table = []
    published = lookup(RETRIEVAL, model, dataset)
    for direction, rank, ties in (
        ("text_to_image", r.text_to_image, r.text_to_image_ties),
        ("image_to_text", r.image_to_text, r.image_to_text_ties),
    ):
        valid = rank >= 0
        row: dict[str, Any] = rt.recall_from_ranks(rank, ks)
        row["MedR"] = float(np.median(rank[valid] + 1))
        row["MeanR"] = float(np.mean(rank[valid] + 1))
        row["tied_queries"] = int(np.sum(ties[valid] > 0))
        row["num_queries"] = int(valid.sum())
        out[direction] = row
        arrow = "text → image" if direction == "text_to_image" else "image → text"
        table.append(
            {
                "direction": arrow,
                "queries": row["num_queries"],
                **{f"R@{k} %": 100 * row[f"R@{k}"] for k in ks},
                "MedR": row["MedR"],
                "MeanR": row["MeanR"],
            }
        )
        if published and direction in published:
            table.append(
                {
                    "direction": f"{arrow}: published",
                    **{
                        f"R@{k} %": published[direction].get(k)
                        for k in ks
                        if published[direction].get(k) is not None
                    },
                }
            )
    if published:
        out["published_percent"] = {d: dict(v) for d, v in published.items()}
    report.text(
        "Text → image: every caption is a query and its own image the target among all "
        f"{n} images. Image → text: every image is a query, and it is a hit at K when ANY of "
        f"its captions is among the K most similar of all {len(texts)} captions (the CLIP "
        "paper's protocol). MedR / MeanR: median / mean 1-based rank of the target (for image "
        "→ text, of the best-ranked caption). Ranks are exact; exact ties are counted in the "
        "target's favour"
        + (
            f" ({out['text_to_image']['tied_queries']} text and "
            f"{out['image_to_text']['tied_queries']} image queries have one)."
            if out["text_to_image"]["tied_queries"] or out["image_to_text"]["tied_queries"]
            else " (no query has one here)."
        )
    )
    if published:
        note = ""
        if n != 5000:
            note = (
                f" Here the gallery has {n} images, not the 5,000 of the Karpathy test split, "
                "so recalls are not comparable (a smaller gallery makes retrieval easier)."
            )
        report.text(
            "Published: OpenAI ViT-B/32 on the COCO Karpathy 5k test split (LAION "
            f"CLIP_benchmark), the rows marked *published*.{note}"
        )
    report.table(table, floatfmt=".2f")
    figures.append(
        plots.plot_rank_distribution(
            r,
            wd,
            name="retrieval_rank_distribution.png",
            ks=ks,
            title=f"Where does the true match rank? ({len(texts)} captions, {n} images)",
        )
    )
    report.figure(figures[-1], "Rank of the true match: histogram and cumulative (= Recall@x)")

    # ------------------------------------------------------- can a caption find its own image
    t_rank = r.text_to_image
    own = {
        "top1": float(np.mean(t_rank < 1)),
        "top5": float(np.mean(t_rank < 5)),
        "chance_top1": 1.0 / n,
        "chance_top5": min(1.0, 5.0 / n),
    }
    # Identical caption strings of different images: text alone cannot tell those images apart.
    owners: dict[str, set[int]] = {}
    for t, i in zip(texts, t2i):
        owners.setdefault(t, set()).add(int(i))
    shared = sum(1 for t in texts if len(owners[t]) > 1)
    own["captions_shared_with_other_images"] = shared
    ceiling = _caption_ceiling(texts, t2i, names, labels, n) if names else None
    if ceiling:
        own["ceiling"] = ceiling
    out["own_image"] = own
    report.section("Can a caption find its own image?", level=2)
    msg = (
        f"{100 * own['top1']:.2f} % of the {len(texts)} captions rank their own image first "
        f"and {100 * own['top5']:.2f} % within the top 5 (by chance: {100 / n:.3g} % and "
        f"{100 * own['chance_top5']:.3g} %; these are the text → image R@1 and R@5 above)."
    )
    if shared:
        msg += (
            f" {shared} captions are word for word the caption of another image too; for them "
            "the text cannot single out one image."
        )
    if ceiling:
        msg += (
            f" Ceiling from the labels: a caption names some of its image's properties "
            f"({ceiling['parsed_share'] * 100:.0f} % of the captions name at least one that "
            "the labels record); on average "
            f"{ceiling['mean_matching_images']:.1f} gallery images have all the properties a "
            "caption names, and a ranker that knew exactly those properties, breaking ties at "
            f"random, would reach R@1 = {100 * ceiling['R@1']:.2f} % and R@5 = "
            f"{100 * ceiling['R@5']:.2f} %. Where the labels record everything a caption "
            "says (the shapes captions are generated from them), no ranker can beat this on "
            "average; where a caption says more than the labels record (natural images), a "
            "model can."
        )
    report.text(msg)
    k_ex = min(int(cfg.examples), len(set(t2i.tolist())))
    if k_ex:
        rng = np.random.default_rng(seed)
        # One caption per image, images drawn at random, shown best-ranked first.
        img_pick = rng.choice(np.unique(t2i), size=k_ex, replace=False)
        picks = []
        for i in img_pick:
            cand = np.flatnonzero(t2i == i)
            picks.append(int(cand[rng.integers(len(cand))]))
        picks = sorted(picks, key=lambda t: (int(t_rank[t]), t))
        idx, sc = _topk(e_cap[picks], x, grid_k)
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        en = e_cap[picks] / np.linalg.norm(e_cap[picks], axis=1, keepdims=True)
        own_cos = np.einsum("qd,qd->q", en, xn[t2i[picks]])
        ex = [
            {
                "caption": texts[t],
                "image_row": int(t2i[t]),
                "rank": int(t_rank[t]) + 1,
                "own_cosine": float(own_cos[j]),
                "top1_cosine": float(sc[j, 0]),
            }
            for j, t in enumerate(picks)
        ]
        out["examples"] = ex
        report.table(
            [
                {
                    "caption": e["caption"],
                    "rank of its image": e["rank"],
                    "cosine to its image": f"{e['own_cosine']:.4f}",
                    "cosine of the top image": f"{e['top1_cosine']:.4f}",
                }
                for e in ex
            ],
            caption=f"{k_ex} captions of randomly drawn images (seed {seed}), best-ranked first",
        )
        highlight = idx == t2i[picks][:, None]
        titles = [f"{e['caption']} — own image at rank {e['rank']}" for e in ex]
        figures.append(
            plots.image_grid(
                images.grid(idx), titles, sc, wd, name="retrieval_captions.png", highlight=highlight
            )
        )
        report.figure(
            figures[-1],
            f"Top {grid_k} images of each example caption (green frame: the caption's own image)",
        )
    results["captions"] = out


def _caption_ceiling(
    texts: list[str], t2i: np.ndarray, names: dict, labels: dict, n: int
) -> dict[str, float] | None:
    """Expected R@1 / R@5 of a ranker that knows exactly the properties each caption names."""
    cache: dict[str, tuple[int, bool, bool]] = {}
    r1, r5, m_all, parsed = [], [], [], 0
    for t, i in zip(texts, t2i):
        if t not in cache:
            p = parse_query(t, names)
            mask = p.mask(labels, n)
            cache[t] = (int(mask.sum()), bool(p.constraints), bool(mask[int(i)]))
        m, has, own_ok = cache[t]
        if has and not own_ok:  # the parse contradicts the image's labels: leave it out
            continue
        # A caption that names nothing the labels record leaves all n images equally likely.
        m = m if has else n
        parsed += has
        m_all.append(m)
        r1.append(1.0 / m)
        r5.append(min(1.0, 5.0 / m))
    if not m_all or not parsed:
        return None
    return {
        "R@1": float(np.mean(r1)),
        "R@5": float(np.mean(r5)),
        "mean_matching_images": float(np.mean(m_all)),
        "parsed_share": parsed / len(texts),
        "captions_used": len(m_all),
    }


def _score(
    parse: QueryParse, idx: np.ndarray, labels: dict, n: int
) -> tuple[float | None, float | None, int | None]:
    """(precision@k of the top-k rows `idx`, base rate over the gallery, number of matching
    images); all None when the query names nothing the labels record."""
    if not parse.constraints:
        return None, None, None
    mask = parse.mask(labels, n)
    return float(mask[idx].mean()), float(mask.mean()), int(mask.sum())


def _queries(r_: _Run, e_q: np.ndarray, queries: list[str]) -> None:
    x, names, labels, images, features = r_.x, r_.names, r_.labels, r_.images, r_.features
    grid_k, results, report, figures, wd = r_.grid_k, r_.results, r_.report, r_.figures, r_.wd
    n = len(x)
    idx, sc = _topk(e_q, x, grid_k)
    out, table = [], []
    highlight = np.zeros(idx.shape, bool)
    for j, q in enumerate(queries):
        p = parse_query(q, names) if names else QueryParse({})
        prec, base, count = _score(p, idx[j], labels, n)
        if p.constraints:
            highlight[j] = p.mask(labels, n)[idx[j]]
        out.append(
            {
                "query": q,
                "top_rows": idx[j].tolist(),
                "top_indices": np.asarray(features.indices)[idx[j]].tolist(),
                "scores": sc[j].tolist(),
                "parsed": p.describe(names),
                "precision_at_k": prec,
                "base_rate": base,
                "matching_images": count,
            }
        )
        table.append(
            {
                "query": q,
                "read as": p.describe(names) or "—",
                "top-1 cosine": f"{sc[j, 0]:.4f}",
                f"cosine #{grid_k}": f"{sc[j, -1]:.4f}",
                f"precision@{grid_k} %": _pct(prec),
                "base rate %": _pct(base),
                "matching images": count,
            }
        )
    results["queries"] = out
    report.section("Ad-hoc queries", level=2)
    report.text(
        f"Each text query ranks the whole gallery; the top {grid_k} images are drawn best "
        "first with their cosine similarity"
        + (
            " (green frame: the image has every property the query names). Precision@"
            f"{grid_k} can reach 100 % only when at least {grid_k} gallery images have all "
            "those properties (last column)."
            if any(o["parsed"] for o in out)
            else "."
        )
    )
    report.table(table, floatfmt=".1f")
    figures.append(
        plots.image_grid(
            images.grid(idx),
            queries,
            sc,
            wd,
            name="retrieval_queries.png",
            highlight=highlight if any(o["parsed"] for o in out) else None,
        )
    )
    report.figure(figures[-1], f"Top {grid_k} images per query")


def _chains(r_: _Run, e_ch: np.ndarray, chains: tuple[tuple[str, ...], ...]) -> None:
    x, cfg, names, labels, images = r_.x, r_.cfg, r_.names, r_.labels, r_.images
    grid_k, results, report, figures, wd = r_.grid_k, r_.results, r_.report, r_.figures, r_.wd
    features = r_.features
    n = len(x)
    k = min(int(cfg.refinement_k), n)
    report.section("Query refinement", level=2)
    report.text(
        "Each chain changes a query one step at a time (add an adjective, swap the noun, swap "
        f"the style word). Per step, with A and B the top {k} images of the old and new query: "
        "overlap |A ∩ B| and Jaccard |A ∩ B| / |A ∪ B| (how much the result set changes); "
        "score shift = mean over A of cos(new query, x) − cos(old query, x) (how the old "
        "results fare under the new query); the old top-1's rank under the new query and the "
        "new top-1's rank under the old one (0-based; 0 = still first); the mean top-k cosine "
        "before → after."
        + (
            f" Precision@{k} (where the query names labelled properties): the share of the new "
            "top k that has them, against the gallery's base rate."
            if names
            else ""
        )
    )
    out = []
    pos = 0
    for c_i, chain in enumerate(chains):
        q_emb = e_ch[pos : pos + len(chain)]
        pos += len(chain)
        study = rt.refinement_study(list(chain), q_emb, x, k=k)
        precs = []
        for j, q in enumerate(chain):
            p = parse_query(q, names) if names else QueryParse({})
            prec, base, _ = _score(p, study.indices[j], labels, n)
            precs.append(
                {"query": q, "parsed": p.describe(names), "precision_at_k": prec, "base_rate": base}
            )
        out.append(
            {
                "queries": list(chain),
                "steps": study.rows,
                "top_rows": study.indices.tolist(),
                "top_indices": np.asarray(features.indices)[study.indices].tolist(),
                "scores": study.scores.tolist(),
                "precision": precs,
            }
        )
        rows = []
        for j, s in enumerate(study.rows):
            row = {
                "from → to": f"{s['from']} → {s['to']}",
                "overlap": f"{s['overlap']}/{k}",
                "Jaccard": s["jaccard"],
                "score shift": f"{s['score_shift']:+.4f}",
                "old top-1's new rank": s["prev_top1_new_rank"],
                "new top-1's old rank": s["new_top1_prev_rank"],
                "mean top-k cosine": (
                    f"{s['mean_topk_score_prev']:.4f} → {s['mean_topk_score']:.4f}"
                ),
            }
            if names:
                pa, pb = precs[j], precs[j + 1]
                base = "" if pb["base_rate"] is None else f" (base {100 * pb['base_rate']:.1f})"
                row[f"precision@{k} %"] = (
                    f"{_p(pa['precision_at_k'])} → {_p(pb['precision_at_k'])}{base}"
                )
            rows.append(row)
        report.table(rows, floatfmt=".2f", caption=f"Chain {c_i + 1}: " + " → ".join(chain))
        idx, sc = _topk(q_emb, x, grid_k)
        highlight = None
        if names and any(p["parsed"] for p in precs):
            highlight = np.stack(
                [
                    parse_query(q, names).mask(labels, n)[idx[j]]
                    if parse_query(q, names).constraints
                    else np.zeros(grid_k, bool)
                    for j, q in enumerate(chain)
                ]
            )
        figures.append(
            plots.image_grid(
                images.grid(idx),
                list(chain),
                sc,
                wd,
                name=f"retrieval_chain_{c_i + 1}.png",
                highlight=highlight,
            )
        )
        report.figure(figures[-1], f"Chain {c_i + 1}: top {grid_k} images per step")
    results["chains"] = out
