"""Checkpoint formats <-> the Flax CLIP parameter tree (pure numpy; no torch at run time).

Three formats meet here:

* ours: the Hugging Face Flax CLIP layout (see `jaxclip.models.clip`), nested dicts of arrays.
* HF PyTorch (`CLIPModel.state_dict()`, `model.safetensors`): same names joined by dots, with
  PyTorch conventions: Linear `weight` is (out, in) = kernel^T, the patch conv `weight` is OIHW
  (ours HWIO), LayerNorm `weight` = our `scale`, Embedding `weight` = our `embedding`.
  Converted both ways (`hf_torch_to_params`, `params_to_hf_torch`): we also save.
* OpenAI / OpenCLIP state dicts (`visual.conv1.weight`, `visual.transformer.resblocks.N.
  attn.in_proj_weight`, `token_embedding.weight`, ...): converted both ways
  (`openai_to_params`, `params_to_openai`), with the architecture read from the shapes as
  OpenAI's `clip/model.py:build_model` does (`infer_openai_config`). The fused `in_proj_weight`
  (3W, W) splits into q, k, v in that order; `visual.proj` and `text_projection` are already
  (in, out). Three image towers: ViT (`visual.transformer.*`, into the HF Flax layout above),
  OpenAI's ModifiedResNet (`visual.layer1.0.conv1.weight`, `visual.attnpool.*`, RN50 ...) and
  OpenCLIP's timm ConvNeXt (`visual.trunk.*`, `visual.head.*`). The last two keep OpenCLIP's
  names as a nested tree under "visual" (`visual.layer1.0.bn1.running_mean` ->
  visual/layer1/0/bn1/mean; Linear/conv `weight` -> kernel, transposed / OIHW -> HWIO;
  norm `weight` -> scale); `num_batches_tracked` buffers are dropped.

A checkpoint that does not fit raises one `CheckpointError` naming every missing, unexpected
and wrong-shape parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from jaxclip.models import convnext, resnet
from jaxclip.models.variants import (
    CLIPConfig,
    ConvNeXtConfig,
    ResNetConfig,
    TextConfig,
    VisionConfig,
)

Params = dict[str, Any]
Path = tuple[str, ...]

# Buffers some checkpoints carry that are not parameters (safe to drop).
_HF_IGNORED = re.compile(r"^(text_model|vision_model)\.embeddings\.position_ids$")
_OPENAI_IGNORED = re.compile(
    r"^(input_resolution|context_length|vocab_size|attn_mask|visual\.attn_mask)$"
    r"|^visual\..*\.num_batches_tracked$"
)
_MAX_LISTED = 25


class CheckpointError(ValueError):
    """A checkpoint whose parameters do not match the architecture (names them all)."""


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f", ... and {more} more" if more > 0 else "")


def checkpoint_error(
    source: str,
    missing: Iterable[str] = (),
    unexpected: Iterable[str] = (),
    wrong_shape: Iterable[tuple[str, tuple, tuple]] = (),
    hint: str = "",
) -> CheckpointError:
    """Builds the single error listing every problem of a checkpoint."""
    missing, unexpected, wrong_shape = sorted(missing), sorted(unexpected), sorted(wrong_shape)
    parts = []
    if missing:
        parts.append(f"missing ({len(missing)}): {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected ({len(unexpected)}): {_listing(unexpected)}")
    if wrong_shape:
        items = [f"{n} expected {tuple(e)} got {tuple(g)}" for n, e, g in wrong_shape]
        parts.append(f"wrong shape ({len(items)}): {_listing(items)}")
    msg = f"checkpoint {source} does not match the CLIP architecture: " + "; ".join(parts)
    return CheckpointError(msg + (f". {hint}" if hint else ""))


# --- the expected tree -------------------------------------------------------------------------


def _tower_layer_shapes(cfg: VisionConfig | TextConfig) -> dict[Path, tuple[int, ...]]:
    w, m = cfg.width, cfg.mlp_dim
    layer: dict[Path, tuple[int, ...]] = {}
    for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
        layer[("self_attn", p, "kernel")] = (w, w)
        layer[("self_attn", p, "bias")] = (w,)
    for ln in ("layer_norm1", "layer_norm2"):
        layer[(ln, "scale")] = (w,)
        layer[(ln, "bias")] = (w,)
    layer[("mlp", "fc1", "kernel")] = (w, m)
    layer[("mlp", "fc1", "bias")] = (m,)
    layer[("mlp", "fc2", "kernel")] = (m, w)
    layer[("mlp", "fc2", "bias")] = (w,)
    out = {}
    for i in range(cfg.layers):
        for k, s in layer.items():
            out[("encoder", "layers", str(i), *k)] = s
    return out


def _text_shapes(config: CLIPConfig) -> dict[Path, tuple[int, ...]]:
    t = config.text
    shapes: dict[Path, tuple[int, ...]] = {
        ("logit_scale",): (),
        ("text_projection", "kernel"): (t.width, config.projection_dim),
        ("text_model", "embeddings", "token_embedding", "embedding"): (t.vocab_size, t.width),
        ("text_model", "embeddings", "position_embedding", "embedding"): (
            t.context_length,
            t.width,
        ),
        ("text_model", "final_layer_norm", "scale"): (t.width,),
        ("text_model", "final_layer_norm", "bias"): (t.width,),
    }
    if config.logit_bias_init_value is not None:  # a sigmoid-loss CLIP's learned bias b
        shapes[("logit_bias",)] = ()
    for k, s in _tower_layer_shapes(t).items():
        shapes[("text_model", *k)] = s
    return shapes


def _vit_shapes(config: CLIPConfig) -> dict[Path, tuple[int, ...]]:
    v = config.vision
    shapes: dict[Path, tuple[int, ...]] = {
        ("visual_projection", "kernel"): (v.width, config.projection_dim),
        ("vision_model", "embeddings", "class_embedding"): (v.width,),
        ("vision_model", "embeddings", "patch_embedding", "kernel"): (
            v.patch_size,
            v.patch_size,
            3,
            v.width,
        ),
        ("vision_model", "embeddings", "position_embedding", "embedding"): (
            v.num_patches + 1,
            v.width,
        ),
    }
    for ln in ("pre_layrnorm", "post_layernorm"):
        shapes[("vision_model", ln, "scale")] = (v.width,)
        shapes[("vision_model", ln, "bias")] = (v.width,)
    for k, s in _tower_layer_shapes(v).items():
        shapes[("vision_model", *k)] = s
    return shapes


def visual_shapes(config: CLIPConfig) -> dict[Path, tuple[int, ...]]:
    """Path -> shape of every image-tower parameter (incl. its projection) of `CLIP(config)`."""
    v = config.vision
    if isinstance(v, VisionConfig):
        return _vit_shapes(config)
    tower = resnet if isinstance(v, ResNetConfig) else convnext
    return {("visual", *p): s for p, s in tower.param_shapes(v, config.projection_dim).items()}


def expected_shapes(config: CLIPConfig) -> dict[Path, tuple[int, ...]]:
    """Flattened path -> shape of every parameter `CLIP(config).init` creates."""
    return {**visual_shapes(config), **_text_shapes(config)}


def flatten(tree: Mapping[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Nested dict -> {path tuple: leaf}."""
    out: dict[Path, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, (*prefix, str(k))))
        else:
            out[(*prefix, str(k))] = v
    return out


