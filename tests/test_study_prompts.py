"""Tests for the prompt study (jaxclip/studies/prompts.py and prompts_render.py,
configs/prompts.py, experiments/prompts.py): planted templates whose accuracies are known
(100 %, 1 - 1/C, 0 %), text norms that defeat the raw dot product, all checked against NumPy
float64; the result's JSON round trip; and the entry point end to end (runner, results.json,
report.md, metrics.csv) on the planted context, with the planted answers."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from configs.prompts import study_config
from jaxclip.config_args import ConfigError
from jaxclip.data.templates import IRRELEVANT_TEMPLATE, TEMPLATE_SETS
from jaxclip.features.extract import ImageFeatures
from jaxclip.report import to_jsonable
from jaxclip.studies import prompts as study
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_study

CLASSES = ("apple", "bird", "car", "dog", "fish", "horse", "ship", "tree")
C = len(CLASSES)
D = 16
PER_CLASS = 10
NORMS = 2.0 ** np.arange(C)  # text norms 1 ... 128: long prompts attract dot products
SHIFTED = "a wild animal: {}"  # planted: every class's prompt points at the next class -> 0 %
BROKEN = "{}"  # planted: class 0's prompt points away from it -> 1 - 1/C


def _basis():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    return q[:, :C].T, q[:, C]  # class directions e_c, a shared direction u


E, U = _basis()


def _split(prompt: str) -> tuple[str, int]:
    """(template, class index) of a prompt: the class name is the one word that varies."""
    for c, name in enumerate(CLASSES):
        m = re.search(rf"\b{name}\b", prompt)
        if m:
            return prompt[: m.start()] + "{}" + prompt[m.end() :], c
    raise AssertionError(f"no class name in {prompt!r}")


def _embed(prompt: str) -> np.ndarray:
    """t_c = n_c (e_c + 0.8 u) for every template but the two planted ones."""
    template, c = _split(prompt)
    if template == SHIFTED:
        return (E[(c + 1) % C] + 0.8 * U).astype(np.float32)
    if template == BROKEN and c == 0:
        return (-E[0] + 0.8 * U).astype(np.float32)
    return (NORMS[c] * (E[c] + 0.8 * U)).astype(np.float32)


def _run(ctx: FakeContext, cfg) -> SimpleNamespace:
    """analyse + render as the runner does: .results (the results.json entry), .report."""
    results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
    return SimpleNamespace(results=results, report=section.report)


def _ctx(features, workdir) -> FakeContext:
    """The test split `features` with the planted text encoder, logit scale 50."""
    return FakeContext(features, workdir, embed=_embed, logit_scale=50.0)


def _features(seed: int = 0) -> ImageFeatures:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(C), PER_CLASS)
    x = E[y] + 0.8 * U + 0.05 * rng.normal(size=(len(y), D))
    x *= rng.uniform(0.5, 3.0, size=(len(y), 1))  # image norms vary: they must not matter
    return ImageFeatures(
        embeds=x.astype(np.float32),
        labels=y,
        indices=np.arange(len(y)),
        attributes={},
        captions=None,
        classnames=CLASSES,
        meta={},
    )


def _accuracy(x, y, w, k):
    """Top-k accuracy of cosine scores in float64 (no ties occur here)."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    s = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1)[:, None]).T
    true = s[np.arange(len(y)), y][:, None]
    return float(np.mean((s > true).sum(1) < k))


