"""ResNet and ConvNeXt image towers and OpenCLIP checkpoints, against the reference model code.

References (independent of jaxclip): OpenAI's `clip/model.py` (ModifiedResNet, OpenAI's text
tower, `build_model`'s shape rules), OpenCLIP's `open_clip/model.py` + `transformer.py` (its
text tower options) + `timm_model.py` (TimmModel head), timm's `models/convnext.py` (the trunk),
and OpenCLIP's `pretrained.py` / `model_configs/*.json` (names, hub repos, configs).

torchvision is not installed and both open_clip's and timm's package `__init__` import it:
`tests.reference_models.reference_modules` imports the needed submodules without it (see
that module's docstring).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

import jaxclip
from jaxclip.models import convert, convnext, resnet
from jaxclip.models import open_clip as oc
from jaxclip.models.catalog import MODELS
from jaxclip.models.clip import CLIP
from jaxclip.models.convert import CheckpointError
from jaxclip.models.load import from_params, save
from jaxclip.models.variants import (
    CONV_VARIANTS,
    CLIPConfig,
    ConvNeXtConfig,
    ResNetConfig,
    TextConfig,
    VisionConfig,
    get_variant,
    to_hf_config,
)
from tests.reference_models import (
    package_dir,
    reference_modules,
    tiny_convnext_factory,
    torch_encode,
    torch_state_dict,
)

OPEN_CLIP_DIR = package_dir("open_clip")
load_mod = importlib.import_module("jaxclip.models.load")

# --- reference code, imported without torchvision -----------------------------------------------


@pytest.fixture(scope="module")
def refs():
    return reference_modules()


# --- helpers -------------------------------------------------------------------------------------

VOCAB, CTX = 300, 77  # OpenAI's / OpenCLIP's attention mask is built for the full context.
BOS, EOS = VOCAB - 2, VOCAB - 1


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter and BatchNorm statistic perturbed, so none sits at its 0 / 1 init."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))
    return model.eval()


def token_ids(pad: int = EOS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = np.full((3, CTX), pad, np.int32)
    for i, n in enumerate((3, 10, CTX - 2)):
        ids[i, 0] = BOS
        ids[i, 1 : 1 + n] = rng.integers(1, VOCAB - 2, n)
        ids[i, 1 + n] = EOS  # the largest id: argmax pooling finds it
    return ids


def pixels(size: int, n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)


def jax_text(loaded, ids: np.ndarray) -> np.ndarray:
    return np.asarray(loaded._text_fn(loaded.params, jnp.asarray(ids)))


def apply_image(loaded, x: np.ndarray, **kw):
    return loaded.module.apply(
        {"params": loaded.params}, jnp.asarray(x), method=CLIP.encode_image, **kw
    )


def hooked_outputs(modules: list[torch.nn.Module], run) -> list[np.ndarray]:
    """Outputs of `modules` (NCHW -> NHWC) while `run()` executes."""
    outs: list[np.ndarray] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: outs.append(o.detach().numpy())) for m in modules
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return [o.transpose(0, 2, 3, 1) for o in outs]


TEXT_CFG = dict(context_length=CTX, vocab_size=VOCAB, width=64, heads=2, layers=2)


def write_open_clip_folder(folder: Path, model_cfg: dict, sd: dict, preprocess=None) -> Path:
    """An OpenCLIP hub folder as `open_clip.push_to_hf_hub` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model_cfg": model_cfg, "preprocess_cfg": preprocess or {}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    save_file(sd, str(folder / "open_clip_model.safetensors"))
    return folder


# --- ResNet: OpenAI's ModifiedResNet ---------------------------------------------------------------

RN_LAYERS, RN_WIDTH, RN_SIZE = (1, 2, 1, 1), 8, 64  # pool width 256, OpenAI heads 256 // 64 = 4


@pytest.fixture(scope="module")
def openai_rn(refs):
    torch.manual_seed(0)
    model = refs.openai.CLIP(
        embed_dim=24,
        image_resolution=RN_SIZE,
        vision_layers=RN_LAYERS,
        vision_width=RN_WIDTH,
        vision_patch_size=None,
        context_length=CTX,
        vocab_size=VOCAB,
        transformer_width=64,
        transformer_heads=1,  # OpenAI's build_model: width // 64
        transformer_layers=2,
    )
    return randomize(model)


@pytest.fixture(scope="module")
def loaded_rn(openai_rn, tmp_path_factory):
    path = tmp_path_factory.mktemp("rn") / "RN-tiny-openai.safetensors"
    save_file(torch_state_dict(openai_rn), str(path))
    return jaxclip.load(path)  # "openai" in the name: quick_gelu, no warning


