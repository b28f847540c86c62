"""CLIP in Flax linen: an image tower and a causal text tower, projected to one space.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision".

Image tower (ViT, Dosovitskiy et al. 2021):
    x = [class_embedding; conv_PxP(pixels)] + position_embedding   (bias-free patch conv)
    x = LayerNorm_pre(x);  x = x + MHA(LN1(x));  x = x + MLP(LN2(x))   (L blocks)
    pooled = LayerNorm_post(x[:, 0]);   image_embed = pooled @ W_visual   (bias-free)
Text tower:
    x = token_embedding[ids] + position_embedding;  same blocks with a causal mask
    x = LayerNorm_final(x);  pooled = x[first EOS];   text_embed = pooled @ W_text
The logit scale s is learned; logits = exp(s) * cos(image, text) (done by the caller).
Pooling reads one row of the last block's output (the class token, the first EOS), so when no
hidden states are asked for, the last block computes only that row: its keys and values still
come from every token, its queries, attention output and MLP from the pooled row alone. The
pooled output is the same (up to summation order); a training step of the mini-CLIP (3 + 3
blocks) does 0.75x the FLOPs.

The image tower is picked by the type of `config.vision`: `VisionConfig` -> the ViT above;
`ResNetConfig` -> OpenAI's ModifiedResNet (`jaxclip.models.resnet`: RN50, RN101, RN50x4, ...,
whose attention pool ends in its own projection `c_proj`); `ConvNeXtConfig` -> OpenCLIP's timm
ConvNeXt with its projection head (`jaxclip.models.convnext`). The text tower is the same for all.

The parameter tree follows the Hugging Face Flax CLIP layout (`FlaxCLIPModel`), so a hub
`flax_model.msgpack` restores into it as it is:

    text_model/embeddings/{token_embedding,position_embedding}/embedding
    text_model/encoder/layers/<i>/self_attn/{q,k,v,out}_proj/{kernel,bias}
    text_model/encoder/layers/<i>/{layer_norm1,layer_norm2}/{scale,bias}
    text_model/encoder/layers/<i>/mlp/{fc1,fc2}/{kernel,bias}
    text_model/final_layer_norm/{scale,bias}
    vision_model/embeddings/{class_embedding, patch_embedding/kernel, position_embedding/embedding}
    vision_model/{pre_layrnorm (sic), post_layernorm}/{scale,bias}
    vision_model/encoder/layers/<i>/...   (as in the text tower)
    visual_projection/kernel, text_projection/kernel, logit_scale

ResNet and ConvNeXt towers replace `vision_model` + `visual_projection` by one subtree `visual`
holding OpenCLIP's names (see their modules); the text tree is unchanged. The ViT tree is exactly
the HF Flax one, so hub `flax_model.msgpack` files still restore as they are.

Pixels come in NHWC float (already normalised), the JAX-native layout. `dtype` is the compute
dtype (float32 or bfloat16); `param_dtype` the storage dtype of the parameters;
`attn_implementation` goes to `jax.nn.dot_product_attention` in every transformer block (None:
JAX's default, XLA; "cudnn": cuDNN's fused attention, GPU with float16 / bfloat16 only). LayerNorm
statistics, the attention softmax and the residual stream of the transformer blocks (so also the
hidden states) are float32 whatever the compute dtype, and the returned embeddings are always
float32.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxclip.models.convnext import TimmConvNeXt
from jaxclip.models.resnet import ModifiedResNet
from jaxclip.models.variants import (
    CLIPConfig,
    ConvNeXtConfig,
    ResNetConfig,
    TextConfig,
    VisionConfig,
)

Dtype = Any


def quick_gelu(x: jax.Array) -> jax.Array:
    """x * sigmoid(1.702 x): the GELU approximation OpenAI CLIP was trained with."""
    return x * jax.nn.sigmoid(1.702 * x)


def _activation(name: str):
    if name == "quick_gelu":
        return quick_gelu
    if name == "gelu":
        return lambda x: jax.nn.gelu(x, approximate=False)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: jax.nn.gelu(x, approximate=True)
    if name == "relu":
        return jax.nn.relu
    raise ValueError(f"unsupported activation {name!r}")


class Attention(nn.Module):
    """Multi-head self-attention with biased q/k/v/out projections (HF `CLIPAttention`).

    softmax(q k^T / sqrt(d_head) [+ causal mask]) v, via `jax.nn.dot_product_attention`.

    With `query_positions` (N,) the queries are only the rows at those positions (one per
    sequence; keys and values are still every position, causally masked at the query's own
    position): the output is (N, 1, width), those rows of the full output.
    """

    width: int
    heads: int
    causal: bool
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    implementation: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, query_positions: jax.Array | None = None) -> jax.Array:
        b, t, _ = x.shape
        head_dim = self.width // self.heads
        dense = lambda name, std: nn.Dense(
            self.width,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.initializers.normal(std),
            name=name,
        )
        in_std = self.width**-0.5
        xq = x if query_positions is None else rows_at(x, query_positions)
        tq = xq.shape[1]
        q = dense("q_proj", in_std)(xq).reshape(b, tq, self.heads, head_dim)
        k = dense("k_proj", in_std)(x).reshape(b, t, self.heads, head_dim)
        v = dense("v_proj", in_std)(x).reshape(b, t, self.heads, head_dim)
        causal, mask = self.causal, None
        if query_positions is not None and self.causal:
            # Row p of the causal mask: keys 0..p, as (N, heads, 1 query, T keys).
            mask = (jnp.arange(t)[None, :] <= query_positions[:, None])[:, None, None, :]
            causal = False
        out = jax.nn.dot_product_attention(
            q,
            k,
            v,
            mask=mask,
            scale=head_dim**-0.5,
            is_causal=causal,
            implementation=self.implementation,
        )
        return dense("out_proj", in_std)(out.reshape(b, tq, self.width))


def rows_at(x: jax.Array, positions: jax.Array) -> jax.Array:
    """x[n, positions[n]] for each n, keeping the sequence axis: (N, T, W) -> (N, 1, W)."""
    return jnp.take_along_axis(x, positions[:, None, None], axis=1)


class MLP(nn.Module):
    """fc2(act(fc1(x))) (HF `CLIPMLP`)."""

    width: int
    mlp_dim: int
    act: str
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = nn.Dense(
            self.mlp_dim,
            kernel_init=nn.initializers.normal((2 * self.width) ** -0.5),
            name="fc1",
            **kw,
        )(x)
        x = _activation(self.act)(x)
        return nn.Dense(
            self.width, kernel_init=nn.initializers.normal(self.mlp_dim**-0.5), name="fc2", **kw
        )(x)


def _layer_norm(cfg: VisionConfig | TextConfig, dtype: Dtype, param_dtype: Dtype, name: str):
    # Flax computes LayerNorm mean/variance in float32 even for bfloat16 inputs.
    return nn.LayerNorm(epsilon=cfg.layer_norm_eps, dtype=dtype, param_dtype=param_dtype, name=name)


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer block: x += MHA(LN1(x)); x += MLP(LN2(x)).

    With `query_positions` (N,) only those rows are computed (the MLP and the attention's
    queries), from every row's keys and values: (N, 1, width), the same numbers as those rows
    of the full block (up to summation order).
    """

    cfg: VisionConfig | TextConfig
    causal: bool
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attn_implementation: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, query_positions: jax.Array | None = None) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = _layer_norm(self.cfg, name="layer_norm1", **kw)(x)
        attn = Attention(
            self.cfg.width,
            self.cfg.heads,
            self.causal,
            implementation=self.attn_implementation,
            name="self_attn",
            **kw,
        )
        if query_positions is not None:
            x = rows_at(x, query_positions)
        x = x + attn(h, query_positions)
        h = _layer_norm(self.cfg, name="layer_norm2", **kw)(x)
        return x + MLP(self.cfg.width, self.cfg.mlp_dim, self.cfg.act, name="mlp", **kw)(h)


