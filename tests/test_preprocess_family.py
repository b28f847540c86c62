"""Preprocessing per checkpoint family: OpenAI's / OpenCLIP's transform (torchvision's Resize +
CenterCrop, RGB last) for their checkpoints, transformers' CLIPImageProcessor for HF folders.

The reference is OpenAI's `clip._transform` (clip-anytorch), whose step order and constants are
read from its source here. torchvision does not import beside the CPU torch, so its documented
PIL steps are written out below (`openai_transform`):

    Resize(n, BICUBIC)  torchvision.transforms.functional.resize -> _compute_resized_output_size
                        (short side n, long side int(n * long / short)), then PIL
                        `img.resize((w, h), Image.BICUBIC)` on the image in its own mode;
    CenterCrop(n)       functional.center_crop: top = int(round((h - n) / 2.0)), same for left,
                        PIL `img.crop`;
    _convert_image_to_rgb   image.convert("RGB");
    ToTensor            uint8 HWC -> float32 CHW, divided by 255;
    Normalize           (x - mean) / std per channel, float32.

The photos are scikit-learn's two JPEGs (640x427: the long side resizes to 335 at 224 px and to
47 at 32 px, both 3 mod 4 past the crop, where the two crop rules differ by one pixel).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file
from sklearn.datasets import load_sample_image
from transformers import CLIPImageProcessor

import jaxclip
from jaxclip.data.preprocess import (
    PreprocessConfig,
    crop_offset,
    preprocess_device,
    preprocess_host,
    resize_crop_host,
    resized_shape,
)
from jaxclip.errors import UserError
from tests.reference_models import package_dir, tiny_openai_clip, torch_state_dict

load_mod = importlib.import_module("jaxclip.models.load")


# --- OpenAI's transform, from its source and torchvision's documented steps ------------------


def _openai_source() -> str:
    return (package_dir("clip") / "clip.py").read_text()


def _openai_mean_std() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The Normalize constants of OpenAI's `_transform`, read from clip/clip.py."""
    body = _openai_source().split("def _transform", 1)[1].split("])", 1)[0]
    groups = re.search(r"Normalize\(\(([^)]*)\),\s*\(([^)]*)\)\)", body).groups()
    mean, std = (tuple(float(v) for v in g.split(",")) for g in groups)
    return mean, std


def tv_resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision's `_compute_resized_output_size` for an int size (no max_size): (h, w)."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return new_h, new_w


def openai_crop_uint8(img: Image.Image, n_px: int) -> np.ndarray:
    """Resize, CenterCrop and `_convert_image_to_rgb` of OpenAI's `_transform`: uint8 HWC."""
    nh, nw = tv_resized_size(img.height, img.width, n_px)
    if (nh, nw) != (img.height, img.width):  # torchvision returns the image unchanged then
        img = img.resize((nw, nh), Image.BICUBIC)
    top = round((nh - n_px) / 2.0)  # torchvision: int(round(...)); round() of a float is an int
    left = round((nw - n_px) / 2.0)
    img = img.crop((left, top, left + n_px, top + n_px))
    return np.array(img.convert("RGB"), np.uint8)


def openai_transform(img: Image.Image, n_px: int) -> torch.Tensor:
    """OpenAI's whole `_transform(n_px)`: float32 CHW."""
    mean, std = _openai_mean_std()
    x = torch.from_numpy(openai_crop_uint8(img, n_px)).permute(2, 0, 1).contiguous()
    x = x.to(torch.float32).div(255)  # ToTensor
    return x.sub(torch.tensor(mean)[:, None, None]).div(torch.tensor(std)[:, None, None])


