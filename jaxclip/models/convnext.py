"""The ConvNeXt CLIP image tower as OpenCLIP builds it (timm trunk + TimmModel head), Flax linen.

Liu et al. 2022, "A ConvNet for the 2020s"; the reference is timm's `ConvNeXt`
(`timm/models/convnext.py`, the default `conv_mlp=False` path with LayerNorm eps 1e-6) wrapped by
OpenCLIP's `TimmModel` with `timm_pool=''` (keep timm's head: average pool then LayerNorm) and
`timm_proj='linear'` (or 'mlp'). Channels-last throughout, so timm's LayerNorm2d (over channels)
is a plain LayerNorm over the last axis here.

    stem:    x = LN(conv_PxP/P(pixels))                                    (conv with bias)
    stage i: x = conv2x2/2(LN(x))  for i > 0                               ("downsample")
             x = x + gamma * fc2(GELU(fc1(LN(dwconv_KxK(x)))))  per block  (GELU exact, erf)
    head:    pooled = LN(mean_hw(x))                                       (timm NormMlpHead)
             image_embed = proj(pooled)          (bias-free Linear, 'linear')
                         | fc2(GELU(fc1(pooled))) (hidden 2 D, 'mlp'; fc2 bias = head_bias)

"pooled" (the `encode_image` intermediate) is the trunk's output, (N, dims[-1]): timm's pooled
and normalised feature, the input of OpenCLIP's projection head. "hidden_states" are (stem output,
stage 0..3 outputs), NHWC. Dropout and stochastic depth are training-only and absent.

Parameter tree under "visual" (OpenCLIP's `visual.trunk.*` / `visual.head.*` names, nested):

    trunk/stem/0/{kernel,bias}, trunk/stem/1/{scale,bias}
    trunk/stages/<i>/downsample/0/{scale,bias}, trunk/stages/<i>/downsample/1/{kernel,bias}  (i>0)
    trunk/stages/<i>/blocks/<j>/{conv_dw/{kernel,bias}, norm/{scale,bias},
                                 mlp/fc1/{kernel,bias}, mlp/fc2/{kernel,bias}, gamma}
    trunk/head/norm/{scale,bias}
    head/proj/kernel [+ bias]   |   head/mlp/fc1/{kernel,bias}, head/mlp/fc2/kernel [+ bias]
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxclip.models.variants import ConvNeXtConfig

Dtype = Any
Path = tuple[str, ...]

# timm's ConvNeXt sizes (depths, dims) -> model name; used to name a trunk when saving and to
# pick its LayerNorm epsilon when a checkpoint has no config (timm: 1e-6, convnext_xxlarge 1e-5).
TIMM_CONVNEXT = {
    ((3, 3, 9, 3), (96, 192, 384, 768)): "convnext_tiny",
    ((3, 3, 27, 3), (96, 192, 384, 768)): "convnext_small",
    ((3, 3, 27, 3), (128, 256, 512, 1024)): "convnext_base",
    ((3, 3, 27, 3), (192, 384, 768, 1536)): "convnext_large",
    ((3, 3, 27, 3), (256, 512, 1024, 2048)): "convnext_xlarge",
    ((3, 4, 30, 3), (384, 768, 1536, 3072)): "convnext_xxlarge",
}
TIMM_NORM_EPS = {"convnext_xxlarge": 1e-5}


def timm_name(cfg: ConvNeXtConfig) -> str | None:
    """timm's model name for this trunk size, or None for a size timm does not name."""
    return TIMM_CONVNEXT.get((cfg.depths, cfg.dims))


def _gelu(x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x, approximate=False)  # torch.nn.GELU(): the exact erf form


class _Container(nn.Module):
    """Children named "0", "1": a conv and a LayerNorm in the given order (stem / downsample)."""

    features: int
    kernel: int
    norm_first: bool
    eps: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        conv = nn.Conv(
            self.features,
            kernel_size=(self.kernel, self.kernel),
            strides=(self.kernel, self.kernel),
            padding="VALID",
            kernel_init=nn.initializers.truncated_normal(0.02),
            name="1" if self.norm_first else "0",
            **kw,
        )
        norm = nn.LayerNorm(epsilon=self.eps, name="0" if self.norm_first else "1", **kw)
        return conv(norm(x)) if self.norm_first else norm(conv(x))


class _Mlp(nn.Module):
    """fc2(GELU(fc1(x))) (timm `Mlp`)."""

    hidden: int
    out: int
    fc2_bias: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        init = nn.initializers.truncated_normal(0.02)
        x = _gelu(nn.Dense(self.hidden, kernel_init=init, name="fc1", **kw)(x))
        return nn.Dense(self.out, use_bias=self.fc2_bias, kernel_init=init, name="fc2", **kw)(x)