class _Layers(nn.Module):
    """The blocks, named "0", "1", ... (HF `FlaxCLIPLayerCollection`).

    `pooled_positions` (N,): the last block computes only the row each sequence is pooled at
    (`EncoderLayer`'s `query_positions`), so the last state is (N, 1, width). Pooling reads
    nothing else, so the pooled output is the same (up to summation order) for a fraction of
    the last block's work: queries, attention output and MLP of one row instead of T.
    """

    cfg: VisionConfig | TextConfig
    causal: bool
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attn_implementation: str | None = None

    @nn.compact
    def __call__(
        self, x: jax.Array, pooled_positions: jax.Array | None = None
    ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        # The residual stream stays float32 whatever the compute dtype: each block's output
        # (compute dtype) is added to it in float32, and the LayerNorms hand the matmuls the
        # compute dtype. With a bfloat16 stream, ViT-L/14's image embeddings (random weights)
        # were 1.0e-2 (relative) from float32's; with a float32 stream 6.5e-3 (ViT-B/32: 9.5e-3
        # -> 6.6e-3), for a few % more memory traffic.
        x = x.astype(jnp.float32)
        states = [x]
        for i in range(self.cfg.layers):
            x = EncoderLayer(
                self.cfg,
                self.causal,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                attn_implementation=self.attn_implementation,
                name=str(i),
            )(x, pooled_positions if i == self.cfg.layers - 1 else None)
            states.append(x)
        return x, tuple(states)


class Encoder(nn.Module):
    """Transformer stack; returns the last state and (input, every layer's output); with
    `pooled_positions` the last block computes only those rows (see `_Layers`)."""

    cfg: VisionConfig | TextConfig
    causal: bool
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attn_implementation: str | None = None

    @nn.compact
    def __call__(
        self, x: jax.Array, pooled_positions: jax.Array | None = None
    ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        return _Layers(
            self.cfg,
            self.causal,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            attn_implementation=self.attn_implementation,
            name="layers",
        )(x, pooled_positions)


def patch_matmul(pixels: jax.Array, kernel: jax.Array) -> jax.Array:
    """A stride-P, P x P "VALID" convolution as one matmul: (N, H, W, C) pixels and an HWIO
    (P, P, C, D) kernel -> (N, (H // P) * (W // P), D) patch embeddings in row-major patch order.

    The same numbers as `lax.conv_general_dilated` (up to summation order), computed as a
    (N * patches, P * P * C) by (P * P * C, D) product: XLA:CPU runs this 4x faster than its
    convolution (ViT-B/32 at batch 32: the patch conv alone took about 15 % of the image encode).
    """
    n, h, w, c = pixels.shape
    p = kernel.shape[0]
    gh, gw = h // p, w // p
    x = pixels[:, : gh * p, : gw * p].reshape(n, gh, p, gw, p, c)
    x = x.transpose(0, 1, 3, 2, 4, 5).reshape(n, gh * gw, p * p * c)
    return x @ kernel.reshape(p * p * c, -1)


class PatchEmbedding(nn.Module):
    """Non-overlapping PxP patches -> width (`patch_matmul`), with nn.Conv's parameter layout:
    `kernel` (P, P, C, width) HWIO and, when `use_bias`, `bias` (width,)."""

    features: int
    patch_size: int
    use_bias: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, pixels: jax.Array) -> jax.Array:
        p = self.patch_size
        shape = (p, p, pixels.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
        y = patch_matmul(pixels.astype(self.dtype), kernel.astype(self.dtype))
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
            y = y + bias.astype(self.dtype)
        return y


class VisionEmbeddings(nn.Module):
    """[class token; bias-free PxP patch conv of the pixels] + learned position embedding."""

    cfg: VisionConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pixels: jax.Array) -> jax.Array:
        cfg = self.cfg
        w = cfg.width
        cls = self.param("class_embedding", nn.initializers.normal(w**-0.5), (w,), self.param_dtype)
        patches = PatchEmbedding(
            w,
            cfg.patch_size,
            use_bias=False,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.initializers.normal(0.02),
            name="patch_embedding",
        )(pixels)
        b = patches.shape[0]
        cls = jnp.broadcast_to(cls.astype(self.dtype), (b, 1, w))
        x = jnp.concatenate([cls, patches], axis=1)
        pos = nn.Embed(
            cfg.num_patches + 1,
            w,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            embedding_init=nn.initializers.normal(0.02),
            name="position_embedding",
        ).embedding
        return x + pos.astype(self.dtype)[None]


class VisionTransformer(nn.Module):
    """ViT tower; returns (pooled = post-LN class token, hidden states). With `pooled_only` the
    last block computes only the class token (`_Layers`): the same pooled output for less work,
    and the last hidden state is (N, 1, width)."""

    cfg: VisionConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attn_implementation: str | None = None

    @nn.compact
    def __call__(
        self, pixels: jax.Array, pooled_only: bool = False
    ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = VisionEmbeddings(self.cfg, name="embeddings", **kw)(pixels.astype(self.dtype))
        x = _layer_norm(self.cfg, name="pre_layrnorm", **kw)(x)
        cls_rows = jnp.zeros(x.shape[:1], jnp.int32) if pooled_only else None
        x, states = Encoder(
            self.cfg,
            causal=False,
            attn_implementation=self.attn_implementation,
            name="encoder",
            **kw,
        )(x, cls_rows)
        pooled = _layer_norm(self.cfg, name="post_layernorm", **kw)(x[:, 0])
        return pooled, states


class TextEmbeddings(nn.Module):
    """token_embedding[ids] + position_embedding[0:T]."""

    cfg: TextConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, input_ids: jax.Array) -> jax.Array:
        cfg = self.cfg
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        init = nn.initializers.normal(0.02)
        tok = nn.Embed(cfg.vocab_size, cfg.width, embedding_init=init, name="token_embedding", **kw)
        pos = nn.Embed(
            cfg.context_length, cfg.width, embedding_init=init, name="position_embedding", **kw
        )
        t = input_ids.shape[1]
        return tok(input_ids) + pos.embedding[:t].astype(self.dtype)[None]


def eos_positions(input_ids: jax.Array, eos_token_id: int) -> jax.Array:
    """Index of the first EOS token per row, or argmax(ids) when eos_token_id == 2.

    The second branch is transformers' rule for legacy configs (the OpenAI hub configs say
    eos_token_id = 2; the real EOS 49407 is the largest id, so argmax finds it). A row without
    an EOS gives 0.
    """
    if eos_token_id == 2:
        return jnp.argmax(input_ids, axis=-1)
    return jnp.argmax(input_ids == eos_token_id, axis=-1)


def pool_positions(input_ids: jax.Array, cfg: TextConfig) -> jax.Array:
    """Index of the pooled token per row: EOS (`eos_positions`), 0 ("first") or T - 1 ("last")."""
    if cfg.pool_type == "first":
        return jnp.zeros(input_ids.shape[:1], jnp.int32)
    if cfg.pool_type == "last":
        return jnp.full(input_ids.shape[:1], input_ids.shape[1] - 1, jnp.int32)
    return eos_positions(input_ids, cfg.eos_token_id)


class TextTransformer(nn.Module):
    """Text tower (causal unless cfg.causal is False); returns (pooled, hidden states).

    pooled = the final-LN state at `pool_positions` (the EOS token for CLIP). With
    `pooled_only` the last block computes only that row (`_Layers`): the same pooled output for
    less work, and the last hidden state is (N, 1, width).
    """

    cfg: TextConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attn_implementation: str | None = None

    @nn.compact
    def __call__(
        self, input_ids: jax.Array, pooled_only: bool = False
    ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = TextEmbeddings(self.cfg, name="embeddings", **kw)(input_ids)
        idx = pool_positions(input_ids, self.cfg)
        x, states = Encoder(
            self.cfg,
            causal=self.cfg.causal,
            attn_implementation=self.attn_implementation,
            name="encoder",
            **kw,
        )(x, idx if pooled_only else None)
        if not pooled_only:
            x = rows_at(x, idx)
        pooled = _layer_norm(self.cfg, name="final_layer_norm", **kw)(x)[:, 0]
        return pooled, states


class CLIP(nn.Module):
    """The two-tower CLIP model (see the module docstring for the maths and the param layout).

    Attributes:
      config: the architecture (`jaxclip.models.variants.CLIPConfig`).
      dtype: compute dtype (jnp.float32 or jnp.bfloat16).
      param_dtype: dtype of the parameters created by `init`.
      attn_implementation: `jax.nn.dot_product_attention`'s `implementation` in the ViT and
        text blocks: None (JAX's default, XLA) or "cudnn" (fused, GPU, float16 / bfloat16
        compute only). Same parameters and function; only the kernel differs.
    """

    config: CLIPConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attn_implementation: str | None = None

    def setup(self):
        cfg = self.config
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        if isinstance(cfg.vision, VisionConfig):
            self.vision_model = VisionTransformer(
                cfg.vision, attn_implementation=self.attn_implementation, **kw
            )
            self.visual_projection = nn.Dense(
                cfg.projection_dim,
                use_bias=False,
                kernel_init=nn.initializers.normal(cfg.vision.width**-0.5),
                **kw,
            )
        elif isinstance(cfg.vision, ResNetConfig):
            self.visual = ModifiedResNet(cfg.vision, cfg.projection_dim, **kw)
        elif isinstance(cfg.vision, ConvNeXtConfig):
            self.visual = TimmConvNeXt(cfg.vision, cfg.projection_dim, **kw)
        else:  # pragma: no cover - CLIPConfig rejects other types
            raise TypeError(f"unsupported image tower config {type(cfg.vision).__name__}")
        self.text_model = TextTransformer(
            cfg.text, attn_implementation=self.attn_implementation, **kw
        )
        self.text_projection = nn.Dense(
            cfg.projection_dim,
            use_bias=False,
            kernel_init=nn.initializers.normal(cfg.text.width**-0.5),
            **kw,
        )
        self.logit_scale = self.param(
            "logit_scale",
            lambda _, shape, dtype: jnp.full(shape, cfg.logit_scale_init_value, dtype),
            (),
            self.param_dtype,
        )
        if cfg.logit_bias_init_value is not None:  # sigmoid-loss CLIP: logits t·cos + b
            self.logit_bias = self.param(
                "logit_bias",
                lambda _, shape, dtype: jnp.full(shape, cfg.logit_bias_init_value, dtype),
                (),
                self.param_dtype,
            )

    def encode_image(
        self, pixel_values: jax.Array, *, return_hidden: bool = False
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Image embeddings.

        Args:
          pixel_values: float (N, H, W, 3), normalised, H = W = config.vision.image_size.
          return_hidden: also return "hidden_states" (see below).

        Returns:
          (N, D) float32 raw (unnormalised) embeddings and {"pooled": the pre-projection image
          feature, ["hidden_states": ...]}, by image tower:
            ViT: pooled (N, width) = post-LN class token (embeds = pooled @ W, bias-free);
              hidden_states = (pre-LN'd embeddings, each layer's output), (N, 1 + patches, width).
            ResNet: pooled (N, width * 32) = attention-pool output before c_proj
              (embeds = c_proj(pooled), with bias); hidden_states = (stem, layer1..4), NHWC.
            ConvNeXt: pooled (N, dims[-1]) = LayerNorm(mean-pooled last stage), the trunk
              output (embeds = head(pooled)); hidden_states = (stem, stage 0..3), NHWC.
        """
        s = self.config.vision.image_size
        if pixel_values.ndim != 4 or pixel_values.shape[1:] != (s, s, 3):
            raise ValueError(
                f"pixel_values must be (N, {s}, {s}, 3) NHWC; got shape {pixel_values.shape}"
            )
        if isinstance(self.config.vision, VisionConfig):
            pooled, states = self.vision_model(pixel_values, pooled_only=not return_hidden)
            embeds = self.visual_projection(pooled).astype(jnp.float32)
        else:
            embeds, pooled, states = self.visual(pixel_values)
            embeds = embeds.astype(jnp.float32)
        out: dict[str, Any] = {"pooled": pooled.astype(jnp.float32)}
        if return_hidden:
            out["hidden_states"] = states
        return embeds, out

    def encode_text(
        self, input_ids: jax.Array, *, return_hidden: bool = False
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Text embeddings.

        Args:
          input_ids: int (N, T) token ids, T <= config.text.context_length, each row holding an
            EOS token (pooling reads the first one).
          return_hidden: also return "hidden_states": (embeddings, each layer's output).

        Returns:
          (N, D) float32 raw embeddings and {"pooled": (N, width) final-LN state at EOS,
          ["hidden_states": tuple of L+1 arrays (N, T, width)]}.
        """
        t_max = self.config.text.context_length
        if input_ids.ndim != 2 or input_ids.shape[1] > t_max:
            raise ValueError(f"input_ids must be (N, T<={t_max}); got shape {input_ids.shape}")
        pooled, states = self.text_model(input_ids, pooled_only=not return_hidden)
        embeds = self.text_projection(pooled).astype(jnp.float32)
        out: dict[str, Any] = {"pooled": pooled.astype(jnp.float32)}
        if return_hidden:
            out["hidden_states"] = states
        return embeds, out

    def __call__(self, pixel_values: jax.Array, input_ids: jax.Array) -> dict[str, jax.Array]:
        """Both towers: {"image_embeds", "text_embeds" (raw, float32), "logit_scale"}, plus
        "logit_bias" for a sigmoid-loss CLIP (`CLIPConfig.logit_bias_init_value` set)."""
        image_embeds, _ = self.encode_image(pixel_values)
        text_embeds, _ = self.encode_text(input_ids)
        out = {
            "image_embeds": image_embeds,
            "text_embeds": text_embeds,
            "logit_scale": self.logit_scale.astype(jnp.float32),
        }
        if self.config.logit_bias_init_value is not None:
            out["logit_bias"] = self.logit_bias.astype(jnp.float32)
        return out
