"""The probe study's fits: the scikit-learn baselines, the JAX logistic probe and the MLP grid
on one labelled train / validation / test split, as the rows of results.json's `methods`."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from jaxclip import progress
from jaxclip.probes import baselines, linear, mlp, protocols
from jaxclip.probes.protocol import LabelledSplits, fit_mlp_grid, jax_logistic, score_probe
from jaxclip.studies.probe_common import fmt_c, mlp_grid, svc_skip_reason, top5_hits

T = TypeVar("T")


@dataclasses.dataclass
class Parts:
    """The split every probe shares, the study's config section, and the seconds per part."""

    data: LabelledSplits
    fit_idx: np.ndarray
    val_idx: np.ndarray
    cfg: Any
    seed: int
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def fit_val(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(x_fit, y_fit, x_val, y_val) of train-split rows `x`, `y`."""
        return x[self.fit_idx], y[self.fit_idx], x[self.val_idx], y[self.val_idx]

    def timed(self, part: str, fn: Callable[[], T], note: str | None = None) -> T:
        """`fn()`, its wall time recorded as `seconds[part]`; `note` (default `part`) is shown
        as the study's progress meanwhile."""
        progress.step(note or part)
        t0 = time.perf_counter()
        out = fn()
        self.seconds[part] = time.perf_counter() - t0
        return out


@dataclasses.dataclass
class Fits:
    """Every fitted probe: `methods` (results.json rows), the JAX logistic path and probes,
    and `predictions`: method -> (N_test,) predicted test labels (for intervals and paired
    tests; argmax with the lowest class on ties, as top-1)."""

    methods: dict[str, dict[str, Any]]
    svc_skipped: str | None
    sklearn_val: np.ndarray | None
    logistic: linear.LinearProbe
    path: linear.LogisticPath
    best: int
    mlp: mlp.MLPProbe | None
    mlp_grid: list[dict[str, Any]] | None
    predictions: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # method -> (N_test,) bool, the true class among the 5 highest scores (more than 5 classes)
    top5: dict[str, np.ndarray | None] = dataclasses.field(default_factory=dict)

    @property
    def val_accuracy_at_chosen(self) -> float:
        return float(self.path.accuracy["val"][self.best])

    @property
    def val_test_gap(self) -> float:
        return float(self.path.accuracy["val"][self.best] - self.path.accuracy["test"][self.best])

    @property
    def path_rows(self) -> list[dict[str, Any]]:
        """The regularisation path, one row per L2 strength."""
        p = self.path
        return [
            {
                "l2": float(p.l2_grid[i]),
                "C": float(1.0 / p.l2_grid[i]),
                "train_accuracy": float(p.accuracy["train"][i]),
                "val_accuracy": float(p.accuracy["val"][i]),
                "test_accuracy": float(p.accuracy["test"][i]),
                "n_iter": int(p.n_iter[i]),
                "converged": bool(p.converged[i]),
            }
            for i in range(len(p.l2_grid))
        ]


def fit_all(parts: Parts) -> Fits:
    """The baselines the config asks for, the JAX logistic probe, then the MLP grid.

    The scikit-learn baselines run on a second thread while the JAX probes fit: libsvm,
    liblinear and scipy's L-BFGS spend their time in C code that releases the GIL, on one core,
    beside XLA's compiles (one core) and its small solves. Every result is the same as in
    sequence (each fit is deterministic), and `methods` keeps the baselines' rows first."""
    methods: dict[str, dict[str, Any]] = {}
    preds: dict[str, np.ndarray] = {}
    with warnings.catch_warnings(), ThreadPoolExecutor(1, "sklearn-baselines") as pool:
        # Hitting max_iter is reported in the tables instead. The filter is set here, on the
        # calling thread, for both threads: catch_warnings is not thread-safe.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        background = pool.submit(_baselines, parts)
        note = f"jax_logistic over {len(parts.cfg.l2_grid)} L2 values"
        logistic, path, best = parts.timed("jax_logistic", lambda: _jax_logistic(parts), note)
        methods["jax_logistic"] = _logistic_entry(parts, logistic, path, best)
        y_test, top5 = parts.data.y_test, {}
        scores = logistic.decision_function(parts.data.x_test)
        preds["jax_logistic"] = _argmax_labels(scores, logistic.classes)
        top5["jax_logistic"] = top5_hits(scores, y_test, logistic.classes)
        mprobe, grid_rows = None, None
        if parts.cfg.mlp:
            mprobe, grid_rows = _mlp(parts)
            methods["mlp"] = _mlp_entry(parts, mprobe)
            scores = mprobe.decision_function(parts.data.x_test)
            preds["mlp"] = _argmax_labels(scores, mprobe.classes)
            top5["mlp"] = top5_hits(scores, y_test, mprobe.classes)
        protocol = str(parts.cfg.get("protocol", "jaxclip"))
        if protocol != "jaxclip":
            note = f"{protocol} linear probe"
            methods[protocol], preds[protocol] = parts.timed(
                protocol, lambda: _protocol_entry(parts, protocol), note
            )
        if not background.done():
            progress.step("the scikit-learn baselines")
        baseline_methods, baseline_preds, svc_skipped, sklearn_val = background.result()
    return Fits(
        {**baseline_methods, **methods},
        svc_skipped,
        sklearn_val,
        logistic,
        path,
        best,
        mprobe,
        grid_rows,
        {**baseline_preds, **preds},
        top5,
    )


def _argmax_labels(scores: Any, classes: np.ndarray) -> np.ndarray:
    """The predicted labels of (N, C) scores whose columns are `classes` (first of ties)."""
    return np.asarray(classes)[np.argmax(np.asarray(scores, np.float64), axis=1)]


def _baselines(
    parts: Parts,
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray], str | None, np.ndarray | None]:
    """The SVC, LinearSVC and scikit-learn logistic rows: (methods, their test predictions,
    why the SVC was skipped, the scikit-learn probe's (C, validation accuracy) rows). Runs on
    `fit_all`'s background thread: it names no progress step (the JAX fits do) and sets no
    warning filter."""
    d, cfg = parts.data, parts.cfg
    methods: dict[str, dict[str, Any]] = {}
    preds: dict[str, np.ndarray] = {}
    train_test = (d.x_train, d.y_train, d.x_test, d.y_test)
    why = svc_skip_reason(len(d.y_train), int(cfg.svc_max_train))
    if why is None:
        r = baselines.svc_linear(*train_test, C=float(cfg.svc_c))
        methods["svc_linear"] = _baseline_entry(r, "StandardScaler + SVC(linear)", "train")
        methods["svc_linear"]["chosen"] = f"C = {fmt_c(r.C)} (fixed)"
        preds["svc_linear"] = r.test_predictions
        parts.seconds["svc_linear"] = r.fit_seconds
    if cfg.linear_svc:
        r = baselines.linear_svc(*train_test, C=float(cfg.linear_svc_c))
        methods["linear_svc"] = _baseline_entry(r, "StandardScaler + LinearSVC", "train")
        methods["linear_svc"]["chosen"] = f"C = {fmt_c(r.C)} (fixed)"
        preds["linear_svc"] = r.test_predictions
        parts.seconds["linear_svc"] = r.fit_seconds
    if not cfg.sklearn_logistic:
        return methods, preds, why, None
    x_fit, y_fit, x_val, y_val = parts.fit_val(d.x_train, d.y_train)
    r = baselines.logistic_regression_clip(
        x_fit, y_fit, d.x_test, d.y_test, x_val, y_val,
        Cs=tuple(float(v) for v in cfg.sklearn_cs), max_iter=int(cfg.sklearn_max_iter),
    )  # fmt: skip
    m = _baseline_entry(
        r, "scikit-learn LogisticRegression (CLIP protocol)", "train (refit on fit + val)"
    )
    capped = r.n_iter is not None and r.n_iter >= int(cfg.sklearn_max_iter)
    m["converged"] = not capped
    m["chosen"] = f"C = {fmt_c(r.C)} (by validation)" + (
        f"; lbfgs stopped at max_iter = {cfg.sklearn_max_iter}" if capped else ""
    )
    m["val_accuracy"] = {fmt_c(k): v for k, v in (r.val_accuracy or {}).items()}
    methods["sklearn_logistic"] = m
    preds["sklearn_logistic"] = r.test_predictions
    parts.seconds["sklearn_logistic"] = r.fit_seconds
    val = r.val_accuracy or {}
    return (
        methods,
        preds,
        why,
        np.asarray([[c, a] for c, a in val.items()], np.float64).reshape(-1, 2),
    )


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


