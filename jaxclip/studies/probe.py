"""Study: probes on frozen image embeddings, and the probe vs zero-shot trade-off.

Binds the probes of `jaxclip.probes` to one model × labelled dataset (DESIGN.md items 1 and 4):
image embeddings of the train split train a classifier that is scored on the test split.

* the sources' baseline, StandardScaler + SVC(kernel="linear", C=1) (the thesis: CIFAR-10
  93.24 %, CIFAR-100 78.01 % with ViT-B/32), on by default only for train splits of at most
  `svc_max_train` examples (libsvm's one-vs-one SVC is quadratic in N);
* StandardScaler + LinearSVC (liblinear);
* logistic regression with the CLIP paper's protocol (Radford et al. 2021, appendix A.3: C from
  a log grid by accuracy on a held-out validation split, then a refit on train + val at that
  C), once with scikit-learn and once with the JAX solver (`fit_logistic`; its whole
  regularisation path comes from one batched solve and is plotted);
* an MLP probe: a small grid of widths × weight decays × seeds, each width's grid trained in
  one vmapped computation with early stopping on the validation split;
* the few-shot view of the CLIP paper (its Fig. 6-7): test accuracy of the JAX logistic probe
  vs the number of labelled examples per class, beside zero-shot on the same features, and the
  number of labelled examples per class zero-shot is worth;
* on datasets with extra labels (the built-in shapes: colour, size, ...), a JAX logistic probe
  per attribute against chance: what the image embedding encodes even where zero-shot fails.

The best JAX probe (by validation accuracy) is saved with `jaxclip.probes.io.save_probe`.
The results carry `headline`: one {method, top1, top5, macro_f1} per probe, for the joint
report's "At a glance" table. Fit times go into the report only (results.json stays
reproducible).

Reference: A. Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib
from absl import logging

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.ticker
import ml_collections
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from jaxclip.analysis import metrics
from jaxclip.analysis import zero_shot as zs
from jaxclip.config_args import ConfigError
from jaxclip.probes import baselines, linear, mlp
from jaxclip.probes.io import save_probe
from jaxclip.report import Report, markdown_table, plots_probes, save_figure
from jaxclip.report.references import LINEAR_PROBE, lookup
from jaxclip.studies.legacy import LegacySection as Section

__all__ = [
    "LabelledSplits",
    "check_config",
    "default_config",
    "jax_logistic",
    "labelled_splits",
    "run",
    "score_probe",
    "train_val_split",
    "zero_shot_scores",
]

NAME = "probe"
SVC_COST_NOTE = (
    "libsvm's one-vs-one SVC grows roughly quadratically with N: about 154 s to fit and 110 s "
    "to predict for 50k × 512 features, 100 classes, on a 2-core CPU"
)


def default_config() -> ml_collections.ConfigDict:
    """The probe study's section of the config (`config.probe`)."""
    c = ml_collections.ConfigDict()
    c.normalize = False  # L2-normalise embeddings first (the sources probe the raw features)
    c.val_fraction = 0.2  # share of the train split held out to choose C / L2 / MLP settings
    # SVC(linear) baseline of the thesis: run only when the train split has at most this many
    # examples (0 = never; raise it to force the SVC on a large split).
    c.svc_max_train = 20_000
    c.svc_c = 1.0  # C of the SVC baseline (the thesis: 1)
    c.linear_svc = True  # StandardScaler + LinearSVC (liblinear, one-vs-rest)
    c.linear_svc_c = 1.0  # its C
    c.sklearn_logistic = True  # scikit-learn LogisticRegression, CLIP protocol
    c.sklearn_cs = (1e-2, 1e-1, 1.0, 10.0)  # its C grid (log-spaced; the JAX path spans more)
    c.sklearn_max_iter = 100  # most lbfgs iterations per fit (scikit-learn's default)
    c.l2_grid = tuple(linear.DEFAULT_L2_GRID)  # JAX logistic: L2 strengths (= 1 / C) to pick from
    c.max_iter = 100  # JAX logistic: most L-BFGS steps per fit
    c.mlp = True  # train the MLP probe
    c.mlp_widths = (128, 512)  # hidden widths (grid axis); each width is one vmapped run
    c.mlp_layers = 1  # hidden layers of that width
    c.mlp_learning_rates = (1e-3,)  # adamw learning rates (grid axis)
    c.mlp_weight_decays = (1e-4, 1e-2)  # adamw weight decays (grid axis)
    c.mlp_dropouts = (0.0,)  # dropout after each hidden layer (grid axis)
    c.mlp_seeds = (0, 1)  # initialisation seeds (grid axis)
    c.mlp_epochs = 30  # most epochs (early stopping on validation accuracy)
    c.mlp_patience = 5  # epochs without a better validation accuracy before a member stops
    c.mlp_batch_size = 256  # minibatch size
    # Few-shot curve: labelled examples per class (the rest of the train split is the "all"
    # point); shot counts above the rarest class's count in the training part are skipped.
    c.shots = (1, 2, 4, 8, 16)
    c.shot_repeats = 3  # random draws of the k-shot training set per k (mean ± std)
    c.zero_shot_template = "a photo of a {}."  # class prompt of the zero-shot reference line
    c.attributes = True  # datasets with extra labels (shapes): one JAX logistic probe each
    c.save_probe = True  # save the best JAX probe (logistic or MLP) into the workdir
    return c


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
    if not 0.0 < float(cfg.val_fraction) < 1.0:
        raise ConfigError(f"config.probe.val_fraction={cfg.val_fraction} must be in (0, 1)")
    for field in ("svc_c", "linear_svc_c"):
        if not float(cfg[field]) > 0:
            raise ConfigError(f"config.probe.{field}={cfg[field]} must be > 0")
    for field, lo in (
        ("svc_max_train", 0),
        ("sklearn_max_iter", 1),
        ("max_iter", 1),
        ("mlp_layers", 1),
        ("mlp_epochs", 1),
        ("mlp_patience", 1),
        ("mlp_batch_size", 1),
        ("shot_repeats", 1),
    ):
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.probe.{field}={cfg[field]} must be >= {lo}")
    _check_positive_tuple("probe.sklearn_cs", cfg.sklearn_cs)
    _check_positive_tuple("probe.l2_grid", cfg.l2_grid)
    _check_positive_tuple("probe.mlp_widths", cfg.mlp_widths, integer=True)
    _check_positive_tuple("probe.mlp_learning_rates", cfg.mlp_learning_rates)
    _check_positive_tuple("probe.mlp_weight_decays", cfg.mlp_weight_decays, allow_zero=True)
    _check_positive_tuple("probe.mlp_seeds", cfg.mlp_seeds, integer=True, allow_zero=True)
    if not cfg.mlp_dropouts or any(not 0.0 <= float(p) < 1.0 for p in cfg.mlp_dropouts):
        raise ConfigError(
            f"config.probe.mlp_dropouts={tuple(cfg.mlp_dropouts)} must be rates in [0, 1)"
        )
    if any(int(k) < 1 for k in cfg.shots):
        raise ConfigError(f"config.probe.shots={tuple(cfg.shots)} must be integers >= 1")
    if cfg.zero_shot_template.count("{}") != 1:
        raise ConfigError(
            f"config.probe.zero_shot_template={cfg.zero_shot_template!r} must contain one '{{}}'"
        )


