"""The class-agnostic study's report, first part: intro, probes and entropy (the temperature
and prompt-count sections are in `class_agnostic_render_tau`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxclip.data.prompts import PROMPT_SETS
from jaxclip.report import Report, plots_probes, save_figure
from jaxclip.report.references import THESIS_CLASS_AGNOSTIC, THESIS_TAU_ENTROPY, THESIS_TAUS
from jaxclip.studies import class_agnostic_render_tau as tau_sections
from jaxclip.studies.context import RenderContext, Section
from jaxclip.studies.probe_common import (
    SVC_COST_NOTE,
    flag_unconverged,
    method_rows,
    unconverged_note,
)
from jaxclip.studies.shared import overlap_note, pct, timing_note

__all__ = ["BACKGROUND_PARTS", "THESIS_TAUS", "render"]

NAME = "class_agnostic"
TITLE = "Class-agnostic logit features"
# Parts that `class_agnostic.analyse` runs on a second thread beside the probes and the τ
# sweeps: their wall times overlap the others'.
BACKGROUND_PARTS = ("equivalence", "prompt_count")


def render(result: Any, out: RenderContext) -> Section:
    """The class-agnostic study's section of the report (see `jaxclip.studies.class_agnostic`)."""
    report = Report(TITLE)
    if result.skipped is not None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    cfg = out.config[NAME]
    published = result.published_thesis or {}
    thesis_match = bool(published) and cfg.prompts == "generic32"
    _intro(report, result, out)
    _probes_section(report, result, out, cfg)
    _published(report, result, out, cfg, thesis_match)
    _entropy_section(report, result, out, cfg, thesis_match)
    tau_sections.temperature_section(report, result, out, cfg, thesis_match)
    if result.prompt_count:
        tau_sections.prompt_count_section(report, result, out, cfg)
    tau_sections.resolution_section(report, out)
    note = overlap_note(result.seconds, BACKGROUND_PARTS, "the probes and the τ sweeps ran")
    timing_note(report, result.seconds, note)
    return Section(NAME, report)


def _intro(report: Report, r: Any, out: RenderContext) -> None:
    k, d, rank = r.num_prompts, r.dim, r.prompt_rank
    shown = ", ".join(f'"{p}"' for p in tuple(PROMPT_SETS[r.prompts])[:4])
    span = (
        "they span the whole embedding space, so a linear probe on the cosines can in principle "
        "do what it does on the normalised embedding"
        if rank >= d
        else f"a linear probe on the cosines sees the image only through this {rank}-d "
        f"projection (of the {d} dimensions)"
    )
    feat = (
        "the raw cosines"
        if r.features == "cosine"
        else f"the cosines × the model's logit scale s = {r.logit_scale:.4g}"
    )
    report.text(
        f"Each image is described by its cosine similarity to K = {k} generic prompts (the "
        f"`{r.prompts}` set: {shown}, …) that name no class: f(x)_k = ⟨x/‖x‖, "
        f"t_k/‖t_k‖⟩. A probe then learns the {r.num_classes} classes of `{out.config.dataset}` "
        f"from these {k} numbers ({r.num_train} training and {r.num_test} "
        f"test images, embedded by `{out.config.model}`). The features are a linear map of the "
        f"normalised image embedding: the {k} normalised prompt embeddings have rank {rank} in "
        f"the {d}-d space, and {span}. The probes get {feat}."
    )


