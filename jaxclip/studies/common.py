"""Checks of the config fields every study run shares (model, data, extraction).

The fields and their defaults are in `configs/common.py` (`base_config`).
"""

from __future__ import annotations

import ml_collections

from jaxclip.analysis.clip_benchmark import PROTOCOLS
from jaxclip.config_args import ConfigError, check_choice, parse_list
from jaxclip.data.datasets import (
    DATASETS,
    DEFAULT_TEST_FRACTION,
    FOLDER_DATASETS,
    check_dataset_name,
    folder_split,
)
from jaxclip.errors import UserError
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
    check_folder_splits(config)


def check_folder_splits(config: ml_collections.ConfigDict) -> None:
    """A folder dataset: `data_path` is a folder and the splits the run reads are in it
    (ConfigError in flag terms otherwise); `test_fraction` is in (0, 1)."""
    fraction = config.get("test_fraction", DEFAULT_TEST_FRACTION)
    if not isinstance(fraction, int | float) or not 0.0 < fraction < 1.0:
        raise ConfigError(f"--config.test_fraction={fraction!r} must be > 0 and < 1 (e.g. 0.2)")
    base = config.dataset.split("/")[0]
    if base not in FOLDER_DATASETS:
        return
    # An extraction names the split roles it reads (`config.splits`); studies read both.
    roles = parse_list("splits", config.get("splits", "train,test"))
    for key in [f"{role}_split" for role in ("train", "test") if role in roles]:
        try:
            folder_split(
                config.data_path,
                config[key],
                name=base,
                path_arg=f"--config.data_path={config.data_path!r}",
                split_arg=f"--config.{key}={config[key]!r}",
            )
        except UserError as e:
            raise ConfigError(str(e)) from None


def _exists(path: str) -> bool:
    import os

    return os.path.exists(path)
