"""CLIP image preprocessing: resize the shortest side, centre-crop, normalise.

    x = crop_S(resize_bicubic(image, short side -> S, long side -> floor(S * long / short)))
    pixels = (x / 255 - mean) / std        (per channel; OpenAI's mean and std)

Two rules (`PreprocessConfig.rule`, set by `jaxclip.load` from the checkpoint's family):

* "hf" (transformers folders and hub ids, SigLIP): transformers' `CLIPImageProcessor`. The
  image is converted to RGB first (alpha composited onto white, grey repeated, palettes
  expanded), then resized; crop offsets `(H' - S) // 2` and `(W' - S) // 2`.
* "torchvision" (OpenAI `.pt` files, OpenCLIP files, folders and pretrained names): OpenAI's
  `clip._transform` and OpenCLIP's `image_transform`, i.e. torchvision's `Resize(S, BICUBIC)`
  on the PIL image in its own mode (Pillow resizes "P" palette images with nearest neighbour
  and RGBA with premultiplied alpha), `CenterCrop(S)` with offsets
  `int(round((H' - S) / 2.0))` (Python's round, half to even), then `convert("RGB")` (alpha
  dropped, not composited). The offsets differ from "hf" by one pixel whenever H' - S (or
  W' - S) is 3 mod 4, e.g. every 640x427 photo at S = 224 (long side 335).

Both rules size the long side as `int(S * long / short)` (transformers'
`get_resize_output_image_size` and torchvision's `_compute_resized_output_size` agree) and
resize with Pillow's bicubic; only the crop offset and the RGB-conversion order differ.

Two paths:

* host (`preprocess_host`): PIL bicubic on uint8; exact for either rule. "hf": what
  transformers' `CLIPImageProcessor` does (its PIL backend `CLIPImageProcessorPil`, used when
  torchvision is absent): RGB conversion, resize, crop, rescale in float64 then normalise in
  float32; matches it within 1e-5. "torchvision": the uint8 crop is pixel for pixel OpenAI's
  `_transform` (resize, crop, convert, then ToTensor and Normalize), the normalised pixels
  within 1e-6 (torchvision divides by 255 in float32). The tests check both.
* device (`preprocess_device`): jittable on a uint8 (N, H, W, 3) RGB batch, the same geometry
  and crop offsets for either rule, no resize when H = W = S (images with alpha or a palette
  are converted to RGB before they reach it, so their "torchvision" order is host-only). Resizing is separable (columns, then rows), each pass rounded and
  clipped to uint8 as Pillow does. Two resamplers:
  - resize="pil" (default): Pillow's own fixed-point bicubic weights (Resample.c transcribed in
    `pil_resize_weights`) applied as exact float32 matmuls (weights split into bytes);
  - resize="jax": `jax.image.resize(..., "bicubic", antialias=True)` (Keys a = -0.5 like Pillow,
    float weights), as first specified.

Device vs host, measured on 14 sizes from 7x500 to 3000x4000 (down- and up-scaling, both
aspect ratios, 224 px output), float32 normalised pixels (one uint8 step = 1/255/std ~ 0.0146):

    resize   images                       max |diff|   mean |diff|   pixels differing
    "pil"    uniform noise                0            0             0
    "pil"    smooth (upsampled noise)     0            0             0
    "jax"    uniform noise                0.0284       1.1e-5        0.08 % (max 0.6 %)
    "jax"    smooth (upsampled noise)     0.0292       2.0e-5        0.14 % (max 1.7 %)

A single-pass jax.image.resize without the intermediate uint8 rounding (Pillow clips the
overshoot of the first pass) was much further off on noise: max 0.33, mean 2.3e-3.
`DEVICE_HOST_MAX_ABS_DIFF` holds the bounds the tests enforce.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxclip.errors import UserValueError

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Bounds of |device - host| the tests enforce, per resampler: (max, mean). One uint8 level is
# 1 / 255 / min(std) = 0.0150 in normalised units; "jax" was measured at <= 2 levels.
DEVICE_HOST_MAX_ABS_DIFF = {"pil": 1e-6, "jax": 0.0301}
DEVICE_HOST_MEAN_ABS_DIFF = {"pil": 1e-7, "jax": 2e-4}
# Preprocessing rules (module docstring): transformers' CLIPImageProcessor, or torchvision's
# transform as OpenAI's and OpenCLIP's code applies it.
RULES = ("hf", "torchvision")


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """CLIP preprocessing constants.

    Attributes:
      image_size: S, the side of the square crop (also the shortest side after resizing).
      mean, std: per-channel normalisation of pixels in [0, 1] (OpenAI's CLIP values).
      crop: True (CLIP): shortest side to S, then centre crop. False (SigLIP, transformers'
        `SiglipImageProcessor`, big_vision `resize(S)`): both sides resized to S (the aspect
        ratio is not kept, nothing is cropped away).
      rule: "hf" (transformers' CLIPImageProcessor: RGB first, crop offset (H' - S) // 2) or
        "torchvision" (OpenAI's / OpenCLIP's transform: resize in the image's own mode, crop
        offset int(round((H' - S) / 2)), RGB last); see the module docstring.
    """

    image_size: int = 224
    mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    std: tuple[float, float, float] = OPENAI_CLIP_STD
    crop: bool = True
    rule: str = "hf"

    def __post_init__(self):
        if self.rule not in RULES:
            raise UserValueError(
                f"PreprocessConfig.rule={self.rule!r} is not valid; choose one of {RULES}"
            )
        if self.image_size <= 0:
            raise ValueError(f"PreprocessConfig.image_size={self.image_size} must be positive")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(
                f"PreprocessConfig mean/std need 3 values; got {self.mean!r}, {self.std!r}"
            )
        if min(self.std) <= 0:
            raise ValueError(f"PreprocessConfig.std={self.std!r} must be positive")


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) after resizing the shortest side to `size`; long side int(size * long / short).

    This is transformers' `get_resize_output_image_size(..., default_to_square=False)`.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image has an empty side: {height}x{width}")
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def to_rgb(image: Any) -> np.ndarray:
    """PIL image or uint8 array (H, W), (H, W, 1), (H, W, 3), (H, W, 4) -> uint8 (H, W, 3).

    As transformers' `convert_to_rgb`: grey is repeated, alpha is composited onto white.
    """
    if isinstance(image, Image.Image):
        has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
        if has_alpha:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise TypeError(f"images must be uint8 (or PIL); got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 1|3|4) uint8; got shape {a.shape}")
    if a.shape[-1] == 1:
        return np.repeat(a, 3, axis=-1)
    if a.shape[-1] == 4:
        alpha = a[..., 3:4] / 255
        return np.round(alpha * a[..., :3] + (1 - alpha) * 255).astype(np.uint8)
    return a


def crop_offset(resized: int, size: int, rule: str = "hf") -> int:
    """Where a centre crop of `size` starts along a side of `resized` pixels.

    "hf": (resized - size) // 2 (transformers' `center_crop`); "torchvision":
    int(round((resized - size) / 2.0)) (torchvision's `center_crop`; Python rounds half to
    even, so the two differ by one when resized - size is 3 mod 4).
    """
    if rule not in RULES:
        raise UserValueError(f"rule={rule!r} is not valid; choose one of {RULES}")
    if rule == "torchvision":
        return round((resized - size) / 2.0)  # an int: round() of a float, half to even
    return (resized - size) // 2


def _to_pil(image: Any) -> Image.Image:
    """PIL image or uint8 array (H, W), (H, W, 1), (H, W, 3), (H, W, 4) -> PIL image in the
    array's own mode (L, RGB, RGBA); PIL images pass unchanged."""
    if isinstance(image, Image.Image):
        return image
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise TypeError(f"images must be uint8 (or PIL); got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"image must be (H, W), (H, W, 1|3|4) uint8; got shape {a.shape}")
    return Image.fromarray(a)


def resize_crop_host(image: Any, size: int, crop: bool = True, rule: str = "hf") -> np.ndarray:
    """Shortest side -> `size` (PIL bicubic), then centre crop: uint8 (size, size, 3).

    rule "hf": the arithmetic of transformers' CLIPImageProcessor (PIL backend): RGB
    conversion (`to_rgb`), resize, crop at `crop_offset(..., "hf")`. rule "torchvision":
    OpenAI's `clip._transform`: PIL resize of the image in its own mode (palette images with
    nearest neighbour, as Pillow does), crop at `crop_offset(..., "torchvision")`, then
    `convert("RGB")`. With crop=False both sides go to `size` (PIL bicubic), as transformers'
    SiglipImageProcessor (PIL backend).
    """
    if rule not in RULES:
        raise UserValueError(f"rule={rule!r} is not valid; choose one of {RULES}")
    if rule == "torchvision":
        pil = _to_pil(image)
        w, h = pil.size
        nh, nw = resized_shape(h, w, size) if crop else (size, size)
        resized = pil.resize((nw, nh), resample=Image.BICUBIC)
        top, left = crop_offset(nh, size, rule), crop_offset(nw, size, rule)
        return np.asarray(resized.crop((left, top, left + size, top + size)).convert("RGB"))
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    nh, nw = resized_shape(h, w, size) if crop else (size, size)
    resized = np.asarray(Image.fromarray(rgb).resize((nw, nh), resample=Image.BICUBIC))
    top, left = crop_offset(nh, size, rule), crop_offset(nw, size, rule)
    if top < 0 or left < 0:  # cannot happen: the short side is `size` and long >= short.
        raise AssertionError(f"crop {size} larger than resized image {nh}x{nw}")
    return resized[top : top + size, left : left + size]


def normalize(image: np.ndarray | jax.Array, cfg: PreprocessConfig) -> np.ndarray | jax.Array:
    """(x - mean) / std per channel (last axis); uint8 is first scaled by 1/255.

    Float input is taken to be in [0, 1] already. numpy in -> numpy out (float32; the 1/255
    rescale is done in float64 like transformers), jax in -> jax out.
    """
    if image.shape[-1] != 3:
        raise ValueError(f"normalize expects 3 channels last; got shape {image.shape}")
    if isinstance(image, jax.Array):
        x = image.astype(jnp.float32)
        if image.dtype == jnp.uint8:
            x = x * (1.0 / 255.0)
        return (x - jnp.asarray(cfg.mean, jnp.float32)) / jnp.asarray(cfg.std, jnp.float32)
    a = np.asarray(image)
    if a.dtype == np.uint8:
        x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        x = a.astype(np.float32)
    else:
        raise TypeError(f"normalize expects uint8 or float pixels; got dtype {a.dtype}")
    return (x - np.asarray(cfg.mean, np.float32)) / np.asarray(cfg.std, np.float32)


def preprocess_host(image: Any, cfg: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """One image (PIL or uint8 HWC / HW) -> float32 (S, S, 3), as CLIPImageProcessor
    (SiglipImageProcessor when cfg.crop is False), or as OpenAI's transform when cfg.rule is
    "torchvision"."""
    return normalize(resize_crop_host(image, cfg.image_size, cfg.crop, cfg.rule), cfg)


def preprocess_host_batch(images: Any, cfg: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """A uint8 (N, H, W, C) array or a sequence of images -> float32 (N, S, S, 3)."""
    out = np.empty((len(images), cfg.image_size, cfg.image_size, 3), np.float32)
    for i, im in enumerate(images):
        out[i] = preprocess_host(im, cfg)
    return out


# --- device path ------------------------------------------------------------------------------

_PIL_PRECISION_BITS = 22  # Pillow's fixed-point coefficients (32 - 8 - 2 bits).
_RESIZE_METHODS = ("pil", "jax")


def _pil_bicubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic with a = -0.5 (Pillow's `bicubic_filter`)."""
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=256)
def pil_resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """Pillow's integer bicubic resampling matrix (out_size, in_size), int64, scaled by 2^22.

    A transcription of Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` (Resample.c):
    scale = in/out; support = 2 * max(scale, 1) (antialias when shrinking); output pixel i
    centred at (i + 0.5) * scale reads inputs [int(c - support + 0.5), int(c + support + 0.5))
    clipped to the image, with weights bicubic((j - c + 0.5) / max(scale, 1)) normalised to sum
    1, then rounded half away from zero to 22-bit fixed point.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    weights = np.zeros((out_size, in_size), np.int64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        w = _pil_bicubic((np.arange(lo, hi) - center + 0.5) / filterscale)
        total = w.sum()
        if total != 0.0:
            w = w / total
        w = w * (1 << _PIL_PRECISION_BITS)
        weights[i, lo:hi] = np.trunc(np.where(w < 0, w - 0.5, w + 0.5)).astype(np.int64)
    return weights


def _pil_resize_axis(x: jax.Array, in_size: int, out_size: int, axis: int) -> jax.Array:
    """One separable Pillow pass over `axis` (1 = rows, 2 = columns) of int-valued float32 NHWC.

    The products of 8-bit pixels and 22-bit weights do not fit float32's 24-bit mantissa, so
    the weights are split into bytes (w = a 2^16 + b 2^8 + c, b and c in [0, 256)): each of the
    three matmuls sums products of at most 16 bits over fewer than 256 taps, exact in float32;
    the int32 combination is then Pillow's integer sum, rounded and clipped as it does.
    """
    w = pil_resize_weights(in_size, out_size)
    taps = int((w != 0).sum(axis=1).max())
    if taps >= 256:
        raise ValueError(
            f"downscaling {in_size} -> {out_size} px needs {taps} taps per pixel; at most 255 are "
            "exact on device (use the host path or shrink the image first)"
        )
    parts = [(w >> 16), (w >> 8) & 255, w & 255]
    spec = "nhwc,oh->nowc" if axis == 1 else "nhwc,ow->nhoc"
    total = None
    for shift, part in zip((16, 8, 0), parts):
        y = jnp.einsum(spec, x, jnp.asarray(part, jnp.float32), precision=jax.lax.Precision.HIGHEST)
        y = y.astype(jnp.int32) << shift
        total = y if total is None else total + y
    y = (total + (1 << (_PIL_PRECISION_BITS - 1))) >> _PIL_PRECISION_BITS
    return jnp.clip(y, 0, 255).astype(jnp.float32)


def _jax_resize_axis(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    y = jax.image.resize(x, shape, method="bicubic", antialias=True)
    return jnp.clip(jnp.floor(y + 0.5), 0.0, 255.0)


def preprocess_device(
    images: jax.Array, cfg: PreprocessConfig = PreprocessConfig(), *, resize: str = "pil"
) -> jax.Array:
    """uint8 (N, H, W, 3) -> float32 (N, S, S, 3) on device; jittable (H, W are static).

    Shortest side to S (long side int(S * long / short)), centre crop at `crop_offset` of
    cfg.rule ((H' - S) // 2 for "hf", int(round((H' - S) / 2)) for "torchvision"),
    normalisation; no resize when H = W = S. With cfg.crop False (SigLIP) both
    sides go to S and nothing is cropped; the aspect ratio then changes, and Pillow (13) may
    do the vertical pass first where this path does the horizontal one, so the uint8 rounding
    between the passes can differ (exact when H <= W in our tests; use preprocess="host" for
    bit-exact SigLIP preprocessing of tall images). Resizing is separable, columns then
    rows, each pass rounded and clipped to uint8 as Pillow does:

    * resize="pil" (default): Pillow's fixed-point bicubic as matmuls with its exact integer
      weights (`pil_resize_weights`): bit-identical to the host path of the same rule (and so
      to CLIPImageProcessor, or to OpenAI's transform for RGB images) on every image we tried.
    * resize="jax": `jax.image.resize` (bicubic, Keys a = -0.5, antialias), float weights:
      within one uint8 level of the host path on > 99 % of pixels, at most two.
    """
    if resize not in _RESIZE_METHODS:
        raise ValueError(f"resize={resize!r} is not valid; choose one of {_RESIZE_METHODS}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"preprocess_device expects uint8 (N, H, W, 3); got shape {images.shape}")
    if images.dtype != jnp.uint8:
        raise TypeError(f"preprocess_device expects uint8 pixels; got dtype {images.dtype}")
    n, h, w, _ = images.shape
    s = cfg.image_size
    x = images.astype(jnp.float32)
    nh, nw = resized_shape(h, w, s) if cfg.crop else (s, s)
    if nw != w:
        if resize == "pil":
            x = _pil_resize_axis(x, w, nw, axis=2)
        else:
            x = _jax_resize_axis(x, (n, h, nw, 3))
    if nh != h:
        if resize == "pil":
            x = _pil_resize_axis(x, h, nh, axis=1)
        else:
            x = _jax_resize_axis(x, (n, nh, nw, 3))
    top, left = crop_offset(nh, s, cfg.rule), crop_offset(nw, s, cfg.rule)
    x = x[:, top : top + s, left : left + s]
    x = x * (1.0 / 255.0)
    return (x - jnp.asarray(cfg.mean, jnp.float32)) / jnp.asarray(cfg.std, jnp.float32)
