"""Report records: JSON conversion, scalar flattening, markdown tables, atomic files."""

import csv
import json

import numpy as np
import pytest

from jaxclip import report
from jaxclip.config_args import ConfigError, check_choice, parse_variants


def test_write_results_json_and_csv(tmp_path):
    results = {
        "zero_shot": {"top1": np.float32(0.5), "per_class": np.arange(3)},
        "n": 10,
        "bad": float("nan"),
        "name": "shapes",
    }
    report.write_results(tmp_path, results)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored == {
        "zero_shot": {"top1": 0.5, "per_class": [0, 1, 2]},
        "n": 10,
        "bad": None,
        "name": "shapes",
    }
    rows = list(csv.reader((tmp_path / "metrics.csv").open()))
    assert rows[0] == ["metric", "value"]
    assert dict(rows[1:]) == {"zero_shot/top1": "0.5", "n": "10.0", "bad": ""}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_to_jsonable_rejects_unknown_objects():
    with pytest.raises(TypeError, match="cannot store a object"):
        report.to_jsonable(object())


def test_markdown_table_formats_and_escapes():
    text = report.markdown_table(
        [{"a": 1.23456, "b": "x|y"}, {"a": None, "b": True}], floatfmt=".3f"
    )
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1.235 | x\\|y |", "|  | yes |"]


def test_report_write(tmp_path):
    r = report.Report("T").section("S").text("hello").table([{"x": 1}]).figure("p.png", "cap")
    path = r.write(tmp_path)
    body = path.read_text()
    assert body.startswith("# T\n") and "## S" in body and "![cap](p.png)" in body


def test_save_figure(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert report.save_figure(fig, tmp_path, "line") == "line.png"
    assert (tmp_path / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_variants():
    groups = {"model": ["tiny", "vit_b32"], "dataset": ["shapes", "cifar10"]}
    defaults = {"model": "tiny", "dataset": "shapes"}
    assert parse_variants("vit_b32,smoke", groups, defaults) == {
        "model": "vit_b32",
        "dataset": "shapes",
        "smoke": True,
    }
    assert parse_variants(None, groups, defaults)["smoke"] is False
    with pytest.raises(
        ConfigError, match=r"unknown config variant 'vit_b99'.*model: tiny, vit_b32"
    ):
        parse_variants("vit_b99", groups, defaults)
    with pytest.raises(ConfigError, match="two models"):
        parse_variants("tiny,vit_b32", groups, defaults)
    with pytest.raises(ConfigError, match=r"config.model='x' is not valid; choose one of: a, b"):
        check_choice("model", "x", ["a", "b"])


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    from jaxclip import atomic

    mask = os.umask(0o022)
    os.umask(mask)
    atomic.write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK
