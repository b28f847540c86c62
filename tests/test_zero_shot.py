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
    assert res.top1 == 1.0 and res.top5 is None  # k = 5 >= C = 4: null, not a trivial 1.0
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


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_confusion_and_f1_plots_draw_what_they_show():
    rng = np.random.default_rng(7)
    m = rng.integers(0, 5, (60, 60)) + np.diag(rng.integers(20, 60, 60))
    names = [f"class{i}" for i in range(60)]
    fig = pc.plot_confusion_matrix(m, names, title="big", top_n=3)
    ax, side = fig.axes[0], fig.axes[1]
    assert ax.get_title() == "big" and ax.get_ylabel() == "true class"
    assert ax.get_xlabel() == "predicted class (one label in 2)"  # 60 classes, 40 labels max
    assert ax.images[0].get_array().shape == (60, 60)
    assert side.texts[0].get_text().startswith("Top confusions")
    assert len(side.texts[0].get_text().splitlines()) == 3 + 3  # header, blank line, 3 rows
    _close(fig)
    small = pc.plot_confusion_matrix(m[:5, :5], names[:5], top_n=0)
    assert len(small.axes[0].texts) == np.count_nonzero(m[:5, :5])  # every non-zero cell
    _close(small)
    f1 = metrics.per_class_prf(m)[2]
    fig = pc.plot_per_class_f1(f1, names)
    ax = fig.axes[0]
    assert len(ax.patches) == 60 and ax.get_xlabel() == "F1"
    assert ax.get_yticklabels()[0].get_text() == names[int(np.argmax(f1))]
    assert f"macro F1 = {f1.mean():.3f}" in ax.get_title()
    _close(fig)


def test_template_and_attribute_plots_draw_what_they_show():
    rows = [{"template": "a photo of a {}.", "top1": 0.6, "top5": 0.9}]
    rows.append({"template": "ensemble", "top1": 0.62, "top5": 0.91})
    fig = pc.plot_template_comparison(rows, title="templates")
    ax = fig.axes[0]
    assert len(ax.patches) == 4 and ax.get_title() == "templates"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["top1", "top5"]
    assert ax.get_yticklabels()[0].get_text() == "ensemble (all templates)"  # best first
    _close(fig)
    attrs = {
        "color": {"values": ["r", "g", "b"], "chance": 1 / 3, "generic": {"top1": 0.9},
                  "class_marginal": {"top1": 0.95}},
        "size": {"values": ["s", "l"], "chance": 0.5, "generic": {"top1": 0.7}},
    }  # fmt: skip
    fig = pc.plot_attribute_accuracy(attrs)
    ax = fig.axes[0]
    assert len(ax.patches) == 4  # 2 kinds x 2 attributes (size has no class-marginal bar)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["chance 1/K", "generic prompts", "class-marginal prompts"]
    assert ax.get_ylabel() == "zero-shot top-1 (%)"
    _close(fig)
    fig = pc.plot_attribute_confusions(
        {"color": (np.eye(3, dtype=int) * 4, ["r", "g", "b"]), "size": ([[3, 1], [0, 4]], "sl")}
    )
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["color: top-1 100.0 % (chance 33.3 %)", "size: top-1 87.5 % (chance 50.0 %)"]
    _close(fig)
    norms = [
        {"class": c, "text_norm": n, "share_dot": d, "share_cosine": 0.25, "share_true": 0.25}
        for c, n, d in zip("abcd", [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.25, 0.75])
    ]
    fig = pc.plot_text_norms(norms)
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and len(ax.lines) == 1  # two scatters, balanced true share
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "raw dot product", "cosine", "true share (balanced)"]  # fmt: skip
    _close(fig)


def test_top_confusions_and_row_normalize():
    top = metrics.top_confusions(np.array([[8, 2], [1, 9]]), ["a", "b"], n=5)
    assert top == [
        {"true": "a", "predicted": "b", "count": 2, "fraction": 0.2},
        {"true": "b", "predicted": "a", "count": 1, "fraction": 0.1},
    ]
    assert metrics.top_confusions(np.eye(3), "abc") == []
    np.testing.assert_allclose(metrics.row_normalize([[1, 3], [0, 0]]), [[0.25, 0.75], [0, 0]])
    with pytest.raises(ValueError, match="square"):
        metrics.row_normalize(np.ones((2, 3)))


def test_per_class_with_confusions_by_hand():
    conf = np.array([[5, 3, 2], [0, 4, 0], [1, 1, 8]])
    per_class = [{"class": c} for c in "abc"]
    rows = zero_shot.per_class_with_confusions(per_class, conf, "abc")
    assert rows[0] == {"class": "a", "index": 0, "confused_with": "b", "confused_share": 0.3}
    assert rows[1] == {"class": "b", "index": 1, "confused_with": None, "confused_share": 0.0}
    assert rows[2]["confused_with"] == "a"  # a tie (1, 1) goes to the lower index
    assert rows[2]["confused_share"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="per-class rows"):
        zero_shot.per_class_with_confusions(per_class[:2], conf, "abc")


def test_value_scores_per_prompt_kind():
    x = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 0.2], [0.9, 0.5]])
    y = np.array([0, 1, 0, 1])
    good = np.eye(2)
    swapped = np.eye(2)[::-1]
    scores, confusions = zero_shot.value_scores(x, y, {"generic": good, "other": swapped}, "ab")
    assert list(scores) == ["generic", "other"]
    assert scores["generic"]["top1"] == 0.75 and scores["other"]["top1"] == 0.25
    assert scores["generic"]["per_value_recall"] == {"a": 1.0, "b": 0.5}
    np.testing.assert_array_equal(confusions["generic"], [[2, 0], [1, 1]])


def test_text_norm_effects_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.1]])
    y = np.array([0, 1, 1, 0])
    text = np.array([[3.0, 0.0], [0.0, 1.0]])  # class 0's prompt is 3x as long
    norms, per_class = zero_shot.text_norm_effects(x, text, y, ("a", "b"))
    assert norms["text_norm_ratio_max_min"] == pytest.approx(3.0)
    assert norms["longest_text_class"] == "a"
    assert norms["spearman_text_norm_vs_dot_share"] is None  # C = 2
    assert [r["share_cosine"] for r in per_class] == [0.5, 0.5]  # the cosine is right
    assert [r["share_dot"] for r in per_class] == [0.5, 0.5]
    # a "b" image nearer b by angle, but <x, t_a> = 1.5 > <x, t_b> = 1: the long prompt wins
    x2 = np.array([[0.5, 1.0], [0.0, 1.0]])
    norms, per_class = zero_shot.text_norm_effects(x2, text, np.array([1, 1]), ("a", "b"))
    assert per_class[0]["share_dot"] == 0.5 and per_class[0]["share_cosine"] == 0.0
    assert per_class[1]["share_true"] == 1.0
    assert norms["dot_share_of_longest_text_class"] == 0.5
    assert norms["dot_max_class_share"] == 0.5 and norms["cosine_max_class_share"] == 1.0
