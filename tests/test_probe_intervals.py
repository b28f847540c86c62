"""Intervals of probe rows: top-5 hits against scikit-learn, the stored intervals against
numpy's binomial draws, and the report row that shows them."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, top_k_accuracy_score

from jaxclip.analysis import bootstrap
from jaxclip.studies.probe_common import add_intervals, method_rows, top5_hits


def _scores(n=300, c=12, seed=0):
    rng = np.random.default_rng(seed)
    classes = np.arange(c) * 10  # labels that are not column indices
    y = classes[rng.integers(0, c, n)]
    scores = rng.normal(size=(n, c)) + 1.5 * (classes[None, :] == y[:, None])
    return scores, y, classes


def test_top5_hits_match_scikit_learn():
    scores, y, classes = _scores()
    hits = top5_hits(scores, y, classes)
    assert hits.dtype == bool and hits.shape == y.shape
    assert hits.mean() == pytest.approx(top_k_accuracy_score(y, scores, k=5, labels=classes))
    assert top5_hits(scores[:, :5], y, classes[:5]) is None  # top-5 is undefined with 5 classes


def test_add_intervals_on_a_method_row():
    scores, y, classes = _scores(seed=1)
    pred = classes[np.argmax(scores, axis=1)]
    hits = top5_hits(scores, y, classes)
    m = {"method": "probe", "test_accuracy": float(np.mean(pred == y)), "top5": float(hits.mean()),
         "macro_f1": f1_score(y, pred, average="macro"), "train_accuracy": 1.0, "chosen": "-"}  # fmt: skip
    methods = {"probe": m, "other": {"method": "no predictions"}}
    add_intervals(methods, {"probe": pred}, {"probe": hits}, y, classes, seed=7)
    n = len(y)
    for key, right in (("test_accuracy_ci", pred == y), ("top5_ci", hits)):
        k = int(right.sum())
        lo, hi = bootstrap.percentile_interval(
            np.random.default_rng(7).binomial(n, k / n, 10_000) / n
        )
        assert m[key] == {"value": k / n, "ci_low": lo, "ci_high": hi, "n": n}
    assert m["macro_f1_ci"]["value"] == pytest.approx(m["macro_f1"])
    assert "test_accuracy_ci" not in methods["other"]
    row = method_rows({"probe": m}, {}, "chosen")[0]
    ci = m["top5_ci"]
    assert (
        row["top-5 %"]
        == f"{100 * m['top5']:.2f} [{100 * ci['ci_low']:.2f}, {100 * ci['ci_high']:.2f}]"
    )
