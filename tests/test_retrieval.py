"""Retrieval ranks and Recall@K against a float64 brute force, block sizes, ties, top-k queries."""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclip.analysis import retrieval
from jaxclip.report import plots_retrieval as pr

# experiments/ is not on sys.path under plain `pytest`: load the benchmark module by file path.
_spec = importlib.util.spec_from_file_location(
    "benchmark_retrieval", Path(__file__).parent.parent / "experiments" / "benchmark_retrieval.py"
)
benchmark_retrieval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchmark_retrieval)


def _unit32(x):
    """The float32 unit vectors the analysis defines its cosines on."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


def brute_force(images, texts, t2i):
    """float64 cosines of the float32-normalised vectors; strict-greater ranks and tie counts."""
    img = _unit32(images).astype(np.float64)
    txt = _unit32(texts).astype(np.float64)
    s = txt @ img.T  # (Nt, Ni)
    nt, ni = s.shape
    true = s[np.arange(nt), t2i]
    t_rank = (s > true[:, None]).sum(1)
    t_ties = (s == true[:, None]).sum(1) - 1
    i_rank = np.full(ni, -1)
    i_ties = np.zeros(ni, int)
    for i in range(ni):
        own = t2i == i
        if own.any():
            best = s[own, i].max()
            i_rank[i] = (s[:, i] > best).sum()
            i_ties[i] = ((s[:, i] == best) & ~own).sum()
    return t_rank, t_ties, i_rank, i_ties


def _problem(ni=40, d=24, noise=0.9, seed=0):
    """Unequal caption counts per image (0 to 4, in shuffled order); raw norms vary."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((ni, d)) * rng.uniform(0.5, 10, (ni, 1))
    counts = rng.integers(0, 5, ni)
    counts[:3] = (0, 1, 4)
    t2i = rng.permutation(np.repeat(np.arange(ni), counts))
    texts = _unit32(images)[t2i] + noise / np.sqrt(d) * rng.standard_normal((t2i.size, d))
    texts *= rng.uniform(0.5, 3, (t2i.size, 1))
    return images.astype(np.float32), texts.astype(np.float32), t2i


def _assert_same(r, ref):
    t_rank, t_ties, i_rank, i_ties = ref
    np.testing.assert_array_equal(r.text_to_image, t_rank)
    np.testing.assert_array_equal(r.text_to_image_ties, t_ties)
    np.testing.assert_array_equal(r.image_to_text, i_rank)
    np.testing.assert_array_equal(r.image_to_text_ties, i_ties)


def test_known_answer_by_hand():
    # Images along e0, e1, e2; captions 0, 1 belong to image 0, caption 2 to image 1, image 2 has
    # none. Caption 1 points between e0 and e1 but closer to e1, so text -> image misses it.
    images = np.eye(3)
    texts = np.array([[1.0, 0.1, 0.0], [0.4, 1.0, 0.0], [0.0, 1.0, 0.2]])
    t2i = np.array([0, 0, 1])
    r = retrieval.ranks(images, texts, t2i)
    np.testing.assert_array_equal(r.text_to_image, [0, 1, 0])
    # Image 0: best caption is caption 0 (cos .995), nothing above it -> 0. Image 1: captions by
    # cosine to e1: caption 2 (.981) > caption 1 (.928) -> its own caption is first -> 0.
    np.testing.assert_array_equal(r.image_to_text, [0, 0, -1])
    rec = retrieval.recall_at_k(images, texts, t2i, ks=(1, 2))
    assert rec["text_to_image"]["R@1"] == pytest.approx(2 / 3)
    assert rec["text_to_image"]["R@2"] == 1.0
    assert rec["image_to_text"]["R@1"] == 1.0  # over the two images that have captions
    assert rec["images_without_captions"] == 1
    assert rec["text_to_image"]["MedR"] == 1.0 and rec["text_to_image"]["MeanR"] == pytest.approx(
        4 / 3
    )


@pytest.mark.parametrize("block_size", [None, 1, 3, 7, 39, 40, 97, 10_000])
def test_ranks_equal_float64_brute_force_for_every_block_size(block_size):
    images, texts, t2i = _problem()
    r = retrieval.ranks(images, texts, t2i, block_size=block_size)
    _assert_same(r, brute_force(images, texts, t2i))


@pytest.mark.parametrize("margin", [None, 0.1, 0.2, 0.3, 10.0])
def test_both_paths_agree(margin):
    # Default margin: most queries are settled in float32 on the device; 0.1 - 0.3: rows with
    # one or two images inside the margin (compared pairwise in float64) and with more (whole
    # row redone); 10: every query is recomputed in float64. All must give the brute-force ranks.
    images, texts, t2i = _problem(seed=1)
    r = retrieval._ranks(images, texts, t2i, block_size=16, margin=margin)
    _assert_same(r, brute_force(images, texts, t2i))
    if margin is None:
        assert r.refined_text_queries < t2i.size // 4
        assert r.refined_image_queries < np.unique(t2i).size // 4
    elif margin < 1:
        assert 0 < r.refined_text_queries < t2i.size
    else:
        assert r.refined_text_queries == t2i.size
        assert r.refined_image_queries == np.unique(t2i).size


