"""OpenCLIP checkpoints: hub folders, `open_clip_config.json`, pretrained names (pure Python).

OpenCLIP (Ilharco et al. 2021, github.com/mlfoundations/open_clip; Cherti et al. 2023,
"Reproducible scaling laws for contrastive language-image learning") publishes its weights on
the Hugging Face hub as folders holding

    open_clip_config.json   {"model_cfg": {...}, "preprocess_cfg": {"mean", "std", ...}}
    open_clip_model.safetensors | open_clip_pytorch_model.safetensors | open_clip_pytorch_model.bin

with the state dict in OpenAI's names (`visual.*`, `transformer.resblocks.*`, ...). The weights
give the architecture (shapes, `jaxclip.models.convert.infer_openai_config`); the config gives
what shapes cannot: the activation (`quick_gelu`), attention heads (`head_width`, `text_cfg.heads`),
LayerNorm epsilons (`norm_kwargs`), text pooling (`pool_type`, `eos_id`), the causal mask
(`no_causal_mask`), the ConvNeXt trunk name, and the image normalisation (`preprocess_cfg`).
Options jaxclip does not implement are refused by `parse_config` in one error naming them all,
never silently ignored.

OpenCLIP's text tower against OpenAI's: the same pre-LN causal transformer and names; OpenCLIP
models use exact GELU unless `quick_gelu` is set (OpenAI-trained weights and the `*-quickgelu`
configs), LayerNorm eps 1e-5 unless `norm_kwargs` says otherwise, and pool at `argmax(ids)` by
default (= the first EOS, the largest id of the CLIP BPE vocabulary; jaxclip's "eos" pooling),
or at "first" / "last" / the first `eos_id` token.

`PRETRAINED` maps OpenCLIP's (model name, pretrained tag) pairs, e.g. "ViT-B-32/laion2b_s34b_b79k",
to the hub repos of OpenCLIP's `pretrained.py` (open_clip_torch 3.3.0), with their activation and
normalisation; `resolve` turns such a name into an entry, `by_hub` finds one from its repo id.
This module never imports torch, open_clip or timm.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

CONFIG_NAME = "open_clip_config.json"
# The weight files OpenCLIP reads from a hub folder, in its order of preference.
WEIGHT_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


class UnsupportedOpenCLIPConfig(ValueError):
    """An OpenCLIP model using options jaxclip does not implement (names them all)."""


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One OpenCLIP pretrained checkpoint.

    Attributes:
      model: OpenCLIP model name ("ViT-B-32", "RN50", "convnext_base", ...).
      tag: OpenCLIP pretrained tag ("openai", "laion2b_s34b_b79k", ...).
      hub: Hugging Face hub repo holding the OpenCLIP folder.
      quick_gelu: the weights were trained with QuickGELU (OpenAI's and some early OpenCLIP runs).
      mean, std: image normalisation the model was trained with.
    """

    model: str
    tag: str
    hub: str
    quick_gelu: bool = False
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD

    @property
    def name(self) -> str:
        return f"{self.model}/{self.tag}"


def _p(model: str, tag: str, hub: str, **kw: Any) -> tuple[str, Pretrained]:
    entry = Pretrained(model, tag, hub, **kw)
    return entry.name, entry


