"""SigLIP's sigmoid loss against numpy float64, big_vision's formula, transformers and torch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxclip import losses


def batch(n=6, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d)).astype(np.float32),
        rng.standard_normal((n, d)).astype(np.float32),
    )


def numpy_reference(img, txt, t, b):
    """Zhai et al. Eq. 1 in float64 with explicit loops: −(1/N) Σ_i Σ_j log σ(z_ij L_ij)."""
    img = img.astype(np.float64) / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt.astype(np.float64) / np.linalg.norm(txt, axis=1, keepdims=True)
    n = len(img)
    pos = neg = 0.0
    for i in range(n):
        for j in range(n):
            logit = t * img[i] @ txt[j] + b
            z = 1.0 if i == j else -1.0
            term = -np.log(1.0 / (1.0 + np.exp(-z * logit)))
            if i == j:
                pos += term
            else:
                neg += term
    return (pos + neg) / n, pos / n, neg / n


def big_vision_loss(zimg, ztxt, t, b):
    """big_vision `trainers/proj/image_text/siglip.py` loss_fn, transcribed (jnp)."""
    zimg = zimg / (jnp.linalg.norm(zimg, axis=1, keepdims=True) + 1e-8)
    ztxt = ztxt / (jnp.linalg.norm(ztxt, axis=1, keepdims=True) + 1e-8)
    logits = jnp.dot(zimg, ztxt.T)
    logits = logits * t + b
    eye = jnp.eye(zimg.shape[0])
    m1_diag1 = -jnp.ones_like(logits) + 2 * eye
    loglik = jax.nn.log_sigmoid(m1_diag1 * logits)
    nll = -jnp.sum(loglik, axis=-1)
    return jnp.mean(nll)


@pytest.mark.parametrize("t,b", [(10.0, -10.0), (1.0, 0.0), (25.0, 3.0)])
def test_matches_float64_reference_and_big_vision(t, b):
    img, txt = batch()
    want, want_pos, want_neg = numpy_reference(img, txt, t, b)
    got = losses.sigmoid_loss(img, txt, t, b)
    np.testing.assert_allclose(float(got), want, rtol=2e-6)
    parts = losses.sigmoid_loss_parts(img, txt, t, b)
    np.testing.assert_allclose(float(parts.positive), want_pos, rtol=2e-6)
    np.testing.assert_allclose(float(parts.negative), want_neg, rtol=2e-6)
    np.testing.assert_allclose(float(parts.total), float(parts.positive + parts.negative), 1e-6)
    np.testing.assert_allclose(float(got), float(big_vision_loss(img, txt, t, b)), rtol=2e-6)


def test_hand_computed_batch():
    # Orthonormal pairs, t = 1, b = 0: L = I, so ℓ = (1/2)(2 softplus(−1) + 2 log 2).
    e = np.eye(2, dtype=np.float32)
    parts = losses.sigmoid_loss_parts(e, e, 1.0, 0.0)
    assert float(parts.positive) == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-6)
    assert float(parts.negative) == pytest.approx(np.log(2.0), rel=1e-6)
    assert float(parts.accuracy) == 1.0  # L = 1 > 0 on the diagonal, L = 0 <= 0 off it
    assert float(parts.mean_positive_logit) == pytest.approx(1.0)
    assert float(parts.mean_negative_logit) == pytest.approx(0.0)


def test_matches_transformers_siglip_loss():
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(0)
    cfg = SiglipConfig(
        vision_config=dict(
            image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=16,
        ),
        text_config=dict(
            vocab_size=50, max_position_embeddings=8, hidden_size=16, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=16,
        ),
    )  # fmt: skip
    model = SiglipModel(cfg).eval()
    with torch.no_grad():
        model.logit_scale.fill_(np.log(7.0))
        model.logit_bias.fill_(-2.5)
        out = model(
            input_ids=torch.randint(0, 50, (5, 8)),
            pixel_values=torch.randn(5, 3, 16, 16),
            return_loss=True,
        )
    img, txt = out.image_embeds.numpy(), out.text_embeds.numpy()
    got = losses.sigmoid_loss(img, txt, 7.0, -2.5)
    np.testing.assert_allclose(float(got), float(out.loss), rtol=1e-5)
    logits = losses.sigmoid_logits(img, txt, 7.0, -2.5)
    np.testing.assert_allclose(np.asarray(logits), out.logits_per_image.numpy(), atol=1e-5)


def test_gradients_match_torch_float64_autograd():
    img, txt = batch(n=5, d=4, seed=3)
    log_t, b = np.log(8.0), -4.0

    def ours(i, x, lt, bb):
        return losses.sigmoid_loss(i, x, jnp.exp(lt), bb)

    grads = jax.grad(ours, argnums=(0, 1, 2, 3))(img, txt, jnp.float32(log_t), jnp.float32(b))
    ti, tx = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (img, txt))
    tlt = torch.tensor(log_t, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    zi = ti / ti.norm(dim=1, keepdim=True)
    zt = tx / tx.norm(dim=1, keepdim=True)
    logits = zi @ zt.T * tlt.exp() + tb
    sign = 2 * torch.eye(5, dtype=torch.float64) - 1
    loss = -torch.nn.functional.logsigmoid(sign * logits).sum(dim=1).mean()
    loss.backward()
    for g, ref in zip(grads, (ti.grad, tx.grad, tlt.grad, tb.grad)):
        np.testing.assert_allclose(np.asarray(g), ref.numpy(), rtol=1e-4, atol=1e-5)
    assert abs(float(grads[3])) > 1e-3  # the bias gradient is not trivially zero


def test_jit_vmap_and_bad_inputs():
    img, txt = batch()
    eager = losses.sigmoid_loss(img, txt, 10.0, -10.0)
    jitted = jax.jit(losses.sigmoid_loss)(img, txt, 10.0, -10.0)
    np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-6)
    stacked = jax.vmap(losses.sigmoid_loss, in_axes=(None, None, None, 0))(
        img, txt, 10.0, jnp.array([-10.0, 0.0])
    )
    loop = [losses.sigmoid_loss(img, txt, 10.0, bb) for bb in (-10.0, 0.0)]
    np.testing.assert_allclose(np.asarray(stacked), np.asarray(loop), rtol=1e-6)
    with pytest.raises(ValueError, match="logit_bias must be a scalar"):
        losses.sigmoid_loss(img, txt, 10.0, jnp.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        losses.sigmoid_loss(img, txt[:3], 10.0, 0.0)
