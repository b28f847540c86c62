"""The zero-shot study's part of the report: accuracy against chance and published numbers,
per-class table and F1 chart, clustered confusion matrix, the attributes, and where a linear
probe's numbers come from. Drawn from a `ZeroShotResult` alone (see `jaxclip.studies.zero_shot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxclip.analysis import bootstrap
from jaxclip.report import Report, markdown_table, save_figure
from jaxclip.report import plots_classification as plots
from jaxclip.report.intervals import format_ci
from jaxclip.report.references import (
    IT5005_PROBE_TOP1,
    IT5005_ZERO_SHOT_TOP1,
    THESIS_CIFAR100_PROBE_TOP1,
    THESIS_CIFAR100_ZERO_SHOT_TOP1,
)
from jaxclip.studies.context import RenderContext, Section
from jaxclip.studies.shared import pct, resolve_template_set

NAME = "zero_shot"


def _ci(result: Any, name: str) -> str | None:
    """`63.76 [63.30, 64.21]` for field `name` and its `<name>_ci` interval (percent)."""
    return format_ci(getattr(result, f"{name}_ci", None), getattr(result, name))


def render(result: Any, out: RenderContext) -> Section:
    """Tables, figures and prose of a (reloaded) `ZeroShotResult`."""
    report = Report("Zero-shot classification")
    if result.skipped is not None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    cfg = out.config[NAME]
    if result.mean_average_precision is not None:
        _multilabel(result, cfg, out, report)
        return Section(NAME, report)
    if result.per_class is not None:
        _accuracy(result, cfg, out, report)
        _per_class(result, cfg, out, report)
        _confusions(result, cfg, out, report)
    else:
        report.text(f"The class-label part is skipped: {result.class_skip_reason}")
    if result.attributes:
        _attributes(result, cfg, out, report)
    if result.per_class is not None:
        _probe_note(result, report)
    return Section(NAME, report)


def _multilabel(result: Any, cfg: Any, out: RenderContext, report: Report) -> None:
    """A multi-label split: mAP against a random ranking and published numbers, per-class AP."""
    model, dataset = str(out.config.model), str(out.config.dataset)
    templates = result.templates["templates"]
    how = (
        f'the single template "{templates[0]}"'
        if len(templates) == 1
        else f"the {len(templates)} templates of the `{result.templates['set']}` set, ensembled"
    )
    m, chance = result.mean_average_precision, result.chance_map
    relation = "above" if m > chance else ("equal to" if m == chance else "below")
    missing = result.num_classes - result.map_classes
    cb_map = pct(result.clip_benchmark["mean_average_precision"])
    left_out = (
        f" {missing} class(es) without a positive image have no AP and are left out of the mean "
        f"(CLIP_benchmark counts them as 0: {cb_map:.2f} %)."
        if missing
        else ""
    )
    report.text(
        f"Multi-label split: each of the {result.num_classes} classes ranks the "
        f"{result.num_samples} images of the `{result.split}` split of `{dataset}` by the cosine "
        f"between the image embedding (`{model}`) and its class prompt ({how}); average "
        "precision (AP) averages the precision over that ranking at each positive image, tied "
        "scores counted as one threshold, and mAP is the mean over classes (the metric "
        f"CLIP_benchmark reports for VOC2007 multi-label). mAP = {pct(m):.2f} % over "
        f"{result.map_classes} classes, {relation} the {pct(chance):.2f} % a random ranking "
        f"scores in expectation (the mean share of positive images per class).{left_out}"
    )
    if result.published_map_percent:
        rows = [{"source": "ours (this run)", "mAP %": pct(m)}] + [
            {"source": k, "mAP %": v} for k, v in result.published_map_percent.items()
        ]
        report.table(rows, floatfmt=".2f")
    report.section("Average precision per class", level=2)
    ranked = sorted(
        result.average_precision, key=lambda r: (r["ap"] is None, -(r["ap"] or 0.0), r["class"])
    )
    report.table(
        [
            {"class": r["class"], "AP %": pct(r["ap"]), "positive images": r["positives"]}
            for r in ranked
        ],
        floatfmt=".2f",
    )


def _protocol_note(result: Any) -> str:
    """A sentence on the metric definitions when they are CLIP_benchmark's."""
    if result.metrics_protocol != "clip_benchmark":
        return ""
    return (
        " Top-1, top-5 and mean per-class recall follow CLIP_benchmark "
        "(`metrics_protocol = clip_benchmark`): float32 scores, top-k as `torch.topk` orders "
        "ties (not by class index), top-5 null with fewer than 5 classes; the other numbers "
        "keep jaxclip's definitions."
    )


