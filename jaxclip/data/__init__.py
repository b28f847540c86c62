"""Data: datasets as uint8 image sources, the built-in shapes dataset, class names, templates,
generic prompt sets and the host input pipeline.

Nothing heavy is imported here: names resolve lazily from their submodules on first use
(`jaxclip.data.load_dataset` imports `jaxclip.data.datasets`, and tensorflow_datasets only when
a dataset is opened).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # datasets
    "DATASETS": "datasets",
    "DEFAULT_SPLITS": "datasets",
    "DatasetInfo": "datasets",
    "DatasetNotPreparedError": "datasets",
    "DatasetSource": "datasets",
    "load_dataset": "datasets",
    # pipeline
    "Batch": "pipeline",
    "batches": "pipeline",
    "num_batches": "pipeline",
    # text
    "CLASSNAMES": "classnames",
    "PROMPT_SETS": "prompts",
    "get_prompts": "prompts",
    "TEMPLATE_SETS": "templates",
    "SOURCE_TEMPLATES": "templates",
    "get_templates": "templates",
    # shapes
    "render_example": "shapes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxclip.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jaxclip.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