def unflatten(flat: Mapping[Path, Any]) -> Params:
    """{path tuple: leaf} -> nested dict."""
    out: Params = {}
    for path, v in flat.items():
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = v
    return out


def _as_float32(x: Any) -> np.ndarray:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating) and a.dtype.name != "bfloat16":
        raise TypeError(f"expected a floating-point array, got dtype {a.dtype}")
    return _contiguous(a.astype(np.float32))


def _contiguous(a: np.ndarray) -> np.ndarray:
    # Not np.ascontiguousarray: it turns 0-d arrays (logit_scale) into shape (1,).
    return np.array(a, order="C", copy=None)


def check_params(params: Mapping[str, Any], config: CLIPConfig, source: str = "params") -> Params:
    """Validates a tree in our layout (e.g. a restored msgpack); returns it as float32 numpy.

    Raises:
      CheckpointError: naming missing, unexpected and wrong-shape parameters.
    """
    if set(params) == {"params"}:
        params = params["params"]
    flat = flatten(params)
    want = expected_shapes(config)
    missing = ["/".join(p) for p in want if p not in flat]
    unexpected = ["/".join(p) for p in flat if p not in want]
    wrong = [
        ("/".join(p), want[p], np.shape(flat[p]))
        for p in want
        if p in flat and tuple(np.shape(flat[p])) != want[p]
    ]
    if missing or unexpected or wrong:
        raise checkpoint_error(source, missing, unexpected, wrong)
    return unflatten({p: _as_float32(flat[p]) for p in want})


