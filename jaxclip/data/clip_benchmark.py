"""CLIP_benchmark's dataset names -> sources here: `load_dataset("cb/<name>", split)`.

`CLIP_BENCHMARK` is the explicit table. Every dataset of CLIP_benchmark's webdataset collection
(benchmark/webdatasets.txt: VTAB+, the ImageNet variants, VOC2007 and its multi-label version,
MS-COCO, Flickr8k / Flickr30k Karpathy test splits) is read from its hub repo
`clip-benchmark/wds_<name with "/" as "-">` (or, with `path=`, from a local copy of it); the
names a TFDS dataset of `jaxclip.data.datasets` serves (cifar10, cifar100, food101, eurosat,
mscoco_captions) are read from TFDS. `wds/<name>` is accepted as an alias of `<name>`.

Class names and templates follow CLIP_benchmark: its JSON class names where it has them (by the
full name, then the name after "vtab/"; ImageNet-A/-R/-O as subsets of ImageNet's), else the
repo's `classnames.txt`; templates from its JSON (the CLIP paper's per-dataset sets) by the
same lookup, falling back to ImageNet's 80 as CLIP_benchmark does.

Names CLIP_benchmark accepts but that have no source here are in `UNSUPPORTED` with the reason.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from jaxclip.data import clip_benchmark_text as text
from jaxclip.errors import UserValueError

PREFIX = "cb/"
HUB_OWNER = "clip-benchmark"

CLASSIFICATION, RETRIEVAL, MULTILABEL = "classification", "retrieval", "multilabel"

_IMAGENET_SUBSETS = {
    "imagenet-a": text.IMAGENET_A_WNIDS,
    "imagenet-r": text.IMAGENET_R_WNIDS,
    "imagenet-o": text.IMAGENET_O_WNIDS,
}


@dataclasses.dataclass(frozen=True)
class CBDataset:
    """One CLIP_benchmark dataset and where it is read from here.

    Attributes:
      name: CLIP_benchmark's name ("vtab/caltech101").
      task: "classification", "retrieval" or "multilabel".
      tfds: the `jaxclip.data.datasets.DATASETS` name that serves it, or None (webdataset).
      tfds_splits: CLIP_benchmark split -> TFDS split, where they differ.
    """

    name: str
    task: str = CLASSIFICATION
    tfds: str | None = None
    tfds_splits: tuple[tuple[str, str], ...] = ()

    @property
    def repo(self) -> str:
        """Its webdataset repo on the Hugging Face hub."""
        return f"{HUB_OWNER}/wds_{self.name.replace('/', '-')}"

    @property
    def short_name(self) -> str:
        return self.name.split("/", 1)[1] if "/" in self.name else self.name

    def tfds_split(self, split: str) -> str:
        return dict(self.tfds_splits).get(split, split)

    def classnames(self) -> tuple[str, ...] | None:
        """CLIP_benchmark's class names, or None where they come from the repo's classnames.txt."""
        if self.task == RETRIEVAL:
            return None
        if self.short_name in _IMAGENET_SUBSETS:
            from jaxclip.data.classnames import imagenet_wnids

            keep = _IMAGENET_SUBSETS[self.short_name]
            names = text.CB_CLASSNAMES["imagenet1k"]
            return tuple(n for w, n in zip(imagenet_wnids(), names, strict=True) if w in keep)
        if self.short_name in ("imagenetv2", "imagenet_sketch"):
            return text.CB_CLASSNAMES["imagenet1k"]
        if self.name == "vtab/caltech101":
            return text.CB_CLASSNAMES["caltech101_vtab"]
        for key in (self.name, self.short_name):
            if key in text.CB_CLASSNAMES:
                return text.CB_CLASSNAMES[key]
        return None

    def templates(self) -> tuple[str, ...]:
        """CLIP_benchmark's zero-shot templates ("{}" = class name); () for retrieval."""
        if self.task == RETRIEVAL:
            return ()
        for key in (self.name, self.short_name, "imagenet1k"):
            if key in text.CB_TEMPLATES:
                return text.CB_TEMPLATES[key]
        raise AssertionError("imagenet1k templates are always there")


