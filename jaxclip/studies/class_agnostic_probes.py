"""The class-agnostic study's probes: SVC, JAX logistic and MLP on the K prompt cosines, and the
reference rows (zero-shot with class names; the logistic probe on the embedding itself)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from jaxclip import progress
from jaxclip.analysis import logits as lg
from jaxclip.probes import baselines
from jaxclip.probes.protocol import (
    LabelledSplits,
    fit_mlp_grid,
    jax_logistic,
    normalize_rows,
    score_probe,
    zero_shot_scores,
)
from jaxclip.studies.probe_common import mlp_grid, svc_skip_reason, top5_hits


@dataclasses.dataclass(frozen=True)
class Features:
    """Raw cosines `z_*` (N, K) of each split to the prompts and the probes' features `f_*`
    (the cosines × the feature scale: 1, or the model's logit scale)."""

    z_train: np.ndarray
    z_test: np.ndarray
    f_train: np.ndarray
    f_test: np.ndarray

    @classmethod
    def of(cls, data: LabelledSplits, prompts: np.ndarray, scale: float) -> Features:
        """The cosines of both splits to `prompts` (K, D), and the features at `scale`."""
        ztr = np.asarray(lg.prompt_logits(data.x_train, prompts))
        zte = np.asarray(lg.prompt_logits(data.x_test, prompts))
        return cls(ztr, zte, ztr * scale, zte * scale)


@dataclasses.dataclass
class Fits:
    """results.json's `methods`, `svc_tau`, `svc_skipped`, `mlp_grid`, `reference_methods`,
    and the seconds per fit."""

    methods: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    svc_tau: list[dict[str, float]] = dataclasses.field(default_factory=list)
    # per `svc_tau` row: (N_test,) bool, the test image classified right
    svc_tau_correct: list[np.ndarray] = dataclasses.field(default_factory=list)
    # method -> (N_test,) predicted labels, and its per-image top-5 hits (more than 5 classes)
    predictions: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    top5: dict[str, np.ndarray | None] = dataclasses.field(default_factory=dict)
    svc_skipped: str | None = None
    mlp_grid: list[dict[str, Any]] | None = None
    references: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)


def feature_name(k: int, features: str) -> str:
    """How the tables name the K features ("32 generic-prompt cosines")."""
    return f"{k} generic-prompt " + ("cosines" if features == "cosine" else "logits")


def fit_probes(
    ctx: Any,
    data: LabelledSplits,
    feats: Features,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: Any,
    seed: int,
) -> Fits:
    """Every probe of `cfg` on the features, then the reference rows."""
    fits = Fits()
    fname = feature_name(feats.f_train.shape[1], cfg.features)
    fits.svc_skipped = svc_skip_reason(len(data.y_train), int(cfg.svc_max_train))
    if fits.svc_skipped is None:
        _svc(data, feats, cfg, fname, fits)
    ftr, fte, ytr = feats.f_train, feats.f_test, data.y_train
    split = (ftr[fit_idx], ytr[fit_idx], ftr[val_idx], ytr[val_idx])
    progress.step(f"jax_logistic over {len(cfg.l2_grid)} L2 values")
    t0 = time.perf_counter()
    lprobe, _, _ = jax_logistic(
        *split, fte, data.y_test, tuple(float(v) for v in cfg.l2_grid),
        classes=data.classes, max_iter=int(cfg.max_iter),
    )  # fmt: skip
    fits.seconds["jax_logistic"] = time.perf_counter() - t0
    assert lprobe is not None
    scores = lprobe.decision_function(fte)
    sc = score_probe(scores, data.y_test, lprobe.classes)
    _keep(fits, "jax_logistic", scores, data, lprobe.classes)
    fits.methods["jax_logistic"] = {
        "method": f"class-agnostic: JAX logistic on {fname}",
        "features": "StandardScaler + " + fname,
        "train_accuracy": lprobe.train_accuracy,
        **_scores(sc),
        "l2": lprobe.l2,
        "chosen": f"L2 = {lprobe.l2:.3g} (C = {1 / lprobe.l2:.3g}, by validation)",
        "converged": bool(lprobe.converged),
    }
    if cfg.mlp:
        progress.step(f"mlp over widths {tuple(int(w) for w in cfg.mlp_widths)}")
        mprobe, fits.mlp_grid, fits.seconds["mlp"] = fit_mlp_grid(*split, mlp_grid(cfg), seed)
        scores = mprobe.decision_function(fte)
        sc = score_probe(scores, data.y_test, mprobe.classes)
        _keep(fits, "mlp", scores, data, mprobe.classes)
        conf = mprobe.config
        fits.methods["mlp"] = {
            "method": f"class-agnostic: MLP on {fname}",
            "features": "StandardScaler + " + fname,
            "train_accuracy": mprobe.score(split[0], split[1]),
            **_scores(sc),
            "hidden": list(mprobe.hidden),
            "config": dict(conf),
            "chosen": f"width {mprobe.hidden[0]}, wd {conf['wd']:g}, seed {conf['seed']}, "
            f"epoch {mprobe.best_epoch} (fit part)",
        }
    _references(ctx, data, fit_idx, val_idx, cfg, fits)
    return fits


