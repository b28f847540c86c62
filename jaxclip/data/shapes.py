"""The built-in `shapes` dataset: synthetic images of shapes with known attributes and captions.

Every image shows 1-3 copies of one shape (the class label) in one colour and one size, placed
as a group in one of nine regions, over a grey background with a texture. The five attributes
besides the shape are stored as extra labels, and five captions per image are built from them
with varied phrasing ("a large red circle in the top left on a striped background", "there are
two blue squares at the bottom", ...). The visual signal of each attribute is deliberately clear
(saturated object colours on a neutral grey background, sizes ~1.45x apart, no rotation) so a
tiny CLIP trained on it for minutes learns colour, shape and size words.

Generation is offline and deterministic: example `i` of a split is drawn from its own
`numpy.random.default_rng([split_seed, i])`, so any example can be rebuilt on its own with
`render_example(i, seed, image_size)` (the bytes depend on numpy's PCG64 streams and Pillow's
rasteriser, both stable across releases so far). Drawing is numpy + PIL; object edges are anti-aliased by
drawing the shape mask at 4x and box-filtering it down; background patterns are anti-aliased
analytically.

`Shapes` is a real `tfds.core.GeneratorBasedBuilder` (not registered by name: it is built
explicitly by `shapes_builder`). It prepares into array_record files without TensorFlow (images
are given to `tfds.features.Image` as PNG bytes encoded by PIL) and reads back with
`builder.as_data_source(split)`. Builder configs: "64" (default), "128" and "32" (the
resolution study; 10k train / 2k test each), "tiny" (32 px, 256 / 128 examples, for smoke
tests) and "tiny64" (the same at 64 px: a second small dataset for smoke sweeps).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw

from jaxclip import atomic

# ----------------------------------------------------------------------------------------------
# Attributes and their values (order = label index).

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "heart",
    "hexagon",
    "diamond",
)
SHAPE_PLURALS: dict[str, str] = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "star": "stars",
    "cross": "crosses",
    "heart": "hearts",
    "hexagon": "hexagons",
    "diamond": "diamonds",
}
# Saturated colours, all far from the grey backgrounds (RGB, before a per-image jitter of
# +-8 in brightness and +-3 per channel).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 225, 30),
    "green": (40, 170, 60),
    "cyan": (30, 205, 225),
    "blue": (35, 75, 230),
    "purple": (150, 50, 200),
    "white": (248, 248, 248),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
SIZES: tuple[str, ...] = ("small", "medium", "large")
# Object radius as a fraction of the image side (each size ~1.4x the previous one).
SIZE_RADIUS: tuple[float, ...] = (0.07, 0.1, 0.135)
POSITIONS: tuple[str, ...] = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
POSITION_PHRASES: tuple[str, ...] = (
    "in the top left",
    "at the top",
    "in the top right",
    "on the left",
    "in the center",
    "on the right",
    "in the bottom left",
    "at the bottom",
    "in the bottom right",
)
BACKGROUNDS: tuple[str, ...] = ("plain", "striped", "dotted", "checkered", "noisy")
COUNTS: tuple[str, ...] = ("one", "two", "three")
# Extra labels besides `label` (= shape), in the order they are stored.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": COLOR_NAMES,
    "size": SIZES,
    "position": POSITIONS,
    "background": BACKGROUNDS,
    "count": COUNTS,
}
NUM_CAPTIONS = 5
# Per-split seeds (the first entropy word of each example's generator).
SPLIT_SEEDS: dict[str, int] = {"train": 0, "test": 1}

_SUPERSAMPLE = 4  # shape masks are drawn at 4x and box-filtered down (anti-aliasing)
_GRID = (0.25, 0.5, 0.75)  # group centres of the 3x3 positions, as fractions of the side
_PAIR_OFFSET = 1.35  # two objects: centres at +-1.35 r along a random direction
_TRIPLE_OFFSET = 1.5  # three objects: on a circle of 1.5 r (pairwise 2.6 r)
_MAX_EXTENT = 1.06  # outline radius of the widest shape, in units of r
_PATTERN_PERIOD = 1.0 / 8.0  # stripes / dots / checks per side: 8


# ----------------------------------------------------------------------------------------------
# Outlines in units of the object radius r (image coordinates: y points down).


def _regular(n: int, radius: float, start_deg: float) -> np.ndarray:
    ang = np.deg2rad(start_deg + 360.0 * np.arange(n) / n)
    return np.stack([radius * np.cos(ang), radius * np.sin(ang)], axis=1)


def _star() -> np.ndarray:
    outer = _regular(5, 1.05, -90.0)
    inner = _regular(5, 0.44, -90.0 + 36.0)
    return np.stack([outer, inner], axis=1).reshape(10, 2)


def _cross(w: float = 0.33, e: float = 0.95) -> np.ndarray:
    return np.array(
        [
            (-w, -e),
            (w, -e),
            (w, -w),
            (e, -w),
            (e, w),
            (w, w),
            (w, e),
            (-w, e),
            (-w, w),
            (-e, w),
            (-e, -w),
            (-w, -w),
        ]
    )


def _heart(n: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    x = 16.0 * np.sin(t) ** 3
    y = -(13.0 * np.cos(t) - 5.0 * np.cos(2 * t) - 2.0 * np.cos(3 * t) - np.cos(4 * t))
    y = y - 0.5 * (y.max() + y.min())  # centre vertically
    return np.stack([x, y], axis=1) / 16.5


_OUTLINES: dict[str, np.ndarray | None] = {
    "circle": None,  # drawn as an ellipse of radius 0.95
    "square": np.array([(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]),
    "triangle": _regular(3, 1.05, -90.0) + np.array([0.0, 0.12]),
    "star": _star(),
    "cross": _cross(),
    "heart": _heart(),
    "hexagon": _regular(6, 1.0, 0.0),
    "diamond": np.array([(0.0, -1.05), (0.72, 0.0), (0.0, 1.05), (-0.72, 0.0)]),
}


# ----------------------------------------------------------------------------------------------
# Rendering.


def _square_wave(t: np.ndarray, period_px: float) -> np.ndarray:
    """1 on the first half of each cycle of `t`, 0 on the second; edges box-filtered to 1 px.

    `period_px` is the length of one cycle in pixels, so the signed distance to the nearest edge
    in pixels is (distance in cycles) * period_px, and the pixel coverage is 0.5 + that.
    """
    s = t % 1.0
    d = np.where(s < 0.5, np.minimum(s, 0.5 - s), -np.minimum(s - 0.5, 1.0 - s))
    return np.clip(0.5 + d * period_px, 0.0, 1.0)


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A grey (size, size) float background in [0, 255] with the texture `kind`."""
    base = rng.uniform(80.0, 140.0)
    contrast = rng.uniform(35.0, 55.0) * rng.choice((-1.0, 1.0))
    u = (np.arange(size) + 0.5) / size
    x, y = u[None, :], u[:, None]
    period_px = _PATTERN_PERIOD * size
    phase = rng.uniform(0.0, 1.0, size=2)
    if kind == "plain":
        level = np.zeros((size, size))
    elif kind == "striped":
        direction = rng.integers(4)  # horizontal, vertical, two diagonals
        coord = (y, x, (x + y) / np.sqrt(2.0), (x - y) / np.sqrt(2.0))[direction]
        level = _square_wave(coord / _PATTERN_PERIOD + phase[0], period_px)
    elif kind == "checkered":
        # Cells of one period; soft XOR of a vertical and a horizontal square wave.
        a = _square_wave(x / (2 * _PATTERN_PERIOD) + phase[0], 2 * period_px)
        b = _square_wave(y / (2 * _PATTERN_PERIOD) + phase[1], 2 * period_px)
        level = a + b - 2.0 * a * b
    elif kind == "dotted":
        fx = (x / _PATTERN_PERIOD + phase[0]) % 1.0 - 0.5
        fy = (y / _PATTERN_PERIOD + phase[1]) % 1.0 - 0.5
        dist_px = np.sqrt(fx**2 + fy**2) * period_px
        level = np.clip(0.25 * period_px - dist_px + 0.5, 0.0, 1.0)
    elif kind == "noisy":
        level = rng.normal(0.0, 0.5, size=(size, size))
    else:
        raise ValueError(f"unknown background {kind!r}; allowed: {BACKGROUNDS}")
    level = np.broadcast_to(level, (size, size))
    return np.clip(base + contrast * level, 0.0, 255.0)


