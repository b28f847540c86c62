"""The `inside` study's report part: tables, figures and prose from its result alone."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from jaxclip.report import Report
from jaxclip.report.plots import save_figure
from jaxclip.studies.context import RenderContext, Section
from jaxclip.studies.shared import pct


def _ablation(result: Any, report: Report, out: RenderContext) -> None:
    ab = result.ablation
    base = ab["unablated"]
    report.section("Mean-ablation of whole layers", level=3)
    report.text(
        "Each ablated layer's attention heads (and MLP, unless marked attention only) have their "
        "direct contribution replaced by its mean over the test images. The probe is a ridge "
        "classifier fitted on the unablated train embeddings. Unablated: zero-shot "
        f"{pct(base['zero_shot']):.1f}%, probe {pct(base['probe']):.1f}% "
        f"({result.num_test} test images)."
    )
    rows = []
    for key, label in (
        ("first", "first k layers"),
        ("last", "last k layers"),
        ("first_attention_only", "first k layers, attention only"),
        ("last_attention_only", "last k layers, attention only"),
    ):
        for r in ab[key]:
            rows.append(
                {
                    "ablated": label,
                    "k": r["layers"],
                    "zero_shot": pct(r["zero_shot"]),
                    "probe": pct(r["probe"]),
                }
            )
    report.table(rows, ["ablated", "k", "zero_shot", "probe"], floatfmt=".1f")
    last1 = ab["last"][1] if len(ab["last"]) > 1 else None
    first_all_but = ab["first"][-2] if len(ab["first"]) > 1 else None
    if last1 is not None and first_all_but is not None:
        report.text(
            f"Ablating only the last layer takes zero-shot accuracy from "
            f"{pct(base['zero_shot']):.1f}% to {pct(last1['zero_shot']):.1f}%; ablating every "
            f"layer but the last leaves {pct(first_all_but['zero_shot']):.1f}%."
        )
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, style in (("first", "o-"), ("last", "s-")):
        ks = [r["layers"] for r in ab[key]]
        ax.plot(ks, [pct(r["zero_shot"]) for r in ab[key]], style, label=f"zero-shot, {key} k")
    ax.axhline(pct(base["zero_shot"]), color="grey", ls="--", label="unablated")
    ax.set_xlabel("layers mean-ablated (k)")
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.legend(fontsize=7)
    report.figure(
        save_figure(fig, out.workdir, "inside_ablation"), "Zero-shot accuracy under layer ablation"
    )


def head_ablation_figure(result: Any) -> plt.Figure:
    """Heat maps (layers x heads) of the zero-shot and probe accuracy lost when each head alone
    is mean-ablated, in points, each with its colour bar."""
    ha = result.head_ablation
    base = result.ablation["unablated"]
    layers = list(ha["layers"])
    fig, axes = plt.subplots(
        1, 2, figsize=(2 * (0.45 * result.heads + 2.2), 0.4 * len(layers) + 1.6), squeeze=False
    )
    for ax, key, title in zip(axes[0], ("zero_shot", "probe"), ("zero-shot", "probe"), strict=True):
        drop = 100.0 * (base[key] - np.asarray(ha[key], float))
        lim = max(float(np.abs(drop).max()), 1e-9)  # white = no change
        im = ax.imshow(drop, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_title(f"{title} accuracy lost", fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(result.heads), [str(h) for h in range(result.heads)], fontsize=7)
        ax.set_yticks(range(len(layers)), [str(layer) for layer in layers], fontsize=7)
        fig.colorbar(im, ax=ax, label="points")
    fig.tight_layout()
    return fig


def _head_ablation(result: Any, report: Report, out: RenderContext) -> None:
    ha = result.head_ablation
    base = result.ablation["unablated"]
    layers = list(ha["layers"])
    report.section("Mean-ablation of single heads", level=3)
    which = "every layer" if len(layers) == result.layers else f"the last {len(layers)} layers"
    report.text(
        f"Each head of {which}, alone, has its direct contribution replaced by its mean over the "
        "test images; the table gives the zero-shot (and probe) accuracy lost, in points "
        "(unablated minus ablated; negative: the ablation helps)."
    )
    rows = []
    for layer, zs_row, pr_row in zip(layers, ha["zero_shot"], ha["probe"], strict=True):
        row: dict[str, Any] = {"layer": layer}
        for h, (zs, pr) in enumerate(zip(zs_row, pr_row, strict=True)):
            row[f"H{h}"] = (
                f"{pct(base['zero_shot']) - pct(zs):.1f} ({pct(base['probe']) - pct(pr):.1f})"
            )
        rows.append(row)
    report.table(rows)
    top = result.head_ablation_top
    costly = [r for r in top if r["zero_shot_drop"] > 0]
    if costly:
        first = costly[0]
        words = [
            f"L{r['layer']}H{r['head']} ({pct(r['zero_shot_drop']):.1f} zero-shot, "
            f"{pct(r['probe_drop']):.1f} probe)"
            for r in costly
        ]
        report.text(
            f"Ablating L{first['layer']}H{first['head']} alone costs the most zero-shot accuracy: "
            f"{pct(base['zero_shot']):.1f}% becomes "
            f"{pct(base['zero_shot'] - first['zero_shot_drop']):.1f}%. "
            + "Heads whose ablation lowers zero-shot accuracy most, with the points lost: "
            + "; ".join(words)
            + "."
        )
    elif top:
        report.text("No single head's mean-ablation lowers zero-shot accuracy.")
    report.figure(
        save_figure(head_ablation_figure(result), out.workdir, "inside_head_ablation"),
        "Accuracy lost when one head is mean-ablated (layers x heads)",
    )


def _head_probes(result: Any, report: Report, out: RenderContext) -> None:
    report.section("Which heads carry which label (per-head probes)", level=3)
    report.text(
        "A ridge classifier on one head's direct contribution, trained on "
        f"{result.num_train} train images, tested on {result.num_test}; chance = always the most "
        "frequent train value; `embedding` = the same probe on the whole embedding."
    )
    rows = [
        {
            "label": b["label"],
            "best head": f"L{b['layer']}H{b['head']}",
            "accuracy": pct(b["accuracy"]),
            "embedding": pct(result.head_probes["embedding"][b["label"]]),
            "chance": pct(b["chance"]),
        }
        for b in result.head_probe_best
    ]
    report.table(rows, floatfmt=".1f")
    labels = list(result.labels)
    grid = np.array([np.asarray(result.head_probes[k]).ravel() for k in labels]) * 100
    chance = np.array([result.chance[k] for k in labels])[:, None] * 100
    fig, ax = plt.subplots(figsize=(0.5 * grid.shape[1] + 2, 0.45 * len(labels) + 1.2))
    im = ax.imshow(grid - chance, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(
        range(grid.shape[1]),
        [f"L{i // result.heads}H{i % result.heads}" for i in range(grid.shape[1])],
        rotation=90,
        fontsize=7,
    )
    fig.colorbar(im, ax=ax, label="accuracy - chance (points)")
    report.figure(
        save_figure(fig, out.workdir, "inside_head_probes"), "Per-head probe accuracy above chance"
    )


def _layer_probes(result: Any, report: Report, out: RenderContext) -> None:
    lp = result.layer_probes
    if not lp:
        return
    report.section("Where each label becomes decodable (layer-wise probes)", level=3)
    report.text(
        "The same ridge probe on the residual stream after the pre-LayerNorm (layer 0) and after "
        "each block: at the class token (`cls`) and averaged over the patch tokens (`patch_mean`)."
    )
    n = len(next(iter(lp.values()))["cls"])
    rows = []
    for label in result.labels:
        for where in ("cls", "patch_mean"):
            row: dict[str, Any] = {"label": label, "tokens": where}
            row.update({f"after {i}": pct(a) for i, a in enumerate(lp[label][where])})
            rows.append(row)
    report.table(rows, floatfmt=".1f")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label in result.labels:
        ax.plot(range(n), [pct(a) for a in lp[label]["cls"]], "o-", label=label)
    ax.set_xlabel("layers applied")
    ax.set_ylabel("class-token probe accuracy (%)")
    ax.set_xticks(range(n))
    ax.legend(fontsize=7)
    report.figure(
        save_figure(fig, out.workdir, "inside_layer_probes"), "Class-token probe accuracy by layer"
    )


def _text_span(result: Any, report: Report) -> None:
    report.section("TextSpan of the last layers' heads", level=3)
    pool = {
        "attributes": "one phrase per value of every label",
        "general": "the general pool of generated descriptions",
    }.get(result.text_pool, f"the descriptions of {result.text_pool.removeprefix('file:')}")
    report.text(
        f"Greedy text basis of each head's outputs from {result.text_pool_size} texts, {pool} "
        "(Gandelsman et al. 2024); `explained` = fraction of the head's output variance "
        "spanned after each choice."
    )
    rows = [
        {
            "head": f"L{s['layer']}H{s['head']}",
            "texts": " / ".join(s["texts"]),
            "labels": ", ".join(label or "-" for label in s["labels"]),
            "explained": " / ".join(f"{100 * e:.0f}%" for e in s["explained"]),
        }
        for s in result.text_span
    ]
    report.table(rows)
    named = [f"{k}: {', '.join(v)}" for k, v in result.text_span_labels.items() if v]
    if named:
        report.text("Heads whose first phrase names a label: " + "; ".join(named) + ".")


def _maps(result: Any, report: Report, out: RenderContext) -> None:
    report.section("Spatial maps and the pointing game", level=3)
    p = result.pointing
    if p is None:
        report.text("Pointing game skipped: the dataset has no 3x3 position label.")
    elif p["accuracy"] is None:
        report.text("Pointing game skipped: no test image with a single object.")
    else:
        report.text(
            f"Per-patch scores of each image's own class prompt (summed over layers and heads), "
            f"pooled from {p['patches']}x{p['patches']} patches onto the {p['grid']}x{p['grid']} "
            f"position grid: the peak cell holds the object in {pct(p['accuracy']):.1f}% of "
            f"{p['num_images']} single-object test images, against {pct(p['random_cell']):.1f}% "
            "for a random cell."
        )
    maps = result.maps
    if maps is None or not len(maps) or out.images is None:
        return
    images = out.images("test", [int(r) for r in result.map_rows])
    fig, axes = plt.subplots(2, len(maps), figsize=(1.6 * len(maps), 3.4), squeeze=False)
    for i, (img, m) in enumerate(zip(images, maps, strict=True)):
        axes[0, i].imshow(img)
        axes[1, i].imshow(m, cmap="magma")
        axes[0, i].set_title(f"#{int(result.map_rows[i])}", fontsize=7)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    report.figure(
        save_figure(fig, out.workdir, "inside_maps"), "Images and their class-prompt patch maps"
    )


def render(result: Any, out: RenderContext) -> Section:
    """The study's part of the report."""
    report = Report("Inside the image tower")
    report.text(
        f"The image embedding decomposed into {result.layers} layers x {result.heads} heads, "
        f"{result.layers} MLPs, the embedding path and a bias; the sum matches the cached "
        f"embeddings to a relative error of {result.exact_sum_max_rel_error:.1e}."
    )
    _ablation(result, report, out)
    _head_ablation(result, report, out)
    _head_probes(result, report, out)
    _layer_probes(result, report, out)
    _text_span(result, report)
    _maps(result, report, out)
    return Section("inside", report)
