"""Tests for the probe study (jaxclip/studies/probe.py, configs/probe.py, experiments/probe.py):
planted class and attribute directions with known answers, numbers checked against
scikit-learn fitted independently on the same features, and an end-to-end smoke run."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import ml_collections
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from configs.probe import study_config
from jaxclip.config_args import ConfigError
from jaxclip.features.extract import ImageFeatures
from jaxclip.probes import linear
from jaxclip.probes.io import load_probe
from jaxclip.probes.split import train_val_split
from jaxclip.report import to_jsonable
from jaxclip.studies import probe as study
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_smoke, run_study

CLASSES = ("circle", "square", "triangle", "star")
COLORS = ("red", "green", "blue")
D = 16
N_TRAIN, N_TEST = 240, 120


def _directions() -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    return q.T  # rows: orthonormal directions


DIRS = _directions()


def _embed(text: str) -> np.ndarray:
    """A planted text encoder: the class direction of the class named in `text`."""
    for i, name in enumerate(CLASSES):
        if re.search(rf"\b{name}\b", text):
            return (5.0 * DIRS[i]).astype(np.float32)
    return np.zeros(D, np.float32)


def _split(n: int, seed: int, unlabelled: int = 0) -> ImageFeatures:
    """Images = 3 e_class + 3 f_color + noise (classes and colours separable) and a `noise`
    attribute independent of the image; `unlabelled` extra rows with label -1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    color = rng.integers(0, len(COLORS), n)
    noise_attr = rng.integers(0, 2, n)
    x = 3.0 * DIRS[y] + 3.0 * DIRS[len(CLASSES) + color] + 0.4 * rng.normal(size=(n, D))
    x = x + 2.0 * DIRS[-1]  # an offset so the raw embeddings are not centred
    if unlabelled:
        x = np.concatenate([x, rng.normal(size=(unlabelled, D))])
        y = np.concatenate([y, -np.ones(unlabelled, int)])
        color = np.concatenate([color, np.zeros(unlabelled, int)])
        noise_attr = np.concatenate([noise_attr, np.zeros(unlabelled, int)])
    return ImageFeatures(
        embeds=x.astype(np.float32),
        labels=y,
        indices=np.arange(len(y)),
        attributes={"noise": noise_attr, "color": color},
        captions=None,
        classnames=CLASSES,
        meta={"dataset": "planted"},
    )


def _ctx(train, test, workdir, *, model="vit_b32", dataset="cifar10") -> FakeContext:
    """Both splits with the planted text encoder (logit scale 100); the dataset's attribute order
    (colour first) is unlike the features' dict order."""
    return FakeContext({"train": train, "test": test}, workdir, embed=_embed, model=model,
                       dataset=dataset, attributes={"color": COLORS, "noise": ("no", "yes")})  # fmt: skip


def _run(ctx: FakeContext, cfg: ml_collections.ConfigDict) -> SimpleNamespace:
    """The study as the runner runs it: results.json entry and report."""
    results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
    return SimpleNamespace(results=results, report=section.report)


def _cfg() -> ml_collections.ConfigDict:
    cfg = study_config()
    cfg.sklearn_cs = (0.01, 0.1, 1.0)
    cfg.l2_grid = (0.01, 0.1, 1.0, 10.0)
    cfg.mlp_widths = (32,)
    cfg.mlp_learning_rates = (1e-2,)
    cfg.mlp_weight_decays = (1e-4,)
    cfg.mlp_epochs = 15
    cfg.mlp_batch_size = 32
    cfg.shots = (1, 2, 4)
    cfg.shot_repeats = 2
    return cfg


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    train, test = _split(N_TRAIN, 1, unlabelled=5), _split(N_TEST, 2, unlabelled=3)
    ctx = _ctx(train, test, tmp_path_factory.mktemp("probe"))
    section = _run(ctx, _cfg())
    return ctx, train, test, section


def _labelled(f: ImageFeatures):
    keep = f.labels >= 0
    return f.embeds[keep], f.labels[keep], {a: v[keep] for a, v in f.attributes.items()}