def _jax_logistic(parts: Parts) -> tuple[linear.LinearProbe, linear.LogisticPath, int]:
    d = parts.data
    probe, path, best = jax_logistic(
        *parts.fit_val(d.x_train, d.y_train),
        d.x_test,
        d.y_test,
        tuple(float(v) for v in parts.cfg.l2_grid),
        classes=d.classes,
        max_iter=int(parts.cfg.max_iter),
    )
    assert probe is not None
    return probe, path, best


def _logistic_entry(
    parts: Parts, probe: linear.LinearProbe, path: linear.LogisticPath, best: int
) -> dict[str, Any]:
    d = parts.data
    entry = score_probe(probe.decision_function(d.x_test), d.y_test, probe.classes)
    return {
        "method": "JAX logistic regression (CLIP protocol)",
        "trained_on": "train (refit on fit + val)",
        "train_accuracy": probe.train_accuracy,
        "test_accuracy": entry["top1"],
        "top5": entry["top5"],
        "macro_f1": entry["macro_f1"],
        "l2": probe.l2,
        "C": 1.0 / probe.l2,
        "chosen": f"L2 = {fmt_c(probe.l2)} (C = {fmt_c(1 / probe.l2)}, by validation)",
        "converged": probe.converged,
        "val_accuracy_at_chosen": float(path.accuracy["val"][best]),
    }


