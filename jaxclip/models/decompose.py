"""Exact residual-stream decomposition of a ViT image embedding into heads, MLPs and the rest.

Gandelsman, Efros and Steinhardt, "Interpreting CLIP's Image Representation via Text-Based
Decomposition" (ICLR 2024). A pre-LayerNorm ViT's class token after L blocks is a sum:

    r = x0 + sum_l attn_l + sum_l mlp_l,        x0 = LN_pre(embeddings)[class token]
    attn_l = sum_h sum_t A_lh[0, t] v_lh[t] W_o[h rows] + b_o      (class-token row only)

and the image embedding is LN_post(r) @ P. With the sample's own statistics
mu(r), sigma(r) = sqrt(var(r) + eps), the final LayerNorm is linear in r:

    LN_post(r) = gamma * (r - mu(r)) / sigma(r) + beta
               = sum_c gamma * (c - mean(c)) / sigma(r) + beta      (mean over the width)

so each component c contributes `(gamma * (c - mean(c)) / sigma(r)) @ P` and `bias = beta @ P`.
`decompose_vit` re-runs the blocks from the same parameter tree as `jaxclip.models.clip.CLIP`
(Hugging Face Flax layout) and returns those direct contributions: each head summed over
tokens (`heads`), each MLP (`mlps`), the embedding path x0 (`embed`) and `bias`, whose sum is the
model's `encode_image` output. Each layer's out-projection bias is split equally over its H heads
(and over the T tokens in `token_scores`), as the reference code `clip_text_span` does.

Per-token contributions projected on K given directions (`token_scores`, (N, L, H, T, K)) are
computed as v_lh[t] @ (W_o[h rows] @ M) with M = diag(gamma) (I - 11^T / W) P U^T (W, K), so
(N, L, H, T, D) is never formed. Everything is computed in float32.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxclip.models.clip import _activation, patch_matmul
from jaxclip.models.variants import CLIPConfig, VisionConfig

FIELDS = ("heads", "mlps", "embed", "token_scores")


@dataclasses.dataclass(frozen=True)
class Decomposition:
    """Direct contributions to raw image embeddings (numpy float32).

    Attributes:
      heads: (N, L, H, D) each attention head, summed over tokens, through LN_post and P.
      mlps: (N, L, D) each MLP at the class token, through LN_post and P.
      embed: (N, D) the class + position embedding path (LN_pre output at the class token).
      bias: (D,) the final LayerNorm's beta projected by P (the same for every image).
      token_scores: (N, L, H, T, K) per-token head contributions dotted with the given
        directions (T includes the class token at 0), or None when no directions were given.
      cls_states: (N, L + 1, W) the residual stream at the class token after the pre-LayerNorm
        and after each block (the ViT's hidden states, for layer-wise probes).
      patch_means: (N, L + 1, W) the same states averaged over the patch tokens.
    """

    heads: np.ndarray
    mlps: np.ndarray
    embed: np.ndarray
    bias: np.ndarray
    token_scores: np.ndarray | None = None
    cls_states: np.ndarray | None = None
    patch_means: np.ndarray | None = None

    def total(self) -> np.ndarray:
        """(N, D) heads + MLPs + embed + bias: the raw image embeddings."""
        return self.heads.sum((1, 2)) + self.mlps.sum(1) + self.embed + self.bias


def _vision_config(config: CLIPConfig | VisionConfig) -> VisionConfig:
    vision = config.vision if isinstance(config, CLIPConfig) else config
    if not isinstance(vision, VisionConfig):
        raise ValueError(
            f"decomposition needs a ViT image tower; this model's is {type(vision).__name__} "
            "(ResNet / ConvNeXt towers are not decomposed)"
        )
    return vision


def _stats(x: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """LayerNorm mean and sigma over the last axis, as flax computes them (E[x^2] - E[x]^2)."""
    mu = x.mean(-1, keepdims=True)
    var = jnp.maximum(0.0, (x * x).mean(-1, keepdims=True) - mu * mu)
    return mu, jnp.sqrt(var + eps)


def _ln(x: jax.Array, p: Mapping[str, jax.Array], eps: float) -> jax.Array:
    mu, sigma = _stats(x, eps)
    return (x - mu) / sigma * p["scale"] + p["bias"]


def _dense(x: jax.Array, p: Mapping[str, jax.Array]) -> jax.Array:
    return x @ p["kernel"] + p["bias"]


def decompose_vit(
    params: Mapping[str, Any],
    config: CLIPConfig | VisionConfig,
    pixels: jax.Array,
    directions: jax.Array | None = None,
) -> dict[str, jax.Array]:
    """The decomposition of a batch as a dict of arrays (jittable; see the module docstring).

    Args:
      params: the CLIP parameter tree (HF Flax layout: `vision_model`, `visual_projection`).
      config: the model's `CLIPConfig` (or its `VisionConfig`).
      pixels: float (N, S, S, 3) normalised NHWC pixels.
      directions: optional (K, D) matrix; per-token scores are contributions dotted with its rows.

    Returns:
      {"heads": (N, L, H, D), "mlps": (N, L, D), "embed": (N, D), "bias": (D,),
      "cls_states", "patch_means": (N, L + 1, W) [, "token_scores": (N, L, H, T, K)]}, float32.
    """
    cfg = _vision_config(config)
    if set(params) == {"params"}:
        params = params["params"]
    vm = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params["vision_model"])
    proj = jnp.asarray(params["visual_projection"]["kernel"], jnp.float32)
    eps = cfg.layer_norm_eps
    s, w, nh = cfg.image_size, cfg.width, cfg.heads
    hd = w // nh
    if pixels.ndim != 4 or pixels.shape[1:] != (s, s, 3):
        raise ValueError(f"pixels must be (N, {s}, {s}, 3) NHWC; got shape {pixels.shape}")
    pixels = pixels.astype(jnp.float32)
    n = pixels.shape[0]
    emb = vm["embeddings"]
    patches = patch_matmul(pixels, emb["patch_embedding"]["kernel"])
    cls = jnp.broadcast_to(emb["class_embedding"], (n, 1, w))
    x = jnp.concatenate([cls, patches], 1) + emb["position_embedding"]["embedding"][None]
    x = _ln(x, vm["pre_layrnorm"], eps)
    t = x.shape[1]
    x0 = x[:, 0]
    states = [x]
    heads, mlps, per_token = [], [], []  # raw (pre-LN) class-token components
    layers = vm["encoder"]["layers"]
    for i in range(cfg.layers):
        p = layers[str(i)]
        at = p["self_attn"]
        h = _ln(x, p["layer_norm1"], eps)
        q = _dense(h, at["q_proj"]).reshape(n, t, nh, hd)
        k = _dense(h, at["k_proj"]).reshape(n, t, nh, hd)
        v = _dense(h, at["v_proj"]).reshape(n, t, nh, hd)
        a = jax.nn.softmax(jnp.einsum("nqhd,nkhd->nhqk", q, k) * hd**-0.5, axis=-1)
        z = jnp.einsum("nhqk,nkhd->nqhd", a, v)
        wo = at["out_proj"]["kernel"].reshape(nh, hd, w)
        bo = at["out_proj"]["bias"]
        x = x + z.reshape(n, t, w) @ at["out_proj"]["kernel"] + bo
        heads.append(jnp.einsum("nhd,hdw->nhw", z[:, 0], wo) + bo / nh)
        per_token.append((a[:, :, 0], v, wo, bo))
        m = _dense(
            _activation(cfg.act)(_dense(_ln(x, p["layer_norm2"], eps), p["mlp"]["fc1"])),
            p["mlp"]["fc2"],
        )
        x = x + m
        mlps.append(m[:, 0])
        states.append(x)
    post = vm["post_layernorm"]
    _, sigma = _stats(x[:, 0], eps)  # (N, 1)
    gamma = post["scale"]

    def through(c: jax.Array) -> jax.Array:  # c (N, ..., W) -> (N, ..., D)
        sig = sigma.reshape((n,) + (1,) * (c.ndim - 1))
        return (gamma * (c - c.mean(-1, keepdims=True)) / sig) @ proj

    out = {
        "heads": through(jnp.stack(heads, 1)),
        "mlps": through(jnp.stack(mlps, 1)),
        "embed": through(x0),
        "bias": post["bias"] @ proj,
        "cls_states": jnp.stack([st[:, 0] for st in states], 1),
        "patch_means": jnp.stack([st[:, 1:].mean(1) for st in states], 1),
    }
    if directions is not None:
        u = jnp.asarray(directions, jnp.float32)
        if u.ndim != 2 or u.shape[1] != proj.shape[1]:
            raise ValueError(f"directions must be (K, {proj.shape[1]}); got shape {u.shape}")
        centre = jnp.eye(w) - 1.0 / w
        mmap = (gamma[:, None] * centre) @ proj @ u.T  # (W, K): c -> (LN-linear part) . u
        scores = []
        for attn0, v, wo, bo in per_token:
            vm_k = jnp.einsum("nthd,hdk->nhtk", v, wo @ mmap)  # (N, H, T, K)
            scores.append(attn0[..., None] * vm_k + (bo @ mmap) / (nh * t))
        out["token_scores"] = jnp.stack(scores, 1) / sigma[:, :, None, None, None]
    return out


@functools.lru_cache(maxsize=16)
def _jitted(
    config: VisionConfig, with_directions: bool, devices: tuple[jax.Device, ...]
) -> tuple[Callable, NamedSharding, NamedSharding]:
    """The jitted decomposition, data-parallel over `devices`: the batch is split over a
    one-axis mesh, parameters (and directions) replicated; every output but `bias` comes back
    split by rows. Returns (fn, replicated sharding, row sharding)."""
    mesh = Mesh(np.asarray(devices), ("data",))
    data = NamedSharding(mesh, PartitionSpec("data"))
    replicated = NamedSharding(mesh, PartitionSpec())
    keys = ("heads", "mlps", "embed", "cls_states", "patch_means")
    keys += ("token_scores",) if with_directions else ()
    out = {"bias": replicated, **{k: data for k in keys}}
    if with_directions:
        fn = jax.jit(
            lambda p, x, u: decompose_vit(p, config, x, u),
            in_shardings=(replicated, data, replicated),
            out_shardings=out,
        )
    else:
        fn = jax.jit(
            lambda p, x: decompose_vit(p, config, x),
            in_shardings=(replicated, data),
            out_shardings=out,
        )
    return fn, replicated, data


def decompose_batched(
    params: Mapping[str, Any],
    config: CLIPConfig | VisionConfig,
    pixels: np.ndarray,
    *,
    directions: np.ndarray | None = None,
    batch_size: int = 64,
    devices: Sequence[jax.Device] | None = None,
) -> Decomposition:
    """`decompose_vit` over fixed-shape batches (the last one zero-padded), jitted once per
    shape and data-parallel over `devices` (default: this process's devices; the batch is
    rounded up to a multiple of their number); returns a `Decomposition` of numpy arrays."""
    cfg = _vision_config(config)
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be positive")
    pixels = np.asarray(pixels, np.float32)
    s = cfg.image_size
    if pixels.ndim != 4 or pixels.shape[1:] != (s, s, 3):
        raise ValueError(f"pixels must be (N, {s}, {s}, 3) NHWC; got shape {pixels.shape}")
    devs = tuple(devices) if devices is not None else tuple(jax.local_devices())
    fn, replicated, data = _jitted(cfg, directions is not None, devs)
    vision_params = jax.device_put(
        {
            "vision_model": params["vision_model"],
            "visual_projection": params["visual_projection"],
        },
        replicated,
    )
    extra = ()
    if directions is not None:
        extra = (jax.device_put(jnp.asarray(directions, jnp.float32), replicated),)
    n = len(pixels)
    b = min(batch_size, max(1, 1 << max(0, (n - 1).bit_length())))
    b = -(-b // len(devs)) * len(devs)
    parts: dict[str, list[np.ndarray]] = {}
    bias = None
    for start in range(0, max(n, 1), b):
        chunk = pixels[start : start + b]
        real = len(chunk)
        if real < b:
            chunk = np.concatenate([chunk, np.zeros((b - real, s, s, 3), np.float32)])
        out = jax.device_get(fn(vision_params, jax.device_put(chunk, data), *extra))
        bias = np.asarray(out.pop("bias"))
        for key, value in out.items():
            parts.setdefault(key, []).append(np.asarray(value)[:real])
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return Decomposition(bias=bias, **arrays)
