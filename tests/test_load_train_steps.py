"""`jaxclip.load` of a train_clip run's orbax checkpoint steps (`jaxclip.models.steps`), and a
sweep grid that expands a run folder into its steps."""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import jaxclip
from configs.sweep import get_config
from configs.train_clip import get_config as train_config
from jaxclip import sweep, train
from jaxclip.config_args import ConfigError
from jaxclip.errors import UserFileNotFoundError
from jaxclip.models import steps
from jaxclip.models.load import from_params


@pytest.fixture(scope="module")
def run(shapes_data_dir, tmp_path_factory):
    """A 2-step smoke training run with a checkpoint at steps 1 and 2 (and its final model)."""
    c = train_config("smoke")
    c.num_steps, c.checkpoint_every, c.keep_checkpoints = 2, 1, 3
    c.data_dir, c.progress, c.num_devices = str(shapes_data_dir), False, 1
    workdir = tmp_path_factory.mktemp("run")
    train.train(c, workdir, evaluate=False)
    return workdir


IMAGES = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
TEXTS = ["a photo of a red circle", "a small blue square"]


def test_constants_match_train():
    assert (steps.CHECKPOINT_DIR, steps.CONFIG_FILE) == (train.CHECKPOINT_DIR, train.CONFIG_FILE)


def assert_same_params(a, b):
    flat_a, tree_a = jax.tree.flatten(a)
    flat_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_step_equals_orbax_restore_and_final_model(run):
    assert steps.checkpoint_steps(run) == [1, 2]
    by_folder = jaxclip.load(run / "checkpoints" / "1")
    # The same step restored directly with orbax (the whole saved state, no target).
    with ocp.StandardCheckpointer() as reader:
        state = reader.restore((run / "checkpoints" / "1" / "default").absolute())
    assert int(state["step"]) == 1
    direct = from_params(by_folder.config, jax.tree.map(np.asarray, state["params"]))
    np.testing.assert_array_equal(by_folder.encode_image(IMAGES), direct.encode_image(IMAGES))
    np.testing.assert_array_equal(by_folder.encode_text(TEXTS), direct.encode_text(TEXTS))
    assert_same_params(jaxclip.load(run, step=1).params, by_folder.params)
    # The last step holds the params train_clip saved at the end (a transformers folder).
    last, final = jaxclip.load(run, step=2), jaxclip.load(run / "model")
    assert_same_params(last.params, final.params)
    assert last.config == final.config
    assert not np.array_equal(
        np.asarray(last.params["logit_scale"]), state["params"]["logit_scale"]
    )


def test_missing_step_names_the_steps(run, tmp_path):
    with pytest.raises(UserFileNotFoundError, match=r"no checkpoint step 7; its steps: 1, 2"):
        jaxclip.load(run, step=7)
    with pytest.raises(UserFileNotFoundError, match="not a train_clip run folder"):
        jaxclip.load(tmp_path, step=1)


def test_sweep_grid_expands_a_run_into_its_steps(run, tmp_path):
    config = get_config("smoke")
    config.models, config.train_runs = "tiny_random", str(run)
    cells = sweep.check_names(config)
    models = list(dict.fromkeys(c.model for c in cells))
    assert models == ["tiny_random", str(run / "checkpoints" / "1"), str(run / "checkpoints" / "2")]
    config.train_steps = "2"
    assert sweep.expand_models(config)[1:] == [str(run / "checkpoints" / "2")]
    config.train_steps = "5"
    with pytest.raises(ConfigError, match="has no step 5; its steps: 1, 2"):
        sweep.expand_models(config)
