"""Study: probes on frozen image embeddings, and the probe vs zero-shot trade-off.

Binds the probes of `jaxclip.probes` to one model × labelled dataset (the thesis's baseline probes and the probe vs zero-shot trade-off):
image embeddings of the train split train a classifier that is scored on the test split.

* the sources' baseline, StandardScaler + SVC(kernel="linear", C=1) (the thesis's numbers are
  `jaxclip.report.references.LINEAR_PROBE`), on by default only for train splits of at most
  `svc_max_train` examples (libsvm's one-vs-one SVC is quadratic in N);
* StandardScaler + LinearSVC (liblinear);
* logistic regression with the CLIP paper's protocol (Radford et al. 2021, appendix A.3: C from
  a log grid by accuracy on a held-out validation split, then a refit on train + val at that
  C), once with scikit-learn and once with the JAX solver (`jaxclip.probes.protocol`; its
  whole regularisation path comes from one batched solve and is plotted);
* an MLP probe: a small grid of widths × weight decays × seeds, each width's grid trained in
  one vmapped computation with early stopping on the validation split;
* the few-shot view of the CLIP paper (its Fig. 6-7, `jaxclip.probes.few_shot`): test accuracy
  of the JAX logistic probe vs labelled examples per class, beside zero-shot on the same
  features, and the number of labelled examples per class zero-shot is worth;
* on datasets with extra labels (the built-in shapes: colour, size, ...), a JAX logistic probe
  per attribute against chance (`jaxclip.probes.attributes`).

The best JAX probe (by validation accuracy) is kept as the bytes of its `.npz` file
(`jaxclip.probes.io`), which `write_files` saves into the workdir. The results carry
`headline`: one {method, top1, top5, macro_f1} per probe, for the joint report's "At a glance"
table. Fit times are a timing field (results.json stays reproducible).

Error bars and paired tests (`jaxclip.analysis.bootstrap`, seeded by `config.seed`): each
probe's test accuracy and macro F1 and zero-shot's top-1 carry a 95 % bootstrap interval over
the test images (`test_accuracy_ci`, `macro_f1_ci`, `zero_shot.top1_ci`); `comparisons` tests
every probe against zero-shot on the same test images (McNemar's exact test, Holm over the
probes, the paired bootstrap interval of the difference).

Reference: A. Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip import atomic
from jaxclip.analysis import bootstrap
from jaxclip.config_args import ConfigError
from jaxclip.probes import attributes, few_shot, split
from jaxclip.probes.io import probe_bytes
from jaxclip.probes.protocol import (
    LabelledSplits,
    chance_and_majority,
    labelled_splits,
    score_probe,
    zero_shot_scores,
)
from jaxclip.probes.protocols import PROTOCOLS
from jaxclip.report.references import LINEAR_PROBE, lookup
from jaxclip.studies import probe_fits
from jaxclip.studies.context import Context, Study
from jaxclip.studies.probe_common import (
    add_intervals,
    check_mlp_config,
    check_mlp_dropouts,
    headline_rows,
)
from jaxclip.studies.probe_render import render
from jaxclip.studies.result import StudyResult, optional, sidecar, timing
from jaxclip.studies.shared import attribute_value_names, check_positive_tuple

__all__ = ["NAME", "STUDY", "ProbeResult", "analyse", "check_config", "write_files"]

NAME = "probe"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeResult(StudyResult):
    """The probe study's results.json entry (fields in its order) and what its report needs.

    Sidecars: `sklearn_val` (C, validation accuracy) rows of the scikit-learn logistic probe,
    `skipped_shots` (shot counts above the rarest class's count), `saved_probe_file` (the
    bytes of the saved probe's `.npz`); for paired comparisons between models (the sweep's
    model vs model), the test labels in split order (`test_labels`), the method keys
    (`test_methods`) and each one's predicted test labels (`test_predictions`, one row per
    method: the predictions its `test_accuracy_ci` resamples). `seconds`: wall time per part.
    """

    skipped: str | None = optional()
    num_train: int | None = optional()
    num_fit: int | None = optional()
    num_val: int | None = optional()
    num_test: int | None = optional()
    num_classes: int | None = optional()
    dim: int | None = optional()
    normalized: bool | None = optional()
    protocol: str | None = optional()  # config.probe.protocol (jaxclip.probes.protocols)
    chance: float | None = optional()
    majority: float | None = optional()
    dropped: dict[str, int] | None = optional()
    svc_skipped: str | None = optional()
    val_test_gap: float | None = optional()
    jax_logistic_path: list[dict[str, Any]] | None = optional()
    mlp_grid: list[dict[str, Any]] | None = optional()
    zero_shot: dict[str, Any] | None = optional()
    # method -> row; rows carry test_accuracy_ci and macro_f1_ci ({"value", "ci_low",
    # "ci_high", "n"}), zero_shot carries top1_ci
    methods: dict[str, dict[str, Any]] | None = optional()
    # each probe (method key) vs zero-shot on the same test images: `paired_comparisons` rows
    comparisons: list[dict[str, Any]] | None = optional()
    headline: list[dict[str, Any]] | None = optional()
    published_percent: dict[str, float] | None = optional()
    few_shot: list[dict[str, Any]] | None = optional()
    zero_shot_worth_shots: dict[str, Any] | None = optional()
    attributes: dict[str, dict[str, Any]] | None = optional()
    saved_probe: dict[str, Any] | None = optional()
    figures: list[str] | None = optional()
    sklearn_val: np.ndarray | None = sidecar()
    skipped_shots: np.ndarray | None = sidecar()
    saved_probe_file: np.ndarray | None = sidecar()
    test_labels: np.ndarray | None = sidecar()
    test_methods: np.ndarray | None = sidecar()
    test_predictions: np.ndarray | None = sidecar()
    seconds: dict[str, float] = timing()


def check_config(cfg: Any) -> None:
    """Rejects bad values of `config.probe` with one line naming the field and what is allowed."""
    if cfg.get("protocol", "jaxclip") not in PROTOCOLS:
        raise ConfigError(f"config.probe.protocol={cfg.protocol!r} must be one of {PROTOCOLS}")
    if not 0.0 < float(cfg.val_fraction) < 1.0:
        raise ConfigError(f"config.probe.val_fraction={cfg.val_fraction} must be in (0, 1)")
    for field in ("svc_c", "linear_svc_c"):
        if not float(cfg[field]) > 0:
            raise ConfigError(f"config.probe.{field}={cfg[field]} must be > 0")
    for field, lo in (("svc_max_train", 0), ("sklearn_max_iter", 1), ("max_iter", 1),
                      ("shot_repeats", 1)):  # fmt: skip
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.probe.{field}={cfg[field]} must be >= {lo}")
    check_mlp_config("probe", cfg)
    check_positive_tuple("probe.sklearn_cs", cfg.sklearn_cs)
    check_positive_tuple("probe.l2_grid", cfg.l2_grid)
    check_mlp_dropouts("probe", cfg, "rates in [0, 1)")
    if any(int(k) < 1 for k in cfg.shots):
        raise ConfigError(f"config.probe.shots={tuple(cfg.shots)} must be integers >= 1")
    if cfg.zero_shot_template.count("{}") != 1:
        raise ConfigError(
            f"config.probe.zero_shot_template={cfg.zero_shot_template!r} must contain one '{{}}'"
        )


def analyse(ctx: Context, cfg: Any) -> ProbeResult:
    """Fits every probe of `cfg` (= config.probe) on the context's train split, scores them on
    its test split, beside zero-shot; the few-shot curve and the attribute probes."""
    check_config(cfg)
    seed = int(ctx.config.get("seed", 0))
    data = labelled_splits(
        ctx.features("train"), ctx.features("test"), normalize=bool(cfg.normalize)
    )
    if isinstance(data, str):
        return ProbeResult(skipped=data)
    fit_idx, val_idx = split.train_val_split(len(data.y_train), float(cfg.val_fraction), seed)
    parts = probe_fits.Parts(data, fit_idx, val_idx, cfg, seed)
    fits = probe_fits.fit_all(parts)
    zero_shot, zero_shot_pred = _zero_shot(ctx, data, cfg.zero_shot_template)
    comparisons = _intervals(fits, data, zero_shot, zero_shot_pred, seed)
    curve, skipped_shots = parts.timed(
        "few_shot", lambda: _shot_curve(parts, fits), f"few_shot at {len(cfg.shots)} shot counts"
    )
    attr_rows = _attributes(ctx, parts) if cfg.attributes and data.attributes_train else []
    chance, majority = chance_and_majority(data.y_test, data.classes)
    saved, saved_file = _saved_probe(fits) if cfg.save_probe else (None, None)
    published = lookup(LINEAR_PROBE, str(ctx.config.model), str(ctx.config.dataset))
    return ProbeResult(
        num_train=len(data.y_train),
        num_fit=len(fit_idx),
        num_val=len(val_idx),
        num_test=len(data.y_test),
        num_classes=int(data.classes.size),
        dim=data.x_train.shape[1],
        normalized=bool(cfg.normalize),
        protocol=str(cfg.get("protocol", "jaxclip")),
        chance=chance,
        majority=majority,
        dropped=data.dropped,
        svc_skipped=fits.svc_skipped,
        val_test_gap=fits.val_test_gap,
        jax_logistic_path=fits.path_rows,
        mlp_grid=fits.mlp_grid,
        zero_shot=zero_shot,
        methods=fits.methods,
        comparisons=comparisons,
        headline=headline_rows(fits.methods),
        published_percent=dict(published) if published else None,
        few_shot=curve,
        zero_shot_worth_shots=few_shot.crossover(curve, zero_shot["top1"] if zero_shot else None),
        attributes={r["attribute"]: r for r in attr_rows} or None,
        saved_probe=saved,
        figures=_figure_names(bool(attr_rows)),
        sklearn_val=fits.sklearn_val,
        skipped_shots=np.asarray(skipped_shots, np.int64),
        saved_probe_file=saved_file,
        **_per_image(fits, data),
        seconds=parts.seconds,
    )


def _per_image(fits: probe_fits.Fits, data: LabelledSplits) -> dict[str, np.ndarray | None]:
    """The sidecars of each method's test predictions (rows in `fits.predictions` order)."""
    if not fits.predictions:
        return {"test_labels": None, "test_methods": None, "test_predictions": None}
    y = np.asarray(data.y_test)
    return {
        "test_labels": y,
        "test_methods": np.asarray(list(fits.predictions), str),
        "test_predictions": np.stack([np.asarray(p, y.dtype) for p in fits.predictions.values()]),
    }