# --- HF PyTorch names ----------------------------------------------------------------------------


def _hf_name(path: Path) -> str:
    last = {"scale": "weight", "embedding": "weight", "kernel": "weight"}.get(path[-1], path[-1])
    return ".".join((*path[:-1], last))


def _to_torch(path: Path, x: np.ndarray) -> np.ndarray:
    if path[-1] == "kernel":
        return x.transpose(3, 2, 0, 1) if x.ndim == 4 else x.T  # HWIO -> OIHW; (in,out)->(out,in)
    return x


def _from_torch(path: Path, x: np.ndarray) -> np.ndarray:
    if path[-1] == "kernel":
        return x.transpose(2, 3, 1, 0) if x.ndim == 4 else x.T  # OIHW -> HWIO; (out,in)->(in,out)
    return x


def _torch_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
    if path[-1] == "kernel":
        return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape[::-1]
    return shape


def hf_torch_to_params(
    state_dict: Mapping[str, Any], config: CLIPConfig, source: str = "state dict"
) -> Params:
    """HF PyTorch `CLIPModel` state dict (numpy arrays) -> our float32 tree.

    Raises:
      CheckpointError: naming missing, unexpected and wrong-shape parameters (HF names).
    """
    want = expected_shapes(config)
    names = {_hf_name(p): p for p in want}
    missing = [n for n in names if n not in state_dict]
    unexpected = [n for n in state_dict if n not in names and not _HF_IGNORED.match(n)]
    wrong = []
    for n, p in names.items():
        if n in state_dict:
            exp = _torch_shape(p, want[p])
            got = tuple(np.shape(state_dict[n]))
            if got != exp:
                wrong.append((n, exp, got))
    if missing or unexpected or wrong:
        hint = ""
        if any(k.startswith("visual.") for k in state_dict):
            hint = "It looks like an OpenAI / OpenCLIP state dict, not a transformers one"
        raise checkpoint_error(source, missing, unexpected, wrong, hint)
    return unflatten(
        {p: _as_float32(_from_torch(p, _as_float32(state_dict[n]))) for n, p in names.items()}
    )


