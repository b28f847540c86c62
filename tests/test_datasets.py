"""Datasets: TFDS loaders under mock data, a real (fake-content) coco_captions preparation read
without TensorFlow, the not-prepared message, image folders, class names vs. their sources."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxclip.data import classnames as cn
from jaxclip.data import datasets as ds
from jaxclip.data.datasets import DATASETS, DatasetNotPreparedError, load_dataset
from tests.reference_models import open_clip_metadata

TFDS_ROOT = Path(tfds.__file__).parent
# Without TensorFlow installed, reading must not try to import it.
HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    # Folder-check caches and shapes preparations go to a per-test folder, never ~/.cache.
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))
    ds._VERIFY_CACHE.clear()


# ----------------------------------------------------------------------------------------------
# Public TFDS builders under tfds.testing.mock_data (which mocks tfds.data_source too).

MOCKED = [
    # name, split, expected class names, expected image shape, extra keys
    ("cifar10", "test", cn.CIFAR10_CLASSNAMES, (32, 32), {}),
    ("cifar100", "train", cn.CIFAR100_CLASSNAMES, (32, 32), {"coarse_label": 20}),
    ("food101", "validation", cn.FOOD101_CLASSNAMES, None, {}),
    ("eurosat", "train[80%:]", cn.EUROSAT_CLASSNAMES, (64, 64), {}),
    ("imagenette", "validation", cn.imagenette_classnames(), None, {}),
]


@pytest.mark.parametrize(("name", "split", "names", "shape", "extra"), MOCKED)
def test_tfds_loaders_under_mock_data(name, split, names, shape, extra):
    with tfds.testing.mock_data(num_examples=4):
        src = load_dataset(name, split)
        items = [src[i] for i in range(len(src))]
    assert len(src) == 4
    info = src.info
    assert info.name == name and info.split == split
    assert info.classnames == tuple(names) and info.num_classes == len(names)
    assert info.image_shape == shape
    assert not info.has_captions
    assert info.fingerprint.startswith(f"tfds:{name}") and split in info.fingerprint
    assert dict(info.attributes) == {k: info.attributes[k] for k in extra}
    for i, item in enumerate(items):
        assert set(item) == {"image", "label", "index", *extra}
        img = item["image"]
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[-1] == 3
        if shape is not None:
            assert img.shape[:2] == shape
        assert isinstance(item["label"], int) and 0 <= item["label"] < len(names)
        assert item["index"] == i
        for key, n in extra.items():
            assert isinstance(item[key], int) and 0 <= item[key] < n
    assert HAS_TF or "tensorflow" not in sys.modules  # all of it ran without TensorFlow


def test_config_in_name_under_mock_data():
    with tfds.testing.mock_data(num_examples=2):
        src = load_dataset("imagenette/320px-v2", "train")
        assert src.info.name == "imagenette/320px-v2"
        assert "imagenette/320px-v2" in src.info.fingerprint
        assert src[1]["image"].dtype == np.uint8


# ----------------------------------------------------------------------------------------------
# coco_captions: its builder code imports TensorFlow, so it is read from prepared files. A fake
# coco_captions/2014:1.1.0 with the real features is prepared here (real JPEG bytes) and read
# back, then used as mock_data's metadata.


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


class _FakeCocoCaptions(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    name = "coco_captions"
    VERSION = tfds.core.Version("1.1.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="2014")]  # noqa: RUF012
    code_path = None

    def _info(self):
        features = {  # the features of tfds' coco_captions/2014, with numpy dtypes
            "image": tfds.features.Image(encoding_format="jpeg"),
            "image/filename": tfds.features.Text(),
            "image/id": np.int64,
            "objects": tfds.features.Sequence(
                {
                    "id": np.int64,
                    "area": np.int64,
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(num_classes=80),
                    "is_crowd": np.bool_,
                }
            ),
            "captions": tfds.features.Sequence({"text": np.str_, "id": np.int64}),
        }
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features), disable_shuffling=True
        )

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples(3), "val": self._generate_examples(2)}

    def _generate_examples(self, n):
        for i in range(n):
            image = np.full((20 + i, 30, 3), 40 * (i + 1), np.uint8)
            image[..., 0] = 200  # reddish: checks channel order after decoding
            yield (
                i,
                {
                    "image": _jpeg(image),
                    "image/filename": f"{i}.jpg",
                    "image/id": i,
                    "objects": [
                        {
                            "id": 1,
                            "area": 4,
                            "bbox": tfds.features.BBox(0.1, 0.1, 0.5, 0.5),
                            "label": 3,
                            "is_crowd": False,
                        }
                    ],
                    "captions": [{"text": f"image {i} caption {j}", "id": j} for j in range(5)],
                },
            )


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("coco")
    builder = _FakeCocoCaptions(data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP
        )
    )
    return str(data_dir)


def test_coco_captions_reads_prepared_files_without_tensorflow(coco_dir):
    src = load_dataset("coco_captions", "test", data_dir=coco_dir)
    assert len(src) == 3
    info = src.info
    assert info.has_captions and info.classnames == () and info.num_classes == 0
    assert info.image_shape is None and info.version == "1.1.0"
    assert info.fingerprint == "tfds:coco_captions/2014/1.1.0:test:3"
    item = src[2]
    assert set(item) == {"image", "label", "index", "captions"}
    assert item["label"] == -1 and item["index"] == 2
    assert item["captions"] == [f"image 2 caption {j}" for j in range(5)]
    img = item["image"]
    assert img.dtype == np.uint8 and img.shape == (22, 30, 3)
    # JPEG is lossy: compare with what the encoder was given, loosely.
    assert abs(float(img[..., 0].mean()) - 200) < 4 and abs(float(img[..., 1].mean()) - 120) < 4
    assert HAS_TF or "tensorflow" not in sys.modules


def test_coco_captions_under_mock_data(coco_dir):
    with tfds.testing.mock_data(num_examples=4, data_dir=coco_dir):
        src = load_dataset("coco_captions", "test")
        items = [src[i] for i in range(len(src))]
    assert len(items) == 4
    for item in items:
        assert item["image"].dtype == np.uint8 and item["image"].shape[-1] == 3
        assert isinstance(item["captions"], list) and item["captions"]
        assert all(isinstance(c, str) for c in item["captions"])


class _FakeCifar10(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Files laid out as a real cifar10/3.0.2 array_record preparation, with known pixels."""

    name = "cifar10"
    VERSION = tfds.core.Version("3.0.2")
    code_path = None

    def _info(self):
        features = {
            "id": tfds.features.Text(),
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features), disable_shuffling=True
        )

    def _split_generators(self, dl_manager):
        return {"test": self._generate_examples()}

    def _generate_examples(self):
        for i in range(6):
            image = np.zeros((32, 32, 3), np.uint8)
            image[i, :, 1] = 255  # row i is green
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="PNG")
            yield i, {"id": f"test_{i}", "image": buf.getvalue(), "label": (3 * i) % 10}


