"""The class-agnostic study's report, second part: temperature, number of prompts, resolution."""

from __future__ import annotations

from typing import Any

from jaxclip.analysis import bootstrap
from jaxclip.report import Report, markdown_table, plots_probes, save_figure
from jaxclip.report.intervals import comparison_sentence, format_ci
from jaxclip.report.references import THESIS_CLASS_AGNOSTIC, THESIS_TAU_ENTROPY, THESIS_TAUS
from jaxclip.studies.context import RenderContext


def _identity_text() -> str:
    lo, hi = 0.5, 0.03  # the thesis's τ range quoted below
    thesis = THESIS_CLASS_AGNOSTIC
    return (
        "Two ways to put a temperature into the features: (a) logits / τ and (b) "
        "softmax(logits / τ). For a linear probe with an L2 penalty, (a) changes nothing but the "
        "penalty. With logits W x / τ + b and the objective Σ_n CE(W x_n / τ + b, y_n) + "
        "(λ/2)‖W‖², substituting W = τ V gives Σ_n CE(V x_n + b, y_n) + (λτ²/2)‖V‖²: **the probe "
        "on x / τ at strength λ is the probe on x at strength λτ²** (scikit-learn C → C / τ²; "
        "the same holds for the hinge loss of a linear SVM), with the same predictions. With a "
        "StandardScaler, (x/τ − m/τ) / (s/τ) = (x − m) / s: the features do not change at all, "
        "so (a) is exactly invariant. The thesis's rising accuracy for smaller τ "
        f"({thesis[f'tau={lo:g}']:.2f} % at τ = {lo:g} to {thesis[f'tau={hi:g}']:.2f} % at τ "
        f"= {hi:g}, no scaler, C = 1) is therefore the same SVM with a weaker penalty "
        f"(C = {1 / lo**2:.0f} … {1 / hi**2:.0f}), not sharper features. Only (b), a non-linear "
        "map, can change what a linear probe separates — and it has two limits: for large τ, "
        "softmax(z/τ) ≈ (1 + (z − z̄)/τ) / K is an affine map of the logits minus their "
        "per-image mean, so (b) tends to (a) on centred logits; for small τ it tends to the "
        "one-hot of the best-matching prompt and keeps nothing but that argmax."
    )


def temperature_section(
    report: Report, r: Any, out: RenderContext, cfg: Any, thesis_match: bool
) -> None:
    """(a) logits / τ vs (b) softmax(logits / τ): the identity, the sweeps and their tables."""
    report.section("Temperature: regularisation or a new feature?", level=2)
    report.text(_identity_text())
    if r.tau_l2_equivalence:
        _equivalence(report, r, cfg)
    for scaling, tr in r.temperature.items():
        _sweep(report, r, out, scaling, tr)
    if r.temperature:
        report.text(_tau_table_intro(thesis_match))
        report.table(_tau_table(r, thesis_match), floatfmt=".2f")
        said = sweep_comparison_text(r.temperature)
        if said:
            report.text(said)
        full = [
            {
                "features": scaling,
                "τ": row["tau"],
                "mean H": row["mean_entropy"],
                "top-1 prob %": 100 * row["mean_confidence"],
                "(a) logits/τ %": 100 * row["acc_logits_over_tau"],
                "(a) via λτ² %": 100 * row["acc_logits_at_l2_tau2"],
                "λ effective": row["l2_effective"],
                "(b) softmax %": 100 * row["acc_softmax_logits_over_tau"],
            }
            for scaling, tr in r.temperature.items()
            for row in tr["rows"]
        ]
        report.text(
            "<details><summary>Every τ of the sweeps (click to expand)</summary>\n\n"
            + markdown_table(full, floatfmt=".4g")
            + "\n</details>"
        )
    if r.svc_tau:
        published = r.published_thesis or {}
        report.text(
            "SVC(linear, C = 1, no scaler) on logits / τ, as the thesis ran it (equal to "
            "SVC(C / τ²) on the logits):"
        )
        rows = [
            {
                "τ": s["tau"],
                "test acc %": format_ci(s.get("test_accuracy_ci"), s["test_accuracy"]),
                "thesis %": published.get(f"tau={s['tau']:g}") if thesis_match else None,
            }
            for s in r.svc_tau
        ]
        report.table(rows, floatfmt=".2f")
        if r.svc_tau_comparisons:
            report.text(tau_comparison_text(r.svc_tau_comparisons))


