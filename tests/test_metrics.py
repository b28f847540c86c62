"""Classification metrics: hand-computed cases, the tie rules, and scikit-learn as the reference."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxclip.analysis import metrics


def _tie_heavy(n=300, c=7, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n, c)).astype(np.float32)  # many exact ties
    labels = rng.integers(0, c, size=n)
    return scores, labels


def test_topk_hand_example():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    # true-class ranks: 0, 1, 2
    np.testing.assert_array_equal(metrics.class_ranks(logits, labels), [0, 1, 2])
    assert metrics.topk_accuracy(logits, labels, ks=(1, 2, 3)) == {
        "top1": pytest.approx(1 / 3),
        "top2": pytest.approx(2 / 3),
        "top3": 1.0,
    }


def test_tie_rules_by_hand():
    logits = np.array([[1.0, 1.0, 0.0, 1.0]] * 3)
    labels = np.array([0, 1, 3])  # all three tied at the top score
    # "first": lower index wins -> ranks 0, 1, 2.
    np.testing.assert_array_equal(metrics.class_ranks(logits, labels, "first"), [0, 1, 2])
    # "optimistic": no class strictly higher -> 0.
    np.testing.assert_array_equal(metrics.class_ranks(logits, labels, "optimistic"), [0, 0, 0])
    # "pessimistic": the two other tied classes count against it -> 2.
    np.testing.assert_array_equal(metrics.class_ranks(logits, labels, "pessimistic"), [2, 2, 2])
    assert metrics.topk_accuracy(logits, labels, ks=(1,), ties="first")["top1"] == pytest.approx(
        1 / 3
    )


def test_first_rule_top1_equals_argmax_accuracy():
    scores, labels = _tie_heavy()
    top1 = metrics.topk_accuracy(scores, labels, ks=(1,))["top1"]
    assert top1 == pytest.approx(np.mean(np.argmax(scores, axis=1) == labels))


def test_tie_rules_order_and_permutation_invariance():
    scores, labels = _tie_heavy(seed=1)
    first = metrics.class_ranks(scores, labels, "first")
    opt = metrics.class_ranks(scores, labels, "optimistic")
    pes = metrics.class_ranks(scores, labels, "pessimistic")
    assert np.all(opt <= first) and np.all(first <= pes)
    assert np.any(opt < pes)  # the data really has ties
    perm = np.random.default_rng(2).permutation(scores.shape[1])
    inv = np.argsort(perm)
    for rule in ("optimistic", "pessimistic"):
        np.testing.assert_array_equal(
            metrics.class_ranks(scores[:, perm], inv[labels], rule),
            metrics.class_ranks(scores, labels, rule),
        )


def test_topk_matches_sklearn_without_ties():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((500, 10))
    labels = rng.integers(0, 10, 500)
    ours = metrics.topk_accuracy(scores, labels, ks=(1, 2, 5, 9))
    for k in (1, 2, 5, 9):
        ref = skm.top_k_accuracy_score(labels, scores, k=k, labels=np.arange(10))
        assert ours[f"top{k}"] == pytest.approx(ref, abs=0)


def test_sklearn_breaks_ties_toward_the_higher_index():
    # sklearn sorts with a stable ascending argsort and reverses: the LAST tied class ranks first.
    # That is our "first" rule on the class-reversed problem.
    scores, labels = _tie_heavy(seed=4)
    c = scores.shape[1]
    for k in (1, 2, 3):
        ref = skm.top_k_accuracy_score(labels, scores, k=k, labels=np.arange(c))
        mirrored = metrics.topk_accuracy(scores[:, ::-1], c - 1 - labels, ks=(k,))[f"top{k}"]
        assert mirrored == pytest.approx(ref, abs=0)
    ours = metrics.topk_accuracy(scores, labels, ks=(1,))["top1"]
    ref1 = skm.top_k_accuracy_score(labels, scores, k=1, labels=np.arange(c))
    assert ours != ref1  # on this tie-heavy data the two conventions really differ


def test_confusion_and_prf_match_sklearn():
    rng = np.random.default_rng(5)
    c = 6
    y_true = rng.integers(0, c - 1, 400)  # class 5 never occurs in y_true
    y_pred = rng.integers(0, c, 400)
    y_pred[y_pred == 2] = 3  # class 2 is never predicted
    cm = metrics.confusion_matrix(y_true, y_pred, c)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=np.arange(c)))
    p, r, f, s = metrics.per_class_prf(cm)
    rp, rr, rf, rs = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(c), zero_division=0
    )
    np.testing.assert_allclose(p, rp, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r, rr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(f, rf, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(s, rs)
    assert p[2] == 0 and r[5] == 0  # the stated zero-division rules
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the absent class
        bal = skm.balanced_accuracy_score(y_true, y_pred)
        mf1 = skm.f1_score(y_true, y_pred, average="macro")
    assert metrics.mean_per_class_recall(cm) == pytest.approx(bal, abs=1e-15)
    assert metrics.macro_f1(cm) == pytest.approx(mf1, abs=1e-15)


def test_confusion_by_hand():
    cm = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    p, r, f, s = metrics.per_class_prf(cm)
    np.testing.assert_allclose(p, [1 / 2, 1 / 2, 1])
    np.testing.assert_allclose(r, [1 / 2, 1, 2 / 3])
    np.testing.assert_allclose(f, [1 / 2, 2 / 3, 4 / 5])
    np.testing.assert_array_equal(s, [2, 1, 3])


def test_best_worst_classes_with_ties():
    f1 = np.array([0.5, 0.9, 0.1, 0.9, 0.1])
    out = metrics.best_worst_classes(f1, ["a", "b", "c", "d", "e"], k=2)
    assert [r["class"] for r in out["best"]] == ["b", "d"]
    assert [r["class"] for r in out["worst"]] == ["c", "e"]
    assert out["best"][0] == {"class": "b", "index": 1, "f1": 0.9}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: metrics.topk_accuracy([[1.0, 2.0]], [0], ties="random"), "ties='random'"),
        (lambda: metrics.topk_accuracy([[1.0, 2.0]], [2]), r"\[0, 2\)"),
        (lambda: metrics.topk_accuracy([[np.nan, 2.0]], [0]), "NaN"),
        (lambda: metrics.topk_accuracy([[1.0, 2.0]], [0, 1]), "labels must be"),
        (lambda: metrics.topk_accuracy([[1.0, 2.0]], [0], ks=(0,)), "positive"),
        (lambda: metrics.confusion_matrix([0, 3], [0, 1], 3), "y_true"),
        (lambda: metrics.per_class_prf(np.ones((2, 3))), "square"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
