"""The sweep (`jaxclip.sweep`, `experiments/sweep.py`): leaderboard = the cells' results.json,
reruns skip finished cells, dry runs open nothing, bad names fail in one line, the heat map."""

import csv
import io
import json

import numpy as np
import pytest
from plot_checks import draw, text_problems

from configs.sweep import GRIDS, SOURCE_MODELS, get_config
from experiments import sweep as entry
from jaxclip import cli, sweep
from jaxclip.models import catalog
from jaxclip.report.sweep import heatmap_values, plot_heatmap


def smoke_config(data_dir, cache_dir):
    """The smoke grid (tiny random model × shapes/tiny, shapes/tiny64; zero-shot and probes)
    with the probes' grids cut further, on the test's own data and cache."""
    config = get_config("smoke")
    config.data_dir, config.cache_dir = str(data_dir), str(cache_dir)
    p = config.probe
    p.linear_svc = p.sklearn_logistic = p.save_probe = False
    p.l2_grid, p.max_iter = (1.0, 10.0), 20
    config.zero_shot.attributes = False
    return config


@pytest.fixture(scope="module")
def swept(shapes_data_dir, tmp_path_factory):
    """(config, workdir, summary) of one smoke sweep run in-process."""
    config = smoke_config(shapes_data_dir, tmp_path_factory.mktemp("cache"))
    workdir = tmp_path_factory.mktemp("sweep")
    return config, workdir, sweep.run_sweep(config, workdir)


def read_rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_leaderboard_equals_cell_results(swept):
    _, workdir, summary = swept
    assert summary["run"] == summary["cells"] == 4 and summary["models_opened"] == 1
    text = (workdir / "leaderboard.csv").read_text()
    assert text.splitlines()[0] == "model,dataset,metric,value,ci_low,ci_high,n"
    rows = read_rows(workdir / "leaderboard.csv")
    keys = [(r["model"], r["dataset"], r["metric"]) for r in rows]
    assert keys == sorted(keys)
    seen = set()
    for r in rows:
        study = r["metric"].split(".")[0]
        cell = sweep.Cell(r["model"], r["dataset"], study)
        res = json.loads(cell.results(workdir).read_text())[study]
        if study == "zero_shot":
            k = r["metric"].split(".")[1]
            value, ci, n = res[k], res[f"{k}_ci"], res["num_samples"]
            assert float(r["ci_low"]) == pytest.approx(ci["ci_low"], abs=5e-7)
            assert float(r["ci_high"]) == pytest.approx(ci["ci_high"], abs=5e-7)
        else:
            method = res["methods"][r["metric"].split(".")[1]]
            value, n = method["test_accuracy"], res["num_test"]
            ci = method.get("test_accuracy_ci") or method.get("top1_ci")
            if ci is None:
                assert r["ci_low"] == r["ci_high"] == ""
            else:  # the probe's own interval, where the study writes one
                assert r["ci_low"] == f"{ci['ci_low']:.6f}"
                assert r["ci_high"] == f"{ci['ci_high']:.6f}"
        assert r["value"] == f"{value:.6f}"
        # 64 test images (max_examples of the smoke config); accuracies are k / 64.
        assert int(r["n"]) == n == 64
        assert round(float(r["value"]) * 64, 4) == round(value * 64)
        seen.add((r["dataset"], study))
    assert seen == {
        (d, s) for d in ("shapes/tiny", "shapes/tiny64") for s in ("zero_shot", "probe")
    }
    metrics = {r["metric"] for r in rows}
    assert {"zero_shot.top1", "zero_shot.top5", "probe.jax_logistic.top1"} <= metrics
    report = (workdir / "report.md").read_text()
    assert "![zero_shot.top1 (%) of every model × dataset](sweep_heatmap.png)" in report
    assert (workdir / "sweep_heatmap.png").stat().st_size > 0
    # one model: the comparisons file holds its header only, and the report says why
    assert (workdir / "comparisons.csv").read_text().splitlines() == [
        ",".join(sweep.COMPARISON_COLUMNS)
    ]
    assert "## Model vs model\n\nOne model: nothing to compare" in report


def test_cells_keep_per_example_results(swept):
    """Every zero-shot and probe cell keeps the per-example results that model vs model
    compares (arrays.npz, test order), and they are the cell's own numbers."""
    _, workdir, _ = swept
    for dataset in ("shapes/tiny", "shapes/tiny64"):
        for study in ("zero_shot", "probe"):
            cell = sweep.Cell("tiny_random", dataset, study)
            entry = json.loads(cell.results(workdir).read_text())[study]
            with np.load(cell.folder(workdir) / "arrays.npz") as a:
                arrays = {k: a[k] for k in a.files}
            got = sweep.per_example(study, arrays)
            assert not {"test_labels", "top1_correct", "test_predictions"} & set(entry)
            if study == "zero_shot":
                assert list(got) == ["zero_shot.top1"]
                hits, labels = got["zero_shot.top1"]
                assert hits.mean() == pytest.approx(entry["top1"]) and labels.size == 64
                continue
            assert set(got) == {f"probe.{m}.top1" for m in arrays["probe.test_methods"]}
            assert {m.split(".")[1] for m in got} <= set(entry["methods"])
            for metric, (hits, labels) in got.items():
                method = entry["methods"][metric.split(".")[1]]
                assert hits.shape == labels.shape == (entry["num_test"],)
                assert hits.mean() == pytest.approx(method["test_accuracy_ci"]["value"])
                assert hits.mean() == pytest.approx(method["test_accuracy"])


