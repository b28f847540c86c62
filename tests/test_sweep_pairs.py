"""The sweep's model vs model comparisons: McNemar against scipy's binomtest on the stored
per-image hits, Holm by hand, pairs on different test images left out, and a real two-model
sweep whose zero-shot cells store the hits they are computed from."""

import csv
import io
import json

import numpy as np
import pytest
from scipy import stats

from jaxclip import sweep
from jaxclip.report.intervals import comparison_sentence
from jaxclip.studies.runner import ARRAYS_FILE
from tests.test_sweep import smoke_config


def _cell(workdir, model, dataset, hits, labels):
    cell = sweep.Cell(model, dataset, "zero_shot")
    cell.folder(workdir).mkdir(parents=True)
    cell.results(workdir).write_text(json.dumps({"zero_shot": {"top1": float(np.mean(hits))}}))
    np.savez(cell.folder(workdir) / ARRAYS_FILE, **{
        "zero_shot.top1_correct": np.asarray(hits, bool), "zero_shot.test_labels": labels})  # fmt: skip
    return cell


def _holm(p):
    order, m, running, out = np.argsort(p), len(p), 0.0, np.empty(len(p))
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_pairs_against_scipy_and_holm_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    labels = rng.integers(0, 5, n)
    hits = {"m1": rng.random(n) < 0.6, "m2": rng.random(n) < 0.5, "m3": rng.random(n) < 0.62}
    cells = [_cell(tmp_path, m, "d", h, labels) for m, h in hits.items()]
    cells.append(_cell(tmp_path, "other", "d", hits["m1"][:-1], labels[:-1]))  # fewer images
    rows, skipped = sweep.comparison_rows(cells, tmp_path, seed=0)
    assert [(r["model_a"], r["model_b"]) for r in rows] == [
        ("m1", "m2"),
        ("m1", "m3"),
        ("m2", "m3"),
    ]
    assert len(skipped) == 3 and all("test queries differ" in s and "other" in s for s in skipped)
    p = []
    for r in rows:
        a, b = hits[r["model_a"]], hits[r["model_b"]]
        d_a, d_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        p.append(stats.binomtest(d_a, d_a + d_b).pvalue)
        assert r["p_value"] == pytest.approx(p[-1], rel=1e-12)
        assert r["difference"] == pytest.approx(a.mean() - b.mean()) and r["n"] == n
        assert r["ci_low"] <= r["difference"] <= r["ci_high"]
    np.testing.assert_allclose([r["p_holm"] for r in rows], _holm(np.array(p)), rtol=1e-12)
    text = sweep.comparisons_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert tuple(parsed[0]) == sweep.COMPARISON_COLUMNS
    assert parsed[0]["difference"] == f"{rows[0]['difference']:.6f}"
    assert parsed[0]["distinguishable"] == str(rows[0]["distinguishable"]).lower()


def test_retrieval_pairs_from_stored_ranks(tmp_path):
    rng = np.random.default_rng(1)
    n = 200
    ranks = {m: rng.integers(0, 8, n) for m in ("m1", "m2")}
    for r in ranks.values():
        r[:20] = -1  # images without captions are not queries
    cells = []
    for m, r in ranks.items():
        cell = sweep.Cell(m, "d", "retrieval")
        cell.folder(tmp_path).mkdir(parents=True)
        cell.results(tmp_path).write_text("{}")
        np.savez(cell.folder(tmp_path) / ARRAYS_FILE, **{"retrieval.ranks_image_to_text": r})
        cells.append(cell)
    rows, skipped = sweep.comparison_rows(cells, tmp_path, seed=0)
    assert skipped == [] and [r["metric"] for r in rows] == [
        "retrieval.image_to_text.R@1", "retrieval.image_to_text.R@5",
    ]  # fmt: skip
    for row, k in zip(rows, (1, 5)):
        a, b = ranks["m1"][20:] < k, ranks["m2"][20:] < k
        d_a, d_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        assert row["n"] == n - 20 and row["difference"] == pytest.approx(a.mean() - b.mean())
        assert row["p_value"] == pytest.approx(stats.binomtest(d_a, d_a + d_b).pvalue, rel=1e-12)


def test_two_model_sweep_compares_on_the_stored_hits(shapes_data_dir, tmp_path):
    config = smoke_config(shapes_data_dir, tmp_path / "cache")
    config.models, config.datasets, config.studies = (
        "tiny_random,tiny_random_sigmoid", "shapes/tiny", "zero_shot",
    )  # fmt: skip
    summary = sweep.run_sweep(config, tmp_path / "sweep")
    assert summary["run"] == 2
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep" / "comparisons.csv").read_text())))
    assert len(rows) == 1 and (rows[0]["model_a"], rows[0]["model_b"]) == (
        "tiny_random", "tiny_random_sigmoid",
    )  # fmt: skip
    hits = {}
    for m in ("tiny_random", "tiny_random_sigmoid"):
        cell = sweep.Cell(m, "shapes/tiny", "zero_shot")
        with np.load(cell.folder(tmp_path / "sweep") / ARRAYS_FILE) as a:
            hits[m] = a["zero_shot.top1_correct"]
        top1 = json.loads(cell.results(tmp_path / "sweep").read_text())["zero_shot"]["top1"]
        assert hits[m].mean() == pytest.approx(top1)  # the hits are the cell's own top-1
    a, b = hits["tiny_random"], hits["tiny_random_sigmoid"]
    d_a, d_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    want = 1.0 if d_a + d_b == 0 else stats.binomtest(d_a, d_a + d_b).pvalue
    assert float(rows[0]["p_value"]) == pytest.approx(want, rel=1e-5)
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Model vs model" in report
    row = {k: float(rows[0][k]) for k in ("difference", "ci_low", "ci_high", "p_holm")}
    row["distinguishable"] = rows[0]["distinguishable"] == "true"
    label = "tiny_random vs tiny_random_sigmoid, zero_shot.top1 on shapes/tiny"
    assert comparison_sentence(row, label=label) in report
