"""The built-in shapes dataset: deterministic generation, captions that agree with the labels,
pixels that agree with the labels (measured on the image), byte-identical preparations."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from jaxclip.data import shapes
from jaxclip.data.datasets import load_dataset
from jaxclip.data.shapes import (
    BACKGROUNDS,
    COLOR_NAMES,
    COLORS,
    COUNTS,
    POSITION_PHRASES,
    SHAPE_PLURALS,
    SHAPES,
    SIZES,
    render_example,
)

HAS_TF = importlib.util.find_spec("tensorflow") is not None


def test_render_is_deterministic_and_per_example():
    a = render_example(7, 0, 32)
    b = render_example(7, 0, 32)
    assert a["captions"] == b["captions"]
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a["image"].dtype == np.uint8 and a["image"].shape == (32, 32, 3)
    # Another index or another split seed gives another example.
    assert not np.array_equal(a["image"], render_example(8, 0, 32)["image"])
    assert not np.array_equal(a["image"], render_example(7, 1, 32)["image"])


def test_attributes_do_not_depend_on_resolution():
    keys = ("label", "color", "size", "position", "background", "count", "captions")
    for i in range(20):
        lo, hi = render_example(i, 0, 32), render_example(i, 0, 128)
        assert {k: lo[k] for k in keys} == {k: hi[k] for k in keys}
        assert hi["image"].shape == (128, 128, 3)


def test_attributes_cover_all_values_roughly_uniformly():
    exs = [render_example(i, 0, 8) for i in range(2000)]
    for key, n in [("label", 8), ("color", 8), ("size", 3), ("position", 9), ("count", 3)]:
        counts = np.bincount([e[key] for e in exs], minlength=n)
        assert counts.min() > 0.6 * 2000 / n, (key, counts)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text)


def test_captions_agree_with_attributes():
    for i in range(300):
        ex = render_example(i, 0, 8)
        caps = ex["captions"]
        assert len(caps) == 5 and len(set(caps)) == 5
        n = ex["count"] + 1
        shape = SHAPES[ex["label"]]
        noun = shape if n == 1 else SHAPE_PLURALS[shape]
        for cap in caps:
            words = _words(cap)
            # Exactly the right colour and shape words, in the right number.
            assert [w for w in words if w in COLOR_NAMES] == [COLOR_NAMES[ex["color"]]], cap
            shape_words = [w for w in words if w in SHAPES or w in SHAPE_PLURALS.values()]
            assert shape_words == [noun], cap
            # Any size / count / background / position mentioned is the right one.
            assert {w for w in words if w in SIZES} <= {SIZES[ex["size"]]}, cap
            numbers = {w for w in words if w in COUNTS}
            assert numbers <= {COUNTS[ex["count"]]}, cap
            if n > 1:
                assert COUNTS[ex["count"]] in words, cap
            assert {w for w in words if w in BACKGROUNDS} <= {BACKGROUNDS[ex["background"]]}
            phrases = [p for p in POSITION_PHRASES if p in cap]
            assert phrases in ([], [POSITION_PHRASES[ex["position"]]]), cap
        # The first caption names every attribute.
        first = caps[0]
        assert SIZES[ex["size"]] in _words(first)
        assert POSITION_PHRASES[ex["position"]] in first
        assert f"on a {BACKGROUNDS[ex['background']]} background" in first


def _object_mask(image: np.ndarray) -> np.ndarray:
    """Object pixels, found from colour alone: backgrounds are grey with values <= 195."""
    img = image.astype(np.int32)
    saturation = img.max(-1) - img.min(-1)
    return (saturation > 70) | (img.min(-1) > 220)


def test_pixels_agree_with_attributes():
    """Colour, count, position, size and background measured on the images (not on the code)."""
    size_px = 256
    areas: dict[tuple[int, int], list[float]] = {}
    checked = 0
    for i in range(120):
        ex = render_example(i, 0, size_px)
        if BACKGROUNDS[ex["background"]] == "noisy":
            continue  # noise can pass the colour threshold; its other checks are below
        checked += 1
        mask = _object_mask(ex["image"])
        labels, num = ndimage.label(mask)
        sizes = ndimage.sum(mask, labels, range(1, num + 1))
        big = [k + 1 for k, s in enumerate(sizes) if s > 20]
        assert len(big) == ex["count"] + 1, (i, len(big), ex["count"])
        # Colour: the nearest named colour to the mean object colour.
        mean = ex["image"][mask].mean(0)
        nearest = min(COLOR_NAMES, key=lambda c: np.sum((np.array(COLORS[c]) - mean) ** 2))
        assert nearest == COLOR_NAMES[ex["color"]], (i, mean)
        # Position: the group's centroid is nearest to its grid point (0.25 / 0.5 / 0.75).
        ys, xs = np.nonzero(mask)
        centre = np.array([xs.mean(), ys.mean()]) / size_px
        grid = np.array([0.25, 0.5, 0.75])
        col, row = np.abs(grid - centre[0]).argmin(), np.abs(grid - centre[1]).argmin()
        assert row * 3 + col == ex["position"], (i, centre)
        for k in big:
            areas.setdefault((ex["label"], ex["size"]), []).append(sizes[k - 1])
    assert checked > 60
    # Size: for each shape, every small object is smaller than every medium one, and so on.
    for shape in range(len(SHAPES)):
        per_size = [areas.get((shape, s), []) for s in range(3)]
        for s in range(2):
            if per_size[s] and per_size[s + 1]:
                assert max(per_size[s]) < min(per_size[s + 1]), (SHAPES[shape], s)


def test_backgrounds_look_like_their_names():
    seen = set()
    for i in range(60):
        ex = render_example(i, 0, 64)
        kind = BACKGROUNDS[ex["background"]]
        grey = ex["image"].astype(float).mean(-1)
        mask = ndimage.binary_dilation(_object_mask(ex["image"]), iterations=3)
        bg = grey[~mask]
        if kind == "plain":
            assert bg.std() < 1.0, i
        else:
            assert bg.std() > 10.0, (i, kind)
        if kind in ("striped", "checkered"):
            # Two grey levels: most pixels sit near the extremes.
            lo, hi = np.percentile(bg, [5, 95])
            assert np.mean((bg < lo + 8) | (bg > hi - 8)) > 0.5, (i, kind)
        seen.add(kind)
    assert seen == set(BACKGROUNDS)


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        render_example(0, 0, 4)
    with pytest.raises(ValueError, match="non-negative"):
        render_example(-1, 0, 32)


def _prepare(data_dir: Path) -> Path:
    shapes.shapes_builder("tiny", data_dir=data_dir)
    return data_dir / "shapes" / "tiny" / str(shapes.Shapes.VERSION)


def test_two_preparations_are_byte_identical(tmp_path):
    a, b = _prepare(tmp_path / "a"), _prepare(tmp_path / "b")
    names_a = sorted(p.name for p in a.iterdir())
    assert names_a == sorted(p.name for p in b.iterdir())
    records = [n for n in names_a if ".array_record" in n]
    assert len(records) == 2
    for name in names_a:
        if name == "dataset_info.json":  # identical up to nothing volatile: compare parsed
            assert json.loads((a / name).read_text()) == json.loads((b / name).read_text())
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_prepared_records_equal_the_renderer_and_load_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path))
    src = load_dataset("shapes/tiny", "test")  # prepares on first use
    assert (
        tmp_path / "shapes" / "tiny" / str(shapes.Shapes.VERSION) / "dataset_info.json"
    ).is_file()
    assert len(src) == 128
    info = src.info
    assert info.name == "shapes/tiny" and info.classnames == SHAPES
    assert info.image_shape == (32, 32) and info.has_captions
    assert set(info.attributes) == {"color", "size", "position", "background", "count"}
    for i in (0, 1, 77, 127):
        item, ref = src[i], render_example(i, shapes.SPLIT_SEEDS["test"], 32)
        np.testing.assert_array_equal(item["image"], ref["image"])  # PNG is lossless
        assert item["captions"] == ref["captions"]
        for key in ("label", "color", "size", "position", "background", "count"):
            assert item[key] == ref[key]
        assert item["index"] == i
    assert HAS_TF or "tensorflow" not in sys.modules
