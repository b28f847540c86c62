"""Config of the probe study (SVC / LinearSVC / logistic / MLP probes, few-shot vs zero-shot).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`cifar10`, `cifar100`, ...) and `smoke`, e.g. `configs/probe.py:vit_b32,cifar100` (the thesis's
setting; its SVC baseline is skipped on the 50k CIFAR train split unless
`--config.probe.svc_max_train=50000`) or `configs/probe.py:smoke` (tiny random model on
shapes/tiny, seconds). Fields of the study: `jaxclip.studies.probe.default_config`.
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.studies import probe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.probe = probe.default_config()
    if config.smoke:
        p = config.probe
        p.sklearn_cs = (0.1, 1.0, 10.0)
        p.l2_grid = (0.1, 1.0, 10.0, 100.0)
        p.max_iter = 30
        p.mlp_widths = (16, 32)
        p.mlp_weight_decays = (1e-4,)
        p.mlp_epochs = 3
        p.mlp_patience = 2
        p.mlp_batch_size = 16
        p.shots = (1, 2)
        p.shot_repeats = 2
    return config
