"""The orbax checkpoint steps of a `train_clip` run, opened as models.

`jaxclip.train` saves `{"step", "params", "opt_state"}` every `checkpoint_every` steps into
`RUN/checkpoints/<step>/` (orbax `CheckpointManager`, `StandardSave`) and the run's architecture
into `RUN/train_config.json` (`"model"`: the transformers config.json dict of
`variants.to_hf_config`). `load_step` reads that architecture, restores only the params of one
step (a partial orbax restore, as numpy arrays) and wraps them with the tokenizer and
preprocessing the run trained with, as the final `RUN/model` folder has them:

    jaxclip.load("runs/mini/checkpoints/300")   # a step folder
    jaxclip.load("runs/mini", step=300)          # a run folder and a step

Only this module's path helpers run without JAX (`checkpoint_steps`, `is_step_folder`), so a
sweep's dry run lists a run's steps without importing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jaxclip.errors import UserFileNotFoundError

CHECKPOINT_DIR = "checkpoints"  # = jaxclip.train.CHECKPOINT_DIR
CONFIG_FILE = "train_config.json"  # = jaxclip.train.CONFIG_FILE


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a train_clip run folder (its train_config.json exists)."""
    return (Path(path).expanduser() / CONFIG_FILE).is_file()


def checkpoint_steps(run: str | os.PathLike) -> list[int]:
    """The finished checkpoint steps of run folder `run`, ascending. Orbax writes a step into
    `<step>.orbax-checkpoint-tmp-*` and renames it when complete, so only digit-named folders
    are finished steps."""
    folder = Path(run).expanduser() / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def is_step_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is `RUN/checkpoints/<step>` of a train_clip run folder."""
    p = Path(path).expanduser()
    return (
        p.is_dir()
        and p.name.isdigit()
        and p.parent.name == CHECKPOINT_DIR
        and is_run_folder(p.parent.parent)
    )


def step_folder(path: str | os.PathLike, step: int | None = None) -> Path:
    """The step folder of `path` (a step folder, or a run folder with `step`).

    Raises:
      UserFileNotFoundError: not a run folder, or no such step (the message lists the steps).
    """
    p = Path(path).expanduser()
    if step is None:
        if is_step_folder(p):
            return p
        raise UserFileNotFoundError(f"{path} is not a train_clip checkpoint step folder")
    if not is_run_folder(p):
        raise UserFileNotFoundError(
            f"{path} is not a train_clip run folder (no {CONFIG_FILE}); step={step} needs one"
        )
    steps = checkpoint_steps(p)
    if int(step) not in steps:
        raise UserFileNotFoundError(
            f"run {path} has no checkpoint step {step}; its steps: "
            f"{', '.join(map(str, steps)) or 'none'}"
        )
    return p / CHECKPOINT_DIR / str(int(step))


def restore_params(folder: str | os.PathLike) -> dict[str, Any]:
    """The params of one orbax step folder as a numpy tree (the optimiser state is not read)."""
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    item = Path(folder).absolute() / "default"
    with ocp.StandardCheckpointer() as reader:
        tree = reader.metadata(item).item_metadata
    abstract = {
        "params": jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), tree["params"])
    }
    restore_args = jax.tree.map(lambda _: ocp.ArrayRestoreArgs(restore_type=np.ndarray), abstract)
    with ocp.PyTreeCheckpointer() as reader:
        out = reader.restore(
            item,
            args=ocp.args.PyTreeRestore(
                item=abstract, restore_args=restore_args, partial_restore=True
            ),
        )
    return out["params"]


def load_step(path: str | os.PathLike, step: int | None = None, *, dtype: str = "float32"):
    """A `LoadedCLIP` of one checkpoint step (see the module docstring); its `name` is the step
    folder's absolute path, as `jaxclip.load` names a folder."""
    from jaxclip.data.preprocess import PreprocessConfig
    from jaxclip.models.load import from_params
    from jaxclip.models.tokenizer import Tokenizer
    from jaxclip.models.variants import from_hf_config

    folder = step_folder(path, step)
    record = json.loads((folder.parent.parent / CONFIG_FILE).read_text())
    config = from_hf_config(record["model"])
    return from_params(
        config,
        restore_params(folder),
        tokenizer=Tokenizer.openai(config.text.context_length),
        preprocess=PreprocessConfig(image_size=config.vision.image_size),
        dtype=dtype,
        name=str(folder.resolve()),
    )
