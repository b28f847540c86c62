"""The sweep's model vs model comparisons: McNemar against scipy's binomtest on the stored
per-example hits, Holm by hand, pairs on different test examples and cells without per-example
results left out with a reason, the probe's per-method predictions, and a real two-model sweep
whose zero-shot cells store the hits they are computed from (results.json unchanged by them)."""

import csv
import io
import json

import numpy as np
import pytest
from scipy import stats

from jaxclip import sweep
from jaxclip.report.intervals import comparison_sentence, format_difference, format_p
from jaxclip.studies import runner
from jaxclip.studies.runner import ARRAYS_FILE
from tests.test_sweep import smoke_config

# The zero-shot results.json entry of the smoke config (attributes off) before the per-example
# sidecars existed: they must not add or reorder a key.
ZERO_SHOT_KEYS = [
    "split", "templates", "num_samples", "num_classes", "unlabelled_dropped", "metrics_protocol",
    "top1", "top5", "mean_per_class_recall", "macro_f1", "top1_ci", "top5_ci",
    "mean_per_class_recall_ci", "macro_f1_ci", "chance", "majority", "per_class", "best",
    "worst", "top_confusions", "headline", "clip_benchmark", "confusion", "figures",
]  # fmt: skip


def _cell(workdir, model, dataset, hits, labels, study="zero_shot", arrays=None):
    cell = sweep.Cell(model, dataset, study)
    cell.folder(workdir).mkdir(parents=True)
    cell.results(workdir).write_text(json.dumps({study: {"top1": float(np.mean(hits))}}))
    if arrays is None:
        arrays = {"zero_shot.top1_correct": np.asarray(hits, bool), "zero_shot.test_labels": labels}
    if arrays:
        np.savez(cell.folder(workdir) / ARRAYS_FILE, **arrays)
    return cell


def _holm(p):
    order, m, running, out = np.argsort(p), len(p), 0.0, np.empty(len(p))
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _mcnemar(a, b):
    d_a, d_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return 1.0 if d_a + d_b == 0 else stats.binomtest(d_a, d_a + d_b).pvalue


def test_pairs_against_scipy_and_holm_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    labels = rng.integers(0, 5, n)
    hits = {"m1": rng.random(n) < 0.6, "m2": rng.random(n) < 0.5, "m3": rng.random(n) < 0.62}
    cells = [_cell(tmp_path, m, "d", h, labels) for m, h in hits.items()]
    cells.append(_cell(tmp_path, "other", "d", hits["m1"][:-1], labels[:-1]))  # fewer examples
    rows, skipped = sweep.comparison_rows(cells, tmp_path, seed=0)
    assert [(r["model_a"], r["model_b"]) for r in rows] == [
        ("m1", "m2"),
        ("m1", "m3"),
        ("m2", "m3"),
    ]
    assert len(skipped) == 3 and all("test examples differ" in s and "other" in s for s in skipped)
    p = []
    for r in rows:
        a, b = hits[r["model_a"]], hits[r["model_b"]]
        p.append(_mcnemar(a, b))
        assert r["p_value"] == pytest.approx(p[-1], rel=1e-12)
        assert r["difference"] == pytest.approx(a.mean() - b.mean()) and r["n"] == n
        assert r["ci_low"] <= r["difference"] <= r["ci_high"]
    holm = _holm(np.array(p))
    np.testing.assert_allclose([r["p_holm"] for r in rows], holm, rtol=1e-12)
    assert [r["distinguishable"] for r in rows] == list(holm <= 0.05)
    text = sweep.comparisons_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert tuple(parsed[0]) == sweep.COMPARISON_COLUMNS
    assert parsed[0]["difference"] == f"{rows[0]['difference']:.6f}"
    assert parsed[0]["distinguishable"] == str(rows[0]["distinguishable"]).lower()
    # the config's model order changes nothing: model_a sorts first, rows sorted
    again, _ = sweep.comparison_rows(cells[::-1], tmp_path, seed=0)
    assert sweep.comparisons_csv(again) == text
    # same labels, different order: not the same examples either
    perm = np.roll(labels, 1)
    cells.append(_cell(tmp_path, "shuffled", "d", hits["m1"], perm))
    _, skipped = sweep.comparison_rows(cells, tmp_path, seed=0)
    assert sum("shuffled" in s for s in skipped) == 4