def test_exact_ties_from_duplicates():
    images, texts, t2i = _problem(seed=2)
    # Image 1 has one caption, image 2 has four (see _problem). Make image 2 a copy of image 1
    # and all its captions copies of image 1's caption: every one of those captions ties between
    # the two images, and image 1's best caption ties with image 2's four.
    images[2] = images[1]
    texts[t2i == 2] = texts[t2i == 1]
    images[7] = images[6] = images[5]  # a triple: its captions tie with two other images
    ref = brute_force(images, texts, t2i)
    assert ref[3][1] == 4 and ref[3][2] == 1
    assert np.all(ref[1][np.isin(t2i, (1, 2))] == 1)
    assert np.all(ref[1][np.isin(t2i, (5, 6, 7))] == 2)
    for bs in (None, 4):
        r = retrieval.ranks(images, texts, t2i, block_size=bs)
        _assert_same(r, ref)
    rec = retrieval.recall_at_k(images, texts, t2i)
    assert rec["text_to_image"]["tied_queries"] == int(np.sum(ref[1] > 0))


def test_recall_matches_clip_benchmark_convention():
    # CLIP_benchmark: scores @ top-k, image -> text is a hit when ANY positive text is in top k.
    images, texts, t2i = _problem(ni=60, seed=3)
    rec = retrieval.recall_at_k(images, texts, t2i, ks=(1, 5, 10))
    s = _unit32(texts).astype(np.float64) @ _unit32(images).astype(np.float64).T
    for k in (1, 5, 10):
        topk_img = np.argsort(-s, axis=1, kind="stable")[:, :k]
        hit_t = (topk_img == t2i[:, None]).any(1)
        assert rec["text_to_image"][f"R@{k}"] == pytest.approx(hit_t.mean())
        has = np.isin(np.arange(60), t2i)
        topk_txt = np.argsort(-s.T, axis=1, kind="stable")[:, :k]
        hit_i = (t2i[topk_txt] == np.arange(60)[:, None]).any(1)
        assert rec["image_to_text"][f"R@{k}"] == pytest.approx(hit_i[has].mean())


def test_jit_and_eager_device_pass_agree():
    images, texts, t2i = _problem(ni=6, seed=4)
    img, txt = _unit32(images), _unit32(texts)
    args = (
        jnp.asarray(txt),
        jnp.asarray(img),
        jnp.asarray(t2i.astype(np.int32)),
        jnp.asarray(retrieval._best_caption_cosine(img, txt, t2i)),
        jnp.float32(retrieval.rounding_margin(images.shape[1])),
    )
    jitted = retrieval._device_pass(*args, block=8)
    with jax.disable_jit():
        eager = retrieval._device_pass(*args, block=8)
    for a, b in zip(jitted, eager):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_packed_counts_over_long_rows():
    # More than 32767 terms per row goes through the chunked packing path.
    rng = np.random.default_rng(5)
    a = rng.random((2, 70_001)) < 0.6
    b = rng.random((2, 70_001)) < 0.3
    ca, cb = retrieval._count2(jnp.asarray(a), jnp.asarray(b), axis=1)
    np.testing.assert_array_equal(np.asarray(ca), a.sum(1))
    np.testing.assert_array_equal(np.asarray(cb), b.sum(1))
    ca, cb = retrieval._count2(jnp.asarray(a.T), jnp.asarray(b.T), axis=0)
    np.testing.assert_array_equal(np.asarray(ca), a.sum(1))


def test_caption_table():
    table = retrieval.caption_table(np.array([2, 0, 2, 2]), 4)
    np.testing.assert_array_equal(table, [[1, -1, -1], [-1, -1, -1], [0, 2, 3], [-1, -1, -1]])


@pytest.mark.parametrize("block_size", [None, 1, 3])
def test_query_topk_vs_numpy(block_size):
    rng = np.random.default_rng(6)
    gallery = rng.standard_normal((50, 8)).astype(np.float32)
    gallery[7] = gallery[3] * 2  # a tie: index 3 must come before 7
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    queries[0] = gallery[3]
    idx, scores = retrieval.query_topk(queries, gallery, 6, block_size=block_size)
    s = _unit32(queries).astype(np.float64) @ _unit32(gallery).astype(np.float64).T
    ref = np.argsort(-s, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(s, ref, 1), atol=1e-6)
    assert list(idx[0, :2]) == [3, 7]


