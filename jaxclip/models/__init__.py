"""CLIP models: the Flax module, named sizes, checkpoint conversion, loading and saving.

Example::

    >>> from jaxclip.models import load
    >>> model = load("openai/clip-vit-base-patch32")
    >>> image_embeds = model.encode_image(uint8_nhwc)  # (N, 512) float32, raw
    >>> text_embeds = model.encode_text(["a photo of a cat"])
"""

from jaxclip.models.clip import CLIP
from jaxclip.models.convert import CheckpointError
from jaxclip.models.load import HUB_ALIASES, LoadedCLIP, from_params, load, save
from jaxclip.models.tokenizer import Tokenizer
from jaxclip.models.variants import (
    VARIANTS,
    CLIPConfig,
    TextConfig,
    VisionConfig,
    from_hf_config,
    get_variant,
    to_hf_config,
)

__all__ = [
    "CLIP",
    "HUB_ALIASES",
    "VARIANTS",
    "CLIPConfig",
    "CheckpointError",
    "LoadedCLIP",
    "TextConfig",
    "Tokenizer",
    "VisionConfig",
    "from_hf_config",
    "from_params",
    "get_variant",
    "load",
    "save",
    "to_hf_config",
]