def test_planted_classes_are_separated_by_every_probe(planted):
    _, _, _, section = planted
    res = section.results
    assert res["num_train"] == N_TRAIN and res["num_test"] == N_TEST
    assert res["dropped"] == {"train_unlabelled": 5, "test_unlabelled": 3, "test_unseen_class": 0}
    assert res["num_val"] == round(0.2 * N_TRAIN) and res["num_fit"] == N_TRAIN - res["num_val"]
    assert set(res["methods"]) == {
        "svc_linear", "linear_svc", "sklearn_logistic", "jax_logistic", "mlp"
    }  # fmt: skip
    for key, m in res["methods"].items():
        assert m["test_accuracy"] >= 0.97, key
        assert 0.0 <= m["macro_f1"] <= 1.0
    # zero-shot with the planted text encoder: "a photo of a {c}." -> e_c, exact
    assert res["zero_shot"]["top1"] == 1.0
    assert res["chance"] == pytest.approx(1 / len(CLASSES))


def test_headline_is_one_entry_per_probe(planted):
    _, _, _, section = planted
    head = section.results["headline"]
    assert isinstance(head, list) and len(head) == len(section.results["methods"])
    for h, m in zip(head, section.results["methods"].values()):
        assert set(h) - {"converged", "top5_ci"} == {
            "method",
            "top1",
            "top5",
            "macro_f1",
            "top1_ci",
            "macro_f1_ci",
        }
        assert h["top1"] == m["test_accuracy"] and h["top1_ci"] == m["test_accuracy_ci"]
        assert h.get("converged") == m.get("converged")  # the solver's flag, where it has one
    by = {h["method"]: h for h in head}
    assert by["StandardScaler + SVC(linear)"]["top5"] is None  # labels only
    assert by["JAX logistic regression (CLIP protocol)"]["top5"] is None  # C = 4 <= 5


def test_numbers_match_independent_sklearn_fits(planted):
    _, train, test, section = planted
    res = section.results
    xtr, ytr, _ = _labelled(train)
    xte, yte, _ = _labelled(test)
    # SVC(linear, C=1) with a scaler, exactly the thesis's code
    sc = StandardScaler().fit(xtr)
    svc = SVC(kernel="linear", C=1.0, random_state=42).fit(sc.transform(xtr), ytr)
    pred = svc.predict(sc.transform(xte))
    assert res["methods"]["svc_linear"]["test_accuracy"] == pytest.approx(np.mean(pred == yte))
    assert res["methods"]["svc_linear"]["macro_f1"] == pytest.approx(
        f1_score(yte, pred, average="macro")
    )
    lsvc = LinearSVC(C=1.0, random_state=0).fit(sc.transform(xtr), ytr)
    assert res["methods"]["linear_svc"]["test_accuracy"] == pytest.approx(
        np.mean(lsvc.predict(sc.transform(xte)) == yte)
    )
    # JAX logistic at its chosen strength == sklearn LogisticRegression(C = 1 / L2), refit on
    # the whole train split with a scaler
    l2 = res["methods"]["jax_logistic"]["l2"]
    lr = LogisticRegression(C=1.0 / l2, max_iter=5000, tol=1e-8).fit(sc.transform(xtr), ytr)
    acc = np.mean(lr.predict(sc.transform(xte)) == yte)
    assert abs(res["methods"]["jax_logistic"]["test_accuracy"] - acc) <= 1 / len(yte) + 1e-9


