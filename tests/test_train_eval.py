"""Held-out evaluation during training (`config.eval_every`): what it logs, checked against numpy
float64 on the saved model, and that it leaves the training itself untouched.

Smoke config (width 64, 2 + 2 layers) on shapes/tiny (256 train / 128 test images, 32 px).
"""

from __future__ import annotations

import numpy as np
import pytest

from configs.train_clip import SMOKE_STEPS, get_config
from jaxclip import train
from jaxclip.config_args import ConfigError

EVAL_EVERY = 4  # with SMOKE_STEPS = 6: evaluations at steps 4 and 6 (the last)
EVAL_EXAMPLES = 100  # of the 128 test images


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two smoke runs from the same seed: eval_every=0 and eval_every=EVAL_EVERY."""
    from jaxclip.data.shapes import shapes_builder

    data_dir = tmp_path_factory.mktemp("tfds")
    shapes_builder("tiny", data_dir=data_dir)
    out = {}
    for every in (0, EVAL_EVERY):
        c = get_config("smoke")
        c.data_dir = str(data_dir)
        c.progress = False
        c.eval_every = every
        c.eval_examples = EVAL_EXAMPLES
        c.checkpoint_every = SMOKE_STEPS  # one checkpoint: saves are not what is tested here
        out[every] = (c, train.train(c, tmp_path_factory.mktemp(f"every{every}"), evaluate=False))
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _argmax_accuracy(sim: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Accuracy of argmax rows, and how many rows have a runner-up within float32 rounding of
    the top (those may flip between float32 on the device and float64 here)."""
    top2 = np.sort(sim, axis=1)[:, -2:]
    near = int(np.sum(top2[:, 1] - top2[:, 0] < 1e-5))
    return float(np.mean(np.argmax(sim, axis=1) == truth)), near


def _recall(sim: np.ndarray, k: int) -> tuple[float, int]:
    """R@k of row i's target i (rank = items scoring strictly higher), and near-tied rows."""
    own = np.diag(sim)[:, None]
    rank = np.sum(sim > own, axis=1)
    near = int(np.sum(np.any((np.abs(sim - own) < 1e-5) & ~np.eye(len(sim), dtype=bool), 1)))
    return float(np.mean(rank < k)), near


def test_logged_eval_equals_numpy_float64_on_the_saved_model(runs):
    import jaxclip

    config, result = runs[EVAL_EVERY]
    records = result.metrics
    evaluated = [r["step"] for r in records if "eval_i2t_R@1" in r]
    assert evaluated == [EVAL_EVERY, SMOKE_STEPS]
    last = records[-1]
    assert last["step"] == SMOKE_STEPS
    assert set(train.eval_keys(["shape", "color", "size"])) <= set(last)

    # Independent: the saved model through jaxclip.load, its own tokenizer, numpy float64.
    model = jaxclip.load(str(result.model_dir))
    test = train._load_data(config, config.test_split, None)
    n = EVAL_EXAMPLES
    img = _unit(model.encode_image(test.images[:n], batch_size=n, preprocess="device"))
    texts = [c[0] for c in test.captions[:n]]  # one encoder call: one compilation
    for attr, template in train.ATTRIBUTE_PROMPTS.items():
        texts += [template.format(c) for c in test.classnames[attr]]
    txt = _unit(model.encode_text(texts))
    caps, start = txt[:n], n
    for attr in train.ATTRIBUTE_PROMPTS:
        stop = start + len(test.classnames[attr])
        acc, near = _argmax_accuracy(img @ txt[start:stop].T, test.labels[attr][:n])
        assert abs(last[f"eval_zero_shot_{attr}"] - acc) <= near / n, attr
        start = stop
    sim = img @ caps.T
    for k in train.EVAL_KS:
        r, near = _recall(sim, k)
        assert abs(last[f"eval_i2t_R@{k}"] - r) <= near / n
        r, near = _recall(sim.T, k)
        assert abs(last[f"eval_t2i_R@{k}"] - r) <= near / n


