"""Tests for jaxclip.losses against float64 NumPy / PyTorch references and hand-built batches."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxclip import losses


def _np_reference(v: np.ndarray, t: np.ndarray, s: float) -> dict:
    """Independent float64 NumPy CLIP loss (Radford et al. 2021), written from the formula."""
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    logits = s * v @ t.T
    n = len(v)
    i2t = -(logits - logsumexp(logits, axis=1, keepdims=True))[np.arange(n), np.arange(n)]
    t2i = -(logits - logsumexp(logits, axis=0, keepdims=True))[np.arange(n), np.arange(n)]
    return {
        "total": 0.5 * (i2t.mean() + t2i.mean()),
        "i2t": i2t,
        "t2i": t2i,
        "alignment": -np.mean(np.diag(logits)),
        "uniformity": np.mean(0.5 * logsumexp(logits, 1) + 0.5 * logsumexp(logits, 0)),
        "row_ok": logits.argmax(1) == np.arange(n),
        "col_ok": logits.argmax(0) == np.arange(n),
    }


def _pairs(n=24, d=8, seed=0, noise=0.8):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    v = (z + noise * rng.normal(size=(n, d)) + 2.0).astype(np.float32)
    t = (z + noise * rng.normal(size=(n, d)) - 1.0).astype(np.float32)
    return v, t


def test_clip_loss_matches_float64_numpy():
    v, t = _pairs()
    ref = _np_reference(v.astype(np.float64), t.astype(np.float64), 12.5)
    got = losses.clip_loss(v, t, jnp.float32(12.5))
    np.testing.assert_allclose(float(got), ref["total"], rtol=1e-5)
    pair = losses.clip_loss_per_pair(v, t, 12.5)
    np.testing.assert_allclose(np.asarray(pair.image_to_text), ref["i2t"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pair.text_to_image), ref["t2i"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(pair.symmetric.mean()), ref["total"], rtol=1e-5)


def test_parts_match_reference_and_decompose_exactly():
    v, t = _pairs(n=40, seed=3)
    s = 30.0
    ref = _np_reference(v.astype(np.float64), t.astype(np.float64), s)
    p = losses.clip_loss_parts(v, t, s)
    np.testing.assert_allclose(float(p.total), ref["total"], rtol=1e-5)
    np.testing.assert_allclose(float(p.alignment), ref["alignment"], rtol=1e-5)
    np.testing.assert_allclose(float(p.uniformity), ref["uniformity"], rtol=1e-5)
    # alignment + uniformity == total (an identity, so only float32 rounding)
    np.testing.assert_allclose(float(p.alignment + p.uniformity), float(p.total), atol=1e-5)
    # correct / wrong against the reference's argmaxes, and their union is the total
    ok = np.concatenate([ref["row_ok"], ref["col_ok"]])
    terms = np.concatenate([ref["i2t"], ref["t2i"]])
    assert int(p.n_correct) == ok.sum() and int(p.n_wrong) == (~ok).sum()
    assert 0 < ok.sum() < len(ok)  # both groups populated in this batch
    np.testing.assert_allclose(float(p.correct), terms[ok].mean(), rtol=1e-5)
    np.testing.assert_allclose(float(p.wrong), terms[~ok].mean(), rtol=1e-5)
    union = (p.n_correct * p.correct + p.n_wrong * p.wrong) / (p.n_correct + p.n_wrong)
    np.testing.assert_allclose(float(union), float(p.total), rtol=1e-5)
    np.testing.assert_allclose(float(p.accuracy_i2t), ref["row_ok"].mean())
    np.testing.assert_allclose(float(p.accuracy_t2i), ref["col_ok"].mean())


def test_symmetric_under_swapping_modalities():
    v, t = _pairs(seed=5)
    a = losses.clip_loss_parts(v, t, 20.0)
    b = losses.clip_loss_parts(t, v, 20.0)
    np.testing.assert_allclose(float(a.total), float(b.total), rtol=1e-6)
    np.testing.assert_allclose(float(a.image_to_text), float(b.text_to_image), rtol=1e-6)
    np.testing.assert_allclose(float(a.uniformity), float(b.uniformity), rtol=1e-6)
    assert int(a.n_correct) == int(b.n_correct)


def test_correct_wrong_counts_on_constructed_batch():
    # Images are one-hot, so L_jk = s * t̂_k[j]. Caption 1 is nearly caption 0: row 1 still
    # picks caption 1 (0.11 > 0), but column 1 (caption 1 choosing an image) picks image 0.
    v = np.eye(3, dtype=np.float32)
    t1 = np.array([0.99, 0.11, 0.0])
    t = np.stack([[1.0, 0, 0], t1 / np.linalg.norm(t1), [0, 0, 1.0]]).astype(np.float32)
    p = losses.clip_loss_parts(v, t, 10.0)
    assert int(p.n_correct) == 5 and int(p.n_wrong) == 1
    assert float(p.accuracy_i2t) == 1.0
    np.testing.assert_allclose(float(p.accuracy_t2i), 2 / 3)
    logits = 10.0 * t.T.astype(np.float64)  # L_jk = s t̂_k[j]
    wrong = logsumexp(logits[:, 1]) - logits[1, 1]
    np.testing.assert_allclose(float(p.wrong), wrong, rtol=1e-5)


def test_parts_from_hand_logits():
    logits = np.array([[5.0, 1, 0], [4, 2, 0], [0, 1, 3]], np.float32)
    p = losses.clip_loss_parts_from_logits(logits)
    # row 1 argmax is 0 (wrong); all columns pick their diagonal
    assert (int(p.n_correct), int(p.n_wrong)) == (5, 1)
    np.testing.assert_allclose(float(p.wrong), logsumexp([4.0, 2, 0]) - 2.0, rtol=1e-6)
    np.testing.assert_allclose(float(p.alignment), -(5 + 2 + 3) / 3, rtol=1e-6)


def test_empty_group_is_nan():
    v = np.eye(4, dtype=np.float32)
    p = losses.clip_loss_parts(v, v, 50.0)
    assert int(p.n_wrong) == 0 and np.isnan(float(p.wrong))
    assert float(p.total) < 1e-10 + 4 * np.exp(-50)  # perfectly matched, sharp: ~0


@pytest.mark.parametrize("block", [1, 7, 16, 40, 100])
def test_blockwise_equals_full(block):
    v, t = _pairs(n=40, seed=7)
    full = losses.clip_loss_parts(v, t, 25.0)
    blk = losses.clip_loss_parts(v, t, 25.0, block_size=block)
    for name in full._fields:
        np.testing.assert_allclose(
            np.asarray(getattr(blk, name)), np.asarray(getattr(full, name)), rtol=2e-6,
            err_msg=name,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("logits", "block", "n_correct"),
    [
        # column 1 ties between its diagonal (row 1) and row 2, in another block: first wins
        ([[3.0, 0, 0], [0, 2, 0], [0, 2, 3]], 2, 6),
        # column 1 ties between row 0 (earlier block) and its diagonal: row 0 wins -> wrong
        ([[3.0, 2, 0], [0, 2, 0], [0, 0, 3]], 1, 5),
    ],
)
def test_blockwise_argmax_tie_takes_first_like_argmax(logits, block, n_correct):
    logits = np.asarray(logits, np.float32)
    full = losses.clip_loss_parts_from_logits(logits)
    lg = jnp.asarray(logits)
    blk = losses.clip_loss_parts_blockwise(lambda r: lg[r], 3, block)
    assert int(full.n_correct) == int(blk.n_correct) == n_correct


def test_jit_equals_eager_and_grad_matches_torch():
    torch = pytest.importorskip("torch")
    v, t = _pairs(n=12, d=6, seed=11)
    s = jnp.float32(7.0)
    eager = losses.clip_loss(v, t, s)
    jitted = jax.jit(losses.clip_loss)(v, t, s)
    np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-6)
    pj = jax.jit(lambda a, b, c: losses.clip_loss_parts(a, b, c, block_size=5))(v, t, s)
    np.testing.assert_allclose(float(pj.total), float(eager), rtol=1e-6)

    gv, gt, gs = jax.grad(losses.clip_loss, argnums=(0, 1, 2))(v, t, s)
    tv = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
    ts = torch.tensor(7.0, dtype=torch.float64, requires_grad=True)
    logits = (
        ts * torch.nn.functional.normalize(tv, dim=1) @ torch.nn.functional.normalize(tt, dim=1).T
    )
    labels = torch.arange(len(v))
    loss = 0.5 * (
        torch.nn.functional.cross_entropy(logits, labels)
        + torch.nn.functional.cross_entropy(logits.T, labels)
    )
    loss.backward()
    np.testing.assert_allclose(float(eager), loss.item(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(gv), tv.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gt), tt.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(gs), ts.grad.item(), rtol=1e-4)


def test_vmap_over_batches_equals_loop():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(5, 10, 4)).astype(np.float32)
    t = rng.normal(size=(5, 10, 4)).astype(np.float32)
    scales = np.linspace(1.0, 20.0, 5).astype(np.float32)
    got = jax.vmap(losses.clip_loss)(v, t, scales)
    loop = [float(losses.clip_loss(v[k], t[k], scales[k])) for k in range(5)]
    np.testing.assert_allclose(np.asarray(got), loop, rtol=1e-6)
    parts = jax.vmap(losses.clip_loss_parts)(v, t, scales)
    np.testing.assert_allclose(np.asarray(parts.total), loop, rtol=1e-6)


def test_temperature_helper_and_bad_inputs():
    np.testing.assert_allclose(float(losses.logit_scale_from_temperature(0.01)), 100.0)
    v, t = _pairs(n=4)
    with pytest.raises(ValueError, match=r"\(4, 8\) and \(3, 8\)"):
        losses.clip_loss(v, t[:3], 1.0)
    with pytest.raises(ValueError, match="scalar"):
        losses.clip_loss(v, t, jnp.ones(2))
    with pytest.raises(ValueError, match="block_size"):
        losses.clip_loss_parts(v, t, 1.0, block_size=0)
    with pytest.raises(ValueError, match="square"):
        losses.clip_loss_parts_from_logits(np.zeros((2, 3)))