VARIANT_NAMES = {
    "acc_logits_over_tau": "(a) logits / τ",
    "acc_softmax_logits_over_tau": "(b) softmax(logits / τ)",
}


def sweep_comparison_text(temperature: dict[str, dict[str, Any]]) -> str | None:
    """The thesis's neighbouring temperatures of each sweep and variant in words, from their
    stored paired tests (None when no sweep holds any)."""
    parts = []
    for scaling, tr in temperature.items():
        for key, comps in (tr.get("comparisons") or {}).items():
            clear = sum(c["distinguishable"] for c in comps)
            parts.append(
                f"{VARIANT_NAMES.get(key, key)}, {scaling} features: {clear} of {len(comps)} "
                "distinguishable (" + "; ".join(comparison_sentence(c) for c in comps) + ")"
            )
    if not parts:
        return None
    return (
        "Brackets: 95 % percentile bootstrap intervals over the test images "
        f"({bootstrap.DEFAULT_RESAMPLES} resamples, seeded). Neighbouring thesis temperatures "
        "on the same test images (difference in points with its paired bootstrap interval; "
        "McNemar's exact test, Holm-adjusted over each sweep's pairs of one variant; "
        f"distinguishable from noise when the adjusted p is at most {bootstrap.ALPHA}). "
        + ". ".join(parts)
        + "."
    )


def tau_comparison_text(comps: list[dict[str, Any]]) -> str:
    """Neighbouring τ of the SVC table in words, from their stored paired tests."""
    clear = sum(c["distinguishable"] for c in comps)
    return (
        "Brackets: 95 % percentile bootstrap intervals over the test images "
        f"({bootstrap.DEFAULT_RESAMPLES} resamples, seeded). Neighbouring τ on the same test "
        "images (difference in points with its paired bootstrap interval; McNemar's exact "
        f"test, Holm-adjusted over the {len(comps)} pair(s); distinguishable from noise when "
        f"the adjusted p is at most {bootstrap.ALPHA}): {clear} of {len(comps)} "
        "distinguishable. " + "; ".join(comparison_sentence(c) for c in comps) + "."
    )


def equivalence_sentence(rows: list[dict[str, Any]], small: float = 1e-5) -> str:
    """The measured agreement of the two sides: "equal within X" only when every fit converged
    and the largest relative objective gap X is <= `small`; otherwise what was measured."""
    gap = max(float(e.get("objective_gap", float("inf"))) for e in rows)
    same = min(float(e["same_predictions"]) for e in rows)
    bad = [e["tau"] for e in rows if not (e.get("converged_left") and e.get("converged_right"))]
    if not bad and gap <= small:
        return (
            f"Objectives equal within {gap:.1e} (relative), "
            f"{100 * same:.2f} % or more identical test predictions."
        )
    note = f"fits not converged at τ = {', '.join(f'{t:g}' for t in bad)}; " if bad else ""
    return (
        f"Measured: {note}largest relative objective gap {gap:.2e}, "
        f"{100 * same:.2f} % identical test predictions at worst."
    )


def _solver_note(rows: list[dict[str, Any]]) -> str:
    """How the fits were solved, with the largest final gradient measured (older results have
    no polish fields: the L-BFGS alone)."""
    if not all(e.get("polished") for e in rows):
        return "float32 L-BFGS at a tight tolerance"
    g = max(max(float(e["grad_left"]), float(e["grad_right"])) for e in rows)
    return f"float32 L-BFGS refined by float64 Newton steps, final gradients ≤ {g:.1e}"


def _equivalence(report: Report, r: Any, cfg: Any) -> None:
    eq = r.tau_l2_equivalence
    report.text(
        f"The identity, checked numerically with `tau_l2_equivalence` (JAX logistic probes "
        f"on {eq['num_train']} training images, no scaler, "
        f"λ = {cfg.sweep_l2:g}, {_solver_note(eq['rows'])}): left, the probe on x / τ at λ; "
        "right, the probe on x at λτ². " + equivalence_sentence(eq["rows"]) + " The last two "
        "columns add a StandardScaler, which makes the accuracy the same for every τ."
    )
    rows = [
        {
            "τ": e["tau"],
            "λτ²": e["l2_times_tau2"],
            "acc x/τ at λ %": 100 * e["acc_x_over_tau_at_l2"],
            "acc x at λτ² %": 100 * e["acc_x_at_l2_tau2"],
            "objective left": e["objective_left"],
            "objective right": e["objective_right"],
            "objective gap": e.get("objective_gap"),
            "converged": bool(e.get("converged_left") and e.get("converged_right")),
            "max|W_τ − τW′| / max|W_τ|": e["rel_coef_diff"],
            "same predictions %": 100 * e["same_predictions"],
            "std. x/τ %": 100 * e["acc_standardized_x_over_tau"],
            "std. x %": 100 * e["acc_standardized_x"],
        }
        for e in eq["rows"]
    ]
    report.table(rows, floatfmt=".6g")