# From open_clip/pretrained.py (open_clip_torch 3.3.0): hf_hub, quick_gelu, mean/std.
PRETRAINED: dict[str, Pretrained] = dict(
    [
        _p("RN50", "openai", "timm/resnet50_clip.openai", quick_gelu=True),
        _p("RN50", "yfcc15m", "timm/resnet50_clip.yfcc15m", quick_gelu=True),
        _p("RN50", "cc12m", "timm/resnet50_clip.cc12m", quick_gelu=True),
        _p("RN101", "openai", "timm/resnet101_clip.openai", quick_gelu=True),
        _p("RN101", "yfcc15m", "timm/resnet101_clip.yfcc15m", quick_gelu=True),
        _p("RN50x4", "openai", "timm/resnet50x4_clip.openai", quick_gelu=True),
        _p("RN50x16", "openai", "timm/resnet50x16_clip.openai", quick_gelu=True),
        _p("RN50x64", "openai", "timm/resnet50x64_clip.openai", quick_gelu=True),
        _p("ViT-B-32", "openai", "timm/vit_base_patch32_clip_224.openai", quick_gelu=True),
        _p(
            "ViT-B-32",
            "laion400m_e32",
            "timm/vit_base_patch32_clip_224.laion400m_e32",
            quick_gelu=True,
        ),
        _p("ViT-B-32", "laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
        _p("ViT-B-16", "openai", "timm/vit_base_patch16_clip_224.openai", quick_gelu=True),
        _p("ViT-B-16", "laion400m_e32", "timm/vit_base_patch16_clip_224.laion400m_e32"),
        _p("ViT-B-16", "laion2b_s34b_b88k", "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"),
        _p("ViT-L-14", "openai", "timm/vit_large_patch14_clip_224.openai", quick_gelu=True),
        _p("ViT-L-14", "laion400m_e32", "timm/vit_large_patch14_clip_224.laion400m_e32"),
        _p(
            "ViT-L-14",
            "laion2b_s32b_b82k",
            "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
            mean=INCEPTION_MEAN,
            std=INCEPTION_STD,
        ),
        _p("ViT-L-14-336", "openai", "timm/vit_large_patch14_clip_336.openai", quick_gelu=True),
        _p("convnext_base", "laion400m_s13b_b51k", "laion/CLIP-convnext_base-laion400M-s13B-b51K"),
        _p("convnext_base_w", "laion2b_s13b_b82k", "laion/CLIP-convnext_base_w-laion2B-s13B-b82K"),
    ]
)

# The model configs of the names above (open_clip/model_configs/*.json): used when a hub folder
# carries no open_clip_config.json (e.g. laion/CLIP-convnext_base-laion400M-s13B-b51K).
_TEXT = {"context_length": 77, "vocab_size": 49408, "layers": 12}
MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "RN50": {
        "embed_dim": 1024,
        "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64},
        "text_cfg": {**_TEXT, "width": 512, "heads": 8},
    },
    "RN101": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": [3, 4, 23, 3], "width": 64},
        "text_cfg": {**_TEXT, "width": 512, "heads": 8},
    },
    "RN50x4": {
        "embed_dim": 640,
        "vision_cfg": {"image_size": 288, "layers": [4, 6, 10, 6], "width": 80},
        "text_cfg": {**_TEXT, "width": 640, "heads": 10},
    },
    "RN50x16": {
        "embed_dim": 768,
        "vision_cfg": {"image_size": 384, "layers": [6, 8, 18, 8], "width": 96},
        "text_cfg": {**_TEXT, "width": 768, "heads": 12},
    },
    "RN50x64": {
        "embed_dim": 1024,
        "vision_cfg": {"image_size": 448, "layers": [3, 15, 36, 10], "width": 128},
        "text_cfg": {**_TEXT, "width": 1024, "heads": 16},
    },
    "ViT-B-32": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
        "text_cfg": {**_TEXT, "width": 512, "heads": 8},
    },
    "ViT-B-16": {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
        "text_cfg": {**_TEXT, "width": 512, "heads": 8},
    },
    "ViT-L-14": {
        "embed_dim": 768,
        "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14},
        "text_cfg": {**_TEXT, "width": 768, "heads": 12},
    },
    "ViT-L-14-336": {
        "embed_dim": 768,
        "vision_cfg": {"image_size": 336, "layers": 24, "width": 1024, "patch_size": 14},
        "text_cfg": {**_TEXT, "width": 768, "heads": 12},
    },
    "convnext_base": {
        "embed_dim": 512,
        "vision_cfg": {
            "timm_model_name": "convnext_base",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "timm_drop": 0.0,
            "timm_drop_path": 0.1,
            "image_size": 224,
        },
        "text_cfg": {**_TEXT, "width": 512, "heads": 8},
    },
    "convnext_base_w": {
        "embed_dim": 640,
        "vision_cfg": {
            "timm_model_name": "convnext_base",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "timm_drop": 0.0,
            "timm_drop_path": 0.1,
            "image_size": 256,
        },
        "text_cfg": {**_TEXT, "width": 640, "heads": 10},
    },
}


