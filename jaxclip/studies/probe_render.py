"""The probe study's report: tables, figures and prose drawn from a `ProbeResult` alone."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxclip.analysis import bootstrap
from jaxclip.probes.few_shot import shots_x
from jaxclip.report import Report, markdown_table, plots_probes, save_figure
from jaxclip.report.intervals import comparison_sentence, format_ci
from jaxclip.report.references import (
    IT5005_PROBE_TOP1,
    IT5005_ZERO_SHOT_TOP1,
    THESIS_SVC_CIFAR10,
    THESIS_SVC_CIFAR100,
    THESIS_ZERO_SHOT_CIFAR100,
)
from jaxclip.studies.context import RenderContext, Section
from jaxclip.studies.probe_common import (
    BACKGROUND_PARTS,
    SVC_COST_NOTE,
    UNCONVERGED,
    flag_unconverged,
    method_rows,
    pct_or_none,
    unconverged_note,
)
from jaxclip.studies.shared import overlap_note, timing_note

NAME = "probe"
TITLE = "Probes on frozen image embeddings"


def render(result: Any, out: RenderContext) -> Section:
    """The probe study's section of the report (see `jaxclip.studies.probe`)."""
    report = Report(TITLE)
    if result.skipped is not None:
        report.text(f"Skipped: {result.skipped}.")
        return Section(NAME, report)
    cfg = out.config[NAME]
    _intro(report, result, out, cfg)
    _methods_section(report, result, out, cfg)
    _published(report, result, out)
    _path_section(report, result, out)
    if "mlp" in result.methods:
        _mlp_section(report, result, cfg)
    _few_shot_section(report, result, out, cfg)
    if result.attributes:
        _attributes_section(report, result, out)
    if result.saved_probe:
        _saved_section(report, result, out)
    note = overlap_note(result.seconds, BACKGROUND_PARTS, "the JAX probes fitted")
    timing_note(report, result.seconds, note)
    return Section(NAME, report)


def _intro(report: Report, r: Any, out: RenderContext, cfg: Any) -> None:
    drop = r.dropped
    dropped = []
    if drop["train_unlabelled"]:
        dropped.append(f"{drop['train_unlabelled']} unlabelled training rows")
    if drop["test_unlabelled"]:
        dropped.append(f"{drop['test_unlabelled']} unlabelled test rows")
    if drop["test_unseen_class"]:
        dropped.append(f"{drop['test_unseen_class']} test rows of classes absent from training")
    drop_txt = f" Left out: {', '.join(dropped)}." if dropped else ""
    feats = "L2-normalised" if r.normalized else "raw (unnormalised)"
    report.text(
        f"A probe is a classifier trained on frozen features: here the {feats} "
        f"{r.dim}-d image embeddings of `{out.config.model}`, {r.num_train} labelled "
        f"images of the train split, scored on {r.num_test} test images of "
        f"`{out.config.dataset}` ({r.num_classes} classes).{drop_txt} Every probe standardises "
        "the features (StandardScaler fitted on its training data). Where a setting is chosen "
        "(C, L2, MLP width / weight decay / seed), it is chosen on a validation split: a seeded "
        f"random {100 * float(cfg.val_fraction):.0f} % of the train split ({r.num_val} "
        f"images; the other {r.num_fit} are the *fit part*). Chance is 1/C = "
        f"{100 * r.chance:.2f} % (always answering the most frequent test class: "
        f"{100 * r.majority:.2f} %)."
    )
    report.text(_protocol_text(getattr(r, "protocol", None) or "jaxclip"))


def _protocol_text(protocol: str) -> str:
    """The sentence naming `config.probe.protocol` (jaxclip.probes.protocols)."""
    extra = {
        "clip_paper": " The row *CLIP paper protocol* adds the CLIP paper's probe (L-BFGS "
        "logistic regression on the raw features, lambda from 25 log-spaced values 1e-6 ... 1e6 "
        "chosen on the validation split, refit on the whole train split, at most 1000 "
        "iterations); its chosen lambda is in the table.",
        "clip_benchmark": " The row *CLIP_benchmark protocol* adds CLIP_benchmark's probe "
        "(AdamW on L2-normalised features, lr 0.1, 10 epochs, batch 64, cosine schedule, weight "
        "decay chosen by its coarse-to-fine search on the validation split, refit on the whole "
        "train split); its chosen weight decay is in the table.",
    }
    return f"Probe protocol: `{protocol}`.{extra.get(protocol, '')}"