def test_intervals_and_probe_vs_zero_shot_against_independent_fits(planted):
    from scipy import stats

    from jaxclip.analysis import bootstrap

    ctx, train, test, section = planted
    res = section.results
    xtr, ytr, _ = _labelled(train)
    xte, yte, _ = _labelled(test)
    sc = StandardScaler().fit(xtr)
    pred = SVC(kernel="linear", C=1.0, random_state=42).fit(sc.transform(xtr), ytr)
    pred = pred.predict(sc.transform(xte))
    n, k = len(yte), int((pred == yte).sum())
    # the counts path: Binomial(n, k / n) draws of numpy's generator under the config seed
    rng = np.random.default_rng(ctx.config.seed)
    lo, hi = bootstrap.percentile_interval(rng.binomial(n, k / n, 10_000) / n)
    ci = res["methods"]["svc_linear"]["test_accuracy_ci"]
    assert ci == {"value": k / n, "ci_low": lo, "ci_high": hi, "n": n}
    f1 = res["methods"]["svc_linear"]["macro_f1_ci"]
    assert f1["value"] == pytest.approx(f1_score(yte, pred, average="macro"))
    assert f1["ci_low"] <= f1["value"] <= f1["ci_high"] and f1["n"] == n
    for m in res["methods"].values():
        assert m["test_accuracy_ci"]["value"] == pytest.approx(m["test_accuracy"])
        assert m["macro_f1_ci"]["value"] == pytest.approx(m["macro_f1"])
    assert res["zero_shot"]["top1_ci"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": n}
    comps = {c["a"]: c for c in res["comparisons"]}
    assert set(comps) == set(res["methods"]) and {c["b"] for c in comps.values()} == {"zero_shot"}
    # zero-shot is right on every test image: the discordant pairs are the SVC's errors
    c = comps["svc_linear"]
    assert (c["discordant_a"], c["discordant_b"]) == (0, n - k)
    want = 1.0 if k == n else stats.binomtest(0, n - k, 0.5).pvalue
    assert c["p_value"] == pytest.approx(want)
    assert c["difference"] == pytest.approx(k / n - 1.0)
    md = section.report.markdown()
    assert f"| {100 * k / n:.2f} [{100 * lo:.2f}, {100 * hi:.2f}] |" in md
    assert "StandardScaler + SVC(linear) vs zero-shot: " in md
    verdict = "distinguishable" if c["distinguishable"] else "not distinguishable"
    assert f"{100 * (k / n - 1):+.2f} points" in md and verdict in md


def test_probe_vs_zero_shot_sentence_follows_the_numbers(tmp_path):
    # A text encoder that names the wrong class (each prompt -> the next class's direction):
    # zero-shot is wrong on every image, the probe right on nearly all -> distinguishable.
    train, test = _split(N_TRAIN, 1), _split(N_TEST, 2)

    def wrong(text):
        return np.roll(np.stack([_embed(f"a {c}") for c in CLASSES]), 1, axis=0)[
            next(i for i, c in enumerate(CLASSES) if re.search(rf"\b{c}\b", text))
        ]

    ctx = FakeContext({"train": train, "test": test}, tmp_path, embed=wrong)
    cfg = _cfg()
    cfg.svc_max_train, cfg.linear_svc, cfg.sklearn_logistic, cfg.mlp = 0, False, False, False
    cfg.attributes, cfg.shots, cfg.shot_repeats = False, (1,), 1
    ran = _run(ctx, cfg)
    assert ran.results["zero_shot"]["top1"] == 0.0
    (c,) = ran.results["comparisons"]
    assert c["a"] == "jax_logistic" and c["distinguishable"] and c["ci_low"] > 0.9
    md = ran.report.markdown()
    assert "1 of 1 distinguishable" in md
    assert re.search(r"vs zero-shot: \+\d+\.\d\d points \[\+[\d.]+, \+[\d.]+\], "
                     r"distinguishable from noise \(Holm p < 0\.0001\)", md)  # fmt: skip


def test_regularisation_path_matches_sklearn_on_the_fit_part(planted):
    _, train, test, section = planted
    res = section.results
    xtr, ytr, _ = _labelled(train)
    xte, yte, _ = _labelled(test)
    fit, val = train_val_split(len(ytr), 0.2, 0)
    sc = StandardScaler().fit(xtr[fit])
    path = res["jax_logistic_path"]
    assert [r["l2"] for r in path] == [0.01, 0.1, 1.0, 10.0]
    for r in path:
        lr = LogisticRegression(C=1.0 / r["l2"], max_iter=5000, tol=1e-8)
        lr.fit(sc.transform(xtr[fit]), ytr[fit])
        for name, (x, y) in {"val": (xtr[val], ytr[val]), "test": (xte, yte)}.items():
            acc = np.mean(lr.predict(sc.transform(x)) == y)
            assert abs(r[f"{name}_accuracy"] - acc) <= 1 / len(y) + 1e-9, (r["l2"], name)
    # the chosen strength: best validation accuracy, ties to the strongest
    vals = np.array([r["val_accuracy"] for r in path])
    best = max(i for i in range(len(path)) if vals[i] >= vals.max() - 1e-12)
    assert res["methods"]["jax_logistic"]["l2"] == path[best]["l2"]


def test_few_shot_tiling_equals_direct_k_shot_fits(planted):
    """The k-shot sets are tiled to one shape and solved at l2 * M / k; each point must equal
    an independent scikit-learn fit on the k-shot set itself at the chosen strength."""
    _, train, test, section = planted
    curve = section.results["few_shot"]
    assert [r["shots"] for r in curve] == [1, 2, 4, "all"]
    xtr, ytr, _ = _labelled(train)
    xte, yte, _ = _labelled(test)
    fit, _ = train_val_split(len(ytr), 0.2, 0)
    xf, yf = xtr[fit], ytr[fit]
    by_class = [np.flatnonzero(yf == k) for k in range(len(CLASSES))]
    for row in curve[:-1]:
        k = row["shots"]
        assert row["num_labelled"] == k * len(CLASSES)
        for r, (acc, l2) in enumerate(zip(row["accuracies"], row["l2"])):
            rng = np.random.default_rng([0, k, r])
            idx = np.sort(np.concatenate([rng.choice(ix, k, replace=False) for ix in by_class]))
            sc = StandardScaler().fit(xf[idx])
            lr = LogisticRegression(C=1.0 / l2, max_iter=5000, tol=1e-8)
            lr.fit(sc.transform(xf[idx]), yf[idx])
            ref = np.mean(lr.predict(sc.transform(xte)) == yte)
            assert abs(acc - ref) <= 1 / len(yte) + 1e-9, (k, r)
        assert row["mean_accuracy"] == pytest.approx(np.mean(row["accuracies"]))
    assert curve[-1]["num_labelled"] == len(fit)


def test_attribute_probes_against_chance(planted):
    _, train, test, section = planted
    attrs = section.results["attributes"]
    assert list(attrs) == ["color", "noise"]  # the dataset's order
    assert attrs["color"]["test_accuracy"] >= 0.97  # planted along its own directions
    assert attrs["noise"]["test_accuracy"] <= 0.75  # independent of the image: about chance
    _, _, ate = _labelled(test)
    for name, k in (("color", 3), ("noise", 2)):
        assert attrs[name]["values"] == k and attrs[name]["chance"] == pytest.approx(1 / k)
        counts = np.bincount(ate[name], minlength=k)
        assert attrs[name]["majority"] == pytest.approx(counts.max() / counts.sum())
    # the colour probe equals an independent sklearn fit on the fit part at its chosen L2
    xtr, _, atr = _labelled(train)
    xte, _, _ = _labelled(test)
    fit, _ = train_val_split(len(xtr), 0.2, 0)
    sc = StandardScaler().fit(xtr[fit])
    for name in ("color", "noise"):
        lr = LogisticRegression(C=1.0 / attrs[name]["l2"], max_iter=5000, tol=1e-8)
        lr.fit(sc.transform(xtr[fit]), atr[name][fit])
        ref = np.mean(lr.predict(sc.transform(xte)) == ate[name])
        assert abs(attrs[name]["test_accuracy"] - ref) <= 1 / len(xte) + 1e-9, name


def test_saved_probe_reproduces_its_test_accuracy(planted):
    ctx, _, test, section = planted
    saved = section.results["saved_probe"]
    path = ctx.workdir / saved["file"]
    assert path.is_file()
    probe = load_probe(path)
    xte, yte, _ = _labelled(test)
    method = section.results["methods"][saved["method"]]
    assert probe.score(xte, yte) == pytest.approx(method["test_accuracy"])
    assert saved["file"] in section.report.markdown()


def test_report_links_tables_and_published_numbers(planted):
    ctx, _, _, section = planted
    md = section.report.markdown()
    links = check_links(ctx.workdir, md)
    assert set(links) == set(section.results["figures"])
    for name in (
        "probe_methods.png",
        "probe_regularization_path.png",
        "probe_few_shot.png",
        "probe_attributes.png",
    ):
        assert name in links
    assert section.results["published_percent"] == {"thesis (SVC C=1)": 93.24}
    assert "| thesis (SVC C=1) | 93.24 |" in md
    assert "zero-shot" in md and "Chance is 1/C = 25.00 %" in md
    assert "fit s" in md  # timings in the report ...
    flat = json.dumps(to_jsonable(section.results), allow_nan=False)
    assert "seconds" not in flat  # ... never in the results


def test_svc_skipped_on_large_train_splits(tmp_path):
    ctx = _ctx(_split(80, 1), _split(40, 2), tmp_path, model="x", dataset="y")
    cfg = _cfg()
    cfg.svc_max_train = 50
    cfg.mlp = False
    cfg.linear_svc = False
    cfg.sklearn_logistic = False
    cfg.attributes = False
    cfg.save_probe = False
    section = _run(ctx, cfg)
    res = section.results
    assert (
        "svc_linear" not in res["methods"]
        and "80 examples > `svc_max_train = 50`" in (res["svc_skipped"])
    )
    md = section.report.markdown()
    assert "SVC(linear, C=1) baseline was skipped" in md
    assert "--config.probe.svc_max_train=80" in md
    assert "No published probe numbers" in md
    assert [h["method"] for h in res["headline"]] == ["JAX logistic regression (CLIP protocol)"]
    assert not list(tmp_path.glob("*.npz"))


def test_no_labels_skips(tmp_path):
    train = _split(40, 1)
    train.labels[:] = -1
    section = _run(_ctx(train, _split(20, 2), tmp_path), _cfg())
    assert section.results == {"skipped": "the train split has no class labels"}
    assert "Skipped" in section.report.markdown()


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("val_fraction", 1.0, "val_fraction"),
        ("l2_grid", (0.1, -1.0), "l2_grid"),
        ("mlp_widths", (0,), "mlp_widths"),
        ("mlp_dropouts", (1.0,), "mlp_dropouts"),
        ("shots", (0, 2), "shots"),
        ("zero_shot_template", "a photo", "zero_shot_template"),
        ("svc_max_train", -1, "svc_max_train"),
    ],
)
def test_bad_config_values_raise(field, value, match):
    check_bad_config(study_config, study.check_config, field, value, match)


