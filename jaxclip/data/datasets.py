"""Datasets as random-access sources of uint8 images: `load_dataset(name, split)`.

`DATASETS` is the explicit name -> loader table. Every loader returns a `DatasetSource`: `len`,
`source[i] -> dict` and `.info` (a frozen `DatasetInfo`). An item holds `image` (np.uint8
(H, W, 3), RGB), `label` (int; -1 if the dataset has none), `index` (int, = i), one int per
extra attribute label (`info.attributes`), and `captions` (list[str]) for captioned datasets.

TFDS datasets are read with `tfds.data_source` from an array_record preparation, so reading
needs no TensorFlow (images are decoded by tfds with PIL). Preparing most public TFDS datasets
does need TensorFlow (`pip install -e .[tf]`); without it an unprepared dataset raises
`DatasetNotPreparedError` saying how to prepare it. The built-in `shapes` dataset is generated
offline on first use. Folder datasets (`imagenet_folder`, `image_folder`) read class subfolders,
either in split folders (`DIR/train/<class>`, `DIR/val/<class>`) or in one folder (`DIR/<class>`)
split per class by a test fraction and a seed (`folder_split`, `jaxclip.data.splits`);
files that do not decode are skipped (listed in `source.skipped`) or, with `strict=True`, raise.
`webdataset` reads tar shards (`jaxclip.data.webdataset`), `caption_pairs` a CSV / TSV / JSONL
of image, caption rows (`jaxclip.data.caption_pairs`), and `cb/<name>` any dataset of
CLIP_benchmark's table (`jaxclip.data.clip_benchmark`). A multi-label source's items carry
`labels_multi` (bool (num_classes,); `info.multi_label`).

Data dirs: `data_dir` if given, else `$JAXCLIP_DATA_DIR` if set, else TFDS's default
(`$TFDS_DATA_DIR` or ~/tensorflow_datasets) for public datasets and ~/.cache/jaxclip/tfds for
`shapes`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip.data import classnames as cn
from jaxclip.data.splits import TEST_PARTS, TRAIN_PARTS
from jaxclip.errors import UserError, UserFileNotFoundError, UserValueError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
_WNID = re.compile(r"^n\d{8}$")


class DatasetNotPreparedError(UserError, FileNotFoundError):
    """A TFDS dataset has no array_record preparation where we looked."""


class DatasetError(UserValueError):
    """A bad dataset name, split, folder or file (the message names it and the valid ones)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset split is: names of its labels and an identity for caches.

    Attributes:
      name: dataset name as in `DATASETS`, with its config if not the default ("shapes/128").
      split: split as given (TFDS slicing such as "train[:80%]" included).
      version: dataset version (TFDS version; "folder" for image folders).
      classnames: prompt-ready class names, index = label.
      num_classes: len(classnames).
      has_captions: whether items carry `captions`.
      image_shape: (H, W) if every image has that size, else None.
      attributes: extra label name -> names of its values (index = value).
      fingerprint: identifies the exact content (TFDS full name + split + length; for folders a
        hash of the sorted relative paths, sizes and modification times).
      multi_label: items carry `labels_multi`, a bool (num_classes,) vector of the classes
        present (VOC2007-style multi-label classification; `label` is then -1).
    """

    name: str
    split: str
    version: str
    classnames: tuple[str, ...]
    num_classes: int
    has_captions: bool
    image_shape: tuple[int, int] | None
    attributes: Mapping[str, tuple[str, ...]]
    fingerprint: str
    multi_label: bool = False

    def __hash__(self) -> int:  # `attributes` is a dict; the identity fields suffice
        return hash((self.name, self.split, self.version, self.fingerprint))


class DatasetSource:
    """Random access to one split: `len(source)`, `source[i] -> dict`, `source.info`.

    `verify()` does any one-off checking a source needs before its length is final (image
    folders decode-check their files once); it is a no-op for TFDS sources and is called by
    `len`, `[]` and `info` on demand, so indices are stable from the first use.
    """

    skipped: list[tuple[str, str]]

    @property
    def info(self) -> DatasetInfo:
        raise NotImplementedError

    def verify(self) -> None:
        """Checks the source once (cached); a no-op unless overridden."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not isinstance(index, int | np.integer) or not 0 <= index < n:
            raise IndexError(f"index {index!r} out of range for {self.info.name} (len {n})")
        return int(index)

    def __repr__(self) -> str:
        info = self.info
        return f"{type(self).__name__}({info.name!r}, split={info.split!r}, len={len(self)})"