def _methods_section(report: Report, r: Any, out: RenderContext, cfg: Any) -> None:
    report.section("Probes", level=2)
    rows = method_rows(r.methods, r.seconds, "trained on")
    zs = r.zero_shot
    if zs is not None:
        rows.append(
            {
                "method": f'zero-shot ("{zs["template"]}"), no labels',
                "trained on": "—",
                "train acc %": None,
                "test acc %": format_ci(zs.get("top1_ci"), zs["top1"]),
                "top-5 %": pct_or_none(zs["top5"]),
                "macro F1 %": pct_or_none(zs["macro_f1"]),
                "chosen": "—",
                "fit s": None,
            }
        )
    report.text(
        "Test accuracy is top-1 on the test split; macro F1 is the unweighted mean of the "
        "per-class F1. *Train* accuracy is measured on the probe's own training data (the SVC's "
        "on at most 10k random training images): a large train–test gap means the probe "
        "memorises. Top-5 is shown for the probes that give scores for every class (empty for "
        "the SVMs, whose scikit-learn API returns only a label here, and for C ≤ 5). "
        '"Chosen" is the setting the validation split picked; scikit-learn C = 1 / L2. The '
        "last column is the wall time of the fit (selection and refit included; JAX times "
        "include compilation): it varies between runs and is kept out of results.json."
    )
    report.table(rows, floatfmt=".2f")
    if note := unconverged_note(
        [m["method"] for m in r.methods.values() if m.get("converged") is False]
    ):
        report.text(note)
    if r.comparisons:
        report.text(_comparisons_text(r))
    if r.svc_skipped is not None:
        report.text(
            f"The thesis's SVC(linear, C={cfg.svc_c:g}) baseline was skipped: {r.svc_skipped} "
            f"({SVC_COST_NOTE}). Set `--config.probe.svc_max_train={r.num_train}` to run it."
        )
    if r.val_test_gap > 0.03:
        at = r.methods["jax_logistic"]["val_accuracy_at_chosen"]
        report.text(
            f"Note: at the chosen L2 the JAX logistic probe (fit part) scores "
            f"{100 * at:.2f} % on the validation "
            f"images but {100 * (at - r.val_test_gap):.2f} % "
            "on the test images. The validation images come from the train split: when the "
            "model was trained on that split (the offline mini-CLIP is trained contrastively on "
            "the shapes train split), its embeddings of those images are in-sample and easier "
            "to separate; otherwise the splits differ in distribution. Validation accuracy "
            "then overstates test accuracy, for every probe alike."
        )
    fig = plots_probes.plot_probe_methods(
        r.methods, zs, r.published_percent or {}, r.chance, r.num_classes
    )
    name = save_figure(fig, out.workdir, "probe_methods.png")
    report.figure(name, "Test accuracy of each probe (dashed: zero-shot; dotted: chance)")


def _comparisons_text(r: Any) -> str:
    """Each probe vs zero-shot on the same test images, in words, from the stored tests."""
    comps = r.comparisons
    clear = sum(c["distinguishable"] for c in comps)
    sentences = "; ".join(
        comparison_sentence(c, f"{r.methods[c['a']]['method']} vs zero-shot") for c in comps
    )
    return (
        "Brackets: 95 % percentile bootstrap intervals over the test images "
        f"({bootstrap.DEFAULT_RESAMPLES} resamples, seeded). Each probe against zero-shot on the "
        "same test images (difference in points with its paired bootstrap interval; McNemar's "
        f"exact test, Holm-adjusted over the {len(comps)} probe(s); distinguishable from noise "
        f"when the adjusted p is at most {bootstrap.ALPHA}): {clear} of {len(comps)} "
        f"distinguishable. {sentences}."
    )