def _check_positive_tuple(
    field: str, values: Any, *, integer: bool = False, allow_zero: bool = False
) -> None:
    vals = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    ok = bool(vals) and all(
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(float(v))
        and (float(v) >= 0 if allow_zero else float(v) > 0)
        and (not integer or float(v).is_integer())
        for v in vals
    )
    if not ok:
        kind = "integers" if integer else "numbers"
        sign = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"config.{field}={vals} must be a non-empty tuple of {kind} {sign}")


# ------------------------------------------------------------------------------ shared helpers


@dataclasses.dataclass
class LabelledSplits:
    """Labelled train / test rows of one dataset, ready for probes.

    x_*: (N, D) float32 features; y_*: (N,) int labels (original values); classnames: by label;
    classes: the label values seen in training; attributes_*: extra labels of the same rows;
    dropped: {"train_unlabelled", "test_unlabelled", "test_unseen_class"} row counts.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classnames: tuple[str, ...]
    classes: np.ndarray
    attributes_train: dict[str, np.ndarray]
    attributes_test: dict[str, np.ndarray]
    dropped: dict[str, int]


def labelled_splits(ctx: Any, *, normalize: bool = False) -> LabelledSplits | str:
    """The labelled rows of the train and test splits, or a one-line reason why there are none.

    Test rows whose class never occurs in training are dropped (a probe cannot predict them).
    """
    ftr, fte = ctx.features("train"), ctx.features("test")
    ytr_all = np.asarray(ftr.labels, np.int64)
    yte_all = np.asarray(fte.labels, np.int64)
    ktr = ytr_all >= 0
    classes = np.unique(ytr_all[ktr])
    if classes.size < 2:
        return (
            "the train split has no class labels"
            if classes.size == 0
            else "the train split has only one class; a probe needs at least 2"
        )
    kte = (yte_all >= 0) & np.isin(yte_all, classes)
    if not kte.any():
        return "the test split has no labelled rows of a class seen in training"
    xtr = np.asarray(ftr.embeds, np.float32)[ktr]
    xte = np.asarray(fte.embeds, np.float32)[kte]
    if normalize:
        xtr = xtr / np.maximum(np.linalg.norm(xtr, axis=1, keepdims=True), 1e-12)
        xte = xte / np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-12)
    atr = dict(getattr(ftr, "attributes", None) or {})
    ate = dict(getattr(fte, "attributes", None) or {})
    common = [a for a in atr if a in ate]
    return LabelledSplits(
        x_train=xtr,
        y_train=ytr_all[ktr],
        x_test=xte,
        y_test=yte_all[kte],
        classnames=tuple(str(c) for c in ftr.classnames),
        classes=classes,
        attributes_train={a: np.asarray(atr[a], np.int64)[ktr] for a in common},
        attributes_test={a: np.asarray(ate[a], np.int64)[kte] for a in common},
        dropped={
            "train_unlabelled": int((~ktr).sum()),
            "test_unlabelled": int((yte_all < 0).sum()),
            "test_unseen_class": int(((yte_all >= 0) & ~np.isin(yte_all, classes)).sum()),
        },
    )


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices): a seeded random `val_fraction` of range(n) held out.

    The same permutation rule as `fit_logistic` / `logistic_regression_clip` use internally, so
    passing the split explicitly gives every probe the same validation set.
    """
    if n < 2:
        raise ValueError(f"need at least 2 training examples for a validation split; got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(val_fraction * n)), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def score_probe(scores: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """top1, top5 (None when there are at most 5 classes) and macro F1 of (N, C) scores whose
    columns are `classes`; labels must be in `classes`."""
    scores = np.asarray(scores, np.float64)
    idx = np.searchsorted(classes, y)
    if scores.ndim != 2 or scores.shape != (len(y), len(classes)):
        raise ValueError(f"scores {scores.shape} do not match {len(y)} labels × {len(classes)}")
    c = len(classes)
    topk = metrics.topk_accuracy(scores, idx, ks=(1, 5) if c > 5 else (1,))
    conf = metrics.confusion_matrix(idx, np.argmax(scores, axis=1), c)
    return {
        "top1": topk["top1"],
        "top5": topk.get("top5"),
        "macro_f1": metrics.macro_f1(conf),
    }


def jax_logistic(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    l2_grid: Sequence[float],
    *,
    classes: np.ndarray,
    max_iter: int = 100,
    refit: bool = True,
) -> tuple[linear.LinearProbe | None, linear.LogisticPath, int]:
    """The CLIP protocol with the JAX solver, keeping the path for plots.

    One batched solve of the whole `l2_grid` on (x_fit, y_fit) scored on train / val / test
    (`logistic_path`), the strength with the best validation accuracy (`select_l2`: ties go to
    the strongest), then, if `refit`, `fit_logistic` on train + val at that strength (the
    probe returned; None without refit). Returns (probe, path, index of the chosen strength).
    """
    path = linear.logistic_path(
        x_fit,
        y_fit,
        l2_grid,
        {"val": (x_val, y_val), "test": (x_test, y_test)},
        classes=classes,
        max_iter=max_iter,
    )
    best = linear.select_l2(path.l2_grid, path.accuracy["val"])
    if not refit:
        return None, path, best
    probe = linear.fit_logistic(
        np.concatenate([x_fit, x_val]),
        np.concatenate([y_fit, y_val]),
        l2_grid=[float(path.l2_grid[best])],
        max_iter=max_iter,
    )
    probe.l2_grid = tuple(float(v) for v in path.l2_grid)
    probe.val_accuracy = tuple(float(a) for a in path.accuracy["val"])
    return probe, path, best


def zero_shot_scores(
    ctx: Any, x: np.ndarray, classnames: Sequence[str], template: str
) -> np.ndarray | None:
    """(N, C) cosine similarities of images to "template.format(class)" (None without names)."""
    if len(classnames) < 2:
        return None
    text = np.asarray(ctx.texts([template.replace("{}", c) for c in classnames]), np.float32)
    w = zs.class_text_embeddings(text[:, None, :])
    return np.asarray(zs.zero_shot_logits(x, w, logit_scale=1.0), np.float64)


def mlp_members(cfg: ml_collections.ConfigDict) -> int:
    """Grid members per width."""
    return (
        len(cfg.mlp_learning_rates)
        * len(cfg.mlp_weight_decays)
        * len(cfg.mlp_dropouts)
        * len(cfg.mlp_seeds)
    )


def fit_mlp_grid(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: ml_collections.ConfigDict,
    seed: int,
) -> tuple[mlp.MLPProbe, list[dict[str, Any]], float]:
    """One vmapped `fit_mlp` per width of `cfg.mlp_widths`; the best member over all widths.

    Returns (best probe, one row per member with its width, total seconds). Ties go to the
    first width in the config order.
    """
    best: mlp.MLPProbe | None = None
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    for width in cfg.mlp_widths:
        hidden = (int(width),) * int(cfg.mlp_layers)
        t0 = time.perf_counter()
        probe = mlp.fit_mlp(
            x_fit,
            y_fit,
            x_val,
            y_val,
            hidden=hidden,
            learning_rates=tuple(cfg.mlp_learning_rates),
            weight_decays=tuple(cfg.mlp_weight_decays),
            dropouts=tuple(cfg.mlp_dropouts),
            seeds=tuple(int(s) for s in cfg.mlp_seeds),
            batch_size=int(cfg.mlp_batch_size),
            epochs=int(cfg.mlp_epochs),
            patience=int(cfg.mlp_patience),
            data_seed=seed,
        )
        seconds += time.perf_counter() - t0
        for m in probe.grid:
            rows.append({"hidden": list(hidden), **m})
        if best is None or probe.val_accuracy > best.val_accuracy:
            best = probe
    assert best is not None
    return best, rows, seconds


def _pct(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * float(x)


def headline_rows(methods: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The "At a glance" rows of fitted probes: method, test top-1, top-5, macro F1 (fractions)."""
    return [
        {
            "method": m["method"],
            "top1": m["test_accuracy"],
            "top5": m.get("top5"),
            "macro_f1": m["macro_f1"],
        }
        for m in methods.values()
    ]


def method_rows(
    methods: dict[str, dict[str, Any]], seconds: dict[str, float], column: str
) -> list[dict[str, Any]]:
    """One report row per fitted probe: method, `column` (what it was trained on), train / test
    accuracy, top-5 and macro F1 in %, the chosen setting and the fit time in seconds."""
    return [
        {
            "method": m["method"],
            column: m[column.replace(" ", "_")],
            "train acc %": _pct(m["train_accuracy"]),
            "test acc %": _pct(m["test_accuracy"]),
            "top-5 %": _pct(m.get("top5")),
            "macro F1 %": _pct(m["macro_f1"]),
            "chosen": m["chosen"],
            "fit s": seconds.get(key),
        }
        for key, m in methods.items()
    ]


def _fmt_c(c: float) -> str:
    return f"{c:.3g}"


# ------------------------------------------------------------------------------------ the study


def run(ctx: Any, cfg: ml_collections.ConfigDict) -> Section:
    """Runs the probe study on `ctx` (a `Context`) with `cfg` = config.probe."""
    check_config(cfg)
    model, dataset = str(ctx.config.model), str(ctx.config.dataset)
    seed = int(ctx.config.get("seed", 0))
    report = Report("Probes on frozen image embeddings")
    data = labelled_splits(ctx, normalize=bool(cfg.normalize))
    if isinstance(data, str):
        report.text(f"Skipped: {data}.")
        return Section(NAME, {"skipped": data}, report)

    classes = data.classes
    c = int(classes.size)
    n_train, n_test, d = len(data.y_train), len(data.y_test), data.x_train.shape[1]
    fit_idx, val_idx = train_val_split(n_train, float(cfg.val_fraction), seed)
    x_fit, y_fit = data.x_train[fit_idx], data.y_train[fit_idx]
    x_val, y_val = data.x_train[val_idx], data.y_train[val_idx]
    names = {int(k): (data.classnames[k] if 0 <= k < len(data.classnames) else str(k))
             for k in classes}  # fmt: skip
    counts = np.bincount(np.searchsorted(classes, data.y_test), minlength=c)
    chance, majority = 1.0 / c, float(counts.max() / counts.sum())

    results: dict[str, Any] = {
        "num_train": n_train,
        "num_fit": len(fit_idx),
        "num_val": len(val_idx),
        "num_test": n_test,
        "num_classes": c,
        "dim": d,
        "normalized": bool(cfg.normalize),
        "chance": chance,
        "majority": majority,
        "dropped": data.dropped,
    }
    methods: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    notes: list[str] = []
    figures: list[str] = []
    wd = ctx.workdir

    # ------------------------------------------------------------------ scikit-learn baselines
    if n_train <= int(cfg.svc_max_train):
        r = baselines.svc_linear(
            data.x_train, data.y_train, data.x_test, data.y_test, C=float(cfg.svc_c)
        )
        methods["svc_linear"] = _baseline_entry(r, "StandardScaler + SVC(linear)", "train")
        methods["svc_linear"]["chosen"] = f"C = {_fmt_c(r.C)} (fixed)"
        seconds["svc_linear"] = r.fit_seconds
    else:
        why = (
            "`svc_max_train = 0`"
            if int(cfg.svc_max_train) == 0
            else f"the train split has {n_train} examples > `svc_max_train = {cfg.svc_max_train}`"
        )
        notes.append(
            f"The thesis's SVC(linear, C={cfg.svc_c:g}) baseline was skipped: {why} "
            f"({SVC_COST_NOTE}). Set `--config.probe.svc_max_train={n_train}` to run it."
        )
        results["svc_skipped"] = why
    if cfg.linear_svc:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            r = baselines.linear_svc(
                data.x_train, data.y_train, data.x_test, data.y_test, C=float(cfg.linear_svc_c)
            )
        methods["linear_svc"] = _baseline_entry(r, "StandardScaler + LinearSVC", "train")
        methods["linear_svc"]["chosen"] = f"C = {_fmt_c(r.C)} (fixed)"
        seconds["linear_svc"] = r.fit_seconds
    sk_val: dict[float, float] | None = None
    if cfg.sklearn_logistic:
        with warnings.catch_warnings():  # hitting max_iter is reported in the table instead
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            r = baselines.logistic_regression_clip(
                x_fit,
                y_fit,
                data.x_test,
                data.y_test,
                x_val,
                y_val,
                Cs=tuple(float(v) for v in cfg.sklearn_cs),
                max_iter=int(cfg.sklearn_max_iter),
            )
        methods["sklearn_logistic"] = _baseline_entry(
            r, "scikit-learn LogisticRegression (CLIP protocol)", "train (refit on fit + val)"
        )
        capped = r.n_iter is not None and r.n_iter >= int(cfg.sklearn_max_iter)
        methods["sklearn_logistic"]["converged"] = not capped
        methods["sklearn_logistic"]["chosen"] = f"C = {_fmt_c(r.C)} (by validation)" + (
            f"; lbfgs stopped at max_iter = {cfg.sklearn_max_iter}" if capped else ""
        )
        methods["sklearn_logistic"]["val_accuracy"] = {
            _fmt_c(k): v for k, v in (r.val_accuracy or {}).items()
        }
        sk_val = r.val_accuracy
        seconds["sklearn_logistic"] = r.fit_seconds

    # ------------------------------------------------------------------- JAX logistic (CLIP)
    t0 = time.perf_counter()
    lprobe, path, best = jax_logistic(
        x_fit,
        y_fit,
        x_val,
        y_val,
        data.x_test,
        data.y_test,
        tuple(float(v) for v in cfg.l2_grid),
        classes=classes,
        max_iter=int(cfg.max_iter),
    )
    seconds["jax_logistic"] = time.perf_counter() - t0
    assert lprobe is not None
    entry = score_probe(lprobe.decision_function(data.x_test), data.y_test, lprobe.classes)
    methods["jax_logistic"] = {
        "method": "JAX logistic regression (CLIP protocol)",
        "trained_on": "train (refit on fit + val)",
        "train_accuracy": lprobe.train_accuracy,
        "test_accuracy": entry["top1"],
        "top5": entry["top5"],
        "macro_f1": entry["macro_f1"],
        "l2": lprobe.l2,
        "C": 1.0 / lprobe.l2,
        "chosen": f"L2 = {_fmt_c(lprobe.l2)} (C = {_fmt_c(1 / lprobe.l2)}, by validation)",
        "converged": lprobe.converged,
        "val_accuracy_at_chosen": float(path.accuracy["val"][best]),
    }
    results["val_test_gap"] = float(path.accuracy["val"][best] - path.accuracy["test"][best])
    results["jax_logistic_path"] = [
        {
            "l2": float(path.l2_grid[i]),
            "C": float(1.0 / path.l2_grid[i]),
            "train_accuracy": float(path.accuracy["train"][i]),
            "val_accuracy": float(path.accuracy["val"][i]),
            "test_accuracy": float(path.accuracy["test"][i]),
            "n_iter": int(path.n_iter[i]),
            "converged": bool(path.converged[i]),
        }
        for i in range(len(path.l2_grid))
    ]

    # ---------------------------------------------------------------------------------- MLP
    mprobe = None
    if cfg.mlp:
        mprobe, grid_rows, seconds["mlp"] = fit_mlp_grid(x_fit, y_fit, x_val, y_val, cfg, seed)
        entry = score_probe(mprobe.decision_function(data.x_test), data.y_test, mprobe.classes)
        conf_m = mprobe.config
        methods["mlp"] = {
            "method": f"MLP probe ({len(mprobe.hidden)} hidden layer"
            + ("s" if len(mprobe.hidden) > 1 else "")
            + ")",
            "trained_on": "fit part (early stopping on val)",
            "train_accuracy": mprobe.score(x_fit, y_fit),
            "test_accuracy": entry["top1"],
            "top5": entry["top5"],
            "macro_f1": entry["macro_f1"],
            "hidden": list(mprobe.hidden),
            "config": dict(conf_m),
            "val_accuracy": mprobe.val_accuracy,
            "best_epoch": mprobe.best_epoch,
            "chosen": f"width {mprobe.hidden[0]}, lr {conf_m['lr']:g}, wd {conf_m['wd']:g}, "
            f"dropout {conf_m['dropout']:g}, seed {conf_m['seed']}, epoch {mprobe.best_epoch}",
        }
        results["mlp_grid"] = grid_rows

    # ----------------------------------------------------------------------------- zero-shot
    zs_scores = zero_shot_scores(
        ctx, data.x_test, [names[int(k)] for k in classes], cfg.zero_shot_template
    )
    zero_shot = None
    if zs_scores is not None:
        zero_shot = score_probe(zs_scores, data.y_test, classes)
        zero_shot["template"] = cfg.zero_shot_template
        results["zero_shot"] = zero_shot

    results["methods"] = methods
    results["headline"] = headline_rows(methods)
    published = lookup(LINEAR_PROBE, model, dataset)
    if published:
        results["published_percent"] = dict(published)

    # ---------------------------------------------------------------------- few-shot curve
    t0 = time.perf_counter()
    curve, skipped_shots = _shot_curve(
        x_fit, y_fit, x_val, y_val, data.x_test, data.y_test, classes, path, best, cfg, seed
    )
    seconds["few_shot"] = time.perf_counter() - t0
    results["few_shot"] = curve
    crossover = _crossover(curve, zero_shot["top1"] if zero_shot else None)
    if crossover is not None:
        results["zero_shot_worth_shots"] = crossover

    # -------------------------------------------------------------------------- attributes
    attr_rows: list[dict[str, Any]] = []
    if cfg.attributes and data.attributes_train:
        t0 = time.perf_counter()
        attr_rows = _attribute_probes(ctx, data, fit_idx, val_idx, cfg)
        seconds["attributes"] = time.perf_counter() - t0
        if attr_rows:
            results["attributes"] = {r["attribute"]: r for r in attr_rows}

    # --------------------------------------------------------------------------- save probe
    saved = None
    if cfg.save_probe:
        use_mlp = mprobe is not None and mprobe.val_accuracy > float(path.accuracy["val"][best])
        chosen = mprobe if use_mlp else lprobe
        fname = "probe_best_mlp.npz" if use_mlp else "probe_best_logistic.npz"
        save_probe(chosen, wd / fname)
        saved = {
            "file": fname,
            "method": "mlp" if use_mlp else "jax_logistic",
            "val_accuracy": mprobe.val_accuracy if use_mlp else float(path.accuracy["val"][best]),
        }
        results["saved_probe"] = saved

    # ------------------------------------------------------------------------------ report
    _write_report(
        report,
        results,
        methods,
        seconds,
        notes,
        figures,
        wd,
        path,
        best,
        sk_val,
        zero_shot,
        published,
        model,
        dataset,
        ctx,
        attr_rows,
        skipped_shots,
        cfg,
    )
    results["figures"] = figures
    _timing_note(report, seconds)
    return Section(NAME, results, report)


def _baseline_entry(r: baselines.BaselineResult, method: str, trained_on: str) -> dict[str, Any]:
    return {
        "method": method,
        "trained_on": trained_on,
        "train_accuracy": r.train_accuracy,
        "test_accuracy": r.test_accuracy,
        "top5": None,
        "macro_f1": r.macro_f1,
        "C": r.C,
    }


def _tile_factor(shots: Sequence[int]) -> int | None:
    """The common multiple M of the shot counts that every k-shot set is tiled up to (None
    when it would be more than 4 × the largest count: then each k gets its own shape)."""
    m = math.lcm(*shots) if shots else 1
    return m if m <= 4 * max(shots, default=1) else None


def _shot_curve(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    classes: np.ndarray,
    path: linear.LogisticPath,
    best: int,
    cfg: ml_collections.ConfigDict,
    seed: int,
) -> tuple[list[dict[str, Any]], list[int]]:
    """JAX logistic probes on k examples per class (drawn from the fit part, `shot_repeats`
    draws each; L2 chosen on the shared validation split, no refit), then the whole fit part.

    Every k-shot set is tiled M / k times (M = a common multiple of the shot counts) and solved
    at strengths l2 · M / k: the objective is then exactly (M / k) × the k-shot one, with the
    same standardiser, minimiser and stopping test, so the solutions are those of the k-shot
    sets while every solve has one shape (one compilation instead of one per k).
    """
    by_class = [np.flatnonzero(y_fit == k) for k in classes]
    rarest = min(len(ix) for ix in by_class)
    grid = np.asarray([float(v) for v in cfg.l2_grid])
    wanted = sorted({int(s) for s in cfg.shots})
    shots = [k for k in wanted if k <= rarest and k * len(classes) < len(y_fit)]
    skipped = [k for k in wanted if k not in shots]
    tile = _tile_factor(shots)
    rows: list[dict[str, Any]] = []
    for k in shots:
        reps = tile // k if tile else 1
        accs, l2s = [], []
        for r in range(int(cfg.shot_repeats)):
            rng = np.random.default_rng([seed, k, r])
            idx = np.sort(np.concatenate([rng.choice(ix, k, replace=False) for ix in by_class]))
            kpath = linear.logistic_path(
                np.tile(x_fit[idx], (reps, 1)),
                np.tile(y_fit[idx], reps),
                grid * reps,
                {"val": (x_val, y_val), "test": (x_test, y_test)},
                classes=classes,
                max_iter=int(cfg.max_iter),
            )
            b = linear.select_l2(grid, kpath.accuracy["val"])
            accs.append(float(kpath.accuracy["test"][b]))
            l2s.append(float(grid[b]))
        rows.append(
            {
                "shots": k,
                "num_labelled": k * len(classes),
                "mean_accuracy": float(np.mean(accs)),
                "std_accuracy": float(np.std(accs)),
                "accuracies": accs,
                "l2": l2s,
            }
        )
    rows.append(
        {
            "shots": "all",
            "per_class": float(len(y_fit) / len(classes)),
            "num_labelled": len(y_fit),
            "mean_accuracy": float(path.accuracy["test"][best]),
            "std_accuracy": 0.0,
            "accuracies": [float(path.accuracy["test"][best])],
            "l2": [float(path.l2_grid[best])],
        }
    )
    return rows, skipped


def _shots_x(row: dict[str, Any]) -> float:
    return float(row["per_class"] if row["shots"] == "all" else row["shots"])


def _crossover(curve: list[dict[str, Any]], zero_shot: float | None) -> dict[str, Any] | None:
    """Where the few-shot probe reaches zero-shot: the first k with mean accuracy >= zero-shot
    and the labelled examples per class zero-shot is worth (log-linear interpolation between the
    bracketing points, as the CLIP paper's Fig. 7)."""
    if zero_shot is None or not curve:
        return None
    xs = [_shots_x(r) for r in curve]
    ys = [r["mean_accuracy"] for r in curve]
    first = next((i for i, y in enumerate(ys) if y >= zero_shot), None)
    if first is None:
        return {"first_k": None, "worth": None, "note": "the probe never reaches zero-shot"}
    if first == 0:
        return {
            "first_k": curve[0]["shots"],
            "worth": None,
            "note": f"already the {curve[0]['shots']}-shot probe beats zero-shot",
        }
    x0, x1, y0, y1 = xs[first - 1], xs[first], ys[first - 1], ys[first]
    frac = (zero_shot - y0) / (y1 - y0) if y1 > y0 else 1.0
    worth = float(2 ** (math.log2(x0) + frac * (math.log2(x1) - math.log2(x0))))
    return {"first_k": curve[first]["shots"], "worth": worth, "note": ""}


def _attribute_names(ctx: Any, attrs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Attribute -> value names, in the dataset's order where the source says it."""
    info: dict = {}
    if hasattr(ctx, "source"):
        info = dict(getattr(ctx.source("train").info, "attributes", {}) or {})
    order = [a for a in info if a in attrs] + [a for a in attrs if a not in info]
    return {a: tuple(str(v) for v in info.get(a, ())) for a in order}


def _attribute_probes(
    ctx: Any,
    data: LabelledSplits,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: ml_collections.ConfigDict,
) -> list[dict[str, Any]]:
    """One JAX logistic probe per extra attribute: L2 by validation accuracy, fitted on the fit
    part (no refit: one batched solve per attribute), scored on the test rows."""
    rows = []
    grid = tuple(float(v) for v in cfg.l2_grid)
    for attr, values in _attribute_names(ctx, list(data.attributes_train)).items():
        atr, ate = data.attributes_train[attr], data.attributes_test[attr]
        ok_tr, ok_te = atr >= 0, ate >= 0
        fit = fit_idx[ok_tr[fit_idx]]
        val = val_idx[ok_tr[val_idx]]
        vals = np.unique(atr[ok_tr])
        if vals.size < 2 or not len(val) or not ok_te.any():
            continue
        te = ok_te & np.isin(ate, vals)
        _, path, best = jax_logistic(
            data.x_train[fit],
            atr[fit],
            data.x_train[val],
            atr[val],
            data.x_test[te],
            ate[te],
            grid,
            classes=vals,
            max_iter=int(cfg.max_iter),
            refit=False,
        )
        v = max(len(values), int(vals.size))
        counts = np.bincount(ate[te], minlength=v)
        rows.append(
            {
                "attribute": attr,
                "values": v,
                "value_names": list(values),
                "test_accuracy": float(path.accuracy["test"][best]),
                "val_accuracy": float(path.accuracy["val"][best]),
                "l2": float(path.l2_grid[best]),
                "chance": 1.0 / v,
                "majority": float(counts.max() / counts.sum()),
                "num_test": int(te.sum()),
            }
        )
    return rows


# ------------------------------------------------------------------------------------ report


def _write_report(
    report: Report,
    results: dict[str, Any],
    methods: dict[str, dict[str, Any]],
    seconds: dict[str, float],
    notes: list[str],
    figures: list[str],
    wd: Any,
    path: linear.LogisticPath,
    best: int,
    sk_val: dict[float, float] | None,
    zero_shot: dict[str, Any] | None,
    published: dict[str, float],
    model: str,
    dataset: str,
    ctx: Any,
    attr_rows: list[dict[str, Any]],
    skipped_shots: list[int],
    cfg: ml_collections.ConfigDict,
) -> None:
    c = results["num_classes"]
    drop = results["dropped"]
    dropped = []
    if drop["train_unlabelled"]:
        dropped.append(f"{drop['train_unlabelled']} unlabelled training rows")
    if drop["test_unlabelled"]:
        dropped.append(f"{drop['test_unlabelled']} unlabelled test rows")
    if drop["test_unseen_class"]:
        dropped.append(f"{drop['test_unseen_class']} test rows of classes absent from training")
    drop_txt = f" Left out: {', '.join(dropped)}." if dropped else ""
    feats = "L2-normalised" if results["normalized"] else "raw (unnormalised)"
    report.text(
        f"A probe is a classifier trained on frozen features: here the {feats} "
        f"{results['dim']}-d image embeddings of `{model}`, {results['num_train']} labelled "
        f"images of the train split, scored on {results['num_test']} test images of "
        f"`{dataset}` ({c} classes).{drop_txt} Every probe standardises the features "
        "(StandardScaler fitted on its training data). Where a setting is chosen (C, L2, MLP "
        f"width / weight decay / seed), it is chosen on a validation split: a seeded random "
        f"{100 * float(cfg.val_fraction):.0f} % of the train split ({results['num_val']} "
        f"images; the other {results['num_fit']} are the *fit part*). Chance is 1/C = "
        f"{100 * results['chance']:.2f} % (always answering the most frequent test class: "
        f"{100 * results['majority']:.2f} %)."
    )

    # ---------------------------------------------------------------------- methods table
    report.section("Probes", level=2)
    rows = method_rows(methods, seconds, "trained on")
    if zero_shot is not None:
        rows.append(
            {
                "method": f'zero-shot ("{zero_shot["template"]}"), no labels',
                "trained on": "—",
                "train acc %": None,
                "test acc %": _pct(zero_shot["top1"]),
                "top-5 %": _pct(zero_shot["top5"]),
                "macro F1 %": _pct(zero_shot["macro_f1"]),
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
    for note in notes:
        report.text(note)
    gap = results["val_test_gap"]
    if gap > 0.03:
        report.text(
            f"Note: at the chosen L2 the JAX logistic probe (fit part) scores "
            f"{100 * methods['jax_logistic']['val_accuracy_at_chosen']:.2f} % on the validation "
            f"images but {100 * (methods['jax_logistic']['val_accuracy_at_chosen'] - gap):.2f} % "
            "on the test images. The validation images come from the train split: when the "
            "model was trained on that split (the offline mini-CLIP is trained contrastively on "
            "the shapes train split), its embeddings of those images are in-sample and easier "
            "to separate; otherwise the splits differ in distribution. Validation accuracy "
            "then overstates test accuracy, for every probe alike."
        )
    figures.append(_plot_methods(methods, zero_shot, published, results, wd))
    report.figure(figures[-1], "Test accuracy of each probe (dashed: zero-shot; dotted: chance)")
    if published:
        pub_rows = [{"source": k, "test acc %": v} for k, v in published.items()]
        pub_rows += [
            {"source": f"ours: {m['method']}", "test acc %": _pct(m["test_accuracy"])}
            for key, m in methods.items()
            if key != "mlp"
        ]
        ours = methods.get("svc_linear")
        report.text(
            f"Published numbers for `{model}` on `{dataset.split('/')[0]}`: the thesis's "
            "StandardScaler + SVC(linear, C=1) on HF `openai/clip-vit-base-patch32` image "
            "embeddings of the whole train split, beside our linear probes. Differences of a "
            "fraction of a point also come from preprocessing (resize/crop details)."
            + ("" if ours else " Our SVC was skipped (see above); the other linear probes compare.")
        )
        report.table(pub_rows, floatfmt=".2f")
    else:
        report.text(
            f"No published probe numbers are on file for `{model}` on `{dataset}` "
            "(jaxclip.report.references.LINEAR_PROBE); the thesis reports SVC(linear, C=1) "
            "93.24 % on CIFAR-10 and 78.01 % on CIFAR-100 with ViT-B/32."
        )

    # ------------------------------------------------------------------ regularisation path
    report.section("Regularisation path of the JAX logistic probe", level=2)
    ref = None
    if sk_val:
        cs = sorted(sk_val)
        ref = {"scikit-learn val (C = 1/L2)": ([1.0 / cc for cc in cs], [sk_val[cc] for cc in cs])}
    figures.append(
        plots_probes.plot_regularization_path(
            wd,
            path.l2_grid,
            {k: path.accuracy[k] for k in ("train", "val", "test")},
            chosen=float(path.l2_grid[best]),
            reference=ref,
            title="JAX logistic probe: accuracy vs L2 strength (fit part)",
            name="probe_regularization_path.png",
        )
    )
    report.text(
        f"All {len(path.l2_grid)} strengths are fitted on the fit part in ONE batched L-BFGS "
        "solve (the strengths stacked on the class axis share every matmul; "
        "`jaxclip.probes.linear.logistic_path`) and scored on train, validation and test. The "
        "strength with the best validation accuracy is chosen (ties: the stronger) and refitted "
        "on the whole train split; the objective is scikit-learn's, so L2 = 1 / C and the "
        "scikit-learn curve (validation accuracy of its own fits) should lie on ours. Test "
        "accuracy is shown for insight only: it never takes part in the choice."
    )
    report.figure(figures[-1], "Accuracy vs L2 strength; dotted: the chosen strength")
    report.text(
        "<details><summary>The path as a table (click to expand)</summary>\n\n"
        + markdown_table(
            [
                {
                    "L2": r["l2"],
                    "C": r["C"],
                    "train %": 100 * r["train_accuracy"],
                    "val %": 100 * r["val_accuracy"],
                    "test %": 100 * r["test_accuracy"],
                    "L-BFGS steps": r["n_iter"],
                    "converged": r["converged"],
                }
                for r in results["jax_logistic_path"]
            ],
            floatfmt=".4g",
        )
        + "\n</details>"
    )

    # ---------------------------------------------------------------------------------- MLP
    if "mlp" in methods:
        m = methods["mlp"]
        grid = results["mlp_grid"]
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
        report.text(
            "<details><summary>All grid members (click to expand)</summary>\n\n"
            + markdown_table(
                [
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
                ],
                floatfmt=".4g",
            )
            + "\n</details>"
        )

    # ---------------------------------------------------------------- few-shot / zero-shot
    report.section("Labelled examples vs zero-shot", level=2)
    curve = results["few_shot"]
    figures.append(_plot_curve(curve, zero_shot, results["chance"], wd))
    skip_txt = (
        f" Shot counts {', '.join(map(str, skipped_shots))} are skipped: the rarest class has "
        "fewer examples than that in the fit part."
        if skipped_shots
        else ""
    )
    report.text(
        "The CLIP paper's few-shot view (its Fig. 6-7): the JAX logistic probe trained on k "
        f"random labelled images per class from the fit part ({cfg.shot_repeats} draws per k; "
        "mean ± std), its L2 chosen on the validation split (which therefore also uses labels: "
        "the x axis counts training examples), no refit; the last point uses the whole fit "
        "part. Zero-shot uses no labels at all: its accuracy is the horizontal line." + skip_txt
    )
    report.figure(figures[-1], "Test accuracy vs labelled examples per class")
    report.table(
        [
            {
                "examples per class": r["shots"]
                if r["shots"] != "all"
                else f"all (≈ {r['per_class']:.0f})",
                "labelled images": r["num_labelled"],
                "mean test acc %": 100 * r["mean_accuracy"],
                "std %": 100 * r["std_accuracy"],
                "chosen L2": ", ".join(f"{v:.3g}" for v in r["l2"]),
            }
            for r in curve
        ],
        floatfmt=".2f",
    )
    best_probe = max(methods.values(), key=lambda m: m["test_accuracy"])
    if zero_shot is not None:
        worth = results.get("zero_shot_worth_shots") or {}
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
        gain = best_probe["test_accuracy"] - zero_shot["top1"]
        report.text(
            f'Zero-shot with "{zero_shot["template"]}" reaches {100 * zero_shot["top1"]:.2f} % '
            f"top-1 on these test images without a single label; the best probe "
            f"({best_probe['method']}) reaches {100 * best_probe['test_accuracy']:.2f} % "
            f"({100 * gain:+.2f} points) with {results['num_train']} labelled images. {cross} "
            "The trade-off of the sources: a probe adapts to the dataset's own decision "
            "boundaries (CIFAR-100: 78.01 % SVC vs 61.71 % zero-shot; an ImageNet subset: 68.75 "
            "% vs 58.85 %), zero-shot needs no labels and keeps the open vocabulary."
        )
    else:
        report.text("Zero-shot needs class names; this dataset has none, so no line is drawn.")

    # --------------------------------------------------------------------------- attributes
    if attr_rows:
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
        report.table(
            [
                {
                    "attribute": r["attribute"],
                    "values": r["values"],
                    "probe test acc %": 100 * r["test_accuracy"],
                    "chance 1/K %": 100 * r["chance"],
                    "majority %": 100 * r["majority"],
                    "chosen L2": r["l2"],
                }
                for r in attr_rows
            ],
            floatfmt=".2f",
        )
        figures.append(_plot_attributes(attr_rows, methods["jax_logistic"], results, wd))
        report.figure(figures[-1], "Probe accuracy per attribute against chance")

    # --------------------------------------------------------------------------- saved probe
    saved = results.get("saved_probe")
    if saved:
        report.section("Saved probe", level=2)
        where = ctx.workdir / saved["file"]
        report.text(
            f"The JAX probe with the best validation accuracy ({saved['method']}, "
            f"{100 * saved['val_accuracy']:.2f} %) is saved as `{saved['file']}` in the "
            f"workdir (`{where}`): arrays and JSON metadata in one `.npz`, nothing pickled. "
            "Load it with `jaxclip.probes.io.load_probe(path)`; `probe.predict(embeddings)` "
            "takes raw image embeddings of this model"
            + (" after L2 normalisation" if results["normalized"] else "")
            + " and returns labels."
        )


def _timing_note(report: Report, seconds: dict[str, float]) -> None:
    """Wall time per part of the study, in the report only (results.json stays reproducible)."""
    logging.info(
        "%s: seconds per part %s", report.title, {k: round(v, 2) for k, v in seconds.items()}
    )
    report.text(
        "<details><summary>Wall time per part of this study (click to expand; JAX parts "
        "include compilation)</summary>\n\n"
        + markdown_table([{"part": k, "seconds": v} for k, v in seconds.items()], floatfmt=".2f")
        + "\n</details>"
    )


# ------------------------------------------------------------------------------------- plots


def _plot_methods(
    methods: dict[str, dict[str, Any]],
    zero_shot: dict[str, Any] | None,
    published: dict[str, float],
    results: dict[str, Any],
    wd: Any,
) -> str:
    labels = [m["method"] for m in methods.values()]
    vals = [100 * m["test_accuracy"] for m in methods.values()]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(labels) + 1.8))
    ys = np.arange(len(labels))[::-1]
    bars = ax.barh(ys, vals, color="#3b6fb6", height=0.6)
    for b, v in zip(bars, vals):
        ax.text(v + 0.5, b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center", fontsize=8)
    if zero_shot is not None:
        ax.axvline(100 * zero_shot["top1"], color="#e69f00", ls="--", label="zero-shot")
    ax.axvline(100 * results["chance"], color="k", ls=":", label="chance 1/C")
    for i, (src, v) in enumerate(published.items()):
        ax.axvline(v, color=f"C{i + 2}", ls="-.", label=src)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Probes on frozen image embeddings ({results['num_classes']} classes)")
    return save_figure(fig, wd, "probe_methods.png")


def _plot_curve(
    curve: list[dict[str, Any]], zero_shot: dict[str, Any] | None, chance: float, wd: Any
) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = np.asarray([_shots_x(r) for r in curve])
    ys = 100 * np.asarray([r["mean_accuracy"] for r in curve])
    sd = 100 * np.asarray([r["std_accuracy"] for r in curve])
    ax.errorbar(xs, ys, yerr=sd, fmt="o-", ms=4, capsize=3, label="JAX logistic probe")
    if zero_shot is not None:
        ax.axhline(
            100 * zero_shot["top1"],
            color="#e69f00",
            ls="--",
            label=f"zero-shot ({100 * zero_shot['top1']:.1f} %, no labels)",
        )
    ax.axhline(100 * chance, color="k", ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    labels = [str(r["shots"]) for r in curve[:-1]] + [f"all\n(≈{xs[-1]:.0f})"]
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 102)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Few-shot probe vs zero-shot")
    return save_figure(fig, wd, "probe_few_shot.png")


def _plot_attributes(
    rows: list[dict[str, Any]], main: dict[str, Any], results: dict[str, Any], wd: Any
) -> str:
    names = ["class"] + [r["attribute"] for r in rows]
    ks = [results["num_classes"]] + [r["values"] for r in rows]
    acc = [100 * main["test_accuracy"]] + [100 * r["test_accuracy"] for r in rows]
    chance = [100 * results["chance"]] + [100 * r["chance"] for r in rows]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2.5, 4.2))
    xs = np.arange(len(names))
    bars = ax.bar(xs, acc, 0.6, color=["#6b8e23"] + ["#3b6fb6"] * len(rows), label="probe")
    for b, v in zip(bars, acc):
        ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=8)
    for j, ch in enumerate(chance):
        ax.hlines(ch, j - 0.4, j + 0.4, colors="k", linestyles="--",
                  label="chance 1/K" if j == 0 else None)  # fmt: skip
    ax.set_xticks(xs, [f"{n}\n({k} values)" for n, k in zip(names, ks)], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 108)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("JAX logistic probe per label (dashed: chance)")
    return save_figure(fig, wd, "probe_attributes.png")
