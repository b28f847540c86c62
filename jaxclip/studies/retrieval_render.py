"""The retrieval study's part of the report: recalls beside published numbers, the rank
distribution, own-caption retrieval with examples, ad-hoc queries and refinement chains, with
image grids read through `RenderContext.images`. Drawn from a `RetrievalResult` alone (see
`jaxclip.studies.retrieval`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxclip.analysis import bootstrap
from jaxclip.report import Report, save_figure
from jaxclip.report import plots_retrieval as plots
from jaxclip.report.intervals import format_ci
from jaxclip.studies.context import RenderContext, Section
from jaxclip.studies.shared import pct

NAME = "retrieval"


def render(result: Any, out: RenderContext) -> Section:
    """Tables, figures and prose of a (reloaded) `RetrievalResult`."""
    report = Report("Text-image retrieval")
    if result.skipped is not None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    cfg = out.config[NAME]
    if out.images is not None:
        out = dataclasses.replace(out, images=_read_once(out.images))
    model, dataset, n = str(out.config.model), str(out.config.dataset), result.num_images
    names = [] if result.label_names is None else [str(k) for k in result.label_names]
    scope = (
        f"The gallery is the {n} images of the `{result.split}` split of `{dataset}`, embedded "
        f"by `{model}`; every score is the cosine similarity of the L2-normalised embeddings."
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
    figures = iter(result.figures)
    report.section("Caption retrieval", level=2)
    if "skipped" in result.captions:
        report.text(
            f"Skipped: `{dataset}` has no captions, so there are no paired texts to retrieve."
        )
    else:
        _captions(result, cfg, out, report, figures)
    if result.queries:
        _queries(result, cfg, out, report, next(figures))
    if result.chains:
        _chains(result, cfg, out, report, figures, bool(names))
    return Section(NAME, report)


def _read_once(images: Any) -> Any:
    """`images(split, rows)` that reads each (split, row) once per render (grids share rows)."""
    cache: dict[tuple[str, int], np.ndarray] = {}

    def read(which: str, rows: Sequence[int]) -> list[np.ndarray]:
        todo = [r for r in dict.fromkeys(int(r) for r in rows) if (which, r) not in cache]
        if todo:
            cache.update(((which, r), img) for r, img in zip(todo, images(which, todo)))
        return [cache[which, int(r)] for r in rows]

    return read


def _grid(
    out: RenderContext, cfg: Any, rows: np.ndarray, titles: Sequence[str], scores: np.ndarray,
    highlight: Any, name: str,
) -> str | None:  # fmt: skip
    """Draws an image grid of gallery rows (Q, k) and saves it; None without images."""
    if out.images is None:
        return None
    rows = np.asarray(rows)
    images = out.images(str(cfg.split), [int(r) for r in rows.ravel()])
    grid = plots.thumbnail_grid(images, rows.shape, int(cfg.thumbnail))
    fig = plots.image_grid(grid, list(titles), scores, highlight=highlight)
    return save_figure(fig, out.workdir, name)


def _recall_table(caps: dict, ks: list[int], n: int) -> list[dict[str, Any]]:
    published = caps.get("published_percent") or {}
    table = []
    for direction in ("text_to_image", "image_to_text"):
        row = caps[direction]
        arrow = "text → image" if direction == "text_to_image" else "image → text"
        table.append(
            {
                "direction": arrow,
                "queries": row["num_queries"],
                # R@K is null for K >= the gallery (trivially 100 %): not shown.
                **{
                    f"R@{k} %": format_ci(row.get(f"R@{k}_ci"), row[f"R@{k}"])
                    for k in ks
                    if row[f"R@{k}"] is not None
                },
                "MedR": row["MedR"],
                "MeanR": row["MeanR"],
            }
        )
        if direction in published:
            pub = published[direction]
            table.append(
                {
                    "direction": f"{arrow}: published",
                    **{f"R@{k} %": pub.get(str(k)) for k in ks if pub.get(str(k)) is not None},
                }
            )
    return table


def _captions(result: Any, cfg: Any, out: RenderContext, report: Report, figures: Any) -> None:
    caps, n, ks = result.captions, result.num_images, [int(k) for k in cfg.ks]
    n_texts = caps["num_texts"]
    t2i_ties, i2t_ties = (caps[d]["tied_queries"] for d in ("text_to_image", "image_to_text"))
    report.text(
        "Text → image: every caption is a query and its own image the target among all "
        f"{n} images. Image → text: every image is a query, and it is a hit at K when ANY of "
        f"its captions is among the K most similar of all {n_texts} captions (the CLIP "
        "paper's protocol). MedR / MeanR: median / mean 1-based rank of the target (for image "
        "→ text, of the best-ranked caption). Ranks are exact; exact ties are counted in the "
        "target's favour"
        + (
            f" ({t2i_ties} text and {i2t_ties} image queries have one)."
            if t2i_ties or i2t_ties
            else " (no query has one here)."
        )
    )
    if caps.get("published_percent"):
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
    if caps.get("metrics_protocol") == "clip_benchmark":
        report.text(
            "R@K follows CLIP_benchmark (`metrics_protocol = clip_benchmark`): float32 cosines, "
            "ties in `torch.topk`'s order, and image → text over ALL images, an image without "
            "captions counting as a miss; MedR, MeanR and the figure use the exact ranks."
        )
    report.table(_recall_table(caps, ks, n), floatfmt=".2f")
    if any(f"R@{k}_ci" in caps["text_to_image"] for k in ks):
        report.text(
            "Brackets: 95 % percentile bootstrap intervals over the queries "
            f"({bootstrap.DEFAULT_RESAMPLES} resamples, seeded): image → text resamples the "
            "query images; text → image resamples images with all their captions together, "
            "since the captions of one image are not independent queries."
        )
    ranks = {
        "text → image": np.asarray(result.ranks_text_to_image),
        "image → text": np.asarray(result.ranks_image_to_text),
    }
    fig = plots.plot_rank_distribution(
        ranks,
        ks=[k for k in ks if k < n] or ks[:1],
        title=f"Where does the true match rank? ({n_texts} captions, {n} images)",
    )
    report.figure(
        save_figure(fig, out.workdir, next(figures)),
        "Rank of the true match: histogram and cumulative (= Recall@x)",
    )
    _own_image(result, cfg, out, report, figures)


def _own_image(result: Any, cfg: Any, out: RenderContext, report: Report, figures: Any) -> None:
    caps, n = result.captions, result.num_images
    own, n_texts = caps["own_image"], caps["num_texts"]
    shared, ceiling = own["captions_shared_with_other_images"], own.get("ceiling")
    report.section("Can a caption find its own image?", level=2)
    msg = (
        f"{100 * own['top1']:.2f} % of the {n_texts} captions rank their own image first "
        f"and {100 * own['top5']:.2f} % within the top 5 (by chance: {100 / n:.3g} % and "
        f"{100 * own['chance_top5']:.3g} %; these are jaxclip's exact text → image R@1 and "
        "R@5"
        + (
            ", not CLIP_benchmark's above)."
            if caps.get("metrics_protocol") == "clip_benchmark"
            else " above)."
        )
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
    ex = caps.get("examples")
    if not ex:
        return
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
        caption=f"{len(ex)} captions of randomly drawn images (seed {out.config.seed}), "
        "best-ranked first",
    )
    rows = np.asarray(result.example_rows)
    highlight = rows == np.asarray([e["image_row"] for e in ex])[:, None]
    titles = [f"{e['caption']} — own image at rank {e['rank']}" for e in ex]
    name = _grid(out, cfg, rows, titles, result.example_scores, highlight, next(figures))
    if name:
        report.figure(
            name,
            f"Top {rows.shape[1]} images of each example caption (green frame: the caption's "
            "own image)",
        )


def _queries(result: Any, cfg: Any, out: RenderContext, report: Report, figure: str) -> None:
    qs = result.queries
    grid_k = len(qs[0]["top_rows"])
    table = [
        {
            "query": q["query"],
            "read as": q["parsed"] or "—",
            "top-1 cosine": f"{q['scores'][0]:.4f}",
            f"cosine #{grid_k}": f"{q['scores'][-1]:.4f}",
            f"precision@{grid_k} %": pct(q["precision_at_k"]),
            "base rate %": pct(q["base_rate"]),
            "matching images": q["matching_images"],
        }
        for q in qs
    ]
    parsed = any(q["parsed"] for q in qs)
    report.section("Ad-hoc queries", level=2)
    report.text(
        f"Each text query ranks the whole gallery; the top {grid_k} images are drawn best "
        "first with their cosine similarity"
        + (
            " (green frame: the image has every property the query names). Precision@"
            f"{grid_k} can reach 100 % only when at least {grid_k} gallery images have all "
            "those properties (last column)."
            if parsed
            else "."
        )
    )
    report.table(table, floatfmt=".1f")
    rows = np.asarray([q["top_rows"] for q in qs])
    scores = np.asarray([q["scores"] for q in qs])
    highlight = result.query_highlight if parsed else None
    name = _grid(out, cfg, rows, [q["query"] for q in qs], scores, highlight, figure)
    if name:
        report.figure(name, f"Top {grid_k} images per query")


def _p(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}"


def _step_rows(chain: dict, k: int, scored: bool) -> list[dict[str, Any]]:
    """The refinement table of one chain (one row per step)."""
    rows = []
    precs = chain["precision"]
    for j, s in enumerate(chain["steps"]):
        row = {
            "from → to": f"{s['from']} → {s['to']}",
            "overlap": f"{s['overlap']}/{k}",
            "Jaccard": s["jaccard"],
            "score shift": f"{s['score_shift']:+.4f}",
            "old top-1's new rank": s["prev_top1_new_rank"],
            "new top-1's old rank": s["new_top1_prev_rank"],
            "mean top-k cosine": f"{s['mean_topk_score_prev']:.4f} → {s['mean_topk_score']:.4f}",
        }
        if scored:
            pa, pb = precs[j], precs[j + 1]
            base = "" if pb["base_rate"] is None else f" (base {100 * pb['base_rate']:.1f})"
            row[f"precision@{k} %"] = (
                f"{_p(pa['precision_at_k'])} → {_p(pb['precision_at_k'])}{base}"
            )
        rows.append(row)
    return rows


def _chains(
    result: Any, cfg: Any, out: RenderContext, report: Report, figures: Any, scored: bool
) -> None:
    chains = result.chains
    k = len(chains[0]["top_rows"][0])
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
            if scored
            else ""
        )
    )
    all_rows = np.asarray(result.chain_rows)
    all_scores = np.asarray(result.chain_scores)
    all_highlight = np.asarray(result.chain_highlight)
    grid_k = all_rows.shape[1]
    pos = 0
    for c_i, chain in enumerate(chains):
        texts = chain["queries"]
        part = slice(pos, pos + len(texts))
        pos += len(texts)
        report.table(
            _step_rows(chain, k, scored),
            floatfmt=".2f",
            caption=f"Chain {c_i + 1}: " + " → ".join(texts),
        )
        highlight = all_highlight[part] if any(p["parsed"] for p in chain["precision"]) else None
        name = _grid(out, cfg, all_rows[part], texts, all_scores[part], highlight, next(figures))
        if name:
            report.figure(name, f"Chain {c_i + 1}: top {grid_k} images per step")
