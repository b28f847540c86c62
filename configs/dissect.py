"""Config of the main job, `experiments/dissect.py`: every study on one model × dataset.

    python -m experiments.dissect                                   # mini-CLIP on shapes, offline
    python -m experiments.dissect --config=configs/dissect.py:vit_b32,cifar100
    python -m experiments.dissect --config=configs/dissect.py:smoke # tiny random model, seconds

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, `vit_b16`, `vit_l14`, ...),
a dataset (`shapes`, `cifar10`, `cifar100`, `food101`, `eurosat`, `imagenette`, `coco`, ...) and
`smoke`. Each study's section is the one its own config file builds (`configs/<study>.py`), so a
study behaves the same alone and inside dissect; `--config.studies=zero_shot,probe` runs a
subset, `--config.<study>.<field>=...` changes one setting.
"""

from __future__ import annotations

import ml_collections

from configs import class_agnostic, common, geometry, inside, probe, prompts, retrieval, zero_shot

# Study name -> its config file, in the order dissect runs them (= jaxclip.studies.runner.STUDIES).
STUDY_CONFIGS = {
    "zero_shot": zero_shot,
    "prompts": prompts,
    "probe": probe,
    "class_agnostic": class_agnostic,
    "retrieval": retrieval,
    "geometry": geometry,
    "inside": inside,
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    # Studies to run, in this order (comma-separated; choose from the keys of STUDY_CONFIGS).
    config.studies = ",".join(STUDY_CONFIGS)
    for name, module in STUDY_CONFIGS.items():
        config[name] = module.get_config(arg)[name]
    return config
