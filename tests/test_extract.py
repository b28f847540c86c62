"""Feature extraction and its cache: parity, data parallelism, resumption, invalidation."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxclip.data.datasets import load_dataset
from jaxclip.data.subset import maybe_subset
from jaxclip.features.cache import ShardStore
from jaxclip.features.extract import extract_images, extract_texts


@pytest.fixture(scope="module")
def source(shapes_data_dir):
    return load_dataset("shapes/tiny", "train", data_dir=shapes_data_dir)


@pytest.fixture(scope="module")
def images(source):
    return np.stack([source[i]["image"] for i in range(len(source))])


def _entry_dirs(root: Path) -> list[Path]:
    """The cache entries under `root` (not the hidden lock folder)."""
    return [p for p in root.iterdir() if not p.name.startswith(".")]


def _extract(model, source, cache, **kw):
    kw.setdefault("batch_size", 32)
    return extract_images(model, source, cache_root=cache, progress=False, **kw)


def test_matches_direct_encoding_and_carries_labels(tiny_model, source, images, tmp_path):
    feats = _extract(tiny_model, source, tmp_path)
    # Independent path: the model's own jitted encoder on the stacked images, one device.
    expected = tiny_model.encode_image(images, preprocess="device")
    np.testing.assert_allclose(feats.embeds, expected, atol=1e-5, rtol=0)
    assert feats.embeds.dtype == np.float32 and feats.embeds.shape == (len(source), 64)
    items = [source[i] for i in range(len(source))]
    np.testing.assert_array_equal(feats.labels, [it["label"] for it in items])
    np.testing.assert_array_equal(feats.indices, np.arange(len(source)))
    np.testing.assert_array_equal(feats.attributes["color"], [it["color"] for it in items])
    assert feats.captions == [list(it["captions"]) for it in items]
    texts, rows = feats.caption_arrays()
    assert len(texts) == 5 * len(source) and texts[5] == items[1]["captions"][0] and rows[5] == 1


def test_host_preprocess_path(tiny_model, source, images, tmp_path):
    feats = _extract(tiny_model, source, tmp_path, preprocess="host")
    expected = tiny_model.encode_image(list(images), preprocess="host")
    np.testing.assert_allclose(feats.embeds, expected, atol=1e-5, rtol=0)


def test_two_devices_equal_one(tiny_model, source, tmp_path):
    assert jax.device_count() >= 2, "tests/conftest.py asks XLA for 2 CPU devices"
    one = _extract(tiny_model, source, tmp_path / "a", devices=jax.devices()[:1])
    two = _extract(tiny_model, source, tmp_path / "b", devices=jax.devices()[:2])
    np.testing.assert_allclose(one.embeds, two.embeds, atol=1e-5, rtol=0)


def test_last_batch_padding_and_odd_sizes(tiny_model, source, tmp_path):
    sub = maybe_subset(source, 77, seed=3)  # 77 = 2 full batches of 32 + 13 padded rows
    feats = _extract(tiny_model, sub, tmp_path, shard_batches=2)
    expected = tiny_model.encode_image(np.stack([sub[i]["image"] for i in range(77)]))
    assert feats.embeds.shape == (77, 64)
    np.testing.assert_allclose(feats.embeds, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(feats.indices, sub.indices)


def test_resume_after_interruption_is_bit_identical(tiny_model, source, tmp_path):
    full = _extract(tiny_model, source, tmp_path / "full", shard_batches=1)
    with pytest.raises(KeyboardInterrupt):
        _extract(tiny_model, source, tmp_path / "cut", shard_batches=1, stop_after_shards=3)
    (entry,) = _entry_dirs(tmp_path / "cut")
    assert len(list(entry.glob("shard-*.npz"))) == 3 and not (entry / "complete.json").exists()
    resumed = _extract(tiny_model, source, tmp_path / "cut", shard_batches=1)
    assert np.array_equal(full.embeds, resumed.embeds)
    assert (entry / "complete.json").exists()


def test_corrupt_and_stale_shards_are_recomputed(tiny_model, source, tmp_path):
    good = _extract(tiny_model, source, tmp_path, shard_batches=1)
    (entry,) = _entry_dirs(tmp_path)
    shard1, shard2 = entry / "shard-00001.npz", entry / "shard-00002.npz"
    data = bytearray(shard1.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte in the middle of the embeddings
    shard1.write_bytes(bytes(data))
    shard2.write_bytes((entry / "shard-00000.npz").read_bytes())  # a foreign (stale) shard
    (entry / "shard-00003.npz").write_bytes(b"")  # truncated to nothing
    again = _extract(tiny_model, source, tmp_path, shard_batches=1)
    assert np.array_equal(good.embeds, again.embeds)
    # A store with another key pointed at these (intact) shards rejects them as stale.
    foreign = ShardStore(tmp_path, "images", {"other": "model"})
    foreign.path = entry
    assert foreign.read_shard(0, 0, 32) is None


def _entries(root: Path) -> set[str]:
    return {p.name for p in _entry_dirs(root)}


def test_cache_key_changes_with_model_preprocessing_and_split(
    tiny_model, source, shapes_data_dir, tmp_path
):
    from jaxclip.models.load import from_params

    _extract(tiny_model, source, tmp_path)
    base = _entries(tmp_path)
    _extract(tiny_model, source, tmp_path)
    assert _entries(tmp_path) == base  # same everything: reused
    _extract(tiny_model, source, tmp_path, preprocess="host")
    assert len(_entries(tmp_path)) == 2
    test_split = load_dataset("shapes/tiny", "test", data_dir=shapes_data_dir)
    _extract(tiny_model, test_split, tmp_path)
    assert len(_entries(tmp_path)) == 3
    params = jax.tree.map(lambda x: x, tiny_model.params)
    params["visual_projection"]["kernel"] = params["visual_projection"]["kernel"] * 2.0
    changed = from_params(tiny_model.config, params, name=tiny_model.name)
    feats = _extract(changed, source, tmp_path)
    assert len(_entries(tmp_path)) == 4
    plain = _extract(tiny_model, source, tmp_path)
    np.testing.assert_allclose(feats.embeds, 2.0 * plain.embeds, rtol=1e-5, atol=1e-6)


def test_texts_match_model_and_are_cached(tiny_model, tmp_path):
    texts = [f"a photo of {i} red circles" for i in range(37)]
    emb = extract_texts(tiny_model, texts, batch_size=16, cache_root=tmp_path, progress=False)
    np.testing.assert_allclose(emb, tiny_model.encode_text(texts), atol=1e-5, rtol=0)
    (entry,) = _entry_dirs(tmp_path)
    mtime = (entry / "shard-00000.npz").stat().st_mtime_ns
    again = extract_texts(tiny_model, texts, batch_size=16, cache_root=tmp_path, progress=False)
    assert np.array_equal(emb, again)
    assert (entry / "shard-00000.npz").stat().st_mtime_ns == mtime


def test_bad_arguments(tiny_model, source, tmp_path):
    with pytest.raises(ValueError, match="preprocess='gpu' is not valid"):
        _extract(tiny_model, source, tmp_path, preprocess="gpu")
    with pytest.raises(ValueError, match="dtype='float16' is not valid"):
        _extract(tiny_model, source, tmp_path, dtype="float16")
    with pytest.raises(ValueError, match="at least one text"):
        extract_texts(tiny_model, [], cache_root=tmp_path)


_KILL_SCRIPT = """
import sys, time
from jaxclip.models.catalog import open_model
from jaxclip.data.datasets import load_dataset
from jaxclip.features.extract import extract_images

