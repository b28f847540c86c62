"""Short model names used by configs -> how to open them (an explicit table, no registry).

`open_model(name)` accepts a key of `MODELS`, or anything `jaxclip.load` accepts (an HF hub id,
an OpenCLIP pretrained name such as "ViT-B-32/laion2b_s34b_b79k", a local folder, an OpenAI /
OpenCLIP checkpoint file).

The seven backbones of the sources' grid: OpenAI ViT-B/32, ViT-B/16 (transformers hub folders),
RN50 (OpenCLIP's hub copy of OpenAI's RN50.pt, `timm/resnet50_clip.openai`, safetensors), and
OpenCLIP ViT-B/32 LAION-2B, ViT-B/16 LAION-400M, ViT-L/14 LAION-2B, ConvNeXt-Base LAION-400M.
The SigLIP entries (ViT-B/16 at 224 and 256 px, So400m/14 at 384 px, SigLIP 2 ViT-B/16) open
Google's transformers `SiglipModel` hub folders.
Some LAION hub repos hold their OpenCLIP weights only as `open_clip_pytorch_model.bin`
(laion/CLIP-convnext_base-laion400M-s13B-b51K has nothing else), so the LAION entries opt in to
pickle files; they are read with `torch.load(weights_only=True)`, PyTorch's restricted unpickler
for tensors, and a safetensors file is still preferred whenever the repo has one.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaxclip import atomic
from jaxclip.errors import UserFileNotFoundError, UserValueError

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


@functools.lru_cache(maxsize=2)
def _tiny_random_params(sigmoid: bool = False):
    """(config, params) of the `tiny` CLIP initialised with seed 0, made once per process (JAX
    arrays are immutable, so sharing them is safe). `sigmoid`: with SigLIP's logit scale and
    bias (t' = log 10, b = -10), as a CLIP trained with the sigmoid loss starts.

    The init is one jitted computation compiled without XLA's backend optimisations: its ~40
    random draws otherwise take 15 s to compile on a 2-core CPU (eager, 20 s), against about 5 s
    here. The random bits are the same; the values match the eager init's to 3e-7 (relative).
    """
    import jax
    import jax.numpy as jnp

    from jaxclip.models.clip import CLIP
    from jaxclip.models.variants import tiny

    config = tiny()
    if sigmoid:
        import dataclasses
        import math

        config = dataclasses.replace(
            config, logit_scale_init_value=math.log(10.0), logit_bias_init_value=-10.0
        )
    s = config.vision.image_size
    args = (
        jax.random.PRNGKey(0),
        jnp.zeros((1, s, s, 3), jnp.float32),
        jnp.full((1, config.text.context_length), config.text.eos_token_id, jnp.int32),
    )
    init = jax.jit(CLIP(config).init).lower(*args)
    params = init.compile(compiler_options={"xla_backend_optimization_level": 0})(*args)["params"]
    return config, params


def _tiny_random(dtype: str = "float32", cache_dir: str | None = None):
    """A randomly initialised `tiny` CLIP (seed 0): the smoke-test model, no download."""
    from jaxclip.models.load import from_params

    config, params = _tiny_random_params()
    return from_params(config, params, dtype=dtype, name="tiny_random(seed=0)")


def _tiny_random_sigmoid(dtype: str = "float32", cache_dir: str | None = None):
    """A randomly initialised `tiny` CLIP (seed 0) with a logit bias: a sigmoid-loss smoke model."""
    from jaxclip.models.load import from_params

    config, params = _tiny_random_params(sigmoid=True)
    return from_params(config, params, dtype=dtype, name="tiny_random_sigmoid(seed=0)")


class ModelNotTrained(UserFileNotFoundError):
    """A catalog name of a model trained here (e.g. "mini") whose training has not run yet."""


def models_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where trained models live: `<cache_dir>/models`, else `$JAXCLIP_CACHE/models`, else
    `~/.cache/jaxclip/models`."""
    if cache_dir:
        base = Path(cache_dir).expanduser()
    elif os.environ.get("JAXCLIP_CACHE"):
        base = Path(os.environ["JAXCLIP_CACHE"]).expanduser()
    else:
        base = Path.home() / ".cache" / "jaxclip"
    return base / "models"


def record_trained(name: str, model_dir: str | os.PathLike, cache_dir=None) -> None:
    """Makes catalog name `name` open `model_dir` (a folder under `models_root(cache_dir)`)."""
    root = models_root(cache_dir)
    rel = Path(model_dir).resolve().relative_to(root.resolve())
    atomic.write_json(root / "named" / f"{name}.json", {"model_dir": rel.as_posix()})


def trained_model_dir(name: str, cache_dir=None) -> Path:
    """The folder `record_trained` last recorded for `name`.

    Raises:
      ModelNotTrained: nothing is recorded, or the folder is gone.
    """
    root = models_root(cache_dir)
    pointer = root / "named" / f"{name}.json"
    if pointer.is_file():
        path = root / json.loads(pointer.read_text())["model_dir"]
        if (path / "config.json").is_file():
            return path
    raise ModelNotTrained(
        f"model {name!r} is not trained yet (nothing under {root}): any experiment run with "
        f"--config.model={name} trains it on first use and records it there (a few minutes on "
        "a CPU), e.g. `python -m experiments.zero_shot`, whose default model it is"
    )


def _trained(name: str) -> Callable[..., Any]:
    """Opener of a model trained here and recorded under `name`; the model is named `name`
    (not its folder under the cache: names go into results.json and cache keys)."""

    def opener(dtype: str = "float32", cache_dir: str | None = None):
        import dataclasses

        from jaxclip.models.load import load

        model = load(trained_model_dir(name, cache_dir), dtype=dtype)
        return dataclasses.replace(model, name=name)

    opener.__doc__ = f"The model trained here (`experiments.train_clip`) recorded as {name!r}."
    return opener


_mini = _trained("mini")  # the mini-CLIP trained on the built-in shapes dataset
_mini_siglip = _trained("mini_siglip")  # the same recipe with SigLIP's sigmoid loss


MODELS.update(
    {
        "mini": ("mini-CLIP trained offline on shapes (experiments.train_clip)", _mini),
        "mini_siglip": (
            "mini-SigLIP: the mini-CLIP's recipe with SigLIP's sigmoid loss and a logit bias "
            "(experiments.train_clip, configs/train_clip.py:sigmoid)",
            _mini_siglip,
        ),
        "tiny_random": ("random tiny CLIP for smoke tests", _tiny_random),
        "tiny_random_sigmoid": (
            "random tiny CLIP with a logit bias (sigmoid loss) for smoke tests",
            _tiny_random_sigmoid,
        ),
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
        # SigLIP (Zhai et al. 2023) and SigLIP 2 (Tschannen et al. 2025), transformers
        # SiglipModel folders on the hub (model.safetensors + spiece.model / tokenizer.model).
        "siglip_b16": (
            "SigLIP ViT-B/16 at 224 px, WebLI (google/siglip-base-patch16-224)",
            _hub("google/siglip-base-patch16-224"),
        ),
        "siglip_b16_256": (
            "SigLIP ViT-B/16 at 256 px, WebLI (google/siglip-base-patch16-256)",
            _hub("google/siglip-base-patch16-256"),
        ),
        "siglip_so400m14_384": (
            "SigLIP So400m/14 at 384 px, WebLI (google/siglip-so400m-patch14-384)",
            _hub("google/siglip-so400m-patch14-384"),
        ),
        "siglip2_b16": (
            "SigLIP 2 ViT-B/16 at 224 px, fixed resolution (google/siglip2-base-patch16-224)",
            _hub("google/siglip2-base-patch16-224"),
        ),
    }
)


def open_model(name: str, *, dtype: str = "float32", cache_dir: str | None = None):
    """Opens a model by catalog name, hub id or path (see module docstring).

    The model's `name` (written to results.json and feature-cache keys) is the hub id for hub
    models, the catalog name for models trained here, and a local path as given (never
    expanded to an absolute path).
    """
    if name in MODELS:
        return MODELS[name][1](dtype=dtype, cache_dir=cache_dir)
    local = os.path.exists(os.path.expanduser(name))
    if "/" in name or local:
        import dataclasses

        from jaxclip.models.load import load

        model = load(name, dtype=dtype)
        return dataclasses.replace(model, name=name) if local else model
    raise UserValueError(
        f"unknown model {name!r}; choose one of: {', '.join(MODELS)}, "
        "or give an HF hub id (owner/name), a local folder or a checkpoint file"
    )