def as_rgb_uint8(image: Any) -> np.ndarray:
    """A decoded image as uint8 (H, W, 3): grey is repeated, an alpha channel is dropped."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {a.dtype} (shape {a.shape})")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image (H, W), (H, W, 1|3|4); got shape {a.shape}")
    if a.shape[-1] == 1:
        return np.repeat(a, 3, axis=-1)
    return a[..., :3] if a.shape[-1] == 4 else a


def _text(x: Any) -> str:
    return x.decode("utf-8") if isinstance(x, bytes | np.bytes_) else str(x)


# ----------------------------------------------------------------------------------------------
# TFDS sources.


class TfdsSource(DatasetSource):
    """A split of a prepared TFDS dataset, read through a tfds data source (no TensorFlow)."""

    def __init__(
        self,
        data_source: Sequence[Mapping[str, Any]],
        info: DatasetInfo,
        *,
        label_key: str | None = "label",
        captions: Callable[[Mapping[str, Any]], list[str]] | None = None,
    ):
        self._ds = data_source
        self._info = info
        self._label_key = label_key
        self._captions = captions
        self._len = len(data_source)
        self.skipped = []

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = self._check_index(index)
        raw = self._ds[i]
        item: dict[str, Any] = {
            "image": as_rgb_uint8(raw["image"]),
            "label": int(raw[self._label_key]) if self._label_key else -1,
            "index": i,
        }
        for key in self._info.attributes:
            item[key] = int(raw[key])
        if self._captions is not None:
            item["captions"] = self._captions(raw)
        return item


def _sequence_text(key: str, subkey: str | None = None) -> Callable[[Mapping[str, Any]], list]:
    def get(raw: Mapping[str, Any]) -> list[str]:
        value = raw[key] if subkey is None else raw[key][subkey]
        return [_text(t) for t in np.asarray(value, dtype=object).reshape(-1)]

    return get


def _default_tfds_data_dir() -> str | None:
    return os.environ.get("JAXCLIP_DATA_DIR") or None


def _tf_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _prepared_formats(tfds_name: str, data_dir: str | None) -> list[tuple[str, str]]:
    """(version dir, file format) of every preparation of `tfds_name` found under data_dir."""
    root = Path(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")
    name_config = tfds_name.split(":")[0]
    found = []
    for info_file in sorted(root.expanduser().glob(f"{name_config}/*/dataset_info.json")):
        try:
            fmt = json.loads(info_file.read_text()).get("fileFormat", "tfrecord")
        except (OSError, ValueError):
            fmt = "unreadable"
        found.append((str(info_file.parent), fmt))
    return found


def not_prepared_message(name: str, tfds_name: str, data_dir: str | None, cause: str) -> str:
    """The one message an unprepared (or TFRecord-only) TFDS dataset gives."""
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    found = [p for p in _prepared_formats(tfds_name, data_dir) if p[1] != "array_record"]
    state = (
        f"it is prepared only as {found[0][1]} in {found[0][0]}, and random access needs "
        "array_record"
        if found
        else f"no array_record preparation of {tfds_name!r} was found in {where}"
    )
    return (
        f"dataset {name!r} is not prepared: {state}. To prepare it, install TensorFlow "
        f"(`pip install -e .[tf]`) and call load_dataset({name!r}, ...) again: the TFDS builder "
        f"then downloads and prepares it (or run `tfds build {tfds_name.split(':')[0]} "
        f"--file_format=array_record --data_dir=DIR`). Or pass data_dir= a folder that already "
        f"holds an array_record preparation. (TFDS said: {cause})"
    )


@contextlib.contextmanager
def _absl_errors_only() -> Iterator[None]:
    """absl logging (which TFDS uses) at ERROR level for the duration of the block."""
    from absl import logging as absl_logging

    old = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(old)


def open_tfds(
    name: str, tfds_name: str, split: str, *, data_dir: str | None, download: bool
) -> Sequence[Mapping[str, Any]]:
    """`tfds.data_source(tfds_name, split)`; a clear error if it is not prepared.

    With `download=True` and TensorFlow installed, TFDS downloads and prepares the dataset
    (array_record) first; otherwise only an existing preparation is read.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or _default_tfds_data_dir()
    prepare = download and _tf_installed()
    try:
        # array_record explicitly: with a data_dir, TFDS would otherwise prepare TFRecords,
        # which have no random access. Only reading: TFDS's warnings while it looks for a
        # preparation ("Variant folder ... has no dataset_info.json") are dropped, since a
        # missing one is reported below in one line.
        with contextlib.nullcontext() if prepare else _absl_errors_only():
            return tfds.data_source(
                tfds_name,
                split=split,
                data_dir=data_dir,
                download=prepare,
                builder_kwargs={"file_format": "array_record"},
                try_gcs=False,
            )
    except Exception as e:  # diagnosed below: not prepared vs. a real error
        msg = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        if isinstance(e, ValueError) and "Unknown split" in str(e):
            raise DatasetError(f"dataset {name!r}: split {split!r} is not valid ({msg})") from e
        not_ready = isinstance(e, NotImplementedError | ModuleNotFoundError | FileNotFoundError)
        not_ready |= "tensorflow" in str(e).lower() or "not prepared" in str(e).lower()
        not_ready |= not any(p[1] == "array_record" for p in _prepared_formats(tfds_name, data_dir))
        if not_ready:
            raise DatasetNotPreparedError(
                not_prepared_message(name, tfds_name, data_dir, msg)
            ) from e
        raise


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    """How a public TFDS dataset maps onto a `DatasetSource`.

    Attributes:
      tfds_name: TFDS name with the default config ("eurosat/rgb"); a `:version` pins the
        version and makes TFDS read the prepared files without the builder's code (needed
        for builders whose code imports TensorFlow, such as coco_captions).
      classnames: class names in label order, or a function returning them.
      attributes: extra integer labels to pass through, with the names of their values.
      label_key: feature holding the class label (None: no labels, label = -1).
      captions: (feature, sub-feature) holding caption strings, or None.
    """

    tfds_name: str
    classnames: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    attributes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    label_key: str | None = "label"
    captions: tuple[str, str | None] | None = None


