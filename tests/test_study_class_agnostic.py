"""Tests for the class-agnostic study (jaxclip/studies/class_agnostic.py,
configs/class_agnostic.py, experiments/class_agnostic.py): planted image and prompt embeddings
with known answers, entropies against float64 NumPy, probes against scikit-learn, the
temperature identity, and an end-to-end smoke run checked for determinism."""

from __future__ import annotations

import itertools
import json
import re
import zlib
from types import SimpleNamespace

import ml_collections
import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from configs.class_agnostic import study_config
from jaxclip.config_args import ConfigError
from jaxclip.data.prompts import PROMPT_SETS
from jaxclip.features.extract import ImageFeatures
from jaxclip.report import to_jsonable
from jaxclip.studies import class_agnostic as study
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_smoke, run_study

CLASSES = ("circle", "square", "triangle", "star")
D = 40
N_TRAIN, N_TEST = 200, 120
SCALE = 100.0


def _class_dirs() -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    return q.T[: len(CLASSES)]


DIRS = _class_dirs()


def _embed(text: str) -> np.ndarray:
    """A planted text encoder: a class prompt -> its class direction; any other text -> a
    Gaussian vector seeded by the text (stable across processes)."""
    for i, name in enumerate(CLASSES):
        if re.search(rf"\b{name}\b", text):
            return (5.0 * DIRS[i]).astype(np.float32)
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    return rng.normal(size=D).astype(np.float32)


def _split(n: int, seed: int) -> ImageFeatures:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(CLASSES)
    x = 3.0 * DIRS[y] + 0.5 * rng.normal(size=(n, D)) + 1.0
    return ImageFeatures(
        embeds=x.astype(np.float32),
        labels=y,
        indices=np.arange(n),
        attributes={},
        captions=None,
        classnames=CLASSES,
        meta={"dataset": "planted"},
    )


def _ctx(train, test, workdir) -> FakeContext:
    """Both splits with the planted text encoder, named like the thesis's setting."""
    return FakeContext({"train": train, "test": test}, workdir, embed=_embed, model="vit_b32",
                       dataset="cifar100", logit_scale=SCALE)  # fmt: skip


def _cfg() -> ml_collections.ConfigDict:
    cfg = study_config()
    cfg.l2_grid = (0.01, 0.1, 1.0)
    cfg.mlp_widths = (16,)
    cfg.mlp_learning_rates = (1e-2,)
    cfg.mlp_weight_decays = (1e-4,)
    cfg.mlp_epochs = 10
    cfg.mlp_batch_size = 32
    cfg.num_taus = 5
    cfg.entropy_bins = 10
    cfg.equivalence_taus = (1.0, 0.07)
    cfg.equivalence_max_train = 0
    cfg.prompt_count_set = "generic100"
    cfg.prompt_counts = (16, 32, 100, 500)
    cfg.svc_taus = (0.5, 0.07, 0.03)
    return cfg


def _run(ctx: FakeContext, cfg: ml_collections.ConfigDict) -> SimpleNamespace:
    """The study as the runner runs it: results.json entry and report."""
    results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
    return SimpleNamespace(results=results, report=section.report)


def _cosines(x: np.ndarray, prompts) -> np.ndarray:
    t = np.stack([_embed(p) for p in prompts]).astype(np.float64)
    x = np.asarray(x, np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        t / np.linalg.norm(t, axis=1, keepdims=True)
    ).T


def _entropy64(z: np.ndarray) -> np.ndarray:
    p = softmax(z, axis=1)
    return logsumexp(z, axis=1) - np.sum(p * z, axis=1)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    train, test = _split(N_TRAIN, 1), _split(N_TEST, 2)
    ctx = _ctx(train, test, tmp_path_factory.mktemp("ca"))
    section = _run(ctx, _cfg())
    ztr = _cosines(train.embeds, PROMPT_SETS["generic32"])
    zte = _cosines(test.embeds, PROMPT_SETS["generic32"])
    return ctx, train, test, ztr, zte, section