def test_config_variants():
    from configs.probe import get_config

    c = get_config()
    study.check_config(c.probe)
    assert c.probe.svc_max_train == 20_000 and tuple(c.probe.l2_grid) == linear.DEFAULT_L2_GRID
    c = get_config("vit_b32,cifar100")
    assert (c.model, c.dataset) == ("vit_b32", "cifar100")
    smoke = get_config("smoke")
    study.check_config(smoke.probe)
    assert smoke.smoke and smoke.probe.mlp_epochs < c.probe.mlp_epochs
    with pytest.raises(ConfigError, match=r"unknown config variant 'nope'"):
        get_config("nope")


@pytest.mark.slow  # tiny model end to end, twice: compilation dominates (~20-30 s)
def test_end_to_end_smoke_and_determinism(tmp_path, shapes_data_dir):
    from configs.probe import get_config
    from experiments import probe as experiment

    stored = []
    for run in ("a", "b"):
        config, workdir, results = run_smoke(get_config, experiment, tmp_path, shapes_data_dir, run)
        for name in ("results.json", "metrics.csv", "report.md", "timings.json"):
            assert (workdir / name).is_file(), name
        text = (workdir / "results.json").read_text()
        stored.append(text)
        pr = json.loads(text)["probe"]
        assert pr == json.loads(json.dumps(to_jsonable(results["probe"])))
        assert pr["num_train"] == pr["num_test"] == config.max_examples
        assert isinstance(pr["headline"], list) and len(pr["headline"]) == 5
        for m in pr["methods"].values():
            assert 0.0 <= m["test_accuracy"] <= 1.0
        assert list(pr["attributes"]) == ["color", "size", "position", "background", "count"]
        md = (workdir / "report.md").read_text()
        assert len(check_links(workdir, md)) == len(pr["figures"]) == 4
        assert "## At a glance" in md  # five probes -> the runner's headline table
        assert (workdir / pr["saved_probe"]["file"]).is_file()
    assert stored[0] == stored[1], "results.json differs between two identical runs"