def params_to_hf_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Our tree -> HF PyTorch `CLIPModel` state dict (float32, contiguous numpy arrays).

    Raises:
      ValueError: for a ResNet / ConvNeXt tree (transformers has no such CLIPModel).
    """
    if set(params) == {"params"}:
        params = params["params"]
    if "visual" in params:
        raise ValueError(
            "this tree has a ResNet / ConvNeXt image tower ('visual'), which transformers' "
            "CLIPModel cannot hold; use params_to_openai (an OpenCLIP state dict) instead"
        )
    return {
        _hf_name(p): _contiguous(_to_torch(p, _as_float32(x))) for p, x in flatten(params).items()
    }


# --- OpenAI / OpenCLIP ---------------------------------------------------------------------------

_OPENAI_LAYER = {  # our path inside a layer -> (OpenAI name inside a resblock, slice of in_proj)
    ("layer_norm1", "scale"): ("ln_1.weight", None),
    ("layer_norm1", "bias"): ("ln_1.bias", None),
    ("layer_norm2", "scale"): ("ln_2.weight", None),
    ("layer_norm2", "bias"): ("ln_2.bias", None),
    ("self_attn", "q_proj", "kernel"): ("attn.in_proj_weight", 0),
    ("self_attn", "k_proj", "kernel"): ("attn.in_proj_weight", 1),
    ("self_attn", "v_proj", "kernel"): ("attn.in_proj_weight", 2),
    ("self_attn", "q_proj", "bias"): ("attn.in_proj_bias", 0),
    ("self_attn", "k_proj", "bias"): ("attn.in_proj_bias", 1),
    ("self_attn", "v_proj", "bias"): ("attn.in_proj_bias", 2),
    ("self_attn", "out_proj", "kernel"): ("attn.out_proj.weight", None),
    ("self_attn", "out_proj", "bias"): ("attn.out_proj.bias", None),
    ("mlp", "fc1", "kernel"): ("mlp.c_fc.weight", None),
    ("mlp", "fc1", "bias"): ("mlp.c_fc.bias", None),
    ("mlp", "fc2", "kernel"): ("mlp.c_proj.weight", None),
    ("mlp", "fc2", "bias"): ("mlp.c_proj.bias", None),
}

_OPENAI_TEXT_TOP = {  # our path -> OpenAI name
    ("logit_scale",): "logit_scale",
    ("text_projection", "kernel"): "text_projection",
    ("text_model", "embeddings", "token_embedding", "embedding"): "token_embedding.weight",
    ("text_model", "embeddings", "position_embedding", "embedding"): "positional_embedding",
    ("text_model", "final_layer_norm", "scale"): "ln_final.weight",
    ("text_model", "final_layer_norm", "bias"): "ln_final.bias",
}
_OPENAI_VIT_TOP = {
    ("visual_projection", "kernel"): "visual.proj",
    ("vision_model", "embeddings", "class_embedding"): "visual.class_embedding",
    ("vision_model", "embeddings", "patch_embedding", "kernel"): "visual.conv1.weight",
    (
        "vision_model",
        "embeddings",
        "position_embedding",
        "embedding",
    ): "visual.positional_embedding",
    ("vision_model", "pre_layrnorm", "scale"): "visual.ln_pre.weight",
    ("vision_model", "pre_layrnorm", "bias"): "visual.ln_pre.bias",
    ("vision_model", "post_layernorm", "scale"): "visual.ln_post.weight",
    ("vision_model", "post_layernorm", "bias"): "visual.ln_post.bias",
}
_OPENAI_TOP = {**_OPENAI_TEXT_TOP, **_OPENAI_VIT_TOP}
# OpenAI stores these two projections as (in, out) matrices, not as Linear weights.
_PLAIN_MATRICES = {("visual_projection", "kernel"), ("text_projection", "kernel")}
# Leaf renames of the ResNet / ConvNeXt trees: ours -> PyTorch's.
_TORCH_LEAF = {"kernel": "weight", "scale": "weight", "mean": "running_mean", "var": "running_var"}


def _conv_tower_name(path: Path) -> str:
    """visual/layer1/0/bn1/mean -> visual.layer1.0.bn1.running_mean (ResNet / ConvNeXt trees)."""
    return ".".join((*path[:-1], _TORCH_LEAF.get(path[-1], path[-1])))


def _openai_sources(config: CLIPConfig) -> dict[Path, tuple[str, int | None]]:
    """Our path -> (OpenAI / OpenCLIP name, which third of in_proj or None)."""
    out: dict[Path, tuple[str, int | None]] = {p: (n, None) for p, n in _OPENAI_TEXT_TOP.items()}
    if config.logit_bias_init_value is not None:  # OpenCLIP's name for a sigmoid model's b
        out[("logit_bias",)] = ("logit_bias", None)
    towers: list[tuple[str, str, VisionConfig | TextConfig]] = [
        ("text_model", "transformer", config.text)
    ]
    if isinstance(config.vision, VisionConfig):
        out.update({p: (n, None) for p, n in _OPENAI_VIT_TOP.items()})
        towers.append(("vision_model", "visual.transformer", config.vision))
    else:
        out.update({p: (_conv_tower_name(p), None) for p in visual_shapes(config)})
    for tower, prefix, cfg in towers:
        for i in range(cfg.layers):
            for sub, (name, third) in _OPENAI_LAYER.items():
                out[(tower, "encoder", "layers", str(i), *sub)] = (
                    f"{prefix}.resblocks.{i}.{name}",
                    third,
                )
    return out


def _count_blocks(state_dict: Mapping[str, Any], prefix: str) -> int:
    pat = re.compile(rf"^{re.escape(prefix)}\.resblocks\.(\d+)\.")
    ids = {int(m.group(1)) for k in state_dict if (m := pat.match(k))}
    return max(ids) + 1 if ids else 0


def _indices(state_dict: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted distinct integers N of keys `prefix.N.*`."""
    pat = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    return sorted({int(m.group(1)) for k in state_dict if (m := pat.match(k))})


