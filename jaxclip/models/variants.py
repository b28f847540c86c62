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

Image towers: `CLIPConfig.vision` is one of three configs, and `CLIP` builds the tower it names:
`VisionConfig` (ViT, HF Flax param layout), `ResNetConfig` (OpenAI's ModifiedResNet: RN50,
RN101, RN50x4, ...) and `ConvNeXtConfig` (the timm ConvNeXt trunk + head OpenCLIP trains). The
named ViT sizes are in `VARIANTS` (each has a transformers `CLIPModel` twin, `to_hf_config`);
the convolutional ones in `CONV_VARIANTS` (no transformers twin: they save as OpenCLIP folders).
`get_variant` looks in both.

The legacy rule of transformers is kept: a text config whose `eos_token_id` is 2 (the old hub
configs of the OpenAI models say so) pools at `argmax(input_ids)` instead, which is the EOS token
49407 because it is the highest id in the vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
POOL_TYPES = ("eos", "first", "last")
CONVNEXT_HEADS = ("linear", "mlp")


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
        if not 0 < self.patch_size <= self.image_size:
            raise ValueError(
                f"VisionConfig.patch_size={self.patch_size} must be in [1, image_size="
                f"{self.image_size}]"
            )

    @property
    def num_patches(self) -> int:
        """(image_size // patch_size)²: the patch conv drops a remainder (SigLIP So400m/14 at
        384 px sees 27 x 27 patches of 378 px); CLIPConfig refuses a remainder."""
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
      pool_type: which final-LN state is the pooled text feature, one of POOL_TYPES:
        "eos" (the rule above; OpenAI's and OpenCLIP's "argmax" is this rule with EOS the
        largest id), "first" (position 0) or "last" (position T - 1), as OpenCLIP's
        `text_global_pool`.
      causal: causal self-attention mask (CLIP); False for OpenCLIP `no_causal_mask` towers.
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
    pool_type: str = "eos"
    causal: bool = True

    def __post_init__(self):
        _check_tower(self, "TextConfig")
        if self.pool_type not in POOL_TYPES:
            raise ValueError(
                f"TextConfig.pool_type={self.pool_type!r} is not supported; choose one of "
                f"{POOL_TYPES}"
            )
        for field in ("bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, field)
            if not 0 <= value < self.vocab_size:
                raise ValueError(
                    f"TextConfig.{field}={value} lies outside the vocabulary [0, {self.vocab_size}); "
                    "pooling would silently read position 0"
                )


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """OpenAI's ModifiedResNet image tower (`clip/model.py`, Radford et al. 2021, section 2.4).

    A ResNet-D-like net: a three-conv stem (3x3 stride 2, 3x3, 3x3, then 2x2 average pooling),
    four stages of bottleneck blocks whose strided blocks downsample by average pooling
    ("anti-aliased": avgpool before the 1x1 conv, stride-1 convs only), frozen batch-norm
    statistics, and an attention pool (one query: the mean feature, over the position-embedded
    7x7 grid) whose output projection `c_proj` maps to the embedding space.

    Attributes:
      image_size: input side; a multiple of 32 (the tower's total stride).
      layers: bottleneck blocks in each of the four stages (RN50: (3, 4, 6, 3)).
      width: stem width; stage i has width * 2**i planes and 4x that many output channels,
        so the attention pool works on width * 32 channels.
      heads: attention-pool heads (OpenAI: width * 32 // 64).
      batch_norm_eps: epsilon of every (frozen) BatchNorm.
    """

    image_size: int = 224
    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64
    heads: int = 32
    batch_norm_eps: float = 1e-5

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        if len(self.layers) != 4 or min(self.layers) <= 0:
            raise ValueError(f"ResNetConfig.layers={self.layers} must be 4 positive block counts")
        if self.width <= 0 or self.width % 2:
            raise ValueError(f"ResNetConfig.width={self.width} must be positive and even")
        if self.image_size <= 0 or self.image_size % 32:
            raise ValueError(
                f"ResNetConfig.image_size={self.image_size} must be a positive multiple of 32"
            )
        if self.heads <= 0 or self.embed_dim % self.heads:
            raise ValueError(
                f"ResNetConfig.heads={self.heads} must divide the pooled width {self.embed_dim}"
            )

    @property
    def embed_dim(self) -> int:
        """Channels of the last stage = width of the attention pool (RN50: 2048)."""
        return self.width * 32

    @property
    def grid(self) -> int:
        """Side of the last feature map (image_size / 32)."""
        return self.image_size // 32


@dataclasses.dataclass(frozen=True)
class ConvNeXtConfig:
    """ConvNeXt image tower as OpenCLIP builds it: timm trunk + pooled projection head.

    Liu et al. 2022, "A ConvNet for the 2020s". Trunk (timm `ConvNeXt`, channels-last here):
    stem = LayerNorm(conv_PxP/stride P(x)); four stages, each (after the first) opening with
    LayerNorm + 2x2 stride-2 conv, then blocks
        x = x + gamma * fc2(GELU(fc1(LayerNorm(dwconv_KxK(x)))))
    and the timm head: pooled = LayerNorm(mean over H, W). OpenCLIP's `TimmModel` head then maps
    pooled to the embedding: "linear" (bias-free `proj`, timm_proj='linear') or "mlp"
    (fc1 -> GELU -> fc2, hidden 2 * D, timm_proj='mlp').

    Attributes:
      image_size: input side.
      depths: blocks per stage (convnext_base: (3, 3, 27, 3)).
      dims: channels per stage (convnext_base: (128, 256, 512, 1024)).
      patch_size: stem patch size (4).
      kernel_size: depthwise kernel size (7).
      mlp_ratio: block MLP hidden size = int(mlp_ratio * dim).
      norm_eps: epsilon of every LayerNorm (timm: 1e-6; convnext_xxlarge: 1e-5).
      head: "linear" or "mlp" (CONVNEXT_HEADS).
      head_bias: bias on the last projection (OpenCLIP `timm_proj_bias`).
    """

    image_size: int = 224
    depths: tuple[int, ...] = (3, 3, 27, 3)
    dims: tuple[int, ...] = (128, 256, 512, 1024)
    patch_size: int = 4
    kernel_size: int = 7
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    head: str = "linear"
    head_bias: bool = False

    def __post_init__(self):
        object.__setattr__(self, "depths", tuple(int(n) for n in self.depths))
        object.__setattr__(self, "dims", tuple(int(n) for n in self.dims))
        if len(self.depths) != len(self.dims) or not self.depths:
            raise ValueError(
                f"ConvNeXtConfig.depths={self.depths} and dims={self.dims} must have the same "
                "non-zero length"
            )
        if min(self.depths) <= 0 or min(self.dims) <= 0:
            raise ValueError(
                f"ConvNeXtConfig.depths={self.depths} and dims={self.dims} must be positive"
            )
        for field in ("image_size", "patch_size", "kernel_size"):
            if getattr(self, field) <= 0:
                raise ValueError(f"ConvNeXtConfig.{field}={getattr(self, field)} must be positive")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"ConvNeXtConfig.kernel_size={self.kernel_size} must be odd")
        if self.head not in CONVNEXT_HEADS:
            raise ValueError(
                f"ConvNeXtConfig.head={self.head!r} is not supported; choose one of "
                f"{CONVNEXT_HEADS}"
            )

    @property
    def width(self) -> int:
        """Channels of the pooled trunk feature (convnext_base: 1024)."""
        return self.dims[-1]