def _sweep(report: Report, r: Any, out: RenderContext, scaling: str, tr: dict) -> None:
    rows, k, l2 = tr["rows"], r.num_prompts, tr["l2"]
    taus = [row["tau"] for row in rows]
    how = (
        "no scaler (the thesis's setting: τ acts as the regularisation)"
        if scaling == "raw"
        else "a StandardScaler per τ (fitted on the training features)"
    )
    fig = plots_probes.plot_temperature_accuracy(
        taus,
        [row["acc_logits_over_tau"] for row in rows],
        [row["acc_softmax_logits_over_tau"] for row in rows],
        acc_scaled_via_l2=[row["acc_logits_at_l2_tau2"] for row in rows],
        points=tr["points"],
        title=f"Logistic probe (λ = {l2:g}) vs τ, {scaling} features (K = {k})",
    )
    name = save_figure(fig, out.workdir, f"class_agnostic_tau_accuracy_{scaling}.png")
    best_b, gap = tr["best_softmax"], tr["max_identity_gap"]
    report.text(
        f"**Sweep with {how}.** A logistic probe at fixed λ = {l2:g} (C = "
        f"{1 / l2:g}) on the whole train split for each of {len(taus)} temperatures "
        f"({min(taus):.3g} … {max(taus):.3g}, log-spaced, plus the thesis's). Curve "
        "(a) is fitted directly on logits / τ; the crosses are the same accuracies obtained "
        "through the identity, all from the untouched logits at λτ² (one warm-started "
        "regularisation path). They agree to "
        f"{100 * gap:.2f} points at most (the solver tolerance, "
        f"{round(gap * r.num_test)} of {r.num_test} "
        "test images). Curve (b), softmax(logits / τ), is a different feature set for each "
        f"τ: its best accuracy here is {100 * best_b['accuracy']:.2f} % at τ = "
        f"{best_b['tau']:.3g} (read off the test set, for insight only)."
    )
    report.figure(name, f"Test accuracy vs τ, {scaling} features")


def _tau_table_intro(thesis_match: bool) -> str:
    txt = (
        "At the thesis's temperatures, the raw cosines (τ = 1) and the model's own τ = 1/s: "
        "mean entropy of the test softmax and the probes' test accuracy for (a) and (b)."
    )
    if thesis_match:
        txt += (
            " The thesis's columns are its Table 4.1 (linear SVC, C = 1, no scaler, on "
            "logits / τ): compare them with our (a) on raw features — the same experiment with "
            "a logistic instead of a hinge loss."
        )
    return txt


def _tau_table(r: Any, thesis_match: bool) -> list[dict[str, Any]]:
    published = r.published_thesis or {}
    first = next(iter(r.temperature.values()))
    taus = [row["tau"] for row in first["rows"]]
    picks: list[tuple[str, float, int | str]] = [("raw cosines", 1.0, "raw")]
    if "model" in first["points"]:
        picks.append(("model scale", first["points"]["model"]["tau"], "model"))
    for tau in THESIS_TAUS:
        hit = [i for i, t in enumerate(taus) if abs(t - tau) <= 1e-9 * tau]
        if hit:
            picks.append(("thesis τ", tau, hit[0]))
    rows = []
    for label, tau, where in picks:
        row: dict[str, Any] = {"": label, "τ": f"{tau:.3g}"}
        h = (
            first["points"][where]["mean_entropy"]
            if isinstance(where, str)
            else float(first["rows"][where]["mean_entropy"])
        )
        row["mean H"] = f"{h:.4f}"
        if thesis_match:
            th = (
                published.get("mean entropy at raw cosines")
                if where == "raw"
                else THESIS_TAU_ENTROPY.get(tau)
            )
            row["thesis H"] = None if th is None else f"{th:.4f}"
            row["thesis SVC %"] = (
                published.get("raw cosines, SVC")
                if where == "raw"
                else published.get(f"tau={tau:g}")
            )
        for scaling, tr in r.temperature.items():
            if isinstance(where, str):
                a = format_ci(None, tr["points"][where]["acc_scaled"])
                b = format_ci(None, tr["points"][where]["acc_softmax"])
            else:
                g = tr["rows"][where]
                a = format_ci(g.get("acc_logits_over_tau_ci"), g["acc_logits_over_tau"])
                b = format_ci(
                    g.get("acc_softmax_logits_over_tau_ci"), g["acc_softmax_logits_over_tau"]
                )
            row[f"(a) {scaling} %"] = a
            row[f"(b) {scaling} %"] = b
        rows.append(row)
    return rows