def resolve(name: str) -> Pretrained | None:
    """The PRETRAINED entry for "Model/tag" (optionally "open_clip:Model/tag"), else None.

    A "-quickgelu" suffix on the model name (OpenCLIP's spelling for QuickGELU weights) is
    accepted and forces quick_gelu.
    """
    key = name.removeprefix("open_clip:")
    if key in PRETRAINED:
        return PRETRAINED[key]
    model, _, tag = key.partition("/")
    if model.endswith("-quickgelu") and f"{model[: -len('-quickgelu')]}/{tag}" in PRETRAINED:
        base = PRETRAINED[f"{model[: -len('-quickgelu')]}/{tag}"]
        return dataclasses.replace(base, quick_gelu=True)
    return None


def by_hub(repo_id: str) -> Pretrained | None:
    """The PRETRAINED entry whose hub repo is `repo_id`, else None."""
    for entry in PRETRAINED.values():
        if entry.hub == repo_id:
            return entry
    return None


# --- open_clip_config.json -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpenCLIPOptions:
    """What an OpenCLIP config says beyond the shapes of its weights.

    Attributes:
      act: "quick_gelu" or "gelu" (`quick_gelu`): MLPs of ViT image and text towers.
      vision_head_width: ViT / ResNet attention head width (`vision_cfg.head_width`, 64).
      text_heads: text attention heads (`text_cfg.heads`, OpenCLIP's default 8).
      vision_eps, text_eps: LayerNorm epsilons (`norm_kwargs.eps`, 1e-5).
      text_pool: "eos", "first" or "last" (`text_cfg.pool_type`; "argmax" is "eos").
      text_eos_id: the token pooled by OpenCLIP's pool_type "eos" (None: the largest id).
      text_pad_id: OpenCLIP's pad id (`text_cfg.pad_id`, 0): padding matters without a mask.
      text_causal: causal text attention (not `text_cfg.no_causal_mask`).
      timm_model_name: the ConvNeXt trunk's timm name (`vision_cfg.timm_model_name`).
      image_size: `vision_cfg.image_size`.
      mean, std: `preprocess_cfg` normalisation (None when absent).
    """

    act: str = "gelu"
    vision_head_width: int = 64
    text_heads: int = 8
    vision_eps: float = 1e-5
    text_eps: float = 1e-5
    text_pool: str = "eos"
    text_eos_id: int | None = None
    text_pad_id: int = 0
    text_causal: bool = True
    timm_model_name: str | None = None
    image_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


_TOWER_FLAGS = (  # options that add parameters or change the block maths: must be off
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
    "final_ln_after_pool",
    "attentional_pool",
    "no_ln_pre",
    "input_patchnorm",
    "global_average_pool",
    "embed_cls",
    "proj_bias",
)


def _eps(tower: Mapping[str, Any], where: str, problems: list[str]) -> float:
    norm = dict(tower.get("norm_kwargs") or {})
    extra = sorted(set(norm) - {"eps"})
    if extra:
        problems.append(f"{where}.norm_kwargs={norm} (only eps is supported)")
    return float(norm.get("eps", 1e-5))


def _common_tower_checks(tower: Mapping[str, Any], where: str, problems: list[str]) -> None:
    for flag in _TOWER_FLAGS:
        if tower.get(flag):
            problems.append(f"{where}.{flag}={tower[flag]!r}")
    if tower.get("ls_init_value") is not None:
        problems.append(f"{where}.ls_init_value={tower['ls_init_value']!r} (layer scale)")
    if tower.get("act_kwargs"):
        problems.append(f"{where}.act_kwargs={tower['act_kwargs']!r}")
    if tower.get("block_type") not in (None, "default"):
        problems.append(f"{where}.block_type={tower['block_type']!r}")