def test_refinement_study_by_hand():
    # Gallery: 6 unit images in 3-D. Query a favours images 0-2, query b favours 1, 3, 4.
    g = np.array(
        [[1, 0, 0], [0.9, 0.4, 0], [0.8, 0, 0.5], [0, 1, 0], [0.1, 0.9, 0.1], [0, 0, 1]], float
    )
    qa = np.array([1.0, 0.05, 0.02])
    qb = np.array([0.3, 1.0, 0.0])
    study = retrieval.refinement_study(["a", "b"], np.stack([qa, qb]), g, k=3)
    s = _unit32(np.stack([qa, qb])).astype(np.float64) @ _unit32(g).astype(np.float64).T
    top = np.argsort(-s, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(study.indices, top)
    row = study.rows[0]
    a, b = set(top[0]), set(top[1])
    assert row["overlap"] == len(a & b)
    assert row["jaccard"] == pytest.approx(len(a & b) / len(a | b))
    assert row["score_shift"] == pytest.approx(np.mean(s[1, top[0]] - s[0, top[0]]), abs=1e-6)
    assert row["prev_top1_new_rank"] == int((s[1] > s[1, top[0, 0]]).sum())
    assert row["new_top1_prev_rank"] == int((s[0] > s[0, top[1, 0]]).sum())
    assert row["prev_top1_new_rank"] > 0  # the refinement really moved the winner


def test_benchmark_reference_agrees_with_jaxclip():
    images, texts, t2i = benchmark_retrieval.make_data(60, 3, 16, 0.3, seed=0)
    ref_t, ref_i = benchmark_retrieval.numpy_reference_ranks(images, texts, t2i)
    got_t, got_i = benchmark_retrieval.jax_ranks(images, texts, t2i, block_size=16)
    np.testing.assert_array_equal(got_t, ref_t)
    np.testing.assert_array_equal(got_i, ref_i)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: retrieval.ranks(np.ones((3, 4)), np.ones((2, 4)), [0, 3]), r"\[0, 3\)"),
        (lambda: retrieval.ranks(np.ones((3, 4)), np.ones((2, 5)), [0, 1]), "width D"),
        (lambda: retrieval.ranks(np.ones((3, 4)), np.ones((2, 4)), [0]), r"\(2,\) integers"),
        (lambda: retrieval.ranks(np.full((3, 4), np.nan), np.ones((2, 4)), [0, 1]), "NaN"),
        (lambda: retrieval.ranks(np.ones((3, 4)), np.ones((2, 4)), [0, 1], block_size=0), "block"),
        (lambda: retrieval.recall_at_k(np.ones((3, 4)), np.ones((2, 4)), [0, 1], ks=(0,)), "ks"),
        (lambda: retrieval.query_topk(np.ones((3, 4)), np.ones((2, 4)), 3), r"\[1, 2\]"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_query_topk_padded_is_query_topk():
    rng = np.random.default_rng(9)
    gallery = rng.standard_normal((30, 8)).astype(np.float32)
    for q in (1, 5, 8, 11):
        queries = rng.standard_normal((q, 8)).astype(np.float32)
        idx, sc = retrieval.query_topk_padded(queries, gallery, 4)
        ref_idx, ref_sc = retrieval.query_topk(queries, gallery, 4)
        assert idx.shape == (q, 4) == sc.shape
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(sc, ref_sc, atol=1e-7)
    with pytest.raises(ValueError, match="non-empty"):
        retrieval.query_topk_padded(np.zeros((0, 8)), gallery, 4)


def test_retrieval_plots_draw_what_they_show():
    import matplotlib.pyplot as plt

    images, texts, t2i = _problem(seed=7)
    r = retrieval.ranks(images, texts, t2i)
    fig = pr.plot_rank_distribution(r, ks=(1, 5), title="ranks")
    _, cum = fig.axes
    assert fig._suptitle.get_text() == "ranks"
    assert [t.get_text() for t in cum.get_legend().get_texts()] == ["text → image", "image → text"]
    assert cum.get_xscale() == "log" and "Recall@x" in cum.get_ylabel()
    plt.close(fig)
    rng = np.random.default_rng(8)
    grid = rng.integers(0, 256, (2, 4, 16, 16, 3), dtype=np.uint8)
    titles = ["a photo of a bird", "a photo of a white bird"]
    fig = pr.image_grid(grid, titles, rng.random((2, 4)), highlight=np.eye(2, 4, dtype=bool))
    axes = [a for sub in fig.subfigs for a in sub.axes]
    assert len(axes) == 8
    assert [s._suptitle.get_text() for s in fig.subfigs] == [f"“{t}”" for t in titles]
    assert axes[0].xaxis.label.get_color() == "#1a9850"  # highlighted: green
    assert axes[1].xaxis.label.get_color() == "k"
    plt.close(fig)
    with pytest.raises(ValueError, match="uint8"):
        pr.image_grid(grid.astype(float), ["a", "b"], np.zeros((2, 4)))


def test_thumbnail_grid_sizes():
    small = [np.full((6, 9, 3), i, np.uint8) for i in range(4)]
    grid = pr.thumbnail_grid(small, (2, 2), 128)
    assert grid.shape == (2, 2, 6, 6, 3)  # not blown up past the images' own size
    assert grid[1, 0, 0, 0, 0] == 2  # row-major
    grey = pr.thumbnail(np.zeros((20, 20), np.uint8), 10)
    assert grey.shape == (10, 10, 3)
    with pytest.raises(ValueError, match="2 x 2"):
        pr.thumbnail_grid(small[:3], (2, 2), 8)