def prompt_count_section(report: Report, r: Any, out: RenderContext, cfg: Any) -> None:
    """Probe accuracy vs the number of nested generic prompts, beside the reference rows."""
    pc, d, scale = r.prompt_count, r.dim, r.logit_scale
    count_rows = pc["rows"]
    dropped = [
        int(s) for s in (r.dropped_prompt_counts if r.dropped_prompt_counts is not None else [])
    ]
    report.section("Number of prompts", level=2)
    report.text(
        f"Nested prefixes of `{cfg.prompt_count_set}` (generic16 ⊂ generic32 ⊂ generic100 ⊂ "
        f"generic200 ⊂ generic400: the first K prompts of the set), a logistic probe at "
        f"fixed λ = {cfg.prompt_count_l2:g} on the standardised cosines and on "
        f"softmax(cosines / τ) at the model's own τ = 1/s = {1 / scale:.4g} (also "
        "standardised), trained on the whole train split. *Rank* is the rank of the K "
        f"normalised prompt embeddings in the {d}-d space: once it reaches {d}, more prompts "
        "add no linear information (the cosines are a linear map of the normalised "
        "embedding), only redundancy for the regulariser."
        + (
            f" Sizes {', '.join(map(str, dropped))} exceed the set and are left out."
            if dropped
            else ""
        )
    )
    report.table(
        [
            {
                "K prompts": c["num_prompts"],
                "rank": c["rank"],
                "cosines: test %": 100 * c["accuracy"],
                "cosines: train %": 100 * c["train_accuracy"],
                "softmax at 1/s: test %": 100 * c["accuracy_softmax"],
            }
            for c in count_rows
        ],
        floatfmt=".2f",
    )
    series = {
        "softmax(cosines · s), test": [
            {"num_prompts": c["num_prompts"], "accuracy": c["accuracy_softmax"]} for c in count_rows
        ]
    }
    sizes = [c["num_prompts"] for c in count_rows]
    for key, label in (("ceiling", "ceiling: probe on the normalised embedding"),
                       ("zero_shot", "zero-shot (class names)")):  # fmt: skip
        ref = r.reference_methods.get(key)
        if ref:
            series[label] = [{"num_prompts": s, "accuracy": ref["test_accuracy"]} for s in sizes]
    fig = plots_probes.plot_prompt_count(
        [{"num_prompts": c["num_prompts"], "accuracy": c["accuracy"]} for c in count_rows],
        label="standardised cosines, test",
        series=series,
        rank_cap=d,
        title=f"Probe accuracy vs number of generic prompts (D = {d})",
    )
    name = save_figure(fig, out.workdir, "class_agnostic_prompt_count.png")
    report.figure(
        name,
        "Test accuracy vs K (flat lines: references; dotted: K = D, beyond which the prompts' rank "
        "cannot grow)",
    )


def resolution_section(report: Report, out: RenderContext) -> None:
    """How to ask the thesis's resolution question: a second run on another dataset."""
    report.section("Image resolution", level=2)
    dataset = out.config.dataset
    base = dataset.split("/")[0]
    report.text(
        "The thesis also asks whether low-resolution images (CIFAR's 32 px, upsampled to the "
        "model's input) are what limits the class-agnostic features, and compares with "
        "Imagenette. That is a second run on another dataset, never two datasets in one "
        "study: e.g. `python -m experiments.class_agnostic "
        "--config=configs/class_agnostic.py:mini,shapes128` (shapes drawn at 128 px) or "
        "`:mini,shapes32` (32 px, CIFAR-like) against the default 64 px `:mini`, or "
        "`:vit_b32,cifar100` against `:vit_b32,imagenette`, then compare the two reports."
        + (f" This run: `{dataset}`." if base else "")
    )