def test_result_round_trip_and_analyse_writes_no_files(tmp_path):
    ctx = _ctx(_split(80, 1), _split(40, 2), tmp_path / "run")
    cfg = _cfg()
    cfg.mlp = False
    cfg.linear_svc = False
    cfg.shots = (1,)
    result = study.analyse(ctx, cfg)
    assert not list((tmp_path / "run").iterdir())  # analyse draws and writes nothing
    entry = json.loads(json.dumps(result.to_json(), allow_nan=False))
    back = study.ProbeResult.from_json(entry, result.arrays(), result.timings())
    assert back.to_json() == entry
    assert set(back.timings()["seconds"]) == {"svc_linear", "sklearn_logistic", "jax_logistic",
                                               "few_shot", "attributes"}  # fmt: skip
    np.testing.assert_array_equal(back.sklearn_val, result.sklearn_val)
    assert back.saved_probe == {**result.saved_probe}
    study.write_files(back, tmp_path / "run")  # the reloaded bytes give the same probe file
    probe = load_probe(tmp_path / "run" / back.saved_probe["file"])
    xte, yte, _ = _labelled(_split(40, 2))
    method = entry["methods"][back.saved_probe["method"]]
    assert probe.score(xte, yte) == pytest.approx(method["test_accuracy"])
