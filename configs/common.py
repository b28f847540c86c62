"""The config fields every study run shares (model, data, extraction), with their defaults.

`base_config(arg)` parses a variant string such as "vit_b32,cifar100,smoke" and returns a
ConfigDict with the common fields below; each `configs/<name>.py` adds its study's section
(`study_config()`). The library checks these fields in `jaxclip.studies.common.check_common`.
"""

from __future__ import annotations

import ml_collections

from jaxclip.config_args import parse_variants
from jaxclip.data.datasets import DATASETS, DEFAULT_SPLITS
from jaxclip.models.catalog import MODELS

# Variant tokens for datasets: DATASETS keys plus a few named configs.
DATASET_VARIANTS: dict[str, str] = {name: name for name in DATASETS} | {
    "shapes128": "shapes/128",
    "shapes32": "shapes/32",
    "coco": "coco_captions",
}
SMOKE_EXAMPLES = 64


def base_config(arg: str | None, *, default_dataset: str = "shapes") -> ml_collections.ConfigDict:
    """Common fields, with variants applied (see module docstring)."""
    parsed = parse_variants(
        arg,
        {"model": list(MODELS), "dataset": list(DATASET_VARIANTS)},
        {"model": "mini", "dataset": default_dataset},
    )
    dataset = DATASET_VARIANTS[parsed["dataset"]]
    train_split, test_split = DEFAULT_SPLITS[dataset.split("/")[0]]
    c = ml_collections.ConfigDict()
    c.model = parsed["model"]  # a name in jaxclip.models.catalog.MODELS, an HF hub id or a path
    c.dtype = "float32"  # compute dtype: float32 | bfloat16
    c.dataset = dataset  # a jaxclip.data.datasets.DATASETS name, optionally "/config"
    c.data_dir = ""  # TFDS data dir ("" = TFDS default; shapes: ~/.cache/jaxclip/tfds)
    c.data_path = ""  # dataset folder, for image_folder / imagenet_folder
    # Image folders, caption pairs: stop at the first undecodable image (False: skip and list
    # them in results.json); webdatasets: stop at a truncated shard.
    c.strict = False
    c.train_split = train_split  # split the probes train on
    c.test_split = test_split  # split everything is evaluated on
    # Folder datasets with no split folders (DATA_PATH/<class>/<images>): the share of each
    # class held out as the test split ("val"); a seeded stratified split (seed below).
    c.test_fraction = 0.2
    # True: run even if the train and test splits share images (e.g. both "all"); the report,
    # the console and results.json then say accuracies are not held-out. False: refuse.
    c.allow_split_overlap = False
    c.max_examples = 0  # > 0: a seeded random subset of each split (0 = all)
    c.batch_size = 256  # global batch for extraction (rounded to a multiple of the devices)
    c.preprocess = "device"  # device: resize/crop/normalise on the accelerator; host: exact PIL
    c.cache_dir = ""  # feature cache ("" = $JAXCLIP_CACHE or ~/.cache/jaxclip/features)
    # Whose definitions zero-shot top-1/top-5/mean per-class recall and retrieval Recall@K use:
    #   "jaxclip": exact (float64) ranks, ties to the lower class index (argmax), top-k with
    #     k >= #classes null, image -> text recall over captioned images only;
    #   "clip_benchmark": CLIP_benchmark 1.6.2's numbers (float32 scores, torch.topk's CPU tie
    #     order, top-5 null below 5 classes, captionless images count as image -> text misses).
    # WORKDIR/clip_benchmark.json holds CLIP_benchmark's numbers either way.
    c.metrics_protocol = "jaxclip"
    c.seed = 0  # every random choice (subsets, probes, plots) derives from it
    c.smoke = parsed["smoke"]  # tiny model, tiny data: seconds, for tests
    if c.smoke:
        if "model" not in (arg or ""):
            c.model = "tiny_random"
        if parsed["dataset"] == "shapes":
            c.dataset = "shapes/tiny"
        c.max_examples = SMOKE_EXAMPLES
        c.batch_size = 32
    return c
