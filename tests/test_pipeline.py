"""Input pipeline: order, padding mask, multi-process sharding, resumption, host resizing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclip.data.datasets import DatasetInfo, DatasetSource, load_dataset
from jaxclip.data.pipeline import batches, num_batches


class ListSource(DatasetSource):
    """A hand-made source: image i is filled with the value i (so rows are recognisable)."""

    def __init__(self, n, shape=(6, 5), captions=False, attributes=None, fail_at=None):
        self.n, self.shape, self.fail_at = n, shape, fail_at
        self.captions = captions
        self.attributes = attributes or {}
        self.skipped = []
        self.verified = 0

    @property
    def info(self):
        return DatasetInfo(
            name="list",
            split="test",
            version="0",
            classnames=("a", "b", "c"),
            num_classes=3,
            has_captions=self.captions,
            image_shape=self.shape,
            attributes=self.attributes,
            fingerprint="list",
        )

    def verify(self):
        self.verified += 1

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError(f"cannot read {i}")
        h, w = self.shape or (4 + i % 3, 7 - i % 2)
        item = {"image": np.full((h, w, 3), i % 256, np.uint8), "label": i % 3, "index": i}
        for k in self.attributes:
            item[k] = (i * 7) % 5
        if self.captions:
            item["captions"] = [f"cap {i} {j}" for j in range(i % 3 + 1)]
        return item


def _all(it):
    return list(it)


def test_num_batches():
    assert [num_batches(n, 4) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    for bad in [(-1, 4), (3, 0), (3, 1.5)]:
        with pytest.raises(ValueError):
            num_batches(*bad)


@pytest.mark.parametrize("num_workers", [0, 3])
def test_order_padding_and_dtypes(num_workers):
    src = ListSource(10)
    out = _all(batches(src, 4, num_workers=num_workers))
    assert src.verified == 1
    assert len(out) == 3
    assert [b["index"].tolist() for b in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, -1, -1]]
    assert [b["valid"].tolist() for b in out][-1] == [True, True, False, False]
    assert all(b["valid"].all() for b in out[:2])
    for b in out:
        assert b["image"].dtype == np.uint8 and b["image"].shape == (4, 6, 5, 3)
        assert b["label"].dtype == np.int32 and b["index"].dtype == np.int64
        assert b["valid"].dtype == bool
        for r, i in enumerate(b["index"]):
            if i >= 0:
                assert (b["image"][r] == i).all() and b["label"][r] == i % 3
    assert (out[-1]["image"][2:] == 0).all() and out[-1]["label"][2:].tolist() == [-1, -1]
    assert "captions" not in out[0]


def test_threads_equal_sync_and_any_prefetch():
    src = ListSource(23, captions=True, attributes={"color": ("r", "g", "b", "x", "y")})
    ref = _all(batches(src, 5, num_workers=0))
    for workers, prefetch in [(1, 0), (2, 1), (4, 5)]:
        got = _all(batches(src, 5, num_workers=workers, prefetch=prefetch))
        assert len(got) == len(ref)
        for a, b in zip(got, ref):
            assert a.keys() == b.keys()
            for k in a:
                if k == "captions":
                    assert a[k] == b[k]
                else:
                    np.testing.assert_array_equal(a[k], b[k])


def test_captions_and_attributes_are_batched_and_padded():
    src = ListSource(5, captions=True, attributes={"color": ("r", "g", "b", "x", "y")})
    last = _all(batches(src, 4, num_workers=2))[-1]
    assert last["captions"] == [["cap 4 0", "cap 4 1"], [], [], []]
    assert last["color"].dtype == np.int32 and last["color"].tolist() == [(4 * 7) % 5, -1, -1, -1]


@pytest.mark.parametrize(("n", "batch", "procs"), [(10, 4, 2), (13, 8, 4), (3, 6, 3), (16, 8, 2)])
def test_shards_interleave_back_to_the_single_process_order(n, batch, procs):
    src = ListSource(n, captions=True)
    single = _all(batches(src, batch, num_workers=0))
    shards = [
        _all(batches(src, batch, shard_index=p, shard_count=procs, num_workers=2))
        for p in range(procs)
    ]
    assert all(len(s) == len(single) for s in shards)
    for b, ref in enumerate(single):
        parts = [s[b] for s in shards]
        assert all(len(p["index"]) == batch // procs for p in parts)
        for key in ("image", "label", "index", "valid"):
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), ref[key])
        assert [c for p in parts for c in p["captions"]] == ref["captions"]
    # Every example appears exactly once across processes and batches.
    seen = np.concatenate([p["index"][p["valid"]] for s in shards for p in s])
    assert sorted(seen.tolist()) == list(range(n))


def test_resume_with_start_batch():
    src = ListSource(29)
    full = _all(batches(src, 4, num_workers=2))
    for start in (0, 3, 7, 8):
        resumed = _all(batches(src, 4, num_workers=2, start_batch=start))
        assert [b["index"].tolist() for b in resumed] == [b["index"].tolist() for b in full[start:]]
    # Resuming one process of two gives that process's part of the same batches.
    part = _all(batches(src, 4, shard_index=1, shard_count=2, start_batch=5, num_workers=0))
    assert [b["index"].tolist() for b in part] == [b["index"][2:].tolist() for b in full[5:]]


def test_mixed_size_folder_images_resized_to_one_size(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    sizes = [(40, 30), (25, 50), (64, 64), (17, 33), (90, 20)]
    for k, (w, h) in enumerate(sizes):
        path = Path(tmp_path, "data", "train", f"class_{k % 2}", f"{k}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    src = load_dataset("image_folder", "train", path=tmp_path / "data")
    assert src.info.image_shape is None
    with pytest.raises(ValueError, match="image_size"):
        next(batches(src, 2))
    from jaxclip.data.preprocess import resize_crop_host

    out = _all(batches(src, 2, image_size=16, num_workers=2))
    images = np.concatenate([b["image"][b["valid"]] for b in out])
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.uint8
    for i in range(5):
        np.testing.assert_array_equal(images[i], resize_crop_host(src[i]["image"], 16))


def test_uniform_images_pass_through_unchanged():
    src = ListSource(3, shape=(8, 8))
    out = _all(batches(src, 3, num_workers=0))[0]
    same = _all(batches(src, 3, image_size=8, num_workers=0))[0]
    np.testing.assert_array_equal(out["image"], same["image"])
    assert out["image"].shape == (3, 8, 8, 3)


def test_wrong_shape_without_image_size_is_an_error():
    class Liar(ListSource):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            if i == 2:
                item["image"] = np.zeros((3, 3, 3), np.uint8)
            return item

    with pytest.raises(ValueError, match=r"list\[2\]"):
        _all(batches(Liar(4), 2, num_workers=0))


def test_shapes_dataset_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path))
    src = load_dataset("shapes/tiny", "test")
    out = _all(batches(src, 50, num_workers=2))
    assert len(out) == 3 and out[-1]["valid"].sum() == 128 - 100
    b = out[0]
    assert b["image"].shape == (50, 32, 32, 3)
    assert set(b) == {"image", "label", "index", "valid", "captions", *src.info.attributes}
    assert len(b["captions"]) == 50 and all(len(c) == 5 for c in b["captions"])
    assert b["captions"][3] == src[3]["captions"]


def test_errors_propagate_and_arguments_are_checked():
    with pytest.raises(RuntimeError, match="cannot read 5"):
        _all(batches(ListSource(8, fail_at=5), 2, num_workers=2))
    src = ListSource(8)
    for kwargs in [
        {"batch_size": 5, "shard_count": 2},
        {"batch_size": 4, "shard_index": 2, "shard_count": 2},
        {"batch_size": 0},
        {"batch_size": 4, "image_size": 0},
        {"batch_size": 4, "start_batch": -1},
        {"batch_size": 4, "num_workers": -1},
    ]:
        with pytest.raises(ValueError):
            next(batches(src, **kwargs))


def test_closing_early_stops_the_workers():
    before = threading.active_count()
    it = batches(ListSource(1000), 10, num_workers=4, prefetch=3)
    next(it)
    it.close()
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before