def test_features_rank_and_separable_probes(planted):
    ctx, _, _, _, _, section = planted
    res = section.results
    assert res["num_prompts"] == 32 and res["prompt_rank"] == 32 and res["dim"] == D
    # every prompt embedded in one call, each distinct prompt once
    assert len(ctx.text_calls[0]) == len(set(ctx.text_calls[0])) == 100
    assert set(res["methods"]) == {"svc_linear", "jax_logistic", "mlp"}
    for key in ("jax_logistic", "mlp"):
        assert res["methods"][key]["test_accuracy"] >= 0.95, key
    refs = res["reference_methods"]
    assert refs["zero_shot"]["test_accuracy"] >= 0.95  # class prompts = class directions
    assert refs["ceiling"]["test_accuracy"] >= 0.95
    head = res["headline"]
    assert isinstance(head, list) and len(head) == 3
    assert all(
        set(h) - {"converged", "top1_ci", "top5_ci", "macro_f1_ci"}
        == {"method", "top1", "top5", "macro_f1"}
        for h in head
    )
    assert head[0]["top1_ci"] == res["methods"]["svc_linear"]["test_accuracy_ci"]
    for m in res["methods"].values():  # every probe row has its intervals (4 classes: no top-5)
        assert m["test_accuracy_ci"]["value"] == pytest.approx(m["test_accuracy"])
        assert m["macro_f1_ci"]["value"] == pytest.approx(m["macro_f1"])
        assert "top5_ci" not in m
    assert [h.get("converged") for h in head] == [
        m.get("converged") for m in res["methods"].values()
    ]
    assert isinstance(res["methods"]["jax_logistic"]["converged"], bool)
    assert isinstance(refs["ceiling"]["converged"], bool)


def test_svc_and_logistic_match_sklearn(planted):
    _, train, test, ztr, zte, section = planted
    res = section.results
    ytr, yte = train.labels, test.labels
    # the thesis's SVC: no scaler, C = 1, on the raw cosines
    pred = SVC(kernel="linear", C=1.0, random_state=42).fit(ztr, ytr).predict(zte)
    assert abs(res["methods"]["svc_linear"]["test_accuracy"] - np.mean(pred == yte)) <= (
        1 / N_TEST + 1e-9
    )
    l2 = res["methods"]["jax_logistic"]["l2"]
    sc = StandardScaler().fit(ztr)
    lr = LogisticRegression(C=1 / l2, max_iter=5000, tol=1e-8).fit(sc.transform(ztr), ytr)
    ref = np.mean(lr.predict(sc.transform(zte)) == yte)
    assert abs(res["methods"]["jax_logistic"]["test_accuracy"] - ref) <= 1 / N_TEST + 1e-9


def test_svc_tau_intervals_and_neighbour_tests(planted):
    from scipy import stats

    from jaxclip.analysis import bootstrap
    from jaxclip.studies import class_agnostic_render_tau as render_tau

    ctx, _, test, _, _, section = planted
    res = section.results
    n = len(test.labels)
    rows = res["svc_tau"]
    assert [r["tau"] for r in rows] == [0.5, 0.07, 0.03]
    for r in rows:
        k = round(r["test_accuracy"] * n)
        rng = np.random.default_rng(ctx.config.seed)  # numpy's binomial draws, config seed
        lo, hi = bootstrap.percentile_interval(rng.binomial(n, k / n, 10_000) / n)
        assert r["test_accuracy_ci"] == {"value": k / n, "ci_low": lo, "ci_high": hi, "n": n}
    comps = res["svc_tau_comparisons"]
    assert [(c["a"], c["b"]) for c in comps] == [("τ 0.5", "τ 0.07"), ("τ 0.07", "τ 0.03")]
    p = []
    for c, ra, rb in zip(comps, rows, rows[1:]):
        d01, d10 = c["discordant_a"], c["discordant_b"]
        assert c["difference"] == pytest.approx(ra["test_accuracy"] - rb["test_accuracy"])
        assert (d01 - d10) / n == pytest.approx(c["difference"])
        p.append(1.0 if d01 + d10 == 0 else stats.binomtest(d01, d01 + d10, 0.5).pvalue)
        assert c["p_value"] == pytest.approx(p[-1], rel=1e-12)
    lo_p, hi_p = sorted(p)
    want = sorted([min(1.0, 2 * lo_p), max(min(1.0, 2 * lo_p), hi_p)])
    assert sorted(c["p_holm"] for c in comps) == pytest.approx(want)
    md = section.report.markdown()
    for c in comps:
        assert render_tau.comparison_sentence(c) in md
    # the words follow the numbers: the same row rendered as significant / not
    c = comps[0]
    yes = render_tau.tau_comparison_text([{**c, "p_holm": 0.001, "distinguishable": True}])
    no = render_tau.tau_comparison_text([{**c, "p_holm": 0.41, "distinguishable": False}])
    assert (
        "1 of 1 distinguishable" in yes and ", distinguishable from noise (Holm p = 0.001)" in yes
    )
    assert "0 of 1 distinguishable" in no and "not distinguishable from noise (Holm p = 0.41)" in no