class DepthwiseConv(nn.Module):
    """k x k depthwise conv with bias, padding k // 2 (timm `create_conv2d(depthwise=True)`).

    Params: kernel (k, k, 1, C) (HWIO with one input channel per group), bias (C,).
    impl "conv": `lax.conv_general_dilated` with C feature groups (cuDNN on GPUs). impl
    "shifted": the same sum written as k^2 shifted multiply-adds of the padded input, accumulated
    in float32 - XLA's CPU backend runs grouped convs ~15x slower than that (measured: 317 ms vs
    21 ms for (16, 56, 56, 128), k = 7; PyTorch 20 ms). "auto" picks "shifted" on CPU backends.
    """

    features: int
    kernel_size: int
    impl: str = "auto"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, c = self.kernel_size, self.features
        kernel = self.param(
            "kernel", nn.initializers.truncated_normal(0.02), (k, k, 1, c), self.param_dtype
        )
        bias = self.param("bias", nn.initializers.zeros, (c,), self.param_dtype)
        impl = self.impl
        if impl == "auto":
            impl = "shifted" if jax.default_backend() == "cpu" else "conv"
        if impl == "conv":
            y = jax.lax.conv_general_dilated(
                x.astype(self.dtype),
                kernel.astype(self.dtype),
                window_strides=(1, 1),
                padding=[(k // 2, k // 2)] * 2,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=c,
            )
            return y + bias.astype(self.dtype)
        if impl != "shifted":
            raise ValueError(f"DepthwiseConv.impl={impl!r}; choose 'auto', 'conv' or 'shifted'")
        _, h, w, _ = x.shape
        p = k // 2
        xp = jnp.pad(x.astype(jnp.float32), ((0, 0), (p, p), (p, p), (0, 0)))
        wf = kernel.astype(jnp.float32)
        y = bias.astype(jnp.float32)
        for i in range(k):
            for j in range(k):
                y = y + xp[:, i : i + h, j : j + w, :] * wf[i, j, 0]
        return y.astype(self.dtype)


class ConvNeXtBlock(nn.Module):
    """x + gamma * mlp(LN(dwconv(x))) (timm `ConvNeXtBlock`, conv_mlp=False)."""

    dim: int
    cfg: ConvNeXtConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = DepthwiseConv(self.dim, self.cfg.kernel_size, name="conv_dw", **kw)(x)
        h = nn.LayerNorm(epsilon=self.cfg.norm_eps, name="norm", **kw)(h)
        h = _Mlp(int(self.cfg.mlp_ratio * self.dim), self.dim, name="mlp", **kw)(h)
        gamma = self.param("gamma", nn.initializers.constant(1e-6), (self.dim,), self.param_dtype)
        return x + h * gamma.astype(h.dtype)


class _Blocks(nn.Module):
    dim: int
    depth: int
    cfg: ConvNeXtConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for j in range(self.depth):
            x = ConvNeXtBlock(
                self.dim, self.cfg, dtype=self.dtype, param_dtype=self.param_dtype, name=str(j)
            )(x)
        return x


class ConvNeXtStage(nn.Module):
    """[LN + 2x2 stride-2 conv when i > 0] then the blocks (timm `ConvNeXtStage`)."""

    index: int
    cfg: ConvNeXtConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        cfg, i = self.cfg, self.index
        if i > 0:
            x = _Container(cfg.dims[i], 2, True, cfg.norm_eps, name="downsample", **kw)(x)
        return _Blocks(cfg.dims[i], cfg.depths[i], cfg, name="blocks", **kw)(x)


class _Stages(nn.Module):
    cfg: ConvNeXtConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        states = []
        for i in range(len(self.cfg.depths)):
            x = ConvNeXtStage(
                i, self.cfg, dtype=self.dtype, param_dtype=self.param_dtype, name=str(i)
            )(x)
            states.append(x)
        return x, states


class _TrunkHead(nn.Module):
    """timm `NormMlpClassifierHead` without classifier: LN(mean over H, W)."""

    eps: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2)).astype(self.dtype)
        return nn.LayerNorm(
            epsilon=self.eps, dtype=self.dtype, param_dtype=self.param_dtype, name="norm"
        )(pooled)


class ConvNeXtTrunk(nn.Module):
    """timm `ConvNeXt` (num_classes=0); returns (pooled, (stem output, stage outputs...))."""

    cfg: ConvNeXtConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pixels: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        cfg, kw = self.cfg, dict(dtype=self.dtype, param_dtype=self.param_dtype)
        stem = _Container(cfg.dims[0], cfg.patch_size, False, cfg.norm_eps, name="stem", **kw)(
            pixels.astype(self.dtype)
        )
        x, states = _Stages(cfg, name="stages", **kw)(stem)
        pooled = _TrunkHead(cfg.norm_eps, name="head", **kw)(x)
        return pooled, (stem, *states)