def _ensemble(ws):
    """CLIP's prompt ensemble in float64: normalise, average, renormalise."""
    ws = np.stack([w / np.linalg.norm(w, axis=1, keepdims=True) for w in ws]).mean(0)
    return ws / np.linalg.norm(ws, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    feats = _features()
    ctx = _ctx(feats, tmp_path_factory.mktemp("prompts"))
    cfg = study_config()
    cfg.ensembles = ("imagenet7",)
    return ctx, feats, _run(ctx, cfg)


def test_templates_have_their_planted_accuracies(planted_run):
    ctx, feats, section = planted_run
    res = section.results
    rows = {r["template"]: r for r in res["templates"]}
    singles = list(dict.fromkeys(["a photo of a {}.", *TEMPLATE_SETS["source"]]))
    assert [r["template"] for r in res["templates"]][: len(singles)] == singles
    assert rows["a photo of a {}."]["top1"] == 1.0
    assert rows[IRRELEVANT_TEMPLATE]["top1"] == 1.0
    assert rows[SHIFTED]["top1"] == 0.0
    assert rows[BROKEN]["top1"] == pytest.approx(1 - 1 / C)
    assert rows["ensemble: imagenet7 (7 templates)"]["top1"] == 1.0
    assert rows["ensemble: imagenet7 (7 templates)"]["n_templates"] == 7
    x, y = feats.embeds, feats.labels
    for t in singles:
        w = np.stack([_embed(t.replace("{}", c)) for c in CLASSES])
        assert rows[t]["top1"] == pytest.approx(_accuracy(x, y, w, 1)), t
        assert rows[t]["top5"] == pytest.approx(_accuracy(x, y, w, 5)), t
        assert rows[t]["delta_top1"] == pytest.approx(rows[t]["top1"] - 1.0)
    listed = [np.stack([_embed(t.replace("{}", c)) for c in CLASSES]) for t in singles]
    ens = rows[f"ensemble: the {len(singles)} templates above"]
    assert ens["top1"] == pytest.approx(_accuracy(x, y, _ensemble(listed), 1))
    assert res["baseline"] == "a photo of a {}."
    assert res["worst"]["template"] == SHIFTED and res["worst"]["top1"] == 0.0
    # one encoder call, each distinct prompt once
    assert len(ctx.text_calls) == 1
    assert len(ctx.text_calls[0]) == len(set(ctx.text_calls[0]))


def test_similarity_comparison_against_numpy(planted_run):
    _, feats, section = planted_run
    sim = section.results["similarity"]
    assert sim["template"] == "a photo of a {}"
    by = {r["similarity"]: r for r in sim["variants"]}
    x = feats.embeds.astype(np.float64)
    y = feats.labels
    t = np.stack([_embed(f"a photo of a {c}") for c in CLASSES]).astype(np.float64)
    dot = x @ t.T
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        t / np.linalg.norm(t, axis=1)[:, None]
    ).T
    assert by["cosine"]["top1"] == 1.0 == by["scaled_cosine"]["top1"]
    # By construction t_c · x = n_c (δ_cy + 0.64) |x|: class c beats the true class y when
    # n_c · 0.64 > n_y · 1.64, i.e. n_c / n_y > 2.5625: with n_c = 2^c, only y >= C - 2 survive.
    assert by["dot"]["top1"] == pytest.approx(2 / C)
    assert by["dot"]["top1"] == pytest.approx(np.mean(dot.argmax(1) == y))
    for name, s in (("cosine", cos), ("dot", dot), ("scaled_cosine", 50.0 * cos)):
        matched = s[np.arange(len(y)), y]
        off = ~np.eye(C, dtype=bool)[y]
        np.testing.assert_allclose(by[name]["mean_matched"], matched.mean(), rtol=1e-5)
        np.testing.assert_allclose(by[name]["mean_unmatched"], s[off].mean(), rtol=1e-5)
    norms = sim["norms"]
    tn = np.linalg.norm(t, axis=1)
    np.testing.assert_allclose(norms["text_norm_ratio_max_min"], tn.max() / tn.min(), rtol=1e-6)
    np.testing.assert_allclose(norms["text_norm_cv"], tn.std() / tn.mean(), rtol=1e-6)
    assert norms["longest_text_class"] == CLASSES[-1]
    # the longest prompt (class C-1) takes every image of classes 0 .. C-3 and its own
    share = np.bincount(dot.argmax(1), minlength=C) / len(y)
    assert norms["dot_share_of_longest_text_class"] == pytest.approx(share[-1])
    assert share[-1] == pytest.approx((C - 1) / C)
    assert sim["per_class"][-1]["share_cosine"] == pytest.approx(1 / C)


def test_report_links_and_sources(planted_run):
    ctx, _, section = planted_run
    md = section.report.markdown()
    links = check_links(ctx.workdir, md)
    assert (
        set(links)
        == set(section.results["figures"])
        == {
            "prompts_templates.png",
            "prompts_text_norms.png",
        }
    )
    assert "| a photo of a {} | 58.85 | 61.71 |" in md
    assert "48.12" in md and "0.5885" in md and "0.1608" in md
    assert "Why the raw dot product loses" in md
    assert "text norms ‖t_c‖ differ" in md
    json.dumps(to_jsonable(section.results), allow_nan=False)


def test_literal_templates_and_baseline_fallback(tmp_path):
    ctx = _ctx(_features(), tmp_path)
    cfg = study_config()
    cfg.templates = ("a picture of a {}", SHIFTED, "a picture of a {}")
    cfg.ensembles = ()
    cfg.ensemble_of_listed = False
    res = _run(ctx, cfg).results
    assert [r["template"] for r in res["templates"]] == ["a picture of a {}", SHIFTED]
    assert res["baseline"] == "a picture of a {}"  # "a photo of a {}." is not in the list
    assert res["templates"][1]["delta_top1"] == pytest.approx(-1.0)


def test_unlabelled_dataset_is_skipped(tmp_path):
    f = _features()
    f = ImageFeatures(f.embeds, np.full(len(f.labels), -1), f.indices, {}, None, CLASSES, {})
    section = _run(_ctx(f, tmp_path), study_config())
    assert section.results["skipped"] == "this split has no class labels"