def _accuracy(result: Any, cfg: Any, out: RenderContext, report: Report) -> None:
    model, dataset = str(out.config.model), str(out.config.dataset)
    templates, set_name = result.templates["templates"], result.templates["set"]
    c, chance, majority = result.num_classes, result.chance, result.majority
    if len(templates) == 1:
        how = f'the single template "{templates[0]}"'
    else:
        shown = ", ".join(f'"{t}"' for t in templates[:3])
        how = (
            f"the {len(templates)} templates of the `{set_name}` set ({shown}, …), ensembled: "
            "each prompt embedding is normalised, the C class embeddings are the renormalised "
            "mean over templates (CLIP paper §3.1.4)"
        )
    tnote = resolve_template_set(cfg.templates, dataset)[2]
    note = f" (`templates = {cfg.templates}`: {tnote})" if tnote else ""
    n_drop = result.unlabelled_dropped
    drop = f" {n_drop} images without a label are left out." if n_drop else ""
    report.text(
        f"Each image is assigned the class whose text embedding has the highest cosine "
        f"similarity with it. Class prompts{note}: {how}. Data: {result.num_samples} images of "
        f"the `{result.split}` split of `{dataset}`, {c} classes, embedded by `{model}`.{drop} "
        "Top-k counts an image as correct when its class is among the k highest scores (ties "
        "go to the lower class index, as argmax). Mean per-class recall (balanced accuracy) "
        "weighs every class equally; macro F1 is the unweighted mean of the per-class F1. "
        f"Chance is 1/C = {100 * chance:.2f} % for top-1 (always answering the most frequent "
        + (
            f"class: {100 * majority:.2f} %) and {100 * min(1.0, 5 / c):.2f} % for top-5."
            if result.top5 is not None
            else f"class: {100 * majority:.2f} %); with {c} classes top-5 is trivially 100 % "
            "and not shown."
        )
        + _protocol_note(result)
    )
    report.section("Accuracy", level=2)
    rows = [
        {"metric": "top-1 accuracy", "ours %": _ci(result, "top1"), "chance %": 100 * chance},
        {
            "metric": "top-5 accuracy",
            "ours %": _ci(result, "top5"),
            "chance %": 100 * min(1, 5 / c),
        },
        {
            "metric": "mean per-class recall",
            "ours %": _ci(result, "mean_per_class_recall"),
            "chance %": 100 * chance,
        },
        {"metric": "macro F1", "ours %": _ci(result, "macro_f1"), "chance %": None},
    ]
    if result.top1_ci is not None:
        report.text(
            "Brackets: 95 % percentile bootstrap interval over the test images "
            f"({bootstrap.DEFAULT_RESAMPLES} resamples, seeded)."
        )
    report.table([r for r in rows if r["ours %"] is not None], floatfmt=".2f")
    published = result.published_top1_percent
    if published:
        pub = [{"source": "ours (this run)", "top-1 %": 100 * result.top1}] + [
            {"source": k, "top-1 %": v} for k, v in published.items()
        ]
        report.text(
            f"Published zero-shot top-1 for `{model}` on `{dataset.split('/')[0]}`. The CLIP "
            "paper and CLIP_benchmark use the dataset's own prompt ensemble (`templates="
            'dataset`); the thesis used the single prompt "a photo of a {label}" (our '
            "`photo` set adds a full stop). Differences of about a point also come from "
            "preprocessing (resize/crop details) and the exact split."
        )
        report.table(pub, floatfmt=".2f")
    else:
        report.text(
            f"No published zero-shot numbers are on file for `{model}` on `{dataset}` "
            "(jaxclip.report.references.ZERO_SHOT_TOP1), so none are shown."
        )


def _class_rows(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "class": r["class"],
            "precision %": 100 * r["precision"],
            "recall %": 100 * r["recall"],
            "F1 %": 100 * r["f1"],
            "support": r["support"],
            "most often mistaken for": (
                f"{r['confused_with']} ({100 * r['confused_share']:.1f} %)"
                if r["confused_with"]
                else "—"
            ),
        }
        for r in items
    ]


def _per_class(result: Any, cfg: Any, out: RenderContext, report: Report) -> None:
    per_class, c = result.per_class, result.num_classes
    report.section("Per-class precision, recall and F1", level=2)
    report.text(
        "Precision: of the images predicted as the class, the share that belong to it; recall: "
        "of the class's images, the share found; F1 their harmonic mean (0 when a class is "
        "never predicted and never right). The last column is the wrong class its images are "
        "most often given, with the share of the class's images."
    )
    best = [per_class[r["index"]] for r in result.best]
    worst = [per_class[r["index"]] for r in result.worst]
    if c <= 2 * int(cfg.k_best):
        report.table(
            _class_rows(sorted(per_class, key=lambda r: -r["f1"])),
            floatfmt=".1f",
            caption="All classes, best F1 first",
        )
    else:
        report.table(_class_rows(best), floatfmt=".1f", caption=f"Best {len(best)} classes by F1")
        report.table(
            _class_rows(worst), floatfmt=".1f", caption=f"Worst {len(worst)} classes by F1"
        )
        report.text(
            f"<details><summary>All {c} classes (click to expand)</summary>\n\n"
            + markdown_table(_class_rows(per_class), floatfmt=".1f")
            + "\n</details>"
        )
    f1 = np.asarray([r["f1"] for r in per_class])
    classnames = [r["class"] for r in per_class]
    fig = plots.plot_per_class_f1(
        f1,
        classnames,
        title=f"Zero-shot per-class F1 ({c} classes, sorted); dashed: macro F1 = {f1.mean():.3f}",
    )
    name = save_figure(fig, out.workdir, result.figures[0])
    report.figure(name, "Per-class F1, best to worst (dashed: the mean)")


