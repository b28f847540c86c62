"""Config of the retrieval study (Recall@K, own-caption retrieval, queries, refinement chains).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`coco`, `cifar10`, ...) and `smoke`, e.g. `configs/retrieval.py:vit_b32,coco` (COCO Karpathy 5k
test, published numbers beside ours) or `configs/retrieval.py:smoke` (tiny random model on
shapes/tiny, seconds). Fields of the study: `jaxclip.studies.retrieval.default_config`.
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.studies import retrieval


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.retrieval = retrieval.default_config()
    if config.smoke:
        r = config.retrieval
        r.examples = 3
        r.grid_k = 5
        r.refinement_k = 5
    return config
