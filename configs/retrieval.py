"""Config of the retrieval study (Recall@K, own-caption retrieval, queries, refinement chains).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`coco`, `cifar10`, ...) and `smoke`, e.g. `configs/retrieval.py:vit_b32,coco` (COCO Karpathy 5k
test, published numbers beside ours) or `configs/retrieval.py:smoke` (tiny random model on
shapes/tiny, seconds). The study's fields are in `study_config()`;
`jaxclip.studies.retrieval.check_config` checks them.
"""

from __future__ import annotations

import ml_collections

from configs import common


def study_config() -> ml_collections.ConfigDict:
    """The retrieval study's section of the config (`config.retrieval`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role searched (the gallery): "test" or "train"
    c.ks = (1, 5, 10)  # K of Recall@K
    c.examples = 6  # captions shown with their rank and top images (seeded random, 0 = none)
    c.grid_k = 8  # images per row in the example, query and chain grids
    c.thumbnail = 128  # grid image side in px (larger images are centre-cropped and resized)
    # Ad-hoc text queries. () = the defaults for the dataset: SHAPES_QUERIES on shapes,
    # NATURAL_QUERIES elsewhere (jaxclip.studies.retrieval).
    c.queries = ()
    # Refinement chains, each a tuple of >= 2 queries compared step by step. () = the defaults:
    # SHAPES_CHAINS on shapes, NATURAL_CHAINS elsewhere.
    c.chains = ()
    c.refinement_k = 10  # top-k of the refinement table (overlap, Jaccard, score shift)
    c.score_queries = True  # match query words to the dataset's labels and report precision@k
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The common fields (variants in `arg`) plus `config.retrieval`."""
    config = common.base_config(arg)
    config.retrieval = study_config()
    if config.smoke:
        r = config.retrieval
        r.examples = 3
        r.grid_k = 5
        r.refinement_k = 5
    return config