def _probes_section(report: Report, r: Any, out: RenderContext, cfg: Any) -> None:
    report.section("Probes on the class-agnostic features", level=2)
    k = r.num_prompts
    rows = method_rows(r.methods, r.seconds, "features")
    for key, m in r.reference_methods.items():
        rows.append(
            {
                "method": flag_unconverged(f"(reference) {m['method']}", m.get("converged")),
                "features": m["features"],
                "train acc %": None,
                "test acc %": pct(m["test_accuracy"]),
                "top-5 %": pct(m.get("top5")),
                "macro F1 %": pct(m["macro_f1"]),
                "chosen": "",
                "fit s": r.seconds.get(key),
            }
        )
    report.text(
        'The SVC is the thesis\'s probe: SVC(kernel="linear", C=1) on the features as they '
        "are, no scaler. The JAX logistic probe follows the CLIP protocol (StandardScaler, L2 "
        f"from a log grid by accuracy on a {100 * float(cfg.val_fraction):.0f} % validation "
        "split of the train split, refit on the whole train split); the MLP is trained on the "
        "rest of the train split with early stopping on the validation split. The reference "
        "rows use more than the K features: zero-shot compares the images with one prompt per "
        "class name, and the last row is the same logistic probe on the normalised image "
        f"embedding itself (everything the {k} cosines are computed from). Chance is "
        f"{100 * r.chance:.2f} %. Fit times (JAX: with compilation) vary between runs "
        "and are kept out of results.json."
    )
    report.table(rows, floatfmt=".2f")
    unconverged = [m["method"] for m in r.methods.values() if m.get("converged") is False]
    unconverged += [
        f"(reference) {m['method']}"
        for m in r.reference_methods.values()
        if m.get("converged") is False
    ]
    if note := unconverged_note(unconverged):
        report.text(note)
    if r.svc_skipped is not None:
        report.text(
            f"The thesis's SVC(linear, C={cfg.svc_c:g}) on the {k} features was skipped: "
            f"{r.svc_skipped} ({SVC_COST_NOTE}; on K = {k} features it is faster, but still "
            f"quadratic in N). Set `--config.class_agnostic.svc_max_train={r.num_train}` to run "
            "it."
        )


def _published(report: Report, r: Any, out: RenderContext, cfg: Any, thesis_match: bool) -> None:
    published = r.published_thesis or {}
    items = [(m["method"], m["test_accuracy"], "#3b6fb6") for m in r.methods.values()]
    items += [(m["method"], m["test_accuracy"], "#9a9a9a") for m in r.reference_methods.values()]
    svc = published.get("raw cosines, SVC") if thesis_match else None
    fig = plots_probes.plot_class_agnostic_probes(items, r.chance, r.num_prompts, svc)
    name = save_figure(fig, out.workdir, "class_agnostic_probes.png")
    report.figure(name, "Test accuracy on the class-agnostic features")
    model, base = out.config.model, out.config.dataset.split("/")[0]
    if not thesis_match:
        if published:
            report.text(
                f"The thesis's numbers for `{model}` on `{base}` use the 32 prompts "
                f"of `generic32`; this run uses `{r.prompts}`, so they are not comparable "
                "and not shown beside ours."
            )
        return
    ours = r.methods.get("svc_linear") if r.features == "cosine" else None
    raw_pt = r.temperature["raw"]["points"]["raw"] if "raw" in r.temperature else None
    pub_rows = [
        {
            "probe": "SVC(linear, C=1), no scaler, raw cosines to the 32 generic prompts",
            "thesis %": published.get("raw cosines, SVC"),
            "ours %": pct(ours["test_accuracy"]) if ours else None,
        }
    ]
    if raw_pt is not None:
        pub_rows.append(
            {
                "probe": f"logistic, λ = {cfg.sweep_l2:g} (C = {1 / cfg.sweep_l2:g}), no "
                "scaler, raw cosines (the τ = 1 point of the sweep)",
                "thesis %": None,
                "ours %": pct(raw_pt["acc_scaled"]),
            }
        )
    why = (
        ""
        if ours
        else " Our SVC "
        + (
            "ran on cosines × s (`features = model`), not on the raw cosines"
            if "svc_linear" in r.methods
            else "was skipped (see above)"
        )
        + "; the logistic row is the same experiment with a logistic instead of a hinge "
        "loss."
    )
    report.text(
        f"The thesis's number for `{model}` on `{base}` (HF "
        "`openai/clip-vit-base-patch32`, CIFAR-100, the 32 prompts of `generic32`)." + why
    )
    report.table(pub_rows, floatfmt=".2f")