def _protocol_entry(parts: Parts, protocol: str) -> tuple[dict[str, Any], np.ndarray]:
    """The published protocol's probe (`jaxclip.probes.protocols`), fitted on the whole train
    split with its own validation split (same fraction and seed) and refit; (entry, its
    predicted test labels)."""
    d = parts.data
    kw = {"val_fraction": float(parts.cfg.val_fraction), "seed": parts.seed}
    if protocol == "clip_paper":
        p = protocols.fit_clip_paper(d.x_train, d.y_train, **kw)
        scores = p.decision_function(d.x_test)
        classes, chosen = (
            p.classes,
            f"lambda = {fmt_c(p.l2)} (C = {fmt_c(1 / p.l2)}, by validation)",
        )
        extra = {"l2": p.l2, "C": 1.0 / p.l2, "converged": p.converged}
        train_acc = p.train_accuracy
    else:
        classes, y = np.unique(d.y_train, return_inverse=True)
        p = protocols.fit_clip_benchmark(d.x_train, y, **kw)
        scores = protocols.l2_normalize(d.x_test) @ p.weight.T + p.bias
        chosen = f"weight decay = {fmt_c(p.weight_decay)} (AdamW, by validation)"
        extra = {"weight_decay": p.weight_decay}
        train_acc = p.accuracy(d.x_train, y)
    entry = score_probe(scores, d.y_test, classes)
    names = {"clip_paper": "CLIP paper protocol", "clip_benchmark": "CLIP_benchmark protocol"}
    row = {
        "method": f"{names[protocol]} linear probe",
        "trained_on": "train (refit on fit + val)",
        "train_accuracy": float(train_acc),
        "test_accuracy": entry["top1"],
        "top5": entry["top5"],
        "macro_f1": entry["macro_f1"],
        "chosen": chosen,
        **extra,
    }
    return row, _argmax_labels(scores, classes)


def _mlp(parts: Parts) -> tuple[mlp.MLPProbe, list[dict[str, Any]]]:
    d = parts.data
    progress.step(f"mlp over widths {tuple(int(w) for w in parts.cfg.mlp_widths)}")
    probe, rows, parts.seconds["mlp"] = fit_mlp_grid(
        *parts.fit_val(d.x_train, d.y_train), mlp_grid(parts.cfg), parts.seed
    )
    return probe, rows


def _mlp_entry(parts: Parts, probe: mlp.MLPProbe) -> dict[str, Any]:
    d = parts.data
    x_fit, y_fit, _, _ = parts.fit_val(d.x_train, d.y_train)
    entry = score_probe(probe.decision_function(d.x_test), d.y_test, probe.classes)
    conf = probe.config
    return {
        "method": f"MLP probe ({len(probe.hidden)} hidden layer"
        + ("s" if len(probe.hidden) > 1 else "")
        + ")",
        "trained_on": "fit part (early stopping on val)",
        "train_accuracy": probe.score(x_fit, y_fit),
        "test_accuracy": entry["top1"],
        "top5": entry["top5"],
        "macro_f1": entry["macro_f1"],
        "hidden": list(probe.hidden),
        "config": dict(conf),
        "val_accuracy": probe.val_accuracy,
        "best_epoch": probe.best_epoch,
        "chosen": f"width {probe.hidden[0]}, lr {conf['lr']:g}, wd {conf['wd']:g}, "
        f"dropout {conf['dropout']:g}, seed {conf['seed']}, epoch {probe.best_epoch}",
    }
