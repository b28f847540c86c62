"""Generic prompt sets (nested, distinct, class-agnostic) and zero-shot templates."""

from __future__ import annotations

import itertools
import re

import pytest

from jaxclip.data import classnames as cn
from jaxclip.data import prompts, templates
from tests.reference_models import open_clip_metadata

# The 32 generic prompts of the source reports, copied by hand in their order: an independent
# copy that the library's GENERIC_32 must equal.
SOURCE_32 = [
    "a photo of an object",
    "a photo of something natural",
    "a photo of something man-made",
    "a blurry photo",
    "a close-up photo",
    "a photo taken during the day",
    "a photo taken outdoors",
    "a photo taken indoors",
    "a small object",
    "a large object",
    "an animal",
    "a machine",
    "a thing that moves",
    "a stationary object",
    "a photo of a living thing",
    "a photo of a synthetic thing",
    "a colorful object",
    "a grayscale image",
    "a smooth surface",
    "a textured object",
    "a plastic object",
    "a metallic object",
    "a flying thing",
    "a photo of something round",
    "a rectangular object",
    "a noisy image",
    "an object with wheels",
    "an object with wings",
    "an underwater object",
    "a photo from a low angle",
    "a photo from a top view",
    "a centered object",
]


def test_the_32_prompts_are_exactly_the_sources():
    assert list(prompts.PROMPT_SETS["generic32"]) == SOURCE_32
    assert len(set(SOURCE_32)) == 32


def test_sizes_nesting_and_distinctness():
    sets = prompts.PROMPT_SETS
    assert {k: len(v) for k, v in sets.items()} == {
        "generic16": 16,
        "generic32": 32,
        "generic100": 100,
        "generic200": 200,
        "generic400": 400,
    }
    order = ["generic16", "generic32", "generic100", "generic200", "generic400"]
    for small, big in itertools.pairwise(order):
        assert sets[big][: len(sets[small])] == sets[small]
    everything = sets["generic400"]
    assert len({p.strip().lower() for p in everything}) == 400
    assert all(p == p.strip() and p and "{" not in p for p in everything)


def _tokens(text: str, split_hyphens: bool) -> list[str]:
    pattern = r"[a-z0-9']+" if split_hyphens else r"[a-z0-9][a-z0-9'\-]*"
    return re.findall(pattern, text.lower())


def test_prompts_name_no_benchmark_class():
    """No class name of CIFAR-10/100, Food-101, EuroSAT or ImageNet-1k (plural forms too) as a
    whole word sequence; the project's own prompts are also checked inside hyphenated words
    (the sources' 32 include "man-made", which contains CIFAR-100's "man")."""
    names = set()
    for source in (
        cn.CIFAR10_CLASSNAMES,
        cn.CIFAR100_CLASSNAMES,
        cn.FOOD101_CLASSNAMES,
        cn.EUROSAT_CLASSNAMES,
        cn.IMAGENET_CLASSNAMES,
    ):
        for name in source:
            t = tuple(_tokens(name, False))
            names |= {t, (*t[:-1], t[-1] + "s"), (*t[:-1], t[-1] + "es")}
    hits = []
    for k, prompt in enumerate(prompts.GENERIC_400):
        toks = _tokens(prompt, split_hyphens=k >= 32)
        for name in names:
            n = len(name)
            if any(tuple(toks[i : i + n]) == name for i in range(len(toks) - n + 1)):
                hits.append((prompt, " ".join(name)))
    assert hits == []


def test_check_above_can_fail():
    toks = _tokens("a photo of a pickup truck", split_hyphens=True)
    assert ("pickup", "truck") in {tuple(toks[i : i + 2]) for i in range(len(toks) - 1)}


def test_get_prompts():
    assert prompts.get_prompts("generic16") == prompts.GENERIC_32[:16]
    with pytest.raises(ValueError, match="generic32"):
        prompts.get_prompts("generic33")


def test_imagenet_templates_match_open_clip():
    module = open_clip_metadata()
    assert templates.IMAGENET_TEMPLATES == tuple(t("{}") for t in module.OPENAI_IMAGENET_TEMPLATES)
    assert len(templates.IMAGENET_TEMPLATES) == 80
    assert templates.IMAGENET_TEMPLATES_SIMPLE == tuple(
        t("{}") for t in module.SIMPLE_IMAGENET_TEMPLATES
    )


def test_template_sets():
    sets = templates.TEMPLATE_SETS
    assert sets["photo"] == ("a photo of a {}.",)
    assert len(sets["cifar"]) == 18 and sets["cifar"][0] == "a photo of a {}."
    assert sets["food101"] == ("a photo of {}, a type of food.",)
    assert len(sets["eurosat"]) == 3
    assert sets["eurosat"][0] == "a centered satellite photo of {}."
    for name, group in sets.items():
        assert len(set(group)) == len(group), name
        assert all(t.count("{}") == 1 for t in group), name
    for dataset, key in templates.DATASET_TEMPLATES.items():
        assert key in sets, dataset


def test_source_templates():
    src = templates.SOURCE_TEMPLATES
    assert src[:5] == (
        "a photo of a {}",
        "a picture of a {}",
        "an image of a {}",
        "{}",
        "a wild animal: {}",
    )
    assert src[5].endswith("This is an image of {}.") and len(src[5]) > 60
    assert src[6:] == (
        "a sketch of a {}",
        "a drawing of a {}",
        "a cartoon of a {}",
        "a low-resolution photo of a {}",
        "an artistic rendering of a {}",
    )


def test_fill_and_get_templates():
    assert templates.fill("a photo of {}, a type of food.", "apple pie") == (
        "a photo of apple pie, a type of food."
    )
    with pytest.raises(ValueError):
        templates.fill("no slot", "x")
    with pytest.raises(ValueError, match="photo"):
        templates.get_templates("nope")
