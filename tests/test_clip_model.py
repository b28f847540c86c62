"""The Flax CLIP against transformers' PyTorch CLIPModel (the independent reference)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import CLIPConfig as HFCLIPConfig
from transformers import CLIPModel

import jaxclip
from jaxclip.models import convert
from jaxclip.models.clip import CLIP, eos_positions
from jaxclip.models.variants import (
    VARIANTS,
    CLIPConfig,
    TextConfig,
    VisionConfig,
    from_hf_config,
    get_variant,
    tiny,
    to_hf_config,
)

BOS, EOS, PAD, VOCAB, CTX = 97, 98, 0, 99, 16


def hf_config(act: str, eos: int = EOS) -> HFCLIPConfig:
    return HFCLIPConfig(
        text_config=dict(
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=CTX,
            bos_token_id=BOS,
            eos_token_id=eos,
            pad_token_id=PAD,
            hidden_act=act,
        ),
        vision_config=dict(
            image_size=32,
            patch_size=8,
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            hidden_act=act,
        ),
        projection_dim=24,
    )


def torch_model(act: str, eos: int = EOS, seed: int = 0) -> CLIPModel:
    torch.manual_seed(seed)
    model = CLIPModel(hf_config(act, eos)).eval()
    with torch.no_grad():  # LayerNorms start at (1, 0): randomise them so they are tested too.
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def token_ids() -> np.ndarray:
    rows = [
        [BOS, 5, 6, EOS] + [PAD] * (CTX - 4),
        [BOS, 5, 6, 7, 8, 9, 10, EOS, EOS, EOS] + [PAD] * (CTX - 10),
        [BOS] + [3] * (CTX - 2) + [EOS],
    ]
    return np.asarray(rows, np.int32)


def pixels(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module", params=["quick_gelu", "gelu"])
def pair(request, tmp_path_factory):
    """(torch CLIPModel, jaxclip.load of its save_pretrained folder)."""
    model = torch_model(request.param)
    folder = tmp_path_factory.mktemp(f"hf_{request.param}")
    model.save_pretrained(folder)  # safetensors
    return model, folder


def torch_embeds(model: CLIPModel, x: np.ndarray, ids: np.ndarray):
    with torch.no_grad():
        img = model.get_image_features(pixel_values=torch.tensor(x.transpose(0, 3, 1, 2)))
        txt = model.get_text_features(input_ids=torch.tensor(ids, dtype=torch.long))
    # transformers v5 returns output objects; pooler_output holds the projected embeddings.
    return img.pooler_output.numpy(), txt.pooler_output.numpy()


def test_parity_float32(pair):
    model, folder = pair
    loaded = jaxclip.load(folder)
    x, ids = pixels(), token_ids()
    ref_img, ref_txt = torch_embeds(model, x, ids)
    img = loaded.encode_pixels(x)
    txt = np.asarray(loaded._text_fn(loaded.params, jnp.asarray(ids)))
    assert img.dtype == np.float32 and img.shape == (3, 24)
    np.testing.assert_allclose(img, ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(txt, ref_txt, rtol=0, atol=1e-5)
    assert np.abs(ref_img).max() > 0.1  # not trivially small


def test_parity_bfloat16(pair):
    model, folder = pair
    loaded = jaxclip.load(folder, dtype="bfloat16")
    x, ids = pixels(), token_ids()
    ref_img, ref_txt = torch_embeds(model, x, ids)
    img = loaded.encode_pixels(x)
    txt = np.asarray(loaded._text_fn(loaded.params, jnp.asarray(ids)))
    assert img.dtype == np.float32 and txt.dtype == np.float32
    for ours, ref in ((img, ref_img), (txt, ref_txt)):
        rel = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
        assert rel < 2e-2, rel
        assert rel > 1e-5  # really computed in bfloat16


def test_pooled_and_hidden_states_match_torch(pair):
    model, folder = pair
    loaded = jaxclip.load(folder)
    x, ids = pixels(2), token_ids()[:2]
    variables = {"params": loaded.params}
    _, img_out = loaded.module.apply(
        variables, jnp.asarray(x), return_hidden=True, method=CLIP.encode_image
    )
    _, txt_out = loaded.module.apply(
        variables, jnp.asarray(ids), return_hidden=True, method=CLIP.encode_text
    )
    with torch.no_grad():
        v = model.vision_model(
            pixel_values=torch.tensor(x.transpose(0, 3, 1, 2)), output_hidden_states=True
        )
        t = model.text_model(
            input_ids=torch.tensor(ids, dtype=torch.long), output_hidden_states=True
        )
    assert len(img_out["hidden_states"]) == 3 == len(v.hidden_states)  # embeddings + 2 layers
    assert len(txt_out["hidden_states"]) == 3 == len(t.hidden_states)
    for ours, ref in zip(img_out["hidden_states"], v.hidden_states):
        assert ours.shape == (2, 17, 48)
        np.testing.assert_allclose(np.asarray(ours), ref.numpy(), atol=1e-5)
    for ours, ref in zip(txt_out["hidden_states"], t.hidden_states):
        assert ours.shape == (2, CTX, 32)
        np.testing.assert_allclose(np.asarray(ours), ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(img_out["pooled"]), v.pooler_output.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(txt_out["pooled"]), t.pooler_output.numpy(), atol=1e-5)
    # Without hidden states the last block computes only the pooled row (class token, EOS):
    # the same pooled outputs as torch's full towers.
    _, no_hidden = loaded.module.apply(variables, jnp.asarray(x), method=CLIP.encode_image)
    assert set(no_hidden) == {"pooled"}
    np.testing.assert_allclose(np.asarray(no_hidden["pooled"]), v.pooler_output.numpy(), atol=1e-5)
    _, txt_pooled = loaded.module.apply(variables, jnp.asarray(ids), method=CLIP.encode_text)
    np.testing.assert_allclose(np.asarray(txt_pooled["pooled"]), t.pooler_output.numpy(), atol=1e-5)


def test_legacy_eos_id_2_pools_at_argmax(tmp_path):
    """Old hub configs say eos_token_id = 2: transformers then pools at argmax(ids)."""
    model = torch_model("quick_gelu", eos=2)
    model.save_pretrained(tmp_path)
    loaded = jaxclip.load(tmp_path)
    ids = token_ids()
    ids[:, 1] = EOS + 0  # the largest id now sits at position 1 in every row
    _, ref_txt = torch_embeds(model, pixels(1), ids)
    txt = np.asarray(loaded._text_fn(loaded.params, jnp.asarray(ids)))
    np.testing.assert_allclose(txt, ref_txt, atol=1e-5)


def test_eos_positions_by_hand():
    ids = jnp.asarray([[1, 5, 9, 9, 0], [1, 9, 3, 4, 5], [1, 2, 3, 4, 5]])
    np.testing.assert_array_equal(eos_positions(ids, 9), [2, 1, 0])  # no EOS -> 0
    np.testing.assert_array_equal(eos_positions(ids, 2), [2, 1, 4])  # legacy: argmax


def init_params(cfg: CLIPConfig):
    """Random params without compiling both towers: init run abstractly, then filled."""
    module = CLIP(cfg)
    s = cfg.vision.image_size
    shapes = jax.eval_shape(
        module.init, jax.random.PRNGKey(0), jnp.zeros((1, s, s, 3)), jnp.zeros((1, 8), jnp.int32)
    )
    rng = np.random.default_rng(0)

    def fill(path, x):
        name = path[-1].key
        base = {"scale": 1.0, "logit_scale": 2.6592}.get(name, 0.0)
        return jnp.asarray(base + rng.normal(0, 0.05, x.shape), x.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


# A small-vocabulary config for the eager (op-by-op) tests, which are slow on big tables.
SMALL = CLIPConfig(
    VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=2, mlp_dim=64),
    TextConfig(
        vocab_size=VOCAB,
        context_length=CTX,
        width=32,
        layers=2,
        heads=2,
        mlp_dim=64,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    ),
    projection_dim=16,
)


@pytest.fixture(scope="module")
def tiny_vars():
    return init_params(tiny())


@pytest.fixture(scope="module")
def small_vars():
    return init_params(SMALL)


def test_param_tree_is_hf_flax_layout():
    cfg = tiny()
    module = CLIP(cfg)
    shapes = jax.eval_shape(
        module.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), jnp.zeros((1, 8), jnp.int32)
    )["params"]
    flat = {p: tuple(x.shape) for p, x in convert.flatten(shapes).items()}
    assert flat == convert.expected_shapes(cfg)
    assert set(shapes) == {
        "text_model",
        "vision_model",
        "visual_projection",
        "text_projection",
        "logit_scale",
    }
    for path in [
        ("vision_model", "embeddings", "patch_embedding", "kernel"),
        ("vision_model", "encoder", "layers", "0", "self_attn", "q_proj", "kernel"),
        ("vision_model", "pre_layrnorm", "scale"),
        ("vision_model", "post_layernorm", "bias"),
        ("text_model", "final_layer_norm", "scale"),
        ("text_model", "embeddings", "token_embedding", "embedding"),
    ]:
        assert path in flat, path
    assert flat[("vision_model", "embeddings", "patch_embedding", "kernel")] == (8, 8, 3, 64)


def test_call_outputs_and_logit_scale_init():
    module = CLIP(tiny())
    x, ids = jnp.zeros((2, 32, 32, 3)), jnp.full((3, 77), 49407)
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x, ids)
    out = jax.eval_shape(module.apply, variables, x, ids)
    assert out["image_embeds"].shape == (2, 64) and out["text_embeds"].shape == (3, 64)
    assert out["logit_scale"].shape == () and out["logit_scale"].dtype == jnp.float32
    scale, _ = module.init_with_output(
        jax.random.PRNGKey(0), method=lambda m: m.logit_scale
    )  # setup() alone: no tower is built
    assert float(scale) == pytest.approx(2.6592)
    assert float(scale) == pytest.approx(np.log(1 / 0.07), abs=1e-4)


def test_bfloat16_compute_returns_float32(small_vars):
    module, variables = CLIP(SMALL, dtype=jnp.bfloat16), small_vars
    fn = jax.jit(lambda v, x: module.apply(v, x, method=CLIP.encode_image))
    emb, out = fn(variables, jnp.ones((2, 32, 32, 3)))
    assert emb.dtype == jnp.float32 and out["pooled"].dtype == jnp.float32
    assert jax.tree.leaves(variables)[0].dtype == jnp.float32  # param_dtype unchanged


def test_jit_equals_eager(small_vars):
    module, variables = CLIP(SMALL), small_vars
    x = jnp.asarray(pixels(2))
    ids = jnp.asarray(token_ids()[:2])
    eager_img, _ = module.apply(variables, x, method=CLIP.encode_image)
    jit_img, _ = jax.jit(lambda v, x: module.apply(v, x, method=CLIP.encode_image))(variables, x)
    eager_txt, _ = module.apply(variables, ids, method=CLIP.encode_text)
    jit_txt, _ = jax.jit(lambda v, t: module.apply(v, t, method=CLIP.encode_text))(variables, ids)
    np.testing.assert_allclose(jit_img, eager_img, atol=1e-6)
    np.testing.assert_allclose(jit_txt, eager_txt, atol=1e-6)


def test_batch_equals_loop(small_vars):
    """Examples do not interact: the batched call equals one call per example."""
    module, variables = CLIP(SMALL), small_vars
    x = jnp.asarray(pixels(4))
    encode = jax.jit(lambda x: module.apply(variables, x, method=CLIP.encode_image)[0])
    batched = encode(x)
    looped = jnp.concatenate([encode(x[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(batched, looped, atol=1e-5)
    vmapped = jax.jit(jax.vmap(lambda xi: encode(xi[None])[0]))(x)
    np.testing.assert_allclose(vmapped, looped, atol=1e-5)


def test_causal_mask_future_tokens_do_not_change_pooled_text(tiny_vars):
    module, variables = CLIP(tiny()), tiny_vars
    a = np.full((1, 77), 49407, np.int32)
    a[0, :4] = [49406, 320, 1125, 49407]
    b = a.copy()
    b[0, 10:20] = 555  # after the EOS: invisible to the pooled position under a causal mask
    encode = jax.jit(lambda t: module.apply(variables, t, method=CLIP.encode_text)[0])
    ea, eb = encode(jnp.asarray(a)), encode(jnp.asarray(b))
    c = a.copy()
    c[0, 2] = 556  # before the EOS: must change it
    assert np.abs(encode(jnp.asarray(c)) - ea).max() > 1e-3
    np.testing.assert_allclose(ea, eb, atol=1e-6)


def test_bad_input_shapes_are_named(small_vars):
    module, variables = CLIP(SMALL), small_vars
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\).*\(2, 3, 32, 32\)"):
        module.apply(variables, jnp.zeros((2, 3, 32, 32)), method=CLIP.encode_image)
    with pytest.raises(ValueError, match=r"T<=16.*\(2, 80\)"):
        module.apply(variables, jnp.zeros((2, 80), jnp.int32), method=CLIP.encode_text)


# --- variants and configs -----------------------------------------------------------------------


def test_variants_sizes_match_public_hf_configs():
    # Numbers from the public config.json of openai/clip-vit-{base-patch32,large-patch14(-336)}.
    b32 = VARIANTS["vit_b32"]()
    assert (b32.vision.width, b32.vision.layers, b32.vision.heads, b32.vision.mlp_dim) == (
        768,
        12,
        12,
        3072,
    )
    assert (b32.text.width, b32.text.layers, b32.text.heads, b32.text.mlp_dim) == (512, 12, 8, 2048)
    assert (b32.vision.patch_size, b32.vision.image_size, b32.projection_dim) == (32, 224, 512)
    assert VARIANTS["vit_b16"]().vision.patch_size == 16
    l14 = VARIANTS["vit_l14"]()
    assert (l14.vision.width, l14.vision.layers, l14.vision.heads, l14.vision.mlp_dim) == (
        1024,
        24,
        16,
        4096,
    )
    assert (l14.text.width, l14.text.heads, l14.projection_dim) == (768, 12, 768)
    assert VARIANTS["vit_l14_336"]().vision.image_size == 336
    t = VARIANTS["tiny"]()
    assert t.vision.width <= 64 and t.vision.layers <= 2 and t.vision.image_size == 32
    assert t.vision.patch_size == 8 and t.text.eos_token_id < t.text.vocab_size


def test_hf_config_round_trip_and_transformers_accepts_it():
    for name in VARIANTS:
        cfg = get_variant(name)
        hf = to_hf_config(cfg)
        assert from_hf_config(hf) == cfg
        back = HFCLIPConfig(**hf)  # transformers parses it
        assert back.vision_config.hidden_size == cfg.vision.width
        assert back.text_config.eos_token_id == cfg.text.eos_token_id
        assert back.projection_dim == cfg.projection_dim
    assert from_hf_config(hf_config("gelu").to_dict()).text.act == "gelu"
    # Keys a config.json leaves out take transformers' own defaults.
    assert from_hf_config({"text_config": {}, "vision_config": {}}) == from_hf_config(
        HFCLIPConfig().to_dict()
    )
    # Old hub configs: *_config_dict overrides *_config (transformers does the same).
    old = {"text_config": {"hidden_act": "gelu"}, "text_config_dict": {"hidden_act": "quick_gelu"},
           "vision_config": None, "vision_config_dict": {"patch_size": 14}}  # fmt: skip
    cfg = from_hf_config(old)
    assert cfg.text.act == "quick_gelu" and cfg.vision.patch_size == 14
    with pytest.raises(ValueError, match="no 'vision_config'"):
        from_hf_config({"text_config": {}})


def test_parameter_count_vit_b32():
    """151,277,313 parameters: the known size of openai/clip-vit-base-patch32."""
    n = sum(int(np.prod(s)) for s in convert.expected_shapes(get_variant("vit_b32")).values())
    assert n == 151_277_313


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match=r"unknown CLIP variant 'vit_h14'.*vit_b32"):
        get_variant("vit_h14")
    with pytest.raises(ValueError, match="eos_token_id=99 lies outside"):
        TextConfig(vocab_size=99, eos_token_id=99, bos_token_id=1, pad_token_id=0)
    with pytest.raises(ValueError, match="act='swish'"):
        VisionConfig(act="swish")
    with pytest.raises(ValueError, match="not divisible"):
        dataclasses.replace(tiny().vision, heads=3)


def test_patch_matmul_is_the_strided_patch_convolution():
    """The patch embedding's matmul form against PyTorch's conv2d in float64, including an image
    whose sides are not multiples of the patch (VALID drops the remainder)."""
    import torch

    from jaxclip.models.clip import patch_matmul

    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((2, 70, 48, 3))
    kernel = rng.standard_normal((16, 16, 3, 5))
    ours = np.asarray(
        patch_matmul(jnp.asarray(pixels, jnp.float32), jnp.asarray(kernel, jnp.float32))
    )
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(pixels).permute(0, 3, 1, 2),
        torch.from_numpy(kernel).permute(3, 2, 0, 1),
        stride=16,
    )  # (N, D, H // P, W // P)
    ref = ref.permute(0, 2, 3, 1).reshape(2, -1, 5).numpy()
    assert ours.shape == (2, 4 * 3, 5)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)