def test_resnet_architecture_read_from_shapes(loaded_rn):
    cfg = loaded_rn.config
    assert cfg.vision == ResNetConfig(image_size=64, layers=RN_LAYERS, width=8, heads=4)
    assert (cfg.projection_dim, cfg.text.width, cfg.text.act) == (24, 64, "quick_gelu")
    assert set(loaded_rn.params) == {"visual", "text_model", "text_projection", "logit_scale"}


def test_resnet_parity_with_openai_model_code(openai_rn, loaded_rn):
    x, ids = pixels(RN_SIZE), token_ids()
    ref_img, ref_txt = torch_encode(openai_rn, x, ids)
    img = loaded_rn.encode_pixels(x)
    np.testing.assert_allclose(img, ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(jax_text(loaded_rn, ids), ref_txt, rtol=0, atol=1e-5)
    assert np.abs(ref_img).max() > 0.1 and img.dtype == np.float32


def test_resnet_pooled_and_hidden_states(openai_rn, loaded_rn):
    x = pixels(RN_SIZE, n=2)
    v = openai_rn.visual
    ref_states = hooked_outputs(
        [v.avgpool, v.layer1, v.layer2, v.layer3, v.layer4],
        lambda: openai_rn.encode_image(torch.tensor(x.transpose(0, 3, 1, 2))),
    )
    emb, out = apply_image(loaded_rn, x, return_hidden=True)
    assert len(out["hidden_states"]) == 5
    for ours, ref in zip(out["hidden_states"], ref_states):
        assert ours.shape == ref.shape
        np.testing.assert_allclose(np.asarray(ours), ref, rtol=0, atol=1e-5)
    # pooled: the attention output before c_proj; embeds = c_proj(pooled) (with bias).
    c_proj = openai_rn.visual.attnpool.c_proj
    with torch.no_grad():
        via_torch = c_proj(torch.tensor(np.asarray(out["pooled"]))).numpy()
    assert out["pooled"].shape == (2, 256)
    np.testing.assert_allclose(np.asarray(emb), via_torch, rtol=0, atol=1e-5)


def test_resnet_bfloat16(openai_rn, loaded_rn):
    x = pixels(RN_SIZE)
    ref, _ = torch_encode(openai_rn, x, token_ids())
    bf16 = from_params(loaded_rn.config, loaded_rn.params, dtype="bfloat16")
    ours = bf16.encode_pixels(x)
    rel = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
    assert ours.dtype == np.float32 and 1e-5 < rel < 3e-2, rel


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_resnet_torchscript_archive_like_openai_releases(openai_rn, tmp_path):
    """OpenAI's RN50.pt is a TorchScript archive: read with allow_pickle, architecture inferred."""
    x, ids = pixels(RN_SIZE), token_ids()
    traced = torch.jit.trace(
        openai_rn, (torch.tensor(x[:1].transpose(0, 3, 1, 2)), torch.tensor(ids[:1]).long())
    )
    path = tmp_path / "RN-tiny.pt"
    traced.save(str(path))
    with pytest.raises(PermissionError, match="allow_pickle=True"):
        jaxclip.load(path)
    loaded = jaxclip.load(path, allow_pickle=True)  # TorchScript: OpenAI's, quick_gelu
    assert loaded.config.vision.layers == RN_LAYERS and loaded.config.text.act == "quick_gelu"
    ref_img, _ = torch_encode(openai_rn, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny_resnet", "tiny_convnext"])
def test_conv_towers_jit_eager_batch_loop(name):
    cfg = get_variant(name)
    s = cfg.vision.image_size
    module = CLIP(cfg)
    variables = {"params": random_params(cfg)}
    flat = {p: tuple(x.shape) for p, x in convert.flatten(variables["params"]).items()}
    assert flat == convert.expected_shapes(cfg)
    x = jnp.asarray(pixels(s, n=3))
    eager, _ = module.apply(variables, x, method=CLIP.encode_image)
    encode = jax.jit(lambda x: module.apply(variables, x, method=CLIP.encode_image)[0])
    np.testing.assert_allclose(encode(x), eager, atol=1e-5)
    looped = jnp.concatenate([encode(x[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(encode(x), looped, atol=1e-5)  # frozen BN: no batch coupling
    assert eager.shape == (3, 64) and np.abs(np.asarray(eager)).max() > 0


def test_resnet_sizes_inferred_like_build_model(refs):
    """OpenAI's RN50 ... RN50x64 built on the meta device (no memory): shapes -> our variants."""
    sizes = {  # name: (embed_dim, image_resolution, layers, width, text width)
        "rn50": (1024, 224, (3, 4, 6, 3), 64, 512),
        "rn101": (512, 224, (3, 4, 23, 3), 64, 512),
        "rn50x4": (640, 288, (4, 6, 10, 6), 80, 640),
        "rn50x16": (768, 384, (6, 8, 18, 8), 96, 768),
        "rn50x64": (1024, 448, (3, 15, 36, 10), 128, 1024),
    }
    for name, (embed, res, layers, width, tw) in sizes.items():
        with torch.device("meta"):
            model = refs.openai.CLIP(embed, res, layers, width, None, 77, 49408, tw, tw // 64, 12)
        shapes = {k: np.broadcast_to(np.float32(0), v.shape) for k, v in model.state_dict().items()}
        cfg = convert.infer_openai_config(shapes)
        assert cfg == get_variant(name), name
        ours = convert._openai_shapes(cfg)
        theirs = {k: tuple(v.shape) for k, v in shapes.items() if "num_batches" not in k}
        assert ours == theirs, name
        if name == "rn50":  # parameter count (BN statistics are buffers in PyTorch)
            n = sum(
                int(np.prod(s))
                for p, s in convert.expected_shapes(cfg).items()
                if p[-1] not in ("mean", "var")
            )
            assert n == sum(p.numel() for p in model.parameters()) == 102_007_137


# --- ConvNeXt: timm trunk + OpenCLIP TimmModel head ------------------------------------------------

CNX_DEPTHS, CNX_DIMS = (1, 2, 1, 1), (16, 24, 32, 40)


def tiny_timm_factory(refs):
    """timm.create_model for open_clip's TimmModel, building every name at a tiny size."""

    def create_model(name, pretrained=False, **kwargs):
        if name == "convnext_xxlarge":
            kwargs["norm_eps"] = 1e-5  # as timm's convnext_xxlarge does
        return refs.convnext._create_convnext(
            name, pretrained=False, depths=CNX_DEPTHS, dims=CNX_DIMS, **kwargs
        )

    return create_model


@pytest.mark.parametrize(
    "proj,timm_name,proj_bias",
    [("linear", "convnext_base", False), ("mlp", "convnext_xxlarge", True)],
)
def test_convnext_parity_with_open_clip(refs, monkeypatch, tmp_path, proj, timm_name, proj_bias):
    monkeypatch.setattr(refs.timm, "create_model", tiny_timm_factory(refs))
    vision_cfg = dict(
        timm_model_name=timm_name,
        timm_model_pretrained=False,
        timm_pool="",
        timm_proj=proj,
        timm_proj_bias=proj_bias,
        timm_drop=0.0,
        timm_drop_path=0.1,
        image_size=64,
    )
    model_cfg = dict(embed_dim=24, vision_cfg=vision_cfg, text_cfg=TEXT_CFG)
    torch.manual_seed(0)
    model = randomize(refs.oc_model.CLIP(**model_cfg))
    assert model.visual.trunk.stem[1].eps == (1e-5 if timm_name == "convnext_xxlarge" else 1e-6)
    folder = write_open_clip_folder(tmp_path / "cnx", model_cfg, torch_state_dict(model))
    loaded = jaxclip.load(folder)
    cfg = loaded.config.vision
    assert isinstance(cfg, ConvNeXtConfig)
    assert (cfg.depths, cfg.dims, cfg.image_size, cfg.head, cfg.head_bias) == (
        CNX_DEPTHS,
        CNX_DIMS,
        64,
        proj,
        proj_bias,
    )
    assert cfg.norm_eps == model.visual.trunk.stem[1].eps
    assert loaded.config.text.act == "gelu"  # quick_gelu absent: OpenCLIP's nn.GELU
    x, ids = pixels(64), token_ids()
    ref_img, ref_txt = torch_encode(model, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(jax_text(loaded, ids), ref_txt, rtol=0, atol=1e-5)
    # Intermediates: stem and stage outputs, and pooled = the trunk output.
    trunk = model.visual.trunk
    ref_states = hooked_outputs(
        [trunk.stem, *trunk.stages],
        lambda: model.encode_image(torch.tensor(x.transpose(0, 3, 1, 2))),
    )
    _, out = apply_image(loaded, x, return_hidden=True)
    for ours, ref in zip(out["hidden_states"], ref_states, strict=True):
        np.testing.assert_allclose(np.asarray(ours), ref, rtol=0, atol=1e-5)
    with torch.no_grad():
        ref_pooled = trunk(torch.tensor(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(np.asarray(out["pooled"]), ref_pooled, rtol=0, atol=1e-5)
    bf16 = from_params(loaded.config, loaded.params, dtype="bfloat16").encode_pixels(x)
    rel = np.linalg.norm(bf16 - ref_img) / np.linalg.norm(ref_img)
    assert bf16.dtype == np.float32 and 1e-5 < rel < 3e-2, rel


def test_depthwise_conv_impls_match_numpy_float64():
    """Both depthwise-conv implementations (CPU "shifted", GPU "conv") against a float64 loop."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 11, 5)).astype(np.float32)
    params = {
        "kernel": rng.standard_normal((7, 7, 1, 5)).astype(np.float32),
        "bias": rng.standard_normal(5).astype(np.float32),
    }
    xp = np.pad(x.astype(np.float64), ((0, 0), (3, 3), (3, 3), (0, 0)))
    want = params["bias"].astype(np.float64) + sum(
        xp[:, i : i + 9, j : j + 11, :] * params["kernel"][i, j, 0]
        for i in range(7)
        for j in range(7)
    )
    for impl in ("conv", "shifted", "auto"):
        out = convnext.DepthwiseConv(5, 7, impl=impl).apply({"params": params}, jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(out), want, rtol=0, atol=1e-5, err_msg=impl)
    with pytest.raises(ValueError, match="impl='fft'"):
        convnext.DepthwiseConv(5, 7, impl="fft").apply({"params": params}, jnp.asarray(x))


def test_convnext_base_shapes_match_open_clip(refs):
    """OpenCLIP's real convnext_base (meta device): our inference and param names match it."""
    with torch.device("meta"):
        cfg_json = json.loads((OPEN_CLIP_DIR / "model_configs/convnext_base.json").read_text())
        model = refs.oc_model.CLIP(**cfg_json)
    shapes = {k: np.broadcast_to(np.float32(0), v.shape) for k, v in model.state_dict().items()}
    cfg = convert.infer_openai_config(shapes, act="gelu")
    assert cfg == get_variant("convnext_base")
    assert convert._openai_shapes(cfg) == {k: tuple(v.shape) for k, v in shapes.items()}


# --- OpenCLIP's text tower options (LAION models) ----------------------------------------------------

VIT_CFG = dict(image_size=32, layers=2, width=64, patch_size=8, head_width=32)


@pytest.mark.parametrize(
    "text_opts,pad",
    [
        ({}, EOS),  # LAION default: GELU, argmax pooling, causal mask
        ({"pool_type": "last", "no_causal_mask": True, "norm_kwargs": {"eps": 1e-6}}, 0),
        ({"pool_type": "first", "mlp_ratio": 2.0}, EOS),
        ({"pool_type": "eos", "eos_id": 7}, EOS),
    ],
)
def test_open_clip_text_tower_options(refs, tmp_path, text_opts, pad):
    model_cfg = dict(embed_dim=24, vision_cfg=VIT_CFG, text_cfg={**TEXT_CFG, **text_opts})
    torch.manual_seed(1)
    model = randomize(refs.oc_model.CLIP(**model_cfg), seed=1)
    pre = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.75]}
    folder = write_open_clip_folder(tmp_path / "oc", model_cfg, torch_state_dict(model), pre)
    loaded = jaxclip.load(folder)
    t = loaded.config.text
    assert (t.act, loaded.config.vision.act, loaded.config.vision.heads) == ("gelu", "gelu", 2)
    assert t.causal == (not text_opts.get("no_causal_mask", False))
    assert t.layer_norm_eps == text_opts.get("norm_kwargs", {}).get("eps", 1e-5)
    assert loaded.preprocess.mean == (0.5, 0.5, 0.5) and loaded.preprocess.std == (0.25, 0.5, 0.75)
    ids = token_ids(pad=pad)
    if "eos_id" in text_opts:
        ids[:, 4] = 7  # an earlier "eos" token than the EOT: OpenCLIP pools the first one
    x = pixels(32)
    ref_img, ref_txt = torch_encode(model, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(jax_text(loaded, ids), ref_txt, rtol=0, atol=1e-5)
    if text_opts.get("no_causal_mask"):
        # Padding is seen without a mask: the loaded tokenizer pads as OpenCLIP's (id 0).
        assert loaded.tokenizer.pad_token_id == 0 == t.pad_token_id
        assert loaded.tokenizer(["a cat"])[0, -1] == 0


def test_open_clip_activation_flag_and_text_heads(refs, tmp_path):
    model_cfg = dict(embed_dim=24, quick_gelu=True, vision_cfg=VIT_CFG, text_cfg=TEXT_CFG)
    model = randomize(refs.oc_model.CLIP(**model_cfg), seed=2)
    loaded = jaxclip.load(
        write_open_clip_folder(tmp_path / "q", model_cfg, torch_state_dict(model))
    )
    assert loaded.config.text.act == loaded.config.vision.act == "quick_gelu"
    assert loaded.config.text.heads == 2  # from text_cfg.heads, not width // 64
    x, ids = pixels(32), token_ids()
    ref_img, ref_txt = torch_encode(model, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(jax_text(loaded, ids), ref_txt, rtol=0, atol=1e-5)


# --- saving OpenCLIP folders ------------------------------------------------------------------------


def random_params(cfg: CLIPConfig, seed: int = 0) -> dict:
    """Random params without running init: shapes from eval_shape, values from numpy.

    Kernels ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.05^2), BN variances in [0.5, 1.5], other
    leaves ~ N(0, 0.05^2): every leaf is non-trivial and activations keep a useful size.
    """
    s = cfg.vision.image_size
    shapes = jax.eval_shape(
        CLIP(cfg).init,
        jax.random.PRNGKey(0),
        jnp.zeros((1, s, s, 3)),
        jnp.zeros((1, 8), jnp.int32),
    )["params"]
    rng = np.random.default_rng(seed)

    def fill(path, x):
        name = path[-1].key
        if name == "kernel":
            a = rng.normal(0, np.prod(x.shape[:-1]) ** -0.5, x.shape)
        elif name == "var":
            a = rng.uniform(0.5, 1.5, x.shape)
        else:
            base = {"scale": 1.0, "logit_scale": 2.6592}.get(name, 0.0)
            a = base + rng.normal(0, 0.05, x.shape)
        return np.asarray(a, np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _random_loaded(name: str, seed: int = 0):
    cfg = get_variant(name)
    return from_params(cfg, random_params(cfg, seed), name=name)


@pytest.mark.parametrize("name", ["tiny_resnet", "tiny_convnext"])
def test_save_open_clip_folder_round_trip(refs, monkeypatch, tmp_path, name):
    model = _random_loaded(name)
    model.save(tmp_path)  # layout "auto": no transformers twin -> OpenCLIP folder
    files = {p.name for p in tmp_path.iterdir()}
    assert {"open_clip_config.json", "open_clip_model.safetensors", "tokenizer.json"} <= files
    assert "config.json" not in files
    again = jaxclip.load(tmp_path)
    assert again.config == model.config and again.fingerprint == model.fingerprint
    # OpenCLIP's own CLIP builds from the saved config and takes the weights with strict=True.
    model_cfg = json.loads((tmp_path / "open_clip_config.json").read_text())["model_cfg"]
    if name == "tiny_convnext":
        assert model_cfg["vision_cfg"]["timm_model_name"] is None  # timm has no such size
        monkeypatch.setattr(refs.timm, "create_model", tiny_convnext_factory(refs))
        model_cfg["vision_cfg"]["timm_model_name"] = "convnext_tiny"
    torch_model = refs.oc_model.CLIP(**model_cfg).eval()
    sd = {
        k: torch.tensor(v)
        for k, v in load_file(str(tmp_path / "open_clip_model.safetensors")).items()
    }
    torch_model.load_state_dict(sd, strict=True)
    s = model.config.vision.image_size
    x = pixels(s)
    ids = model.tokenizer(["a photo of a cat", "a dog", "two red squares"])
    ref_img, ref_txt = torch_encode(torch_model, x, ids)
    assert np.abs(ref_img).max() > 0.1 and np.abs(ref_txt).max() > 0.1
    np.testing.assert_allclose(model.encode_pixels(x), ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        model.encode_text(["a photo of a cat", "a dog", "two red squares"]),
        ref_txt,
        rtol=0,
        atol=1e-5,
    )


def test_vit_round_trips_through_openai_names_and_open_clip_layout(tmp_path):
    model = _random_loaded("tiny")
    sd = convert.params_to_openai(model.params, model.config)
    _, params = convert.openai_to_params(sd, model.config)
    for path, a in convert.flatten(model.params).items():
        np.testing.assert_array_equal(np.asarray(convert.flatten(params)[path]), np.asarray(a))
    model.save(tmp_path / "oc", layout="open_clip")
    again = jaxclip.load(tmp_path / "oc")
    assert again.fingerprint == model.fingerprint
    assert again.config.vision == dataclasses.replace(model.config.vision, act="quick_gelu")
    # The ViT tree is still the HF Flax one, and "auto" still writes a transformers folder.
    assert {"vision_model", "visual_projection"} <= set(model.params)
    model.save(tmp_path / "hf")
    assert (tmp_path / "hf" / "config.json").is_file()


# --- OpenCLIP names, configs and hub folders --------------------------------------------------------


def test_pretrained_table_matches_open_clip(refs):
    theirs = refs.oc_pretrained._PRETRAINED
    for key, entry in oc.PRETRAINED.items():
        ref = theirs[entry.model][entry.tag]
        assert entry.hub == ref["hf_hub"].rstrip("/"), key
        assert entry.quick_gelu == ref.get("quick_gelu", False), key
        assert entry.mean == tuple(ref["mean"]) and entry.std == tuple(ref["std"]), key
    for name, cfg in oc.MODEL_CONFIGS.items():
        ref = json.loads((OPEN_CLIP_DIR / "model_configs" / f"{name}.json").read_text())
        for tower in ("vision_cfg", "text_cfg"):
            assert {k: ref[tower][k] for k in cfg[tower]} == cfg[tower], (name, tower)
        assert ref["embed_dim"] == cfg["embed_dim"]
    source_models = {
        "RN50/openai": "timm/resnet50_clip.openai",
        "ViT-B-32/laion2b_s34b_b79k": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "ViT-B-16/laion400m_e32": "timm/vit_base_patch16_clip_224.laion400m_e32",
        "ViT-L-14/laion2b_s32b_b82k": "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
        "convnext_base/laion400m_s13b_b51k": "laion/CLIP-convnext_base-laion400M-s13B-b51K",
    }
    for name, hub in source_models.items():
        assert oc.resolve(name).hub == hub and oc.by_hub(hub).name == name
    assert oc.resolve("open_clip:RN50/openai").hub == "timm/resnet50_clip.openai"
    assert oc.resolve("ViT-B-16-quickgelu/laion400m_e32").quick_gelu
    assert oc.resolve("ViT-B-32/no_such_tag") is None


class _FakeHub:
    """huggingface_hub stand-in: lists `files`, records downloads, serves `folder`."""

    def __init__(self, files, folder, hf_config=None):
        self.files, self.folder, self.hf_config, self.calls = files, folder, hf_config, []

    def install(self, monkeypatch):
        import huggingface_hub

        hub = self

        class Api:
            def list_repo_files(self, repo_id):
                return list(hub.files)

        def snapshot_download(repo_id, allow_patterns=None, **kw):
            hub.calls.append((repo_id, tuple(allow_patterns or ())))
            return str(hub.folder)

        def hf_hub_download(repo_id, filename, **kw):
            hub.calls.append((repo_id, (filename,)))
            path = hub.folder.parent / f"{repo_id.replace('/', '--')}-{filename}"
            path.write_text(json.dumps(hub.hf_config))
            return str(path)

        monkeypatch.setattr(huggingface_hub, "HfApi", Api)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
        monkeypatch.setattr("jaxclip.hub.unavailable", lambda *a, **k: "")  # the fake answers
        return self


def test_load_open_clip_name_from_a_dual_use_timm_repo(monkeypatch, tmp_path):
    model = _random_loaded("tiny_resnet")
    folder = tmp_path / "repo"
    model.save(folder)
    timm_config = {"architecture": "resnet50_clip", "num_classes": 1024}
    (folder / "config.json").write_text(json.dumps(timm_config))  # timm's, not a CLIPModel's
    files = ["config.json", "model.safetensors", "open_clip_config.json",
             "open_clip_model.safetensors", "open_clip_pytorch_model.bin"]  # fmt: skip
    hub = _FakeHub(files, folder, timm_config).install(monkeypatch)
    loaded = jaxclip.load("RN50")  # alias -> RN50/openai -> timm/resnet50_clip.openai
    ((repo, patterns),) = hub.calls
    assert repo == "timm/resnet50_clip.openai" and "open_clip_model.safetensors" in patterns
    assert "model.safetensors" not in patterns and "open_clip_pytorch_model.bin" not in patterns
    assert loaded.fingerprint == model.fingerprint and loaded.name == repo
    assert loaded.config.text.act == "quick_gelu"  # from the pretrained entry


def test_pickle_only_open_clip_repo(refs, monkeypatch, tmp_path):
    """laion/CLIP-convnext_base-...: one open_clip_pytorch_model.bin, no config: ours is used."""
    model = _random_loaded("tiny_convnext")
    folder = tmp_path / "repo"
    folder.mkdir()
    torch.save(
        {
            k: torch.tensor(v)
            for k, v in convert.params_to_openai(model.params, model.config).items()
        },
        folder / "open_clip_pytorch_model.bin",
    )
    hub = _FakeHub(["README.md", "open_clip_pytorch_model.bin"], folder).install(monkeypatch)
    with pytest.raises(FileNotFoundError, match="allow_pickle=True"):
        jaxclip.load("convnext_base/laion400m_s13b_b51k")
    loaded = jaxclip.load("convnext_base/laion400m_s13b_b51k", allow_pickle=True)
    assert hub.calls[-1] == (
        "laion/CLIP-convnext_base-laion400M-s13B-b51K",
        (*load_mod._HUB_META, "open_clip_pytorch_model.bin"),
    )
    # No open_clip_config.json in the repo: the built-in convnext_base config gives 224 px and
    # 8 text heads; the weights give the (tiny) sizes.
    assert loaded.config.vision.image_size == 224 and loaded.config.text.heads == 8
    assert loaded.config.vision.dims == (16, 32, 48, 64) and loaded.config.text.act == "gelu"


def test_pickle_only_timm_repo_does_not_fall_back_to_timm_weights(monkeypatch, tmp_path):
    files = [
        "config.json",
        "model.safetensors",
        "open_clip_config.json",
        "open_clip_pytorch_model.bin",
    ]
    _FakeHub(files, tmp_path, {"architecture": "vit_base_patch16_clip_224"}).install(monkeypatch)
    with pytest.raises(FileNotFoundError, match=r"allow_pickle=True"):
        jaxclip.load("ViT-B-16/laion400m_e32")


# --- errors --------------------------------------------------------------------------------------------


def test_unsupported_open_clip_options_are_named_together(tmp_path):
    cfg = {
        "model_cfg": {
            "embed_dim": 512,
            "init_logit_bias": -10,
            "vision_cfg": {"width": 768, "ls_init_value": 0.1, "pool_type": "avg"},
            "text_cfg": {"hf_model_name": "roberta-base", "proj_bias": True, "pool_type": "none"},
        }
    }
    with pytest.raises(oc.UnsupportedOpenCLIPConfig) as e:
        oc.parse_config(cfg)
    msg = str(e.value)
    for part in ("init_logit_bias=-10", "vision_cfg.ls_init_value=0.1", "vision_cfg.pool_type='avg'",
                 "text_cfg.hf_model_name='roberta-base'", "text_cfg.proj_bias=True",
                 "text_cfg.pool_type='none'"):  # fmt: skip
        assert part in msg, part
    timm = {
        "model_cfg": {"vision_cfg": {"timm_model_name": "resnetaa50d", "timm_pool": "abs_attn"}}
    }
    with pytest.raises(
        oc.UnsupportedOpenCLIPConfig, match=r"only timm ConvNeXt.*timm_pool='abs_attn'"
    ):
        oc.parse_config(timm)
    model = _random_loaded("tiny_resnet")
    model.save(tmp_path)
    (tmp_path / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(oc.UnsupportedOpenCLIPConfig, match="does not implement"):
        jaxclip.load(tmp_path)


def test_unsupported_state_dicts_have_clear_errors():
    model = _random_loaded("tiny_convnext")
    sd = convert.params_to_openai(model.params, model.config)
    conv_mlp = dict(sd)
    w = conv_mlp["visual.trunk.stages.0.blocks.0.mlp.fc1.weight"]
    conv_mlp["visual.trunk.stages.0.blocks.0.mlp.fc1.weight"] = w[:, :, None, None]
    with pytest.raises(CheckpointError, match="conv_mlp=True"):
        convert.infer_openai_config(conv_mlp)
    attn_pool = {k: v for k, v in sd.items() if not k.startswith("visual.head.")}
    with pytest.raises(CheckpointError, match="'linear' and 'mlp' ConvNeXt heads"):
        convert.infer_openai_config(attn_pool)
    custom_text = {("text." + k if not k.startswith("visual.") else k): v for k, v in sd.items()}
    with pytest.raises(CheckpointError, match="CustomTextCLIP"):
        convert.infer_openai_config(custom_text)
    unknown = {k: v for k, v in sd.items() if not k.startswith("visual.")}
    unknown["visual.foo.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="No known image tower"):
        convert.infer_openai_config(unknown)
    rn = convert.params_to_openai(_random_loaded("tiny_resnet").params, get_variant("tiny_resnet"))
    del rn["visual.attnpool.positional_embedding"]
    with pytest.raises(CheckpointError, match=r"ResNet.*|missing.*attnpool"):
        convert.infer_openai_config(rn)
    extra = dict(sd, **{"visual.trunk.extra.weight": np.zeros(2, np.float32)})
    with pytest.raises(CheckpointError, match=r"unexpected \(1\): visual.trunk.extra.weight"):
        convert.openai_to_params(extra, model.config)


def test_conv_models_have_no_transformers_twin(tmp_path):
    model = _random_loaded("tiny_resnet")
    with pytest.raises(ValueError, match="ResNetConfig"):
        to_hf_config(model.config)
    with pytest.raises(ValueError, match="ResNetConfig"):
        save(tmp_path, model.config, model.params, layout="transformers")
    with pytest.raises(ValueError, match="params_to_openai"):
        convert.params_to_hf_torch(model.params)
    with pytest.raises(ValueError, match="layout='hf'"):
        save(tmp_path, model.config, model.params, layout="hf")


def test_config_errors_name_the_value():
    with pytest.raises(ValueError, match="multiple of 32"):
        ResNetConfig(image_size=100)
    with pytest.raises(ValueError, match="4 positive block counts"):
        ResNetConfig(layers=(3, 4, 6))
    with pytest.raises(ValueError, match=r"head='attn'.*linear"):
        ConvNeXtConfig(head="attn")
    with pytest.raises(ValueError, match="pool_type='mean'"):
        TextConfig(pool_type="mean")
    with pytest.raises(TypeError, match="VisionConfig, ResNetConfig or ConvNeXtConfig"):
        CLIPConfig(vision=TextConfig())
    with pytest.raises(ValueError, match=r"unknown CLIP variant 'rn42'.*rn50.*convnext_base"):
        get_variant("rn42")
    assert isinstance(get_variant("rn50").vision, ResNetConfig)
    assert set(CONV_VARIANTS) >= {"rn50", "convnext_base", "tiny_resnet", "tiny_convnext"}
    assert get_variant("vit_b32").is_vit and not get_variant("rn50").is_vit
    assert isinstance(VisionConfig(), VisionConfig)


def test_flops_match_torch_flop_counter(refs):
    """FLOPs per image against torch's FlopCounterMode on the reference models (meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        rn = refs.openai.CLIP(1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12)
        cfg_json = json.loads((OPEN_CLIP_DIR / "model_configs/convnext_base.json").read_text())
        cn = refs.oc_model.CLIP(**cfg_json)
        counts = []
        for model in (rn, cn):
            with FlopCounterMode(display=False) as counter:
                model.encode_image(torch.empty(1, 3, 224, 224))
            counts.append(counter.get_total_flops())
    rn50, cnx = get_variant("rn50"), get_variant("convnext_base")
    assert resnet.image_flops(rn50.vision, rn50.projection_dim) == counts[0]  # 11.6 GFLOP
    assert convnext.image_flops(cnx.vision, cnx.projection_dim) == counts[1]  # 30.7 GFLOP


def test_catalog_lists_the_source_models(monkeypatch):
    calls = []
    monkeypatch.setattr(load_mod, "load", lambda name, **kw: calls.append((name, kw)) or name)
    want = {
        "vit_b32": "openai/clip-vit-base-patch32",
        "vit_b16": "openai/clip-vit-base-patch16",
        "rn50": "RN50/openai",
        "laion_vit_b32": "ViT-B-32/laion2b_s34b_b79k",
        "laion_vit_b16": "ViT-B-16/laion400m_e32",
        "laion_vit_l14": "ViT-L-14/laion2b_s32b_b82k",
        "laion_convnext_base": "convnext_base/laion400m_s13b_b51k",
    }
    for key, target in want.items():
        assert key in MODELS, key
        assert MODELS[key][1]() == target
    assert dict(calls)["convnext_base/laion400m_s13b_b51k"]["allow_pickle"] is True
    assert "allow_pickle" not in dict(calls)["RN50/openai"]  # safetensors on the hub
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert oc.resolve(want["laion_convnext_base"]).hub.startswith("laion/")
