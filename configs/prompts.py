"""Config of the prompt study (template comparison, cosine vs raw dot product).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`cifar100`, `imagenet_folder`, ...) and `smoke`, e.g. `configs/prompts.py:vit_b32,cifar100` or
`configs/prompts.py:smoke` (tiny random model on shapes/tiny, seconds). The study's fields are
in `study_config()`; `jaxclip.studies.prompts.check_config` checks them.
"""

from __future__ import annotations

import ml_collections

from configs import common


def study_config() -> ml_collections.ConfigDict:
    """The prompt study's section of the config (`config.prompts`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role evaluated: "test" or "train"
    # Templates compared one by one, in this order: a TEMPLATE_SETS name (expanded into its
    # templates: photo, imagenet80, imagenet7, cifar, food101, eurosat, source), "dataset" (the
    # dataset's own set; CLIP_benchmark's templates for a cb/ name) or a literal template with one "{}". Duplicates are dropped.
    c.templates = ("photo", "source")
    # Template sets scored as one prompt ensemble each (normalise, average, renormalise):
    # TEMPLATE_SETS names or "dataset".
    c.ensembles = ("imagenet80",)
    c.ensemble_of_listed = True  # add a row: the ensemble of all templates in `templates`
    c.baseline = "a photo of a {}."  # the Δ column is measured against it (first row if absent)
    # The prompt of the similarity comparison (the IT5005 report's: no full stop).
    c.similarity_template = "a photo of a {}"
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The common fields (variants in `arg`) plus `config.prompts`."""
    config = common.base_config(arg)
    config.prompts = study_config()
    if config.smoke:
        config.prompts.ensembles = ("imagenet7",)  # 7 templates instead of 80
    return config
