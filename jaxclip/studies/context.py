"""The two seams of a study: what `analyse` may ask of the run, and what `render` may use.

A study (`jaxclip/studies/<name>.py`) is two functions:

* `analyse(ctx: Context, cfg) -> <Name>Result`: asks the context for image features of a split
  and text embeddings of prompts, calls the pure analyses in `jaxclip.analysis` /
  `jaxclip.probes`, and returns a frozen dataclass (`jaxclip.studies.result.StudyResult`). No
  plots, no prose, no files.
* `render(result, out: RenderContext) -> Section`: tables, figures and prose drawn from the
  result alone (and the run's config), so a saved run can be rendered again.

`Context` is a `typing.Protocol`: `RunContext` is the real one (a model, a dataset, a feature
cache); tests pass planted fakes with the same methods.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from jaxclip.report import Report
from jaxclip.studies.result import StudyResult

SPLIT_ROLES = ("train", "test")


@dataclasses.dataclass
class Section:
    """One study's part of the report (its title becomes a heading of the run's report)."""

    name: str
    report: Report


class Context(Protocol):
    """What `analyse` may ask of a run (model, data and text encoder, never files).

    Attributes:
      config: the run's ConfigDict (common fields: model, dataset, splits, seed, ...).
      logit_scale: the model's learned logit scale exp(t) (CLIP: 100).
      logit_bias: a sigmoid-loss model's learned logit bias b (SigLIP: scores t·cos + b), None
        for a softmax-loss CLIP. Optional: studies read it with `getattr(ctx, "logit_bias",
        None)`.
    """

    config: Any

    @property
    def logit_scale(self) -> float: ...

    @property
    def logit_bias(self) -> float | None: ...

    def split_name(self, which: str) -> str:
        """'train' / 'test' -> the dataset's split string."""
        ...

    def source(self, which: str) -> Any:
        """The dataset source of a split role (its `info.attributes` names attribute values)."""
        ...

    def features(self, which: str) -> Any:
        """`ImageFeatures` of the 'train' or 'test' split."""
        ...

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        """Raw text embeddings, (len(texts), D)."""
        ...

    def decompose(self, which: str, rows: np.ndarray, directions: np.ndarray | None) -> Any:
        """`jaxclip.models.decompose.Decomposition` of feature rows `rows` of a split (ViT image
        towers: per-head, per-MLP direct contributions to the image embedding)."""
        ...


