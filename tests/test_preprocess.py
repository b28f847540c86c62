"""CLIP preprocessing against transformers' CLIPImageProcessor (its PIL backend)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessor
from transformers.image_transforms import get_resize_output_image_size
from transformers.image_utils import ChannelDimension

from jaxclip.data.preprocess import (
    DEVICE_HOST_MAX_ABS_DIFF,
    DEVICE_HOST_MEAN_ABS_DIFF,
    PreprocessConfig,
    normalize,
    pil_resize_weights,
    preprocess_device,
    preprocess_host,
    resize_crop_host,
    resized_shape,
)

# (427, 640), (640, 427): the long side resizes to 335, 335 - 224 = 3 mod 4, where the "hf" and
# "torchvision" crop offsets differ.
SIZES = [(64, 64), (100, 300), (300, 100), (500, 375), (31, 45), (224, 224), (225, 224),
         (224, 500), (7, 400), (333, 333), (1000, 750), (427, 640), (640, 427)]  # fmt: skip


@pytest.fixture(scope="module")
def processor():
    return CLIPImageProcessor()  # without torchvision: the PIL backend


def noise(h, w, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def smooth(h, w, seed=0):
    """Natural-like: low-frequency noise upsampled bilinearly."""
    small = noise(max(2, h // 16), max(2, w // 16), seed=seed)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def reference(processor, image) -> np.ndarray:
    out = processor(images=image, return_tensors="np")["pixel_values"][0]
    return out.transpose(1, 2, 0)  # CHW -> HWC


def test_processor_is_the_pil_backend(processor):
    assert type(processor).__name__ == "CLIPImageProcessorPil"


@pytest.mark.parametrize("h,w", SIZES)
def test_host_matches_clip_image_processor(processor, h, w):
    for image in (noise(h, w, seed=h * w), smooth(h, w, seed=h + w)):
        ours = preprocess_host(image)
        assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, reference(processor, image), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "image",
    [
        noise(50, 70, 1)[..., 0],  # (H, W) grey
        noise(80, 60, 1),  # (H, W, 1)
        noise(90, 120, 4),  # RGBA array: alpha onto white
        Image.fromarray(noise(70, 90, 1)[..., 0], "L"),
        Image.fromarray(noise(120, 90, 4), "RGBA"),
        Image.fromarray(noise(64, 48)),
    ],
    ids=["gray2d", "gray3d", "rgba_array", "pil_L", "pil_RGBA", "pil_RGB"],
)
def test_host_converts_to_rgb_like_transformers(processor, image):
    # transformers cannot tell a single (H, W) array from a batch: give it the same pixels as PIL.
    ref_input = (
        Image.fromarray(image) if isinstance(image, np.ndarray) and image.ndim == 2 else image
    )
    np.testing.assert_allclose(preprocess_host(image), reference(processor, ref_input), atol=1e-5)


def test_resized_shape_matches_transformers():
    rng = np.random.default_rng(0)
    for h, w in [*SIZES, *rng.integers(1, 3000, (200, 2)).tolist()]:
        for size in (224, 336, 32):
            dummy = np.zeros((h, w, 1), np.uint8)
            ref = get_resize_output_image_size(
                dummy, size, default_to_square=False, input_data_format=ChannelDimension.LAST
            )
            assert resized_shape(h, w, size) == tuple(ref), (h, w, size)


def test_crop_offsets_by_hand():
    image = np.zeros((224, 301, 3), np.uint8)  # no resize; crop (301 - 224) // 2 = 38 from left
    image[:, 38] = 255
    image[:, 37] = 100
    crop = resize_crop_host(image, 224)
    assert crop.shape == (224, 224, 3) and crop[0, 0, 0] == 255 and crop[0, 1, 0] == 0


def test_normalize_by_hand():
    cfg = PreprocessConfig()
    px = np.array([[[0, 255, 128]]], np.uint8)
    want = (np.array([0, 1, 128 / 255]) - np.array(cfg.mean)) / np.array(cfg.std)
    np.testing.assert_allclose(normalize(px, cfg)[0, 0], want, atol=1e-6)
    np.testing.assert_allclose(np.asarray(normalize(jnp.asarray(px), cfg))[0, 0], want, atol=1e-6)
    floats = np.array([[[0.0, 1.0, 0.5]]], np.float32)  # floats are taken as [0, 1]
    np.testing.assert_allclose(
        normalize(floats, cfg)[0, 0], (floats[0, 0] - cfg.mean) / np.array(cfg.std), atol=1e-6
    )


def test_pil_weights_rows_sum_to_one():
    for n_in, n_out in [(500, 224), (64, 224), (3000, 224), (225, 224)]:
        w = pil_resize_weights(n_in, n_out)
        assert w.shape == (n_out, n_in)
        assert np.abs(w.sum(axis=1) - 2**22).max() <= 8  # rounding of each tap, few taps


@pytest.mark.parametrize("resize,rule", [("pil", "hf"), ("jax", "hf"), ("pil", "torchvision")])
@pytest.mark.parametrize("kind", ["noise", "smooth"])
def test_device_close_to_host(resize, rule, kind):
    make = noise if kind == "noise" else smooth
    cfg = PreprocessConfig(rule=rule)
    fn = jax.jit(lambda x: preprocess_device(x, cfg, resize=resize))
    # "torchvision" differs from "hf" only in the crop offset: the sizes where it moves, an
    # upscale and no resize suffice (and keep the suite fast).
    sizes = SIZES if rule == "hf" else [(427, 640), (640, 427), (31, 45), (224, 224)]
    diffs = []
    for i, (h, w) in enumerate(sizes):
        image = make(h, w, seed=i)
        dev = np.asarray(fn(jnp.asarray(image[None])))[0]
        diffs.append(np.abs(dev - preprocess_host(image, cfg)))
    worst = max(d.max() for d in diffs)
    mean = float(np.mean([d.mean() for d in diffs]))
    assert worst <= DEVICE_HOST_MAX_ABS_DIFF[resize], worst
    assert mean <= DEVICE_HOST_MEAN_ABS_DIFF[resize], mean


@pytest.mark.parametrize("rule", ["hf", "torchvision"])
def test_device_batch_equals_loop_and_jit_equals_eager(rule):
    images = np.stack([noise(43, 64, seed=s) for s in range(3)])  # 47 x 32: 15 = 3 mod 4
    cfg = PreprocessConfig(image_size=32, rule=rule)
    eager = np.asarray(preprocess_device(jnp.asarray(images), cfg))
    jitted = np.asarray(jax.jit(lambda x: preprocess_device(x, cfg))(jnp.asarray(images)))
    np.testing.assert_allclose(eager, jitted, atol=1e-6)  # XLA may fuse the division
    for i in range(3):
        np.testing.assert_allclose(eager[i], preprocess_host(images[i], cfg), atol=1e-6)


def test_device_no_resize_at_target_size():
    image = noise(224, 224)[None]
    out = np.asarray(preprocess_device(jnp.asarray(image)))
    np.testing.assert_allclose(out[0], normalize(image[0], PreprocessConfig()), atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*\(2, 3, 8, 8\)"):
        preprocess_device(jnp.zeros((2, 3, 8, 8), jnp.uint8))
    with pytest.raises(TypeError, match="uint8 pixels; got dtype float32"):
        preprocess_device(jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="resize='nearest'"):
        preprocess_device(jnp.zeros((1, 8, 8, 3), jnp.uint8), resize="nearest")
    with pytest.raises(TypeError, match="uint8"):
        preprocess_host(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 5\)|shape \(8, 8, 5\)"):
        preprocess_host(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="image_size=0"):
        PreprocessConfig(image_size=0)
