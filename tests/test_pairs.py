"""Tests for jaxclip.analysis.pairs: which images are paired with which texts, and the joined
embeddings, on small planted splits."""

import numpy as np
import pytest

from jaxclip.analysis.pairs import make_pairs, parse_caption, plan_pairs

CAPTIONS = [["a0", "a1"], ["b0"], [], ["d0", "d1", "d2"]]


def _plan(**kw):
    args = {"captions": CAPTIONS, "labels": np.full(4, -1), "classnames": ()}
    return plan_pairs(4, **(args | kw))


def test_parse_caption():
    assert parse_caption("first") == 0
    assert parse_caption(" ALL ") == "all"
    assert parse_caption("2") == 2 and parse_caption(2) == 2
    with pytest.raises(ValueError, match="second"):
        parse_caption("second")


def test_first_caption_leaves_out_images_without_one():
    plan = _plan(caption="first")
    np.testing.assert_array_equal(plan.rows, [0, 1, 3])
    assert plan.texts == ["a0", "b0", "d0"]
    np.testing.assert_array_equal(plan.owner, [0, 1, 2])
    assert (plan.source, plan.n_split, plan.n_sampled) == ("captions", 4, 4)


def test_caption_index_and_all():
    plan = _plan(caption="1")
    np.testing.assert_array_equal(plan.rows, [0, 3])
    assert plan.texts == ["a1", "d1"]
    plan = _plan(caption="all")
    np.testing.assert_array_equal(plan.rows, [0, 1, 3])
    assert plan.texts == ["a0", "a1", "b0", "d0", "d1", "d2"]
    np.testing.assert_array_equal(plan.owner, [0, 0, 1, 2, 2, 2])
    assert _plan(caption="5") == "no image of this split has caption '5'"


def test_class_prompts_and_unlabelled_rows():
    plan = plan_pairs(
        4, captions=None, labels=[1, -1, 0, 1], classnames=("cat", "dog"),
        class_template="a {} photo",
    )  # fmt: skip
    np.testing.assert_array_equal(plan.rows, [0, 2, 3])
    assert plan.texts == ["a dog photo", "a cat photo", "a dog photo"]
    assert plan.source == "class_prompts"
    reason = plan_pairs(3, captions=None, labels=[-1, -1, -1], classnames=())
    assert "neither captions nor labels" in reason


def test_seeded_subset_is_sorted_and_reproducible():
    caps = [[f"c{j}"] for j in range(20)]
    a = plan_pairs(20, captions=caps, labels=None, classnames=(), max_pairs=5, seed=3)
    b = plan_pairs(20, captions=caps, labels=None, classnames=(), max_pairs=5, seed=3)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert len(a.rows) == 5 and (np.diff(a.rows) > 0).all()
    assert a.texts == [f"c{j}" for j in a.rows]
    assert (a.n_split, a.n_sampled) == (20, 5)


def test_make_pairs_joins_rows_and_repeats_images():
    image = np.arange(8, dtype=np.float32).reshape(4, 2)
    plan = _plan(caption="all")
    text = np.arange(12, dtype=np.float32).reshape(6, 2) + 100
    pairs = make_pairs(image, plan, text)
    np.testing.assert_array_equal(pairs.image, image[[0, 1, 3]])
    np.testing.assert_array_equal(pairs.pair_image, image[[0, 0, 1, 3, 3, 3]])
    np.testing.assert_array_equal(pairs.text, text)
    np.testing.assert_array_equal(pairs.pair_text, text)
    assert pairs.texts == plan.texts and pairs.source == "captions"


def test_make_pairs_rejects_bad_shapes():
    image = np.zeros((4, 2), np.float32)
    plan = _plan(caption="first")
    with pytest.raises(ValueError, match="differ in D"):
        make_pairs(image, plan, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="for 3 texts"):
        make_pairs(image, plan, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        make_pairs(np.zeros(4), plan, np.zeros((3, 2)))
