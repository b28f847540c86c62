"""Report sections of the geometry study's static parts: modality means, separating features,
the two-feature SVM, thin shells, variance spectrum and tilt, modality gap.

Each function adds its section to `report` from a (reloaded) `GeometryResult` and draws its
figures into `workdir`. The paper's numbers quoted in the prose come from
`jaxclip.report.references`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jaxclip.report import Report, save_figure
from jaxclip.report import plots_geometry as plots
from jaxclip.report.intervals import format_ci
from jaxclip.report.references import GEOMETRY_PAPER_COCO as P
from jaxclip.report.references import GEOMETRY_PAPER_TOP_FEATURE, GEOMETRY_PAPER_TOP_FEATURE_KL

SIDES = ("image", "text")


def num(x: float | None, none: float = math.nan) -> float:
    """A number of a reloaded result: JSON holds None where it was NaN (or ±inf)."""
    return none if x is None else x


def kl_num(x: float | None) -> float:
    """A KL of a reloaded result: None was an infinite KL (a bin empty on one side only)."""
    return num(x, math.inf)


def fmt(x: float | None, spec: str = ".4f") -> str:
    """`x` formatted, or "n/a" when it is None or not finite."""
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def paper_cell(paper: dict, key: str) -> dict[str, Any]:
    """{"paper": value} when the published numbers hold `key`, else {}."""
    return {"paper": paper[key]} if paper and key in paper else {}


def with_ci(value: float | None, interval: dict | None, spec: str = ".4f") -> Any:
    """`value [low, high]` (4 decimals) when its stored interval is finite, else the number."""
    if value is None or interval is None or None in (interval["ci_low"], interval["ci_high"]):
        return value
    digits = int(spec.strip(".f"))
    return format_ci(interval, value, scale=1.0, digits=digits)


def moments(result: Any, report: Report, paper: dict) -> None:
    """Modality means: ‖m‖, ‖σ‖ and their ratio per modality (with their intervals)."""
    rows = []
    cis = result.moments_ci or {}
    for name in SIDES:
        m, ci = result.moments[name], cis.get(name, {})
        rows.append(
            {
                "modality": name,
                "‖m‖": with_ci(m["mean_norm"], ci.get("mean_norm")),
                "‖σ‖ = sqrt(tr C)": with_ci(m["std_norm"], ci.get("std_norm")),
                "‖m‖/‖σ‖": with_ci(m["ratio"], ci.get("ratio"))
                if m["ratio"] is not None
                else num(m["ratio"], math.inf if m["std_norm"] == 0 else math.nan),
                **paper_cell(paper, f"ratio_{name}"),
            }
        )
    report.section("Where the ellipsoids sit: modality means", level=2)
    report.text(
        "m is the mean raw embedding of a modality and σ the vector of its per-feature standard "
        "deviations, so ‖σ‖ = sqrt(tr C) measures the size of the shell. ‖m‖/‖σ‖ compares how far "
        "the centre lies from the origin with how wide the shell is: a ratio near 1 means the "
        "ellipsoid sits about one shell-width away from the origin, which on the unit sphere "
        f"shows up as the narrow cone (paper, Property 5: {P['ratio_image']} images, "
        f"{P['ratio_text']} text)."
    )
    report.table(rows, floatfmt=".4f", caption="Modality means")
    if cis:
        n = cis["image"]["mean_norm"]["n"]
        report.text(
            f"In brackets: 95 % percentile bootstrap intervals over the {n} images (each image's "
            "texts resampled with it), here and in the gap table below."
        )


def separability(result: Any, cfg: Any, report: Report, workdir: Path) -> None:
    """Separating features: the top-k table, the sorted Sep curve and the histograms."""
    top = result.separability["top"]
    n_gt1 = result.separability["n_features_sep_gt_1"]
    d = result.pairs["dimension"]
    curve = save_figure(plots.plot_separability(result.sep_sorted), workdir,
                        "geometry_separability")  # fmt: skip
    h = result.hist_image.shape[1]
    fig = plots.plot_feature_histograms(
        result.hist_image, result.hist_text, [r["feature"] for r in top[:h]],
        [r["sep"] for r in top[:h]],
    )  # fmt: skip
    hists = save_figure(fig, workdir, "geometry_feature_histograms")
    report.section("Separating features", level=2)
    report.text(
        "Sep(l) = |m_i(l) − m_t(l)| / sqrt(var_i(l) + var_t(l)) (Eq. 5) is the distance between "
        "the image and text means along feature l in units of their pooled standard deviation. "
        "Sep > 1 means the two modalities barely overlap on that one coordinate: the feature acts "
        f"as a modality tag (the paper finds about {P['n_tag_features']} such features on COCO). "
        "The last column is KL(image ‖ text) of that feature's two histograms "
        f"({cfg.feature_kl_bins} shared bins, nats; the paper quotes ≈ "
        f"{GEOMETRY_PAPER_TOP_FEATURE_KL} for its feature {GEOMETRY_PAPER_TOP_FEATURE}, "
        f"and above 1 is a large difference). Here {n_gt1} of {d} features have Sep > 1."
    )
    report.table(
        [
            {
                "rank": r["rank"],
                "feature": r["feature"],
                "Sep": r["sep"],
                "mean image": r["mean_image"],
                "mean text": r["mean_text"],
                "std image": r["std_image"],
                "std text": r["std_text"],
                "KL(image‖text)": kl_num(r["kl_image_text"]),
            }
            for r in top
        ],
        floatfmt=".4g",
        caption=f"Top {len(top)} features by separability",
    )
    report.figure(curve, "Sep(l) of every feature, sorted (paper Fig. 3 left)")
    report.figure(
        hists, "Per-modality histograms of the most separating features (paper Fig. 2 left)"
    )


def svm(result: Any, cfg: Any, report: Report, workdir: Path) -> None:
    """Linear separability on the two most separating features."""
    s = result.svm
    fig = plots.plot_svm_boundary(
        result.svm_points, result.svm_labels, features=s["features"], coef=s["coef"],
        intercept=s["intercept"], accuracy=s["accuracy"],
    )  # fmt: skip
    name = save_figure(fig, workdir, "geometry_svm")
    report.section("Linear separability on two features", level=2)
    report.text(
        f"A linear SVM (scikit-learn LinearSVC, squared hinge, C = {cfg.svm_c}) on the raw values "
        "of the two most separating features, fitted and scored on all points as in the paper's "
        f"Fig. 2 ({100 * P['svm_accuracy']:.0f} % on COCO; Property 1: the modalities occupy "
        "disjoint regions). Chance, always answering the larger modality, is "
        f"{100 * s['chance']:.2f} %."
    )
    row = {
        "features": f"{s['features'][0]}, {s['features'][1]}",
        "accuracy %": 100 * s["accuracy"],
        "chance %": 100 * s["chance"],
    }
    if "svm_accuracy" in (result.paper or {}):
        row["paper %"] = 100 * result.paper["svm_accuracy"]
    report.table([row], floatfmt=".2f")
    report.figure(
        name, "The two most separating features with the SVM boundary (paper Fig. 2 right)"
    )


def shells(result: Any, report: Report, workdir: Path, paper: dict) -> None:
    """Thin shells: centred-norm statistics and their histograms."""
    norms = {"image": result.shell_norms_image, "text": result.shell_norms_text}
    name = save_figure(plots.plot_centred_norms(norms, result.thin_shell), workdir,
                       "geometry_thin_shell")  # fmt: skip
    report.section("Thin shells", level=2)
    report.text(
        "Centre each modality, y = v − m. Every single coordinate of y is concentrated around 0, "
        "but the norm ‖y‖ is not: it concentrates around μ = E‖y‖ with no mass near 0, a thin "
        "shell (Property 2). Exactly E‖y‖² = tr C = μ² + var(‖y‖), so sqrt(tr C) ≈ μ when "
        "var(‖y‖) ≪ μ² (Eqs. 3-4); the relative error (sqrt(tr C) − μ)/μ measures how thin the "
        f"shell is (paper, COCO images: μ = {P['shell_mean_norm_image']}, var = "
        f"{P['shell_var_norm_image']}, sqrt(tr C) = {P['shell_sqrt_trace_image']}, "
        f"{100 * P['shell_rel_error_image']:.2f} %). "
        "min/μ is the smallest centred norm over the mean one: well above 0 means the inside of "
        "the shell is empty."
    )
    rows = []
    for side in SIDES:
        s = result.thin_shell[side]
        row = {
            "modality": side,
            "mean ‖v−m‖": s["mean_norm"],
            "var ‖v−m‖": s["var_norm"],
            "sqrt(tr C)": s["sqrt_trace"],
            "rel. error %": 100 * num(s["rel_error"]),
            "min/μ": s["min_over_mean"],
        }
        if side == "image" and paper:
            row["paper: μ / sqrt(tr C)"] = (
                f"{paper['shell_mean_norm_image']} / {paper['shell_sqrt_trace_image']}"
            )
        rows.append(row)
    report.table(rows, floatfmt=".4f")
    report.figure(name, "Histograms of the centred norms ‖v − m‖ (paper Fig. 4 bottom)")


def spectrum(result: Any, report: Report, workdir: Path) -> None:
    """Ellipsoids, not spheres: variance spectrum, eigenvalues and off-diagonal dominance."""
    sp = result.spectrum
    ratios = [sp[side]["participation_ratio"] for side in SIDES]
    fig = plots.plot_variance_spectrum(result.variances, result.eigenvalues, ratios)
    spec_name = save_figure(fig, workdir, "geometry_variance_spectrum")
    odd_name = save_figure(plots.plot_odd(result.odd[0], result.odd[1]), workdir, "geometry_odd")
    report.section("Ellipsoids, not spheres: variance spectrum and tilt", level=2)
    report.text(
        "On a sphere every feature would have about the same variance; a long tail of large "
        "variances makes an ellipsoid (Property 3). The participation ratio (Σλ)²/Σλ² of the "
        "covariance eigenvalues is D for a sphere and 1 for a line; the top-10 % share is the "
        "fraction of the total variance carried by the 10 % largest-variance features. "
        "Off-diagonal dominance ODD(l) = Σ_{k≠l}|C_lk| / C_ll (Eq. 6): if every row had "
        "ODD < 1 the covariance would be diagonally dominant; large values mean strongly "
        "correlated features, an ellipsoid tilted against the axes (Property 4)."
    )
    d = result.pairs["dimension"]
    flat = [(side, int(n)) for side, n in zip(SIDES, result.distinct_points) if int(n) - 1 < d]
    if flat:
        what = " and ".join(f"the {side} set has only {n} distinct points" for side, n in flat)
        report.text(
            f"Note: {what}, fewer than D + 1 = {d + 1}, so the covariance has rank below D: the "
            "smallest eigenvalues are zero (rounding noise in the plot) and the shell is flat in "
            "those directions. More examples give a full-rank estimate."
        )
    rows = [
        {
            "modality": side,
            "participation ratio": sp[side]["participation_ratio"],
            "var max/min": sp[side]["variance_ratio_max_min"],
            "var max/median": sp[side]["variance_max_over_median"],
            "top-10 % share": sp[side]["top_10pct_variance_share"],
            "ODD median": sp[side]["odd_median"],
            "ODD max": sp[side]["odd_max"],
            "ODD > 1 (share of rows)": sp[side]["odd_fraction_gt_1"],
        }
        for side in SIDES
    ]
    report.table(rows, floatfmt=".3g", caption="Variance spectrum and ODD summary")
    report.figure(
        spec_name, "Per-feature variances and covariance eigenvalues, sorted (paper Fig. 5 left)"
    )
    report.figure(odd_name, "Off-diagonal dominance of every feature (paper Fig. 5 right)")


def gap(result: Any, report: Report) -> None:
    """Modality gap: the distance and cosine between the two centres, and the normalised gap."""
    g, ci = result.gap, result.gap_ci or {}
    mci = result.moments_ci or {"image": {}, "text": {}}
    report.section("Modality gap", level=2)
    report.text(
        "The gap vector m_i − m_t joins the centres of the two ellipsoids. Beside its norm: the "
        "cosine between the two centres, and the gap of the normalised embeddings, "
        "‖mean(v/‖v‖) − mean(t/‖t‖)‖ (the ‖Δ‖ of Liang et al. 2022, at most 2)."
    )
    report.table(
        [
            {
                "‖m_i − m_t‖": with_ci(g["norm"], ci.get("norm")),
                "‖m_i‖": with_ci(
                    result.moments["image"]["mean_norm"], mci["image"].get("mean_norm")
                ),
                "‖m_t‖": with_ci(result.moments["text"]["mean_norm"], mci["text"].get("mean_norm")),
                "cos(m_i, m_t)": with_ci(g["cos_means"], ci.get("cos_means")),
                "normalised gap ‖Δ‖": with_ci(g["normalised_norm"], ci.get("normalised_norm")),
            }
        ],
        floatfmt=".4f",
    )
