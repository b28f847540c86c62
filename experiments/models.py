"""Models the experiments train here on first use (the library only opens what is trained).

`ensure_trained(config)` runs before any experiment opens `config.model`: for "mini" it trains
the mini-CLIP of `configs/train_clip.py` once (a few minutes on a CPU; cached and recorded under
its name, so `jaxclip.load("mini")` opens it afterwards) or reuses the finished run.
"""

from __future__ import annotations

from typing import Any


def _mini_recipe() -> Any:
    from configs.train_clip import mini_config

    return mini_config()


# Catalog name -> the train_clip config that produces it (imported on use: a bad command line
# is reported before JAX is imported).
TRAINED_HERE = {"mini": _mini_recipe}


def ensure_trained(config: Any) -> None:
    """Trains (or reuses) `config.model` when it is a model trained here; else nothing."""
    recipe = TRAINED_HERE.get(str(config.model))
    if recipe is not None:
        from jaxclip import train

        train.train_or_reuse(recipe(), cache_dir=config.cache_dir or None)


def run_studies(config: Any, workdir: str, names: list[str]) -> dict:
    """`jaxclip.studies.runner.run_studies` after checking the config and training the model
    if it is trained here (a bad config fails before any training)."""
    from jaxclip.features.job import check_writable_dirs
    from jaxclip.studies import runner

    runner.check_config(config, names)
    check_writable_dirs(config, workdir)  # a read-only disk fails now, not after the work
    ensure_trained(config)
    return runner.run_studies(config, workdir, names)