def _published(report: Report, r: Any, out: RenderContext) -> None:
    model, dataset = out.config.model, out.config.dataset
    published = r.published_percent
    if not published:
        report.text(
            f"No published probe numbers are on file for `{model}` on `{dataset}` "
            "(jaxclip.report.references.LINEAR_PROBE); the thesis reports SVC(linear, C=1) "
            f"{THESIS_SVC_CIFAR10:.2f} % on CIFAR-10 and {THESIS_SVC_CIFAR100:.2f} % on CIFAR-100 "
            "with ViT-B/32."
        )
        return
    pub_rows = [{"source": k, "test acc %": v} for k, v in published.items()]
    ours_rows = [m for key, m in r.methods.items() if key != "mlp"]
    pub_rows += [
        {
            "source": flag_unconverged(f"ours: {m['method']}", m.get("converged")),
            "test acc %": pct_or_none(m["test_accuracy"]),
        }
        for m in ours_rows
    ]
    ours = r.methods.get("svc_linear")
    report.text(
        f"Published numbers for `{model}` on `{dataset.split('/')[0]}`: the thesis's "
        "StandardScaler + SVC(linear, C=1) on HF `openai/clip-vit-base-patch32` image "
        "embeddings of the whole train split, beside our linear probes. Differences of a "
        "fraction of a point also come from preprocessing (resize/crop details)."
        + ("" if ours else " Our SVC was skipped (see above); the other linear probes compare.")
    )
    report.table(pub_rows, floatfmt=".2f")
    if note := unconverged_note([m["method"] for m in ours_rows if m.get("converged") is False]):
        report.text(note)


def _path_section(report: Report, r: Any, out: RenderContext) -> None:
    report.section("Regularisation path of the JAX logistic probe", level=2)
    rows = r.jax_logistic_path
    ref = None
    if r.sklearn_val is not None and len(r.sklearn_val):
        cs = sorted(float(c) for c in np.asarray(r.sklearn_val)[:, 0])
        val = {float(c): float(a) for c, a in np.asarray(r.sklearn_val)}
        ref = {"scikit-learn val (C = 1/L2)": ([1.0 / cc for cc in cs], [val[cc] for cc in cs])}
    fig = plots_probes.plot_regularization_path(
        [p["l2"] for p in rows],
        {k: [p[f"{k}_accuracy"] for p in rows] for k in ("train", "val", "test")},
        chosen=float(r.methods["jax_logistic"]["l2"]),
        reference=ref,
        title="JAX logistic probe: accuracy vs L2 strength (fit part)",
    )
    name = save_figure(fig, out.workdir, "probe_regularization_path.png")
    report.text(
        f"All {len(rows)} strengths are fitted on the fit part in ONE batched L-BFGS "
        "solve (the strengths stacked on the class axis share every matmul; "
        "`jaxclip.probes.linear.logistic_path`) and scored on train, validation and test. The "
        "strength with the best validation accuracy is chosen (ties: the stronger) and refitted "
        "on the whole train split; the objective is scikit-learn's, so L2 = 1 / C and the "
        "scikit-learn curve (validation accuracy of its own fits) should lie on ours. Test "
        "accuracy is shown for insight only: it never takes part in the choice."
    )
    report.figure(name, "Accuracy vs L2 strength; dotted: the chosen strength")
    if note := _path_convergence(rows, r.methods["jax_logistic"]):
        report.text(note)
    table = [
        {
            "L2": p["l2"],
            "C": p["C"],
            "train %": 100 * p["train_accuracy"],
            "val %": 100 * p["val_accuracy"],
            "test %": 100 * p["test_accuracy"],
            "L-BFGS steps": p["n_iter"],
            "converged": p["converged"],
        }
        for p in rows
    ]
    report.text(
        "<details><summary>The path as a table (click to expand)</summary>\n\n"
        + markdown_table(table, floatfmt=".4g")
        + "\n</details>"
    )