def _keep(fits: Fits, name: str, scores: Any, data: LabelledSplits, classes: Any) -> None:
    """A probe's test predictions (argmax, first of ties) and top-5 hits, for its intervals."""
    s = np.asarray(scores, np.float64)
    fits.predictions[name] = np.asarray(classes)[np.argmax(s, axis=1)]
    fits.top5[name] = top5_hits(s, data.y_test, np.asarray(classes))


def _scores(sc: dict[str, Any]) -> dict[str, Any]:
    return {"test_accuracy": sc["top1"], "top5": sc["top5"], "macro_f1": sc["macro_f1"]}


def _svc(data: LabelledSplits, feats: Features, cfg: Any, fname: str, fits: Fits) -> None:
    """The thesis's SVC on the features, and on logits / τ for each of `cfg.svc_taus`."""
    progress.step("svc_linear")
    r = baselines.svc_linear(
        feats.f_train, data.y_train, feats.f_test, data.y_test,
        C=float(cfg.svc_c), standardize=bool(cfg.svc_standardize),
    )  # fmt: skip
    fits.methods["svc_linear"] = {
        "method": f"class-agnostic: SVC(linear) on {fname}",
        "features": ("StandardScaler + " if cfg.svc_standardize else "no scaler, ") + fname,
        "train_accuracy": r.train_accuracy,
        "test_accuracy": r.test_accuracy,
        "top5": None,
        "macro_f1": r.macro_f1,
        "chosen": f"C = {cfg.svc_c:g} (fixed, as the thesis)",
    }
    fits.seconds["svc_linear"] = r.fit_seconds
    fits.predictions["svc_linear"] = np.asarray(r.test_predictions)
    for i, tau in enumerate(cfg.svc_taus):
        progress.step(f"svc on logits / tau {i + 1}/{len(cfg.svc_taus)}")
        rt = baselines.svc_linear(
            feats.z_train / float(tau), data.y_train, feats.z_test / float(tau), data.y_test,
            C=float(cfg.svc_c), standardize=False,
        )  # fmt: skip
        fits.svc_tau.append({"tau": float(tau), "test_accuracy": rt.test_accuracy})
        fits.svc_tau_correct.append(np.asarray(rt.test_predictions) == data.y_test)
        fits.seconds[f"svc_tau_{tau:g}"] = rt.fit_seconds


def _references(
    ctx: Any, data: LabelledSplits, fit_idx: np.ndarray, val_idx: np.ndarray, cfg: Any, fits: Fits
) -> None:
    """Zero-shot with one prompt per class name; the logistic probe on the embedding itself."""
    names = [data.class_name(k) for k in data.classes]
    if len(names) >= 2:
        text = np.asarray(
            ctx.texts([cfg.zero_shot_template.replace("{}", c) for c in names]), np.float32
        )
        sc = score_probe(zero_shot_scores(data.x_test, text), data.y_test, data.classes)
        fits.references["zero_shot"] = {
            "method": f'zero-shot ("{cfg.zero_shot_template}", class names)',
            "features": "cosines to C class prompts, no labels",
            **_scores(sc),
        }
    if not cfg.ceiling:
        return
    progress.step("ceiling: jax_logistic on the embeddings")
    t0 = time.perf_counter()
    xn_tr, xn_te, ytr = normalize_rows(data.x_train), normalize_rows(data.x_test), data.y_train
    cprobe, _, _ = jax_logistic(
        xn_tr[fit_idx], ytr[fit_idx], xn_tr[val_idx], ytr[val_idx],
        xn_te, data.y_test, tuple(float(v) for v in cfg.l2_grid),
        classes=data.classes, max_iter=int(cfg.max_iter),
    )  # fmt: skip
    fits.seconds["ceiling"] = time.perf_counter() - t0
    assert cprobe is not None
    sc = score_probe(cprobe.decision_function(xn_te), data.y_test, data.classes)
    fits.references["ceiling"] = {
        "method": "JAX logistic on the normalised image embeddings",
        "features": f"StandardScaler + the {data.x_train.shape[1]}-d embedding itself",
        **_scores(sc),
        "converged": bool(cprobe.converged),
    }