def _figure_names(with_attributes: bool) -> list[str]:
    names = ["probe_methods.png", "probe_regularization_path.png", "probe_few_shot.png"]
    return names + (["probe_attributes.png"] if with_attributes else [])


def _zero_shot(
    ctx: Context, data: LabelledSplits, template: str
) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """Zero-shot scores of the test rows with one `template` prompt per class name, and its
    predicted labels (first of ties)."""
    names = [data.class_name(k) for k in data.classes]
    if len(names) < 2:
        return None, None
    text = np.asarray(ctx.texts([template.replace("{}", c) for c in names]), np.float32)
    scores = zero_shot_scores(data.x_test, text)
    pred = np.asarray(data.classes)[np.argmax(np.asarray(scores, np.float64), axis=1)]
    return {**score_probe(scores, data.y_test, data.classes), "template": template}, pred


def _intervals(
    fits: probe_fits.Fits,
    data: LabelledSplits,
    zero_shot: dict[str, Any] | None,
    zero_shot_pred: np.ndarray | None,
    seed: int,
) -> list[dict[str, Any]] | None:
    """Adds `test_accuracy_ci` / `macro_f1_ci` (and `top5_ci` where there is a top-5) to every
    method row and `top1_ci` to zero-shot (95 % bootstrap over the test images); returns each
    probe vs zero-shot, paired."""
    y = np.asarray(data.y_test)
    add_intervals(fits.methods, fits.predictions, fits.top5, y, data.classes, seed)
    if zero_shot is None or zero_shot_pred is None:
        return None
    zs_right = zero_shot_pred == y
    zero_shot["top1_ci"] = bootstrap.mean_interval(zs_right, seed=seed).as_dict()
    return bootstrap.paired_comparisons(
        [(name, "zero_shot", pred == y, zs_right) for name, pred in fits.predictions.items()],
        seed=seed,
    )


