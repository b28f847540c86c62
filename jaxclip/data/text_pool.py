"""A general pool of short image descriptions, generated from word lists (TextSpan's texts).

Gandelsman et al. (ICLR 2024) run TextSpan over a few thousand generic image descriptions, not
over the labels of the dataset at hand, so that what a head is found to encode is not decided
in advance. `general_pool()` builds such a pool by code: each template below is filled with
every combination of its word lists (colours x objects, sizes x objects, counts x objects,
objects x materials, objects x scenes, styles x objects, textures x materials, colours x
textures, styles x scenes), in a fixed order, duplicates removed. It holds

    12*40 + 5*40 + 5*40 + 40*12 + 40*16 + 8*40 + 10*12 + 12*10 + 8*16 = 2688 descriptions

(`GENERAL_POOL_SIZE`), the same on every machine and every run. `load_pool_file` reads a pool
from a text file of one description per line instead.
"""

from __future__ import annotations

from pathlib import Path

from jaxclip.errors import UserFileNotFoundError, UserValueError

COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
    "golden",
)
# (singular, plural)
OBJECTS: tuple[tuple[str, str], ...] = (
    ("circle", "circles"),
    ("square", "squares"),
    ("triangle", "triangles"),
    ("star", "stars"),
    ("heart", "hearts"),
    ("ball", "balls"),
    ("cube", "cubes"),
    ("cup", "cups"),
    ("bottle", "bottles"),
    ("chair", "chairs"),
    ("table", "tables"),
    ("lamp", "lamps"),
    ("book", "books"),
    ("clock", "clocks"),
    ("car", "cars"),
    ("bicycle", "bicycles"),
    ("boat", "boats"),
    ("airplane", "airplanes"),
    ("train", "trains"),
    ("truck", "trucks"),
    ("house", "houses"),
    ("tree", "trees"),
    ("flower", "flowers"),
    ("leaf", "leaves"),
    ("apple", "apples"),
    ("banana", "bananas"),
    ("cake", "cakes"),
    ("dog", "dogs"),
    ("cat", "cats"),
    ("bird", "birds"),
    ("horse", "horses"),
    ("fish", "fish"),
    ("frog", "frogs"),
    ("butterfly", "butterflies"),
    ("person", "people"),
    ("child", "children"),
    ("hand", "hands"),
    ("shoe", "shoes"),
    ("hat", "hats"),
    ("mountain", "mountains"),
)
MATERIALS: tuple[str, ...] = (
    "wood",
    "metal",
    "glass",
    "plastic",
    "stone",
    "paper",
    "fabric",
    "leather",
    "rubber",
    "clay",
    "ice",
    "gold",
)
# Where: phrases that follow "a photo of a {object}".
SCENES: tuple[str, ...] = (
    "on a beach",
    "in a forest",
    "in a kitchen",
    "in a living room",
    "on a street",
    "in a field",
    "in the snow",
    "underwater",
    "in the sky",
    "in a desert",
    "on a table",
    "in a garden",
    "in an office",
    "at night",
    "in the rain",
    "on a white background",
)
STYLES: tuple[str, ...] = (
    "photo",
    "sketch",
    "painting",
    "cartoon",
    "drawing",
    "3d rendering",
    "low-resolution photo",
    "black and white photo",
)
TEXTURES: tuple[str, ...] = (
    "smooth",
    "rough",
    "striped",
    "dotted",
    "checkered",
    "wrinkled",
    "shiny",
    "furry",
    "cracked",
    "woven",
)
SIZES: tuple[str, ...] = ("tiny", "small", "medium-sized", "large", "huge")
COUNTS: tuple[str, ...] = ("two", "three", "four", "five", "many")

# The word lists by name (every one of them fills at least one template below).
WORD_LISTS: dict[str, tuple] = {
    "colours": COLOURS,
    "objects": OBJECTS,
    "materials": MATERIALS,
    "scenes": SCENES,
    "styles": STYLES,
    "textures": TEXTURES,
    "sizes": SIZES,
    "counts": COUNTS,
}

GENERAL_POOL_SIZE = 2688


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def general_pool() -> list[str]:
    """The general pool: `GENERAL_POOL_SIZE` distinct descriptions, always in the same order."""
    names = [o for o, _ in OBJECTS]
    texts: list[str] = []
    texts += [f"a photo of {_article(c)} {c} {o}." for c in COLOURS for o in names]
    texts += [f"a photo of {_article(s)} {s} {o}." for s in SIZES for o in names]
    texts += [f"a photo of {n} {p}." for n in COUNTS for _, p in OBJECTS]
    texts += [f"a photo of {_article(o)} {o} made of {m}." for o in names for m in MATERIALS]
    texts += [f"a photo of {_article(o)} {o} {s}." for o in names for s in SCENES]
    texts += [f"{_article(st)} {st} of {_article(o)} {o}." for st in STYLES for o in names]
    texts += [f"an image with {_article(t)} {t} {m} surface." for t in TEXTURES for m in MATERIALS]
    texts += [f"an image with {_article(c)} {c} {t} pattern." for c in COLOURS for t in TEXTURES]
    texts += [f"{_article(st)} {st} of a scene {s}." for st in STYLES for s in SCENES]
    return list(dict.fromkeys(texts))


def load_pool_file(path: str | Path, *, field: str = "text_pool") -> list[str]:
    """Descriptions from a UTF-8 text file, one per line (blank lines and surrounding spaces
    dropped, repeats kept once, order kept).

    Raises:
      UserFileNotFoundError: no such file. UserValueError: it holds no description.
    """
    p = Path(path)
    if not p.is_file():
        raise UserFileNotFoundError(
            f"{field}={str(path)!r}: no such file; give 'general', 'attributes' or a text file "
            "of one description per line"
        )
    lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    texts = list(dict.fromkeys(line for line in lines if line))
    if not texts:
        raise UserValueError(
            f"{field}={str(path)!r} holds no description; it needs one description per line"
        )
    return texts
