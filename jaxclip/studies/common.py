"""Checks of the config fields every study run shares (model, data, extraction).

The fields and their defaults are in `configs/common.py` (`base_config`).
"""

from __future__ import annotations

import ml_collections

from jaxclip.analysis.clip_benchmark import PROTOCOLS
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.data.datasets import DATASETS, check_dataset_name
from jaxclip.features.extract import DTYPES, PREPROCESS_MODES
from jaxclip.models.catalog import MODELS


def check_common(config: ml_collections.ConfigDict) -> None:
    """Validates the common fields (after --config.x overrides); one clear error per problem."""
    base = config.dataset.split("/")[0]
    check_choice("dataset", base, DATASETS)
    check_dataset_name(config.dataset)  # no "..", cb/<name> in the CLIP_benchmark table
    check_choice("dtype", config.dtype, DTYPES)
    check_choice("preprocess", config.preprocess, PREPROCESS_MODES)
    check_choice("metrics_protocol", config.get("metrics_protocol", "jaxclip"), PROTOCOLS)
    if config.model not in MODELS and "/" not in config.model and not _exists(config.model):
        raise ConfigError(
            f"config.model={config.model!r} is not valid; choose one of: {', '.join(MODELS)}, "
            "an HF hub id (owner/name) or a local path"
        )
    if config.batch_size < 1:
        raise ConfigError(f"config.batch_size={config.batch_size} must be >= 1")
    if config.max_examples < 0:
        raise ConfigError(f"config.max_examples={config.max_examples} must be >= 0 (0 = all)")


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)
