"""What every study needs from the outside world, in one object: model, features, texts, output.

A study (`jaxclip/studies/<name>.py`) is `run(ctx) -> Section`: it asks the context for image
features of a split and for text embeddings of prompts, calls the pure analyses in
`jaxclip.analysis` / `jaxclip.probes`, draws its plots into `ctx.workdir`, and returns its
results dict and its part of the report. The context memoises features, so `dissect` runs
extraction once for all studies.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip.report import Report


@dataclasses.dataclass
class Section:
    """One study's output: results (JSON-able, nested) and its part of the report."""

    name: str
    results: dict[str, Any]
    report: Report


class Context:
    """Model, data and output folder shared by the studies of one run.

    Args:
      model: a `jaxclip.load(...)` result.
      config: the experiment's ConfigDict (common fields: dataset, data_dir, data_path,
        train_split, test_split, max_examples, batch_size, preprocess, dtype, cache_dir, seed).
      workdir: where plots and reports go.
    """

    def __init__(self, model: Any, config: Any, workdir: str | Path):
        self.model = model
        self.config = config
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._features: dict[str, Any] = {}

    @property
    def logit_scale(self) -> float:
        """The model's learned logit scale exp(t) (CLIP: 100)."""
        return float(math.exp(float(np.asarray(self.model.params["logit_scale"]))))

    def split_name(self, which: str) -> str:
        """'train' / 'test' -> the dataset's split string from the config."""
        if which not in ("train", "test"):
            raise ValueError(f"split role must be 'train' or 'test', got {which!r}")
        return self.config.train_split if which == "train" else self.config.test_split

    def source(self, which: str):
        from jaxclip.data.datasets import load_dataset
        from jaxclip.data.subset import maybe_subset

        c = self.config
        source = load_dataset(
            c.dataset,
            self.split_name(which),
            data_dir=c.data_dir or None,
            path=c.data_path or None,
        )
        return maybe_subset(source, c.max_examples, seed=c.seed)

    def features(self, which: str):
        """ImageFeatures of the 'train' or 'test' split (extracted once, cached on disk)."""
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
        """Raw text embeddings (len(texts), D), batched and cached."""
        from jaxclip.features.extract import extract_texts

        c = self.config
        return extract_texts(
            self.model,
            list(texts),
            batch_size=c.batch_size,
            dtype=c.dtype or None,
            cache_root=c.cache_dir or None,
        )

    def class_texts(self, classnames: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """Raw text embeddings of every (class, template) pair, shape (C, T, D)."""
        prompts = [t.format(name) for name in classnames for t in templates]
        emb = self.texts(prompts)
        return emb.reshape(len(classnames), len(templates), -1)