def test_real_tfds_code_builder_reads_an_array_record_preparation(tmp_path):
    """No mocks: TFDS' own cifar10 builder opens files prepared in its layout, without TF."""
    builder = _FakeCifar10(data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP
        )
    )
    src = load_dataset("cifar10", "test", data_dir=str(tmp_path), download=False)
    assert len(src) == 6 and src.info.version == "3.0.2"
    for i in range(6):
        item = src[i]
        assert item["label"] == (3 * i) % 10 and item["index"] == i
        assert item["image"].shape == (32, 32, 3)
        assert np.flatnonzero(item["image"][:, 0, 1]).tolist() == [i]
    assert src.info.fingerprint == "tfds:cifar10/3.0.2:test:6"
    assert HAS_TF or "tensorflow" not in sys.modules


# ----------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("name", ["cifar10", "food101", "coco_captions", "imagenette/320px-v2"])
def test_not_prepared_message(name, tmp_path):
    with pytest.raises(DatasetNotPreparedError) as err:
        load_dataset(name, "test", data_dir=str(tmp_path), download=False)
    msg = str(err.value)
    assert f"dataset {name.split('/')[0]!r} is not prepared" in msg
    assert "pip install -e .[tf]" in msg
    assert "data_dir=" in msg and str(tmp_path) in msg
    assert "--file_format=array_record" in msg


def test_tfrecord_preparation_is_named_in_the_message(tmp_path):
    version_dir = tmp_path / "cifar10" / "3.0.2"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text('{"name": "cifar10", "fileFormat": "tfrecord"}')
    with pytest.raises(DatasetNotPreparedError, match="prepared only as tfrecord"):
        load_dataset("cifar10", "test", data_dir=str(tmp_path), download=False)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        load_dataset("cifar1000", "test")
    for name in DATASETS:
        assert name in str(err.value)


def test_wrong_arguments():
    with pytest.raises(ValueError, match="path="):
        load_dataset("image_folder", "train")
    with pytest.raises(ValueError, match="use data_dir="):
        load_dataset("cifar10", "test", path="/tmp")
    with pytest.raises(ValueError, match="allowed"):
        load_dataset("shapes/99", "test")