@dataclasses.dataclass(frozen=True)
class RenderContext:
    """What `render` may use besides the result.

    Attributes:
      config: the run's whole ConfigDict (a study's own section is `config[name]`).
      workdir: where figures are written (report.md links them by file name).
      images: `images(split_role, dataset_indices) -> list of HWC uint8 arrays`, for figures
        that show images (None when the dataset cannot be opened: those figures are skipped).
    """

    config: Any
    workdir: Path
    images: Callable[[str, Sequence[int]], list[np.ndarray]] | None = None


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: `analyse(ctx, cfg) -> result`, `render(result, out) -> Section`.

    Attributes:
      analyse: arrays in (through a `Context`), a typed result out.
      render: the result (and the run's config) in, the study's part of the report out.
      result: the result's class (`from_json` rebuilds it from a saved run).
      check_config: validates the study's config section, one line per problem.
      write_files: optional; files a study leaves besides the report (e.g. a trained probe).
      fits_on_train: the study fits something (a probe) on the train split and scores it on
        the test split, so the two must not share images (`check_split_overlap`).
    """

    analyse: Callable[[Any, Any], StudyResult]
    render: Callable[[Any, RenderContext], Section]
    result: type[StudyResult]
    check_config: Callable[[Any], None]
    write_files: Callable[[Any, Path], None] | None = None
    fits_on_train: bool = False


class RunContext:
    """The real `Context`: the model and data shared by the studies of one run.

    Features are memoised, so `dissect` extracts each split once for all studies.

    Args:
      model: a `jaxclip.load(...)` result.
      config: the experiment's ConfigDict (common fields: dataset, data_dir, data_path,
        train_split, test_split, max_examples, batch_size, preprocess, dtype, cache_dir, seed).
    """

    def __init__(self, model: Any, config: Any):
        self.model = model
        self.config = config
        self._features: dict[str, Any] = {}

    @property
    def logit_scale(self) -> float:
        return float(math.exp(float(np.asarray(self.model.params["logit_scale"]))))

    @property
    def logit_bias(self) -> float | None:
        b = self.model.params.get("logit_bias")
        return None if b is None else float(np.asarray(b))

    def split_name(self, which: str) -> str:
        return split_name(self.config, which)

    def source(self, which: str):
        return open_source(self.config, which)

    def features(self, which: str):
        if which not in self._features:
            from jaxclip.features.extract import extract_images

            c = self.config
            self._features[which] = extract_images(
                self.model,
                self.source(which),
                batch_size=c.batch_size,
                preprocess=c.preprocess,
                dtype=c.dtype or None,
                cache_root=c.cache_dir or None,
            )
        return self._features[which]

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        from jaxclip.features.extract import extract_texts

        c = self.config
        return extract_texts(
            self.model,
            list(texts),
            batch_size=c.batch_size,
            dtype=c.dtype or None,
            cache_root=c.cache_dir or None,
        )

    def decompose(self, which: str, rows: np.ndarray, directions: np.ndarray | None) -> Any:
        from jaxclip.features.decomposition import decompose_rows

        feats = self.features(which)  # feature row r is item r of the split's source
        c = self.config
        return decompose_rows(
            self.model,
            self.source(which),
            rows,
            directions=directions,
            batch_size=c.inside.batch_size,
            preprocess=c.preprocess,
            cache_root=c.cache_dir or None,
            expected_indices=feats.indices[rows],
        )

    def data_summary(self) -> dict[str, Any]:
        """Size and cache entry of every split that was extracted (results.json's "data"); the
        entry is named relative to the feature cache root (no path of this machine)."""
        return {
            which: {"num_examples": len(f.embeds), "cache": _entry_name(f.meta.get("cache"))}
            for which in SPLIT_ROLES
            if (f := self._features.get(which)) is not None
        }


def _entry_name(cache: str | None) -> str | None:
    """A cache entry's folder name ("images-<key>"), relative to the cache root."""
    return None if cache is None else Path(cache).name


def split_name(config: Any, which: str) -> str:
    """'train' / 'test' -> the dataset's split string from the config."""
    if which not in SPLIT_ROLES:
        raise ValueError(f"split role must be 'train' or 'test', got {which!r}")
    return config.train_split if which == "train" else config.test_split


def open_source(config: Any, which: str):
    """The dataset source of a split role, subset as the config says."""
    from jaxclip.data.datasets import DEFAULT_TEST_FRACTION, load_dataset
    from jaxclip.data.subset import maybe_subset

    source = load_dataset(
        config.dataset,
        split_name(config, which),
        data_dir=config.data_dir or None,
        path=config.data_path or None,
        strict=bool(config.get("strict", False)),
        test_fraction=config.get("test_fraction", DEFAULT_TEST_FRACTION),
        seed=config.seed,
    )
    return maybe_subset(source, config.max_examples, seed=config.seed)


def check_split_overlap(config: Any) -> int:
    """How many examples the train and test splits share (`jaxclip.data.splits`); a
    ConfigError if any, unless `config.allow_split_overlap`, which logs a warning instead.

    Folder datasets are compared file by file; other datasets by split name (identical
    names share every example, different ones are taken to be disjoint, unopened).
    """
    from jaxclip.config_args import ConfigError
    from jaxclip.data.datasets import FOLDER_DATASETS
    from jaxclip.data.splits import shared_examples

    folders = config.dataset.split("/")[0] in FOLDER_DATASETS
    if not folders and config.train_split != config.test_split:
        return 0
    shared = shared_examples(open_source(config, "train"), open_source(config, "test"))
    if not shared:
        return 0
    what = "are the same split" if config.train_split == config.test_split else "overlap"
    if not config.get("allow_split_overlap", False):
        raise ConfigError(
            f"--config.train_split={config.train_split!r} and --config.test_split="
            f"{config.test_split!r} {what}: they share {shared} images, so probes would be "
            "tested on their own training images; choose disjoint splits (a folder of class "
            "subfolders: 'train' and 'val', split by --config.test_fraction) or pass "
            "--config.allow_split_overlap=True"
        )
    from absl import logging

    logging.warning(
        "train split %r and test split %r share %d images: accuracies are not held-out",
        config.train_split,
        config.test_split,
        shared,
    )
    return shared


def image_reader(config: Any) -> Callable[[str, Sequence[int]], list[np.ndarray]]:
    """`images(split_role, indices)` over the config's dataset (sources opened once each)."""
    sources: dict[str, Any] = {}

    def images(which: str, indices: Sequence[int]) -> list[np.ndarray]:
        if which not in sources:
            sources[which] = open_source(config, which)
        return [np.asarray(sources[which][int(i)]["image"]) for i in indices]

    return images
