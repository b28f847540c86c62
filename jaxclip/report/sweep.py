"""A sweep's report: the leaderboard in percent beside published numbers, and a heat map of
one headline metric over models × datasets (`jaxclip.sweep` writes the cells and the CSV)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from jaxclip.report.intervals import comparison_sentence, format_difference, format_p
from jaxclip.report.markdown import Report
from jaxclip.report.plots import save_figure
from jaxclip.report.references import LINEAR_PROBE, RETRIEVAL, ZERO_SHOT_TOP1, lookup


def published(model: str, dataset: str, metric: str) -> str:
    """The published numbers (%) for one leaderboard row, as "source value; ..." ("" if none):
    zero-shot top-1 (CLIP paper, CLIP_benchmark, the thesis), the thesis's SVC probe, COCO /
    CLIP_benchmark retrieval recalls (`jaxclip.report.references`)."""
    found: dict[str, float] = {}
    if metric == "zero_shot.top1":
        found = dict(lookup(ZERO_SHOT_TOP1, model, dataset))
    elif metric == "probe.svc_linear.top1":
        found = dict(lookup(LINEAR_PROBE, model, dataset))
    elif metric.startswith("retrieval."):
        _, direction, k = metric.split(".")
        value = lookup(RETRIEVAL, model, dataset).get(direction, {}).get(int(k[2:]))
        found = {"published": value} if value is not None else {}
    return "; ".join(f"{source} {value:.2f}" for source, value in found.items())


def heatmap_values(
    rows: Sequence[Mapping[str, Any]], models: Sequence[str], datasets: Sequence[str], metric: str
) -> np.ndarray:
    """(models, datasets) array of `metric` in percent; NaN where the leaderboard has none."""
    values = np.full((len(models), len(datasets)), np.nan)
    for r in rows:
        if r["metric"] == metric and r["model"] in models and r["dataset"] in datasets:
            values[models.index(r["model"]), datasets.index(r["dataset"])] = 100.0 * r["value"]
    return values


def plot_heatmap(
    values: np.ndarray, models: Sequence[str], datasets: Sequence[str], metric: str
) -> plt.Figure:
    """Models (rows) × datasets (columns) of one metric in %, each cell annotated with its
    value ("n/a" where missing), a colour bar, labelled axes. Names are drawn with "_" as a
    space (`plain`: matplotlib reads "_" as a TeX subscript)."""
    values = np.asarray(values, float)
    if values.shape != (len(models), len(datasets)):
        raise ValueError(
            f"values must be (models, datasets) = ({len(models)}, {len(datasets)}); "
            f"got {values.shape}"
        )
    fig, ax = plt.subplots(
        figsize=(2.0 + 1.4 * len(datasets), 1.4 + 0.55 * len(models)), layout="constrained"
    )
    im = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(np.arange(len(datasets)), [plain(d) for d in datasets], rotation=30, ha="right")
    ax.set_yticks(np.arange(len(models)), [plain(_short(m)) for m in models])
    ax.set_xlabel("dataset")
    ax.set_ylabel("model")
    ax.set_title(f"{plain(metric)} (%)")
    for i in range(len(models)):
        for j in range(len(datasets)):
            v = values[i, j]
            text = "n/a" if not np.isfinite(v) else f"{v:.1f}"
            color = "black" if np.isfinite(v) and v > 60 else "white"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    fig.colorbar(im, ax=ax, label=f"{plain(metric)} (%)")
    return fig


def plain(name: str) -> str:
    """`name` as drawn in a figure: "_" as a space, "$" and "\\" dropped (no mathtext)."""
    return name.replace("_", " ").replace("$", "").replace("\\", "")


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def write_report(
    config: Any,
    cells: Sequence[Any],
    rows: Sequence[Mapping[str, Any]],
    workdir: str | os.PathLike,
    pairs: Sequence[Mapping[str, Any]] = (),
    skipped: Sequence[str] = (),
) -> Path:
    """Writes `workdir/report.md` and the heat map; returns the report's path. `pairs` /
    `skipped`: `jaxclip.sweep.comparison_rows` (the "Model vs model" section)."""
    from jaxclip.sweep import HEATMAP_FILE, LEADERBOARD_FILE

    models = list(dict.fromkeys(c.model for c in cells))
    datasets = list(dict.fromkeys(c.dataset for c in cells))
    studies = list(dict.fromkeys(c.study for c in cells))
    metric = str(config.headline_metric)
    finished = sum(1 for c in cells if c.results(workdir).is_file())
    report = Report(f"Sweep: {len(models)} models × {len(datasets)} datasets")
    report.text(
        f"Studies {', '.join(studies)} on models {', '.join(f'`{m}`' for m in models)} and "
        f"datasets {', '.join(f'`{d}`' for d in datasets)}: {finished} of {len(cells)} cells "
        f"finished. Each cell's files are in `cells/<model>/<dataset>/<study>/`; every number "
        f"below is in `{LEADERBOARD_FILE}` (fractions, 95 % intervals where the study gives them)."
    )
    values = heatmap_values(rows, models, datasets, metric)
    if np.isfinite(values).any():
        name = save_figure(plot_heatmap(values, models, datasets, metric), workdir, HEATMAP_FILE)
        report.figure(name, f"{metric} (%) of every model × dataset")
    report.section("Leaderboard")
    report.text(
        "Accuracy and recall in % on each dataset's test split; `published`: the CLIP paper's, "
        "CLIP_benchmark's or the thesis's number for the same model and dataset, where "
        "`jaxclip.report.references` has one."
    )
    table = [
        {
            "model": r["model"],
            "dataset": r["dataset"],
            "metric": r["metric"],
            "ours %": 100.0 * r["value"],
            "95 % interval": (
                f"[{100 * r['ci_low']:.2f}, {100 * r['ci_high']:.2f}]"
                if r["ci_low"] is not None and r["ci_high"] is not None
                else ""
            ),
            "n": r["n"],
            "published %": published(r["model"], r["dataset"], r["metric"]),
        }
        for r in rows
    ]
    report.table(table, floatfmt=".2f")
    _model_vs_model(report, models, pairs, skipped)
    return report.write(workdir)


def _model_vs_model(
    report: Report, models: list[str], pairs: Sequence[Mapping[str, Any]], skipped: Sequence[str]
) -> None:
    """Every pair of models on the same test examples, in a table and in words: per dataset and
    metric (one Holm family), which differences are distinguishable from noise, from the
    measured rows alone."""
    from jaxclip.analysis.bootstrap import ALPHA
    from jaxclip.sweep import COMPARISONS_FILE

    report.section("Model vs model")
    if len(models) < 2:
        report.text(f"One model: nothing to compare (`{COMPARISONS_FILE}` holds its header only).")
        return
    level = f"{100 * ALPHA:g} %"
    report.text(
        "Each pair of models on the same test examples, for every metric with per-example "
        "results (zero-shot top-1 per test image, each probe method's test top-1, image → text "
        "Recall@1 / @5 per captioned image): the difference a − b in points with its 95 % "
        "paired bootstrap interval, McNemar's exact p on the examples where exactly one of the "
        "two is right, and that p Holm-adjusted over the pairs of one "
        f"dataset and metric; a difference is distinguishable from noise at {level} when the "
        f"adjusted p is at most {ALPHA}. The same numbers, with more digits, are in "
        f"`{COMPARISONS_FILE}`."
    )
    if not pairs:
        report.text("No two models have finished cells with per-example results on the same data.")
    else:
        report.table(
            [
                {
                    "dataset": r["dataset"],
                    "metric": r["metric"],
                    "a": r["model_a"],
                    "b": r["model_b"],
                    "a − b (points)": format_difference(r),
                    "p": format_p(r["p_value"]).removeprefix("= "),
                    "Holm p": format_p(r["p_holm"]).removeprefix("= "),
                    "n": r["n"],
                }
                for r in pairs
            ]
        )
        families: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for r in pairs:
            families.setdefault((r["dataset"], r["metric"]), []).append(r)
        clear = sum(bool(r["distinguishable"]) for r in pairs)
        report.text(
            f"After Holm, {clear} of {len(pairs)} difference(s) are distinguishable from noise "
            f"at {level}."
        )
        for (dataset, metric), rows in families.items():
            report.text(_family_sentence(dataset, metric, rows, level))
    for line in skipped:
        report.text(f"Not compared: {line}.")


def _family_sentence(
    dataset: str, metric: str, rows: Sequence[Mapping[str, Any]], level: str
) -> str:
    """One Holm family in words: the distinguishable pairs first, then the others."""

    def said(group):
        return "; ".join(
            comparison_sentence(r, label=f"{r['model_a']} vs {r['model_b']}") for r in group
        )

    yes = [r for r in rows if r["distinguishable"]]
    no = [r for r in rows if not r["distinguishable"]]
    head = f"`{dataset}`, {metric} ({len(rows)} pair(s)): "
    if not yes:
        return head + f"no difference is distinguishable from noise at {level}: {said(no)}."
    text = head + f"{len(yes)} distinguishable from noise at {level}: {said(yes)}."
    return text + (f" The others are not: {said(no)}." if no else "")
