"""Models the experiments train here on first use (the library only opens what is trained).

`ensure_trained(config)` runs before any experiment opens `config.model`: for "mini" it trains
the mini-CLIP of `configs/train_clip.py` once (a few minutes on a CPU; cached and recorded under
its name, so `jaxclip.load("mini")` opens it afterwards) or reuses the finished run; for
"mini_siglip" likewise the same recipe with SigLIP's sigmoid loss (`configs/train_clip.py:sigmoid`).
"""

from __future__ import annotations

import time
from typing import Any


def _mini_recipe() -> Any:
    from configs.train_clip import mini_config

    return mini_config()


def _mini_siglip_recipe() -> Any:
    from configs.train_clip import get_config

    return get_config("sigmoid")


# Catalog name -> the train_clip config that produces it (imported on use: a bad command line
# is reported before JAX is imported).
TRAINED_HERE = {"mini": _mini_recipe, "mini_siglip": _mini_siglip_recipe}


def ensure_trained(config: Any) -> float | None:
    """Trains (or reuses) `config.model` when it is a model trained here; else nothing.

    Returns the seconds spent when the model was not trained yet (trained now, or waited for
    while another process trained it), else None.
    """
    name = str(config.model)
    recipe = TRAINED_HERE.get(name)
    if recipe is None:
        return None
    from jaxclip import train

    cache_dir = config.cache_dir or None
    recipe_config = recipe()
    if train.is_finished(train.run_folder(recipe_config, cache_dir)):
        train.train_or_reuse(recipe_config, cache_dir=cache_dir)  # records the catalog name
        return None
    from jaxclip import progress

    progress.say(
        f"training {name!r} on first use (cached afterwards) into "
        f"{train.run_folder(recipe_config, cache_dir)}"
    )
    t = time.perf_counter()
    train.train_or_reuse(recipe_config, cache_dir=cache_dir)
    return time.perf_counter() - t


def run_studies(config: Any, workdir: str, names: list[str]) -> dict:
    """`jaxclip.studies.runner.run_studies` after checking the config and training the model
    if it is trained here (a bad config fails before any training). The training is a row of
    the run's Timings (`train_model`) when it happened in this run."""
    from jaxclip.features.job import check_writable_dirs
    from jaxclip.studies import runner

    t0 = time.perf_counter()
    runner.check_config(config, names)
    check_writable_dirs(config, workdir)  # a read-only disk fails now, not after the work
    trained = ensure_trained(config)
    before = {} if trained is None else {"train_model": trained}
    return runner.run_studies(config, workdir, names, t0=t0, before=before)
