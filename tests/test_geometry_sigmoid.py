"""The geometry study on a sigmoid-loss model: the α-shift sweep scores pairs with t·cos + b and
SigLIP's sigmoid loss, checked against numpy float64 on the shifted embeddings (Zhai et al.
2023, Eq. 1; big_vision's −Σ_k log σ(z·L) summed over texts, averaged over images)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from configs.geometry import study_config
from jaxclip.analysis import geometry as geo
from jaxclip.features.extract import ImageFeatures
from jaxclip.losses import sigmoid_loss_parts_blockwise, sigmoid_loss_parts_from_logits
from jaxclip.studies import geometry as study
from tests.study_fakes import FakeContext, run_study

T, B = 12.0, -4.5


def _np_sigmoid_parts(v, t, scale, bias) -> dict[str, float]:
    v = np.asarray(v, np.float64)
    t = np.asarray(t, np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    logits = scale * v @ t.T + bias
    n = len(v)
    eye = np.eye(n, dtype=bool)

    def sp(x):  # softplus in float64
        return np.logaddexp(0.0, x)

    positive = sp(-np.diag(logits)).sum() / n
    negative = sp(logits[~eye]).sum() / n
    z = np.where(eye, 1.0, -1.0)
    return {
        "total": float(-np.sum(-sp(-z * logits)) / n),
        "positive": float(positive),
        "negative": float(negative),
        "mean_positive_logit": float(np.diag(logits).mean()),
        "mean_negative_logit": float(logits[~eye].mean()),
        "accuracy": float(np.mean(np.where(eye, logits > 0, logits <= 0))),
    }


def _pairs(n=9, d=6, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    image = (z + 0.4 * rng.normal(size=(n, d)) + 2.0).astype(np.float32)
    text = (z + 0.4 * rng.normal(size=(n, d)) - 1.0).astype(np.float32)
    return image, text


@pytest.mark.parametrize("side", ["image", "text"])
def test_alpha_shift_sigmoid_sweep_equals_numpy(side):
    image, text = _pairs()
    alphas = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    # block_size 4 of 9 rows: the last block is padded, the padding must not count
    parts = geo.alpha_shift_loss_sweep(
        image, text, alphas, side=side, logit_scale=T, logit_bias=B, block_size=4
    )
    for j, a in enumerate(alphas):
        v, t = image.astype(np.float64), text.astype(np.float64)
        if side == "image":
            v = v - a * v.mean(0)
        else:
            t = t - a * t.mean(0)
        want = _np_sigmoid_parts(v, t, T, B)
        for k, w in want.items():
            assert float(getattr(parts, k)[j]) == pytest.approx(w, rel=2e-5, abs=1e-6), (k, a)
        assert want["total"] == pytest.approx(want["positive"] + want["negative"])


def test_blockwise_equals_full_logits():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(7, 7)).astype(np.float32) * 3)
    full = sigmoid_loss_parts_from_logits(logits)
    for bs in (3, 10):
        blocks = sigmoid_loss_parts_blockwise(lambda r: logits[r], 7, bs)
        for k in full._fields:
            assert float(getattr(blocks, k)) == pytest.approx(
                float(getattr(full, k)), rel=1e-5, abs=1e-6
            )


def test_study_uses_the_sigmoid_loss_for_a_model_with_a_bias(tmp_path):
    image, text = _pairs(n=12, d=8, seed=2)
    names = [f"caption of image {j}" for j in range(len(image))]
    table = dict(zip(names, text))
    features = ImageFeatures(
        embeds=image,
        labels=np.full(len(image), -1),
        indices=np.arange(len(image)),
        attributes={},
        captions=[[c] for c in names],
        classnames=(),
        meta={"dataset": "planted"},
    )
    ctx = FakeContext(features, tmp_path, embed=table.__getitem__, logit_scale=T, logit_bias=B)
    cfg = study_config()
    cfg.num_alphas, cfg.max_scatter_points, cfg.kl_bins = 5, 50, 10
    entry, section = run_study(study.STUDY, ctx, cfg, "geometry")
    loss = entry["loss"]
    assert loss["loss"] == "sigmoid" and loss["logit_bias"] == B and loss["logit_scale"] == T
    for j, a in enumerate(loss["alphas"]):
        want = _np_sigmoid_parts(image - a * image.mean(0), text, T, B)
        got = loss["image"]["curves"]
        for k in ("total", "positive", "negative", "accuracy"):
            assert got[k][j] == pytest.approx(want[k], rel=2e-5, abs=1e-6), (k, a)
    su = loss["image"]["summary"]
    i = int(np.argmin(loss["image"]["curves"]["total"]))
    assert su["alpha_min_total"] == loss["alphas"][i]
    # Conformity in score units is t·C + b of the exact conformity.
    xn = image / np.linalg.norm(image, axis=1, keepdims=True)
    g = xn.astype(np.float64) @ xn.astype(np.float64).T
    c = (g.sum(1) - 1.0) / (len(image) - 1)
    sc = entry["conformity"]["scores"]["image"]
    assert sc["mean"] == pytest.approx(T * c.mean() + B, rel=1e-5)
    md = section.report.markdown()
    assert "Sigmoid loss vs the position of the ellipsoid" in md
    assert "positive at α=0" in md and "Conformity in score units" in md
    # A softmax model (no bias) keeps the softmax sweep and its keys.
    plain = FakeContext(features, tmp_path / "plain", embed=table.__getitem__, logit_scale=T)
    entry2, _ = run_study(study.STUDY, plain, cfg, "geometry")
    assert "loss" not in entry2["loss"] and "alignment" in entry2["loss"]["image"]["curves"]
    assert "scores" not in entry2["conformity"]