def test_eval_off_logs_nothing_and_eval_on_leaves_training_bit_identical(runs):
    import jax

    off, on = runs[0][1], runs[EVAL_EVERY][1]
    assert not any(k.startswith("eval_") for r in off.metrics for k in r)
    assert off.timing["eval_during_training"] == 0.0
    assert on.timing["eval_during_training"] > 0.0
    leaves_off = jax.tree.leaves(off.params)
    leaves_on = jax.tree.leaves(on.params)
    assert len(leaves_off) == len(leaves_on)
    assert all(np.array_equal(a, b) for a, b in zip(leaves_off, leaves_on, strict=True))
    strip = ("steps_per_s",)
    for a, b in zip(off.metrics, on.metrics, strict=True):
        assert {k: v for k, v in a.items() if k not in strip} == {
            k: v for k, v in b.items() if k not in strip and not k.startswith("eval_")
        }


def test_eval_curves_figure_labels_and_legends(runs):
    from jaxclip.report.training import eval_curves_figure

    fig = eval_curves_figure(runs[EVAL_EVERY][1].metrics)
    ax_zs, ax_r = fig.axes
    assert ax_zs.get_xlabel() == ax_r.get_xlabel() == "step"
    assert "zero-shot accuracy" in ax_zs.get_ylabel()
    assert "recall" in ax_r.get_ylabel()
    assert [t.get_text() for t in ax_zs.get_legend().get_texts()] == ["shape", "colour", "size"]
    assert [t.get_text() for t in ax_r.get_legend().get_texts()] == [
        "image → text R@1",
        "text → image R@1",
        "image → text R@5",
        "text → image R@5",
    ]
    for line in ax_zs.lines + ax_r.lines:  # one point per evaluated step
        assert list(line.get_xdata()) == [EVAL_EVERY, SMOKE_STEPS]
    assert eval_curves_figure(runs[0][1].metrics) is None


def test_bad_eval_settings_are_one_line_errors():
    c = get_config("smoke")
    c.eval_every = -1
    with pytest.raises(ConfigError, match="eval_every=-1"):
        train.check_config(c)
    c = get_config("smoke")
    c.eval_examples = 0
    with pytest.raises(ConfigError, match="eval_examples=0"):
        train.check_config(c)


def test_dissect_reads_the_evaluations_of_the_run_that_trained_its_model(tmp_path):
    """The offline default's report shows how the mini learned: the runner picks the {step,
    eval_*} records (no wall-clock fields: results.json stays reproducible) out of the metrics
    log of the run recorded under the model's catalog name, and nothing for other models."""
    import json

    import ml_collections

    from jaxclip.models.catalog import models_root, record_trained
    from jaxclip.studies.runner import _training_eval

    run = models_root(tmp_path) / "train_clip-0123456789abcdef"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    records = [
        {"step": 1, "loss": 5.0, "steps_per_s": 0.5},
        {
            "step": 2,
            "loss": 4.0,
            "steps_per_s": 0.7,
            "eval_zero_shot_shape": 0.25,
            "eval_i2t_R@1": 0.5,
        },
    ]
    (run / train.METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    record_trained("mini", run / "model", tmp_path)
    mini = ml_collections.ConfigDict({"model": "mini", "cache_dir": str(tmp_path)})
    assert _training_eval(mini) == [{"step": 2, "eval_zero_shot_shape": 0.25, "eval_i2t_R@1": 0.5}]
    other = ml_collections.ConfigDict({"model": "tiny_random", "cache_dir": str(tmp_path)})
    assert _training_eval(other) == []


def test_training_report_shows_the_evaluations(runs, tmp_path):
    from jaxclip.report.training import write_run

    config, result = runs[EVAL_EVERY]
    results = write_run(config, result, tmp_path)
    last = result.metrics[-1]
    assert results["training"]["final_eval"] == {
        k.removeprefix("eval_"): v for k, v in last.items() if k.startswith("eval_")
    }
    report = (tmp_path / "report.md").read_text()
    assert "Held-out evaluation during training" in report
    assert "eval_curves.png" in report and (tmp_path / "eval_curves.png").is_file()
    off = write_run(runs[0][0], runs[0][1], tmp_path / "off")
    assert off["training"]["final_eval"] == {}
    assert "Held-out evaluation" not in (tmp_path / "off" / "report.md").read_text()
