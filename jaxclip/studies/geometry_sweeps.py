"""Report sections of the geometry study's sweeps and conformity: the contrastive loss vs the
shift α, conformity and its estimate from the mean, and the KL of the conformity distributions.

Each function adds its section to `report` from a (reloaded) `GeometryResult` and draws its
figures into `workdir`. The paper's numbers quoted in the prose come from
`jaxclip.report.references`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxclip.report import Report, markdown_table, save_figure
from jaxclip.report import plots_geometry as plots
from jaxclip.report.references import GEOMETRY_PAPER_COCO as P
from jaxclip.studies.geometry_sections import kl_num, num


def _minus(x: float) -> str:
    """A published number as the prose writes it (a true minus sign)."""
    return f"{x}".replace("-", "−")


def _summary_row(side: str, su: dict) -> dict[str, Any]:
    return {
        "shifted": side,
        "α at min total": su["alpha_min_total"],
        "min total": num(su["total_min"]),
        "total at α=0": num(su["total_at_0"]),
        "alignment at α=0": num(su["alignment_at_0"]),
        "uniformity at α=0": num(su["uniformity_at_0"]),
        "correct at α=0": num(su["correct_at_0"]),
        "wrong at α=0": num(su["wrong_at_0"]),
        "α at min alignment": su["alpha_min_alignment"],
        "α at min uniformity": su["alpha_min_uniformity"],
    }


def _per_alpha_rows(alphas: list[float], curves: dict[str, list]) -> list[dict[str, Any]]:
    c = {k: [num(x) for x in v] for k, v in curves.items()}
    return [
        {
            "α": float(a),
            "total": c["total"][j],
            "alignment": c["alignment"][j],
            "uniformity": c["uniformity"][j],
            "correct": c["correct"][j],
            "wrong": c["wrong"][j],
            "wrong terms": int(c["n_wrong"][j]),
            "R@1 i→t %": 100 * c["accuracy_i2t"][j],
            "R@1 t→i %": 100 * c["accuracy_t2i"][j],
        }
        for j, a in enumerate(alphas)
    ]


def _ties_note(pairs: dict, cfg: Any) -> str:
    if pairs["source"] == "captions" and str(cfg.caption).lower() == "all":
        return (
            " With every caption paired, each image appears once per caption: in the text→image "
            "direction its copies tie exactly and only the first copy counts as correct "
            "(`argmax` convention), so the correct / wrong split and R@1 t→i are pessimistic; "
            "the other captions of the same image are negatives (real false negatives)."
        )
    if pairs["source"] == "class_prompts" or pairs["n_distinct_texts"] < pairs["n_texts"]:
        return (
            " Some texts repeat here, so some logits tie exactly; a tie counts as correct only "
            "for the first of the tied pairs (`argmax` convention), so read correct / wrong and "
            "R@1 with that in mind."
        )
    return ""


def _sigmoid_summary_row(side: str, su: dict) -> dict[str, Any]:
    return {
        "shifted": side,
        "α at min total": su["alpha_min_total"],
        "min total": num(su["total_min"]),
        "total at α=0": num(su["total_at_0"]),
        "positive at α=0": num(su["positive_at_0"]),
        "negative at α=0": num(su["negative_at_0"]),
        "α at min positive": su["alpha_min_positive"],
        "α at min negative": su["alpha_min_negative"],
        "pairs right at α=0 %": 100 * num(su["accuracy_at_0"]),
    }


def _sigmoid_per_alpha_rows(alphas: list[float], curves: dict[str, list]) -> list[dict[str, Any]]:
    c = {k: [num(x) for x in v] for k, v in curves.items()}
    return [
        {
            "α": float(a),
            "total": c["total"][j],
            "positive": c["positive"][j],
            "negative": c["negative"][j],
            "mean matched score": c["mean_positive_logit"][j],
            "mean other score": c["mean_negative_logit"][j],
            "pairs right %": 100 * c["accuracy"][j],
        }
        for j, a in enumerate(alphas)
    ]


def _sigmoid_intro(lo_: dict, n: int, scale_src: str) -> str:
    t, b = lo_["logit_scale"], lo_["logit_bias"]
    return (
        "Shift one modality along its own mean, v' = v − α·m (Eq. 9), keeping the other fixed: "
        "α = 0 is the model as trained, α = 1 centres that modality at the origin, α = −1 "
        "doubles its offset. This model was trained with SigLIP's sigmoid loss (Zhai et al. "
        "2023, Eq. 1), so for each α that loss of all "
        f"{n} pairs as one batch is computed on its scores L = t·cos + b, with t = {t:.4g} "
        f"({scale_src}) and its learned bias b = {b:.4g}: ℓ = −(1/N) Σ_j Σ_k log σ(z_jk L_jk), "
        "z = +1 for the matched pair, −1 for the other N − 1 texts of each image. It splits "
        "into a *positive* part (1/N) Σ_j softplus(−L_jj), pulling matched pairs up (the role "
        "of alignment), and a *negative* part (1/N) Σ_{j≠k} softplus(L_jk), pushing the "
        f"{n * n - n} other pairs down (the role of uniformity). A pair is classified right "
        "when its score has the right sign."
    )


def loss(result: Any, cfg: Any, report: Report, workdir: Path) -> None:
    """Contrastive loss vs the position of the ellipsoid, one sweep per shifted modality."""
    lo_ = result.loss
    if lo_.get("loss") == "sigmoid":
        return _sigmoid_loss(result, cfg, report, workdir)
    alphas, scale = lo_["alphas"], lo_["logit_scale"]
    sides = [side for side in cfg.sides]
    for side in sides:
        fig = plots.plot_loss_vs_alpha(alphas, lo_[side]["curves"], side=side)
        save_figure(fig, workdir, f"geometry_loss_{side}")
    n = result.pairs["n_pairs"]
    scale_src = "set in the config" if cfg.logit_scale > 0 else "the model's own learned value"
    report.section("Contrastive loss vs the position of the ellipsoid", level=2)
    report.text(
        "Shift one modality along its own mean, v' = v − α·m (Eq. 9), keeping the other fixed: "
        "α = 0 is CLIP as trained, α = 1 centres that modality at the origin, α = −1 doubles its "
        f"offset. For each α the symmetric CLIP loss (Eq. 7) of all {n} pairs as one batch is "
        f"computed with logit scale s = {scale:.4g} ({scale_src}), and split two ways. "
        "(1) total = alignment + uniformity (Eq. 8): alignment = −s·mean cos of matched pairs "
        "(lower is better aligned), uniformity = mean over pairs of ½(log-sum-exp of its row + "
        "of its column). (2) By match: each of the "
        f"{2 * n} terms ({n} image→text rows and {n} text→image columns) is *correct* when its "
        "own pair has the largest logit, *wrong* otherwise; the "
        "total is their count-weighted mean. The paper (COCO, image side, Fig. 6) finds the loss "
        "of correct pairs falling toward α = 1 and that of wrong pairs rising, with the total "
        f"lowest near α = 0 (Property 6).{_ties_note(result.pairs, cfg)}"
    )
    rows = [_summary_row(side, lo_[side]["summary"]) for side in sides]
    report.table(rows, floatfmt=".4f", caption="Loss summary per shifted modality")
    _minimum_sentences(report, alphas, lo_, sides, "total loss")
    for side in sides:
        report.figure(
            f"geometry_loss_{side}.png",
            f"Loss vs α, {side}s shifted: total, alignment, uniformity, correctly and wrongly "
            "matched pairs, each panel on its own y scale (paper Fig. 6)",
        )
        report.text(
            f"<details><summary>Loss at every α ({side}s shifted; nan = no term in that "
            "group)</summary>\n\n"
            + markdown_table(_per_alpha_rows(alphas, lo_[side]["curves"]), floatfmt=".4f")
            + "\n</details>"
        )


def _minimum_sentences(report: Report, alphas: Any, lo_: dict, sides: list, loss: str) -> None:
    """One generated sentence per shifted side: where on the α grid `loss` is lowest, and how
    far above that minimum it is at α = 0."""
    lo, hi = float(alphas[0]), float(alphas[-1])
    for side in sides:
        su = lo_[side]["summary"]
        a = su["alpha_min_total"]
        where = (
            f"at the edge of the grid [{lo:g}, {hi:g}], so the true minimum may lie beyond it"
            if a in (lo, hi)
            else "inside the grid"
        )
        at0, low = num(su["total_at_0"]), num(su["total_min"])
        report.text(
            f"{side.capitalize()}s shifted: the {loss} is lowest at α = {a:+.2f} ({where}); "
            f"at α = 0 it is {at0:.4f}, {at0 - low:.4f} above that minimum."
        )


def _sigmoid_loss(result: Any, cfg: Any, report: Report, workdir: Path) -> None:
    """The α sweep of a sigmoid-loss model: total = positive + negative."""
    lo_ = result.loss
    alphas = lo_["alphas"]
    sides = list(cfg.sides)
    for side in sides:
        fig = plots.plot_loss_vs_alpha(alphas, lo_[side]["curves"], side=side)
        save_figure(fig, workdir, f"geometry_loss_{side}")
    scale_src = "set in the config" if cfg.logit_scale > 0 else "the model's own learned value"
    report.section("Sigmoid loss vs the position of the ellipsoid", level=2)
    report.text(_sigmoid_intro(lo_, result.pairs["n_pairs"], scale_src))
    rows = [_sigmoid_summary_row(side, lo_[side]["summary"]) for side in sides]
    report.table(rows, floatfmt=".4f", caption="Sigmoid loss summary per shifted modality")
    _minimum_sentences(report, alphas, lo_, sides, "sigmoid loss")
    for side in sides:
        report.figure(
            f"geometry_loss_{side}.png",
            f"Sigmoid loss vs α, {side}s shifted: total, positive and negative part, each "
            "panel on its own y scale",
        )
        report.text(
            f"<details><summary>Sigmoid loss at every α ({side}s shifted)</summary>\n\n"
            + markdown_table(_sigmoid_per_alpha_rows(alphas, lo_[side]["curves"]), floatfmt=".4f")
            + "\n</details>"
        )


def _fit_rows(conformity: dict, paper: dict) -> list[dict[str, Any]]:
    rows = []
    for name in ("image", "text"):
        for kind in ("raw", "normalised"):
            fit = conformity[name][kind]
            raw = kind == "raw"
            row = {
                "modality": name,
                "mean used": "raw m (paper, Eq. 11)" if raw else "normalised m̂ (exact)",
                "a": num(fit["a"]),
                "b": num(fit["b"]),
                "a closed form": None if raw else num(fit["a_exact"]),
                "b closed form": None if raw else num(fit["b_exact"]),
                "Pearson": num(fit["pearson"]),
                "max abs. error": num(fit["max_abs_error"]),
            }
            if paper and raw:
                row["paper a, b, Pearson"] = (
                    f"{paper[f'conformity_a_{name}']}, {paper[f'conformity_b_{name}']}, "
                    f"{paper[f'conformity_pearson_{name}']}"
                )
            rows.append(row)
    return rows


def _fit_panels(result: Any) -> dict[str, dict[str, Any]]:
    panels = {}
    for name in ("image", "text"):
        panel: dict[str, Any] = {"conformity": getattr(result, f"conformity_{name}")}
        for kind in ("raw", "normalised"):
            fit = result.conformity[name][kind]
            panel[kind] = {
                "cos": getattr(result, f"cos_{kind}_{name}"),
                "a": num(fit["a"]),
                "b": num(fit["b"]),
                "pearson": num(fit["pearson"]),
            }
        panels[name] = panel
    return panels


def conformity(result: Any, cfg: Any, report: Report, workdir: Path, paper: dict) -> None:
    """Conformity, its estimate from the raw mean and its exact form from the normalised mean."""
    fig = plots.plot_conformity_fit(_fit_panels(result), max_points=int(cfg.max_scatter_points))
    name = save_figure(fig, workdir, "geometry_conformity_fit")
    report.section("Conformity and its estimate from the mean", level=2)
    report.text(
        "Conformity C(v_j) = 1/(N−1) Σ_{k≠j} cos(v_j, v_k) is the mean cosine of an embedding to "
        "every other member of its modality (Eq. 10): high for common content, low for unusual "
        "content. It is computed exactly here. The paper estimates it from one vector, "
        "Ĉ = a·cos(v, m) + b with m the mean of the *raw* vectors (Eq. 11; COCO: Pearson "
        f"{P['conformity_pearson_image']}, a = {P['conformity_a_image']}, b = "
        f"{_minus(P['conformity_b_image'])} for images, a = {P['conformity_a_text']}, b = "
        f"{_minus(P['conformity_b_text'])} for text).\n\n"
        "**Exact identity.** With unit vectors x_i = v_i/‖v_i‖ and S = Σ_j x_j, "
        "C_i = (x_i·S − 1)/(N − 1). So with the mean of the *normalised* vectors, m̂ = S/N, "
        "conformity is exactly affine in the cosine: C_i = a·cos(v_i, m̂) + b with "
        "a = N‖m̂‖/(N − 1) and b = −1/(N − 1), Pearson exactly 1. The raw-mean estimate is the "
        "approximation; both are fitted by least squares below, with the closed-form a, b for "
        "the normalised mean beside them (they agree up to rounding)."
    )
    report.table(_fit_rows(result.conformity, paper), floatfmt=".6g",
                 caption="Fits C ≈ a·cos(v, mean) + b")  # fmt: skip
    report.figure(
        name, "Conformity vs cosine to the mean, raw (left) and normalised (right) mean, "
        "with the fit (paper Fig. 9)",
    )  # fmt: skip
    scores = result.conformity.get("scores")
    if scores:
        t, b = scores["logit_scale"], scores["logit_bias"]
        report.text(
            "In this sigmoid-loss model's score units, L = t·cos + b with t = "
            f"{t:.4g} and b = {b:.4g}, the mean score of a member to the others of its modality "
            "is t·C + b: an affine image of conformity, so each Pearson above is unchanged and "
            "the fit becomes (t·a)·cos(v, m) + (t·b_fit + b)."
        )
        report.table(
            [
                {
                    "modality": name,
                    "mean score t·C + b": num(scores[name]["mean"]),
                    "std": num(scores[name]["std"]),
                    "a (raw mean)": num(scores[name]["a"]),
                    "b (raw mean)": num(scores[name]["b"]),
                }
                for name in ("image", "text")
            ],
            floatfmt=".6g",
            caption="Conformity in score units (t·cos + b)",
        )
    examples = result.conformity.get("examples")
    if examples:
        report.text("Most and least conforming captions (the paper's Fig. 9 examples):")
        report.table(
            [{"which": "most", **e} for e in examples["most"]]
            + [{"which": "least", **e} for e in examples["least"]],
            floatfmt=".4f",
        )


def kl(result: Any, cfg: Any, report: Report, workdir: Path, paper: dict) -> None:
    """Matching the conformity distributions: KL(image ‖ text) vs α per shifted modality."""
    k_ = result.kl
    sides = [side for side in cfg.sides]
    fig = plots.plot_conformity_distributions(
        result.kl_conformity_image, result.kl_conformity_text, bins=int(cfg.kl_bins)
    )
    dist = save_figure(fig, workdir, "geometry_conformity_distributions")
    rows = []
    for side in sides:
        s = k_[side]
        fig = plots.plot_kl_vs_alpha(
            k_["alphas"], s["kl_image_text"], s["kl_text_image"], method=k_["method"], side=side
        )
        save_figure(fig, workdir, f"geometry_kl_{side}")
        row = {
            "shifted": side,
            "α at min KL": s["alpha_min"],
            "min KL(image‖text)": kl_num(s["kl_min"]),
            "KL(image‖text) at α=0": kl_num(s["kl_at_0"]),
            "KL(text‖image) at α=0": kl_num(s["kl_text_image_at_0"]),
        }
        if paper and side == "image":
            row["paper KL at α=0"] = paper["kl_at_0"]
        rows.append(row)
    report.section("Matching the conformity distributions: KL vs α", level=2)
    how = (
        f"histograms on {cfg.kl_bins} shared equal-width bins with additive smoothing "
        f"{cfg.kl_smoothing}"
        if cfg.kl_method == "histogram"
        else "Gaussians fitted to each set of conformities"
    )
    report.text(
        "Images and texts have different conformity distributions (figure below): a common "
        "image can have an unusual caption and vice versa. Shifting one modality by α·m changes "
        "its conformities (toward α = 1 its members spread around the origin and their cosines "
        "fall). KL(image ‖ text) between the two conformity distributions, estimated from "
        f"{how} (nats), measures how well they match for each α. The paper (Fig. 11, images "
        f"shifted) finds the best match near α = 0 with KL ≈ {P['kl_at_0']}: the trained offsets "
        "match the two distributions, their explanation of the modality gap. KL(text ‖ image) "
        "is drawn too (KL is not symmetric)."
    )
    report.figure(dist, "Conformity distributions at α = 0 (paper Fig. 10)")
    report.table(rows, floatfmt=".4f", caption="KL between the conformity distributions")
    for side in sides:
        report.figure(
            f"geometry_kl_{side}.png", f"KL of the conformity distributions vs α, {side}s shifted"
        )