def test_expand_templates():
    got = study.expand_templates(("photo", "a photo of a {}.", "imagenet7"), "x")
    assert got == ["a photo of a {}.", *TEMPLATE_SETS["imagenet7"]]
    assert study.expand_templates(("dataset",), "cifar10") == list(TEMPLATE_SETS["cifar"])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("templates", ("photo", "no placeholder"), "templates entry"),
        ("ensembles", ("a photo of a {}",), "ensembles entry"),
        ("baseline", "a photo", "baseline"),
        ("split", "dev", "split"),
    ],
)
def test_bad_config_values_raise(field, value, match):
    check_bad_config(study_config, study.check_config, field, value, match)


def test_config_variants():
    from configs.prompts import get_config

    c = get_config()
    study.check_config(c.prompts)
    assert c.prompts.ensembles == ("imagenet80",) and "source" in c.prompts.templates
    assert get_config("smoke").prompts.ensembles == ("imagenet7",)
    with pytest.raises(ConfigError, match=r"unknown config variant"):
        get_config("vit_b99")


def test_result_survives_the_json_round_trip(tmp_path):
    result = study.analyse(_ctx(_features(), tmp_path), study_config())
    assert result.reloaded().to_json() == json.loads(json.dumps(result.to_json()))


def test_saved_run_renders_the_planted_answers(tmp_path):
    """results.json, metrics.csv and report.md of a planted run, the report drawn by the
    runner from the saved files alone (as `experiments.report` does)."""
    from configs.prompts import get_config
    from jaxclip.report import write_results
    from jaxclip.studies.runner import render_run

    config = get_config()
    config.model, config.dataset = "planted", "planted"
    config.prompts.templates = ("a photo of a {}.", SHIFTED, BROKEN)
    config.prompts.ensembles = ()
    feats = _features()
    result = study.analyse(_ctx(feats, tmp_path / "figs"), config.prompts)
    entry = result.to_json()
    results = {"config": config.to_dict(), "model": {"name": "planted"}, "prompts": entry}
    write_results(tmp_path, results)
    render_run(tmp_path, timings={"prompts": 1.0})
    stored = json.loads((tmp_path / "results.json").read_text())["prompts"]
    # Planted: "a photo of a {}." is always right, SHIFTED always wrong, BROKEN loses class 0
    # (1 - 1/C); the ensemble of the three is scored with the weights of `_ensemble`.
    top1 = {r["template"]: r["top1"] for r in stored["templates"]}
    assert top1["a photo of a {}."] == 1.0 and top1[SHIFTED] == 0.0
    assert top1[BROKEN] == pytest.approx(1 - 1 / C)
    listed = [
        np.stack([_embed(t.replace("{}", c)) for c in CLASSES]) for t in config.prompts.templates
    ]
    ens = _accuracy(feats.embeds, feats.labels, _ensemble(listed), 1)
    assert top1["ensemble: the 3 templates above"] == pytest.approx(ens)
    assert stored["best"]["top1"] == 1.0 and stored["worst"] == {"template": SHIFTED, "top1": 0.0}
    by = {r["similarity"]: r for r in stored["similarity"]["variants"]}
    assert by["cosine"]["top1"] == 1.0 and by["dot"]["top1"] == pytest.approx(2 / C)
    csv = (tmp_path / "metrics.csv").read_text()
    assert "prompts/similarity/norms/text_norm_cv" in csv
    md = (tmp_path / "report.md").read_text()
    assert "| a photo of a {}. | 100.00 [100.00, 100.00] | 100.00 [100.00, 100.00] | +0.00 |" in md
    assert f"| {SHIFTED} | 0.00 [0.00, 0.00] |" in md
    assert f"| {BROKEN} | {100 * (1 - 1 / C):.2f} [" in md
    assert "3 of 3 differ from the baseline beyond noise." in md
    assert "gives 25.00 % against 100.00 % for the cosine (+75.00 points for the cosine)" in md
    assert set(check_links(tmp_path, md)) == set(stored["figures"])


def test_end_to_end_smoke(tmp_path, shapes_data_dir):
    """The entry point on the smoke config: the files are written and agree with each other
    (the numbers themselves are checked on planted data above)."""
    from configs.prompts import get_config
    from experiments import prompts as experiment
    from tests.study_fakes import run_smoke

    config, workdir, results = run_smoke(get_config, experiment, tmp_path, shapes_data_dir)
    stored = json.loads((workdir / "results.json").read_text())["prompts"]
    assert stored == json.loads(json.dumps(to_jsonable(results["prompts"])))
    n_single = len(study.expand_templates(config.prompts.templates, config.dataset))
    assert len(stored["templates"]) == n_single + 2  # + imagenet7 ensemble + listed ensemble
    by = {r["similarity"]: r for r in stored["similarity"]["variants"]}
    assert by["cosine"]["top1"] == by["scaled_cosine"]["top1"]  # one positive factor
    md = (workdir / "report.md").read_text()
    assert set(check_links(workdir, md)) == set(stored["figures"])
    best = max(stored["templates"], key=lambda r: r["top1"])
    assert stored["best"] == {"template": best["template"], "top1": best["top1"]}


