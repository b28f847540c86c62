"""The prompt study's part of the report: the template table and chart, the sources' numbers,
and cosine vs raw dot product with the text norms. Drawn from a `PromptsResult` alone (see
`jaxclip.studies.prompts`).
"""

from __future__ import annotations

from typing import Any

from jaxclip.analysis import bootstrap
from jaxclip.report import Report, save_figure
from jaxclip.report import plots_classification as plots
from jaxclip.report.intervals import comparison_sentence, format_ci, format_difference
from jaxclip.report.references import (
    DATA586_TEMPLATE_TOP1,
    IT5005_SIMILARITY_TOP1,
    IT5005_TEMPLATE_TOP1,
)
from jaxclip.studies.context import RenderContext, Section

NAME = "prompts"


def render(result: Any, out: RenderContext) -> Section:
    """Tables, figures and prose of a (reloaded) `PromptsResult`."""
    report = Report("Prompt engineering")
    if result.skipped is not None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    _templates(result, out, report)
    _source_numbers(result.templates, report)
    _similarity(result, out, report)
    return Section(NAME, report)


def _short(template: str, width: int = 90) -> str:
    return template if len(template) <= width else template[: width - 1] + "…"


def _templates(result: Any, out: RenderContext, report: Report) -> None:
    model, dataset = str(out.config.model), str(out.config.dataset)
    c, rows, n_drop = result.num_classes, result.templates, result.unlabelled_dropped
    drop = f" {n_drop} images without a label are left out." if n_drop else ""
    report.text(
        f"Zero-shot accuracy of `{model}` on {result.num_samples} images of the "
        f"`{result.split}` split of `{dataset}` ({c} classes) with each prompt template: the "
        'class name fills the "{}", each class\'s prompt is embedded, and an image goes to the '
        "class whose prompt embedding has the highest cosine similarity with it. Ensemble rows "
        "average the normalised prompt embeddings of a whole set per class and renormalise "
        f"(CLIP paper §3.1.4).{drop} Chance is {100 / c:.2f} % top-1."
    )
    report.section("Templates", level=2)
    report.text(
        f'Δ top-1 is in percentage points against "{result.baseline}". The mean matched cosine '
        "is the average cosine similarity between an image and its own class's prompt: a "
        "template can raise it for every class alike without changing a single prediction, "
        "since only the ranking among classes counts."
    )
    # Top-5 is null with at most 5 classes (every image is trivially correct): not shown.
    top5 = all(r.get("top5") is not None for r in rows)
    paired = {c["a"]: c for c in (result.comparisons or [])}
    report.table(
        [
            {
                "template": r["template"],
                "top-1 %": format_ci(r.get("top1_ci"), r["top1"]),
                **({"top-5 %": format_ci(r.get("top5_ci"), r["top5"])} if top5 else {}),
                "Δ top-1 (pp)": (
                    format_difference(paired[r["template"]])
                    if r["template"] in paired
                    else f"{100 * r['delta_top1']:+.2f}"
                ),
                "Holm p": (
                    f"{paired[r['template']]['p_holm']:.2g}" if r["template"] in paired else None
                ),
                "mean matched cosine": f"{r['mean_matched_cosine']:.4f}",
            }
            for r in rows
        ],
        floatfmt=".2f",
    )
    if paired:
        report.text(_comparisons_text(result.comparisons, result.baseline))
    fig = plots.plot_template_comparison(
        [{**r, "template": _short(r["template"])} for r in rows],
        metrics=("top1", "top5") if top5 else ("top1",),
        title=f"Zero-shot accuracy per prompt template ({dataset}, {c} classes; "
        f"chance {100 / c:.1f} %)",
    )
    name = save_figure(fig, out.workdir, result.figures[0])
    shown = "top-1 and top-5" if top5 else "top-1"
    report.figure(name, f"Zero-shot {shown} per template, best first")


def _comparisons_text(comparisons: list[dict], baseline: str) -> str:
    """Which templates differ from the baseline beyond noise, in words, from the stored tests."""
    clear = [c for c in comparisons if c["distinguishable"]]
    m = len(comparisons)
    head = (
        "Brackets: 95 % percentile bootstrap intervals over the images "
        f"({bootstrap.DEFAULT_RESAMPLES} resamples, seeded); Δ is paired (the same images). "
        f'Each row is tested against "{baseline}" with McNemar\'s exact test on the images one '
        f"gets right and the other wrong, Holm-adjusted over the {m} comparison(s); a "
        "difference counts as distinguishable from noise when the adjusted p is at most "
        f"{bootstrap.ALPHA}. "
    )
    if not clear:
        verdict = f"None of the {m} differs from the baseline beyond noise."
    else:
        verdict = f"{len(clear)} of {m} differ from the baseline beyond noise."
    sentences = "; ".join(comparison_sentence(c, f'"{_short(c["a"], 60)}"') for c in comparisons)
    return head + verdict + " " + sentences + "."