def test_probe_methods_and_cells_without_per_example_results(tmp_path):
    rng = np.random.default_rng(1)
    n, methods = 200, np.asarray(["jax_logistic", "mlp"])
    labels = rng.integers(0, 4, n)
    pred = {m: np.where(rng.random((2, n)) < acc, labels, (labels + 1) % 4) for m, acc in
            (("a", 0.7), ("b", 0.55), ("c", 0.6))}  # fmt: skip
    cells = []
    for m, p in pred.items():
        arrays = {"probe.test_labels": labels, "probe.test_methods": methods,
                  "probe.test_predictions": p}  # fmt: skip
        cells.append(_cell(tmp_path, m, "d", p[0] == labels, labels, "probe", arrays))
    # a finished zero-shot cell of "a" with hits, one of "b" with none (an older cell)
    cells.append(_cell(tmp_path, "a", "d", pred["a"][0] == labels, labels))
    cells.append(_cell(tmp_path, "b", "d", pred["b"][0] == labels, labels, arrays={}))
    rows, skipped = sweep.comparison_rows(cells, tmp_path, seed=3)
    assert [(r["metric"], r["model_a"], r["model_b"]) for r in rows] == [
        (f"probe.{k}.top1", a, b) for k in methods for a, b in (("a", "b"), ("a", "c"), ("b", "c"))
    ]
    assert skipped == [
        "b on d (zero_shot): its finished cell has no per-example results in its arrays.npz "
        "(a skipped study, or a cell from before they were kept: delete the cell's folder to "
        "run it again)"
    ]
    for k, method in enumerate(methods):
        family = [r for r in rows if r["metric"] == f"probe.{method}.top1"]
        p = [_mcnemar(pred[r["model_a"]][k] == labels, pred[r["model_b"]][k] == labels)
             for r in family]  # fmt: skip
        np.testing.assert_allclose([r["p_value"] for r in family], p, rtol=1e-12)
        np.testing.assert_allclose([r["p_holm"] for r in family], _holm(np.array(p)), rtol=1e-12)


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
    # a model whose captioned images are others (another -1 pattern): left out, with why
    cell = sweep.Cell("m3", "d", "retrieval")
    cell.folder(tmp_path).mkdir(parents=True)
    cell.results(tmp_path).write_text("{}")
    other = ranks["m1"].copy()
    other[20] = -1
    np.savez(cell.folder(tmp_path) / ARRAYS_FILE, **{"retrieval.ranks_image_to_text": other})
    again, skipped = sweep.comparison_rows([*cells, cell], tmp_path, seed=0)
    assert sweep.comparisons_csv(again) == sweep.comparisons_csv(rows)
    assert len(skipped) == 4 and all("m3" in s and "not the same queries" in s for s in skipped)


def _other_tiny_model(folder):
    """`tiny_random` with seeded noise on every weight, saved as a local model folder: a second
    model with other predictions (`tiny_random_sigmoid` has the same weights, so the same
    zero-shot argmax on every image)."""
    import jax

    from jaxclip.models.catalog import open_model
    from jaxclip.models.load import from_params

    base, rng = open_model("tiny_random"), np.random.default_rng(1)

    def noisy(x):
        x = np.asarray(x)
        return x + rng.normal(0.0, float(x.std()), x.shape).astype(x.dtype) if x.size > 1 else x

    params = jax.tree_util.tree_map(noisy, jax.device_get(base.params))
    from_params(base.config, params, tokenizer=base.tokenizer, preprocess=base.preprocess).save(
        folder
    )
    return str(folder)


