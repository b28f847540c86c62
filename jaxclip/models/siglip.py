"""SigLIP and SigLIP 2 (fixed resolution) in Flax linen, beside the CLIP of `jaxclip.models.clip`.

Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training"; Tschannen et al. 2025,
"SigLIP 2" (its fixed-resolution checkpoints have the same architecture; NaFlex is not covered).
The transformer blocks are CLIP's (`clip.Encoder`: pre-LN, biased q/k/v/out, fc1-act-fc2); the
towers differ from CLIP as follows.

Image tower (big_vision `vit.py` with pool_type "map"):
    x = conv_PxP(pixels) + b_conv + position_embedding      (no class token, no pre-LayerNorm)
    x = blocks(x);  x = LayerNorm_post(x)                   (every token)
    MAP head: h = MHA(query = learned probe (1, 1, W), keys = values = x)   (one token)
              h = h + MLP(LayerNorm(h));  image_embed = h[:, 0]      (size W, no projection)
Text tower:
    x = token_embedding[ids] + position_embedding;  blocks without a causal mask and without an
    attention mask (the padding is attended to, as in training);  x = LayerNorm_final(x)
    text_embed = x[:, -1] @ W_head + b_head                 (the last position, padding or not)
Logits (the caller): exp(logit_scale) · cos(image, text) + logit_bias.

Parameter tree (the transformers `SiglipModel` names, nested, Flax leaf names):

    vision_model/embeddings/patch_embedding/{kernel (HWIO), bias}
    vision_model/embeddings/position_embedding/embedding            (num_patches, W)
    vision_model/encoder/layers/<i>/...                             (as CLIP)
    vision_model/post_layernorm/{scale,bias}
    vision_model/head/probe                                         (1, 1, W)
    vision_model/head/attention/{q_proj,k_proj,v_proj,out_proj}/{kernel,bias}
    vision_model/head/{layernorm/{scale,bias}, mlp/{fc1,fc2}/{kernel,bias}}
    text_model/embeddings/{token_embedding,position_embedding}/embedding
    text_model/encoder/layers/<i>/...;  text_model/final_layer_norm/{scale,bias}
    text_model/head/{kernel,bias}
    logit_scale, logit_bias                                         (scalars)

transformers fuses the MAP attention's q/k/v into `head.attention.in_proj_weight` (torch's
`nn.MultiheadAttention`); `jaxclip.models.convert_siglip` splits it. Pixels are NHWC floats; the
dtype conventions are CLIP's (float32 LayerNorm statistics and softmax, float32 outputs).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxclip.models.clip import MLP, Encoder, PatchEmbedding, TextEmbeddings, _layer_norm
from jaxclip.models.variants import SiglipConfig, TextConfig, VisionConfig

Dtype = Any


class SiglipVisionEmbeddings(nn.Module):
    """Biased PxP patch conv of the pixels + learned position embedding (no class token)."""

    cfg: VisionConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pixels: jax.Array) -> jax.Array:
        cfg = self.cfg
        p = cfg.patch_size
        x = PatchEmbedding(
            cfg.width,
            p,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.initializers.lecun_normal(),
            name="patch_embedding",
        )(pixels)
        pos = nn.Embed(
            cfg.num_patches,
            cfg.width,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            embedding_init=nn.initializers.normal(cfg.width**-0.5),
            name="position_embedding",
        ).embedding
        return x + pos.astype(self.dtype)[None]


class MAPAttention(nn.Module):
    """Multi-head cross-attention: softmax(q kᵀ / sqrt(d_head)) v with biased projections."""

    width: int
    heads: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, q_in: jax.Array, kv_in: jax.Array) -> jax.Array:
        b, tq, _ = q_in.shape
        tk = kv_in.shape[1]
        hd = self.width // self.heads
        dense = lambda name: nn.Dense(
            self.width,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.initializers.xavier_uniform(),
            name=name,
        )
        q = dense("q_proj")(q_in).reshape(b, tq, self.heads, hd)
        k = dense("k_proj")(kv_in).reshape(b, tk, self.heads, hd)
        v = dense("v_proj")(kv_in).reshape(b, tk, self.heads, hd)
        out = jax.nn.dot_product_attention(q, k, v, scale=hd**-0.5)
        return dense("out_proj")(out.reshape(b, tq, self.width))


class MAPHead(nn.Module):
    """Multi-head attention pooling (Lee et al. 2019 "Set Transformer"; big_vision `MAPHead`).

    h = MHA(probe, x, x);  h = h + MLP(LayerNorm(h));  returns h[:, 0], shape (N, W).
    """

    cfg: VisionConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.cfg
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        probe = self.param(
            "probe", nn.initializers.xavier_uniform(), (1, 1, cfg.width), self.param_dtype
        )
        probe = jnp.broadcast_to(probe.astype(self.dtype), (x.shape[0], 1, cfg.width))
        h = MAPAttention(cfg.width, cfg.heads, name="attention", **kw)(probe, x)
        y = _layer_norm(cfg, name="layernorm", **kw)(h)
        h = h + MLP(cfg.width, cfg.mlp_dim, cfg.act, name="mlp", **kw)(y)
        return h[:, 0]


class SiglipVisionTransformer(nn.Module):
    """SigLIP ViT tower; returns (MAP-pooled embedding (N, W), hidden states)."""

    cfg: VisionConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pixels: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = SiglipVisionEmbeddings(self.cfg, name="embeddings", **kw)(pixels.astype(self.dtype))
        x, states = Encoder(self.cfg, causal=False, name="encoder", **kw)(x)
        x = _layer_norm(self.cfg, name="post_layernorm", **kw)(x)
        return MAPHead(self.cfg, name="head", **kw)(x), states


class SiglipTextTransformer(nn.Module):
    """SigLIP text tower; returns (final-LN state at the last position (N, width),
    head(that state) (N, projection_dim), hidden states)."""

    cfg: TextConfig
    projection_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, input_ids: jax.Array) -> tuple[jax.Array, jax.Array, tuple[jax.Array, ...]]:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = TextEmbeddings(self.cfg, name="embeddings", **kw)(input_ids)
        x, states = Encoder(self.cfg, causal=False, name="encoder", **kw)(x)
        x = _layer_norm(self.cfg, name="final_layer_norm", **kw)(x)
        pooled = x[:, -1]
        head = nn.Dense(
            self.projection_dim, kernel_init=nn.initializers.lecun_normal(), name="head", **kw
        )
        return pooled, head(pooled), states


class Siglip(nn.Module):
    """The SigLIP two-tower model (module docstring: maths and parameter layout).

    The same interface as `jaxclip.models.clip.CLIP` (`encode_image`, `encode_text`,
    `__call__`), plus the `logit_bias` parameter.

    Attributes:
      config: the architecture (`jaxclip.models.variants.SiglipConfig`).
      dtype: compute dtype (jnp.float32 or jnp.bfloat16).
      param_dtype: dtype of the parameters created by `init`.
    """

    config: SiglipConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self):
        cfg = self.config
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        self.vision_model = SiglipVisionTransformer(cfg.vision, **kw)
        self.text_model = SiglipTextTransformer(cfg.text, cfg.projection_dim, **kw)

        def const(value):
            return lambda _, shape, dtype: jnp.full(shape, value, dtype)

        self.logit_scale = self.param(
            "logit_scale", const(cfg.logit_scale_init_value), (), self.param_dtype
        )
        self.logit_bias = self.param(
            "logit_bias", const(cfg.logit_bias_init_value), (), self.param_dtype
        )

    def encode_image(
        self, pixel_values: jax.Array, *, return_hidden: bool = False
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Image embeddings.

        Args:
          pixel_values: float (N, S, S, 3), normalised, S = config.vision.image_size.
          return_hidden: also return "hidden_states": (patch embeddings, each layer's output),
            each (N, num_patches, width), before the post-LayerNorm.

        Returns:
          (N, width) float32 raw embeddings (the MAP head output) and {"pooled": the same
          (SigLIP has no projection after the pooling), ["hidden_states": ...]}.
        """
        s = self.config.vision.image_size
        if pixel_values.ndim != 4 or pixel_values.shape[1:] != (s, s, 3):
            raise ValueError(
                f"pixel_values must be (N, {s}, {s}, 3) NHWC; got shape {pixel_values.shape}"
            )
        pooled, states = self.vision_model(pixel_values)
        embeds = pooled.astype(jnp.float32)
        out: dict[str, Any] = {"pooled": embeds}
        if return_hidden:
            out["hidden_states"] = states
        return embeds, out

    def encode_text(
        self, input_ids: jax.Array, *, return_hidden: bool = False
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Text embeddings.

        Args:
          input_ids: int (N, T), T <= config.text.context_length; SigLIP was trained on rows
            padded to exactly 64 tokens and pools the last position, so other lengths give
            other embeddings.
          return_hidden: also return "hidden_states": (embeddings, each layer's output).

        Returns:
          (N, D) float32 raw embeddings (head of the last position) and {"pooled": (N, width)
          final-LN state at the last position, ["hidden_states": ...]}.
        """
        t_max = self.config.text.context_length
        if input_ids.ndim != 2 or input_ids.shape[1] > t_max:
            raise ValueError(f"input_ids must be (N, T<={t_max}); got shape {input_ids.shape}")
        pooled, embeds, states = self.text_model(input_ids)
        embeds = embeds.astype(jnp.float32)
        out: dict[str, Any] = {"pooled": pooled.astype(jnp.float32)}
        if return_hidden:
            out["hidden_states"] = states
        return embeds, out

    def __call__(self, pixel_values: jax.Array, input_ids: jax.Array) -> dict[str, jax.Array]:
        """Both towers: {"image_embeds", "text_embeds" (raw, float32), "logit_scale",
        "logit_bias"}."""
        image_embeds, _ = self.encode_image(pixel_values)
        text_embeds, _ = self.encode_text(input_ids)
        return {
            "image_embeds": image_embeds,
            "text_embeds": text_embeds,
            "logit_scale": self.logit_scale.astype(jnp.float32),
            "logit_bias": self.logit_bias.astype(jnp.float32),
        }


def siglip_logits(
    image_embeds: jax.Array, text_embeds: jax.Array, logit_scale: jax.Array, logit_bias: jax.Array
) -> jax.Array:
    """(N_img, N_txt) logits exp(logit_scale) · cos + logit_bias (transformers' logits_per_image)."""
    a = image_embeds / jnp.linalg.norm(image_embeds, axis=-1, keepdims=True)
    b = text_embeds / jnp.linalg.norm(text_embeds, axis=-1, keepdims=True)
    return jnp.exp(logit_scale) * (a @ b.T) + logit_bias
