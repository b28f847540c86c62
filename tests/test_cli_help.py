"""The entry points' `--help` (generated from the config files and tables) and flag order."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags
from ml_collections import config_flags

from jaxclip import cli
from jaxclip.data.datasets import DATASETS
from jaxclip.models.catalog import MODELS

ROOT = Path(__file__).resolve().parents[1]


def _config_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_help_{name}", ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_variants_models_datasets_and_every_field_with_its_default():
    text = cli.help_text("dissect", ["dissect", "--help"], "The main job.")
    common = _config_module("common")
    config = _config_module("dissect").get_config()
    assert text.startswith("The main job.")
    for model, (about, _) in MODELS.items():
        assert f"  {model}" in text and about in text
    for dataset in DATASETS:
        assert dataset in text
    for token, dataset in common.DATASET_VARIANTS.items():
        assert token in text
        if token != dataset:
            assert f"{token} (= {dataset})" in text
    lines = set(text.splitlines())
    for key in cli.config_keys(config):
        value = cli.config_value(config, key)
        if not hasattr(value, "items"):
            shown = repr(value)
            assert f"  --config.{key}={shown}" in lines or (
                len(shown) > 72 and any(x.startswith(f"  --config.{key}=") for x in lines)
            ), key
    # The smoke flag's line names what it changes, read from the config file.
    smoke = next(x for x in text.splitlines() if x.startswith("  smoke: sets"))
    assert "model='tiny_random'" in smoke and "dataset='shapes/tiny'" in smoke


def test_help_of_a_variant_shows_that_variants_defaults():
    text = cli.help_text(
        "zero_shot", ["zero_shot", "--config=configs/zero_shot.py:vit_b32,cifar100"]
    )
    assert "  --config.model='vit_b32'" in text and "  --config.dataset='cifar100'" in text


def test_help_of_train_clip_lists_its_own_variants_not_the_study_ones():
    text = cli.help_text("train_clip", ["train_clip", "--help"])
    for token, (dataset, _) in _config_module("train_clip").DATASETS.items():
        assert token in text and dataset in text
    assert "Models (" not in text and "Datasets (" not in text  # its model is an architecture
    assert "  --config.model.vision_width=128" in text


def test_help_flag_exits_zero_before_defining_flags(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["zero_shot", "--help"])
    monkeypatch.setattr(sys.modules["__main__"], "__doc__", "Zero-shot, as a test.")
    with pytest.raises(SystemExit) as e:
        cli.main(lambda config, workdir: {}, "zero_shot")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Zero-shot, as a test.") and "--config.zero_shot.k_best=5" in out
    assert "config" not in flags.FLAGS  # nothing was defined in the global flags


@pytest.mark.parametrize(
    "argv",
    [
        ["x", "--config.dataset=cifar10", "--config=configs/dissect.py:smoke"],
        ["x", "--config=configs/dissect.py:smoke", "--config.dataset=cifar10"],
        ["x", "--config.dataset=cifar10", "--config", "configs/dissect.py:smoke"],
    ],
)
def test_flag_order_does_not_matter(argv, monkeypatch):
    monkeypatch.chdir(ROOT)
    config, workdir = cli.parse_args("dissect", [*argv, "--config.zero_shot.k_best=2"])
    assert config.dataset == "cifar10" and config.model == "tiny_random"  # smoke's model
    assert config.zero_shot.k_best == 2 and workdir == "runs/dissect"


def test_ml_collections_alone_rejects_an_override_before_the_config(monkeypatch):
    """Why `config_first` exists: the same argv without it is refused by ml_collections."""
    monkeypatch.chdir(ROOT)
    argv = ["x", "--config.dataset=cifar10", "--config=configs/dissect.py:smoke"]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv)
    with pytest.raises(Exception, match="before a value for --config"):
        values(argv)


def test_config_first_moves_only_the_config_flags():
    argv = ["p", "--workdir=w", "--config.a=1", "--config", "c.py:x", "--config=d.py", "--", "-z"]
    assert cli.config_first(argv) == [
        "p",
        "--config",
        "c.py:x",
        "--config=d.py",
        "--workdir=w",
        "--config.a=1",
        "--",
        "-z",
    ]
    assert cli.wants_help(["p", "-h"]) and not cli.wants_help(["p", "--", "--help"])


def test_entry_point_takes_an_override_before_the_config():
    """The real entry point, as a user runs it: the override placed first reaches the config,
    so a bad value in it is reported as a bad value (exit 2), not as a flag-order error."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.zero_shot",
            "--config.zero_shot.k_best=many",
            "--config=configs/zero_shot.py:smoke",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "many" in out.stderr and "before a value" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
