"""Cached, data-parallel decompositions (jaxclip.features.decomposition) on the tiny model."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxclip.data.datasets import load_dataset
from jaxclip.features.decomposition import decompose_rows, decomposition_store
from jaxclip.models.load import from_params

ROWS = np.array([0, 3, 5, 6, 9, 11, 2])
FIELDS = ("heads", "mlps", "embed", "bias", "cls_states", "patch_means", "token_scores")


@pytest.fixture(scope="module")
def source(shapes_data_dir):
    return load_dataset("shapes/tiny", "train", data_dir=shapes_data_dir)


@pytest.fixture
def counted(tiny_model, monkeypatch):
    """Counts the model's decomposition calls (each computes one cache shard)."""
    calls = []
    original = tiny_model.decompose_image

    def wrapper(images, **kw):
        calls.append(len(images))
        return original(images, **kw)

    monkeypatch.setattr(tiny_model, "decompose_image", wrapper)
    return calls


def _dirs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((3, 64)).astype(np.float32)


def _run(model, source, root, **kw):
    kw.setdefault("batch_size", 4)
    kw.setdefault("rows_per_shard", 4)
    return decompose_rows(model, source, ROWS, cache_root=root, **kw)


def test_rerun_reads_the_cache_and_resumes(tiny_model, source, counted, tmp_path):
    first = _run(tiny_model, source, tmp_path, directions=_dirs())
    assert counted == [4, 3]  # two shards of 4 and 3 rows (one batch shape: one compile)
    images = np.stack([source[int(r)]["image"] for r in ROWS])
    # The decomposition sums to the image embeddings of the rows asked for, in their order.
    emb = tiny_model.encode_image(images, preprocess="device")
    np.testing.assert_allclose(first.total(), emb, rtol=1e-4, atol=1e-5)
    assert first.token_scores.shape[:3] == (len(ROWS), 2, 2) and first.token_scores.shape[-1] == 3

    again = _run(tiny_model, source, tmp_path, directions=_dirs())
    assert counted == [4, 3]  # nothing recomputed
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(again, f), getattr(first, f))

    store = decomposition_store(
        tiny_model, source, ROWS, directions=_dirs(), batch_size=4, rows_per_shard=4,
        cache_root=tmp_path,
    )  # fmt: skip
    store.shard_path(0).unlink()  # a lost shard is recomputed alone
    resumed = _run(tiny_model, source, tmp_path, directions=_dirs())
    assert counted == [4, 3, 4]
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(resumed, f), getattr(first, f))


def test_key_changes_with_model_data_and_settings(tiny_model, source, shapes_data_dir, tmp_path):
    def key(model=tiny_model, src=source, rows=ROWS, **kw):
        kw.setdefault("batch_size", 4)
        return decomposition_store(model, src, rows, cache_root=tmp_path, **kw).key

    base = key()
    assert key() == base  # stable
    params = jax.tree_util.tree_map(np.asarray, tiny_model.params)
    params["visual_projection"]["kernel"] = params["visual_projection"]["kernel"] * 2
    other_model = from_params(tiny_model.config, params, name=tiny_model.name)
    test_split = load_dataset("shapes/tiny", "test", data_dir=shapes_data_dir)
    changed = {
        "model weights": key(model=other_model),
        "split": key(src=test_split),
        "rows": key(rows=ROWS[::-1]),
        "fewer rows": key(rows=ROWS[:-1]),
        "directions": key(directions=_dirs()),
        "other directions": key(directions=_dirs(1)),
        "preprocess": key(preprocess="host"),
        "batch size": key(batch_size=8),
        "devices": key(devices=jax.devices()[:1]),
        "shard size": key(rows_per_shard=2),
    }
    assert len(jax.devices()) == 2  # conftest's two host devices
    assert base not in changed.values(), changed
    assert len(set(changed.values())) == len(changed)


def test_two_devices_give_the_arrays_of_one(tiny_model, source, tmp_path):
    one = _run(tiny_model, source, tmp_path / "one", directions=_dirs(), devices=jax.devices()[:1])
    two = _run(tiny_model, source, tmp_path / "two", directions=_dirs(), devices=jax.devices())
    for f in FIELDS:
        a, b = getattr(one, f), getattr(two, f)
        assert a.shape == b.shape, f
        # Equal up to float32 rounding (each device runs half the batch: XLA may block the
        # matmuls differently), here about 1e-6 of the largest value.
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=f)


def test_bad_rows_and_index_mismatch(tiny_model, source, tmp_path):
    with pytest.raises(ValueError, match=r"non-empty 1-D"):
        decompose_rows(tiny_model, source, np.array([], int), cache_root=tmp_path)
    with pytest.raises(ValueError, match=r"row 3 is example"):
        decompose_rows(
            tiny_model,
            source,
            np.array([0, 3]),
            cache_root=tmp_path,
            expected_indices=np.array([source[0]["index"], -7]),
        )