def _table() -> dict[str, CBDataset]:
    wds = [
        *("imagenet1k", "imagenetv2", "imagenet_sketch", "imagenet-a", "imagenet-r"),
        *("imagenet-o", "objectnet", "fer2013", "voc2007", "sun397", "cars", "fgvc_aircraft"),
        *("mnist", "stl10", "gtsrb", "country211", "renderedsst2"),
        *(
            f"vtab/{n}"
            for n in (
                "caltech101",
                "cifar10",
                "cifar100",
                "clevr_count_all",
                "clevr_closest_object_distance",
                "diabetic_retinopathy",
                "dmlab",
                "dsprites_label_orientation",
                "dsprites_label_x_position",
                "dsprites_label_y_position",
                "dtd",
                "eurosat",
                "kitti_closest_vehicle_distance",
                "flowers",
                "pets",
                "pcam",
                "resisc45",
                "smallnorb_label_azimuth",
                "smallnorb_label_elevation",
                "svhn",
            )
        ),
    ]
    entries = [CBDataset(n) for n in wds]
    entries += [
        CBDataset("voc2007_multilabel", MULTILABEL),
        CBDataset("flickr8k", RETRIEVAL),
        CBDataset("flickr30k", RETRIEVAL),
        CBDataset("mscoco_captions", RETRIEVAL, tfds="coco_captions"),
        CBDataset("cifar10", tfds="cifar10"),
        CBDataset("cifar100", tfds="cifar100"),
        CBDataset("food101", tfds="food101", tfds_splits=(("test", "validation"),)),
        CBDataset(
            "eurosat",
            tfds="eurosat",
            tfds_splits=(("train", "train[:80%]"), ("test", "train[80%:]")),
        ),
    ]
    return {e.name: e for e in entries}


# CLIP_benchmark name -> where it is read from.
CLIP_BENCHMARK: dict[str, CBDataset] = _table()

# CLIP_benchmark names with no source here, and why.
UNSUPPORTED: dict[str, str] = {
    "imagenet-w": "ImageNet with watermarks added by the imagenet_w package at load time",
    "imagenet1k-unverified": "a local ImageNet folder: use imagenet_folder",
    "babel_imagenet": "multilingual class names (this table is English)",
    "multilingual_mscoco_captions": "multilingual captions (this table is English)",
    "crossmodal3600": "multilingual captions (this table is English)",
    "xtd10": "multilingual captions (this table is English)",
    "xtd200": "multilingual captions (this table is English)",
    "flickr30k-200": "multilingual captions (this table is English)",
    "winoground": "image-caption selection, not classification or retrieval",
    "sugar_crepe": "image-caption selection, not classification or retrieval",
    "caltech101": "torchvision's, without a test split: use cb/vtab/caltech101",
    "dtd": "torchvision's: use cb/vtab/dtd",
    "pets": "torchvision's: use cb/vtab/pets",
    "flowers": "torchvision's: use cb/vtab/flowers",
    "pcam": "torchvision's: use cb/vtab/pcam",
    "tfds": "any TFDS dataset by name: jaxclip reads the TFDS datasets of its DATASETS table",
    "dummy": "a test placeholder",
}

CHOICES_HINT = (
    'list them with `python -c "from jaxclip.data.clip_benchmark import CLIP_BENCHMARK; '
    'print(*CLIP_BENCHMARK)"` (README, Datasets)'
)


def lookup(name: str) -> CBDataset:
    """The table entry of a CLIP_benchmark name ("vtab/dtd", "wds/vtab/dtd" or "cb/vtab/dtd").

    Raises UserValueError (one line) for a name with ".." or empty parts, or not in the table.
    """
    bare = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    bare = bare[len("wds/") :] if bare.startswith("wds/") else bare
    parts = bare.split("/")
    if not bare or any(p in ("", ".", "..") for p in parts) or "\\" in bare:
        raise UserValueError(f"dataset {name!r} is not a valid CLIP_benchmark name; {CHOICES_HINT}")
    if bare in CLIP_BENCHMARK:
        return CLIP_BENCHMARK[bare]
    why = UNSUPPORTED.get(bare) or UNSUPPORTED.get(parts[0])
    reason = f" (CLIP_benchmark has it, but {why})" if why else ""
    raise UserValueError(
        f"dataset {name!r} is not in jaxclip's CLIP_benchmark table{reason}; {CHOICES_HINT}"
    )


def load_clip_benchmark(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    strict: bool = False,
    download: bool = True,
) -> Any:
    """CLIP_benchmark dataset `name` as a `DatasetSource` (see module docstring).

    Args:
      name: a CLIP_benchmark name, with or without "cb/".
      split: CLIP_benchmark's split name ("test", "train").
      data_dir: TFDS data dir (TFDS-served names).
      path: a local copy of the webdataset repo (its folder), instead of the hub.
      strict: webdatasets: raise on a truncated shard instead of skipping its cut sample.
      download: TFDS-served names: let TFDS prepare them (see `load_dataset`).
    """
    from jaxclip.data.datasets import load_dataset

    entry = lookup(name)
    if entry.tfds is not None and path is None:
        return load_dataset(
            entry.tfds, entry.tfds_split(split), data_dir=data_dir, download=download
        )
    from jaxclip.data.webdataset import load_webdataset

    return load_webdataset(
        split,
        path=path or entry.repo,
        strict=strict,
        name=PREFIX + entry.name,
        classnames=entry.classnames(),
        dataset_type=entry.task,
    )