def test_tau_sweep_intervals_and_neighbouring_thesis_temperatures(planted):
    from scipy import stats

    from jaxclip.analysis import bootstrap
    from jaxclip.studies import class_agnostic_render_tau as render_tau

    ctx, _, test, _, _, section = planted
    n = len(test.labels)
    md = section.report.markdown()
    for scaling, tr in section.results["temperature"].items():
        for row in tr["rows"]:
            for key in ("acc_logits_over_tau", "acc_softmax_logits_over_tau"):
                ci, k = row[f"{key}_ci"], round(row[key] * n)
                assert ci["value"] == pytest.approx(row[key], abs=1e-6) and ci["n"] == n
                rng = np.random.default_rng(ctx.config.seed)
                lo, hi = bootstrap.percentile_interval(rng.binomial(n, k / n, 10_000) / n)
                assert (ci["ci_low"], ci["ci_high"]) == (lo, hi)
        by_tau = {f"τ {r['tau']:g}": r for r in tr["rows"]}
        thesis = [f"τ {t:g}" for t in sorted(study.THESIS_TAUS, reverse=True)]
        for key, comps in tr["comparisons"].items():
            assert [(c["a"], c["b"]) for c in comps] == list(itertools.pairwise(thesis))
            p = []
            for c in comps:
                d_a, d_b = c["discordant_a"], c["discordant_b"]
                diff = by_tau[c["a"]][key] - by_tau[c["b"]][key]
                assert (d_a - d_b) / n == pytest.approx(diff, abs=1e-6)
                p.append(1.0 if d_a + d_b == 0 else stats.binomtest(d_a, d_a + d_b).pvalue)
                assert c["p_value"] == pytest.approx(p[-1], rel=1e-12)
            # Holm by hand over the variant's pairs
            order, m, running = np.argsort(p), len(p), 0.0
            want = np.empty(m)
            for rank, i in enumerate(order):
                running = max(running, min(1.0, (m - rank) * p[i]))
                want[i] = running
            np.testing.assert_allclose([c["p_holm"] for c in comps], want, rtol=1e-12)
            for c in comps:
                assert render_tau.comparison_sentence(c) in md
            clear = sum(c["distinguishable"] for c in comps)
            name = render_tau.VARIANT_NAMES[key]
            assert f"{name}, {scaling} features: {clear} of {len(comps)} distinguishable" in md


