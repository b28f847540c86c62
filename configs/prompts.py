"""Config of the prompt study (template comparison, cosine vs raw dot product).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`cifar100`, `imagenet_folder`, ...) and `smoke`, e.g. `configs/prompts.py:vit_b32,cifar100` or
`configs/prompts.py:smoke` (tiny random model on shapes/tiny, seconds). Fields of the study:
`jaxclip.studies.prompts.default_config`.
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.studies import prompts


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.prompts = prompts.default_config()
    if config.smoke:
        config.prompts.ensembles = ("imagenet7",)  # 7 templates instead of 80
    return config
