"""Config of the zero-shot study (class prompts, per-class table, confusions, attributes).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`cifar100`, ...) and `smoke`, e.g. `configs/zero_shot.py:vit_b32,cifar100` (the thesis's
setting) or `configs/zero_shot.py:smoke` (tiny random model on shapes/tiny, seconds). The
study's fields are in `study_config()`; `jaxclip.studies.zero_shot.check_config` checks them.
"""

from __future__ import annotations

import ml_collections

from configs import common

# The phrases the shapes captions use for the nine positions (= jaxclip.data.shapes
# .POSITION_PHRASES, copied here so the config does not import the dataset builder).
POSITION_PHRASES: tuple[str, ...] = (
    "in the top left",
    "at the top",
    "in the top right",
    "on the left",
    "in the center",
    "on the right",
    "in the bottom left",
    "at the bottom",
    "in the bottom right",
)


def study_config() -> ml_collections.ConfigDict:
    """The zero-shot study's section of the config (`config.zero_shot`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role evaluated: "test" or "train"
    # Class prompts: a TEMPLATE_SETS name (photo, imagenet80, imagenet7, cifar, food101, eurosat,
    # source), "dataset" (the set the CLIP paper used for this dataset; CLIP_benchmark's own
    # templates for a cb/ name; "photo" where it has none) or one literal template containing
    # "{}". Several templates are ensembled.
    c.templates = "photo"
    c.k_best = 5  # rows of the best / worst class tables (ranked by F1)
    c.top_confusions = 10  # most confused (true -> predicted) pairs listed and drawn
    c.store_confusion_max_classes = 100  # confusion matrix stored in results.json up to this C
    c.attributes = True  # datasets with extra labels (shapes): zero-shot on each attribute too
    # Attribute -> prompt template, "{}" = the value (or its phrase from attribute_values).
    # Attributes of the dataset not listed here use "a photo of something {}.".
    c.attribute_templates = ml_collections.ConfigDict(
        {
            "color": "a photo of a {} shape.",
            "size": "a photo of a {} shape.",
            "count": "a photo of {}.",
            "background": "a photo of a shape on a {} background.",
            "position": "a photo of a shape {}.",
        }
    )
    # Attribute -> one phrase per value (in value order) put in the template instead of the
    # value's name; attributes not listed use their value names ("red", "small", ...).
    c.attribute_values = ml_collections.ConfigDict(
        {"count": ("one shape", "two shapes", "three shapes"), "position": POSITION_PHRASES}
    )
    # Class-marginal prompts: the generic noun `class_word` (and its plural) in each attribute
    # prompt is replaced by every class name in turn ("a photo of a red circle.", ...) and the
    # C prompt embeddings are averaged (normalise, mean, renormalise). "" = off.
    c.class_word = "shape"
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The common fields (variants in `arg`) plus `config.zero_shot`."""
    config = common.base_config(arg)
    config.zero_shot = study_config()
    if config.smoke:
        z = config.zero_shot
        z.k_best = 3
        z.top_confusions = 5
    return config