def _path_convergence(rows: list[dict[str, Any]], chosen: dict[str, Any]) -> str | None:
    """A sentence on the path fits and the refit that did not converge (None: all did)."""
    bad = [p for p in rows if not p["converged"]]
    refit = chosen.get("converged") is False
    if not bad and not refit:
        return None
    parts = []
    if bad:
        l2s = ", ".join(f"{p['l2']:.3g}" for p in bad)
        parts.append(
            f"{len(bad)} of the {len(rows)} path fits stopped at the L-BFGS step cap before "
            f"converging (L2 = {l2s})"
        )
    if refit:
        parts.append(
            f"the refit at the chosen L2 = {chosen['l2']:.3g} did not converge either, so the "
            f"probe's numbers above carry the {UNCONVERGED} mark"
            if bad
            else f"the refit at the chosen L2 = {chosen['l2']:.3g} stopped at the step cap "
            f"before converging, so the probe's numbers above carry the {UNCONVERGED} mark"
        )
    text = "; ".join(parts)
    return f"Note: {text}."


def _mlp_section(report: Report, r: Any, cfg: Any) -> None:
    m, grid = r.methods["mlp"], r.mlp_grid
    report.section("MLP probe", level=2)
    report.text(
        f"Standardised features → [Dense → ReLU] × {cfg.mlp_layers} → Dense, softmax "
        f"cross-entropy, adamw (decoupled weight decay on the kernels), minibatches of "
        f"{cfg.mlp_batch_size}, at most {cfg.mlp_epochs} epochs with early stopping "
        f"(patience {cfg.mlp_patience}) on validation accuracy; the best epoch's weights are "
        f"kept. The grid — widths {tuple(cfg.mlp_widths)} × learning rates "
        f"{tuple(cfg.mlp_learning_rates)} × weight decays {tuple(cfg.mlp_weight_decays)} × "
        f"dropouts {tuple(cfg.mlp_dropouts)} × seeds {tuple(cfg.mlp_seeds)}, {len(grid)} "
        "members — is trained one width at a time, all members of a width in one vmapped "
        "computation (`jaxclip.probes.mlp.fit_mlp`). The member with the best validation "
        f"accuracy wins: {m['chosen']}, validation {100 * m['val_accuracy']:.2f} %, test "
        f"{100 * m['test_accuracy']:.2f} %. The MLP is trained on the fit part only (its "
        "validation split is also its stopping rule)."
    )
    table = [
        {
            "hidden": "×".join(str(h) for h in g["hidden"]),
            "lr": g["lr"],
            "weight decay": g["wd"],
            "dropout": g["dropout"],
            "seed": g["seed"],
            "best val %": 100 * g["best_val_acc"],
            "best epoch": g["best_epoch"],
            "epochs run": g["epochs_run"],
        }
        for g in grid
    ]
    report.text(
        "<details><summary>All grid members (click to expand)</summary>\n\n"
        + markdown_table(table, floatfmt=".4g")
        + "\n</details>"
    )


def _few_shot_section(report: Report, r: Any, out: RenderContext, cfg: Any) -> None:
    report.section("Labelled examples vs zero-shot", level=2)
    curve, zs = r.few_shot, r.zero_shot
    xs = [shots_x(row) for row in curve]
    fig = plots_probes.plot_few_shot(curve, xs, zs["top1"] if zs else None, r.chance)
    name = save_figure(fig, out.workdir, "probe_few_shot.png")
    skipped = [int(k) for k in (r.skipped_shots if r.skipped_shots is not None else [])]
    skip_txt = (
        f" Shot counts {', '.join(map(str, skipped))} are skipped: the rarest class has "
        "fewer examples than that in the fit part."
        if skipped
        else ""
    )
    report.text(
        "The CLIP paper's few-shot view (its Fig. 6-7): the JAX logistic probe trained on k "
        f"random labelled images per class from the fit part ({cfg.shot_repeats} draws per k; "
        "mean ± std), its L2 chosen on the validation split (which therefore also uses labels: "
        "the x axis counts training examples), no refit; the last point uses the whole fit "
        "part. Zero-shot uses no labels at all: its accuracy is the horizontal line." + skip_txt
    )
    report.figure(name, "Test accuracy vs labelled examples per class")
    table = [
        {
            "examples per class": row["shots"]
            if row["shots"] != "all"
            else f"all (≈ {row['per_class']:.0f})",
            "labelled images": row["num_labelled"],
            "mean test acc %": 100 * row["mean_accuracy"],
            "std %": 100 * row["std_accuracy"],
            "chosen L2": ", ".join(f"{v:.3g}" for v in row["l2"]),
        }
        for row in curve
    ]
    report.table(table, floatfmt=".2f")
    if zs is None:
        report.text("Zero-shot needs class names; this dataset has none, so no line is drawn.")
        return
    report.text(_trade_off(r, zs))


