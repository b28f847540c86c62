"""CLIP architecture configs: the named sizes and the conversion to and from HF `config.json`.

A `CLIPConfig` holds everything the Flax module needs to build the two towers; nothing else
(no weights, no preprocessing). The named variants follow the public Hugging Face configs of
`openai/clip-vit-base-patch32`, `-base-patch16`, `-large-patch14` and `-large-patch14-336`
(Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision",
table 20).

`tiny` is for tests and the offline demos: width 64, depth 2, 32 px images in 8 px patches.
Decision on its vocabulary: it keeps the real CLIP BPE vocabulary (49408 tokens, bos 49406,
eos 49407) so that it runs on the ids of the real CLIP tokenizer; the token table costs
49408 x 64 = 3.2 M parameters (12.6 MB in float32), which is cheap on any machine. Tests that want
a small vocabulary build their own `TextConfig(vocab_size=...)` and must then put bos/eos/pad ids
inside it: text pooling reads the first position holding `eos_token_id`, and if no position
holds it, it silently reads position 0 (this is also what transformers does).

The legacy rule of transformers is kept: a text config whose `eos_token_id` is 2 (the old hub
configs of the OpenAI models say so) pools at `argmax(input_ids)` instead, which is the EOS token
49407 because it is the highest id in the vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """ViT image tower.

    Attributes:
      image_size: input height = width in pixels.
      patch_size: side of the square, non-overlapping patches (the stride of the patch conv).
      width: hidden size of the transformer.
      layers: number of transformer blocks.
      heads: attention heads (width must be divisible by it).
      mlp_dim: hidden size of the MLP in each block.
      act: MLP activation, one of ACTIVATIONS (OpenAI CLIP: quick_gelu).
      layer_norm_eps: epsilon of every LayerNorm.
    """

    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        _check_tower(self, "VisionConfig")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"VisionConfig.image_size={self.image_size} is not a multiple of "
                f"patch_size={self.patch_size}"
            )

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Causal text transformer.

    Attributes:
      vocab_size: rows of the token embedding table.
      context_length: number of positions (max_position_embeddings), 77 for CLIP.
      width: hidden size of the transformer.
      layers: number of transformer blocks.
      heads: attention heads.
      mlp_dim: hidden size of the MLP in each block.
      act: MLP activation, one of ACTIVATIONS.
      layer_norm_eps: epsilon of every LayerNorm.
      bos_token_id, eos_token_id, pad_token_id: special ids; pooling reads the first EOS
        (or argmax(input_ids) when eos_token_id == 2, the transformers legacy rule).
    """

    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    layers: int = 12
    heads: int = 8
    mlp_dim: int = 2048
    act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    bos_token_id: int = 49406
    eos_token_id: int = 49407
    pad_token_id: int = 1

    def __post_init__(self):
        _check_tower(self, "TextConfig")
        for field in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, field)
            if not 0 <= value < self.vocab_size:
                raise ValueError(
                    f"TextConfig.{field}={value} lies outside the vocabulary [0, {self.vocab_size}); "
                    "pooling would silently read position 0"
                )