def parse_config(
    config: Mapping[str, Any], source: str = "open_clip_config.json"
) -> OpenCLIPOptions:
    """Reads an OpenCLIP config (`open_clip_config.json` content, or a bare model config).

    Raises:
      UnsupportedOpenCLIPConfig: naming every option jaxclip does not implement.
    """
    model = config.get("model_cfg", config)
    if not isinstance(model, Mapping):
        raise UnsupportedOpenCLIPConfig(f"{source}: model_cfg is not a mapping: {model!r}")
    vision = dict(model.get("vision_cfg") or {})
    text = dict(model.get("text_cfg") or {})
    problems: list[str] = []
    if model.get("custom_text"):
        problems.append("custom_text=True (CustomTextCLIP, state dict under 'text.')")
    if model.get("multimodal_cfg"):
        problems.append("multimodal_cfg (CoCa)")
    if model.get("init_logit_bias") is not None:
        problems.append(f"init_logit_bias={model['init_logit_bias']!r} (SigLIP loss)")
    if text.get("hf_model_name"):
        problems.append(
            f"text_cfg.hf_model_name={text['hf_model_name']!r} (a transformers text tower)"
        )
    if text.get("hf_tokenizer_name") or text.get("tokenizer_mode"):
        which = text.get("hf_tokenizer_name") or text.get("tokenizer_mode")
        problems.append(f"text tokenizer {which!r} (only the CLIP BPE tokenizer is supported)")
    if text.get("tokenizer_kwargs"):
        warnings.warn(
            f"{source}: text_cfg.tokenizer_kwargs={text['tokenizer_kwargs']!r} are ignored; "
            "jaxclip cleans text as OpenAI's tokenizer does",
            stacklevel=3,
        )
    _common_tower_checks(text, "text_cfg", problems)
    if text.get("proj_type", "linear") != "linear":
        problems.append(f"text_cfg.proj_type={text['proj_type']!r} (only 'linear')")
    pool = text.get("pool_type", "argmax")
    eos_id = None
    if pool == "argmax":
        pool = "eos"
    elif pool == "eos":
        eos_id = int(text.get("eos_id", 2))
        if eos_id == 2:  # jaxclip's eos_token_id 2 means the legacy argmax rule
            problems.append("text_cfg.pool_type='eos' with eos_id=2")
    elif pool not in ("first", "last"):
        problems.append(f"text_cfg.pool_type={pool!r} (argmax, eos, first, last are supported)")
    text_eps = _eps(text, "text_cfg", problems)

    timm_name = vision.get("timm_model_name")
    vision_eps = 1e-5
    if timm_name:
        if not str(timm_name).startswith("convnext"):
            problems.append(f"vision_cfg.timm_model_name={timm_name!r} (only timm ConvNeXt)")
        if vision.get("timm_pool", "avg") not in ("", "avg"):
            problems.append(f"vision_cfg.timm_pool={vision['timm_pool']!r} ('' or 'avg')")
        if vision.get("timm_proj", "linear") not in ("linear", "mlp"):
            problems.append(f"vision_cfg.timm_proj={vision['timm_proj']!r} ('linear' or 'mlp')")
    else:
        _common_tower_checks(vision, "vision_cfg", problems)
        vision_eps = _eps(vision, "vision_cfg", problems)
        if vision.get("pos_embed_type", "learnable") != "learnable":
            problems.append(f"vision_cfg.pos_embed_type={vision['pos_embed_type']!r}")
        if vision.get("pool_type", "tok") != "tok":
            problems.append(f"vision_cfg.pool_type={vision['pool_type']!r} (only 'tok')")
    size = vision.get("image_size")
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            problems.append(f"vision_cfg.image_size={size} (only square images)")
        size = size[0]
    if problems:
        raise UnsupportedOpenCLIPConfig(
            f"{source} uses OpenCLIP options jaxclip does not implement: " + "; ".join(problems)
        )
    pre = config.get("preprocess_cfg") or {}
    mean = tuple(pre["mean"]) if "mean" in pre else None
    std = tuple(pre["std"]) if "std" in pre else None
    for key, ours in (("resize_mode", "shortest"), ("interpolation", "bicubic")):
        if pre.get(key, ours) != ours:
            warnings.warn(
                f"{source}: preprocess_cfg.{key}={pre[key]!r}; jaxclip resizes the shortest side "
                "(bicubic) and centre-crops",
                stacklevel=3,
            )
    return OpenCLIPOptions(
        act="quick_gelu" if model.get("quick_gelu") else "gelu",
        vision_head_width=int(vision.get("head_width", 64)),
        text_heads=int(text.get("heads", 8)),
        vision_eps=vision_eps,
        text_eps=text_eps,
        text_pool=pool,
        text_eos_id=eos_id,
        text_pad_id=int(text.get("pad_id", 0)),
        text_causal=not text.get("no_causal_mask", False),
        timm_model_name=str(timm_name) if timm_name else None,
        image_size=int(size) if size is not None else None,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
    )


