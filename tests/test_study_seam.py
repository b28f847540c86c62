"""The study seam: a result dataclass is its results.json entry, and a run re-renders from files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from jaxclip.studies.result import StudyResult, optional, sidecar, timing


@dataclasses.dataclass(frozen=True, kw_only=True)
class Toy(StudyResult):
    split: str
    published: float | None = optional()
    top1: float
    per_class: list
    scores: np.ndarray | None = sidecar()
    seconds: dict = timing()


def toy(**kw) -> Toy:
    base = dict(
        split="test",
        top1=0.25,
        per_class=[{"class": "a", "f1": float("nan")}],
        scores=np.arange(6, dtype=np.float32).reshape(2, 3),
        seconds={"fit": 1.5},
    )
    return Toy(**{**base, **kw})


def test_fields_in_order_optional_left_out_elsewhere_kept_elsewhere():
    r = toy()
    # Declaration order, optional None dropped, sidecar and timing not in the JSON, NaN -> null.
    assert list(r.to_json()) == ["split", "top1", "per_class"]
    assert r.to_json()["per_class"] == [{"class": "a", "f1": None}]
    assert list(toy(published=63.2).to_json()) == ["split", "published", "top1", "per_class"]
    np.testing.assert_array_equal(r.arrays()["scores"], np.arange(6).reshape(2, 3))
    assert r.timings() == {"seconds": {"fit": 1.5}}
    assert toy(scores=None).arrays() == {}


def test_round_trip_through_json_rebuilds_the_result():
    r = toy(published=63.2)
    entry = json.loads(json.dumps(r.to_json()))
    back = Toy.from_json(entry, r.arrays(), r.timings())
    assert back.to_json() == r.to_json() and back.published == 63.2
    np.testing.assert_array_equal(back.scores, r.scores)
    assert back.seconds == {"fit": 1.5}
    again = r.reloaded()
    assert again.per_class == [{"class": "a", "f1": None}]  # the JSON form render sees
    assert Toy.from_json({"split": "x", "top1": 1.0, "per_class": []}).published is None


def test_missing_required_field_names_it():
    with pytest.raises(ValueError, match=r"Toy: results entry has no 'top1' \(keys: split\)"):
        Toy.from_json({"split": "test"})
