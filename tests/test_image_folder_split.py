"""A folder of class subfolders split by fraction; overlapping splits refused or marked.

The split is checked by its documented properties (per-class held-out counts by the rounding
rule, computed here by hand; disjoint parts whose union is every image; same seed same split,
another seed another split), not against our own output.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from PIL import Image

from configs.probe import get_config
from jaxclip.config_args import ConfigError
from jaxclip.data.datasets import DatasetError, load_dataset
from jaxclip.data.splits import example_keys, shared_examples, stratified_split
from jaxclip.studies.common import check_common
from jaxclip.studies.context import check_split_overlap
from jaxclip.studies.runner import STUDIES, run_studies

# Class folder -> number of images: sizes that exercise the rounding rule and its clipping.
CLASS_SIZES = {"cat": 10, "dog": 7, "red_car": 3, "tree": 2, "zebra": 1}


def make_folder(root, sizes=CLASS_SIZES, layout="classes"):
    """Tiny 8x8 PNGs: DIR/<class>/*.png ("classes") or DIR/train|val/<class>/*.png."""
    rng = np.random.default_rng(0)
    for c, n in sizes.items():
        for i in range(n):
            sub = root / c if layout == "classes" else root / ("val" if i % 3 == 0 else "train") / c
            sub.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(sub / f"img_{i:02d}.png")
    return root


def expected_held_out(n: int, fraction: float) -> int:
    """The documented rule, by hand: round half up, clipped to [1, n-1]; 0 for one image."""
    if n == 1:
        return 0
    return min(max(math.floor(fraction * n + 0.5), 1), n - 1)


def class_of(key: str) -> str:
    return key.split("/")[-2]


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))  # folder check cache
    return make_folder(tmp_path / "pics")


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_split_is_stratified_disjoint_and_complete(folder, fraction):
    train = load_dataset("image_folder", "train", path=folder, test_fraction=fraction)
    test = load_dataset("image_folder", "val", path=folder, test_fraction=fraction)
    everything = load_dataset("image_folder", "all", path=folder)
    k_train, k_test, k_all = example_keys(train), example_keys(test), example_keys(everything)
    assert not set(k_train) & set(k_test)
    assert sorted(k_train + k_test) == sorted(k_all)
    assert len(k_all) == sum(CLASS_SIZES.values())
    for c, n in CLASS_SIZES.items():
        held = sum(class_of(k) == c for k in k_test)
        assert held == expected_held_out(n, fraction), (c, n, held)
    # Labels and class names are those of the whole folder.
    assert train.info.classnames == test.info.classnames == everything.info.classnames
    assert [test[i]["label"] for i in range(len(test))] == [
        everything.info.classnames.index(class_of(k).replace("_", " ")) for k in k_test
    ]
    assert shared_examples(train, test) == 0
    assert shared_examples(everything, test) == len(test)


def test_same_seed_same_split_other_seed_other_split(folder, tmp_path):
    a = example_keys(load_dataset("image_folder", "val", path=folder, seed=3))
    b = example_keys(load_dataset("image_folder", "test", path=folder, seed=3))
    c = example_keys(load_dataset("image_folder", "val", path=folder, seed=4))
    assert a == b  # "val" and "test" both name the held-out part
    assert a != c
    # The same files in another folder (another machine) split the same way, by file name.
    copy = make_folder(tmp_path / "elsewhere")
    d = example_keys(load_dataset("image_folder", "val", path=copy, seed=3))
    assert [k.split("/")[-2:] for k in d] == [k.split("/")[-2:] for k in a]
    # The cached features of the two parts and of other seeds never mix.
    fps = {
        load_dataset("image_folder", s, path=folder, seed=seed).info.fingerprint
        for s in ("train", "val")
        for seed in (3, 4)
    }
    assert len(fps) == 4


def test_stratified_split_of_labels_by_hand():
    labels = np.repeat([0, 1, 2], [5, 4, 1])
    train, test = stratified_split(labels, 0.5, seed=0)
    # 5 -> floor(3.0) = 3, 4 -> 2, 1 -> 0 held out.
    assert np.bincount(labels[test], minlength=3).tolist() == [3, 2, 0]
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(10))
    assert list(test) == sorted(test) and list(train) == sorted(train)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.0, seed=0)


def test_split_folders_keep_working(tmp_path):
    root = make_folder(tmp_path / "split", {"cat": 6, "dog": 6}, layout="splits")
    train = load_dataset("image_folder", "train", path=root)
    val = load_dataset("image_folder", "val", path=root)
    assert (len(train), len(val)) == (8, 4)
    assert all("/train/" in k for k in example_keys(train))
    assert all("/val/" in k for k in example_keys(val))
    with pytest.raises(DatasetError, match=r"split='test' is not a folder .* train, val"):
        load_dataset("image_folder", "test", path=root)


def _config(folder, tmp_path, **fields):
    """The probe study's smoke config on `folder`, cut to its cheapest probes."""
    config = get_config("smoke,image_folder")
    config.data_path = str(folder)
    config.cache_dir = str(tmp_path / "cache")
    p = config.probe
    p.mlp, p.sklearn_logistic, p.attributes, p.save_probe = False, False, False, False
    p.shots, p.shot_repeats, p.l2_grid = (1,), 1, (1.0,)
    for k, v in fields.items():
        config[k] = v
    return config


def test_folder_errors_speak_flags(folder, tmp_path):
    with pytest.raises(ConfigError, match=r"--config.train_split='bad' is not allowed for "):
        check_common(_config(folder, tmp_path, train_split="bad"))
    with pytest.raises(ConfigError, match=r"--config.data_path='.*nope' is not a folder"):
        check_common(_config(tmp_path / "nope", tmp_path))
    with pytest.raises(ConfigError, match=r"--config.data_path='' must name it"):
        check_common(_config("", tmp_path))
    with pytest.raises(ConfigError, match=r"--config.test_fraction=1.5 must be > 0 and < 1"):
        check_common(_config(folder, tmp_path, test_fraction=1.5))
    for config in [_config(folder, tmp_path, train_split="bad")]:
        with pytest.raises(ConfigError) as e:
            check_common(config)
        assert "\n" not in str(e.value) and "split=" not in str(e.value).replace("_split=", "")


def test_overlapping_splits_are_refused_before_any_work(folder, tmp_path):
    config = _config(folder, tmp_path, train_split="all", test_split="all")
    with pytest.raises(ConfigError) as e:
        run_studies(config, tmp_path / "run", ["probe"], model=object())
    msg = str(e.value)
    assert "--config.train_split='all' and --config.test_split='all' are the same split" in msg
    assert "share 23 images" in msg and "--config.allow_split_overlap=True" in msg
    assert not (tmp_path / "run").exists()
    # Overlapping but not identical: "all" against the held-out part.
    config = _config(folder, tmp_path, train_split="all", test_split="val")
    held = sum(expected_held_out(n, 0.2) for n in CLASS_SIZES.values())
    with pytest.raises(ConfigError, match=f"overlap: they share {held} images"):
        run_studies(config, tmp_path / "run", ["probe"], model=object())


def _with_zero_shot(config):
    from configs.zero_shot import study_config

    config.unlock()
    config.zero_shot = study_config()
    return config


def test_allowed_overlap_is_marked_in_report_and_results(
    folder, tmp_path, tiny_model, caplog, monkeypatch
):
    """The runner's marking, end to end; the zero-shot study (seconds) stands in the place of
    a probe by carrying the probes' `fits_on_train` flag, so the runner checks its splits."""
    assert all(STUDIES[n].fits_on_train for n in ("probe", "class_agnostic", "inside"))
    assert not STUDIES["zero_shot"].fits_on_train
    monkeypatch.setitem(
        STUDIES, "zero_shot", dataclasses.replace(STUDIES["zero_shot"], fits_on_train=True)
    )
    config = _with_zero_shot(_config(folder, tmp_path, train_split="all", test_split="all"))
    config.allow_split_overlap = True
    workdir = tmp_path / "run"
    with caplog.at_level("WARNING"):
        run_studies(config, workdir, ["zero_shot"], model=tiny_model)
    n = sum(CLASS_SIZES.values())
    assert any(
        f"share {n} images: accuracies are not held-out" in r.getMessage() for r in caplog.records
    )
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["data"]["train_test_shared"] == n
    assert saved["data"]["test"]["num_examples"] == n
    assert saved["config"]["allow_split_overlap"] is True
    head = (workdir / "report.md").read_text().splitlines()[:6]
    assert any(f"train and test share {n} images: accuracies are not held-out" in x for x in head)


def test_held_out_split_shares_nothing(folder, tmp_path):
    assert check_split_overlap(_config(folder, tmp_path)) == 0


def test_studies_that_fit_nothing_may_use_one_split(folder, tmp_path, tiny_model):
    """Zero-shot alone on every image: no train split is fitted, nothing to refuse."""
    config = _with_zero_shot(_config(folder, tmp_path, train_split="all", test_split="all"))
    workdir = tmp_path / "zs"
    run_studies(config, workdir, ["zero_shot"], model=tiny_model)
    saved = json.loads((workdir / "results.json").read_text())
    assert "train_test_shared" not in saved["data"]
    assert "not held-out" not in (workdir / "report.md").read_text()


def test_identical_splits_of_other_datasets_are_refused(shapes_data_dir, tmp_path):
    config = get_config("smoke")
    config.data_dir, config.cache_dir = str(shapes_data_dir), str(tmp_path / "cache")
    assert check_split_overlap(config) == 0  # "train" and "test" of shapes/tiny
    config.train_split = config.test_split = "test"
    n = len(load_dataset("shapes/tiny", "test", data_dir=shapes_data_dir))
    with pytest.raises(ConfigError, match=f"are the same split: they share {min(n, 64)} images"):
        check_split_overlap(config)
