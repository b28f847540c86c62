"""Short model names used by configs -> how to open them (an explicit table, no registry).

`open_model(name)` accepts a key of `MODELS`, or anything `jaxclip.load` accepts (an HF hub id,
a local folder, an OpenAI / OpenCLIP checkpoint file).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

# Name -> (description, opener(dtype, cache_dir) -> LoadedCLIP).
MODELS: dict[str, tuple[str, Callable[..., Any]]] = {}


def _hub(repo_id: str) -> Callable[..., Any]:
    def opener(dtype: str = "float32", cache_dir: str | None = None):
        from jaxclip.models.load import load

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
