"""Config of the `inside` study (decomposition of the image embedding into heads and MLPs).

    python -m experiments.inside --workdir=runs/inside                 # mini-CLIP on shapes
    python -m experiments.inside --config=configs/inside.py:vit_b32,cifar10
    python -m experiments.inside --config=configs/inside.py:smoke      # tiny random model

Variants after the colon: a model, a dataset and `smoke` (configs/common.py).
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.data.shapes import POSITION_PHRASES


def study_config() -> ml_collections.ConfigDict:
    """The study's section, `config.inside`."""
    c = ml_collections.ConfigDict()
    c.num_images = 300  # images decomposed per split (the first rows of train and of test)
    c.batch_size = 64  # images per jitted decomposition call
    c.class_template = "a photo of a {}."  # class prompts: zero-shot, TextSpan pool, patch maps
    # TextSpan pool: attribute -> phrase template ("{}" = the value or its phrase below);
    # attributes not listed use "a photo of something {}.".
    c.attribute_templates = ml_collections.ConfigDict(
        {
            "color": "a photo of a {} shape.",
            "size": "a photo of a {} shape.",
            "count": "a photo of {}.",
            "background": "a photo of a shape on a {} background.",
            "position": "a photo of a shape {}.",
        }
    )
    # Attribute -> one phrase per value (in value order); others use the value names.
    c.attribute_values = ml_collections.ConfigDict(
        {"count": ("one shape", "two shapes", "three shapes"), "position": POSITION_PHRASES}
    )
    # TextSpan's texts: "attributes" (the phrases above: one per class and per attribute value),
    # "general" (2688 generic descriptions, jaxclip/data/text_pool.py) or a text file of one
    # description per line.
    c.text_pool = "attributes"
    c.text_span_layers = 1  # TextSpan on every head of this many last layers
    c.text_span_k = 3  # phrases chosen per head
    c.head_ablation_layers = 0  # mean-ablate each head of this many last layers alone (0 = all)
    c.head_ablation_top = 5  # heads named in the report, by zero-shot accuracy lost
    c.probe_alpha = 1.0  # ridge penalty of the per-head and ablation probes
    c.position_attribute = "position"  # row-major grid-cell label for the pointing game
    c.count_attribute = "count"  # value 0 = one object (only those images play the game)
    c.grid = 3  # the position grid is grid x grid cells
    c.map_examples = 6  # example patch maps drawn in the report
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.inside = study_config()
    if config.smoke:
        config.inside.num_images = 48
        config.inside.batch_size = 16
        config.inside.map_examples = 3
    return config
