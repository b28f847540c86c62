"""Config of the class-agnostic study (generic-prompt cosines as features, entropy, τ sweeps).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`shapes32`, `shapes128`, `cifar100`, `imagenette`, ...) and `smoke`, e.g.
`configs/class_agnostic.py:vit_b32,cifar100` (the thesis's setting), `:mini,shapes128` (the
resolution question: one dataset per run, compare the reports) or `:smoke` (tiny random model
on shapes/tiny, seconds). Fields of the study: `jaxclip.studies.class_agnostic.default_config`.
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.studies import class_agnostic


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.class_agnostic = class_agnostic.default_config()
    if config.smoke:
        c = config.class_agnostic
        c.prompts = "generic16"
        c.l2_grid = (0.1, 1.0, 10.0)
        c.max_iter = 30
        c.mlp_widths = (16,)
        c.mlp_weight_decays = (1e-4,)
        c.mlp_epochs = 3
        c.mlp_patience = 2
        c.mlp_batch_size = 16
        c.entropy_bins = 10
        c.hist_taus = (0.07,)
        c.num_taus = 4
        c.extra_taus = (0.07,)
        c.sweep_max_iter = 50
        c.sweep_tol = 1e-4
        c.equivalence_taus = (1.0, 0.07)
        c.prompt_count_set = "generic32"
        c.prompt_counts = (16, 32)
    return config
