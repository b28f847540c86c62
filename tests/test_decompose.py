"""The residual-stream decomposition against transformers' PyTorch CLIPModel (float64, hooks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jaxclip.models import convert
from jaxclip.models.decompose import decompose_batched, decompose_vit
from jaxclip.models.load import from_params
from jaxclip.models.variants import CLIPConfig, TextConfig, VisionConfig, to_hf_config
from tests.reference_models import hf_clip_model

TEXT = TextConfig(width=32, layers=1, heads=2, mlp_dim=64)
# Two sizes no other test uses: odd head counts, non-power-of-two widths, both activations.
SIZES = {
    "w48_h3_gelu": CLIPConfig(
        VisionConfig(
            image_size=32, patch_size=8, width=48, layers=2, heads=3, mlp_dim=96, act="gelu"
        ),
        TEXT,
        projection_dim=24,
    ),
    "w40_h5_quick": CLIPConfig(
        VisionConfig(image_size=28, patch_size=7, width=40, layers=3, heads=5, mlp_dim=80),
        TEXT,
        projection_dim=16,
    ),
}


def _torch_model(cfg: CLIPConfig, seed: int):
    torch.manual_seed(seed)
    model = hf_clip_model(to_hf_config(cfg), attn_implementation="eager")
    # Larger than transformers' 0.02 init, so every component matters in the sum.
    with torch.no_grad():
        for name, p in model.vision_model.named_parameters():
            if name.endswith("bias"):  # transformers initialises biases to 0: make them count
                p.add_(0.1 * torch.randn_like(p))
            elif "layer_norm" in name or "layrnorm" in name:
                p.mul_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.mul_(4.0)
    return model.eval()


def reference(model, cfg: CLIPConfig, pixels: np.ndarray, directions: np.ndarray):
    """heads, mlps, embed, bias, token_scores in float64 from forward hooks on the PyTorch model:
    the input of each layer's self_attn.out_proj split per head, each MLP's output and the
    pre-LayerNorm's output at the class token, the final LayerNorm linearised by hand."""
    m = model.double()
    vis = m.vision_model
    v, nh = cfg.vision, cfg.vision.heads
    hd = v.width // nh
    seen: dict[str, torch.Tensor] = {}
    hooks = [vis.pre_layrnorm.register_forward_hook(lambda _m, _i, o: seen.update(embed=o))]
    for i, layer in enumerate(vis.encoder.layers):
        hooks += [
            layer.self_attn.out_proj.register_forward_pre_hook(
                lambda _m, inp, i=i: seen.update({f"z{i}": inp[0]})
            ),
            layer.self_attn.v_proj.register_forward_hook(
                lambda _m, _i, o, i=i: seen.update({f"v{i}": o})
            ),
            layer.mlp.register_forward_hook(lambda _m, _i, o, i=i: seen.update({f"m{i}": o})),
        ]
    x = torch.from_numpy(pixels.transpose(0, 3, 1, 2).astype(np.float64))
    with torch.no_grad():
        out = vis(pixel_values=x, output_hidden_states=True, output_attentions=True)
        emb = m.visual_projection(out.pooler_output).detach().numpy()
    for h in hooks:
        h.remove()
    r = (
        out.last_hidden_state[:, 0].detach().numpy()
    )  # residual stream at the class token, pre post-LN
    eps = v.layer_norm_eps
    sigma = np.sqrt(r.var(-1, keepdims=True) + eps)
    gamma = vis.post_layernorm.weight.double().detach().numpy()
    beta = vis.post_layernorm.bias.double().detach().numpy()
    proj = m.visual_projection.weight.double().detach().numpy().T  # (W, D)

    def through(c):  # (N, ..., W) -> (N, ..., D)
        sig = sigma.reshape((len(c),) + (1,) * (c.ndim - 1))
        return (gamma * (c - c.mean(-1, keepdims=True)) / sig) @ proj

    heads, mlps, scores = [], [], []
    for i, layer in enumerate(vis.encoder.layers):
        wo = layer.self_attn.out_proj.weight.detach().numpy().T  # (W_in, W_out)
        bo = layer.self_attn.out_proj.bias.detach().numpy()
        z = seen[f"z{i}"].detach().numpy()  # (N, T, W) attention output before out_proj
        n, t, _ = z.shape
        per_head = np.stack(
            [
                z[:, 0, h * hd : (h + 1) * hd] @ wo[h * hd : (h + 1) * hd] + bo / nh
                for h in range(nh)
            ],
            1,
        )
        heads.append(through(per_head))
        mlps.append(through(seen[f"m{i}"].detach().numpy()[:, 0]))
        att = out.attentions[i].detach().numpy()[:, :, 0]  # (N, H, T) class-token attention
        vals = seen[f"v{i}"].detach().numpy().reshape(n, t, nh, hd)
        tok = np.stack(
            [
                att[:, h, :, None] * (vals[:, :, h] @ wo[h * hd : (h + 1) * hd]) + bo / (nh * t)
                for h in range(nh)
            ],
            1,
        )  # (N, H, T, W) per-token contributions
        scores.append(through(tok) @ directions.T)
    return dict(
        heads=np.stack(heads, 1),
        mlps=np.stack(mlps, 1),
        embed=through(seen["embed"].detach().numpy()[:, 0]),
        bias=beta @ proj,
        token_scores=np.stack(scores, 1),
        cls_states=np.stack([h[:, 0].detach().numpy() for h in out.hidden_states], 1),
        patch_means=np.stack([h[:, 1:].mean(1).detach().numpy() for h in out.hidden_states], 1),
        emb=emb,
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_parity_with_transformers_hooks_float64(size):
    cfg = SIZES[size]
    model = _torch_model(cfg, seed=len(size))
    params = convert.hf_torch_to_params(
        {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, cfg
    )
    rng = np.random.default_rng(1)
    s = cfg.vision.image_size
    pixels = rng.standard_normal((3, s, s, 3)).astype(np.float32)
    directions = rng.standard_normal((4, cfg.projection_dim)).astype(np.float32)
    ours = decompose_batched(params, cfg, pixels, directions=directions, batch_size=2)
    ref = reference(model, cfg, pixels, directions.astype(np.float64))
    scale = np.abs(ref["emb"]).max()
    for key in ("heads", "mlps", "embed", "bias", "token_scores", "cls_states", "patch_means"):
        got = getattr(ours, key)
        assert got.shape == ref[key].shape, (key, got.shape, ref[key].shape)
        size = np.abs(ref[key]).max() if key.endswith(("states", "means")) else scale
        np.testing.assert_allclose(got, ref[key], rtol=1e-5, atol=1e-5 * size, err_msg=key)
    # Every component matters: no part is negligible next to the tolerance.
    assert np.abs(ref["heads"]).max() > 1e-2 * scale and np.abs(ref["mlps"]).max() > 1e-2 * scale
    # The reference's own sum is PyTorch's embedding (the linearisation is exact).
    ref_total = ref["heads"].sum((1, 2)) + ref["mlps"].sum(1) + ref["embed"] + ref["bias"]
    np.testing.assert_allclose(ref_total, ref["emb"], rtol=1e-10, atol=1e-10)


@pytest.fixture(scope="module")
def small():
    cfg = SIZES["w40_h5_quick"]
    model = _torch_model(cfg, seed=7)
    params = convert.hf_torch_to_params(
        {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, cfg
    )
    return from_params(cfg, params)


def test_exact_sum_equals_encode_image(small):
    images = np.random.default_rng(2).integers(0, 256, (5, 40, 33, 3), dtype=np.uint8)
    dec = small.decompose_image(images, batch_size=4)
    emb = small.encode_image(images)
    rel = np.abs(dec.total() - emb).max() / np.abs(emb).max()
    assert rel <= 1e-5, rel
    dev = small.decompose_image(images, preprocess="device", batch_size=8)
    np.testing.assert_allclose(
        dev.total(), small.encode_image(images, preprocess="device"), atol=1e-5 * np.abs(emb).max()
    )
    assert dec.heads.shape == (5, 3, 5, 16) and dec.mlps.shape == (5, 3, 16)
    assert dec.embed.shape == (5, 16) and dec.bias.shape == (16,) and dec.token_scores is None


def test_token_scores_sum_to_head_scores_and_batching_changes_nothing(small):
    rng = np.random.default_rng(3)
    pixels = rng.standard_normal((3, 28, 28, 3)).astype(np.float32)
    u = rng.standard_normal((3, 16)).astype(np.float32)
    dec = small.decompose_pixels(pixels, directions=u, batch_size=2)  # last batch padded
    assert dec.token_scores.shape == (3, 3, 5, 17, 3)  # 4x4 patches + class token
    np.testing.assert_allclose(
        dec.token_scores.sum(3), np.einsum("nlhd,kd->nlhk", dec.heads, u), atol=1e-5
    )
    one = decompose_vit(small.params, small.config, pixels[2:], u)  # unjitted, one image
    for key in ("heads", "mlps", "embed", "token_scores"):
        np.testing.assert_allclose(getattr(dec, key)[2:], np.asarray(one[key]), atol=1e-5)


def test_bad_input_names_the_value(small):
    with pytest.raises(ValueError, match=r"pixels must be \(N, 28, 28, 3\) NHWC; got shape"):
        small.decompose_pixels(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"directions must be \(K, 16\); got shape \(2, 5\)"):
        small.decompose_pixels(np.zeros((1, 28, 28, 3), np.float32), directions=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="preprocess='gpu' is not valid"):
        small.decompose_image(np.zeros((1, 28, 28, 3), np.uint8), preprocess="gpu")