def _confusions(result: Any, cfg: Any, out: RenderContext, report: Report) -> None:
    report.section("Confusions", level=2)
    classnames = [r["class"] for r in result.per_class]
    fig = plots.plot_confusion_matrix(
        np.asarray(result.confusion_counts),
        classnames,
        title=f"Zero-shot confusion matrix ({result.num_classes} classes, clustered order)",
        top_n=int(cfg.top_confusions),
    )
    name = save_figure(fig, out.workdir, result.figures[1])
    report.text(
        "Rows are true classes, columns predictions, each row normalised to 1 and drawn on a "
        "square-root colour scale so that small confusions stay visible. Classes are reordered "
        "by hierarchical clustering of the symmetrised confusions, so groups of classes that "
        "are mistaken for one another form blocks along the diagonal."
    )
    report.figure(name, "Row-normalised confusion matrix (clustered class order)")
    if result.top_confusions:
        report.table(
            [
                {
                    "true class": r["true"],
                    "predicted as": r["predicted"],
                    "images": r["count"],
                    "share of the true class %": 100 * r["fraction"],
                }
                for r in result.top_confusions
            ],
            floatfmt=".1f",
            caption="Most confused pairs (share of the true class's images given that label)",
        )
    else:
        report.text("No image is misclassified: there are no confusions to list.")


def _probe_note(result: Any, report: Report) -> None:
    """The "zero-shot vs linear probe" section: our numbers, and where the probe's come from."""
    report.section("Zero-shot vs linear probe", level=2)
    report.text(
        f"Zero-shot uses no labels: {100 * result.top1:.2f} % top-1 here. A linear probe "
        "trained on the same image embeddings (the `probe` study) uses the training labels and "
        "usually does better on the dataset it was trained for (the sources: "
        f"{IT5005_PROBE_TOP1:.2f} % probe vs {IT5005_ZERO_SHOT_TOP1:.2f} % zero-shot on an "
        f"ImageNet subset; CIFAR-100 {THESIS_CIFAR100_PROBE_TOP1:.2f} % vs "
        f"{THESIS_CIFAR100_ZERO_SHOT_TOP1:.2f} %). The `headline` entry of this study's results "
        "holds the numbers a joint report sets beside the probe's."
    )


def _attributes(result: Any, cfg: Any, out: RenderContext, report: Report) -> None:
    attrs = result.attributes
    rows = [
        {
            "attribute": attr,
            "values": len(e["values"]),
            "prompt (first value)": e["prompts"][0],
            "top-1 %": pct(e["generic"]["top1"]),
            "balanced acc. %": pct(e["generic"]["mean_per_class_recall"]),
            "class-marginal top-1 %": pct(e.get("class_marginal", {}).get("top1")),
            "chance 1/K %": 100.0 / len(e["values"]),
            "majority %": 100 * e["majority"],
        }
        for attr, e in attrs.items()
    ]
    report.section("Zero-shot on the other attributes", level=2)
    example = result.marginal_example
    marg_note = (
        f' The class-marginal column replaces "{cfg.class_word}" by each class name '
        f'("{example}", …) and averages the prompt embeddings over the '
        "classes, so the prompt names the object as training captions do; a large gain over "
        f'the generic prompt means the model does not understand "{cfg.class_word}".'
        if cfg.class_word and example is not None
        else ""
    )
    report.text(
        "Besides the class label this dataset labels every image with the attributes below. "
        "Each is classified zero-shot like the classes: one prompt per value (template in the "
        "config, `zero_shot.attribute_templates`), the value with the most similar prompt "
        "wins. Chance is 1/K for K values; the majority column is the accuracy of always "
        f"answering the most frequent value.{marg_note}"
    )
    report.table(rows, floatfmt=".1f")
    names = result.figures[-2:]
    report.figure(
        save_figure(plots.plot_attribute_accuracy(attrs), out.workdir, names[0]),
        "Attribute zero-shot top-1 against chance",
    )
    padded = np.asarray(result.attribute_confusions)
    confusions = {
        a: (padded[i, : len(e["values"]), : len(e["values"])], e["values"])
        for i, (a, e) in enumerate(attrs.items())
    }
    report.figure(
        save_figure(plots.plot_attribute_confusions(confusions), out.workdir, names[1]),
        "Row-normalised confusion matrices of the attributes (generic prompts; rows true)",
    )