# ----------------------------------------------------------------------------------------------
# Image folders.


def _save(path: Path, size=(12, 10), color=(10, 200, 30), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)


def test_imagenet_folder_maps_wnids_to_clip_names(tmp_path):
    root = tmp_path / "imagenet-mini"
    # n01440764 = tench (label 0 of ImageNet), n02102040 = English springer, n03888257 = parachute
    for wnid, n in [("n03888257", 1), ("n01440764", 2), ("n02102040", 1)]:
        for k in range(n):
            _save(root / "val" / wnid / f"img_{k}.JPEG", fmt="JPEG")
    src = load_dataset("imagenet_folder", "val", path=root)
    assert src.classes == ("n01440764", "n02102040", "n03888257")
    assert src.info.classnames == ("tench", "English Springer Spaniel", "parachute")
    assert [src[i]["label"] for i in range(len(src))] == [0, 0, 1, 2]
    assert src.files[0] == "n01440764/img_0.JPEG"
    assert src.info.image_shape == (10, 12)
    assert src[0]["image"].shape == (10, 12, 3) and src[0]["image"].dtype == np.uint8


def test_imagenet_folder_rejects_non_wnid_folders(tmp_path):
    _save(tmp_path / "train" / "dogs" / "a.png")
    with pytest.raises(ValueError, match="WordNet ids"):
        load_dataset("imagenet_folder", "train", path=tmp_path)


def test_image_folder_class_names_and_order(tmp_path):
    _save(tmp_path / "sea_lion" / "b.png", color=(255, 0, 0))
    _save(tmp_path / "sea_lion" / "a.png", color=(0, 255, 0))
    _save(tmp_path / "ant" / "sub" / "z.png", color=(0, 0, 255))
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    src = load_dataset("image_folder", "all", path=tmp_path)  # "all": path itself
    assert src.info.classnames == ("ant", "sea lion")
    assert src.files == ["ant/sub/z.png", "sea_lion/a.png", "sea_lion/b.png"]
    assert [src[i]["label"] for i in range(3)] == [0, 1, 1]
    assert src[1]["image"][0, 0].tolist() == [0, 255, 0]
    assert src.skipped == []
    with pytest.raises(ValueError, match=r"split='nosuch' is not allowed .* 'train' or 'val'"):
        load_dataset("image_folder", "nosuch", path=tmp_path)


def _folder_with_bad_files(root: Path) -> dict[str, str]:
    _save(root / "cat" / "good1.jpg", fmt="JPEG")
    _save(root / "cat" / "good2.png", size=(40, 30))
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog" / "garbage.jpg").parent.mkdir(parents=True, exist_ok=True)
    (root / "dog" / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 3)
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="JPEG")
    (root / "dog" / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _save(root / "dog" / "good3.jpg", fmt="JPEG")
    return {"empty.jpg": "empty", "garbage.jpg": "", "truncated.jpg": ""}


def test_undecodable_files_are_skipped_and_listed(tmp_path):
    bad = _folder_with_bad_files(tmp_path / "train")
    src = load_dataset("image_folder", "train", path=tmp_path)
    assert src.files == ["cat/good1.jpg", "cat/good2.png", "dog/good3.jpg"]
    assert [src[i]["label"] for i in range(len(src))] == [0, 0, 1]
    skipped = {Path(p).name: reason for p, reason in src.skipped}
    assert set(skipped) == set(bad)
    assert "0 bytes" in skipped["empty.jpg"]
    assert all(reason for reason in skipped.values())
    assert all(Path(p).is_absolute() or p.startswith(str(tmp_path)) for p, _ in src.skipped)
    assert src.info.image_shape is None  # 12x10 and 40x30 images
    # Deterministic: a fresh load (no in-memory cache) gives the same indices.
    ds._VERIFY_CACHE.clear()
    again = load_dataset("image_folder", "train", path=tmp_path)
    assert again.files == src.files and again.info.fingerprint == src.info.fingerprint


def test_strict_raises_naming_the_file(tmp_path):
    _folder_with_bad_files(tmp_path / "train")
    src = load_dataset("image_folder", "train", path=tmp_path, strict=True)
    with pytest.raises(ValueError) as err:
        len(src)
    # The first bad file in sorted order is cat/empty.jpg.
    assert str(tmp_path / "train" / "cat" / "empty.jpg") in str(err.value)


def test_folder_check_is_cached_on_disk(tmp_path):
    _folder_with_bad_files(tmp_path / "train")
    src = load_dataset("image_folder", "train", path=tmp_path)
    n = len(src)
    cache = Path(os.environ["JAXCLIP_DATA_DIR"]) / "folder_checks"
    files = list(cache.glob("*.json"))
    assert len(files) == 1
    ds._VERIFY_CACHE.clear()
    calls = []
    real = ds._check_file
    try:
        ds._check_file = lambda p: calls.append(p) or real(p)
        again = load_dataset("image_folder", "train", path=tmp_path)
        assert len(again) == n
    finally:
        ds._check_file = real
    assert calls == []  # answered from the disk cache


def test_fingerprint_changes_with_content(tmp_path):
    _save(tmp_path / "x" / "a" / "1.png")
    f1 = load_dataset("image_folder", "x", path=tmp_path).info.fingerprint
    f1b = load_dataset("image_folder", "x", path=tmp_path).info.fingerprint
    _save(tmp_path / "x" / "a" / "2.png")
    f2 = load_dataset("image_folder", "x", path=tmp_path).info.fingerprint
    os.utime(tmp_path / "x" / "a" / "1.png", ns=(1, 1))
    f3 = load_dataset("image_folder", "x", path=tmp_path).info.fingerprint
    assert f1 == f1b and len({f1, f2, f3}) == 3


def test_index_out_of_range(tmp_path):
    _save(tmp_path / "x" / "a" / "1.png")
    src = load_dataset("image_folder", "x", path=tmp_path)
    with pytest.raises(IndexError):
        src[1]
    with pytest.raises(IndexError):
        src[-1]


def test_as_rgb_uint8():
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(ds.as_rgb_uint8(grey), np.stack([grey] * 3, -1))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 2] = 7
    assert ds.as_rgb_uint8(rgba).shape == (2, 2, 3) and ds.as_rgb_uint8(rgba)[0, 0, 2] == 7
    with pytest.raises(TypeError):
        ds.as_rgb_uint8(np.zeros((2, 2, 3), np.float32))


