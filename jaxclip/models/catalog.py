"""Short model names used by configs -> how to open them (an explicit table, no registry).

`open_model(name)` accepts a key of `MODELS`, or anything `jaxclip.load` accepts (an HF hub id,
an OpenCLIP pretrained name such as "ViT-B-32/laion2b_s34b_b79k", a local folder, an OpenAI /
OpenCLIP checkpoint file).

The seven backbones of the sources' grid: OpenAI ViT-B/32, ViT-B/16 (transformers hub folders),
RN50 (OpenCLIP's hub copy of OpenAI's RN50.pt, `timm/resnet50_clip.openai`, safetensors), and
OpenCLIP ViT-B/32 LAION-2B, ViT-B/16 LAION-400M, ViT-L/14 LAION-2B, ConvNeXt-Base LAION-400M.
Some LAION hub repos hold their OpenCLIP weights only as `open_clip_pytorch_model.bin`
(laion/CLIP-convnext_base-laion400M-s13B-b51K has nothing else), so the LAION entries opt in to
pickle files; they are read with `torch.load(weights_only=True)`, PyTorch's restricted unpickler
for tensors, and a safetensors file is still preferred whenever the repo has one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

# Name -> (description, opener(dtype, cache_dir) -> LoadedCLIP).
MODELS: dict[str, tuple[str, Callable[..., Any]]] = {}


def _hub(repo_id: str, allow_pickle: bool = False) -> Callable[..., Any]:
    """Opener of a hub id or OpenCLIP pretrained name (see `jaxclip.load`)."""

    def opener(dtype: str = "float32", cache_dir: str | None = None):
        from jaxclip.models.load import load

        if allow_pickle:
            return load(repo_id, dtype=dtype, allow_pickle=True)
        return load(repo_id, dtype=dtype)

    return opener


def _tiny_random(dtype: str = "float32", cache_dir: str | None = None):
    """A randomly initialised `tiny` CLIP (seed 0): the smoke-test model, no download."""
    import jax
    import jax.numpy as jnp

    from jaxclip.models.clip import CLIP
    from jaxclip.models.load import from_params
    from jaxclip.models.variants import tiny

    config = tiny()
    s = config.vision.image_size
    params = CLIP(config).init(
        jax.random.PRNGKey(0),
        jnp.zeros((1, s, s, 3), jnp.float32),
        jnp.full((1, config.text.context_length), config.text.eos_token_id, jnp.int32),
    )["params"]
    return from_params(config, params, dtype=dtype, name="tiny_random(seed=0)")


def _mini(dtype: str = "float32", cache_dir: str | None = None):
    """The mini-CLIP trained on the built-in shapes dataset (trained on first use, then cached)."""
    from jaxclip.models.load import load
    from jaxclip.train import train_or_reuse

    return load(train_or_reuse(cache_dir=cache_dir), dtype=dtype)


MODELS.update(
    {
        "mini": ("mini-CLIP trained offline on shapes (trained on first use)", _mini),
        "tiny_random": ("random tiny CLIP for smoke tests", _tiny_random),
        "vit_b32": (
            "OpenAI ViT-B/32 (openai/clip-vit-base-patch32)",
            _hub("openai/clip-vit-base-patch32"),
        ),
        "vit_b16": (
            "OpenAI ViT-B/16 (openai/clip-vit-base-patch16)",
            _hub("openai/clip-vit-base-patch16"),
        ),
        "vit_l14": (
            "OpenAI ViT-L/14 (openai/clip-vit-large-patch14)",
            _hub("openai/clip-vit-large-patch14"),
        ),
        "vit_l14_336": (
            "OpenAI ViT-L/14 at 336 px (openai/clip-vit-large-patch14-336)",
            _hub("openai/clip-vit-large-patch14-336"),
        ),
        "rn50": (
            "OpenAI RN50 (OpenCLIP RN50/openai: timm/resnet50_clip.openai)",
            _hub("RN50/openai"),
        ),
        "laion_vit_b32": (
            "OpenCLIP ViT-B/32 LAION-2B (ViT-B-32/laion2b_s34b_b79k: "
            "laion/CLIP-ViT-B-32-laion2B-s34B-b79K)",
            _hub("ViT-B-32/laion2b_s34b_b79k", allow_pickle=True),
        ),
        "laion_vit_b16": (
            "OpenCLIP ViT-B/16 LAION-400M (ViT-B-16/laion400m_e32: "
            "timm/vit_base_patch16_clip_224.laion400m_e32)",
            _hub("ViT-B-16/laion400m_e32", allow_pickle=True),
        ),
        "laion_vit_l14": (
            "OpenCLIP ViT-L/14 LAION-2B (ViT-L-14/laion2b_s32b_b82k: "
            "laion/CLIP-ViT-L-14-laion2B-s32B-b82K; mean = std = 0.5)",
            _hub("ViT-L-14/laion2b_s32b_b82k", allow_pickle=True),
        ),
        "laion_convnext_base": (
            "OpenCLIP ConvNeXt-Base LAION-400M (convnext_base/laion400m_s13b_b51k: "
            "laion/CLIP-convnext_base-laion400M-s13B-b51K)",
            _hub("convnext_base/laion400m_s13b_b51k", allow_pickle=True),
        ),
    }
)


def open_model(name: str, *, dtype: str = "float32", cache_dir: str | None = None):
    """Opens a model by catalog name, hub id or path (see module docstring)."""
    if name in MODELS:
        return MODELS[name][1](dtype=dtype, cache_dir=cache_dir)
    if "/" in name or os.path.exists(name):
        from jaxclip.models.load import load

        return load(name, dtype=dtype)
    raise ValueError(
        f"unknown model {name!r}; choose one of: {', '.join(MODELS)}, "
        "or give an HF hub id (owner/name), a local folder or a checkpoint file"
    )