class Slow:
    def __init__(self, source):
        self.source, self.info, self.skipped = source, source.info, []
    def __len__(self):
        return len(self.source)
    def __getitem__(self, i):
        time.sleep(0.01)
        return self.source[i]

source = Slow(load_dataset("shapes/tiny", "train", data_dir=sys.argv[1]))
extract_images(open_model("tiny_random"), source, batch_size=32, shard_batches=1,
               cache_root=sys.argv[2], progress=False, num_workers=0)
print("finished", flush=True)
"""


def test_survives_kill_9_mid_run(tiny_model, source, shapes_data_dir, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(shapes_data_dir), str(cache)], env=env
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(cache.glob("*/shard-00002.npz")):
        assert proc.poll() is None, "the extraction finished or died before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (entry,) = _entry_dirs(cache)
    done = sorted(p.name for p in entry.glob("shard-*.npz"))
    assert 3 <= len(done) < 8 and not (entry / "complete.json").exists()
    # The run killed mid-write leaves at most a temp file, which is never read as a shard.
    resumed = _extract(tiny_model, source, cache, shard_batches=1)
    fresh = _extract(tiny_model, source, tmp_path / "fresh", shard_batches=1)
    np.testing.assert_allclose(resumed.embeds, fresh.embeds, atol=1e-5, rtol=0)