def _trade_off(r: Any, zs: dict[str, Any]) -> str:
    best_probe = max(r.methods.values(), key=lambda m: m["test_accuracy"])
    worth = r.zero_shot_worth_shots or {}
    if worth.get("worth") is not None:
        at = (
            "only with the whole fit part"
            if worth["first_k"] == "all"
            else f"at k = {worth['first_k']} labelled images per class"
        )
        cross = (
            f"The probe overtakes zero-shot {at}; interpolating log-linearly between the "
            f"two bracketing points, zero-shot is worth ≈ {worth['worth']:.1f} labelled "
            "images per class here."
        )
    elif worth.get("note"):
        cross = worth["note"][0].upper() + worth["note"][1:] + "."
    else:
        cross = ""
    gain = best_probe["test_accuracy"] - zs["top1"]
    return (
        f'Zero-shot with "{zs["template"]}" reaches {100 * zs["top1"]:.2f} % '
        f"top-1 on these test images without a single label; the best probe "
        f"({best_probe['method']}) reaches {100 * best_probe['test_accuracy']:.2f} % "
        f"({100 * gain:+.2f} points) with {r.num_train} labelled images. {cross} "
        "The trade-off of the sources: a probe adapts to the dataset's own decision "
        f"boundaries (CIFAR-100: {THESIS_SVC_CIFAR100:.2f} % SVC vs {THESIS_ZERO_SHOT_CIFAR100:.2f} % "
        f"zero-shot; an ImageNet subset: {IT5005_PROBE_TOP1:.2f} % vs "
        f"{IT5005_ZERO_SHOT_TOP1:.2f} %), zero-shot needs no labels and keeps the "
        "open vocabulary."
    )


def _attributes_section(report: Report, r: Any, out: RenderContext) -> None:
    rows = list(r.attributes.values())
    report.section("What the embedding encodes: one probe per attribute", level=2)
    report.text(
        "Besides the class this dataset labels every image with the attributes below. A "
        "JAX logistic probe per attribute (L2 by validation accuracy, fitted on the fit "
        "part, one batched solve each) shows how linearly decodable each attribute is from "
        "the same image embedding. Compare with the zero-shot study's attribute table: "
        "an attribute that a probe reads off well but zero-shot misses is encoded in the "
        "image embedding yet not aligned with the words of its prompt. Chance is 1/K for "
        "K values; majority is always answering the most frequent value."
    )
    table = [
        {
            "attribute": a["attribute"],
            "values": a["values"],
            "probe test acc %": 100 * a["test_accuracy"],
            "chance 1/K %": 100 * a["chance"],
            "majority %": 100 * a["majority"],
            "chosen L2": a["l2"],
        }
        for a in rows
    ]
    report.table(table, floatfmt=".2f")
    fig = plots_probes.plot_probe_attributes(
        rows, r.methods["jax_logistic"]["test_accuracy"], r.chance, r.num_classes
    )
    name = save_figure(fig, out.workdir, "probe_attributes.png")
    report.figure(name, "Probe accuracy per attribute against chance")


def _saved_section(report: Report, r: Any, out: RenderContext) -> None:
    saved = r.saved_probe
    report.section("Saved probe", level=2)
    where = out.workdir / saved["file"]
    report.text(
        f"The JAX probe with the best validation accuracy ({saved['method']}, "
        f"{100 * saved['val_accuracy']:.2f} %) is saved as `{saved['file']}` in the "
        f"workdir (`{where}`): arrays and JSON metadata in one `.npz`, nothing pickled. "
        "Load it with `jaxclip.probes.io.load_probe(path)`; `probe.predict(embeddings)` "
        "takes raw image embeddings of this model"
        + (" after L2 normalisation" if r.normalized else "")
        + " and returns labels."
    )