# ----------------------------------------------------------------------------------------------
# Class names against their independent sources.


def test_food101_names_match_tfds_label_file():
    labels = (TFDS_ROOT / "image_classification" / "food-101_classes.txt").read_text().split()
    assert cn.FOOD101_CLASSNAMES == tuple(x.replace("_", " ") for x in labels)


def test_eurosat_names_follow_tfds_label_order():
    builder = tfds.builder("eurosat/rgb", data_dir="/tmp/jaxclip-nonexistent-tfds")
    tfds_names = builder.info.features["label"].names
    assert list(cn.EUROSAT_TFDS_TO_CLIP) == tfds_names
    assert cn.EUROSAT_CLASSNAMES[0] == "annual crop land"
    assert cn.EUROSAT_CLASSNAMES[tfds_names.index("SeaLake")] == "lake or sea"


def test_imagenet_names_match_open_clip_and_wnids():
    module = open_clip_metadata()
    assert tuple(module.IMAGENET_CLASSNAMES) == cn.IMAGENET_CLASSNAMES
    wnids = cn.imagenet_wnids()
    assert len(wnids) == 1000 and list(wnids) == sorted(wnids) and len(set(wnids)) == 1000
    names = cn.wnid_to_classname()
    assert names["n01440764"] == "tench" and names["n15075141"] == "toilet paper"


def test_imagenette_names_and_wnids_match_tfds():
    labels = (TFDS_ROOT / "image_classification" / "imagenette_labels.txt").read_text().split()
    assert tuple(labels) == cn.IMAGENETTE_WNIDS
    assert cn.imagenette_classnames() == (
        "tench",
        "English Springer Spaniel",
        "cassette player",
        "chainsaw",
        "church",
        "French horn",
        "garbage truck",
        "gas pump",
        "golf ball",
        "parachute",
    )


def test_cifar_names():
    assert len(cn.CIFAR10_CLASSNAMES) == 10 and len(set(cn.CIFAR10_CLASSNAMES)) == 10
    assert len(cn.CIFAR100_CLASSNAMES) == 100 and len(set(cn.CIFAR100_CLASSNAMES)) == 100
    # The standard fine-label order is alphabetical by the original (underscored) names.
    assert list(cn.CIFAR100_CLASSNAMES) == sorted(cn.CIFAR100_CLASSNAMES)
    assert cn.CIFAR100_CLASSNAMES[41] == "lawn mower" and cn.CIFAR100_CLASSNAMES[99] == "worm"
    assert len(cn.CIFAR100_SUPERCLASSES) == 20
    assert cn.folder_classname("sea_lion") == "sea lion"
