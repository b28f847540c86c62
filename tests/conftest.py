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
