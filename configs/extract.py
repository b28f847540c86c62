"""Config of feature extraction: embed a dataset's splits (and prompt sets) into the cache.

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset
(`shapes`, `cifar10`, `cifar100`, `coco`, `image_folder`, ...) and `smoke`, e.g.
`configs/extract.py:vit_b32,cifar100` or `configs/extract.py:smoke` (tiny random model on
shapes/tiny, seconds). The common fields (model, dataset, splits' names, batch size,
preprocessing, cache) are `jaxclip.studies.common.base_config`'s; the fields below are this
entry point's own. Lists are comma-separated strings, so they override from the command line:
`--config.splits=test --config.texts=classes,generic32`.
"""

from __future__ import annotations

import ml_collections

from configs import common


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.splits = "train,test"  # split roles to extract, comma-separated: train, test
    # Text sets to encode too, comma-separated ("" = none): "classes" (the dataset's class
    # prompts: its CLIP-paper templates, else "a photo of a {}."), "captions" (the captions of
    # the extracted splits), a template set of jaxclip.data.templates.TEMPLATE_SETS (filled
    # with the class names) or a prompt set of jaxclip.data.prompts.PROMPT_SETS ("generic32").
    config.texts = ""
    config.shard_batches = 8  # batches per cache shard (the unit of resumption)
    config.num_workers = -1  # host decode threads (-1: one per core, at most 16; 0: none)
    config.progress = True  # progress bar with images/s (process 0 only)
    # Multi-host: call jax.distributed.initialize() before anything else. With empty / 0 / -1
    # below, JAX detects SLURM, Open MPI and Cloud TPU pods itself; elsewhere give all three.
    config.distributed = False
    config.coordinator_address = ""  # "host:port" of process 0's coordinator ("" = detect)
    config.num_processes = 0  # number of processes (0 = detect)
    config.process_id = -1  # this process's index (-1 = detect)
    if config.smoke:
        config.texts = "classes,generic16,captions"
        config.progress = False
    return config