def test_entropy_against_float64_numpy(planted):
    _, _, _, _, zte, section = planted
    ent = section.results["entropy"]
    assert ent["ln_k"] == pytest.approx(np.log(32))
    for tau, point in ((1.0, ent["raw"]), (1 / SCALE, ent["model"])):
        h = _entropy64(zte / tau)
        conf = softmax(zte / tau, axis=1).max(axis=1)
        assert point["tau"] == pytest.approx(tau)
        assert point["mean_entropy"] == pytest.approx(h.mean(), rel=1e-5, abs=1e-6)
        assert point["std_entropy"] == pytest.approx(h.std(), rel=1e-3, abs=1e-6)
        assert point["mean_confidence"] == pytest.approx(conf.mean(), rel=1e-5)
    per_tau = {round(r["tau"], 12): r for r in ent["per_tau"]}
    for tau in study.THESIS_TAUS:
        r = per_tau[round(tau, 12)]
        assert r["mean_entropy"] == pytest.approx(_entropy64(zte / tau).mean(), rel=1e-5)
    assert ent["raw"]["mean_entropy"] < np.log(32)  # strictly below the maximum
    sp = section.results["cosine_spread"]
    assert sp["mean_range"] == pytest.approx((zte.max(1) - zte.min(1)).mean(), rel=1e-5)
    assert sp["half_mean_var"] == pytest.approx(0.5 * zte.var(axis=1).mean(), rel=1e-4)
    # second-order expansion: ln K - H ≈ Var/2 for nearly equal logits
    gap = np.log(32) - ent["raw"]["mean_entropy"]
    assert gap == pytest.approx(sp["half_mean_var"], rel=0.1)


def test_temperature_identity_and_invariance(planted):
    _, train, test, ztr, zte, section = planted
    temp = section.results["temperature"]
    assert set(temp) == {"raw", "standardized"}
    tol = 2 / N_TEST + 1e-9
    for scaling in ("raw", "standardized"):
        rows = temp[scaling]["rows"]
        gaps = [abs(r["acc_logits_over_tau"] - r["acc_logits_at_l2_tau2"]) for r in rows]
        assert max(gaps) <= tol and temp[scaling]["max_identity_gap"] <= tol
    std_rows = temp["standardized"]["rows"]
    accs = [r["acc_logits_over_tau"] for r in std_rows]
    assert max(accs) - min(accs) <= tol  # (a) is invariant under standardisation
    assert all(r["l2_effective"] == 1.0 for r in std_rows)
    raw_rows = temp["raw"]["rows"]
    for r in raw_rows:
        assert r["l2_effective"] == pytest.approx(r["tau"] ** 2)
    # (a) without a scaler at tau == sklearn LogisticRegression(C = 1 / tau^2) on the cosines;
    # (b) == sklearn on softmax(cosines / tau) at C = 1
    ytr, yte = train.labels, test.labels
    by_tau = {round(r["tau"], 12): r for r in raw_rows}
    for tau in (1.0, 0.07):
        r = by_tau[round(tau, 12)]
        lr = LogisticRegression(C=1 / tau**2, max_iter=20000, tol=1e-9).fit(ztr, ytr)
        assert abs(r["acc_logits_over_tau"] - np.mean(lr.predict(zte) == yte)) <= tol
        ftr, fte = softmax(ztr / tau, axis=1), softmax(zte / tau, axis=1)
        lr = LogisticRegression(C=1.0, max_iter=20000, tol=1e-9).fit(ftr, ytr)
        assert abs(r["acc_softmax_logits_over_tau"] - np.mean(lr.predict(fte) == yte)) <= tol
    eq = section.results["tau_l2_equivalence"]
    assert eq["num_train"] == N_TRAIN and [r["tau"] for r in eq["rows"]] == [1.0, 0.07]
    for r in eq["rows"]:
        assert r["same_predictions"] >= 1 - 1 / N_TEST
        assert r["objective_left"] == pytest.approx(r["objective_right"], rel=1e-4)
        assert r["acc_standardized_x_over_tau"] == pytest.approx(r["acc_standardized_x"])


def test_tau_grid_contains_the_thesis_temperatures(planted):
    _, _, _, _, _, section = planted
    cfg = _cfg()
    taus = study.tau_grid(cfg)
    assert np.all(np.diff(taus) < 0) and taus[0] == 1.0 and taus[-1] == pytest.approx(1e-3)
    assert taus.size == 5 + 4
    for t in study.THESIS_TAUS:
        assert np.any(np.isclose(taus, t, rtol=1e-12))
    cfg.extra_taus = (1.0, 1e-3)  # already on the log grid: no duplicates
    assert study.tau_grid(cfg).size == 5
    rows = section.results["temperature"]["raw"]["rows"]
    np.testing.assert_allclose([r["tau"] for r in rows], taus)


