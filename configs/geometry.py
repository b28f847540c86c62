"""Config of the geometry study (double-ellipsoid analysis of the raw embedding space).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`coco`, `cifar100`, ...) and `smoke`, e.g. `configs/geometry.py:vit_b32,coco` (the paper's
setting: OpenAI ViT-B/32 on the COCO test split as one batch) or `configs/geometry.py:smoke`
(tiny random model on shapes/tiny, seconds). Fields of the study: `jaxclip.studies.geometry`.
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.studies import geometry


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.geometry = geometry.default_config()
    if config.smoke:
        g = config.geometry
        g.num_alphas = 5  # α in {-1, -0.5, 0, 0.5, 1}
        g.top_k = 5
        g.hist_features = 2
        g.feature_kl_bins = 20
        g.kl_bins = 20
        g.max_scatter_points = 500
        g.loss_memory_mb = 16
        g.examples = 2
    return config
