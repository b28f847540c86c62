"""The geometry study's report: introduction, "At a glance" and every part, from its result.

`render(result, out)` reads only the result (results.json entry and sidecar arrays) and the
run's config, so `python -m experiments.report` redraws the same report and figures. The parts'
sections are in `geometry_sections` (means, features, shells, gap) and `geometry_sweeps` (loss,
conformity, KL).
"""

from __future__ import annotations

from typing import Any

from jaxclip.report import Report
from jaxclip.report.references import GEOMETRY_PAPER_COCO as P
from jaxclip.studies import geometry_sections as sections
from jaxclip.studies import geometry_sweeps as sweeps
from jaxclip.studies.context import RenderContext, Section
from jaxclip.studies.geometry_sections import fmt, kl_num, num

NAME = "geometry"
TITLE = "Geometry of the raw embedding space: the double ellipsoid"


def render(result: Any, out: RenderContext) -> Section:
    """The geometry section of the report (a `GeometryResult`, reloaded from its files)."""
    cfg = out.config[NAME]
    report = Report(TITLE)
    if result.pairs is None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    paper = result.paper or {}
    report.text(intro(result, cfg, str(out.config.model), str(out.config.dataset), paper))
    if result.skipped is not None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    report.section("At a glance", level=2)
    report.text(
        "The headline numbers of the parts below, beside the paper's for OpenAI ViT-B/32 on "
        "MS-COCO (a reference point, not a target, unless this is that model and dataset)."
    )
    report.table(glance(result), floatfmt=".4f")
    wd = out.workdir
    sections.moments(result, report, paper)
    sections.separability(result, cfg, report, wd)
    sections.svm(result, cfg, report, wd)
    sections.shells(result, report, wd, paper)
    sections.spectrum(result, report, wd)
    sections.gap(result, report)
    sweeps.loss(result, cfg, report, wd)
    sweeps.conformity(result, cfg, report, wd, paper)
    sweeps.kl(result, cfg, report, wd, paper)
    return Section(NAME, report)


def describe_pairs(pairs: dict[str, Any], cfg: Any) -> str:
    """One sentence on how images were paired with texts (`pairs` is the result's entry)."""
    if pairs["source"] == "class_prompts":
        return (
            f"this dataset has no captions, so each image is paired with the prompt "
            f'"{cfg.class_template.format("{classname}")}" of its label. The text side '
            f"therefore has only {pairs['n_distinct_texts']} distinct points (one per class, "
            "weighted by class frequency): its shell, spectrum and conformity describe those "
            "class prompts, and images of one class share their text, so the loss has exact "
            "ties (false negatives by construction)"
        )
    caption = str(pairs["caption"]).strip().lower()
    if caption == "all":
        return (
            "every caption is paired with its image: the loss batch holds one pair per "
            "caption, so each image appears once per caption (its copies tie exactly, and "
            "the other captions of the same image are negatives); image statistics count "
            "each image once"
        )
    choice = 0 if caption == "first" else int(caption)
    which = "its first caption" if choice == 0 else f"its caption number {choice} (0-based)"
    return f"each image is paired with {which}"


def pair_notes(result: Any) -> list[str]:
    """What was left out of the pairs: a seeded subset, images without a caption or label."""
    n_split, n_sampled = int(result.split_images), int(result.sampled_images)
    notes = []
    if n_sampled < n_split:
        notes.append(f"a seeded random subset of {n_sampled} of the {n_split} images is used")
    dropped = n_sampled - int(result.pairs["n_images"])
    if dropped:
        why = "such a caption" if result.pairs["source"] == "captions" else "a label"
        notes.append(f"{dropped} images without {why} are left out")
    return notes


def intro(result: Any, cfg: Any, model: str, dataset: str, paper: dict) -> str:
    """The study's opening paragraphs: the paper's finding, the data, the reference numbers."""
    p = result.pairs
    notes = "".join(f" Note: {n}." for n in pair_notes(result))
    ref = (
        " The model and dataset are those of the paper, so its numbers are printed beside ours."
        if paper
        else " The paper's numbers (OpenAI ViT-B/32 on MS-COCO) are quoted in the text for "
        "orientation; they are not expected to match another model or dataset."
    )
    return (
        "This study looks at the *raw* embeddings, before the L2 normalisation CLIP applies for "
        'its cosine similarities, following Levi & Gilboa, "The Double-Ellipsoid Geometry of '
        'CLIP" (2025). Their finding for ViT-B/32 on MS-COCO: images and texts lie on two '
        "separate, thin, tilted ellipsoidal shells, each centred well away from the origin, and "
        "the contrastive loss is lowest near that offset.\n\n"
        f"Data: {p['n_images']} images and {p['n_texts']} texts of the `{p['split']}` split of "
        f"`{dataset}`, embedded by `{model}`; {describe_pairs(p, cfg)}. The whole set is "
        f"analysed as one batch of {p['n_pairs']} pairs, as the paper does on COCO. Statistics "
        f"use population moments (ddof = 0); D = {p['dimension']} features.{notes}{ref}"
    )