def _entropy_rows(r: Any, cfg: Any, thesis_match: bool) -> list[dict[str, Any]]:
    ent, ln_k = r.entropy, r.entropy["ln_k"]
    published = r.published_thesis or {}

    def erow(label: str, pt: dict[str, float], thesis: float | None) -> dict[str, Any]:
        return {
            "setting": label,
            "τ": pt["tau"],
            "mean H (nats)": pt["mean_entropy"],
            "ln K − mean H": ln_k - pt["mean_entropy"],
            "std H": pt.get("std_entropy"),
            "mean top-1 prob %": 100 * pt["mean_confidence"],
            "thesis mean H": thesis,
        }

    raw_thesis = published.get("mean entropy at raw cosines") if thesis_match else None
    rows = [erow("raw cosines", ent["raw"], raw_thesis)]
    if ent["model"]:
        rows.append(erow(f"model logit scale s = {r.logit_scale:.4g}", ent["model"], None))
    per_tau = {round(p["tau"], 12): p for p in ent["per_tau"]}
    taus = [p["tau"] for p in ent["per_tau"]]
    std_by_tau = dict(zip(np.round(taus, 12), np.asarray(r.entropy_std)))
    for tau in sorted({float(t) for t in cfg.extra_taus}, reverse=True):
        p = per_tau.get(round(tau, 12))
        if p is None:
            continue
        pt = {**p, "std_entropy": float(std_by_tau[round(tau, 12)])}
        thesis = THESIS_TAU_ENTROPY.get(tau) if thesis_match else None
        rows.append(erow("τ (thesis table 4.1)", pt, thesis))
    if not thesis_match:
        for row in rows:
            row.pop("thesis mean H")
    return rows


def _entropy_section(
    report: Report, r: Any, out: RenderContext, cfg: Any, thesis_match: bool
) -> None:
    report.section("How close to uniform: softmax entropy", level=2)
    k, scale, ent, sp = r.num_prompts, r.logit_scale, r.entropy, r.cosine_spread
    ln_k = ent["ln_k"]
    thesis_h = THESIS_CLASS_AGNOSTIC["mean entropy at raw cosines"]
    report.text(
        f"Entropy of p = softmax(cosines / τ) over the K = {k} prompts, per test image, "
        f"H = −Σ p_k ln p_k (exact log-sum-exp form, no 1e-9 fudge); the maximum is "
        f"ln K = {ln_k:.4f} (uniform). At the raw cosines (τ = 1) the {k} cosines of one test "
        f"image span {sp['mean_range']:.3f} on average (max − min; standard deviation "
        f"{sp['mean_std']:.4f} around a mean cosine of {sp['mean_cosine']:.3f}), so the softmax "
        "is almost exactly uniform: for nearly equal logits z, ln K − H ≈ Var_k(z) / 2, here "
        f"{sp['half_mean_var']:.5f} predicted vs {ln_k - ent['raw']['mean_entropy']:.5f} "
        f"measured. That is what the thesis saw ({thesis_h:.4f} vs ln 32 = {math.log(32):.4f} "
        "with ViT-B/32 on CIFAR-100) and read as 'broadly distributed logits'. But the model "
        "never applies a softmax at τ = 1: it multiplies the cosines by its learned logit "
        f"scale s = {scale:.4g} (τ = 1/s = {1 / scale:.4g}), where the distribution is much "
        "sharper. Entropy describes the softmax, not the features: a probe on the cosines or "
        "on logits / τ never sees it (their spread, hence what a linear probe can separate, is "
        "the same at every τ); only the softmax features of (b) below depend on it."
    )
    report.table(_entropy_rows(r, cfg, thesis_match), floatfmt=".4f")
    fig = plots_probes.plot_entropy_histograms(
        _histograms(r.histogram_labels, r.histogram_counts, r.histogram_edges),
        ln_k,
        gap_histograms=_histograms(
            r.gap_histogram_labels, r.gap_histogram_counts, r.gap_histogram_edges
        ),
        title=f"Per-image softmax entropy (K = {k}, test split)",
    )
    name = save_figure(fig, out.workdir, "class_agnostic_entropy_histograms.png")
    report.figure(
        name,
        "Per-image entropy histograms (left) and their distance below ln K on a log scale (right)",
    )
    per_tau = ent["per_tau"]
    fig = plots_probes.plot_temperature_entropy(
        [p["tau"] for p in per_tau],
        [p["mean_entropy"] for p in per_tau],
        ln_k,
        mean_confidence=[p["mean_confidence"] for p in per_tau],
        points={"raw": ent["raw"], **({"model": ent["model"]} if ent["model"] else {})},
        title=f"Mean softmax entropy and top-1 confidence vs τ (K = {k})",
    )
    name = save_figure(fig, out.workdir, "class_agnostic_tau_entropy.png")
    report.figure(name, "Mean entropy (left axis) and mean top-1 probability vs τ")


def _histograms(labels: Any, counts: Any, edges: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if labels is None:
        return {}
    return {str(k): (np.asarray(c), np.asarray(e)) for k, c, e in zip(labels, counts, edges)}
