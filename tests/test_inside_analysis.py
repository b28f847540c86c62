"""Mean-ablation, TextSpan, ridge probes and spatial pooling on planted arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier

from jaxclip.analysis import inside


def planted(n=30, layers=3, nh=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, layers, nh, d)).astype(np.float32),
        rng.standard_normal((n, layers, d)).astype(np.float32),
        rng.standard_normal((n, d)).astype(np.float32),
        rng.standard_normal(d).astype(np.float32),
    )


def test_ablating_nothing_changes_nothing_and_everything_gives_the_mean_embedding():
    heads, mlps, embed, bias = planted()
    total = heads.astype(np.float64).sum((1, 2)) + mlps.sum(1) + embed + bias
    np.testing.assert_allclose(inside.mean_ablate(heads, mlps, embed, bias), total, atol=1e-6)
    every = inside.mean_ablate(
        heads,
        mlps,
        embed,
        bias,
        head_mask=np.ones((3, 4), bool),
        mlp_mask=np.ones(3, bool),
        ablate_embed=True,
    )
    np.testing.assert_allclose(every, np.broadcast_to(total.mean(0), total.shape), atol=1e-5)


def test_one_head_and_one_mlp_ablated_by_hand():
    heads, mlps, embed, bias = planted(seed=1)
    hm = np.zeros((3, 4), bool)
    hm[2, 1] = True
    mm = np.array([True, False, False])
    got = inside.mean_ablate(heads, mlps, embed, bias, head_mask=hm, mlp_mask=mm)
    total = heads.astype(np.float64).sum((1, 2)) + mlps.sum(1) + embed + bias
    want = total - heads[:, 2, 1] + heads[:, 2, 1].mean(0) - mlps[:, 0] + mlps[:, 0].mean(0)
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match=r"head_mask must be \(3, 4\)"):
        inside.mean_ablate(heads, mlps, embed, bias, head_mask=np.zeros((4, 3), bool))


def test_layer_masks():
    first = inside.layer_masks(3, 2, "first")
    assert [k for k, _, _ in first] == [0, 1, 2, 3]
    np.testing.assert_array_equal(first[2][2], [True, True, False])
    np.testing.assert_array_equal(first[2][1], [[True, True], [True, True], [False, False]])
    last = inside.layer_masks(3, 2, "last", mlps=False)
    np.testing.assert_array_equal(last[1][1][:, 0], [False, False, True])
    assert not last[3][2].any() and last[0][1].sum() == 0
    with pytest.raises(ValueError, match="direction='middle' is not valid"):
        inside.layer_masks(3, 2, "middle")


def test_text_span_recovers_planted_directions_in_order_of_variance():
    rng = np.random.default_rng(0)
    d, m, n = 16, 10, 400
    texts = np.linalg.qr(rng.standard_normal((d, m)))[0].T * 3.0  # orthogonal rows, norm 3
    coef = rng.standard_normal((n, 3)) * np.array([3.0, 2.0, 1.0])
    coef -= coef.mean(0)
    unit = texts / 3.0
    outputs = coef[:, 0:1] * unit[4] + coef[:, 1:2] * unit[7] + coef[:, 2:3] * unit[1]
    res = inside.text_span(outputs + 5.0, texts, 3)  # the constant offset is centred away
    assert res.indices == (4, 7, 1)
    energy = (coef**2).sum(0)
    np.testing.assert_allclose(res.explained, np.cumsum(energy) / energy.sum(), atol=1e-9)
    with pytest.raises(ValueError, match=r"k=11 must be in \[1, 10\]"):
        inside.text_span(outputs, texts, 11)


def test_ridge_probe_matches_sklearn_per_component():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 60, 5))
    y = rng.integers(0, 4, 60)
    x[1, 2, :, :4] += 3.0 * np.eye(4)[y]  # one informative component
    xt = rng.standard_normal((2, 3, 40, 5))
    yt = rng.integers(0, 4, 40)
    xt[1, 2, :, :4] += 3.0 * np.eye(4)[yt]
    got = inside.ridge_probe_accuracy(x[..., :50, :], y[:50], xt, yt, alpha=2.0)
    assert got.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            clf = RidgeClassifier(alpha=2.0).fit(x[i, j, :50], y[:50])
            assert got[i, j] == pytest.approx(clf.score(xt[i, j], yt)), (i, j)
    assert got[1, 2] > 0.8 and got.max() == got[1, 2]


def test_grid_pool_is_the_area_mean_of_an_upsampled_map():
    rng = np.random.default_rng(3)
    maps = rng.standard_normal((2, 4, 4))
    pixels = np.repeat(np.repeat(maps, 3, 1), 3, 2)  # 12x12: a patch is 3x3 pixels
    want = pixels.reshape(2, 3, 4, 3, 4).mean((2, 4))  # a cell is 4x4 pixels
    np.testing.assert_allclose(inside.grid_pool(maps, 3), want, atol=1e-12)
    peak = np.zeros((3, 4, 4))
    peak[0, 0, 0] = peak[1, 3, 3] = peak[2, 1, 2] = 1.0  # patch (1, 2) overlaps cell (1, 1) most
    hits = inside.pointing_game(peak, 3, [0, 8, 4])
    np.testing.assert_array_equal(hits, [True, True, True])
    np.testing.assert_array_equal(inside.pointing_game(peak, 3, [1, 7, 0]), [False] * 3)


def test_single_head_ablations_resum_with_one_head_at_its_mean():
    heads, mlps, embed, bias = planted()
    layers, nh = heads.shape[1:3]
    for layer in range(layers):
        got = inside.single_head_ablations(heads, mlps, embed, bias, layer)
        assert got.shape == (nh, len(heads), heads.shape[-1])
        for h in range(nh):
            ablated = heads.astype(np.float64)
            ablated[:, layer, h] = ablated[:, layer, h].mean(0)
            want = ablated.sum((1, 2)) + mlps.sum(1, dtype=np.float64) + embed + bias
            np.testing.assert_allclose(got[h], want, rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError, match=r"layer=3 must be in \[0, 3\)"):
        inside.single_head_ablations(heads, mlps, embed, bias, 3)
