"""The extraction entry point (configs/extract.py, experiments/extract.py), end to end.

Expected embeddings come from the model's own encoders on images read straight from the dataset
(`LoadedCLIP.encode_image` / `encode_text`, a separate jitted path from the cached, sharded
extraction); expected counts, labels and skipped files from the data we made.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxclip.config_args import ConfigError
from jaxclip.data import datasets as ds
from jaxclip.data.datasets import load_dataset
from jaxclip.data.subset import maybe_subset
from jaxclip.features.extract import extract_images

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from configs.extract import get_config  # noqa: E402
from experiments import extract as entry  # noqa: E402


def _config(arg: str, tmp_path: Path, **fields):
    config = get_config(arg)
    config.cache_dir = str(tmp_path / "cache")
    config.progress = False
    for k, v in fields.items():
        config[k] = v
    return config


def _read(workdir: Path) -> dict:
    for name in ("results.json", "metrics.csv", "report.md", "timings.json"):
        assert (workdir / name).is_file(), f"{name} missing"
    return json.loads((workdir / "results.json").read_text())


def test_smoke_end_to_end(tiny_model, shapes_data_dir, tmp_path):
    config = _config("smoke", tmp_path, data_dir=str(shapes_data_dir))
    out = entry.run(config, tmp_path / "run")
    results = _read(tmp_path / "run")
    assert results == json.loads(json.dumps(out))  # the returned dict is what was written
    for role in ("train", "test"):
        s = results["splits"][role]
        assert s["num_examples"] == 64 and s["embed_dim"] == 64 and s["num_captions"] == 5 * 64
        assert s["num_skipped"] == 0 and s["skipped"] == []
        assert not Path(s["cache"]).is_absolute()  # an entry name, no path of this machine
        assert (Path(config.cache_dir) / s["cache"] / "complete.json").is_file()
    assert {k: v["num_texts"] for k, v in results["texts"].items()} == {
        "classes": 8,  # shapes has no CLIP-paper templates: "a photo of a {}." x 8 classes
        "generic16": 16,
        "captions/train": 320,
        "captions/test": 320,
    }
    # The cached features equal the model's own encoder on the same 64 images.
    source = maybe_subset(load_dataset("shapes/tiny", "test", data_dir=shapes_data_dir), 64)
    feats = extract_images(
        tiny_model, source, batch_size=32, cache_root=config.cache_dir, progress=False
    )
    assert feats.meta["encoded"] == 0  # read from the cache the run wrote
    assert Path(feats.meta["cache"]).name == results["splits"]["test"]["cache"]
    images = np.stack([source[i]["image"] for i in range(64)])
    np.testing.assert_allclose(
        feats.embeds, tiny_model.encode_image(images, preprocess="device"), atol=1e-5, rtol=0
    )
    # Text caches: the class prompts' cache holds the model's embeddings of those prompts.
    text_entry = Path(config.cache_dir) / results["texts"]["classes"]["cache"]
    with np.load(text_entry / "shard-00000.npz") as z:
        cached = z["embeds"]
    prompts = [f"a photo of a {c}." for c in results["dataset"]["classnames"]]
    np.testing.assert_allclose(cached, tiny_model.encode_text(prompts), atol=1e-5, rtol=0)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Image embeddings" in report and "None: every image decoded." in report
    metrics = (tmp_path / "run" / "metrics.csv").read_text()
    assert "splits/train/num_examples,64.0" in metrics
    # A second run reads everything from the cache and writes the same results.json.
    again = entry.run(config, tmp_path / "run2")
    assert again == out
    timings = json.loads((tmp_path / "run2" / "timings.json").read_text())
    assert timings["throughput"]["train"]["encoded"] == 0
    assert timings["throughput"]["train"]["images_per_s"] is None


def test_mock_cifar10_through_the_entry_point(tiny_model, tmp_path):
    config = _config("tiny_random,cifar10", tmp_path, batch_size=8, texts="classes")
    with tfds.testing.mock_data(num_examples=12):
        results = entry.run(config, tmp_path / "run")
        source = load_dataset("cifar10", "test")
        items = [source[i] for i in range(len(source))]
        feats = extract_images(
            tiny_model, source, batch_size=8, cache_root=config.cache_dir, progress=False
        )
    for role, split in (("train", "train"), ("test", "test")):
        s = results["splits"][role]
        assert s["split"] == split and s["num_examples"] == 12 and s["embed_dim"] == 64
        assert s["num_classes"] == 10 and s["num_captions"] == 0
        assert (
            s["dataset_fingerprint"].startswith("tfds:cifar10")
            and split in s["dataset_fingerprint"]
        )
    assert results["splits"]["train"]["cache"] != results["splits"]["test"]["cache"]
    # 18 CIFAR templates of the CLIP paper x 10 classes.
    assert results["texts"]["classes"]["num_texts"] == 180
    assert "cifar" in results["texts"]["classes"]["source"]
    assert feats.meta["encoded"] == 0
    assert Path(feats.meta["cache"]).name == results["splits"]["test"]["cache"]
    images = np.stack([it["image"] for it in items])
    np.testing.assert_allclose(feats.embeds, tiny_model.encode_image(images), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(feats.labels, [it["label"] for it in items])
    np.testing.assert_array_equal(feats.indices, np.arange(12))


def _jpeg(rng: np.random.Generator, h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """train/{cat,dog}/*.jpg (one JPEG truncated) and val/{cat,dog}/*.jpg, mixed sizes."""
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))  # folder check cache
    ds._VERIFY_CACHE.clear()
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                data = _jpeg(rng, 40 + 7 * i, 48)
                (root / split / cls / f"{i}.jpg").write_bytes(data)
    bad = root / "train" / "dog" / "1.jpg"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated mid-scan: the header still parses
    return root, bad


def test_image_folder_with_a_corrupt_jpeg(tiny_model, folder, tmp_path):
    root, bad = folder
    config = _config("tiny_random,image_folder", tmp_path, data_path=str(root), batch_size=4)
    results = entry.run(config, tmp_path / "run")
    train, val = results["splits"]["train"], results["splits"]["test"]
    assert train["num_examples"] == 5 and val["num_examples"] == 4 and val["split"] == "val"
    assert train["num_skipped"] == 1 and results["num_skipped"] == 1
    (skipped,) = train["skipped"]
    assert Path(skipped["path"]) == bad and skipped["reason"]
    assert val["skipped"] == []
    report = (tmp_path / "run" / "report.md").read_text()
    assert str(bad) in report and "1 file(s) did not decode" in report
    # The kept images, host-resized like the extraction (mixed sizes), give the same rows.
    kept = sorted(p for p in (root / "train").rglob("*.jpg") if p != bad)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in kept]
    source = load_dataset("image_folder", "train", path=root)
    feats = extract_images(
        tiny_model, source, batch_size=4, cache_root=config.cache_dir, progress=False
    )
    assert feats.meta["encoded"] == 0
    np.testing.assert_array_equal(feats.labels, [0, 0, 0, 1, 1])
    np.testing.assert_allclose(
        feats.embeds, tiny_model.encode_image(images, preprocess="host"), atol=1e-5, rtol=0
    )


def test_config_errors_name_the_bad_value_and_the_choices(tmp_path):
    with pytest.raises(ConfigError, match=r"'cifar11'.*cifar10, cifar100"):
        get_config("tiny_random,cifar11")
    bad = {
        "preprocess": (
            "gpu",
            r"config\.preprocess='gpu' is not valid; choose one of: device, host",
        ),
        "splits": ("train,val", r"config\.splits='val' is not valid; choose one of: train, test"),
        "texts": ("classes,photos", r"config\.texts='photos' is not valid; .*generic32"),
        "shard_batches": (0, r"config\.shard_batches=0 must be >= 1"),
    }
    for field, (value, message) in bad.items():
        config = _config("smoke", tmp_path, **{field: value})
        with pytest.raises(ConfigError, match=message):
            entry.run(config, tmp_path / "run")
    config = _config("smoke", tmp_path, splits="train,train")
    with pytest.raises(ConfigError, match=r"names \['train'\] more than once"):
        entry.run(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing ran, nothing was written


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    return subprocess.run(
        [sys.executable, "-m", "experiments.extract", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config=configs/extract.py:smoke,cifar11"], "unknown config variant 'cifar11'"),
        (
            ["--config=configs/extract.py:smoke", "--config.preprocess=gpu"],
            "config.preprocess='gpu' is not valid; choose one of: device, host",
        ),
    ],
)
def test_cli_gives_one_clear_error(args, message, tmp_path):
    proc = _cli(*args, f"--workdir={tmp_path / 'run'}")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("config error:") and message in last, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------------------------
# What the entry point relies on in jaxclip/features (changed with it).


class _ArraySource:
    """A minimal dataset source over a uint8 (N, H, W, 3) array."""

    def __init__(self, images: np.ndarray, name: str = "planted"):
        from jaxclip.data.datasets import DatasetInfo

        self.images, self.skipped = images, []
        self.info = DatasetInfo(
            name=name,
            split="all",
            version="0",
            classnames=("a", "b"),
            num_classes=2,
            has_captions=False,
            image_shape=images.shape[1:3],
            attributes={},
            fingerprint=f"array:{hash(images.tobytes())}",
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": i % 2, "index": i}


def test_resize_on_host_or_device_gives_the_same_features(tiny_model, tmp_path):
    rng = np.random.default_rng(1)
    source = _ArraySource(rng.integers(0, 256, (10, 45, 61, 3), dtype=np.uint8))
    kw = {"batch_size": 4, "progress": False}
    auto = extract_images(tiny_model, source, cache_root=tmp_path / "a", **kw)
    device = extract_images(tiny_model, source, cache_root=tmp_path / "b", host_resize=False, **kw)
    assert auto.meta["resized_on"] == "host"  # CPU devices: PIL in the decode threads
    assert device.meta["resized_on"] == "device"
    # Same pixels by construction (Pillow's integer filter on both sides), so same rows, and
    # the same cache entry name: where the resize ran is not part of the key.
    np.testing.assert_array_equal(auto.embeds, device.embeds)
    assert Path(auto.meta["cache"]).name == Path(device.meta["cache"]).name
    expected = tiny_model.encode_image(list(source.images), preprocess="host")
    np.testing.assert_allclose(auto.embeds, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="host_resize=False is not possible"):
        extract_images(
            tiny_model, source, cache_root=tmp_path / "c", preprocess="host", host_resize=False
        )


def test_shard_size_is_part_of_the_cache_key(tiny_model, tmp_path):
    source = _ArraySource(np.random.default_rng(2).integers(0, 256, (10, 32, 32, 3), np.uint8))
    kw = {"batch_size": 4, "progress": False, "cache_root": tmp_path}
    one = extract_images(tiny_model, source, shard_batches=1, **kw)
    entry = Path(one.meta["cache"])
    before = {p.name: p.read_bytes() for p in entry.iterdir()}
    assert len([n for n in before if n.startswith("shard-")]) == 3
    two = extract_images(tiny_model, source, shard_batches=2, **kw)
    assert Path(two.meta["cache"]) != entry and two.meta["encoded"] == 10
    assert {p.name: p.read_bytes() for p in entry.iterdir()} == before  # left untouched
    again = extract_images(tiny_model, source, shard_batches=1, **kw)
    assert again.meta["encoded"] == 0
    np.testing.assert_array_equal(one.embeds, two.embeds)


def test_the_jitted_function_is_built_once_per_model(tiny_model, tmp_path):
    import jax

    from jaxclip.features import extract as ex
    from jaxclip.models.load import from_params

    devices = jax.devices()
    make = lambda: ex.image_encode_fn(tiny_model, "device")
    first = ex._cached_apply(tiny_model, ("image", "device", None), make, devices)
    assert ex._cached_apply(tiny_model, ("image", "device", None), make, devices) is first
    assert ex._cached_apply(tiny_model, ("image", "host", None), make, devices) is not first
    assert ex._cached_apply(tiny_model, ("image", "device", None), make, devices[:1]) is not first
    # Another model object (e.g. new params) never reuses it.
    other = from_params(tiny_model.config, tiny_model.params, name=tiny_model.name)
    assert ex._cached_apply(other, ("image", "device", None), make, devices) is not first