TFDS_SPECS: dict[str, TfdsSpec] = {
    "cifar10": TfdsSpec("cifar10", cn.CIFAR10_CLASSNAMES),
    "cifar100": TfdsSpec(
        "cifar100", cn.CIFAR100_CLASSNAMES, attributes={"coarse_label": cn.CIFAR100_SUPERCLASSES}
    ),
    "food101": TfdsSpec("food101", cn.FOOD101_CLASSNAMES),
    "eurosat": TfdsSpec("eurosat/rgb", cn.EUROSAT_CLASSNAMES),
    "imagenette": TfdsSpec("imagenette/full-size-v2", cn.imagenette_classnames),
    # Karpathy splits: train / val / test (5k) / restval. Its builder code imports TensorFlow,
    # so the version is pinned: TFDS then reads the prepared files without the code.
    "coco_captions": TfdsSpec(
        "coco_captions/2014:1.1.0", label_key=None, captions=("captions", "text")
    ),
}


def _with_config(tfds_name: str, config: str | None) -> str:
    if not config:
        return tfds_name
    base, _, version = tfds_name.partition(":")
    base = base.split("/")[0] + "/" + config
    return f"{base}:{version}" if version else base


def load_tfds(
    name: str,
    split: str,
    *,
    config: str | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> TfdsSource:
    """A public TFDS dataset of `TFDS_SPECS` as a `TfdsSource`."""
    spec = TFDS_SPECS[name]
    tfds_name = _with_config(spec.tfds_name, config)
    ds = open_tfds(
        name,
        tfds_name,
        split,
        data_dir=os.fspath(data_dir) if data_dir is not None else None,
        download=download,
    )
    tinfo = ds.dataset_info
    classnames = spec.classnames() if callable(spec.classnames) else spec.classnames
    if spec.label_key is not None:
        n_label = tinfo.features[spec.label_key].num_classes
        if n_label != len(classnames):
            raise ValueError(
                f"{name}: the TFDS label has {n_label} classes but {len(classnames)} class "
                "names are known"
            )
    shape = tinfo.features["image"].shape
    image_shape = tuple(shape[:2]) if None not in shape[:2] else None
    full_name = f"{tinfo.full_name}" if tinfo.full_name else tfds_name
    return TfdsSource(
        ds,
        DatasetInfo(
            name=name if not config else f"{name}/{config}",
            split=split,
            version=str(tinfo.version),
            classnames=tuple(classnames),
            num_classes=len(classnames),
            has_captions=spec.captions is not None,
            image_shape=image_shape,
            attributes=dict(spec.attributes),
            fingerprint=f"tfds:{full_name}:{split}:{len(ds)}",
        ),
        label_key=spec.label_key,
        captions=_sequence_text(*spec.captions) if spec.captions else None,
    )


def load_shapes(
    split: str,
    *,
    config: Any = None,
    data_dir: str | os.PathLike | None = None,
) -> TfdsSource:
    """The built-in shapes dataset (generated into the data dir on first use).

    Args:
      split: "train" or "test" (TFDS slicing allowed, e.g. "train[:1000]").
      config: "64" (default), "128", "32", "tiny", "tiny64" or a `shapes.ShapesConfig`.
      data_dir: default `$JAXCLIP_DATA_DIR` or ~/.cache/jaxclip/tfds.
    """
    from jaxclip.data import shapes

    builder = shapes.shapes_builder(config or "64", data_dir=data_dir)
    try:
        ds = builder.as_data_source(split)
    except ValueError as e:
        raise DatasetError(f"dataset 'shapes': split {split!r} is not valid ({e})") from e
    cfg = builder.builder_config
    size = cfg.image_size
    return TfdsSource(
        ds,
        DatasetInfo(
            name="shapes" if cfg.name == "64" else f"shapes/{cfg.name}",
            split=split,
            version=str(builder.info.version),
            classnames=shapes.SHAPES,
            num_classes=len(shapes.SHAPES),
            has_captions=True,
            image_shape=(size, size),
            attributes=dict(shapes.ATTRIBUTES),
            fingerprint=(
                f"tfds:shapes/{cfg.name}/{builder.info.version}:{split}:{len(ds)}"
                f":{size}:{cfg.num_train}:{cfg.num_test}"
            ),
        ),
        captions=_sequence_text("captions"),
    )


# ----------------------------------------------------------------------------------------------
# Image folders.


def _decode_file(path: str) -> np.ndarray:
    """A file as uint8 RGB (H, W, 3), as CLIP reads images (PIL `.convert("RGB")`)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _check_file(path: str) -> tuple[tuple[int, int] | None, str]:
    """((H, W), "") if `path` decodes as an image, else (None, reason).

    The whole stream is decoded (a JPEG at reduced DCT scale via `draft`, so this is several
    times cheaper than a full decode), which catches truncated files that `Image.verify()`
    passes.
    """
    from PIL import Image

    try:
        if os.path.getsize(path) == 0:
            return None, "empty file (0 bytes)"
        with Image.open(path) as im:
            w, h = im.size
            im.draft("RGB", (max(1, w // 8), max(1, h // 8)))
            im.load()
        return (h, w), ""
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        return None, f"{type(e).__name__}: {e}"


def _list_images(root: Path, classes: Sequence[str]) -> list[tuple[str, int]]:
    """(relative path, label) of every image file under `root/<class>/`, sorted by path.

    Symlinked folders are followed, each real folder once: a link back to a folder already
    listed (a cycle such as `cat/loop -> .` or `cat/up -> ..`, or a link into the root or
    another class folder) is skipped with a warning, so a loop neither duplicates images nor
    hangs the walk.
    """

    def ident(path: Path) -> tuple[int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino

    # The root and every class folder count as seen from the start: a link into any of them
    # would list its images twice (or under another class).
    seen = {ident(root)} | {ident(root / c) for c in classes}
    entries = []
    for label, folder in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / folder, followlinks=True):
            keep = []
            for d in sorted(d for d in dirnames if not d.startswith(".")):
                try:
                    key = ident(Path(dirpath, d))
                except OSError:  # a dangling link
                    continue
                if key in seen:
                    log.warning("skipping %s: a link to a folder already listed", Path(dirpath, d))
                    continue
                seen.add(key)
                keep.append(d)
            dirnames[:] = keep
            for fn in filenames:
                if fn.startswith(".") or Path(fn).suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                rel = Path(dirpath, fn).relative_to(root).as_posix()
                entries.append((rel, label))
    entries.sort()
    return entries


_VERIFY_CACHE: dict[str, list[tuple[tuple[int, int] | None, str]]] = {}
_VERIFY_LOCK = threading.Lock()


class FolderSource(DatasetSource):
    """Images in class subfolders: `root/<class folder>/**/<image>`; label = class index.

    Files are listed (recursively, hidden names skipped, extensions in `IMAGE_EXTENSIONS`)
    and sorted by relative path. `verify()` decode-checks every file once, in that order, and
    keeps those that decode: so indices are stable and deterministic for given folder content.
    The check is cached in memory per fingerprint and on disk under
    `<data dir>/folder_checks/<fingerprint>.json`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        name: str,
        split: str,
        classes: Sequence[str],
        classnames: Sequence[str],
        strict: bool = False,
        num_workers: int | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.root = Path(root)
        self.classes = tuple(classes)
        self._name, self._split = name, split
        self._classnames = tuple(classnames)
        self._strict = strict
        self._num_workers = num_workers
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._lock = threading.Lock()
        self._verified = False
        self.skipped = []
        entries = _list_images(self.root, self.classes)
        if not entries:
            raise DatasetError(
                f"{name}: the class folders of {os.fspath(self.root)} ({', '.join(self.classes[:5])}"
                f"{', ...' if len(self.classes) > 5 else ''}) hold no image files "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        self._candidates: list[tuple[str, int]] = entries
        h = hashlib.sha256(f"{name.split('/')[0]}\n{len(self.classes)}\n".encode())
        for folder in self.classes:
            h.update(f"class\t{folder}\n".encode())
        for rel, _ in entries:
            st = os.stat(self.root / rel)
            h.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        self._fingerprint = "folder:" + h.hexdigest()[:24]
        self._items: list[tuple[str, int]] = []
        self._shapes: list[tuple[int, int]] = []

    # -- verification ------------------------------------------------------------------------

    def _cache_file(self) -> Path | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"{self._fingerprint.split(':')[1]}.json"

    def _checks(self) -> list[tuple[tuple[int, int] | None, str]]:
        key = self._fingerprint
        with _VERIFY_LOCK:
            if key in _VERIFY_CACHE:
                return _VERIFY_CACHE[key]
        cache_file = self._cache_file()
        checks = None
        if cache_file is not None and cache_file.is_file():
            try:
                stored = json.loads(cache_file.read_text())
                if stored.get("files") == [rel for rel, _ in self._candidates]:
                    checks = [(tuple(s) if s else None, r) for s, r in stored["checks"]]
            except (OSError, ValueError, KeyError, TypeError):
                checks = None
        if checks is None:
            paths = [str(self.root / rel) for rel, _ in self._candidates]
            workers = self._num_workers or min(8, os.cpu_count() or 1)
            if workers > 1 and len(paths) > 1:
                with ThreadPoolExecutor(workers) as pool:
                    checks = list(pool.map(_check_file, paths, chunksize=16))
            else:
                checks = [_check_file(p) for p in paths]
            if cache_file is not None:
                from jaxclip.atomic import write_json

                try:
                    write_json(
                        cache_file,
                        {
                            "root": str(self.root),
                            "files": [rel for rel, _ in self._candidates],
                            "checks": [[list(s) if s else None, r] for s, r in checks],
                        },
                    )
                except OSError as e:  # a read-only cache dir only costs a re-check
                    log.warning("could not write folder check cache %s: %s", cache_file, e)
        with _VERIFY_LOCK:
            _VERIFY_CACHE[key] = checks
        return checks

    def verify(self) -> None:
        """Decode-checks every file once (cached); skips (or, if strict, raises on) bad ones."""
        with self._lock:
            if self._verified:
                return
            checks = self._checks()
            items, shapes, skipped = [], [], []
            for (rel, label), (shape, reason) in zip(self._candidates, checks, strict=True):
                if shape is None:
                    path = str(self.root / rel)
                    if self._strict:
                        raise DatasetError(
                            f"{path}: not a readable image ({reason}); strict mode stops at the first"
                        )
                    skipped.append((path, reason))
                else:
                    items.append((rel, label))
                    shapes.append(shape)
            if not items:
                raise DatasetError(
                    f"{self._name}: none of the {len(skipped)} image file(s) under "
                    f"{os.fspath(self.root)} decodes, e.g. {skipped[0][0]} ({skipped[0][1]})"
                )
            if skipped:
                log.warning(
                    "%s: skipped %d undecodable file(s) of %d, e.g. %s (%s)",
                    self._name,
                    len(skipped),
                    len(self._candidates),
                    *skipped[0],
                )
            self._items, self._shapes, self.skipped = items, shapes, skipped
            self._verified = True

    # -- access --------------------------------------------------------------------------------

    @property
    def info(self) -> DatasetInfo:
        self.verify()
        shapes = set(self._shapes)
        return DatasetInfo(
            name=self._name,
            split=self._split,
            version="folder",
            classnames=self._classnames,
            num_classes=len(self._classnames),
            has_captions=False,
            image_shape=next(iter(shapes)) if len(shapes) == 1 else None,
            attributes={},
            fingerprint=self._fingerprint,
        )

    @property
    def files(self) -> list[str]:
        """Relative paths of the kept images, index = item index."""
        self.verify()
        return [rel for rel, _ in self._items]

    def __len__(self) -> int:
        self.verify()
        return len(self._items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = self._check_index(index)
        rel, label = self._items[i]
        path = self.root / rel
        try:
            image = _decode_file(str(path))
        except Exception as e:
            raise RuntimeError(
                f"{path}: passed the decode check but no longer decodes ({type(e).__name__}: "
                f"{e}); did the folder change? Reload the dataset."
            ) from e
        return {"image": image, "label": label, "index": i}


# Folder names that make DIR a split layout (DIR/train/<class>, DIR/val/<class>).
SPLIT_FOLDER_NAMES = ("train", "val", "validation", "test")
DEFAULT_TEST_FRACTION = 0.2


def _subfolders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def folder_split(
    path: str | os.PathLike | None,
    split: str,
    *,
    name: str = "image_folder",
    path_arg: str | None = None,
    split_arg: str | None = None,
) -> tuple[Path, str | None]:
    """Where split `split` of a folder dataset at `path` is: (root of its class folders, part).

    Two layouts: split folders (`path/train/<class>`, `path/val/<class>`: `split` names one of
    `path`'s folders, part None) or one folder of class subfolders (`path/<class>`, none of them
    named train / val / validation / test): "train" is the train part of a seeded stratified
    split, "val" and "test" its held-out part (part "train" / "test"; `jaxclip.data.splits`).
    `split="all"` reads `path` itself as the class folders in either layout, unless `path` has a
    folder named "all".

    Args:
      path_arg, split_arg: how errors name the two arguments (default `path='...'`,
        `split='...'`; the studies pass their flags, `--config.data_path='...'`).

    Raises:
      DatasetError / UserFileNotFoundError: one line naming the bad value and what is allowed.
    """
    split_arg = split_arg or f"split={split!r}"
    if path is None or os.fspath(path) == "":
        raise DatasetError(
            f"dataset {name!r} reads a folder: {path_arg or 'path='} must name it "
            "(DIR/<class>/<images>, or DIR/train/<class> and DIR/val/<class>)"
        )
    root = Path(path).expanduser()
    path_arg = path_arg or f"path={os.fspath(path)!r}"
    if not root.is_dir():
        raise UserFileNotFoundError(f"{name}: {path_arg} is not a folder")
    if (root / split).is_dir():
        return root / split, None
    if split == "all":
        return root, None
    found = _subfolders(root)
    if not found:
        raise DatasetError(
            f"{name}: {path_arg} has no subfolders; expected one folder per class "
            "(DIR/<class>/<images>) or DIR/train/<class> and DIR/val/<class>"
        )
    split_folders = [f for f in found if f in SPLIT_FOLDER_NAMES]
    if split_folders:
        raise DatasetError(
            f"{name}: {split_arg} is not a folder of {path_arg}; its split folders are "
            f"{', '.join(found)} (or 'all' to read the folder itself as the class folders)"
        )
    if split in TRAIN_PARTS:
        return root, "train"
    if split in TEST_PARTS:
        return root, "test"
    raise DatasetError(
        f"{name}: {split_arg} is not allowed for {path_arg}, a folder of class subfolders "
        f"({', '.join(found[:5])}{', ...' if len(found) > 5 else ''}): use 'train' or 'val' "
        "(a stratified split by test fraction) or 'all' (every image)"
    )


def _class_folders(root: Path) -> list[str]:
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(
            f"{os.fspath(root)} has no class subfolders (expected <class>/<image> files)"
        )
    return folders


def _folder_cache_dir() -> Path:
    from jaxclip.data.shapes import default_data_dir

    return Path(default_data_dir()) / "folder_checks"


def load_image_folder(
    split: str,
    *,
    path: str | os.PathLike | None = None,
    strict: bool = False,
    name: str = "image_folder",
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> DatasetSource:
    """Any folder of class subfolders; class names from folder names (underscores -> spaces).

    `path/split/<class>` (split folders), or `path/<class>` split by `test_fraction` per class
    with `seed` ("train", "val" / "test"; see `folder_split` and `jaxclip.data.splits`), or
    `path` itself with split="all".
    """
    root, part = folder_split(path, split, name=name)
    folders = _class_folders(root)
    source = FolderSource(
        root,
        name=name,
        split=split if part is None else "all",
        classes=folders,
        classnames=[cn.folder_classname(f) for f in folders],
        strict=strict,
        cache_dir=_folder_cache_dir(),
    )
    return _fraction_part(source, part, split, test_fraction, seed)


def _fraction_part(
    source: FolderSource, part: str | None, split: str, test_fraction: float, seed: int
) -> DatasetSource:
    """`source` itself (part None) or its seeded stratified train / test part."""
    if part is None:
        return source
    from jaxclip.data.splits import stratified_split
    from jaxclip.data.subset import SubsetSource

    source.verify()
    labels = np.array([label for _, label in source._items], np.int64)
    train, test = stratified_split(labels, test_fraction, seed)
    indices = train if part == "train" else test
    if not len(indices):
        raise DatasetError(
            f"{source.info.name}: split {split!r} of {os.fspath(source.root)} is empty: a class "
            "is split only if it has two or more images, and every class here has one"
        )
    split_name = f"{split}[stratified test_fraction={test_fraction:g} seed={seed}]"
    return SubsetSource(source, indices, split=split_name)


def load_imagenet_folder(
    split: str,
    *,
    path: str | os.PathLike | None = None,
    strict: bool = False,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> DatasetSource:
    """An ImageNet-style folder (e.g. ImageNet-mini): class folders named by WordNet ids.

    Labels index the class folders present (sorted wnids); class names are CLIP's clean
    ImageNet names of those wnids (`classnames.wnid_to_classname`).
    """
    name = "imagenet_folder"
    root, part = folder_split(path, split, name=name)
    folders = _class_folders(root)
    bad = [f for f in folders if not _WNID.match(f)]
    if bad:
        raise DatasetError(
            f"{name}: class folders must be WordNet ids like 'n01440764'; found {bad[:5]} in "
            f"{os.fspath(root)} (use 'image_folder' for folders named by class)"
        )
    names = cn.wnid_to_classname()
    unknown = [f for f in folders if f not in names]
    if unknown:
        raise DatasetError(f"{name}: {unknown[:5]} are not ImageNet-1k WordNet ids")
    source = FolderSource(
        root,
        name=name,
        split=split if part is None else "all",
        classes=folders,
        classnames=[names[f] for f in folders],
        strict=strict,
        cache_dir=_folder_cache_dir(),
    )
    return _fraction_part(source, part, split, test_fraction, seed)


# ----------------------------------------------------------------------------------------------
# The table and the entry point.


def _tfds_loader(name: str) -> Callable[..., DatasetSource]:
    def load(split: str, *, config=None, data_dir=None, path=None, strict=False, download=True):
        if path is not None:
            raise DatasetError(f"dataset {name!r} is a TFDS dataset: use data_dir=, not path=")
        return load_tfds(name, split, config=config, data_dir=data_dir, download=download)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"TFDS {TFDS_SPECS[name].tfds_name!r} as a DatasetSource."
    return load


def _shapes_loader(
    split: str, *, config=None, data_dir=None, path=None, strict=False, download=True
):
    if path is not None:
        raise DatasetError("dataset 'shapes' is generated: use data_dir=, not path=")
    return load_shapes(split, config=config, data_dir=data_dir)


def _folder_loader(fn: Callable[..., DatasetSource], name: str) -> Callable[..., DatasetSource]:
    def load(
        split: str,
        *,
        config=None,
        data_dir=None,
        path=None,
        strict=False,
        download=True,
        test_fraction=DEFAULT_TEST_FRACTION,
        seed=0,
    ):
        if config:
            raise DatasetError(f"dataset {name!r} has no configs; got {config!r}")
        if data_dir is not None:
            raise DatasetError(f"dataset {name!r} reads a folder: use path=, not data_dir=")
        return fn(split, path=path, strict=strict, test_fraction=test_fraction, seed=seed)

    load.__name__ = f"load_{name}"
    load.__doc__ = fn.__doc__
    return load


def _webdataset_loader(
    split: str, *, config=None, data_dir=None, path=None, strict=False, download=True
):
    from jaxclip.data.webdataset import load_webdataset

    if config:
        raise DatasetError(f"dataset 'webdataset' has no configs; got {config!r}")
    if data_dir is not None:
        raise DatasetError("dataset 'webdataset' reads shards: use path=, not data_dir=")
    return load_webdataset(split, path=path, strict=strict)


def _caption_pairs_loader(
    split: str, *, config=None, data_dir=None, path=None, strict=False, download=True
):
    from jaxclip.data.caption_pairs import load_caption_pairs

    if config:
        raise DatasetError(f"dataset 'caption_pairs' has no configs; got {config!r}")
    if data_dir is not None:
        raise DatasetError("dataset 'caption_pairs' reads a file: use path=, not data_dir=")
    return load_caption_pairs(split, path=path, strict=strict)


def _clip_benchmark_loader(
    split: str, *, config=None, data_dir=None, path=None, strict=False, download=True
):
    from jaxclip.data.clip_benchmark import load_clip_benchmark

    return load_clip_benchmark(
        config or "", split, data_dir=data_dir, path=path, strict=strict, download=download
    )


# Name -> loader(split, *, config, data_dir, path, strict, download) -> DatasetSource; the
# FOLDER_DATASETS loaders also take test_fraction= and seed= (a folder with no split folders).
DATASETS: dict[str, Callable[..., DatasetSource]] = {
    "shapes": _shapes_loader,
    "cifar10": _tfds_loader("cifar10"),
    "cifar100": _tfds_loader("cifar100"),
    "food101": _tfds_loader("food101"),
    "eurosat": _tfds_loader("eurosat"),
    "imagenette": _tfds_loader("imagenette"),
    "coco_captions": _tfds_loader("coco_captions"),
    "imagenet_folder": _folder_loader(load_imagenet_folder, "imagenet_folder"),
    "image_folder": _folder_loader(load_image_folder, "image_folder"),
    # Webdataset tar shards: a folder, a shard pattern or a hub repo (jaxclip.data.webdataset).
    "webdataset": _webdataset_loader,
    # Image path, caption rows of a CSV / TSV / JSONL file (jaxclip.data.caption_pairs).
    "caption_pairs": _caption_pairs_loader,
    # "cb/<CLIP_benchmark name>", e.g. "cb/vtab/caltech101" (jaxclip.data.clip_benchmark).
    "cb": _clip_benchmark_loader,
}

FOLDER_DATASETS = ("imagenet_folder", "image_folder")

# Conventional (train, test) splits per dataset. EuroSAT has only "train" in TFDS.
DEFAULT_SPLITS: dict[str, tuple[str, str]] = {
    "shapes": ("train", "test"),
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "food101": ("train", "validation"),
    "eurosat": ("train[:80%]", "train[80%:]"),
    "imagenette": ("train", "validation"),
    "coco_captions": ("train", "test"),
    "imagenet_folder": ("train", "val"),
    "image_folder": ("train", "val"),
    "webdataset": ("train", "test"),
    "caption_pairs": ("train", "test"),
    "cb": ("train", "test"),
}


def check_dataset_name(name: str) -> str:
    """`name` if `load_dataset` accepts it by name, else a one-line `ConfigError`.

    The part before the first "/" must be a `DATASETS` key; no part may be "", "." or "..";
    "cb/<name>" must be in the CLIP_benchmark table (`jaxclip.data.clip_benchmark`).
    """
    from jaxclip.config_args import ConfigError

    if not isinstance(name, str):
        raise ConfigError(f"config.dataset={name!r} must be a string")
    base = name.partition("/")[0]
    if base not in DATASETS:
        raise ConfigError(
            f"config.dataset={name!r} is not valid; choose one of: {', '.join(DATASETS)} "
            "(a config may follow a slash: 'shapes/128', 'cb/vtab/caltech101')"
        )
    if any(p in ("", ".", "..") for p in name.split("/")[1:]) or "\\" in name:
        raise ConfigError(f"config.dataset={name!r} is not valid: empty, '.' or '..' parts")
    # The config part names a folder under the data dir (TFDS globs for it): no glob patterns,
    # no absolute or home paths, no NUL, nothing but names.
    bad = sorted({ch for ch in name if ch in "*?[]{}~\x00" or ch.isspace()})
    if bad or name.startswith("/"):
        raise ConfigError(
            f"config.dataset={name!r} is not valid: {bad or ['leading /']} in a dataset name; "
            "use letters, digits, '_', '-', '.' and '/' between parts"
        )
    if base == "cb":
        from jaxclip.data.clip_benchmark import lookup

        try:
            lookup(name)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return name


def load_dataset(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    strict: bool = False,
    download: bool = True,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> DatasetSource:
    """Opens split `split` of dataset `name` (a key of `DATASETS`, optionally "/config").

    Args:
      name: e.g. "cifar100", "shapes", "shapes/128", "imagenette/320px-v2", "image_folder".
      split: split name; TFDS slicing is allowed ("train[:10%]"); for folders the subfolder
        of `path` ("train", "val"), or "all" for `path` itself (if it has no "all" folder);
        for a folder of class subfolders with no split folders, "train" or "val" / "test",
        the parts of a stratified split (`folder_split`).
      data_dir: TFDS data dir (TFDS datasets and shapes).
      path: dataset folder (image folders); shards (webdataset: a folder, a pattern such as
        "DIR/{000..009}.tar" or a hub repo); a pairs file (caption_pairs); a local copy of the
        webdataset repo (cb/ names read from the hub).
      strict: image folders and caption pairs: raise on the first undecodable file instead of
        skipping it; webdatasets: raise on a truncated shard.
      download: TFDS datasets: let TFDS download and prepare if TensorFlow is installed.
      test_fraction, seed: folder datasets without split folders: the share of each class
        held out as "val" / "test" and the seed choosing it (`jaxclip.data.splits`).

    Raises:
      ValueError: unknown name (the message lists the valid ones) or split.
      DatasetNotPreparedError: a TFDS dataset with no array_record preparation.
    """
    if not isinstance(name, str) or not isinstance(split, str):
        raise TypeError(f"name and split must be str; got {name!r}, {split!r}")
    base, _, config = name.partition("/")
    if base not in DATASETS:
        raise DatasetError(
            f"unknown dataset {name!r}; valid: {', '.join(DATASETS)} "
            "(a config may follow a slash, e.g. 'shapes/128', 'cb/vtab/caltech101')"
        )
    check_dataset_name(name)
    options = {"test_fraction": test_fraction, "seed": seed} if base in FOLDER_DATASETS else {}
    return DATASETS[base](
        split,
        config=config or None,
        data_dir=data_dir,
        path=path,
        strict=strict,
        download=download,
        **options,
    )