class _ProjectionHead(nn.Module):
    """OpenCLIP `TimmModel.head`: proj (Linear) or mlp (timm Mlp, hidden 2 D)."""

    cfg: ConvNeXtConfig
    output_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pooled: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        if self.cfg.head == "linear":
            return nn.Dense(
                self.output_dim,
                use_bias=self.cfg.head_bias,
                kernel_init=nn.initializers.normal(self.cfg.width**-0.5),
                name="proj",
                **kw,
            )(pooled)
        return _Mlp(2 * self.output_dim, self.output_dim, self.cfg.head_bias, name="mlp", **kw)(
            pooled
        )


class TimmConvNeXt(nn.Module):
    """The ConvNeXt image tower; returns (embeddings, pooled, hidden states) (module docstring)."""

    cfg: ConvNeXtConfig
    output_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, pixels: jax.Array) -> tuple[jax.Array, jax.Array, tuple[jax.Array, ...]]:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        pooled, states = ConvNeXtTrunk(self.cfg, name="trunk", **kw)(pixels)
        embeds = _ProjectionHead(self.cfg, self.output_dim, name="head", **kw)(pooled)
        return embeds, pooled, states


# --- the parameter tree, without building the module --------------------------------------------


def param_shapes(cfg: ConvNeXtConfig, output_dim: int) -> dict[Path, tuple[int, ...]]:
    """Path (inside "visual") -> shape of every parameter `TimmConvNeXt` creates."""
    p, d0 = cfg.patch_size, cfg.dims[0]
    k = cfg.kernel_size
    shapes: dict[Path, tuple[int, ...]] = {
        ("trunk", "stem", "0", "kernel"): (p, p, 3, d0),
        ("trunk", "stem", "0", "bias"): (d0,),
        ("trunk", "stem", "1", "scale"): (d0,),
        ("trunk", "stem", "1", "bias"): (d0,),
    }
    for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims)):
        stage = ("trunk", "stages", str(i))
        if i > 0:
            prev = cfg.dims[i - 1]
            shapes[(*stage, "downsample", "0", "scale")] = (prev,)
            shapes[(*stage, "downsample", "0", "bias")] = (prev,)
            shapes[(*stage, "downsample", "1", "kernel")] = (2, 2, prev, dim)
            shapes[(*stage, "downsample", "1", "bias")] = (dim,)
        hidden = int(cfg.mlp_ratio * dim)
        for j in range(depth):
            b = (*stage, "blocks", str(j))
            shapes[(*b, "conv_dw", "kernel")] = (k, k, 1, dim)
            shapes[(*b, "conv_dw", "bias")] = (dim,)
            shapes[(*b, "norm", "scale")] = (dim,)
            shapes[(*b, "norm", "bias")] = (dim,)
            shapes[(*b, "mlp", "fc1", "kernel")] = (dim, hidden)
            shapes[(*b, "mlp", "fc1", "bias")] = (hidden,)
            shapes[(*b, "mlp", "fc2", "kernel")] = (hidden, dim)
            shapes[(*b, "mlp", "fc2", "bias")] = (dim,)
            shapes[(*b, "gamma")] = (dim,)
    shapes[("trunk", "head", "norm", "scale")] = (cfg.width,)
    shapes[("trunk", "head", "norm", "bias")] = (cfg.width,)
    if cfg.head == "linear":
        shapes[("head", "proj", "kernel")] = (cfg.width, output_dim)
        if cfg.head_bias:
            shapes[("head", "proj", "bias")] = (output_dim,)
    else:
        shapes[("head", "mlp", "fc1", "kernel")] = (cfg.width, 2 * output_dim)
        shapes[("head", "mlp", "fc1", "bias")] = (2 * output_dim,)
        shapes[("head", "mlp", "fc2", "kernel")] = (2 * output_dim, output_dim)
        if cfg.head_bias:
            shapes[("head", "mlp", "fc2", "bias")] = (output_dim,)
    return shapes


def image_flops(cfg: ConvNeXtConfig, output_dim: int) -> float:
    """FLOPs (2 x MACs) of one image through the tower (convs, MLPs, head; norms ignored)."""
    h = cfg.image_size // cfg.patch_size
    macs = h * h * cfg.patch_size**2 * 3 * cfg.dims[0]
    for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims)):
        if i > 0:
            h //= 2
            macs += h * h * 4 * cfg.dims[i - 1] * dim
        hidden = int(cfg.mlp_ratio * dim)
        macs += depth * h * h * (cfg.kernel_size**2 * dim + 2 * dim * hidden)
    d = output_dim
    macs += cfg.width * d if cfg.head == "linear" else cfg.width * 2 * d + 2 * d * d
    return 2.0 * macs