def _object_centres(count: int, position: int, r: float, rng: np.random.Generator) -> np.ndarray:
    """Centres (count, 2) of the group, as fractions of the side."""
    if count == 1:
        offsets = np.zeros((1, 2))
    elif count == 2:
        ang = np.deg2rad(45.0 * rng.integers(4))
        d = np.array([np.cos(ang), np.sin(ang)]) * _PAIR_OFFSET
        offsets = np.stack([d, -d])
    else:
        ang = rng.uniform(0.0, 2.0 * np.pi / 3.0) + 2.0 * np.pi * np.arange(3) / 3.0
        offsets = np.stack([np.cos(ang), np.sin(ang)], axis=1) * _TRIPLE_OFFSET
    offsets = offsets * r
    centre = np.array([_GRID[position % 3], _GRID[position // 3]])
    centre = centre + rng.uniform(-0.02, 0.02, size=2)
    # Keep the whole group inside the image (moves a large group of three by <= 0.08 of the
    # side: still nearest to its grid point, which are 0.25 apart).
    lo = -offsets.min(axis=0) + _MAX_EXTENT * r
    hi = 1.0 - offsets.max(axis=0) - _MAX_EXTENT * r
    centre = np.clip(centre, lo, hi)
    return centre[None, :] + offsets


def _shape_mask(shape: str, centres: np.ndarray, r: float, size: int) -> np.ndarray:
    """Anti-aliased coverage mask (size, size) in [0, 1] of the objects."""
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    outline = _OUTLINES[shape]
    for cx, cy in centres * big:
        rad = r * big
        if outline is None:
            e = 0.95 * rad
            draw.ellipse((cx - e, cy - e, cx + e, cy + e), fill=255)
        else:
            pts = outline * rad + np.array([cx, cy])
            draw.polygon([tuple(p) for p in pts.tolist()], fill=255)
    small = canvas.reduce(_SUPERSAMPLE)
    return np.asarray(small, dtype=np.float64) / 255.0


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _captions(
    shape: int,
    color: int,
    size: int,
    position: int,
    background: int,
    count: int,
    rng: np.random.Generator,
) -> list[str]:
    """Five captions: the first names every attribute, the other four are drawn from a pool."""
    n = count + 1
    noun = SHAPES[shape] if n == 1 else SHAPE_PLURALS[SHAPES[shape]]
    col, siz = COLOR_NAMES[color], SIZES[size]
    pos, bg = POSITION_PHRASES[position], BACKGROUNDS[background]
    det_size = _article(siz) if n == 1 else COUNTS[count]
    det_col = _article(col) if n == 1 else COUNTS[count]
    full = f"{det_size} {siz} {col} {noun}"  # "a large red circle" / "two small blue squares"
    short = f"{det_col} {col} {noun}"  # "an orange star" / "three green stars"
    be = "is" if n == 1 else "are"
    first = f"{full} {pos} on a {bg} background"
    pool = (
        f"a photo of {full} {pos}",
        f"{full} on a {bg} background",
        f"there {be} {short} {pos}",
        f"an image of {short} on a {bg} background",
        f"a picture of {full}",
        f"{full} {pos} of the image",
        f"a {bg} background with {full} {pos}",
        f"{COUNTS[count]} {siz} {col} {noun}",
        f"a drawing of {short} {pos}",
    )
    chosen = rng.choice(len(pool), size=NUM_CAPTIONS - 1, replace=False)
    return [first] + [pool[int(k)] for k in chosen]


def render_example(index: int, seed: int, image_size: int) -> dict[str, Any]:
    """Draws example `index` of the split with seed `seed` (train 0, test 1) at `image_size`.

    The attributes are drawn independently and uniformly from `numpy.random.default_rng([seed,
    index])`, so each example is reproducible on its own and independent of the resolution.

    Returns:
      dict with `image` (uint8, (image_size, image_size, 3)), `label` (= shape index), the
      extra labels `color`, `size`, `position`, `background`, `count` (ints; count = number of
      objects - 1), `captions` (list of 5 str) and `index`.
    """
    if not isinstance(image_size, int | np.integer) or image_size < 8:
        raise ValueError(f"image_size={image_size!r}: expected an int >= 8")
    if index < 0 or seed < 0:
        raise ValueError(f"index={index}, seed={seed}: expected non-negative ints")
    rng = np.random.default_rng([int(seed), int(index)])
    shape = int(rng.integers(len(SHAPES)))
    color = int(rng.integers(len(COLOR_NAMES)))
    size = int(rng.integers(len(SIZES)))
    position = int(rng.integers(len(POSITIONS)))
    background = int(rng.integers(len(BACKGROUNDS)))
    count = int(rng.integers(len(COUNTS)))
    captions = _captions(shape, color, size, position, background, count, rng)
    # Geometry and texture draws: their own stream, so attributes and captions never depend on
    # them (nor on the resolution, which changes how many noise values are drawn).
    geo = np.random.default_rng([int(seed), int(index), 1])
    r = SIZE_RADIUS[size] * geo.uniform(0.95, 1.05)
    centres = _object_centres(count + 1, position, r, geo)
    jitter = geo.uniform(-8.0, 8.0) + geo.uniform(-3.0, 3.0, size=3)  # mostly brightness
    rgb = np.clip(np.array(COLORS[COLOR_NAMES[color]]) + jitter, 0, 255)
    bg = _background(BACKGROUNDS[background], image_size, geo)
    alpha = _shape_mask(SHAPES[shape], centres, r, image_size)[..., None]
    image = bg[..., None] * (1.0 - alpha) + rgb[None, None, :] * alpha
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return {
        "image": image,
        "label": shape,
        "color": color,
        "size": size,
        "position": position,
        "background": background,
        "count": count,
        "captions": captions,
        "index": int(index),
    }


def _png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# TFDS builder.


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
    """Builder config: image side in pixels and the number of train / test examples."""

    image_size: int = 64
    num_train: int = 10_000
    num_test: int = 2_000


def _config(name: str, image_size: int, num_train: int, num_test: int) -> ShapesConfig:
    return ShapesConfig(
        name=name,
        description=f"{image_size}x{image_size} px, {num_train} train / {num_test} test",
        image_size=image_size,
        num_train=num_train,
        num_test=num_test,
    )


class Shapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Synthetic shapes with colour, size, position, background and count labels + captions."""

    name = "shapes"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {  # noqa: RUF012 (tfds class attribute)
        "1.0.0": "First release.",
        "1.1.0": "Larger objects (radius 0.07 / 0.1 / 0.135 of the side).",
    }
    BUILDER_CONFIGS = [  # noqa: RUF012 (tfds class attribute)
        _config("64", 64, 10_000, 2_000),
        _config("128", 128, 10_000, 2_000),
        _config("32", 32, 10_000, 2_000),
        _config("tiny", 32, 256, 128),
        _config("tiny64", 64, 256, 128),
    ]
    # No checksums file (nothing is downloaded). Also sidesteps tfds 4.9.10's `code_path`, which
    # needs the `importlib_resources` backport that tfds only installs on Python < 3.9.
    code_path = None

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.image_size
        features = {
            "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
            "label": tfds.features.ClassLabel(names=list(SHAPES)),
            **{k: tfds.features.ClassLabel(names=list(v)) for k, v in ATTRIBUTES.items()},
            "captions": tfds.features.Sequence(tfds.features.Text(), length=NUM_CAPTIONS),
            "index": np.int64,
        }
        # Built directly (not `dataset_info_from_configs`, which reads metadata files from the
        # package folder of the builder's module).
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"),
            # Keep generation order: record i of a split is render_example(i, split seed, S).
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager) -> dict[str, Iterator]:
        del dl_manager  # nothing to download
        cfg = self.builder_config
        return {
            "train": self._generate_examples("train", cfg.num_train),
            "test": self._generate_examples("test", cfg.num_test),
        }

    def _generate_examples(self, split: str, num: int):
        from jaxclip.progress import bar

        seed, s = SPLIT_SEEDS[split], self.builder_config.image_size
        name = f"shapes/{self.builder_config.name}"
        for i in bar(range(num), desc=f"generate {name} {split}", unit="img"):
            ex = render_example(i, seed, s)
            ex["image"] = _png_bytes(ex["image"])
            yield i, ex

    # TFDS prints "Downloading and preparing dataset ..." and "... downloaded and prepared"
    # on stdout; nothing is downloaded here, so one line says what is generated, and where.
    def _log_download_bytes(self) -> None:
        from jaxclip.progress import say

        cfg = self.builder_config
        say(
            f"generating shapes/{cfg.name} once ({cfg.num_train} train / {cfg.num_test} test "
            f"images) into {self.data_dir}"
        )

    def _log_download_done(self) -> None:
        pass


def default_data_dir() -> str:
    """`$JAXCLIP_DATA_DIR`, else `~/.cache/jaxclip/tfds`."""
    return os.environ.get("JAXCLIP_DATA_DIR") or os.path.expanduser("~/.cache/jaxclip/tfds")


def _remove_incomplete(version_dir: Path) -> None:
    """Removes TFDS's `incomplete.*` folders of `version_dir` (left by a generation that was
    killed). Only called under the preparation lock, so none of them is in use."""
    import shutil

    for leftover in version_dir.parent.glob(f"incomplete.*_{version_dir.name}"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def _without_tfds_bars() -> Iterator[None]:
    """TFDS's own progress bars (splits, examples, shuffling) off, then back as they were."""
    from tensorflow_datasets.core.utils import tqdm_utils

    before = getattr(tqdm_utils, "_active", True)
    tfds.display_progress_bar(False)
    try:
        yield
    finally:
        tfds.display_progress_bar(before)


def shapes_builder(
    config: str | ShapesConfig = "64", *, data_dir: str | os.PathLike | None = None
) -> Shapes:
    """The `Shapes` builder for `config`, prepared (generated on first use; seconds for "64").

    Args:
      config: "64" (default), "128", "32", "tiny", "tiny64", or a custom `ShapesConfig`.
      data_dir: TFDS data dir; default `default_data_dir()`.
    """
    names = [c.name for c in Shapes.BUILDER_CONFIGS]
    if isinstance(config, str) and config not in names:
        from jaxclip.errors import UserValueError

        raise UserValueError(f"shapes config {config!r} is unknown; allowed: {names}")
    data_dir = os.fspath(data_dir) if data_dir is not None else default_data_dir()
    builder = Shapes(config=config, data_dir=data_dir, file_format="array_record")
    if not builder.is_prepared():
        cfg_name = config if isinstance(config, str) else config.name
        with atomic.file_lock(Path(data_dir) / "shapes" / f".{cfg_name}.lock"):
            builder = Shapes(config=config, data_dir=data_dir, file_format="array_record")
            if not builder.is_prepared():
                _remove_incomplete(Path(builder.data_dir))
                with _without_tfds_bars():  # `_generate_examples` shows its own progress
                    builder.download_and_prepare(
                        download_config=tfds.download.DownloadConfig(
                            compute_stats=tfds.download.ComputeStatsMode.SKIP,
                            try_download_gcs=False,
                        )
                    )
                builder = Shapes(config=config, data_dir=data_dir, file_format="array_record")
    return builder