def _require(state_dict: Mapping[str, Any], keys: list[str], source: str, hint: str) -> None:
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise checkpoint_error(source, missing=missing, hint=hint)


def _shape(state_dict: Mapping[str, Any], key: str) -> tuple[int, ...]:
    return tuple(np.shape(state_dict[key]))


def infer_resnet_config(
    state_dict: Mapping[str, Any],
    *,
    head_width: int = 64,
    heads: int | None = None,
    source: str = "state dict",
) -> ResNetConfig:
    """ModifiedResNet architecture from `visual.*` shapes, as OpenAI's `build_model` reads it.

    layers = blocks found in visual.layer{1..4}; width = out channels of layer1.0.conv1;
    image_size = 32 * sqrt(rows of attnpool.positional_embedding - 1); heads (not stored) =
    width * 32 // head_width (OpenAI: head_width 64).
    """
    hint = "This is a ResNet CLIP (e.g. RN50) image tower whose keys are incomplete"
    keys = ["visual.layer1.0.conv1.weight", "visual.attnpool.positional_embedding"]
    _require(state_dict, keys, source, hint)
    layers = tuple(len(_indices(state_dict, f"visual.layer{i}")) for i in (1, 2, 3, 4))
    if min(layers) == 0:
        raise checkpoint_error(
            source,
            missing=[f"visual.layer{i}.0.*" for i, n in zip((1, 2, 3, 4), layers) if n == 0],
            hint=hint,
        )
    width = _shape(state_dict, "visual.layer1.0.conv1.weight")[0]
    rows = _shape(state_dict, "visual.attnpool.positional_embedding")[0]
    grid = round((rows - 1) ** 0.5)
    if grid * grid + 1 != rows:
        raise checkpoint_error(
            source,
            wrong_shape=[("visual.attnpool.positional_embedding", (grid * grid + 1,), (rows,))],
            hint="the attention pool's positions are not a square grid plus one",
        )
    return ResNetConfig(
        image_size=32 * grid,
        layers=layers,  # type: ignore[arg-type]
        width=width,
        heads=heads or max(1, width * 32 // head_width),
    )


def infer_convnext_config(
    state_dict: Mapping[str, Any],
    *,
    image_size: int = 224,
    norm_eps: float | None = None,
    timm_model_name: str | None = None,
    source: str = "state dict",
) -> ConvNeXtConfig:
    """ConvNeXt architecture from OpenCLIP `visual.trunk.*` / `visual.head.*` shapes.

    depths/dims/patch/kernel/mlp ratio come from the weights; the head is "linear" when
    `visual.head.proj.weight` exists, "mlp" for `visual.head.mlp.*`. Not stored: the image size
    (OpenCLIP config; 224 by default) and the LayerNorm eps (timm: 1e-6, 1e-5 for
    convnext_xxlarge, read from `timm_model_name` or the trunk size).
    """
    hint = "This is an OpenCLIP timm ConvNeXt image tower whose keys are incomplete"
    _require(
        state_dict, ["visual.trunk.stem.0.weight", "visual.trunk.head.norm.weight"], source, hint
    )
    stages = _indices(state_dict, "visual.trunk.stages")
    depths = tuple(len(_indices(state_dict, f"visual.trunk.stages.{i}.blocks")) for i in stages)
    if not stages or min(depths) == 0:
        raise checkpoint_error(source, missing=["visual.trunk.stages.<i>.blocks.0.*"], hint=hint)
    dims = tuple(
        _shape(state_dict, f"visual.trunk.stages.{i}.blocks.0.norm.weight")[0] for i in stages
    )
    stem = _shape(state_dict, "visual.trunk.stem.0.weight")
    fc1 = _shape(state_dict, "visual.trunk.stages.0.blocks.0.mlp.fc1.weight")
    dw = _shape(state_dict, "visual.trunk.stages.0.blocks.0.conv_dw.weight")
    if len(fc1) != 2:
        raise checkpoint_error(
            source,
            wrong_shape=[("visual.trunk.stages.0.blocks.0.mlp.fc1.weight", (fc1[0], dims[0]), fc1)],
            hint="ConvNeXt with conv_mlp=True (1x1-conv MLPs) is not supported",
        )
    if "visual.head.proj.weight" in state_dict:
        head, head_bias = "linear", "visual.head.proj.bias" in state_dict
    elif "visual.head.mlp.fc1.weight" in state_dict:
        head, head_bias = "mlp", "visual.head.mlp.fc2.bias" in state_dict
    else:
        raise checkpoint_error(
            source,
            missing=["visual.head.proj.weight (timm_proj='linear') or visual.head.mlp.fc1.weight"],
            hint="only OpenCLIP's 'linear' and 'mlp' ConvNeXt heads are supported",
        )
    name = timm_model_name or convnext.TIMM_CONVNEXT.get((depths, dims))
    eps = norm_eps if norm_eps is not None else convnext.TIMM_NORM_EPS.get(name or "", 1e-6)
    return ConvNeXtConfig(
        image_size=image_size,
        depths=depths,
        dims=dims,
        patch_size=stem[-1],
        kernel_size=dw[-1],
        mlp_ratio=fc1[0] / dims[0],
        norm_eps=eps,
        head=head,
        head_bias=head_bias,
    )


def _image_tower_kind(state_dict: Mapping[str, Any]) -> str | None:
    if "visual.trunk.stem.0.weight" in state_dict or any(
        k.startswith("visual.trunk.") for k in state_dict
    ):
        return "convnext"
    if any(k.startswith("visual.layer1.") for k in state_dict) or (
        "visual.attnpool.positional_embedding" in state_dict
    ):
        return "resnet"
    if any(k.startswith("visual.transformer.") for k in state_dict) or "visual.proj" in state_dict:
        return "vit"
    return None


def infer_openai_config(
    state_dict: Mapping[str, Any],
    *,
    act: str = "quick_gelu",
    head_width: int = 64,
    vision_heads: int | None = None,
    text_heads: int | None = None,
    image_size: int | None = None,
    source: str = "state dict",
) -> CLIPConfig:
    """Reads a CLIP architecture from OpenAI / OpenCLIP parameter shapes (like `build_model`).

    The image tower is a ViT (`visual.transformer.*`), a ModifiedResNet (`visual.layer1.*`,
    `infer_resnet_config`) or an OpenCLIP timm ConvNeXt (`visual.trunk.*`,
    `infer_convnext_config`). Heads are not stored in the weights: OpenAI and OpenCLIP use
    width // 64 (`head_width`; the ResNet pool: width * 32 // 64); pass `vision_heads` /
    `text_heads` for models that differ. The activation is not stored either: OpenAI models and
    OpenCLIP `*-quickgelu` models use "quick_gelu", the other OpenCLIP models "gelu" (it applies
    to the text tower and a ViT image tower; ResNets use ReLU, ConvNeXts GELU). `image_size` is
    only needed for ConvNeXt (its weights do not fix it; default 224).

    Raises:
      CheckpointError: if a key needed to read the architecture is missing.
    """
    text_keys = [
        "token_embedding.weight",
        "positional_embedding",
        "ln_final.weight",
        "text_projection",
        "transformer.resblocks.0.mlp.c_fc.weight",
    ]
    kind = _image_tower_kind(state_dict)
    if kind is None:
        hint = (
            "No known image tower: expected visual.transformer.* (ViT), visual.layer1.* "
            "(ResNet) or visual.trunk.* (ConvNeXt)"
        )
        if any(k.startswith(("vision_model.", "text_model.")) for k in state_dict):
            hint = "It looks like a transformers CLIPModel state dict: load its folder instead"
        missing = ["visual.conv1.weight", "visual.proj"]
        missing += [k for k in text_keys if k not in state_dict]
        raise checkpoint_error(source, missing=missing, hint=hint)
    if kind == "vit":
        needed = [
            "visual.conv1.weight",
            "visual.positional_embedding",
            "visual.proj",
            "visual.transformer.resblocks.0.mlp.c_fc.weight",
        ]
        _require(state_dict, needed, source, "")
        v_width, _, patch, _ = _shape(state_dict, "visual.conv1.weight")
        grid = round((_shape(state_dict, "visual.positional_embedding")[0] - 1) ** 0.5)
        vision: VisionConfig | ResNetConfig | ConvNeXtConfig = VisionConfig(
            image_size=patch * grid,
            patch_size=patch,
            width=v_width,
            layers=_count_blocks(state_dict, "visual.transformer"),
            heads=vision_heads or max(1, v_width // head_width),
            mlp_dim=_shape(state_dict, "visual.transformer.resblocks.0.mlp.c_fc.weight")[0],
            act=act,
        )
    elif kind == "resnet":
        vision = infer_resnet_config(
            state_dict, head_width=head_width, heads=vision_heads, source=source
        )
    else:
        vision = infer_convnext_config(state_dict, image_size=image_size or 224, source=source)
    missing = [k for k in text_keys if k not in state_dict]
    if missing:
        tower = {"vit": "ViT", "resnet": "ResNet", "convnext": "ConvNeXt"}[kind]
        hint = f"Found a {tower} image tower but not the text tower OpenAI / OpenCLIP CLIP has"
        if any(k.startswith("text.") for k in state_dict):
            hint += (
                "; its text tower is under 'text.' (an OpenCLIP CustomTextCLIP), which is not "
                "supported"
            )
        raise checkpoint_error(source, missing=missing, hint=hint)
    t_width = _shape(state_dict, "ln_final.weight")[0]
    vocab = _shape(state_dict, "token_embedding.weight")[0]
    text = TextConfig(
        vocab_size=vocab,
        context_length=_shape(state_dict, "positional_embedding")[0],
        width=t_width,
        layers=_count_blocks(state_dict, "transformer"),
        heads=text_heads or max(1, t_width // head_width),
        mlp_dim=_shape(state_dict, "transformer.resblocks.0.mlp.c_fc.weight")[0],
        act=act,
        # OpenAI's vocabulary ends with <|startoftext|>, <|endoftext|>; its model pools at
        # argmax(ids), i.e. at the EOS, the largest id. We pad with EOS, as transformers does.
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    return CLIPConfig(vision, text, projection_dim=_shape(state_dict, "text_projection")[1])


def unwrap_state_dict(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Unwraps {"state_dict": ...} training checkpoints and drops a DDP "module." prefix."""
    sd = dict(state_dict)
    if "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = dict(sd["state_dict"])
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _openai_shapes(config: CLIPConfig) -> dict[str, tuple[int, ...]]:
    """OpenAI / OpenCLIP name -> expected shape."""
    want = expected_shapes(config)
    theirs: dict[str, tuple[int, ...]] = {}
    for p, (name, third) in _openai_sources(config).items():
        s = want[p]
        if third is not None:
            theirs[name] = (3 * s[0],) if len(s) == 1 else (3 * s[1], s[0])
        elif p in _PLAIN_MATRICES:
            theirs[name] = s
        else:
            theirs[name] = _torch_shape(p, s)
    return theirs


def openai_to_params(
    state_dict: Mapping[str, Any],
    config: CLIPConfig | None = None,
    *,
    act: str = "quick_gelu",
    source: str = "state dict",
) -> tuple[CLIPConfig, Params]:
    """OpenAI / OpenCLIP state dict (numpy arrays) -> (config, our float32 tree).

    Args:
      state_dict: name -> array, e.g. from `safetensors.numpy.load_file`.
      config: the architecture; inferred from the shapes when None (`infer_openai_config`).
      act: MLP activation used when inferring ("quick_gelu" for OpenAI weights).
      source: how to name the checkpoint in errors.

    Raises:
      CheckpointError: naming missing, unexpected and wrong-shape parameters (OpenAI names).
    """
    sd = unwrap_state_dict(state_dict)
    if "logit_scale" in sd and np.shape(sd["logit_scale"]) == (1,):  # nonscalar_logit_scale
        sd["logit_scale"] = np.reshape(sd["logit_scale"], ())
    if config is None:
        config = infer_openai_config(sd, act=act, source=source)
    sources = _openai_sources(config)
    theirs = _openai_shapes(config)
    missing = [n for n in theirs if n not in sd]
    unexpected = [n for n in sd if n not in theirs and not _OPENAI_IGNORED.match(n)]
    wrong = [
        (n, e, tuple(np.shape(sd[n])))
        for n, e in theirs.items()
        if n in sd and tuple(np.shape(sd[n])) != e
    ]
    if missing or unexpected or wrong:
        raise checkpoint_error(source, missing, unexpected, wrong)
    flat: dict[Path, np.ndarray] = {}
    for p, (name, third) in sources.items():
        x = _as_float32(sd[name])
        if third is not None:
            x = np.split(x, 3, axis=0)[third]
        if p[-1] == "kernel" and p not in _PLAIN_MATRICES:
            x = _from_torch(p, x)
        flat[p] = _contiguous(x)
    return config, unflatten(flat)


def params_to_openai(params: Mapping[str, Any], config: CLIPConfig) -> dict[str, np.ndarray]:
    """Our tree -> OpenAI / OpenCLIP state dict (float32, contiguous; `openai_to_params`'s inverse).

    The q, k, v projections of each transformer block are fused back into `in_proj_*`; the
    result loads into OpenAI's `clip/model.py` CLIP and OpenCLIP's `CLIP` with strict=True.
    """
    if set(params) == {"params"}:
        params = params["params"]
    flat = {p: _as_float32(x) for p, x in check_and_flatten(params, config).items()}
    out: dict[str, list[np.ndarray | None] | np.ndarray] = {}
    for p, (name, third) in _openai_sources(config).items():
        x = flat[p]
        if p[-1] == "kernel" and p not in _PLAIN_MATRICES:
            x = _to_torch(p, x)
        if third is None:
            out[name] = x
        else:
            parts = out.setdefault(name, [None, None, None])
            parts[third] = x  # type: ignore[index]
    return {
        n: _contiguous(np.concatenate(v, axis=0) if isinstance(v, list) else v)
        for n, v in out.items()
    }


def check_and_flatten(params: Mapping[str, Any], config: CLIPConfig) -> dict[Path, Any]:
    """check_params, flattened."""
    return flatten(check_params(params, config))


def map_tree(fn: Callable[[np.ndarray], Any], params: Mapping[str, Any]) -> Params:
    """Applies fn to every leaf of a nested dict."""
    return unflatten({p: fn(x) for p, x in flatten(params).items()})
