"""scikit-learn baseline probes on frozen embeddings (the sources' setting and the CLIP paper's).

* `svc_linear`: StandardScaler + SVC(kernel="linear", C=1), exactly the thesis' baseline
  (CIFAR-10 93.24 %, CIFAR-100 78.01 % with ViT-B/32 features).
* `linear_svc`: StandardScaler + LinearSVC (liblinear, one-vs-rest, squared hinge): the fast
  linear SVM.
* `logistic_regression_clip`: the CLIP paper's linear probe (Radford et al., 2021, A.3):
  LogisticRegression (lbfgs), C chosen on a held-out validation split from a log grid, then a
  refit on train + val at that C.
* `logistic_regression_sweep`: one LogisticRegression per C on the same training set (the
  regularisation path; what `jaxclip.probes.linear.logistic_path` computes in one solve).

Each returns `BaselineResult` (accuracies are fractions; seconds are wall clock).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxclip.probes.split import train_val_split

DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-3, 4, 8))


@dataclasses.dataclass
class BaselineResult:
    """One scikit-learn probe.

    Attributes:
      name: which baseline; C: the (chosen) inverse regularisation strength.
      train_accuracy: on the training set (or on `train_score_max` random training samples;
        nan when not scored); test_accuracy; macro_f1: test macro F1.
      fit_seconds, predict_seconds: wall time (predict = the test set).
      val_accuracy: {C: validation accuracy} of a selection step, else None.
      n_iter: solver iterations of the final fit, when sklearn reports them.
      test_predictions: (N_test,) predicted labels of the test set (for paired comparisons).
    """

    name: str
    C: float
    train_accuracy: float
    test_accuracy: float
    macro_f1: float
    fit_seconds: float
    predict_seconds: float
    val_accuracy: dict[float, float] | None = None
    n_iter: int | None = None
    test_predictions: np.ndarray | None = None


def _check(x_train: Any, y_train: Any, x_test: Any, y_test: Any) -> tuple[np.ndarray, ...]:
    xtr, xte = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    ytr, yte = np.asarray(y_train), np.asarray(y_test)
    if (
        xtr.ndim != 2
        or xte.ndim != 2
        or xtr.shape[1] != xte.shape[1]
        or ytr.shape != (xtr.shape[0],)
        or yte.shape != (xte.shape[0],)
    ):
        raise ValueError(
            "need x_train (N, D), y_train (N,), x_test (M, D), y_test (M,); got "
            f"{xtr.shape}, {ytr.shape}, {xte.shape}, {yte.shape}"
        )
    return xtr, ytr, xte, yte


def _check_c(c: float) -> float:
    if not (np.isfinite(c) and c > 0):
        raise ValueError(f"C must be a positive number; got {c}")
    return float(c)


def _train_score(model: Any, x: np.ndarray, y: np.ndarray, limit: int | None, seed: int) -> float:
    if limit == 0:
        return float("nan")
    if limit is not None and x.shape[0] > limit:
        idx = np.random.default_rng(seed).choice(x.shape[0], limit, replace=False)
        x, y = x[idx], y[idx]
    return float(model.score(x, y))


def _finish(
    name: str,
    model: Any,
    c: float,
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    yte: np.ndarray,
    fit_seconds: float,
    train_score_max: int | None,
    **extra: Any,
) -> BaselineResult:
    from sklearn.metrics import accuracy_score, f1_score

    t0 = time.perf_counter()
    pred = model.predict(xte)
    predict_seconds = time.perf_counter() - t0
    n_iter = getattr(model[-1] if hasattr(model, "steps") else model, "n_iter_", None)
    if n_iter is not None:
        n_iter = int(np.max(n_iter))
    return BaselineResult(
        name=name,
        C=c,
        train_accuracy=_train_score(model, xtr, ytr, train_score_max, 0),
        test_accuracy=float(accuracy_score(yte, pred)),
        macro_f1=float(f1_score(yte, pred, average="macro")),
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
        n_iter=n_iter,
        test_predictions=np.asarray(pred),
        **extra,
    )


def _pipeline(estimator: Any, standardize: bool) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), estimator) if standardize else make_pipeline(estimator)


def svc_linear(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    C: float = 1.0,
    standardize: bool = True,
    random_state: int = 42,
    train_score_max: int | None = 10_000,
) -> BaselineResult:
    """StandardScaler + SVC(kernel="linear", C=C, random_state=42): the thesis' baseline.

    libsvm, one-vs-one; cost grows roughly quadratically with N (≈ 154 s fit + 110 s predict
    for 50k x 512, 100 classes on a 2-core CPU). Training accuracy is measured on at most
    `train_score_max` random training samples (0 skips it): predicting is as slow as fitting.
    """
    from sklearn.svm import SVC

    xtr, ytr, xte, yte = _check(x_train, y_train, x_test, y_test)
    c = _check_c(C)
    model = _pipeline(SVC(kernel="linear", C=c, random_state=random_state), standardize)
    t0 = time.perf_counter()
    model.fit(xtr, ytr)
    fit_s = time.perf_counter() - t0
    return _finish("SVC(linear)", model, c, xtr, ytr, xte, yte, fit_s, train_score_max)


def linear_svc(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    C: float = 1.0,
    standardize: bool = True,
    max_iter: int = 1000,
    random_state: int = 0,
    train_score_max: int | None = None,
) -> BaselineResult:
    """StandardScaler + LinearSVC(C=C) (liblinear, one-vs-rest, squared hinge, dual="auto")."""
    from sklearn.svm import LinearSVC

    xtr, ytr, xte, yte = _check(x_train, y_train, x_test, y_test)
    c = _check_c(C)
    model = _pipeline(LinearSVC(C=c, max_iter=max_iter, random_state=random_state), standardize)
    t0 = time.perf_counter()
    model.fit(xtr, ytr)
    fit_s = time.perf_counter() - t0
    return _finish("LinearSVC", model, c, xtr, ytr, xte, yte, fit_s, train_score_max)


def logistic_regression_sweep(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    standardize: bool = True,
    max_iter: int = 100,
    tol: float = 1e-4,
    train_score_max: int | None = None,
) -> list[BaselineResult]:
    """One StandardScaler + LogisticRegression(C) (lbfgs, multinomial) per C, fit on train.

    sklearn's defaults (max_iter=100, tol=1e-4) unless given; each result's fit_seconds is its
    own fit (the sweep's total is their sum).
    """
    from sklearn.linear_model import LogisticRegression

    xtr, ytr, xte, yte = _check(x_train, y_train, x_test, y_test)
    out = []
    for c in Cs:
        c = _check_c(c)
        model = _pipeline(LogisticRegression(C=c, max_iter=max_iter, tol=tol), standardize)
        t0 = time.perf_counter()
        model.fit(xtr, ytr)
        fit_s = time.perf_counter() - t0
        out.append(
            _finish("LogisticRegression", model, c, xtr, ytr, xte, yte, fit_s, train_score_max)
        )
    return out


def logistic_regression_clip(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    x_val: Any = None,
    y_val: Any = None,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    max_iter: int = 1000,
    refit: bool = True,
    train_score_max: int | None = None,
) -> BaselineResult:
    """The CLIP paper's logistic-regression probe with scikit-learn.

    C is chosen by validation accuracy over `Cs` (ties: the smallest C, i.e. the strongest
    regularisation), the model refitted on train + val at that C. Without (x_val, y_val), a
    random `val_fraction` of the training set is the validation split (`train_val_split`).
    fit_seconds covers the selection and the refit.
    """
    from sklearn.linear_model import LogisticRegression

    xtr, ytr, xte, yte = _check(x_train, y_train, x_test, y_test)
    cs = [_check_c(c) for c in Cs]
    if not cs:
        raise ValueError("Cs must be non-empty")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is None:
        fit, val = train_val_split(xtr.shape[0], val_fraction, seed)
        xva, yva = xtr[val], ytr[val]
        xfit, yfit = xtr[fit], ytr[fit]
    else:
        xva, yva = np.asarray(x_val, np.float32), np.asarray(y_val)
        xfit, yfit = xtr, ytr
    t0 = time.perf_counter()
    val_acc = {}
    for c in cs:
        m = _pipeline(LogisticRegression(C=c, max_iter=max_iter), standardize).fit(xfit, yfit)
        val_acc[c] = float(m.score(xva, yva))
    best_acc = max(val_acc.values())
    best_c = min(c for c, a in val_acc.items() if a >= best_acc - 1e-12)
    if refit:
        xall, yall = np.concatenate([xfit, xva]), np.concatenate([yfit, yva])
        model = _pipeline(LogisticRegression(C=best_c, max_iter=max_iter), standardize)
        model.fit(xall, yall)
    else:
        xall, yall = xfit, yfit
        model = _pipeline(LogisticRegression(C=best_c, max_iter=max_iter), standardize)
        model.fit(xfit, yfit)
    fit_s = time.perf_counter() - t0
    return _finish(
        "LogisticRegression (CLIP protocol)",
        model,
        best_c,
        xall,
        yall,
        xte,
        yte,
        fit_s,
        train_score_max,
        val_accuracy=val_acc,
    )