def test_prompt_count_sweep(planted):
    _, train, test, _, _, section = planted
    pc = section.results["prompt_count"]
    assert [r["num_prompts"] for r in pc["rows"]] == [16, 32, 100]
    assert [r["rank"] for r in pc["rows"]] == [16, 32, D]
    # K = 16: the first 16 prompts of generic100 (= generic16), standardised, C = 1
    z16tr = _cosines(train.embeds, PROMPT_SETS["generic16"])
    z16te = _cosines(test.embeds, PROMPT_SETS["generic16"])
    sc = StandardScaler().fit(z16tr)
    lr = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(sc.transform(z16tr), train.labels)
    ref = np.mean(lr.predict(sc.transform(z16te)) == test.labels)
    assert abs(pc["rows"][0]["accuracy"] - ref) <= 2 / N_TEST + 1e-9
    assert "Sizes 500 exceed the set" in section.report.markdown()


def test_report_shows_thesis_numbers_and_links(planted):
    ctx, _, _, _, _, section = planted
    md = section.report.markdown()
    links = check_links(ctx.workdir, md)
    assert set(links) == set(section.results["figures"])
    for name in (
        "class_agnostic_probes.png",
        "class_agnostic_entropy_histograms.png",
        "class_agnostic_tau_entropy.png",
        "class_agnostic_tau_accuracy_raw.png",
        "class_agnostic_tau_accuracy_standardized.png",
        "class_agnostic_prompt_count.png",
    ):
        assert name in links
    assert section.results["published_thesis"]["raw cosines, SVC"] == 29.30
    for number in ("29.30", "3.4656", "3.4649", "2.8957", "50.62", "63.76"):
        assert number in md, number
    assert "λτ²" in md and "exactly invariant" in md
    assert "configs/class_agnostic.py:mini,shapes128" in md
    flat = json.dumps(to_jsonable(section.results), allow_nan=False)
    assert "seconds" not in flat
    # The x/tau check and the prompt-count sweep ran on the second thread: timed, and said so
    # above the parts table.
    assert (
        "equivalence, prompt_count ran on a second thread while the probes and the τ sweeps "
        "ran" in md
    )
    assert "| equivalence |" in md and "| prompt_count |" in md


def test_other_prompt_set_hides_the_thesis_and_model_scale_feeds_the_svc(tmp_path):
    # same sizes as the planted fixture, so most compiled solvers are reused
    train, test = _split(N_TRAIN, 3), _split(N_TEST, 4)
    cfg = _cfg()
    cfg.prompts = "generic16"
    cfg.features = "model"
    cfg.mlp = False
    cfg.ceiling = False
    cfg.sweeps = ()
    cfg.equivalence_taus = ()
    section = _run(_ctx(train, test, tmp_path), cfg)
    res = section.results
    md = section.report.markdown()
    assert "not comparable" in md and "29.30" not in md
    z_tr = _cosines(train.embeds, PROMPT_SETS["generic16"]) * SCALE
    z_te = _cosines(test.embeds, PROMPT_SETS["generic16"]) * SCALE
    pred = SVC(kernel="linear", C=1.0, random_state=42).fit(z_tr, train.labels).predict(z_te)
    assert abs(res["methods"]["svc_linear"]["test_accuracy"] - np.mean(pred == test.labels)) <= (
        1 / N_TEST + 1e-9
    )
    assert "tau_l2_equivalence" not in res and res["temperature"] == {}


