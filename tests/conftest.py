"""Test-wide settings: offline hubs and two virtual CPU devices (set before JAX starts)."""

import os

# Two host devices so data-parallel code paths run in CI; tests that compare 1 vs 2 devices
# pick `jax.devices()[:1]` explicitly.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
# Nothing may wait on a hub that cannot answer.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest


@pytest.fixture(scope="session")
def shapes_data_dir(tmp_path_factory):
    """A TFDS data dir with the built-in shapes dataset's `tiny` config prepared (once)."""
    from jaxclip.data.datasets import load_dataset

    data_dir = tmp_path_factory.mktemp("tfds")
    load_dataset("shapes/tiny", "train", data_dir=data_dir)
    return data_dir


@pytest.fixture(scope="session")
def tiny_model():
    """The seeded random `tiny` CLIP (width 64, 32 px) as a LoadedCLIP."""
    from jaxclip.models.catalog import open_model

    return open_model("tiny_random")