def test_openai_transform_order_and_constants_from_its_source():
    body = _openai_source().split("def _transform", 1)[1].split("])", 1)[0]
    steps = re.findall(r"\b(Resize|CenterCrop|_convert_image_to_rgb|ToTensor|Normalize)\b", body)
    assert steps == ["Resize", "CenterCrop", "_convert_image_to_rgb", "ToTensor", "Normalize"]
    assert "interpolation=BICUBIC" in body
    convert = _openai_source().split("def _convert_image_to_rgb", 1)[1].split("def ", 1)[0]
    assert 'image.convert("RGB")' in convert
    mean, std = _openai_mean_std()
    assert mean == PreprocessConfig().mean and std == PreprocessConfig().std
    # OpenCLIP's eval transform: Resize, CenterCrop, then the RGB conversion.
    oc = (package_dir("open_clip") / "transform.py").read_text()
    shortest = oc.split("assert resize_mode == 'shortest'", 1)[1]
    assert shortest.index("CenterCrop(image_size)") < shortest.index("MaybeConvertMode()")


# --- images --------------------------------------------------------------------------------


def _photo(name: str) -> np.ndarray:
    return load_sample_image(name)  # (427, 640, 3) uint8


def _rgba() -> Image.Image:
    """china.jpg with flower.jpg's grey as alpha, fully transparent in one block."""
    alpha = np.asarray(Image.fromarray(_photo("flower.jpg")).convert("L")).copy()
    alpha[100:200, 300:420] = 0
    return Image.fromarray(np.dstack([_photo("china.jpg"), alpha]), "RGBA")


def images() -> dict[str, Image.Image]:
    china = Image.fromarray(_photo("china.jpg"))
    return {
        "china": china,
        "flower": Image.fromarray(_photo("flower.jpg")),
        "china_portrait": china.transpose(Image.Transpose.ROTATE_90),  # 427x640
        "rgba": _rgba(),
        "palette": Image.fromarray(_photo("flower.jpg")).quantize(64),
        "gray": china.convert("L"),
    }


IMAGES = images()
IMAGES_RGB = ("china.jpg", "flower.jpg")
TV = PreprocessConfig(rule="torchvision")


# --- the rule itself -----------------------------------------------------------------------


def test_crop_offsets_by_hand():
    # 640x427 at 224: long side int(224 * 640 / 427) = 335, 335 - 224 = 111 (3 mod 4).
    assert resized_shape(427, 640, 224) == (224, 335)
    assert crop_offset(335, 224, "hf") == 55 and crop_offset(335, 224, "torchvision") == 56
    # 109 = 1 mod 4: 54.5 rounds half to even, to 54 = floor.
    assert crop_offset(333, 224, "hf") == crop_offset(333, 224, "torchvision") == 54
    assert crop_offset(224, 224, "torchvision") == 0 and crop_offset(226, 224, "hf") == 1


def test_offsets_and_sizes_match_torchvision_formulas():
    rng = np.random.default_rng(0)
    for h, w in rng.integers(1, 3000, (300, 2)).tolist():
        for size in (224, 336, 32):
            nh, nw = tv_resized_size(h, w, size)
            assert resized_shape(h, w, size) == (nh, nw), (h, w, size)
            for side in (nh, nw):
                assert crop_offset(side, size, "torchvision") == round((side - size) / 2.0)
                assert crop_offset(side, size, "hf") == (side - size) // 2
                differ = crop_offset(side, size, "hf") != crop_offset(side, size, "torchvision")
                assert differ == ((side - size) % 4 == 3)


@pytest.mark.parametrize("name", list(IMAGES))
def test_torchvision_rule_matches_openai_transform(name):
    image = IMAGES[name]
    want = openai_crop_uint8(image, 224)
    np.testing.assert_array_equal(resize_crop_host(image, 224, rule="torchvision"), want)
    ref = openai_transform(image, 224).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(preprocess_host(image, TV), ref, rtol=0, atol=1e-6)
    # The same pixels as a uint8 array (grey (H, W), RGB, RGBA) give the same crop.
    if image.mode in ("L", "RGB", "RGBA"):
        got = resize_crop_host(np.asarray(image), 224, rule="torchvision")
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["china", "flower", "china_portrait", "rgba", "palette"])
def test_hf_rule_is_not_openai_transform(name):
    """Where the rules differ (crop offset; RGB conversion before the resize), "hf" is off
    OpenAI's transform by whole uint8 levels: the check above can fail."""
    image = IMAGES[name]
    hf = resize_crop_host(image, 224, rule="hf").astype(int)
    assert np.abs(hf - openai_crop_uint8(image, 224)).max() > 10