def _sweep_rows(result: Any) -> list[tuple[str, str, str]]:
    rows = []
    what = "sigmoid loss" if result.loss.get("loss") == "sigmoid" else "loss"
    for side in ("image", "text"):
        if side in result.loss:
            su = result.loss[side]["summary"]
            rows.append(
                (
                    f"α of minimal {what}, {side}s shifted ({what} at α = 0)",
                    f"{su['alpha_min_total']:+.2f} ({num(su['total_at_0']):.4f})",
                    "≈ 0" if side == "image" else "≈ 0 (supplement)",
                )
            )
    return rows


def _ci(result: Any, side: str, key: str, spec: str = ".4f") -> str:
    """A moment (side "image" / "text") or gap statistic with its interval where stored."""
    if side == "gap":
        value, ci = result.gap[key], (result.gap_ci or {}).get(key)
    else:
        value = result.moments[side][key]
        ci = (result.moments_ci or {}).get(side, {}).get(key)
    shown = sections.with_ci(value, ci, spec)
    return shown if isinstance(shown, str) else fmt(value, spec)


def glance(result: Any) -> list[dict[str, str]]:
    """Rows (quantity, ours, paper) of the headline numbers, the paper's from its own setting."""
    sh, cf = result.thin_shell, result.conformity
    rows = [
        ("‖m‖/‖σ‖, images", _ci(result, "image", "ratio", ".3f"), f"{P['ratio_image']}"),
        ("‖m‖/‖σ‖, texts", _ci(result, "text", "ratio", ".3f"), f"{P['ratio_text']}"),
        (
            "features with Sep > 1",
            f"{result.separability['n_features_sep_gt_1']} of {result.pairs['dimension']}",
            f"{P['n_tag_features']} 'tag' features of {P['dimension']}",
        ),
        (
            "SVM accuracy on the 2 best features",
            f"{100 * result.svm['accuracy']:.2f} %",
            f"{100 * P['svm_accuracy']:.0f} %",
        ),
        (
            "thin shell: mean ‖v − m‖ vs sqrt(tr C), images",
            f"{fmt(sh['image']['mean_norm'])} vs {fmt(sh['image']['sqrt_trace'])} "
            f"({100 * sh['image']['rel_error']:.2f} %)",
            f"{P['shell_mean_norm_image']} vs {P['shell_sqrt_trace_image']} "
            f"({100 * P['shell_rel_error_image']:.2f} %)",
        ),
        ("‖m_i − m_t‖ (modality gap)", _ci(result, "gap", "norm"), "not reported"),
        *_sweep_rows(result),
        (
            "conformity vs cos to raw mean: Pearson, images / texts",
            f"{fmt(cf['image']['raw']['pearson'])} / {fmt(cf['text']['raw']['pearson'])}",
            f"{P['conformity_pearson_image']} / {P['conformity_pearson_text']}",
        ),
        (
            "conformity raw-mean fit: slope a, images / texts",
            f"{fmt(cf['image']['raw']['a'], '.3f')} / {fmt(cf['text']['raw']['a'], '.3f')}",
            f"{P['conformity_a_image']} / {P['conformity_a_text']}",
        ),
        (
            "conformity vs cos to normalised mean: Pearson, images / texts",
            f"{fmt(cf['image']['normalised']['pearson'], '.6f')} / "
            f"{fmt(cf['text']['normalised']['pearson'], '.6f')}",
            "(exactly 1: identity)",
        ),
    ]
    for side in ("image", "text"):
        if side in result.kl:
            k = result.kl[side]
            rows.append(
                (
                    f"α of minimal conformity KL, {side}s shifted (KL at α = 0)",
                    f"{k['alpha_min']:+.2f} ({kl_num(k['kl_at_0']):.4f})",
                    f"≈ 0 ({P['kl_at_0']})" if side == "image" else "not reported",
                )
            )
    return [{"quantity": q, "ours": o, "paper (ViT-B/32, COCO)": p} for q, o, p in rows]
