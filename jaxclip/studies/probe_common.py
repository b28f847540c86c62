"""Pieces the probe and class-agnostic studies share: the MLP grid's config fields, the
skipped-SVC note, and the rows of their probe tables ("At a glance" and the methods table)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxclip.analysis import bootstrap, metrics
from jaxclip.config_args import ConfigError
from jaxclip.probes.protocol import MLPGrid
from jaxclip.report.intervals import format_ci
from jaxclip.studies.shared import check_positive_tuple

# The probe study's parts that run on a second thread beside the JAX probes
# (`probe_fits.fit_all`): their wall times overlap the others'.
BACKGROUND_PARTS = ("svc_linear", "linear_svc", "sklearn_logistic")

SVC_COST_NOTE = (
    "libsvm's one-vs-one SVC grows roughly quadratically with N: about 154 s to fit and 110 s "
    "to predict for 50k × 512 features, 100 classes, on a 2-core CPU"
)
MLP_INT_FIELDS = ("mlp_layers", "mlp_epochs", "mlp_patience", "mlp_batch_size")


def check_mlp_config(section: str, cfg: Any) -> None:
    """Rejects bad `mlp_*` grid values of `config.<section>` (one ConfigError line each)."""
    for field in MLP_INT_FIELDS:
        if int(cfg[field]) < 1:
            raise ConfigError(f"config.{section}.{field}={cfg[field]} must be >= 1")
    check_positive_tuple(f"{section}.mlp_widths", cfg.mlp_widths, integer=True)
    check_positive_tuple(f"{section}.mlp_learning_rates", cfg.mlp_learning_rates)
    check_positive_tuple(f"{section}.mlp_weight_decays", cfg.mlp_weight_decays, allow_zero=True)
    check_positive_tuple(f"{section}.mlp_seeds", cfg.mlp_seeds, integer=True, allow_zero=True)


def check_mlp_dropouts(section: str, cfg: Any, allowed: str) -> None:
    """`mlp_dropouts` must be rates in [0, 1) (`allowed` words the message's end)."""
    if not cfg.mlp_dropouts or any(not 0.0 <= float(p) < 1.0 for p in cfg.mlp_dropouts):
        raise ConfigError(
            f"config.{section}.mlp_dropouts={tuple(cfg.mlp_dropouts)} must be {allowed}"
        )


def mlp_grid(cfg: Any) -> MLPGrid:
    """The MLP grid a study's config section describes (its `mlp_*` fields)."""
    return MLPGrid(
        widths=tuple(int(w) for w in cfg.mlp_widths),
        layers=int(cfg.mlp_layers),
        learning_rates=tuple(float(v) for v in cfg.mlp_learning_rates),
        weight_decays=tuple(float(v) for v in cfg.mlp_weight_decays),
        dropouts=tuple(float(v) for v in cfg.mlp_dropouts),
        seeds=tuple(int(s) for s in cfg.mlp_seeds),
        epochs=int(cfg.mlp_epochs),
        patience=int(cfg.mlp_patience),
        batch_size=int(cfg.mlp_batch_size),
    )


def svc_skip_reason(n_train: int, svc_max_train: int) -> str | None:
    """Why the SVC baseline is not run on `n_train` examples (None: it runs)."""
    if n_train <= int(svc_max_train):
        return None
    if int(svc_max_train) == 0:
        return "`svc_max_train = 0`"
    return f"the train split has {n_train} examples > `svc_max_train = {svc_max_train}`"


def fmt_c(c: float) -> str:
    """A regularisation constant as the tables show it (3 significant digits)."""
    return f"{c:.3g}"


def pct_or_none(x: float | None) -> float | None:
    """A fraction in percent; None (and NaN) stay None."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * float(x)


def top5_hits(scores: Any, y: np.ndarray, classes: np.ndarray) -> np.ndarray | None:
    """(N,) bool: the true class is among the 5 highest of (N, C) `scores` (columns `classes`;
    ranks with the first-of-ties rule, as the top-5 accuracy counts); None with <= 5 classes."""
    if len(classes) <= 5:
        return None
    idx = np.searchsorted(np.asarray(classes), np.asarray(y))
    return metrics.class_ranks(np.asarray(scores, np.float64), idx) < 5


def add_intervals(
    methods: Mapping[str, dict[str, Any]],
    predictions: Mapping[str, np.ndarray],
    top5: Mapping[str, np.ndarray | None],
    y: np.ndarray,
    classes: np.ndarray,
    seed: int,
) -> None:
    """Adds the 95 % bootstrap intervals over the test images (config seed) to every method row
    with stored predictions: `test_accuracy_ci`, `macro_f1_ci`, and `top5_ci` where `top5` holds
    the method's per-image top-5 hits."""
    y, classes = np.asarray(y), np.asarray(classes)
    for name, m in methods.items():
        pred = predictions.get(name)
        if pred is None:
            continue
        m["test_accuracy_ci"] = bootstrap.mean_interval(pred == y, seed=seed).as_dict()
        m["macro_f1_ci"] = bootstrap.class_interval(
            np.searchsorted(classes, y),
            np.searchsorted(classes, pred),
            int(classes.size),
            "macro_f1",
            seed=seed,
        ).as_dict()
        hits = top5.get(name)
        if hits is not None and m.get("top5") is not None:
            m["top5_ci"] = bootstrap.mean_interval(hits, seed=seed).as_dict()


def fraction_or_none(x: float | None) -> float | None:
    """A stored fraction, None (and NaN) as None: for `format_ci`, which shows it in percent."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def headline_rows(methods: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The "At a glance" rows of fitted probes: method, test top-1, top-5, macro F1 (fractions),
    `top1_ci`, `top5_ci`, `macro_f1_ci` where the row has these bootstrap intervals, and `converged` for the probes whose
    solver reports it."""
    return [
        {
            "method": m["method"],
            "top1": m["test_accuracy"],
            "top5": m.get("top5"),
            "macro_f1": m["macro_f1"],
            **({"top1_ci": m["test_accuracy_ci"]} if "test_accuracy_ci" in m else {}),
            **({"top5_ci": m["top5_ci"]} if "top5_ci" in m else {}),
            **({"macro_f1_ci": m["macro_f1_ci"]} if "macro_f1_ci" in m else {}),
            **({"converged": bool(m["converged"])} if "converged" in m else {}),
        }
        for m in methods.values()
    ]


UNCONVERGED = "†"


def flag_unconverged(method: str, converged: bool | None) -> str:
    """`method` with the † mark when its fit is flagged as not converged (False, not None)."""
    return f"{method} {UNCONVERGED}" if converged is False else method


def unconverged_note(methods: Sequence[str]) -> str | None:
    """The footnote under a table whose rows `methods` carry the † mark (None: no mark)."""
    if not methods:
        return None
    if len(methods) == 1:
        return (
            f"{UNCONVERGED} Not converged: the solver of {methods[0]} stopped at its iteration "
            "cap (`max_iter`) before meeting its tolerance; the numbers shown are those of that "
            "unconverged fit."
        )
    names = ", ".join(methods[:-1]) + f" and {methods[-1]}"
    return (
        f"{UNCONVERGED} Not converged: the solvers of {names} stopped at their iteration caps "
        "(`max_iter`) before meeting their tolerances; the numbers shown are those of these "
        "unconverged fits."
    )


def method_rows(
    methods: Mapping[str, Mapping[str, Any]], seconds: Mapping[str, float], column: str
) -> list[dict[str, Any]]:
    """One report row per fitted probe: method, `column` (what it was trained on), train / test
    accuracy, top-5 and macro F1 in %, the chosen setting and the fit time in seconds. A fit
    whose `converged` flag is False carries the † mark (`unconverged_note` explains it). Test
    accuracy, top-5 and macro F1 carry their bootstrap interval (`test_accuracy_ci`,
    `top5_ci`, `macro_f1_ci`) when the row has one: `63.76 [63.30, 64.21]`."""
    return [
        {
            "method": flag_unconverged(m["method"], m.get("converged")),
            column: m[column.replace(" ", "_")],
            "train acc %": pct_or_none(m["train_accuracy"]),
            "test acc %": format_ci(m.get("test_accuracy_ci"), m["test_accuracy"]),
            "top-5 %": format_ci(m.get("top5_ci"), fraction_or_none(m.get("top5"))),
            "macro F1 %": format_ci(m.get("macro_f1_ci"), m["macro_f1"]),
            "chosen": m["chosen"],
            "fit s": seconds.get(key),
        }
        for key, m in methods.items()
    ]
