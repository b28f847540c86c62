"""Config of the zero-shot study (class prompts, per-class table, confusions, attributes).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`cifar100`, ...) and `smoke`, e.g. `configs/zero_shot.py:vit_b32,cifar100` (the thesis's
setting) or `configs/zero_shot.py:smoke` (tiny random model on shapes/tiny, seconds). Fields of
the study: `jaxclip.studies.zero_shot.default_config`.
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.studies import zero_shot


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.zero_shot = zero_shot.default_config()
    if config.smoke:
        z = config.zero_shot
        z.k_best = 3
        z.top_confusions = 5
    return config