@dataclasses.dataclass(frozen=True)
class CLIPConfig:
    """A two-tower CLIP: image tower, text tower, shared embedding size and logit scale.

    Attributes:
      vision: the image tower.
      text: the text tower.
      projection_dim: size D of the shared embedding space (bias-free projections).
      logit_scale_init_value: initial log of the inverse temperature, log(1 / 0.07) = 2.6592.
    """

    vision: VisionConfig = dataclasses.field(default_factory=VisionConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592

    def __post_init__(self):
        if self.projection_dim <= 0:
            raise ValueError(f"CLIPConfig.projection_dim={self.projection_dim} must be positive")


def _check_tower(cfg: VisionConfig | TextConfig, name: str) -> None:
    for field in ("width", "layers", "heads", "mlp_dim"):
        if getattr(cfg, field) <= 0:
            raise ValueError(f"{name}.{field}={getattr(cfg, field)} must be positive")
    if cfg.width % cfg.heads:
        raise ValueError(f"{name}.width={cfg.width} is not divisible by heads={cfg.heads}")
    if cfg.act not in ACTIVATIONS:
        raise ValueError(f"{name}.act={cfg.act!r} is not supported; choose one of {ACTIVATIONS}")


def vit_b32() -> CLIPConfig:
    """ViT-B/32 (openai/clip-vit-base-patch32): 88 M image + 63 M text parameters."""
    return CLIPConfig(VisionConfig(patch_size=32), TextConfig(), projection_dim=512)


def vit_b16() -> CLIPConfig:
    """ViT-B/16 (openai/clip-vit-base-patch16)."""
    return CLIPConfig(VisionConfig(patch_size=16), TextConfig(), projection_dim=512)


def vit_l14() -> CLIPConfig:
    """ViT-L/14 (openai/clip-vit-large-patch14)."""
    return CLIPConfig(
        VisionConfig(patch_size=14, width=1024, layers=24, heads=16, mlp_dim=4096),
        TextConfig(width=768, heads=12, mlp_dim=3072),
        projection_dim=768,
    )


def vit_l14_336() -> CLIPConfig:
    """ViT-L/14 at 336 px (openai/clip-vit-large-patch14-336)."""
    base = vit_l14()
    return dataclasses.replace(base, vision=dataclasses.replace(base.vision, image_size=336))


def tiny() -> CLIPConfig:
    """Test / demo size: width 64, 2 layers, 32 px images, 8 px patches, real CLIP vocabulary."""
    return CLIPConfig(
        VisionConfig(image_size=32, patch_size=8, width=64, layers=2, heads=2, mlp_dim=256),
        TextConfig(width=64, layers=2, heads=2, mlp_dim=256),
        projection_dim=64,
    )


VARIANTS: dict[str, Callable[[], CLIPConfig]] = {
    "vit_b32": vit_b32,
    "vit_b16": vit_b16,
    "vit_l14": vit_l14,
    "vit_l14_336": vit_l14_336,
    "tiny": tiny,
}


def get_variant(name: str) -> CLIPConfig:
    """Returns VARIANTS[name](), or raises ValueError naming the valid variants."""
    if name not in VARIANTS:
        raise ValueError(f"unknown CLIP variant {name!r}; choose one of: {', '.join(VARIANTS)}")
    return VARIANTS[name]()


# --- Hugging Face config.json <-> CLIPConfig ---------------------------------------------------

_VISION_KEYS = {  # HF name -> ours
    "image_size": "image_size",
    "patch_size": "patch_size",
    "hidden_size": "width",
    "num_hidden_layers": "layers",
    "num_attention_heads": "heads",
    "intermediate_size": "mlp_dim",
    "hidden_act": "act",
    "layer_norm_eps": "layer_norm_eps",
}
_TEXT_KEYS = {
    "vocab_size": "vocab_size",
    "max_position_embeddings": "context_length",
    "hidden_size": "width",
    "num_hidden_layers": "layers",
    "num_attention_heads": "heads",
    "intermediate_size": "mlp_dim",
    "hidden_act": "act",
    "layer_norm_eps": "layer_norm_eps",
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
    "pad_token_id": "pad_token_id",
}
# transformers' CLIPTextConfig / CLIPVisionConfig defaults, for keys a config.json leaves out.
_HF_VISION_DEFAULTS = {
    "image_size": 224,
    "patch_size": 32,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
_HF_TEXT_DEFAULTS = {
    "vocab_size": 49408,
    "max_position_embeddings": 77,
    "hidden_size": 512,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "intermediate_size": 2048,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}


def from_hf_config(hf: Mapping[str, Any]) -> CLIPConfig:
    """Builds a CLIPConfig from a transformers `CLIPConfig` dict (the content of config.json).

    Keys missing from `text_config` / `vision_config` take transformers' defaults; the
    `text_config_dict` / `vision_config_dict` of old hub configs override them, as in transformers.
    """
    model_type = hf.get("model_type", "clip")
    if model_type != "clip":
        raise ValueError(f"config.json has model_type={model_type!r}; only 'clip' is supported")
    towers = {}
    for tower in ("text", "vision"):
        if f"{tower}_config" not in hf and f"{tower}_config_dict" not in hf:
            raise ValueError(
                f"config.json is not a CLIPModel config: it has no '{tower}_config' "
                f"(got keys {sorted(hf)})"
            )
        merged = {**(hf.get(f"{tower}_config") or {}), **(hf.get(f"{tower}_config_dict") or {})}
        towers[tower] = {k: v for k, v in merged.items() if v is not None}
    vis = {**_HF_VISION_DEFAULTS, **towers["vision"]}
    txt = {**_HF_TEXT_DEFAULTS, **towers["text"]}
    if vis.get("num_channels", 3) != 3:
        raise ValueError(f"vision_config.num_channels={vis['num_channels']}; only 3 is supported")
    vision = VisionConfig(**{ours: vis[theirs] for theirs, ours in _VISION_KEYS.items()})
    text = TextConfig(**{ours: txt[theirs] for theirs, ours in _TEXT_KEYS.items()})
    return CLIPConfig(
        vision=vision,
        text=text,
        projection_dim=int(hf.get("projection_dim", 512)),
        logit_scale_init_value=float(hf.get("logit_scale_init_value", 2.6592)),
    )


def to_hf_config(cfg: CLIPConfig) -> dict[str, Any]:
    """A transformers-loadable CLIPModel config.json dict (`CLIPConfig(**d)` accepts it)."""
    vision = {theirs: getattr(cfg.vision, ours) for theirs, ours in _VISION_KEYS.items()}
    text = {theirs: getattr(cfg.text, ours) for theirs, ours in _TEXT_KEYS.items()}
    vision.update(model_type="clip_vision_model", num_channels=3, projection_dim=cfg.projection_dim)
    text.update(model_type="clip_text_model", projection_dim=cfg.projection_dim)
    return {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": cfg.projection_dim,
        "logit_scale_init_value": cfg.logit_scale_init_value,
        "initializer_factor": 1.0,
        "text_config": text,
        "vision_config": vision,
    }