def test_two_model_sweep_compares_on_the_stored_hits(shapes_data_dir, tmp_path, monkeypatch):
    config = smoke_config(shapes_data_dir, tmp_path / "cache")
    other = _other_tiny_model(tmp_path / "tiny_noisy")
    model_a, model_b = sorted(["tiny_random", other])
    config.models, config.datasets, config.studies = (
        f"tiny_random,{other}", "shapes/tiny", "zero_shot",
    )  # fmt: skip
    workdir = tmp_path / "sweep"
    write_results = runner.write_results

    def arrays_first(folder, results):  # a cell's results.json comes after its arrays.npz
        assert (folder / ARRAYS_FILE).is_file()
        return write_results(folder, results)

    monkeypatch.setattr(runner, "write_results", arrays_first)
    summary = sweep.run_sweep(config, workdir)
    assert summary["run"] == 2
    text = (workdir / "comparisons.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1 and (rows[0]["model_a"], rows[0]["model_b"], rows[0]["metric"]) == (
        model_a, model_b, "zero_shot.top1",
    )  # fmt: skip
    hits = {}
    for m in (model_a, model_b):
        cell = sweep.Cell(m, "shapes/tiny", "zero_shot")
        with np.load(cell.folder(workdir) / ARRAYS_FILE) as a:
            hits[m] = a["zero_shot.top1_correct"]
            labels = a["zero_shot.test_labels"]
        entry = json.loads(cell.results(workdir).read_text())["zero_shot"]
        assert list(entry) == ZERO_SHOT_KEYS  # the sidecars stay out of results.json
        assert hits[m].mean() == pytest.approx(entry["top1"])  # the hits are the cell's top-1
        assert hits[m].shape == labels.shape == (entry["num_samples"],)
    a, b = hits[model_a], hits[model_b]
    assert (a != b).any()  # two models that disagree somewhere: McNemar has something to test
    assert float(rows[0]["p_value"]) == pytest.approx(_mcnemar(a, b), rel=1e-5)
    assert float(rows[0]["p_holm"]) == float(rows[0]["p_value"])  # one pair: Holm is p
    assert float(rows[0]["difference"]) == pytest.approx(a.mean() - b.mean(), abs=5e-7)
    assert int(rows[0]["n"]) == a.size
    # the report: the section, the table's numbers and the sentence, from the same rows
    report = (workdir / "report.md").read_text()
    section = report[report.index("## Model vs model") :]
    row = {k: float(rows[0][k]) for k in ("difference", "ci_low", "ci_high", "p_value", "p_holm")}
    row["distinguishable"] = rows[0]["distinguishable"] == "true"
    cells = section.split(f"\n| shapes/tiny | zero_shot.top1 | {model_a} | {model_b} |")
    assert len(cells) == 2
    shown = [c.strip() for c in cells[1].split("\n")[0].split("|")[:-1]]
    assert shown == [
        format_difference(row),
        format_p(row["p_value"]).removeprefix("= "),
        format_p(row["p_holm"]).removeprefix("= "),
        rows[0]["n"],
    ]
    assert comparison_sentence(row, label=f"{model_a} vs {model_b}") in section
    verdict = "1 of 1" if row["distinguishable"] else "0 of 1"
    assert f"After Holm, {verdict} difference(s) are distinguishable from noise at 5 %." in section
    # a rerun with the models the other way round opens nothing and writes the same bytes
    config.models = f"{other},tiny_random"
    (workdir / "comparisons.csv").unlink()
    again = sweep.run_sweep(config, workdir)
    assert again["run"] == again["models_opened"] == 0
    assert (workdir / "comparisons.csv").read_text() == text


def test_report_says_which_differences_are_distinguishable(tmp_path):
    from jaxclip.report.markdown import Report
    from jaxclip.report.sweep import _model_vs_model

    rng = np.random.default_rng(2)
    n = 400
    labels = rng.integers(0, 3, n)
    good = rng.random(n) < 0.9
    same = good.copy()  # 3 images it gets right and "good" not, 3 the other way round
    same[np.flatnonzero(good)[:3]], same[np.flatnonzero(~good)[:3]] = False, True
    hits = {"good": good, "poor": rng.random(n) < 0.4, "same": same}
    cells = [_cell(tmp_path, m, "d", h, labels) for m, h in hits.items()]
    rows, skipped = sweep.comparison_rows(cells, tmp_path, seed=0)
    assert skipped == []
    verdict = {(r["model_a"], r["model_b"]): r["distinguishable"] for r in rows}
    assert verdict == {("good", "poor"): True, ("good", "same"): False, ("poor", "same"): True}
    report = Report("t")
    _model_vs_model(report, list(hits), rows, ["x vs y on d (zero_shot.top1): a reason"])
    text = report.markdown()
    said = {k: comparison_sentence(r, label=f"{r['model_a']} vs {r['model_b']}")
            for k, r in zip(verdict, rows, strict=True)}  # fmt: skip
    assert "After Holm, 2 of 3 difference(s) are distinguishable from noise at 5 %." in text
    assert (
        f"`d`, zero_shot.top1 (3 pair(s)): 2 distinguishable from noise at 5 %: "
        f"{said['good', 'poor']}; {said['poor', 'same']}. The others are not: "
        f"{said['good', 'same']}."
    ) in text
    assert "Not compared: x vs y on d (zero_shot.top1): a reason." in text
    empty = Report("t")
    _model_vs_model(empty, ["a", "b"], [], [])
    assert "No two models have finished cells with per-example results" in empty.markdown()