def _shot_curve(parts: probe_fits.Parts, fits: probe_fits.Fits):
    cfg = parts.cfg
    return few_shot.shot_curve(
        *parts.fit_val(parts.data.x_train, parts.data.y_train),
        parts.data.x_test,
        parts.data.y_test,
        parts.data.classes,
        fits.path,
        fits.best,
        shots=tuple(int(k) for k in cfg.shots),
        repeats=int(cfg.shot_repeats),
        l2_grid=tuple(float(v) for v in cfg.l2_grid),
        max_iter=int(cfg.max_iter),
        seed=parts.seed,
    )


def _attributes(ctx: Context, parts: probe_fits.Parts) -> list[dict[str, Any]]:
    data = parts.data
    return parts.timed(
        "attributes",
        lambda: attributes.attribute_probes(
            data.x_train,
            data.x_test,
            data.attributes_train,
            data.attributes_test,
            attribute_value_names(ctx, "train"),
            parts.fit_idx,
            parts.val_idx,
            l2_grid=tuple(float(v) for v in parts.cfg.l2_grid),
            max_iter=int(parts.cfg.max_iter),
        ),
        f"attribute probes ({len(data.attributes_train)} attributes)",
    )


def _saved_probe(fits: probe_fits.Fits) -> tuple[dict[str, Any], np.ndarray]:
    """The JAX probe with the best validation accuracy: its results entry and file bytes."""
    val = fits.val_accuracy_at_chosen
    use_mlp = fits.mlp is not None and fits.mlp.val_accuracy > val
    chosen = fits.mlp if use_mlp else fits.logistic
    entry = {
        "file": "probe_best_mlp.npz" if use_mlp else "probe_best_logistic.npz",
        "method": "mlp" if use_mlp else "jax_logistic",
        "val_accuracy": fits.mlp.val_accuracy if use_mlp else val,
    }
    return entry, np.frombuffer(probe_bytes(chosen), np.uint8)


def write_files(result: ProbeResult, workdir: Path) -> None:
    """Saves the best JAX probe into the workdir (`jaxclip.probes.io.load_probe` reads it)."""
    if result.saved_probe and result.saved_probe_file is not None:
        data = np.asarray(result.saved_probe_file, np.uint8).tobytes()
        atomic.write_bytes(Path(workdir) / result.saved_probe["file"], data)


STUDY = Study(analyse, render, ProbeResult, check_config, write_files, fits_on_train=True)