def _holm_by_hand(p):
    """Holm's step-down adjustment written out in float64 (sorted, scaled, running maximum)."""
    p = np.asarray(p, np.float64)
    order = np.argsort(p, kind="stable")
    out, running = np.empty_like(p), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (len(p) - i) * p[j]))
        out[j] = running
    return out


def test_template_intervals_and_paired_tests_against_scipy(planted_run):
    from scipy import stats

    from jaxclip.analysis import bootstrap

    _, feats, section = planted_run
    res = section.results
    rows = {r["template"]: r for r in res["templates"]}
    n = len(feats.labels)
    # top-1 interval of the broken template (70 of 80 right): numpy's binomial draws, seed 0
    rng = np.random.default_rng(0)
    lo, hi = bootstrap.percentile_interval(rng.binomial(n, 70 / n, 10_000) / n)
    assert rows[BROKEN]["top1_ci"] == {"value": 1 - 1 / C, "ci_low": lo, "ci_high": hi, "n": n}
    assert rows["a photo of a {}."]["top1_ci"]["ci_low"] == 1.0  # every resample is all right
    comps = {c["a"]: c for c in res["comparisons"]}
    assert set(comps) == set(rows) - {"a photo of a {}."}
    assert all(c["b"] == "a photo of a {}." for c in comps.values())
    # McNemar: the broken template loses class 0's 10 images and wins none; shifted loses all
    p = {t: 1.0 for t in comps}
    p[BROKEN] = stats.binomtest(0, PER_CLASS, 0.5).pvalue
    p[SHIFTED] = stats.binomtest(0, n, 0.5).pvalue
    names = list(comps)
    np.testing.assert_allclose([comps[t]["p_value"] for t in names], [p[t] for t in names])
    holm = dict(zip(names, _holm_by_hand([p[t] for t in names])))
    for t in names:
        assert comps[t]["p_holm"] == pytest.approx(holm[t], rel=1e-12)
        assert comps[t]["distinguishable"] == (holm[t] <= 0.05)
    assert comps[BROKEN]["distinguishable"] and comps[SHIFTED]["distinguishable"]
    assert comps[BROKEN]["difference"] == pytest.approx(-1 / C)
    assert comps[SHIFTED]["ci_low"] == comps[SHIFTED]["ci_high"] == -1.0
    # the paired interval of the broken template: numpy's multinomial draws of the four cells
    g = np.random.default_rng(0)
    cells = np.array([n - PER_CLASS, 0, PER_CLASS, 0]) / n
    d = [(c[1] - c[2]) / n for c in g.multinomial(n, cells, 10_000)]
    assert (comps[BROKEN]["ci_low"], comps[BROKEN]["ci_high"]) == bootstrap.percentile_interval(
        np.array(d)
    )
    cmp = res["similarity"]["comparison"]
    assert (cmp["a"], cmp["b"], cmp["discordant_a"], cmp["discordant_b"]) == (
        "cosine",
        "dot",
        n - 2 * PER_CLASS,
        0,
    )
    md = section.report.markdown()
    cell = f"{100 * (1 - 1 / C):.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"
    assert f"| {BROKEN} | {cell} |" in md
    assert '"{}": -12.50 points' in md and "distinguishable from noise (Holm p = 0.0" in md
    assert f'"{IRRELEVANT_TEMPLATE[:59]}' in md
    assert "cosine vs dot: +75.00 points" in md


def test_comparison_sentences_follow_the_numbers(tmp_path):
    # Two images per class: the broken template now loses only 2 images -> McNemar p = 0.5,
    # which no correction makes significant; the sentence must say so.
    feats = _features()
    keep = np.concatenate([np.flatnonzero(feats.labels == c)[:2] for c in range(C)])
    small = ImageFeatures(feats.embeds[keep], feats.labels[keep], np.arange(keep.size), {},
                          None, CLASSES, {})  # fmt: skip
    ran = _run(_ctx(small, tmp_path), study_config())
    comps = {c["a"]: c for c in ran.results["comparisons"]}
    assert comps[BROKEN]["p_value"] == pytest.approx(0.5)
    assert not comps[BROKEN]["distinguishable"]
    assert comps[SHIFTED]["distinguishable"]  # 16 of 16 lost: p = 2^-15
    md = ran.report.markdown()
    assert '"{}": -12.50 points' in md
    sentence = next(s for s in md.split("; ") if s.startswith('"{}": -12.50 points'))
    assert "not distinguishable from noise" in sentence