def test_svc_skip_and_no_labels(tmp_path):
    cfg = _cfg()
    cfg.svc_max_train = 10
    cfg.mlp = False
    cfg.ceiling = False
    cfg.sweeps = ()
    cfg.equivalence_taus = ()
    section = _run(_ctx(_split(N_TRAIN, 1), _split(N_TEST, 2), tmp_path / "a"), cfg)
    assert "svc_linear" not in section.results["methods"]
    assert f"--config.class_agnostic.svc_max_train={N_TRAIN}" in section.report.markdown()
    train = _split(40, 1)
    train.labels[:] = -1
    section = _run(_ctx(train, _split(20, 2), tmp_path / "b"), cfg)
    assert section.results == {"skipped": "the train split has no class labels"}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("prompts", "generic7", "prompts"),
        ("features", "logits", "features"),
        ("sweeps", ("raw", "raw"), "sweeps"),
        ("tau_min", 2.0, "tau_min"),
        ("sweep_l2", 0.0, "sweep_l2"),
        ("prompt_counts", (16, 0), "prompt_counts"),
        ("svc_taus", (0.5, -1.0), "svc_taus"),
    ],
)
def test_bad_config_values_raise(field, value, match):
    check_bad_config(study_config, study.check_config, field, value, match)


def test_config_variants():
    from configs.class_agnostic import get_config

    c = get_config()
    study.check_config(c.class_agnostic)
    assert c.class_agnostic.prompts == "generic32" and c.class_agnostic.num_taus == 32
    assert study.tau_grid(c.class_agnostic).size == 32 + 4  # + the thesis's temperatures
    c = get_config("mini,shapes128")
    assert c.dataset == "shapes/128"
    smoke = get_config("smoke")
    study.check_config(smoke.class_agnostic)
    assert smoke.class_agnostic.prompts == "generic16" and smoke.class_agnostic.num_taus < 32
    with pytest.raises(ConfigError, match=r"unknown config variant 'nope'"):
        get_config("nope")


@pytest.mark.slow  # tiny model end to end, twice: compilation dominates (~20-30 s)
def test_end_to_end_smoke_and_determinism(tmp_path, shapes_data_dir):
    from configs.class_agnostic import get_config
    from experiments import class_agnostic as experiment

    stored = []
    for run in ("a", "b"):
        config, workdir, results = run_smoke(get_config, experiment, tmp_path, shapes_data_dir, run)
        for name in ("results.json", "metrics.csv", "report.md", "timings.json"):
            assert (workdir / name).is_file(), name
        text = (workdir / "results.json").read_text()
        stored.append(text)
        ca = json.loads(text)["class_agnostic"]
        assert ca == json.loads(json.dumps(to_jsonable(results["class_agnostic"])))
        assert ca["num_prompts"] == 16 and ca["num_train"] == config.max_examples
        assert isinstance(ca["headline"], list) and len(ca["headline"]) == 3
        assert 0 < ca["entropy"]["raw"]["mean_entropy"] <= np.log(16) + 1e-6
        for m in ca["methods"].values():
            assert 0.0 <= m["test_accuracy"] <= 1.0
        md = (workdir / "report.md").read_text()
        assert len(check_links(workdir, md)) == len(ca["figures"]) == 6
    assert stored[0] == stored[1], "results.json differs between two identical runs"


def test_result_round_trip_keeps_the_figure_arrays(tmp_path):
    cfg = _cfg()
    cfg.mlp = False
    cfg.ceiling = False
    cfg.sweeps = ("raw",)
    cfg.equivalence_taus = ()
    cfg.prompt_counts = (16,)
    ctx = _ctx(_split(60, 1), _split(40, 2), tmp_path / "run")
    result = study.analyse(ctx, cfg)
    assert not list((tmp_path / "run").iterdir())  # analyse draws and writes nothing
    entry = json.loads(json.dumps(result.to_json(), allow_nan=False))
    back = study.ClassAgnosticResult.from_json(entry, result.arrays(), result.timings())
    assert back.to_json() == entry
    labels = list(back.histogram_labels)
    assert labels[0] == "raw cosine (tau=1)" and labels == list(back.gap_histogram_labels)
    assert back.histogram_counts.shape == (len(labels), cfg.entropy_bins)
    assert back.histogram_edges.shape == (len(labels), cfg.entropy_bins + 1)
    assert back.histogram_counts.sum(axis=1).tolist() == [40] * len(labels)  # every test image
    assert back.entropy_std.shape == (len(entry["entropy"]["per_tau"]),)
    assert back.dropped_prompt_counts.tolist() == []
    assert set(back.seconds) >= {"svc_linear", "jax_logistic", "entropy", "sweep_raw"}
