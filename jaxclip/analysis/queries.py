"""Text queries read against a dataset's labels: which images a query describes.

Where a dataset labels what an image shows (class names; the shapes attributes colour, size,
count, background, position), a query's words are matched against those labels
(`parse_query`), so a query like "three small blue stars" can be scored: precision@k = the
share of its top-k images that have every named property, beside the share of the whole gallery
that has them (`precision_at_k`). For captions the same parse gives a ceiling
(`caption_ceiling`): a ranker that knew exactly the properties a caption names, and broke ties
at random, would find the caption's own image first with probability 1/m (m = images with
those properties).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

import numpy as np

from jaxclip.data.templates import plural


@dataclasses.dataclass
class QueryParse:
    """What a query asks for, in the dataset's labels.

    constraints: label name ("label" = the class, or an attribute) -> allowed value indices.
    An image satisfies the query when its value is allowed for every constrained label.
    """

    constraints: dict[str, tuple[int, ...]]

    def describe(self, names: Mapping[str, Sequence[str]]) -> str:
        """The constraints in words, in `names` order ("class=circle, color={red, blue}";
        "" when there are none)."""
        if not self.constraints:
            return ""
        parts = []
        for key in [k for k in names if k in self.constraints]:
            vals = self.constraints[key]
            words = [str(names[key][v]) for v in vals]
            shown = words[0] if len(words) == 1 else "{" + ", ".join(words) + "}"
            parts.append(f"{'class' if key == 'label' else key}={shown}")
        return ", ".join(parts)

    def mask(self, labels: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """(n,) bool: the images that satisfy every constraint."""
        out = np.ones(n, bool)
        for key, vals in self.constraints.items():
            out &= np.isin(np.asarray(labels[key]), np.asarray(vals))
        return out


def parse_query(text: str, names: Mapping[str, Sequence[str]]) -> QueryParse:
    """Matches the words of `text` against label value names (longest phrase first).

    Args:
      text: the query.
      names: label -> value names, "label" for the class names (e.g. {"label": ("circle", ...),
        "color": ("red", ...), "count": ("one", "two", "three"), ...}).

    Class names also match in the plural. With a "count" label whose first value is "one"
    (the shapes dataset) and no count word in the query, a singular class noun means count
    "one" and a plural one any other count, as the shapes captions are written.
    """
    low = " " + re.sub(r"[^a-z0-9 ]+", " ", text.lower()) + " "
    phrases: list[tuple[str, str, int, str | None]] = []
    for key, values in names.items():
        for v, name in enumerate(values):
            name = re.sub(r"[^a-z0-9 ]+", " ", str(name).lower()).strip()
            if not name:
                continue
            if key == "label":
                phrases.append((name, key, v, "singular"))
                phrases.append((plural(name), key, v, "plural"))
            else:
                phrases.append((name, key, v, None))
    phrases.sort(key=lambda p: -len(p[0]))
    found: dict[str, list[int]] = {}
    number: str | None = None
    for phrase, key, v, num in phrases:
        pat = re.compile(rf"(?<= ){re.escape(phrase)}(?= )")
        if pat.search(low):
            low = pat.sub(" ".join("#" * len(w) for w in phrase.split()), low)
            if v not in found.setdefault(key, []):
                found[key].append(v)
            if num is not None:
                number = num
    counts = [str(c).lower() for c in names.get("count", ())]
    if "count" in names and "count" not in found and counts[:1] == ["one"] and number:
        found["count"] = [0] if number == "singular" else list(range(1, len(counts)))
    return QueryParse({k: tuple(sorted(v)) for k, v in found.items()})


def caption_ceiling(
    texts: Sequence[str],
    t2i: np.ndarray,
    names: Mapping[str, Sequence[str]],
    labels: Mapping[str, np.ndarray],
    n: int,
) -> dict[str, float] | None:
    """Expected R@1 / R@5 of a ranker that knows exactly the properties each caption names.

    Each caption is parsed (`parse_query`); m = the gallery images with every property it
    names (all n when it names none); a ranker that knew exactly those properties and broke
    ties at random finds the caption's own image first with probability 1/m, in the top 5 with
    min(1, 5/m). Captions whose parse contradicts their own image's labels are left out.

    Args:
      texts: the captions; t2i: (T,) the image row of each caption.
      names: label -> value names; labels: label -> (n,) values; n: gallery size.

    Returns:
      {"R@1", "R@5", "mean_matching_images", "parsed_share", "captions_used"}, or None when no
      caption names a labelled property.
    """
    cache: dict[str, tuple[int, bool, bool]] = {}
    r1, r5, m_all, parsed = [], [], [], 0
    for t, i in zip(texts, t2i):
        if t not in cache:
            p = parse_query(t, names)
            mask = p.mask(labels, n)
            cache[t] = (int(mask.sum()), bool(p.constraints), bool(mask[int(i)]))
        m, has, own_ok = cache[t]
        if has and not own_ok:  # the parse contradicts the image's labels: leave it out
            continue
        # A caption that names nothing the labels record leaves all n images equally likely.
        m = m if has else n
        parsed += has
        m_all.append(m)
        r1.append(1.0 / m)
        r5.append(min(1.0, 5.0 / m))
    if not m_all or not parsed:
        return None
    return {
        "R@1": float(np.mean(r1)),
        "R@5": float(np.mean(r5)),
        "mean_matching_images": float(np.mean(m_all)),
        "parsed_share": parsed / len(texts),
        "captions_used": len(m_all),
    }


def precision_at_k(
    parse: QueryParse, idx: np.ndarray, labels: Mapping[str, np.ndarray], n: int
) -> tuple[float | None, float | None, int | None]:
    """(precision@k of the top-k rows `idx`, base rate over the gallery, number of matching
    images); all None when the query names nothing the labels record."""
    if not parse.constraints:
        return None, None, None
    mask = parse.mask(labels, n)
    return float(mask[idx].mean()), float(mask.mean()), int(mask.sum())