def test_hf_rule_still_matches_clip_image_processor():
    processor = CLIPImageProcessor()
    for name in ("china", "rgba", "palette"):
        image = IMAGES[name]
        ref = processor(images=image, return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
        np.testing.assert_allclose(preprocess_host(image), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("rule", ["hf", "torchvision"])
def test_device_equals_host_for_both_rules(rule):
    cfg = PreprocessConfig(rule=rule)
    fn = jax.jit(lambda x: preprocess_device(x, cfg))
    for name in ("china", "china_portrait"):
        rgb = np.asarray(IMAGES[name])
        dev = np.asarray(fn(rgb[None]))[0]
        np.testing.assert_allclose(dev, preprocess_host(rgb, cfg), rtol=0, atol=1e-6)


def test_bad_rule_is_one_line_naming_choices():
    with pytest.raises(UserError, match=r"rule='openai'.*\('hf', 'torchvision'\)"):
        PreprocessConfig(rule="openai")
    with pytest.raises(UserError, match=r"rule='tv'"):
        resize_crop_host(np.zeros((8, 8, 3), np.uint8), 4, rule="tv")


# --- the rule follows the checkpoint's family ------------------------------------------------


@pytest.fixture(scope="module")
def openai_model():
    """A tiny OpenAI-format CLIP (OpenAI's clip/model.py), 32 px input."""
    return tiny_openai_clip(
        embed_dim=16,
        image_resolution=32,
        vision_layers=2,
        vision_width=64,  # OpenAI: heads = width // 64 = 1
        vision_patch_size=8,
        context_length=77,
        vocab_size=300,
        transformer_width=32,
        transformer_heads=1,
        transformer_layers=1,
    )


@pytest.fixture(scope="module")
def openai_pt(openai_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("openai") / "ViT-tiny-openai.pt"
    torch.save(openai_model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def loaded(openai_pt):
    return jaxclip.load(openai_pt, allow_pickle=True)


@pytest.fixture(scope="module")
def hf_twin(loaded):
    """The same weights with the HF processor's rule."""
    return dataclasses.replace(loaded, preprocess=dataclasses.replace(loaded.preprocess, rule="hf"))


def test_openai_pt_through_encode_image_matches_openai(openai_model, loaded, hf_twin):
    assert loaded.preprocess.rule == "torchvision" and loaded.preprocess.image_size == 32
    # 640x427 at 32 px: 47x32, crop left int(round(7.5)) = 8 (HF: 7).
    assert crop_offset(resized_shape(427, 640, 32)[1], 32, "torchvision") == 8
    pil = [IMAGES[n] for n in ("china", "flower", "rgba", "palette", "gray", "china_portrait")]
    with torch.no_grad():
        ref = openai_model.encode_image(torch.stack([openai_transform(im, 32) for im in pil]))
    ref = ref.numpy()
    np.testing.assert_allclose(loaded.encode_image(pil, batch_size=2), ref, rtol=0, atol=1e-5)
    rgb = np.stack([_photo("china.jpg"), _photo("flower.jpg")])
    device = loaded.encode_image(rgb, preprocess="device")
    np.testing.assert_allclose(device, ref[:2], rtol=0, atol=1e-5)
    # The HF rule on the same weights is measurably off: the comparison above can fail.
    assert np.abs(hf_twin.encode_image(pil[:2]) - ref[:2]).max() > 1e-3


def test_rule_per_format(openai_model, loaded, tmp_path):
    sd = torch_state_dict(openai_model)
    save_file(sd, str(tmp_path / "openai.safetensors"))
    assert jaxclip.load(tmp_path / "openai.safetensors").preprocess.rule == "torchvision"
    loaded.save(tmp_path / "oc", layout="open_clip")  # open_clip_config.json + safetensors
    assert json.loads((tmp_path / "oc" / "open_clip_config.json").read_text())
    assert jaxclip.load(tmp_path / "oc").preprocess.rule == "torchvision"
    loaded.save(tmp_path / "hf", layout="transformers")  # config.json + model.safetensors
    assert jaxclip.load(tmp_path / "hf").preprocess.rule == "hf"


class _PhotoSource:
    """A minimal dataset source over uint8 (N, H, W, 3) photos."""

    def __init__(self, photos: np.ndarray):
        from jaxclip.data.datasets import DatasetInfo

        self.photos, self.skipped = photos, []
        self.info = DatasetInfo(
            name="photos",
            split="all",
            version="0",
            classnames=("a", "b"),
            num_classes=2,
            has_captions=False,
            image_shape=photos.shape[1:3],
            attributes={},
            fingerprint="sklearn-photos",
        )

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.photos[i], "label": i % 2, "index": i}


def test_rule_is_part_of_the_feature_cache_key(loaded, hf_twin, tmp_path):
    from jaxclip.features.extract import extract_images

    # 64x43 photos: at 32 px the long side is 47, 15 = 3 mod 4 past the crop.
    small = [Image.fromarray(_photo(n)).resize((64, 43), Image.BICUBIC) for n in IMAGES_RGB]
    source = _PhotoSource(np.stack([np.asarray(im) for im in small]))
    kw = {"batch_size": 2, "progress": False}
    metas, embeds = [], []
    for model in (hf_twin, loaded):
        feats = extract_images(model, source, cache_root=tmp_path, **kw)
        assert feats.meta["resized_on"] == "host"  # CPU devices: PIL in the decode threads
        want = model.encode_image(list(source.photos), preprocess="host")
        np.testing.assert_allclose(feats.embeds, want, rtol=0, atol=1e-5)
        metas.append(json.loads((Path(feats.meta["cache"]) / "meta.json").read_text()))
        embeds.append(feats.embeds)
    assert [m["preprocess_config"]["rule"] for m in metas] == ["hf", "torchvision"]
    assert metas[0]["key"] != metas[1]["key"]
    assert np.abs(embeds[0] - embeds[1]).max() > 1e-4  # the two rules' features differ
    # Resized on the device instead: the same rows and the same entry name.
    device = extract_images(loaded, source, cache_root=tmp_path / "d", host_resize=False, **kw)
    assert device.meta["resized_on"] == "device" and device.meta["encoded"] == 2
    assert Path(device.meta["cache"]).name == Path(feats.meta["cache"]).name  # `feats`: loaded's
    np.testing.assert_allclose(device.embeds, embeds[1], rtol=0, atol=1e-6)


# --- names in results.json and cache keys: no path of this machine ---------------------------


def test_models_are_named_as_given_not_by_absolute_paths(loaded, tmp_path, monkeypatch):
    from jaxclip.models import catalog

    # A catalog model trained here is named by its catalog name, not its folder in the cache.
    folder = catalog.models_root(tmp_path) / "train_clip-test" / "model"
    loaded.save(folder, layout="transformers")
    catalog.record_trained("mini", folder, cache_dir=tmp_path)
    mini = catalog.open_model("mini", cache_dir=str(tmp_path))
    assert mini.name == "mini" and mini.fingerprint == loaded.fingerprint
    assert mini.preprocess.rule == "hf"  # a transformers folder
    # A local path keeps the spelling it was given (relative stays relative).
    monkeypatch.chdir(folder.parent)
    assert catalog.open_model("model").name == "model"
    assert catalog.open_model("./model").name == "./model"
    assert jaxclip.load("model").name == str(folder.resolve())  # `load` itself still resolves