def _source_numbers(rows: list[dict], report: Report) -> None:
    """The sources' numbers for the templates we share with them (orientation only)."""
    sources = IT5005_TEMPLATE_TOP1 | DATA586_TEMPLATE_TOP1

    def key(t: str) -> str:
        return t[:-1] if t.endswith(".") and t[:-1] in sources else t

    ours = {key(r["template"]): r for r in rows if r["kind"] == "template"}
    templates = list(dict.fromkeys([*IT5005_TEMPLATE_TOP1, *DATA586_TEMPLATE_TOP1]))
    table = [
        {
            "template": _short(t, 60),
            "IT5005 report %": IT5005_TEMPLATE_TOP1.get(t),
            "DATA586 slides %": DATA586_TEMPLATE_TOP1.get(t),
            "ours %": 100 * ours[t]["top1"] if t in ours else None,
        }
        for t in templates
    ]
    photo = DATA586_TEMPLATE_TOP1["a photo of a {}"]
    report.section("The sources' numbers, for orientation", level=2)
    report.text(
        "Top-1 accuracy (%) the sources report for HF `openai/clip-vit-base-patch32` with these "
        "templates (no full stop; ours is shown for the same template with or without one). "
        "IT5005 course report: an ImageNet subset — simple, natural prompts win, the bare label "
        "loses about 5 points and a long irrelevant sentence about 11. DATA586 slides: labelled "
        f'"satellite dataset", though 157 batches and {photo:.2f} % for "a photo of a {{}}" '
        "match CIFAR-100's 10k test images and the thesis's CIFAR-100 number; style words "
        "(sketch, drawing, cartoon) cost little there. These are other models, data and "
        "prompts than ours unless the run matches: compare the ordering, not the values."
    )
    report.table(table, floatfmt=".2f")


def _similarity(result: Any, out: RenderContext, report: Report) -> None:
    sim = result.similarity
    scale, rows, norms, per_class = (
        sim["logit_scale"],
        sim["variants"],
        sim["norms"],
        sim["per_class"],
    )
    by = {r["similarity"]: r for r in rows}
    report.section("Cosine similarity vs raw dot product", level=2)
    label = {
        "cosine": "cosine  ⟨x, t⟩ / (‖x‖ ‖t‖)",
        "dot": "raw dot product  ⟨x, t⟩",
        "scaled_cosine": f"logit-scaled cosine  s · cos, s = {scale:.4g}",
    }
    source = sim["source_top1"]
    report.text(
        f'One prompt per class, "{sim["template"]}", scored against the raw '
        "(unnormalised) image and text embeddings three ways. The accuracies are top-1 / top-5 "
        "ACCURACIES; the score columns average the score of each image with its own class "
        "(matched), with every other class (unmatched), and the winning score. The IT5005 "
        f"report found top-1 {IT5005_SIMILARITY_TOP1['cosine']:.4f} with cosine similarity and "
        f"{IT5005_SIMILARITY_TOP1['dot']:.4f} with the dot product (ViT-B/32, ImageNet subset)."
    )
    report.table(
        [
            {
                "score": label[r["similarity"]],
                "top-1 %": format_ci(r.get("top1_ci"), r["top1"]),
                **({"top-5 %": f"{100 * r['top5']:.2f}"} if r.get("top5") is not None else {}),
                "mean matched": f"{r['mean_matched']:.4g}",
                "mean unmatched": f"{r['mean_unmatched']:.4g}",
                "mean winning score": f"{r['mean_top1_score']:.4g}",
                "source top-1 %": (
                    100 * source[r["similarity"]] if r["similarity"] in source else None
                ),
            }
            for r in rows
        ],
        floatfmt=".2f",
    )
    if sim.get("comparison") is not None:
        report.text(
            "Paired on the same images (McNemar's exact test; bootstrap interval of the "
            "difference): " + comparison_sentence(sim["comparison"], "cosine vs dot") + "."
        )
    report.text(_why_dot_loses(by, norms, per_class))
    fig = plots.plot_text_norms(per_class)
    report.figure(
        save_figure(fig, out.workdir, result.figures[1]),
        "Per class: prompt embedding norm against the share of images predicted as the class",
    )


def _why_dot_loses(by: dict[str, dict], norms: dict[str, Any], per_class: list[dict]) -> str:
    """The paragraph that explains the dot product's accuracy by the text norms."""
    top = max(per_class, key=lambda r: r["text_norm"])  # the first of equal maxima, as argmax
    gap = 100 * (by["cosine"]["top1"] - by["dot"]["top1"])
    loses = by["dot"]["top1"] < by["cosine"]["top1"]
    rho = norms["spearman_text_norm_vs_dot_share"]
    return (
        ("Why the raw dot product loses" if loses else "Why the raw dot product can lose")
        + ": ⟨x, t_c⟩ = ‖x‖ ‖t_c‖ cos(x, t_c). The image norm ‖x‖ "
        "multiplies every class's score for that image alike, so it never changes the image's "
        "prediction; the text norms ‖t_c‖ differ from class to class "
        f"(here from {norms['text_norm_min']:.3g} to {norms['text_norm_max']:.3g}, ratio "
        f"{norms['text_norm_ratio_max_min']:.3g}, coefficient of variation "
        f"{100 * norms['text_norm_cv']:.1f} %), and they re-rank the classes: a class whose "
        "prompt happens to have a long embedding wins images it matches less well. CLIP was "
        "trained on cosines only, so these norms carry no class evidence. Here the dot product "
        f"gives {100 * by['dot']['top1']:.2f} % against {100 * by['cosine']['top1']:.2f} % for "
        f"the cosine ({gap:+.2f} points for the cosine); the class with the longest prompt "
        f"embedding (`{top['class']}`) receives {100 * top['share_dot']:.1f} % of the "
        f"dot-product predictions and {100 * top['share_cosine']:.1f} % of the cosine ones "
        f"({100 * top['share_true']:.1f} % of the images belong to it)"
        + (
            f"; Spearman correlation of text norm and dot-product prediction share: {rho:.2f}."
            if rho is not None
            else "."
        )
        + (
            " With text norms this uniform the two scores rank almost alike."
            if abs(gap) < 1.0 and norms["text_norm_cv"] < 0.05
            else ""
        )
        + " The logit scale is one positive factor for all classes, so the logit-scaled cosine "
        "has exactly the cosine's accuracy."
    )
