"""Zero-shot classification from embeddings, checked against float64 numpy and hand-built cases."""

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxclip.analysis import metrics, zero_shot
from jaxclip.report import plots_classification as pc


def _unit64(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _problem(n=200, c=6, d=16, noise=0.9, seed=0):
    """Images near random class directions, raw norms all over the place."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d))
    labels = rng.integers(0, c, n)
    images = (centers[labels] + noise * rng.standard_normal((n, d))) * rng.uniform(0.2, 30, (n, 1))
    return images.astype(np.float32), labels, centers


def test_class_text_embeddings_vs_float64():
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((5, 7, 12)) * rng.uniform(0.1, 50, (5, 7, 1))
    ref = _unit64(_unit64(raw).mean(axis=1))
    got = np.asarray(zero_shot.class_text_embeddings(raw.astype(np.float32)))
    np.testing.assert_allclose(got, ref, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    # One template: plain normalisation; jit == eager.
    np.testing.assert_allclose(
        np.asarray(zero_shot.class_text_embeddings(raw[:, 0])), _unit64(raw[:, 0]), atol=2e-6
    )
    jitted = jax.jit(zero_shot.class_text_embeddings)(raw.astype(np.float32))
    np.testing.assert_allclose(np.asarray(jitted), got, atol=1e-6)


def test_zero_shot_logits_vs_float64_and_scale():
    images, _, centers = _problem()
    w = _unit64(centers)
    ref = 100.0 * _unit64(images) @ w.T
    got = np.asarray(zero_shot.zero_shot_logits(images, w.astype(np.float32), 100.0))
    np.testing.assert_allclose(got, ref, atol=1e-4)
    jitted = jax.jit(zero_shot.zero_shot_logits)(images, w.astype(np.float32), 100.0)
    np.testing.assert_allclose(np.asarray(jitted), got, atol=1e-5)
    # The scale never changes a ranking.
    small = np.asarray(zero_shot.zero_shot_logits(images, w.astype(np.float32), 1.0))
    np.testing.assert_array_equal(np.argmax(small, 1), np.argmax(got, 1))


def test_orthogonal_classes_are_perfect():
    c, d = 4, 8
    eye = np.eye(d)[:c]
    labels = np.repeat(np.arange(c), 5)
    rng = np.random.default_rng(2)
    images = eye[labels] * rng.uniform(0.5, 20, (labels.size, 1)) + 0.01 * rng.standard_normal(
        (labels.size, d)
    )
    res = zero_shot.evaluate_zero_shot(images, labels, eye, ["a", "b", "c", "d"])
    assert res.top1 == 1.0 and res.top5 == 1.0
    assert res.mean_per_class_recall == 1.0 and res.macro_f1 == 1.0
    np.testing.assert_array_equal(res.confusion, np.diag([5, 5, 5, 5]))


def test_constructed_confusion_is_exact():
    # Image n points exactly at class pred[n]; its label is true[n]. The confusion is known.
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2])
    eye = np.eye(3)
    res = zero_shot.evaluate_zero_shot(eye[pred] * 3.0, true, eye, ["x", "y", "z"], k_best=1)
    np.testing.assert_array_equal(res.confusion, [[2, 1, 0], [0, 1, 1], [1, 0, 3]])
    np.testing.assert_array_equal(res.predictions, pred)
    assert res.top1 == pytest.approx(6 / 9)
    assert res.top1 == pytest.approx(np.trace(res.confusion) / true.size)
    f1 = skm.f1_score(true, pred, average=None)
    np.testing.assert_allclose([r["f1"] for r in res.per_class], f1)
    assert res.best[0]["class"] == "z" and res.worst[0]["class"] == "y"
    assert res.macro_f1 == pytest.approx(skm.f1_score(true, pred, average="macro"))


def test_evaluate_matches_sklearn_on_random_problem():
    images, labels, centers = _problem(seed=3)
    res = zero_shot.evaluate_zero_shot(images, labels, _unit64(centers), [str(i) for i in range(6)])
    logits = _unit64(images) @ _unit64(centers).T  # float64 reference
    assert res.top1 == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert res.top5 == pytest.approx(
        skm.top_k_accuracy_score(labels, logits, k=5, labels=np.arange(6))
    )
    assert res.mean_per_class_recall == pytest.approx(
        skm.balanced_accuracy_score(labels, logits.argmax(1))
    )
    assert 0.3 < res.top1 < 1.0  # a non-trivial problem


def test_similarity_variants_dot_product_is_fooled_by_text_norms():
    # Two orthogonal classes; class 1's text vector is 10x longer. Cosine is always right; the
    # raw dot product sends every image with cos(x, t_1) > cos(x, t_0) / 10 to class 1.
    t = np.array([[1.0, 0.0], [0.0, 10.0]])
    images = np.array([[1.0, 0.2], [1.0, 0.05], [0.1, 1.0], [2.0, 0.5]])
    labels = np.array([0, 0, 1, 0])
    rows = {r["similarity"]: r for r in zero_shot.similarity_variants(images, t, labels)}
    assert rows["cosine"]["top1"] == 1.0
    assert rows["scaled_cosine"]["top1"] == 1.0
    assert rows["dot"]["top1"] == pytest.approx(2 / 4)  # [1, .2] and [2, .5] flip to class 1
    cos = _unit64(images) @ _unit64(t).T
    dot = images @ t.T
    matched = lambda s: s[np.arange(4), labels].mean()
    assert rows["cosine"]["mean_matched"] == pytest.approx(matched(cos), abs=1e-6)
    assert rows["dot"]["mean_matched"] == pytest.approx(matched(dot), rel=1e-6)
    assert rows["scaled_cosine"]["mean_matched"] == pytest.approx(100 * matched(cos), rel=1e-6)
    other = (cos.sum() - cos[np.arange(4), labels].sum()) / 4
    assert rows["cosine"]["mean_unmatched"] == pytest.approx(other, abs=1e-6)


@pytest.mark.parametrize("block_size", [None, 1, 7, 64])
def test_compare_templates_vs_float64_loop(block_size):
    images, labels, centers = _problem(n=150, seed=4)
    rng = np.random.default_rng(5)
    templates = {
        f"t{p}": (centers + 0.8 * rng.standard_normal(centers.shape)) * rng.uniform(0.5, 5, (6, 1))
        for p in range(3)
    }
    rows = zero_shot.compare_templates(images, labels, templates, block_size=block_size)
    assert [r["template"] for r in rows] == ["t0", "t1", "t2", "ensemble"]
    x = _unit64(images)
    stacked = np.stack([templates[k] for k in ("t0", "t1", "t2")], axis=1)  # (C, P, D)
    weights = [_unit64(templates[k]) for k in ("t0", "t1", "t2")]
    weights.append(_unit64(_unit64(stacked).mean(axis=1)))
    for row, w in zip(rows, weights):
        s = x @ w.T
        true = s[np.arange(len(labels)), labels][:, None]
        rank = (s > true).sum(1)  # no ties in continuous data
        assert row["top1"] == pytest.approx(np.mean(rank < 1))
        assert row["top5"] == pytest.approx(np.mean(rank < 5))
        assert row["mean_matched_cosine"] == pytest.approx(true.mean(), abs=1e-6)
    # The ensemble row is exactly evaluate_zero_shot with the averaged weights.
    ens = zero_shot.class_text_embeddings(np.swapaxes(np.stack(list(templates.values())), 0, 1))
    res = zero_shot.evaluate_zero_shot(images, labels, ens, [str(i) for i in range(6)])
    assert rows[-1]["top1"] == res.top1 and rows[-1]["top5"] == res.top5


def test_compare_templates_ties_follow_first_rule():
    # Every class weight is identical: all scores tie, so "first" says only class 0 is top-1.
    labels = np.array([0, 1, 2, 2])
    images = np.ones((4, 3))
    rows = zero_shot.compare_templates(images, labels, {"same": np.ones((3, 3))}, ks=(1, 2))
    ref = metrics.topk_accuracy(np.ones((4, 3)), labels, ks=(1, 2))
    assert rows[0]["top1"] == ref["top1"] == 0.25
    assert rows[0]["top2"] == ref["top2"] == 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="logit_scale"):
        zero_shot.zero_shot_logits(np.ones((2, 3)), np.ones((4, 3)), logit_scale=-1.0)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        zero_shot.zero_shot_logits(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="len\\(classnames\\)"):
        zero_shot.evaluate_zero_shot(np.ones((2, 3)), [0, 1], np.ones((4, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        zero_shot.compare_templates(np.ones((2, 3)), np.array([0, 1]), {})
    with pytest.raises(ValueError, match="NaN"):
        zero_shot.class_text_embeddings(np.full((2, 1, 3), np.nan))


def test_confusion_order_recovers_hidden_groups():
    rng = np.random.default_rng(6)
    groups = rng.permutation(12).reshape(3, 4)
    m = np.zeros((12, 12), int)
    for g in groups:
        for i in g:
            m[i, i] = 50
            for j in g:
                if j != i:
                    m[i, j] = rng.integers(2, 6)
    order = pc.confusion_order(m)
    assert sorted(order.tolist()) == list(range(12))
    position = np.argsort(order)
    for g in groups:  # each group occupies 4 consecutive positions
        assert np.ptp(position[g]) == 3
    np.testing.assert_array_equal(pc.confusion_order(np.diag([3, 4, 5])), [0, 1, 2])


def test_classification_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(7)
    m = rng.integers(0, 5, (60, 60)) + np.diag(rng.integers(20, 60, 60))
    names = [f"class{i}" for i in range(60)]
    assert pc.plot_confusion_matrix(m, names, tmp_path) == "confusion_matrix.png"
    assert pc.plot_confusion_matrix(m[:5, :5], names[:5], tmp_path, "small.png") == "small.png"
    f1 = metrics.per_class_prf(m)[2]
    assert pc.plot_per_class_f1(f1, names, tmp_path) == "per_class_f1.png"
    rows = [{"template": "a photo of a {}.", "top1": 0.6, "top5": 0.9}]
    rows.append({"template": "ensemble", "top1": 0.62, "top5": 0.91})
    assert pc.plot_template_comparison(rows, tmp_path) == "template_comparison.png"
    for f in ("confusion_matrix.png", "small.png", "per_class_f1.png", "template_comparison.png"):
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    top = pc.top_confusions(np.array([[8, 2], [1, 9]]), ["a", "b"], n=5)
    assert top == [
        {"true": "a", "predicted": "b", "count": 2, "fraction": 0.2},
        {"true": "b", "predicted": "a", "count": 1, "fraction": 0.1},
    ]