def test_rerun_skips_finished_cells(swept, monkeypatch):
    config, workdir, _ = swept
    before = (workdir / "leaderboard.csv").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in (workdir / "cells").rglob("results.json")}
    assert len(stamps) == 4

    def no_model(*args, **kwargs):
        raise AssertionError("a model was opened for finished cells")

    monkeypatch.setattr(catalog, "open_model", no_model)
    summary = sweep.run_sweep(config, workdir)
    assert (summary["run"], summary["skipped"], summary["models_opened"]) == (0, 4, 0)
    assert (workdir / "leaderboard.csv").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    states = {r["state"] for r in sweep.dry_run(config, workdir)}
    assert states == {"finished"}


def test_lost_cell_reruns_alone_from_cached_features(swept):
    config, workdir, _ = swept
    before = (workdir / "leaderboard.csv").read_bytes()
    lost = sweep.Cell("tiny_random", "shapes/tiny", "zero_shot")
    lost.results(workdir).unlink()
    # The probe cell of the same model x dataset recorded complete train + test cache entries.
    states = {(r["dataset"], r["study"]): r["state"] for r in sweep.dry_run(config, workdir)}
    assert states.pop(("shapes/tiny", "zero_shot")) == "features cached"
    assert set(states.values()) == {"finished"}
    summary = sweep.run_sweep(config, workdir)
    assert (summary["run"], summary["skipped"], summary["models_opened"]) == (1, 3, 1)
    assert (workdir / "leaderboard.csv").read_bytes() == before


def test_dry_run_lists_the_sources_grid_offline(tmp_path, monkeypatch, capsys):
    def no_model(*args, **kwargs):
        raise AssertionError("dry run opened a model")

    monkeypatch.setattr(catalog, "open_model", no_model)
    config, workdir = cli.parse_args(
        "sweep",
        [
            "sweep",
            "--config=configs/sweep.py:sources",
            "--config.dry_run=True",
            f"--workdir={tmp_path}",
        ],
    )
    result = entry.run(config, workdir)
    pairs = {(r["model"], r["dataset"]) for r in result["dry_run"]}
    assert len(pairs) == 7 * 4 == len(set(SOURCE_MODELS)) * len(GRIDS["sources"][1])
    assert {r["study"] for r in result["dry_run"]} == {"zero_shot", "probe"}
    assert {r["state"] for r in result["dry_run"]} == {"to run"}
    out = capsys.readouterr().out
    assert "laion_convnext_base  imagenet_folder  probe  to run" in out
    assert not (tmp_path / "cells").exists() and not (tmp_path / "leaderboard.csv").exists()


@pytest.mark.parametrize(
    ("field", "value", "named", "allowed"),
    [
        ("models", "tiny_random,vit_b99", "'vit_b99'", "laion_vit_b32"),
        ("datasets", "shapes/tiny,cifar1000", "'cifar1000'", "food101"),
        ("studies", "zero_shot,probes", "'probes'", "retrieval"),
    ],
)
def test_bad_names_fail_in_one_line_before_any_work(
    field, value, named, allowed, tmp_path, monkeypatch, capsys
):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was opened")

    monkeypatch.setattr(catalog, "open_model", no_model)
    config = get_config("smoke")
    config[field] = value
    with pytest.raises(SystemExit) as e:
        cli.run_and_report(entry.run, "sweep", config, str(tmp_path))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and named in err and allowed in err
    assert not (tmp_path / "cells").exists()


def test_unknown_grid_fails_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse_args("sweep", ["sweep", "--config=configs/sweep.py:everything"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'everything'" in err and "smoke, sources" in err


def test_heatmap_draws_every_cell_with_labels():
    models, datasets = ["vit_b32", "rn50"], ["cifar100", "food101", "eurosat"]
    rows = [
        {"model": "vit_b32", "dataset": "cifar100", "metric": "zero_shot.top1", "value": 0.6512},
        {"model": "rn50", "dataset": "eurosat", "metric": "zero_shot.top1", "value": 0.41},
        {"model": "rn50", "dataset": "food101", "metric": "zero_shot.top5", "value": 0.9},
    ]
    values = heatmap_values(rows, models, datasets, "zero_shot.top1")
    assert values[0, 0] == pytest.approx(65.12) and values[1, 2] == pytest.approx(41.0)
    assert np.isnan(values).sum() == 4
    fig = plot_heatmap(values, models, datasets, "zero_shot.top1")
    draw(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "dataset" and ax.get_ylabel() == "model"
    assert [t.get_text() for t in ax.get_xticklabels()] == datasets
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vit b32", "rn50"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["65.1", "41.0"] + ["n/a"] * 4)
    # Each value sits on its own cell: (column, row) = (dataset, model).
    at = {t.get_position(): t.get_text() for t in ax.texts}
    assert at[(0, 0)] == "65.1" and at[(2, 1)] == "41.0" and at[(1, 1)] == "n/a"
    assert ax.get_title() == "zero shot.top1 (%)"
    assert fig.axes[1].get_ylabel() == "zero shot.top1 (%)"  # the colour bar
    assert text_problems(fig) == []