def apply_options(config: Any, options: OpenCLIPOptions) -> Any:
    """The CLIPConfig inferred from shapes, completed with what the OpenCLIP config says."""
    from jaxclip.models import convnext
    from jaxclip.models.variants import ConvNeXtConfig, VisionConfig

    text = dataclasses.replace(
        config.text,
        layer_norm_eps=options.text_eps,
        pool_type=options.text_pool,
        causal=options.text_causal,
    )
    if options.text_eos_id is not None:
        text = dataclasses.replace(text, eos_token_id=options.text_eos_id)
    if not options.text_causal:  # without a mask the padding tokens are seen: pad as OpenCLIP
        text = dataclasses.replace(text, pad_token_id=options.text_pad_id)
    vision = config.vision
    if isinstance(vision, VisionConfig):
        vision = dataclasses.replace(vision, layer_norm_eps=options.vision_eps)
    elif isinstance(vision, ConvNeXtConfig) and options.timm_model_name:
        eps = convnext.TIMM_NORM_EPS.get(options.timm_model_name, 1e-6)
        vision = dataclasses.replace(vision, norm_eps=eps)
    return dataclasses.replace(config, vision=vision, text=text)


def to_open_clip_config(config: Any, mean: tuple, std: tuple) -> dict[str, Any]:
    """An `open_clip_config.json` dict for a jaxclip CLIPConfig (any image tower).

    `open_clip.model.CLIP(**d["model_cfg"])` builds the same architecture (tested for the
    standard ConvNeXt sizes; a ConvNeXt size timm does not name gets timm_model_name None).
    """
    from jaxclip.models import convnext
    from jaxclip.models.variants import ConvNeXtConfig, ResNetConfig

    v, t = config.vision, config.text
    if isinstance(v, ResNetConfig):
        vision: dict[str, Any] = {
            "image_size": v.image_size,
            "layers": list(v.layers),
            "width": v.width,
            "head_width": v.embed_dim // v.heads,
            "patch_size": None,
        }
    elif isinstance(v, ConvNeXtConfig):
        vision = {
            "timm_model_name": convnext.timm_name(v),
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": v.head,
            "timm_proj_bias": v.head_bias,
            "timm_drop": 0.0,
            "image_size": v.image_size,
        }
    else:
        vision = {
            "image_size": v.image_size,
            "layers": v.layers,
            "width": v.width,
            "head_width": v.width // v.heads,
            "mlp_ratio": v.mlp_dim / v.width,
            "patch_size": v.patch_size,
        }
        if v.layer_norm_eps != 1e-5:
            vision["norm_kwargs"] = {"eps": v.layer_norm_eps}
    text: dict[str, Any] = {
        "context_length": t.context_length,
        "vocab_size": t.vocab_size,
        "width": t.width,
        "heads": t.heads,
        "layers": t.layers,
        "mlp_ratio": t.mlp_dim / t.width,
    }
    if t.pool_type != "eos":
        text["pool_type"] = t.pool_type
    elif t.eos_token_id not in (2, t.vocab_size - 1):
        text["pool_type"], text["eos_id"] = "eos", t.eos_token_id
    if not t.causal:
        text["no_causal_mask"] = True
        text["pad_id"] = t.pad_token_id
    if t.layer_norm_eps != 1e-5:
        text["norm_kwargs"] = {"eps": t.layer_norm_eps}
    act = t.act if isinstance(v, (ResNetConfig, ConvNeXtConfig)) else v.act
    if act not in ("quick_gelu", "gelu") or (v is not None and getattr(v, "act", act) != t.act):
        raise ValueError(
            f"OpenCLIP has one activation for both towers (quick_gelu or gelu); this model uses "
            f"text act={t.act!r}, image act={getattr(v, 'act', None)!r}"
        )
    return {
        "model_cfg": {
            "embed_dim": config.projection_dim,
            "quick_gelu": act == "quick_gelu",
            "vision_cfg": vision,
            "text_cfg": text,
        },
        "preprocess_cfg": {
            "mean": list(mean),
            "std": list(std),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    }
