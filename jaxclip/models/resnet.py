"""OpenAI's ModifiedResNet CLIP image tower (RN50, RN101, RN50x4, ...) in Flax linen.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision",
section 2.4; the reference is OpenAI's `clip/model.py` (`ModifiedResNet`, `Bottleneck`,
`AttentionPool2d`), which OpenCLIP's `modified_resnet.py` repeats with the same parameter names.
Against torchvision's ResNet-50 (He et al. 2016) it changes three things:

    stem:  relu(bn1(conv3x3/2(x))) -> relu(bn2(conv3x3(.))) -> relu(bn3(conv3x3(.))) -> avgpool2
    block: out = relu(bn1(conv1x1(x))); out = relu(bn2(conv3x3(out))); out = avgpool_s(out)
           out = bn3(conv1x1(out));  y = relu(out + identity)
           identity = bn(conv1x1(avgpool_s(x))) when the block changes shape, else x
           (anti-aliased downsampling: an average pool before a stride-1 conv, ResNet-D style)
    pool:  tokens = [mean_hw(f); f_1..f_HW] + positional_embedding       (f: last feature map)
           pooled = MHA(query = tokens[0], keys = values = tokens)  (q/k/v projections, biased)
           image_embed = c_proj(pooled)                               (Linear with bias)

BatchNorm is frozen (inference): y = (x - running_mean) / sqrt(running_var + eps) * weight + bias,
computed in float32. The running statistics are stored as parameters (`mean`, `var`) beside
`scale` and `bias`, so the whole model stays one "params" tree (jit, save, fingerprint and
sharding treat it like any other); mask them out of an optimizer if you ever fine-tune.

"pooled" (the `encode_image` intermediate) is the attention-pool output BEFORE `c_proj`,
(N, width * 32): the feature of which the embedding is an affine function, the ResNet analogue of
the ViT's post-LN class token before `visual_projection`. Unlike the ViT projection, `c_proj` has
a bias. "hidden_states" are (stem output, layer1, ..., layer4 outputs), NHWC.

Parameter tree under "visual" (OpenAI/OpenCLIP names, nested; Flax leaf names):

    conv1/kernel, bn1/{scale,bias,mean,var}, conv2, bn2, conv3, bn3        (stem)
    layer{1..4}/<j>/{conv1,conv2,conv3}/kernel, {bn1,bn2,bn3}/{scale,bias,mean,var}
    layer{1..4}/<j>/downsample/0/kernel, downsample/1/{scale,bias,mean,var}  (first block)
    attnpool/positional_embedding, attnpool/{q_proj,k_proj,v_proj,c_proj}/{kernel,bias}
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxclip.models.variants import ResNetConfig

Dtype = Any
Path = tuple[str, ...]
EXPANSION = 4  # output channels of a bottleneck = 4 x its planes


class FrozenBatchNorm(nn.Module):
    """Inference BatchNorm: (x - mean) * scale / sqrt(var + eps) + bias over the last axis."""

    features: int
    eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (self.features,)
        scale = self.param("scale", nn.initializers.ones, shape, self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros, shape, self.param_dtype)
        mean = self.param("mean", nn.initializers.zeros, shape, self.param_dtype)
        var = self.param("var", nn.initializers.ones, shape, self.param_dtype)
        f32 = jnp.float32
        inv = scale.astype(f32) * jax.lax.rsqrt(var.astype(f32) + self.eps)
        y = (x.astype(f32) - mean.astype(f32)) * inv + bias.astype(f32)
        return y.astype(self.dtype)


def _conv(features: int, k: int, stride: int, name: str, dtype: Dtype, param_dtype: Dtype):
    """Bias-free k x k conv with PyTorch's symmetric padding k // 2."""
    return nn.Conv(
        features,
        kernel_size=(k, k),
        strides=(stride, stride),
        padding=[(k // 2, k // 2)] * 2,
        use_bias=False,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
    )


def _avg_pool(x: jax.Array, s: int) -> jax.Array:
    """PyTorch AvgPool2d(s): s x s windows, stride s, no padding (floor)."""
    return nn.avg_pool(x, (s, s), strides=(s, s), padding="VALID") if s > 1 else x


class _Downsample(nn.Module):
    """The identity branch of a shape-changing block: BN("1")(conv1x1("0")(avgpool(x)))."""

    features: int
    stride: int
    eps: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = _avg_pool(x, self.stride)
        x = _conv(self.features, 1, 1, "0", **kw)(x)
        return FrozenBatchNorm(self.features, self.eps, name="1", **kw)(x)


class Bottleneck(nn.Module):
    """Anti-aliased bottleneck (see the module docstring); strides happen by average pooling."""

    inplanes: int
    planes: int
    stride: int
    eps: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        out_planes = self.planes * EXPANSION
        out = _conv(self.planes, 1, 1, "conv1", **kw)(x)
        out = nn.relu(FrozenBatchNorm(self.planes, self.eps, name="bn1", **kw)(out))
        out = _conv(self.planes, 3, 1, "conv2", **kw)(out)
        out = nn.relu(FrozenBatchNorm(self.planes, self.eps, name="bn2", **kw)(out))
        out = _avg_pool(out, self.stride)
        out = _conv(out_planes, 1, 1, "conv3", **kw)(out)
        # bn3's scale starts at zero (OpenAI's init): each block starts as the identity.
        out = FrozenBatchNorm(out_planes, self.eps, name="bn3", **kw)(out)
        identity = x
        if self.stride > 1 or self.inplanes != out_planes:
            identity = _Downsample(out_planes, self.stride, self.eps, name="downsample", **kw)(x)
        return nn.relu(out + identity)


class _Stage(nn.Module):
    """One `layer{i}`: blocks named "0", "1", ...; the first one strides."""

    inplanes: int
    planes: int
    blocks: int
    stride: int
    eps: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        inplanes = self.inplanes
        for j in range(self.blocks):
            stride = self.stride if j == 0 else 1
            x = Bottleneck(inplanes, self.planes, stride, self.eps, name=str(j), **kw)(x)
            inplanes = self.planes * EXPANSION
        return x


class AttentionPool2d(nn.Module):
    """QKV attention pooling with one query, the mean feature (OpenAI `AttentionPool2d`).

    Returns (c_proj(pooled), pooled) with pooled the concatenated heads before c_proj.
    """

    grid: int
    embed_dim: int
    heads: int
    output_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        n, h, w, c = x.shape
        if (h, w) != (self.grid, self.grid) or c != self.embed_dim:
            raise ValueError(
                f"attention pool expects (N, {self.grid}, {self.grid}, {self.embed_dim}) "
                f"features; got {x.shape}"
            )
        std = c**-0.5
        pos = self.param(
            "positional_embedding", nn.initializers.normal(std), (h * w + 1, c), self.param_dtype
        )
        x = x.reshape(n, h * w, c)
        x = jnp.concatenate([jnp.mean(x, axis=1, keepdims=True), x], axis=1)
        x = x + pos.astype(x.dtype)[None]
        dense = lambda features, name: nn.Dense(
            features,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.initializers.normal(std),
            name=name,
        )
        d = c // self.heads
        q = dense(c, "q_proj")(x[:, :1]).reshape(n, 1, self.heads, d)
        k = dense(c, "k_proj")(x).reshape(n, h * w + 1, self.heads, d)
        v = dense(c, "v_proj")(x).reshape(n, h * w + 1, self.heads, d)
        pooled = jax.nn.dot_product_attention(q, k, v, scale=d**-0.5).reshape(n, c)
        return dense(self.output_dim, "c_proj")(pooled), pooled


class ModifiedResNet(nn.Module):
    """The RN image tower; returns (embeddings, pooled, hidden states) (module docstring)."""

    cfg: ResNetConfig
    output_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pixels: jax.Array) -> tuple[jax.Array, jax.Array, tuple[jax.Array, ...]]:
        cfg, kw = self.cfg, dict(dtype=self.dtype, param_dtype=self.param_dtype)
        eps, w = cfg.batch_norm_eps, cfg.width
        x = pixels.astype(self.dtype)
        for i, (features, stride) in enumerate(((w // 2, 2), (w // 2, 1), (w, 1)), start=1):
            x = _conv(features, 3, stride, f"conv{i}", **kw)(x)
            x = nn.relu(FrozenBatchNorm(features, eps, name=f"bn{i}", **kw)(x))
        x = _avg_pool(x, 2)
        states = [x]
        inplanes = w
        for i, blocks in enumerate(cfg.layers):
            planes = w * 2**i
            stride = 1 if i == 0 else 2
            x = _Stage(inplanes, planes, blocks, stride, eps, name=f"layer{i + 1}", **kw)(x)
            inplanes = planes * EXPANSION
            states.append(x)
        embeds, pooled = AttentionPool2d(
            cfg.grid, cfg.embed_dim, cfg.heads, self.output_dim, name="attnpool", **kw
        )(x)
        return embeds, pooled, tuple(states)


# --- the parameter tree, without building the module --------------------------------------------


def _bn_shapes(prefix: Path, c: int) -> dict[Path, tuple[int, ...]]:
    return {(*prefix, leaf): (c,) for leaf in ("scale", "bias", "mean", "var")}


def param_shapes(cfg: ResNetConfig, output_dim: int) -> dict[Path, tuple[int, ...]]:
    """Path (inside "visual") -> shape of every parameter `ModifiedResNet` creates."""
    w = cfg.width
    shapes: dict[Path, tuple[int, ...]] = {}
    for i, (cin, cout) in enumerate(((3, w // 2), (w // 2, w // 2), (w // 2, w)), start=1):
        shapes[(f"conv{i}", "kernel")] = (3, 3, cin, cout)
        shapes.update(_bn_shapes((f"bn{i}",), cout))
    inplanes = w
    for i, blocks in enumerate(cfg.layers):
        planes = w * 2**i
        for j in range(blocks):
            p = (f"layer{i + 1}", str(j))
            shapes[(*p, "conv1", "kernel")] = (1, 1, inplanes, planes)
            shapes[(*p, "conv2", "kernel")] = (3, 3, planes, planes)
            shapes[(*p, "conv3", "kernel")] = (1, 1, planes, planes * EXPANSION)
            for bn, c in (("bn1", planes), ("bn2", planes), ("bn3", planes * EXPANSION)):
                shapes.update(_bn_shapes((*p, bn), c))
            if j == 0 and (i > 0 or inplanes != planes * EXPANSION):
                shapes[(*p, "downsample", "0", "kernel")] = (1, 1, inplanes, planes * EXPANSION)
                shapes.update(_bn_shapes((*p, "downsample", "1"), planes * EXPANSION))
            inplanes = planes * EXPANSION
    c = cfg.embed_dim
    shapes[("attnpool", "positional_embedding")] = (cfg.grid**2 + 1, c)
    for proj in ("q_proj", "k_proj", "v_proj"):
        shapes[("attnpool", proj, "kernel")] = (c, c)
        shapes[("attnpool", proj, "bias")] = (c,)
    shapes[("attnpool", "c_proj", "kernel")] = (c, output_dim)
    shapes[("attnpool", "c_proj", "bias")] = (output_dim,)
    return shapes


def image_flops(cfg: ResNetConfig, output_dim: int) -> float:
    """FLOPs (2 x MACs) of one image through the tower (convs, attention pool, c_proj)."""
    s = cfg.image_size
    w = cfg.width
    macs = 0.0
    h = s // 2  # stem conv1 is stride 2
    for cin, cout in ((3, w // 2), (w // 2, w // 2), (w // 2, w)):
        macs += h * h * 9 * cin * cout
    h //= 2
    inplanes = w
    for i, blocks in enumerate(cfg.layers):
        planes = w * 2**i
        for j in range(blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            macs += h * h * (inplanes * planes + 9 * planes * planes)
            h_out = h // stride
            macs += h_out * h_out * planes * planes * EXPANSION
            if j == 0 and (i > 0 or inplanes != planes * EXPANSION):
                macs += h_out * h_out * inplanes * planes * EXPANSION
            h = h_out
            inplanes = planes * EXPANSION
    c, t = cfg.embed_dim, cfg.grid**2 + 1
    macs += c * c + 2 * t * c * c + 2 * t * c + c * output_dim
    return 2.0 * macs
