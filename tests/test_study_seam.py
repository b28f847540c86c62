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


def test_the_documented_example_study_runs(tmp_path):
    """docs/STUDIES.md's 30-line study works as printed, on planted embeddings."""
    import re
    from pathlib import Path

    import ml_collections

    from jaxclip.features.extract import ImageFeatures
    from tests.study_fakes import FakeContext, run_study

    doc = (Path(__file__).resolve().parents[1] / "docs" / "STUDIES.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    module: dict = {}
    exec(compile(code, "docs/STUDIES.md", "exec"), module)
    embeds = np.array([[3, 4], [6, 8], [0, 1]], np.float32)  # norms 5, 10, 1
    feats = ImageFeatures(
        embeds=embeds,
        labels=np.array([0, 0, 1]),
        indices=np.arange(3),
        attributes={},
        captions=None,
        classnames=("cat", "dog"),
        meta={},
    )
    ctx = FakeContext(feats, tmp_path, embed=lambda t: np.zeros(2, np.float32))
    cfg = ml_collections.ConfigDict({"split": "test"})
    entry, section = run_study(module["STUDY"], ctx, cfg, "norms")
    assert entry == {
        "split": "test",
        "mean_norm": pytest.approx(16 / 3),
        "per_class": [{"class": "cat", "mean_norm": 7.5}, {"class": "dog", "mean_norm": 1.0}],
    }
    assert "| cat | 7.500 |" in section.report.markdown()
