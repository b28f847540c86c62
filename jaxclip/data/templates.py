"""Prompt templates for zero-shot classification: "{}" marks where the class name goes.

- `PHOTO`: CLIP's default single template "a photo of a {}.".
- `IMAGENET_TEMPLATES`: the 80 templates of CLIP's ImageNet prompt ensemble and
  `IMAGENET_TEMPLATES_SIMPLE`, the 7 the notebook selected (github.com/openai/CLIP
  `notebooks/Prompt_Engineering_for_ImageNet.ipynb`, MIT; copied from OpenCLIP's
  `zero_shot_metadata.py`, MIT, copyright (c) 2012-2021 Gabriel Ilharco, Mitchell Wortsman,
  Nicholas Carlini, Rohan Taori, Achal Dave, Vaishaal Shankar, John Miller, Hongseok Namkoong,
  Hannaneh Hajishirzi, Ali Farhadi, Ludwig Schmidt).
- `CIFAR_TEMPLATES`, `FOOD101_TEMPLATES`, `EUROSAT_TEMPLATES`: the dataset-specific sets of the
  CLIP paper (github.com/openai/CLIP `data/prompts.md`, MIT).
- `SOURCE_TEMPLATES`: the templates of the prompt study in this project's source reports,
  including their long irrelevant sentence and the style prompts.
- `TEMPLATE_SETS`: name -> tuple of templates, the lookup configs use.
"""

from __future__ import annotations

import re

PHOTO: tuple[str, ...] = ("a photo of a {}.",)

IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

IMAGENET_TEMPLATES_SIMPLE: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

CIFAR_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
)

FOOD101_TEMPLATES: tuple[str, ...] = ("a photo of {}, a type of food.",)

EUROSAT_TEMPLATES: tuple[str, ...] = (
    "a centered satellite photo of {}.",
    "a centered satellite photo of a {}.",
    "a centered satellite photo of the {}.",
)

# The long sentence of the sources' prompt study (reported there at 48.12 % top-1).
IRRELEVANT_TEMPLATE = (
    "Beneath the fading sunset, the curious child wandered along the winding path. "
    "This is an image of {}."
)

SOURCE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a picture of a {}",
    "an image of a {}",
    "{}",
    "a wild animal: {}",
    IRRELEVANT_TEMPLATE,
    "a sketch of a {}",
    "a drawing of a {}",
    "a cartoon of a {}",
    "a low-resolution photo of a {}",
    "an artistic rendering of a {}",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "photo": PHOTO,
    "imagenet80": IMAGENET_TEMPLATES,
    "imagenet7": IMAGENET_TEMPLATES_SIMPLE,
    "cifar": CIFAR_TEMPLATES,
    "food101": FOOD101_TEMPLATES,
    "eurosat": EUROSAT_TEMPLATES,
    "source": SOURCE_TEMPLATES,
}

# The template set the CLIP paper used for each benchmark dataset.
DATASET_TEMPLATES: dict[str, str] = {
    "cifar10": "cifar",
    "cifar100": "cifar",
    "food101": "food101",
    "eurosat": "eurosat",
    "imagenet": "imagenet80",
    "imagenette": "imagenet80",
    "imagenet_folder": "imagenet80",
}


def fill(template: str, classname: str) -> str:
    """`template` with its single "{}" replaced by `classname`."""
    if template.count("{}") != 1:
        raise ValueError(f"template {template!r} must contain exactly one '{{}}'")
    return template.replace("{}", classname)


def get_templates(name: str) -> tuple[str, ...]:
    """The template set `name` (a key of `TEMPLATE_SETS`)."""
    try:
        return TEMPLATE_SETS[name]
    except KeyError:
        raise ValueError(
            f"unknown template set {name!r}; allowed: {sorted(TEMPLATE_SETS)}"
        ) from None


def plural(noun: str) -> str:
    """English plural of a class noun (the last word): +es after s/x/z/ch/sh, else +s."""
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    return noun + "s"
