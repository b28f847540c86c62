"""Shared fakes for the study tests (tests/test_study_*.py): a planted `Context` and report checks.

Import as `from tests.study_fakes import ...` (pytest's `pythonpath = ["."]` puts the repository
root on sys.path; `tests` is a namespace package). Nothing here computes an expected answer: the
planted embeddings and the independent references stay in each test file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ml_collections
import numpy as np
import pytest

from jaxclip.config_args import ConfigError
from jaxclip.report import to_jsonable
from jaxclip.studies.context import RenderContext, Study

PNG = b"\x89PNG\r\n\x1a\n"


def check_links(workdir: Path, markdown: str) -> list[str]:
    """The figure links of a markdown report: at least one, each an existing PNG file."""
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert links, "the report links no figures"
    for link in links:
        path = workdir / link
        assert path.is_file(), f"report links {link}, which does not exist"
        assert path.read_bytes()[:8] == PNG, f"{link} is not a PNG"
    return links


class FakeSource:
    """A dataset source as a study sees it: `info.attributes` (attribute -> value names) and,
    given `n`, items by row: an 8×8 image whose red channel is the row, and its index (every read
    row is recorded in `reads`)."""

    def __init__(self, attributes: Mapping[str, Sequence[str]] | None = None, n: int | None = None):
        self.info = SimpleNamespace(attributes=attributes or {})
        self.n = n
        self.reads: list[int] = []

    def __bool__(self) -> bool:  # a source is there even when it has no items
        return True

    def __len__(self) -> int:
        assert self.n is not None, "this fake source has no items"
        return self.n

    def __getitem__(self, i):
        assert self.n is not None, "this fake source has no items"
        self.reads.append(int(i))
        img = np.zeros((8, 8, 3), np.uint8)
        img[..., 0] = i
        return {"image": img, "index": int(i)}


class FakeContext:
    """What a study needs from a `jaxclip.studies.context.Context`, on planted arrays.

    Args:
      features: the `ImageFeatures` of the test split, or a dict split role -> `ImageFeatures`
        ("train", "test"); asking for any other split fails.
      workdir: where the study writes its figures (created).
      embed: the planted text encoder, one text -> one embedding row; every `texts` call is
        recorded in `text_calls`.
      model, dataset: the config's names (published numbers are keyed on them).
      logit_scale: the model's learned logit scale.
      logit_bias: a sigmoid-loss model's learned logit bias (None: a softmax CLIP).
      attributes: `source(...).info.attributes`, the dataset's attribute value names.
      source_items: given, `source(...)` also serves that many image items (`FakeSource`).
      config: extra config fields.
    """

    def __init__(
        self,
        features: Any,
        workdir: str | Path,
        *,
        embed: Callable[[str], np.ndarray],
        model: str = "planted",
        dataset: str = "planted",
        logit_scale: float = 100.0,
        logit_bias: float | None = None,
        attributes: Mapping[str, Sequence[str]] | None = None,
        source_items: int | None = None,
        config: Mapping[str, Any] | None = None,
    ):
        self._features = dict(features) if isinstance(features, Mapping) else {"test": features}
        self._embed = embed
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = ml_collections.ConfigDict(
            {"model": model, "dataset": dataset, "seed": 0, **(config or {})}
        )
        self.logit_scale = logit_scale
        self.logit_bias = logit_bias
        self.src = FakeSource(attributes, source_items)
        self.text_calls: list[list[str]] = []

    def split_name(self, which: str) -> str:
        return which

    def features(self, which: str):
        assert which in self._features, (
            f"asked for split {which!r}; planted: {sorted(self._features)}"
        )
        return self._features[which]

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        self.text_calls.append(list(texts))
        return np.stack([self._embed(t) for t in texts])

    def source(self, which: str) -> FakeSource:
        return self.src

    def decompose(self, which: str, rows, directions):
        raise AssertionError("this fake context plants no decomposition")


def check_bad_config(
    study_config: Callable[[], ml_collections.ConfigDict],
    check_config: Callable[[ml_collections.ConfigDict], None],
    field: str,
    value: Any,
    match: str,
) -> None:
    """`check_config` rejects `field = value` in the default section with a ConfigError
    matching `match` (`study_config` is the study's `configs/<name>.py: study_config`)."""
    cfg = study_config()
    cfg[field] = value
    with pytest.raises(ConfigError, match=match):
        check_config(cfg)


def run_study(study: Study, ctx: FakeContext, cfg: ml_collections.ConfigDict, name: str):
    """`study.analyse` then `study.render` on `ctx`, as the runner does (the result rendered is
    the one reloaded from its JSON form, and its `write_files` writes into `ctx.workdir`):
    (results.json entry, Section)."""
    result = study.analyse(ctx, cfg)
    if study.write_files is not None:
        study.write_files(result, ctx.workdir)
    config = ml_collections.ConfigDict(ctx.config.to_dict())
    config[name] = cfg
    config = ml_collections.ConfigDict(json.loads(json.dumps(to_jsonable(config))))

    def images(which: str, rows: Sequence[int]) -> list[np.ndarray]:
        return [np.asarray(ctx.source(which)[int(r)]["image"]) for r in rows]

    section = study.render(result.reloaded(), RenderContext(config, ctx.workdir, images))
    return result.to_json(), section


def run_smoke(get_config, experiment, tmp_path: Path, data_dir, run: str = "run"):
    """The experiment's `smoke` config run end to end into `tmp_path / run` (cache in
    `tmp_path / "cache"`): (config, workdir, results)."""
    config = get_config("smoke")
    config.cache_dir = str(tmp_path / "cache")
    config.data_dir = str(data_dir)
    workdir = tmp_path / run
    results = experiment.run(config, str(workdir))
    return config, workdir, results