ImageTowerConfig = VisionConfig | ResNetConfig | ConvNeXtConfig


@dataclasses.dataclass(frozen=True)
class CLIPConfig:
    """A two-tower CLIP: image tower, text tower, shared embedding size and logit scale.

    Attributes:
      vision: the image tower: VisionConfig (ViT), ResNetConfig or ConvNeXtConfig.
      text: the text tower.
      projection_dim: size D of the shared embedding space (bias-free projections).
      logit_scale_init_value: initial log of the inverse temperature, log(1 / 0.07) = 2.6592.
      logit_bias_init_value: None (CLIP), or the initial value of a learned scalar
        `logit_bias` b: a CLIP trained with SigLIP's sigmoid loss (logits t·cos + b; SigLIP
        initialises b = -10). Its folder's config.json then carries this key and its weights a
        `logit_bias` tensor, which transformers' CLIPModel ignores.
    """

    vision: ImageTowerConfig = dataclasses.field(default_factory=VisionConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592
    logit_bias_init_value: float | None = None

    def __post_init__(self):
        if self.projection_dim <= 0:
            raise ValueError(f"CLIPConfig.projection_dim={self.projection_dim} must be positive")
        if not isinstance(self.vision, (VisionConfig, ResNetConfig, ConvNeXtConfig)):
            raise TypeError(
                "CLIPConfig.vision must be a VisionConfig, ResNetConfig or ConvNeXtConfig; got "
                f"{type(self.vision).__name__}"
            )
        if (
            isinstance(self.vision, VisionConfig)
            and self.vision.image_size % self.vision.patch_size
        ):
            raise ValueError(
                f"VisionConfig.image_size={self.vision.image_size} is not a multiple of "
                f"patch_size={self.vision.patch_size}"
            )

    @property
    def is_vit(self) -> bool:
        """True for a ViT image tower (the HF Flax layout; a transformers CLIPModel twin)."""
        return isinstance(self.vision, VisionConfig)


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


def _openai_text(width: int, act: str = "quick_gelu") -> TextConfig:
    # Pad id = EOS, as jaxclip reads OpenAI / OpenCLIP checkpoints (their files do not store it).
    return TextConfig(
        width=width, heads=width // 64, mlp_dim=4 * width, act=act, pad_token_id=49407
    )


def _rn(layers, width, image_size, embed_dim, text_width) -> CLIPConfig:
    return CLIPConfig(
        ResNetConfig(image_size=image_size, layers=layers, width=width, heads=width * 32 // 64),
        _openai_text(text_width),
        projection_dim=embed_dim,
    )


def rn50() -> CLIPConfig:
    """OpenAI RN50 (`clip/model.py:build_model` of RN50.pt; OpenCLIP `RN50-quickgelu`)."""
    return _rn((3, 4, 6, 3), 64, 224, 1024, 512)


def rn101() -> CLIPConfig:
    """OpenAI RN101."""
    return _rn((3, 4, 23, 3), 64, 224, 512, 512)


def rn50x4() -> CLIPConfig:
    """OpenAI RN50x4 (288 px)."""
    return _rn((4, 6, 10, 6), 80, 288, 640, 640)


def rn50x16() -> CLIPConfig:
    """OpenAI RN50x16 (384 px)."""
    return _rn((6, 8, 18, 8), 96, 384, 768, 768)


def rn50x64() -> CLIPConfig:
    """OpenAI RN50x64 (448 px)."""
    return _rn((3, 15, 36, 10), 128, 448, 1024, 1024)


def convnext_base() -> CLIPConfig:
    """OpenCLIP `convnext_base` (timm convnext_base trunk, linear head, GELU text tower)."""
    return CLIPConfig(ConvNeXtConfig(), _openai_text(512, act="gelu"), projection_dim=512)


def convnext_base_w() -> CLIPConfig:
    """OpenCLIP `convnext_base_w` (256 px, 640-d embeddings and text tower)."""
    return CLIPConfig(
        ConvNeXtConfig(image_size=256), _openai_text(640, act="gelu"), projection_dim=640
    )


def tiny_resnet() -> CLIPConfig:
    """Test / demo ResNet CLIP: width 8 (pool width 256), one block per stage, 64 px images."""
    return CLIPConfig(
        ResNetConfig(image_size=64, layers=(1, 1, 1, 1), width=8, heads=4),
        dataclasses.replace(tiny().text, pad_token_id=49407),
        projection_dim=64,
    )


def tiny_convnext() -> CLIPConfig:
    """Test / demo ConvNeXt CLIP: dims (16, 32, 48, 64), one block per stage, 32 px images."""
    return CLIPConfig(
        ConvNeXtConfig(image_size=32, depths=(1, 1, 1, 1), dims=(16, 32, 48, 64)),
        dataclasses.replace(tiny().text, act="gelu", pad_token_id=49407),
        projection_dim=64,
    )


# ViT sizes: each has a transformers CLIPModel twin (`to_hf_config`).
VARIANTS: dict[str, Callable[[], CLIPConfig]] = {
    "vit_b32": vit_b32,
    "vit_b16": vit_b16,
    "vit_l14": vit_l14,
    "vit_l14_336": vit_l14_336,
    "tiny": tiny,
}
# Convolutional image towers (OpenAI ModifiedResNet, OpenCLIP ConvNeXt): no transformers twin.
CONV_VARIANTS: dict[str, Callable[[], CLIPConfig]] = {
    "rn50": rn50,
    "rn101": rn101,
    "rn50x4": rn50x4,
    "rn50x16": rn50x16,
    "rn50x64": rn50x64,
    "convnext_base": convnext_base,
    "convnext_base_w": convnext_base_w,
    "tiny_resnet": tiny_resnet,
    "tiny_convnext": tiny_convnext,
}


def get_variant(name: str) -> CLIPConfig:
    """Returns the named config (VARIANTS or CONV_VARIANTS), or raises ValueError naming them."""
    table = {**VARIANTS, **CONV_VARIANTS}
    if name not in table:
        raise ValueError(f"unknown CLIP variant {name!r}; choose one of: {', '.join(table)}")
    return table[name]()


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
        logit_bias_init_value=(
            None if hf.get("logit_bias_init_value") is None else float(hf["logit_bias_init_value"])
        ),
    )


def hf_incompatibility(cfg: CLIPConfig) -> str | None:
    """Why `cfg` has no transformers CLIPModel twin, or None when it has one."""
    if not cfg.is_vit:
        return f"its image tower is a {type(cfg.vision).__name__} (transformers has only ViT CLIP)"
    if cfg.text.pool_type != "eos":
        return f"its text tower pools at the {cfg.text.pool_type!r} token (transformers: EOS)"
    if not cfg.text.causal:
        return "its text tower has no causal mask (transformers: causal)"
    return None


def to_hf_config(cfg: CLIPConfig) -> dict[str, Any]:
    """A transformers-loadable CLIPModel config.json dict (`CLIPConfig(**d)` accepts it).

    Raises:
      ValueError: for configs transformers cannot express (`hf_incompatibility`).
    """
    why = hf_incompatibility(cfg)
    if why is not None:
        raise ValueError(f"this CLIP has no transformers CLIPModel equivalent: {why}")
    vision = {theirs: getattr(cfg.vision, ours) for theirs, ours in _VISION_KEYS.items()}
    text = {theirs: getattr(cfg.text, ours) for theirs, ours in _TEXT_KEYS.items()}
    vision.update(model_type="clip_vision_model", num_channels=3, projection_dim=cfg.projection_dim)
    text.update(model_type="clip_text_model", projection_dim=cfg.projection_dim)
    out = {
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": cfg.projection_dim,
        "logit_scale_init_value": cfg.logit_scale_init_value,
        "initializer_factor": 1.0,
        "text_config": text,
        "vision_config": vision,
    }
    if cfg.logit_bias_init_value is not None:  # a sigmoid-loss CLIP (transformers ignores it)
        out["logit_bias_init_value"] = cfg.logit_bias_init_value
    return out


# --- SigLIP (sigmoid-loss two-tower models) -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SiglipConfig:
    """A SigLIP / SigLIP 2 (fixed resolution) two-tower model: `jaxclip.models.siglip.Siglip`.

    Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training"; Tschannen et al. 2025,
    "SigLIP 2". The towers reuse `VisionConfig` / `TextConfig` with SigLIP's settings; the
    differences from CLIP's `CLIPConfig` are structural and live in the module:

    * image tower: no class token, no pre-LayerNorm, a biased patch conv, position embeddings
      for the patches only; after the post-LayerNorm (applied to every token) a multi-head
      attention-pooling head (MAP: one learned probe query, then LayerNorm + MLP residual) gives
      the image embedding directly (no separate projection; its size is `vision.width`);
    * text tower: no causal mask and no attention mask (padding is attended to, as trained),
      pooled at the last position (`text.pool_type == "last"`), then a biased linear `head`
      to `projection_dim`;
    * logits = exp(logit_scale) · cos + logit_bias (a learned bias, initialised at -10 with
      logit_scale at log 10, the paper's t' = log 10, b = -10).

    Attributes:
      vision: the ViT tower (`patch_size`, `width`, ...; act "gelu_pytorch_tanh", eps 1e-6).
      text: the text tower (`pool_type="last"`, `causal=False`, `context_length` 64).
      projection_dim: text head output size; equals `vision.width` (the image embedding size).
      logit_scale_init_value: initial log t (log 10 = 2.302585).
      logit_bias_init_value: initial b (-10).
    """

    vision: VisionConfig = dataclasses.field(
        default_factory=lambda: VisionConfig(
            patch_size=16, act="gelu_pytorch_tanh", layer_norm_eps=1e-6
        )
    )
    text: TextConfig = dataclasses.field(default_factory=lambda: _siglip_text(768))
    projection_dim: int = 768
    logit_scale_init_value: float = 2.302585092994046
    logit_bias_init_value: float = -10.0

    def __post_init__(self):
        if not isinstance(self.vision, VisionConfig) or not isinstance(self.text, TextConfig):
            raise TypeError(
                "SiglipConfig needs a VisionConfig and a TextConfig; got "
                f"{type(self.vision).__name__} and {type(self.text).__name__}"
            )
        if self.projection_dim != self.vision.width:
            raise ValueError(
                f"SiglipConfig.projection_dim={self.projection_dim} must equal vision.width="
                f"{self.vision.width}: the attention-pooling head outputs the image embedding at "
                "the vision width and the text head must match it"
            )
        if self.text.pool_type != "last" or self.text.causal:
            raise ValueError(
                "SiglipConfig.text must pool at the last token without a causal mask "
                f"(pool_type='last', causal=False); got pool_type={self.text.pool_type!r}, "
                f"causal={self.text.causal}"
            )

    @property
    def is_vit(self) -> bool:
        """Always True (a ViT image tower)."""
        return True


def _siglip_text(
    width: int, vocab_size: int = 32000, layers: int = 12, heads: int | None = None, **kw
) -> TextConfig:
    # SigLIP's SentencePiece vocabulary (c4_en) has </s> = 1 as both EOS and padding, no BOS.
    ids = dict(bos_token_id=1, eos_token_id=1, pad_token_id=1)
    ids.update(kw)
    return TextConfig(
        vocab_size=vocab_size,
        context_length=64,
        width=width,
        layers=layers,
        heads=heads or width // 64,
        mlp_dim=4 * width,
        act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
        pool_type="last",
        causal=False,
        **ids,
    )


def siglip_b16(image_size: int = 224) -> SiglipConfig:
    """SigLIP ViT-B/16 (google/siglip-base-patch16-224, -256 with image_size=256)."""
    vision = VisionConfig(
        image_size=image_size, patch_size=16, act="gelu_pytorch_tanh", layer_norm_eps=1e-6
    )
    return SiglipConfig(vision, _siglip_text(768), projection_dim=768)


def siglip_so400m14_384() -> SiglipConfig:
    """SigLIP So400m/14 at 384 px (google/siglip-so400m-patch14-384): width 1152, 27 layers."""
    vision = VisionConfig(
        image_size=384,
        patch_size=14,
        width=1152,
        layers=27,
        heads=16,
        mlp_dim=4304,
        act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
    )
    text = dataclasses.replace(
        _siglip_text(1152, layers=27, heads=16), mlp_dim=4304, vocab_size=32000
    )
    return SiglipConfig(vision, text, projection_dim=1152)


def siglip2_b16() -> SiglipConfig:
    """SigLIP 2 ViT-B/16 at 224 px (google/siglip2-base-patch16-224): Gemma vocabulary 256000."""
    base = siglip_b16(224)
    text = dataclasses.replace(
        base.text, vocab_size=256000, bos_token_id=2, eos_token_id=1, pad_token_id=0
    )
    return dataclasses.replace(base, text=text)


def tiny_siglip() -> SiglipConfig:
    """Test / demo SigLIP: width 64, 2 layers, 32 px images in 8 px patches, vocabulary 1000."""
    vision = VisionConfig(
        image_size=32,
        patch_size=8,
        width=64,
        layers=2,
        heads=2,
        mlp_dim=256,
        act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
    )
    return SiglipConfig(vision, _siglip_text(64, vocab_size=1000, layers=2, heads=2), 64)


SIGLIP_VARIANTS: dict[str, Callable[[], SiglipConfig]] = {
    "siglip_b16": siglip_b16,
    "siglip_b16_256": lambda: siglip_b16(256),
    "siglip_so400m14_384": siglip_so400m14_384,
    "siglip2_b16": siglip2_b16,
    "tiny_siglip": tiny_siglip,
}

# transformers' SiglipVisionConfig / SiglipTextConfig defaults, for keys a config.json leaves out.
_HF_SIGLIP_VISION_DEFAULTS = {
    "image_size": 224,
    "patch_size": 16,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
}
_HF_SIGLIP_TEXT_DEFAULTS = {
    "vocab_size": 32000,
    "max_position_embeddings": 64,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "pad_token_id": 1,
}


def from_hf_siglip_config(hf: Mapping[str, Any]) -> SiglipConfig:
    """Builds a SiglipConfig from a transformers `SiglipConfig` dict (config.json).

    transformers' text config carries CLIP's bos/eos ids (49406/49407) as inert defaults: SigLIP
    never reads them (it pools the last position), so only `pad_token_id` is taken, and bos and
    eos are set to it. `projection_size` (text head output) defaults to the text width.

    Raises:
      ValueError: model_type is not "siglip", a vision config without the attention-pooling
        head (`vision_use_head=False`), or sizes that do not fit (text head != vision width).
    """
    model_type = hf.get("model_type")
    if model_type != "siglip":
        raise ValueError(f"config.json has model_type={model_type!r}; expected 'siglip'")
    vis = {
        **_HF_SIGLIP_VISION_DEFAULTS,
        **{k: v for k, v in (hf.get("vision_config") or {}).items() if v is not None},
    }
    txt = {
        **_HF_SIGLIP_TEXT_DEFAULTS,
        **{k: v for k, v in (hf.get("text_config") or {}).items() if v is not None},
    }
    if not vis.get("vision_use_head", True):
        raise ValueError("vision_config.vision_use_head=False: a SiglipModel needs the MAP head")
    if vis.get("num_channels", 3) != 3:
        raise ValueError(f"vision_config.num_channels={vis['num_channels']}; only 3 is supported")
    vision = VisionConfig(**{ours: vis[theirs] for theirs, ours in _VISION_KEYS.items()})
    pad = int(txt["pad_token_id"])
    text = TextConfig(
        **{ours: txt[theirs] for theirs, ours in _TEXT_KEYS.items() if "token_id" not in theirs},
        bos_token_id=pad,
        eos_token_id=pad,
        pad_token_id=pad,
        pool_type="last",
        causal=False,
    )
    proj = int(txt.get("projection_size") or text.width)
    return SiglipConfig(vision, text, projection_dim=proj)


def to_hf_siglip_config(cfg: SiglipConfig) -> dict[str, Any]:
    """A transformers-loadable SiglipModel config.json dict (`SiglipConfig(**d)` accepts it)."""
    vision = {theirs: getattr(cfg.vision, ours) for theirs, ours in _VISION_KEYS.items()}
    # bos / eos: transformers checks they lie in the vocabulary; SigLIP never reads them.
    text = {theirs: getattr(cfg.text, ours) for theirs, ours in _TEXT_KEYS.items()}
    vision.update(model_type="siglip_vision_model", num_channels=3, vision_use_head=True)
    text.update(model_type="siglip_text_model", projection_size=cfg.projection_dim)
    return {
        "architectures": ["SiglipModel"],
        "model_type": "siglip",
        "initializer_factor": 1.0,
        "text_config": text,
        "vision_config": vision,
    }
