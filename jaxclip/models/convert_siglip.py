"""SigLIP checkpoint formats <-> the Flax `Siglip` parameter tree (pure numpy; no torch).

Two formats meet our tree (`jaxclip.models.siglip`, the transformers names nested):

* transformers PyTorch (`SiglipModel.state_dict()`, `model.safetensors`): our paths joined by
  dots with PyTorch's conventions (Linear `weight` = kernelᵀ, patch conv OIHW, LayerNorm
  `weight` = scale, Embedding `weight` = embedding), except the MAP head's attention, a torch
  `nn.MultiheadAttention` whose q, k, v are fused into `head.attention.in_proj_weight` (3W, W)
  and `in_proj_bias` (3W,) in that order, and `logit_scale` / `logit_bias` of shape (1,).
  Both ways (`hf_torch_to_params`, `params_to_hf_torch`).
* big_vision `.npz` (the released SigLIP checkpoints; `big_vision/models/proj/image_text/
  two_towers.py` with the `vit` image model (pool_type "map") and `text_transformer`):
      params/img/embedding/{kernel (P, P, 3, W), bias}; params/img/pos_embedding (1, N, W)
      params/img/Transformer/encoderblock_<i>/{LayerNorm_0, LayerNorm_1}/{scale, bias}
          .../MultiHeadDotProductAttention_0/{query, key, value}/{kernel (W, H, W/H), bias (H, W/H)}
          .../MultiHeadDotProductAttention_0/out/{kernel (H, W/H, W), bias (W,)}
          .../MlpBlock_0/{Dense_0, Dense_1}/{kernel, bias}
      params/img/Transformer/encoder_norm/{scale, bias}
      params/img/MAPHead_0/{probe (1, 1, W), MultiHeadDotProductAttention_0/..., LayerNorm_0,
          MlpBlock_0/...}
      params/txt/Embed_0/embedding; params/txt/pos_embedding (1, L, W)
      params/txt/Encoder_0/encoderblock_<i>/... (as above); params/txt/Encoder_0/encoder_norm
      params/txt/head/{kernel, bias};  params/t (1,) = log t;  params/b (1,)
  A scanned checkpoint (`encoderblock/...` with a leading layer axis) is split per layer.
  One way (`big_vision_to_params`); `params_to_big_vision` writes the same layout (used by the
  tests to build a checkpoint from random arrays).

A checkpoint that does not fit raises one `CheckpointError` naming every problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxclip.models.convert import (
    _as_float32,
    _contiguous,
    _tower_layer_shapes,
    checkpoint_error,
    flatten,
    unflatten,
)
from jaxclip.models.variants import SiglipConfig

Params = dict[str, Any]
Path = tuple[str, ...]

_HF_IGNORED = re.compile(r"^(text_model|vision_model)\.embeddings\.position_ids$")
_FUSED = ("q_proj", "k_proj", "v_proj")


def expected_shapes(config: SiglipConfig) -> dict[Path, tuple[int, ...]]:
    """Flattened path -> shape of every parameter `Siglip(config).init` creates."""
    v, t = config.vision, config.text
    w, p = v.width, v.patch_size
    shapes: dict[Path, tuple[int, ...]] = {
        ("logit_scale",): (),
        ("logit_bias",): (),
        ("vision_model", "embeddings", "patch_embedding", "kernel"): (p, p, 3, w),
        ("vision_model", "embeddings", "patch_embedding", "bias"): (w,),
        ("vision_model", "embeddings", "position_embedding", "embedding"): (v.num_patches, w),
        ("vision_model", "post_layernorm", "scale"): (w,),
        ("vision_model", "post_layernorm", "bias"): (w,),
        ("vision_model", "head", "probe"): (1, 1, w),
        ("vision_model", "head", "layernorm", "scale"): (w,),
        ("vision_model", "head", "layernorm", "bias"): (w,),
        ("vision_model", "head", "mlp", "fc1", "kernel"): (w, v.mlp_dim),
        ("vision_model", "head", "mlp", "fc1", "bias"): (v.mlp_dim,),
        ("vision_model", "head", "mlp", "fc2", "kernel"): (v.mlp_dim, w),
        ("vision_model", "head", "mlp", "fc2", "bias"): (w,),
        ("text_model", "embeddings", "token_embedding", "embedding"): (t.vocab_size, t.width),
        ("text_model", "embeddings", "position_embedding", "embedding"): (
            t.context_length,
            t.width,
        ),
        ("text_model", "final_layer_norm", "scale"): (t.width,),
        ("text_model", "final_layer_norm", "bias"): (t.width,),
        ("text_model", "head", "kernel"): (t.width, config.projection_dim),
        ("text_model", "head", "bias"): (config.projection_dim,),
    }
    for proj in (*_FUSED, "out_proj"):
        shapes[("vision_model", "head", "attention", proj, "kernel")] = (w, w)
        shapes[("vision_model", "head", "attention", proj, "bias")] = (w,)
    for k, s in _tower_layer_shapes(v).items():
        shapes[("vision_model", *k)] = s
    for k, s in _tower_layer_shapes(t).items():
        shapes[("text_model", *k)] = s
    return shapes


def _check_tree(
    flat: Mapping[Path, Any], want: Mapping[Path, tuple[int, ...]], source: str
) -> None:
    missing = ["/".join(p) for p in want if p not in flat]
    unexpected = ["/".join(p) for p in flat if p not in want]
    wrong = [
        ("/".join(p), want[p], np.shape(flat[p]))
        for p in want
        if p in flat and tuple(np.shape(flat[p])) != want[p]
    ]
    if missing or unexpected or wrong:
        raise checkpoint_error(source, missing, unexpected, wrong, "SigLIP layout")


def check_params(params: Mapping[str, Any], config: SiglipConfig, source: str = "params") -> Params:
    """Validates a tree in our SigLIP layout; returns it as float32 numpy.

    Raises:
      CheckpointError: naming missing, unexpected and wrong-shape parameters.
    """
    if set(params) == {"params"}:
        params = params["params"]
    flat = flatten(params)
    want = expected_shapes(config)
    _check_tree(flat, want, source)
    return unflatten({p: _as_float32(flat[p]) for p in want})


# --- transformers PyTorch ----------------------------------------------------------------------


def _is_fused(path: Path) -> bool:
    return path[:3] == ("vision_model", "head", "attention") and path[3] in _FUSED


def _hf_name(path: Path) -> str:
    last = {"scale": "weight", "embedding": "weight", "kernel": "weight"}.get(path[-1], path[-1])
    return ".".join((*path[:-1], last))


def _to_torch(path: Path, x: np.ndarray) -> np.ndarray:
    if path[-1] == "kernel":
        return x.transpose(3, 2, 0, 1) if x.ndim == 4 else x.T
    if path in (("logit_scale",), ("logit_bias",)):
        return x.reshape(1)
    return x


def _torch_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
    if path[-1] == "kernel":
        return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape[::-1]
    if path in (("logit_scale",), ("logit_bias",)):
        return (1,)
    return shape


def _hf_layout(config: SiglipConfig) -> dict[str, tuple[int, ...]]:
    """transformers name -> torch shape of every SiglipModel parameter."""
    w = config.vision.width
    out = {
        _hf_name(p): _torch_shape(p, s)
        for p, s in expected_shapes(config).items()
        if not _is_fused(p)
    }
    out["vision_model.head.attention.in_proj_weight"] = (3 * w, w)
    out["vision_model.head.attention.in_proj_bias"] = (3 * w,)
    return out


def hf_torch_to_params(
    state_dict: Mapping[str, Any], config: SiglipConfig, source: str = "state dict"
) -> Params:
    """transformers `SiglipModel` state dict (numpy arrays) -> our float32 tree.

    Raises:
      CheckpointError: naming missing, unexpected and wrong-shape parameters (HF names).
    """
    layout = _hf_layout(config)
    missing = [n for n in layout if n not in state_dict]
    unexpected = [n for n in state_dict if n not in layout and not _HF_IGNORED.match(n)]
    wrong = [
        (n, s, tuple(np.shape(state_dict[n])))
        for n, s in layout.items()
        if n in state_dict and tuple(np.shape(state_dict[n])) != s
    ]
    if missing or unexpected or wrong:
        raise checkpoint_error(source, missing, unexpected, wrong, "transformers SiglipModel")
    flat: dict[Path, np.ndarray] = {}
    head = ("vision_model", "head", "attention")
    w_in = _as_float32(state_dict["vision_model.head.attention.in_proj_weight"])
    b_in = _as_float32(state_dict["vision_model.head.attention.in_proj_bias"])
    for i, proj in enumerate(_FUSED):
        flat[(*head, proj, "kernel")] = np.split(w_in, 3, axis=0)[i].T
        flat[(*head, proj, "bias")] = np.split(b_in, 3)[i]
    for p, s in expected_shapes(config).items():
        if _is_fused(p):
            continue
        x = _as_float32(state_dict[_hf_name(p)])
        if p[-1] == "kernel":
            x = x.transpose(2, 3, 1, 0) if x.ndim == 4 else x.T
        flat[p] = x.reshape(s)
    return unflatten({p: _contiguous(x) for p, x in flat.items()})


def params_to_hf_torch(params: Mapping[str, Any], config: SiglipConfig) -> dict[str, np.ndarray]:
    """Our tree -> transformers `SiglipModel` state dict (float32, contiguous numpy arrays)."""
    flat = flatten(check_params(params, config))
    out = {_hf_name(p): _contiguous(_to_torch(p, x)) for p, x in flat.items() if not _is_fused(p)}
    head = ("vision_model", "head", "attention")
    out["vision_model.head.attention.in_proj_weight"] = _contiguous(
        np.concatenate([flat[(*head, q, "kernel")].T for q in _FUSED], axis=0)
    )
    out["vision_model.head.attention.in_proj_bias"] = _contiguous(
        np.concatenate([flat[(*head, q, "bias")] for q in _FUSED])
    )
    return out


# --- big_vision .npz ----------------------------------------------------------------------------

_BV_ATTN = {"q_proj": "query", "k_proj": "key", "v_proj": "value", "out_proj": "out"}
_BV_LAYER = {
    ("layer_norm1",): "LayerNorm_0",
    ("layer_norm2",): "LayerNorm_1",
    ("mlp", "fc1"): "MlpBlock_0/Dense_0",
    ("mlp", "fc2"): "MlpBlock_0/Dense_1",
}


def _bv_block_name(inner: Path) -> str:
    """Our path inside one block or the MAP head -> big_vision name (no prefix)."""
    if inner[0] in ("self_attn", "attention"):
        return f"MultiHeadDotProductAttention_0/{_BV_ATTN[inner[1]]}/{inner[2]}"
    if inner[0] == "layernorm":
        return f"LayerNorm_0/{inner[1]}"
    for ours, theirs in _BV_LAYER.items():
        if inner[: len(ours)] == ours:
            return f"{theirs}/{inner[len(ours)]}"
    raise KeyError(inner)  # pragma: no cover - every path is listed above


def _bv_name(path: Path) -> str:
    """Our path -> big_vision flat npz key."""
    top = {
        ("logit_scale",): "t",
        ("logit_bias",): "b",
        ("vision_model", "embeddings", "patch_embedding", "kernel"): "img/embedding/kernel",
        ("vision_model", "embeddings", "patch_embedding", "bias"): "img/embedding/bias",
        ("vision_model", "embeddings", "position_embedding", "embedding"): "img/pos_embedding",
        ("vision_model", "post_layernorm", "scale"): "img/Transformer/encoder_norm/scale",
        ("vision_model", "post_layernorm", "bias"): "img/Transformer/encoder_norm/bias",
        ("vision_model", "head", "probe"): "img/MAPHead_0/probe",
        ("text_model", "embeddings", "token_embedding", "embedding"): "txt/Embed_0/embedding",
        ("text_model", "embeddings", "position_embedding", "embedding"): "txt/pos_embedding",
        ("text_model", "final_layer_norm", "scale"): "txt/Encoder_0/encoder_norm/scale",
        ("text_model", "final_layer_norm", "bias"): "txt/Encoder_0/encoder_norm/bias",
        ("text_model", "head", "kernel"): "txt/head/kernel",
        ("text_model", "head", "bias"): "txt/head/bias",
    }
    if path in top:
        return "params/" + top[path]
    if path[:2] == ("vision_model", "head"):
        return "params/img/MAPHead_0/" + _bv_block_name(path[2:])
    tower, stack = {"vision_model": ("img", "Transformer"), "text_model": ("txt", "Encoder_0")}[
        path[0]
    ]
    assert path[1:3] == ("encoder", "layers"), path
    return f"params/{tower}/{stack}/encoderblock_{path[3]}/{_bv_block_name(path[4:])}"


def _bv_shape(path: Path, shape: tuple[int, ...], heads: int) -> tuple[int, ...]:
    """big_vision's shape of our parameter `path` of shape `shape`."""
    if path in (("logit_scale",), ("logit_bias",)):
        return (1,)
    if path[-2] == "position_embedding":
        return (1, *shape)
    in_attn = len(path) >= 3 and path[-3] in ("self_attn", "attention")
    if in_attn:
        proj, leaf = path[-2], path[-1]
        if proj == "out_proj":
            return (heads, shape[0] // heads, shape[1]) if leaf == "kernel" else shape
        if leaf == "kernel":
            return (shape[0], heads, shape[1] // heads)
        return (heads, shape[0] // heads)
    return shape


def _heads_of(path: Path, config: SiglipConfig) -> int:
    return config.vision.heads if path[0] == "vision_model" else config.text.heads


def _unscan(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Splits scanned `encoderblock/...` arrays (leading layer axis) into `encoderblock_<i>/...`."""
    out = {}
    for k, v in flat.items():
        m = re.match(r"^(.*)/encoderblock/(.*)$", k)
        if m is None:
            out[k] = v
            continue
        for i in range(np.shape(v)[0]):
            out[f"{m.group(1)}/encoderblock_{i}/{m.group(2)}"] = np.asarray(v)[i]
    return out


def big_vision_to_params(
    arrays: Mapping[str, Any], config: SiglipConfig, source: str = "big_vision npz"
) -> Params:
    """A big_vision SigLIP checkpoint (flat npz keys, "params/" prefix optional) -> our tree.

    Raises:
      CheckpointError: naming missing, unexpected and wrong-shape arrays (big_vision names).
    """
    flat = {(k if k.startswith("params/") else "params/" + k): v for k, v in arrays.items()}
    flat = _unscan(flat)
    want = expected_shapes(config)
    names = {_bv_name(p): p for p in want}
    missing = [n for n in names if n not in flat]
    unexpected = [n for n in flat if n not in names]
    wrong = []
    for n, p in names.items():
        if n in flat:
            exp = _bv_shape(p, want[p], _heads_of(p, config))
            if tuple(np.shape(flat[n])) != exp:
                wrong.append((n, exp, tuple(np.shape(flat[n]))))
    if missing or unexpected or wrong:
        hint = "big_vision SigLIP (two_towers, vit with pool_type 'map', text_transformer)"
        if any(n.startswith("params/img/head/") for n in unexpected):
            hint += "; this image tower has a head after the pooling, which SigLIP has not"
        raise checkpoint_error(source, missing, unexpected, wrong, hint)
    return unflatten(
        {p: _contiguous(_as_float32(flat[n]).reshape(want[p])) for n, p in names.items()}
    )


def params_to_big_vision(params: Mapping[str, Any], config: SiglipConfig) -> dict[str, np.ndarray]:
    """Our tree -> big_vision npz arrays ("params/..." keys, unscanned blocks)."""
    flat = flatten(check_params(params, config))
    return {
        _bv_name(p): _contiguous(x.reshape(_bv_shape(p, x.shape, _heads_of(p, config))))
        for p, x in flat.items()
    }


def infer_config(arrays: Mapping[str, Any], source: str = "big_vision npz") -> SiglipConfig:
    """The SigLIP architecture read from a big_vision checkpoint's shapes.

    Widths, depths, heads (the attention kernels are (W, H, W/H)), MLP sizes, the vocabulary,
    the text length and the patch size are all in the shapes; the image size is taken as
    patch_size · sqrt(num_patches), which is exact unless the checkpoint's resolution is not a
    multiple of its patch (So400m/14 at 384 px reads as 378: put its transformers config.json
    beside the .npz). Activation (tanh GELU) and LayerNorm eps (1e-6) are big_vision's.
    """
    from jaxclip.models.variants import TextConfig, VisionConfig

    flat = _unscan(
        {(k if k.startswith("params/") else "params/" + k): v for k, v in arrays.items()}
    )
    need = [
        "params/img/embedding/kernel",
        "params/img/pos_embedding",
        "params/txt/Embed_0/embedding",
        "params/txt/pos_embedding",
        "params/txt/head/kernel",
    ]
    missing = [k for k in need if k not in flat]
    if missing:
        raise checkpoint_error(source, missing, hint="not a big_vision SigLIP checkpoint")

    def tower(prefix: str) -> dict[str, int]:
        blocks = {
            int(m.group(1)) for k in flat if (m := re.match(rf"^{prefix}/encoderblock_(\d+)/", k))
        }
        q = np.shape(flat[f"{prefix}/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"])
        mlp = np.shape(flat[f"{prefix}/encoderblock_0/MlpBlock_0/Dense_0/kernel"])[1]
        return dict(width=q[0], heads=q[1], layers=len(blocks), mlp_dim=mlp)

    p = np.shape(flat["params/img/embedding/kernel"])[0]
    n = np.shape(flat["params/img/pos_embedding"])[1]
    grid = round(float(np.sqrt(n)))
    if grid * grid != n:
        raise checkpoint_error(
            source, hint=f"params/img/pos_embedding has {n} positions, not a square grid"
        )
    common = dict(act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    vision = VisionConfig(
        image_size=grid * p, patch_size=p, **tower("params/img/Transformer"), **common
    )
    vocab, _ = np.shape(flat["params/txt/Embed_0/embedding"])
    length = np.shape(flat["params/txt/pos_embedding"])[1]
    # SigLIP's c4_en SentencePiece (32000) pads with </s> = 1; SigLIP 2's Gemma pads with 0.
    pad = 0 if vocab == 256000 else 1
    text = TextConfig(
        vocab_size=vocab,
        context_length=length,
        **tower("params/txt/Encoder_0"),
        **common,
        bos_token_id=pad,
        eos_token_id=1,
        pad_token_id=pad,
        pool_type="last",
        causal=False,
    )
    proj = np.shape(flat["params/txt/head/kernel"])[1]
    return SiglipConfig(vision, text, projection_dim=int(proj))
