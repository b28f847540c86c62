"""Tests for the geometry study (jaxclip/studies/geometry.py and its render modules,
configs/geometry.py, experiments/geometry.py): planted double-ellipsoid embeddings with known
answers, checked against independent NumPy / SciPy computations, and an end-to-end smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from configs.geometry import study_config
from jaxclip.config_args import ConfigError
from jaxclip.features.extract import ImageFeatures
from jaxclip.report import to_jsonable
from jaxclip.studies import geometry as study
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_smoke, run_study

D = 32
SEP = (5, 20)  # planted separating features: image/text means ±5 and ∓3, noise in [-1, 1]
N_IMAGES, N_CAPS = 120, 2
SCALE = 20.0


def _planted(seed: int = 0):
    """Images and captions on two shifted, tilted Gaussian shells with a shared latent per pair.

    image_j = m_i + A z_j + ε, caption_jc = m_t + A z_j + ε' (so matched pairs agree), where the
    means differ only on features 5 and 20 and A never touches those two features. On those
    two the noise is uniform in [-1, 1], so images (5 ± 1, -3 ± 1) and texts (-5 ± 1, 3 ± 1)
    are linearly separable by construction, with a margin.
    """
    rng = np.random.default_rng(seed)
    others = [k for k in range(D) if k not in SEP]
    common = np.zeros(D)
    common[others[:3]] = [6.0, -4.0, 3.0]
    m_i, m_t = common.copy(), common.copy()
    m_i[5], m_t[5] = 5.0, -5.0
    m_i[20], m_t[20] = -3.0, 3.0
    a = np.zeros((D, D))
    q, _ = np.linalg.qr(rng.normal(size=(len(others), len(others))))
    a[np.ix_(others, others)] = q * np.linspace(0.5, 2.0, len(others))
    z = rng.normal(size=(N_IMAGES, D))
    image = m_i + z @ a.T + 0.3 * rng.normal(size=(N_IMAGES, D))
    image[:, list(SEP)] = m_i[list(SEP)] + rng.uniform(-1, 1, size=(N_IMAGES, 2))
    texts, table = [], {}
    for j in range(N_IMAGES):
        caps = []
        for c in range(N_CAPS):
            t = m_t + z[j] @ a.T + 0.3 * rng.normal(size=D)
            t[list(SEP)] = m_t[list(SEP)] + rng.uniform(-1, 1, size=2)
            name = f"caption {c} of image {j}"
            table[name] = t.astype(np.float32)
            caps.append(name)
        texts.append(caps)
    return image.astype(np.float32), texts, table


def _ctx(features, table, workdir, model="planted") -> FakeContext:
    """The test split `features`; a text is embedded as its row of `table` (logit scale 20)."""
    return FakeContext(features, workdir, embed=table.__getitem__, model=model,
                       dataset="coco_captions", logit_scale=SCALE)  # fmt: skip


def _features(image, captions=None, labels=None, classnames=()):
    n = len(image)
    return ImageFeatures(
        embeds=image,
        labels=np.full(n, -1) if labels is None else np.asarray(labels),
        indices=np.arange(n),
        attributes={},
        captions=captions,
        classnames=tuple(classnames),
        meta={"dataset": "planted"},
    )


def _cfg(**kw):
    cfg = study_config()
    cfg.max_scatter_points = 300
    cfg.update(kw)
    return cfg


def _np_loss(v, t, s):
    """Symmetric InfoNCE in float64 (Radford et al. 2021): ½(mean row CE + mean column CE)."""
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    logits = s * v.astype(np.float64) @ t.astype(np.float64).T
    diag = np.diag(logits)
    i2t = logsumexp(logits, axis=1) - diag
    t2i = logsumexp(logits, axis=0) - diag
    return 0.5 * (i2t.mean() + t2i.mean()), -diag.mean()


def _np_conformity(x):
    """Brute force: mean cosine to every other row."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = xn.astype(np.float64) @ xn.astype(np.float64).T
    return (g.sum(1) - np.diag(g)) / (len(x) - 1)


@pytest.fixture(scope="module")
def planted():
    return _planted()


@pytest.fixture(scope="module")
def first_caption_run(planted, tmp_path_factory):
    image, caps, table = planted
    # Named like the paper's setting, so its numbers must be printed beside ours.
    workdir = tmp_path_factory.mktemp("geo")
    ctx = _ctx(_features(image, captions=caps), table, workdir, model="vit_b32")
    entry, section = run_study(study.STUDY, ctx, _cfg(), "geometry")
    return ctx, entry, section


def _run(ctx, cfg):
    """(results.json entry, report markdown) of the study on `ctx`."""
    entry, section = run_study(study.STUDY, ctx, cfg, "geometry")
    return entry, section.report.markdown()


def test_planted_separating_features_top_the_table(planted, first_caption_run):
    image, caps, table = planted
    _, results, _ = first_caption_run
    text = np.stack([table[c[0]] for c in caps]).astype(np.float64)
    top = results["separability"]["top"]
    assert {top[0]["feature"], top[1]["feature"]} == set(SEP)
    x = image.astype(np.float64)
    by_hand = np.abs(x.mean(0) - text.mean(0)) / np.sqrt(x.var(0) + text.var(0))
    for row in top:
        np.testing.assert_allclose(row["sep"], by_hand[row["feature"]], rtol=1e-6)
    assert top[2]["sep"] < 0.5  # nothing else separates
    assert results["separability"]["n_features_sep_gt_1"] == 2
    assert results["svm"]["accuracy"] == 1.0
    assert set(results["svm"]["features"]) == set(SEP)
    # moments and thin shell against NumPy
    for name, arr in (("image", x), ("text", text)):
        mom = results["moments"][name]
        np.testing.assert_allclose(mom["mean_norm"], np.linalg.norm(arr.mean(0)), rtol=1e-6)
        np.testing.assert_allclose(
            mom["ratio"], np.linalg.norm(arr.mean(0)) / np.linalg.norm(arr.std(0)), rtol=1e-6
        )
        norms = np.linalg.norm(arr - arr.mean(0), axis=1)
        shell = results["thin_shell"][name]
        np.testing.assert_allclose(shell["mean_norm"], norms.mean(), rtol=1e-6)
        np.testing.assert_allclose(shell["sqrt_trace"], np.sqrt(np.trace(np.cov(arr.T, bias=True))),
                                   rtol=1e-6)  # fmt: skip
    gap = results["gap"]["norm"]
    np.testing.assert_allclose(gap, np.linalg.norm(x.mean(0) - text.mean(0)), rtol=1e-6)
    # 95 % bootstrap intervals over the images: point values are the study's own numbers
    for name in ("image", "text"):
        for key in ("mean_norm", "std_norm", "ratio"):
            ci = results["moments_ci"][name][key]
            assert ci["value"] == results["moments"][name][key]
            assert ci["ci_low"] <= ci["value"] <= ci["ci_high"] and ci["n"] == len(image)
    for key in ("norm", "cos_means", "normalised_norm"):
        ci = results["gap_ci"][key]
        assert ci["value"] == results["gap"][key] and ci["ci_low"] <= ci["value"] <= ci["ci_high"]


def test_loss_sweep_both_sides_against_numpy(planted, first_caption_run):
    image, caps, table = planted
    _, results, _ = first_caption_run
    text = np.stack([table[c[0]] for c in caps]).astype(np.float64)
    x = image.astype(np.float64)
    loss = results["loss"]
    alphas = np.asarray(loss["alphas"])
    assert len(alphas) == 21 and 0.0 in alphas and alphas[0] == -1.0 and alphas[-1] == 1.0
    assert loss["logit_scale"] == SCALE
    for side in ("image", "text"):
        curves = loss[side]["curves"]
        for key in ("total", "alignment", "uniformity", "correct", "wrong"):
            assert len(curves[key]) == len(alphas), (side, key)
        # float32: alignment and uniformity are ≈ ∓s = ∓20, the total their small difference
        np.testing.assert_allclose(
            np.add(curves["alignment"], curves["uniformity"]), curves["total"], rtol=1e-5,
            atol=1e-5,
        )  # fmt: skip
        for k in (0, 10, 20):  # α = -1, 0, 1
            a = alphas[k]
            v = x - a * x.mean(0) if side == "image" else x
            t = text - a * text.mean(0) if side == "text" else text
            total, align = _np_loss(v, t, SCALE)
            np.testing.assert_allclose(curves["total"][k], total, rtol=2e-4, atol=2e-4)
            np.testing.assert_allclose(curves["alignment"][k], align, rtol=2e-4, atol=2e-4)
        summ = loss[side]["summary"]
        assert summ["total_at_0"] == curves["total"][10]
        assert summ["total_min"] == min(curves["total"])
        assert summ["alpha_min_total"] == alphas[int(np.argmin(curves["total"]))]


def test_conformity_and_kl_against_brute_force(planted, first_caption_run):
    image, caps, table = planted
    _, results, _ = first_caption_run
    text = np.stack([table[c[0]] for c in caps])
    res = results["conformity"]
    for name, arr in (("image", image), ("text", text)):
        c = _np_conformity(arr)
        norm = res[name]["normalised"]
        assert norm["pearson"] > 1 - 1e-9
        np.testing.assert_allclose(norm["a"], norm["a_exact"], rtol=1e-6)
        n = len(arr)
        xn = arr / np.linalg.norm(arr, axis=1, keepdims=True)
        np.testing.assert_allclose(norm["a_exact"], n * np.linalg.norm(xn.mean(0)) / (n - 1),
                                   rtol=1e-5)  # fmt: skip
        # the paper's estimate: least squares of C on cos(v, raw mean), by scipy
        m = arr.mean(0)
        cos = xn @ (m / np.linalg.norm(m))
        fit = stats.linregress(cos, c)
        np.testing.assert_allclose(res[name]["raw"]["a"], fit.slope, rtol=1e-4)
        np.testing.assert_allclose(res[name]["raw"]["pearson"], fit.rvalue, rtol=1e-6)
        np.testing.assert_allclose(res[name]["mean"], c.mean(), rtol=1e-5)
    # KL at α = 0: shared-bin histograms of the brute-force conformities, additive smoothing 0.5
    kl = results["kl"]
    ci, ct = _np_conformity(image), _np_conformity(text)
    bins = study_config().kl_bins
    lo, hi = min(ci.min(), ct.min()), max(ci.max(), ct.max())
    p = np.histogram(ci, bins=bins, range=(lo, hi))[0] + 0.5
    q = np.histogram(ct, bins=bins, range=(lo, hi))[0] + 0.5
    np.testing.assert_allclose(kl["image"]["kl_at_0"], stats.entropy(p, q), rtol=1e-3)
    for side in ("image", "text"):
        assert len(kl[side]["kl_image_text"]) == 21
        assert kl[side]["kl_min"] == min(kl[side]["kl_image_text"])
    ex = res["examples"]
    assert len(ex["most"]) == len(ex["least"]) == study_config().examples
    assert ex["most"][0]["conformity"] >= ex["least"][0]["conformity"]


def test_report_links_and_plots(first_caption_run):
    ctx, results, section = first_caption_run
    md = section.report.markdown()
    links = check_links(ctx.workdir, md)
    assert set(links) == set(results["figures"])
    for name in (
        "geometry_feature_histograms.png",
        "geometry_svm.png",
        "geometry_thin_shell.png",
        "geometry_variance_spectrum.png",
        "geometry_odd.png",
        "geometry_loss_image.png",
        "geometry_loss_text.png",
        "geometry_conformity_fit.png",
        "geometry_conformity_distributions.png",
        "geometry_kl_image.png",
        "geometry_kl_text.png",
    ):
        assert name in links, name
    assert "C_i = (x_i·S − 1)/(N − 1)" in md
    assert "its first caption" in md
    assert results["paper"]["ratio_image"] == 0.94
    assert "| modality | ‖m‖ | ‖σ‖ = sqrt(tr C) | ‖m‖/‖σ‖ | paper |" in md
    ci = results["gap_ci"]["norm"]
    assert f"{ci['value']:.4f} [{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]" in md
    assert f"bootstrap intervals over the {results['pairs']['n_images']} images" in md
    assert "so its numbers are printed beside ours" in md
    # the planted features separate the modalities exactly: 100 % against 50 % chance
    assert f"| {SEP[0]}, {SEP[1]} | 100.00 | 50.00 | 100.00 |" in md
    assert "| SVM accuracy on the 2 best features | 100.00 % | 100 % |" in md
    json.dumps(to_jsonable(results), allow_nan=False)


def test_all_captions_repeat_images_in_the_loss(planted, tmp_path):
    image, caps, table = planted
    ctx = _ctx(_features(image, captions=caps), table, tmp_path)
    results, md = _run(ctx, _cfg(caption="all", num_alphas=3, sides=("image",)))
    pairs = results["pairs"]
    assert (pairs["n_images"], pairs["n_texts"], pairs["n_pairs"]) == (
        N_IMAGES, N_IMAGES * N_CAPS, N_IMAGES * N_CAPS,
    )  # fmt: skip
    text = np.stack([table[c] for cc in caps for c in cc])
    v = np.repeat(image, N_CAPS, axis=0)
    total, _ = _np_loss(v, text, SCALE)
    k = results["loss"]["alphas"].index(0.0)
    np.testing.assert_allclose(results["loss"]["image"]["curves"]["total"][k], total, rtol=2e-4)
    assert "text" not in results["loss"]
    assert results["figures"].count("geometry_loss_image.png") == 1
    assert "geometry_loss_text.png" not in results["figures"]
    assert "once per caption" in md
    # images are the resampled unit, their captions go with them
    assert results["gap_ci"]["norm"]["n"] == N_IMAGES
    assert "every caption is paired with its image" in md


def test_caption_index_and_subset_notes(planted, tmp_path):
    image, caps, table = planted
    caps = [list(c) for c in caps]
    caps[7] = caps[7][:1]  # image 7 has no caption 1: it is left out
    ctx = _ctx(_features(image, captions=caps), table, tmp_path)
    results, md = _run(ctx, _cfg(caption="1", num_alphas=3))
    assert results["pairs"]["n_images"] == N_IMAGES - 1
    assert results["pairs"]["caption"] == "1"
    assert "each image is paired with its caption number 1 (0-based)" in md
    assert "Note: 1 images without such a caption are left out." in md
    # only caption 1 of each image kept was embedded, each once
    assert ctx.text_calls == [[caps[j][1] for j in range(N_IMAGES) if j != 7]]
    results, md = _run(ctx, _cfg(max_pairs=50, num_alphas=3))
    assert results["pairs"]["n_images"] == results["pairs"]["n_pairs"] == 50
    assert f"Note: a seeded random subset of 50 of the {N_IMAGES} images is used." in md


def test_class_prompts_without_captions(planted, tmp_path):
    image, _, _ = planted
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=N_IMAGES)
    labels[:3] = -1  # unlabelled rows are left out
    names = ("cat", "dog", "owl", "fox")
    table = {f"a photo of a {n}.": rng.normal(size=D).astype(np.float32) + 3 for n in names}
    ctx = _ctx(_features(image, labels=labels, classnames=names), table, tmp_path)
    results, md = _run(ctx, _cfg(num_alphas=3))
    # each distinct prompt is embedded once, in one call
    assert len(ctx.text_calls) == 1 and sorted(ctx.text_calls[0]) == sorted(table)
    pairs = results["pairs"]
    assert pairs["source"] == "class_prompts" and pairs["caption"] is None
    assert pairs["n_distinct_texts"] == 4
    assert pairs["n_pairs"] == N_IMAGES - 3
    assert '"a photo of a {classname}."' in md and "no captions" in md
    assert "has only 4 distinct points" in md
    assert "3 images without a label are left out" in md
    assert "Some texts repeat here" in md
    assert "examples" not in results["conformity"]
    assert "paper" not in results  # model "planted" is not the paper's
    assert "not expected to match" in md
    check_links(tmp_path, md)


def test_nothing_to_pair_skips_with_a_note(planted, tmp_path):
    image, _, _ = planted
    ctx = _ctx(_features(image), {}, tmp_path)
    results, md = _run(ctx, _cfg())
    assert results == {
        "skipped": "this split has neither captions nor labels, so images cannot be paired "
        "with texts"
    }
    assert "Skipped: this split has neither captions nor labels" in md
    # one class: a single distinct text, nothing to compare
    table = {"a photo of a cat.": np.ones(D, np.float32)}
    feats = _features(image, labels=np.zeros(len(image), int), classnames=("cat",))
    results, md = _run(_ctx(feats, table, tmp_path), _cfg())
    assert list(results) == ["pairs", "skipped"]
    assert (
        results["skipped"] == f"need at least 2 images and 2 distinct texts, got {N_IMAGES} and 1"
    )
    assert f"Data: {N_IMAGES} images and {N_IMAGES} texts" in md
    assert "Skipped: need at least 2 images" in md
    assert not list(tmp_path.glob("*.png"))


def test_text_dimension_mismatch_is_rejected(planted, tmp_path):
    image, caps, _ = planted
    table = {c: np.ones(D + 1, np.float32) for cc in caps for c in cc}
    ctx = _ctx(_features(image, captions=caps), table, tmp_path)
    with pytest.raises(ValueError, match=r"differ in D"):
        study.analyse(ctx, _cfg())


def test_result_survives_its_json_form(first_caption_run, planted, tmp_path):
    image, caps, table = planted
    ctx = _ctx(_features(image, captions=caps), table, tmp_path)
    result = study.analyse(ctx, _cfg(num_alphas=3))
    back = result.reloaded()
    assert back.to_json() == json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert back.arrays().keys() == result.arrays().keys()
    assert {"svm_points", "conformity_image", "sep_sorted", "odd"} <= set(result.arrays())
    for name, arr in result.arrays().items():
        np.testing.assert_array_equal(back.arrays()[name], arr)
    # the figures' arrays hold what was fitted: the SVM points are (image, text) rows of the
    # two planted features, the conformities those of the NumPy brute force
    feats = result.svm["features"]
    pts, lab = result.svm_points, result.svm_labels
    assert set(feats) == set(SEP) and pts.shape == (240, 2) and lab.sum() == N_IMAGES
    assert np.isin(pts[lab == 1][:, 0], image[:, feats[0]]).all()
    np.testing.assert_allclose(result.conformity_image, _np_conformity(image), atol=1e-6)
    skipped = study.analyse(_ctx(_features(image), {}, tmp_path), _cfg())
    assert skipped.reloaded().to_json() == skipped.to_json() == {"skipped": skipped.skipped}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("caption", "second", "caption"),
        ("kl_method", "kde", "kl_method"),
        ("sides", ("image", "audio"), "sides"),
        ("num_alphas", 1, "num_alphas"),
        ("alpha_min", 2.0, "alpha_min"),
        ("class_template", "a photo", "class_template"),
    ],
)
def test_bad_config_values_raise(field, value, match):
    check_bad_config(study_config, study.check_config, field, value, match)


def test_alpha_grid_always_holds_zero():
    cfg = study_config()
    cfg.num_alphas = 4  # -1, -1/3, 1/3, 1: 0 is added
    grid = study.alpha_grid(cfg)
    assert len(grid) == 5 and 0.0 in grid and not np.signbit(grid[grid == 0]).any()
    np.testing.assert_allclose(study.alpha_grid(study_config()), np.linspace(-1, 1, 21),
                               atol=1e-12)  # fmt: skip


def test_config_variants():
    from configs.geometry import get_config

    c = get_config()
    assert c.geometry.num_alphas == 21 and c.geometry.logit_scale == 0.0
    study.check_config(c.geometry)
    c = get_config("vit_b32,coco")
    assert (c.model, c.dataset) == ("vit_b32", "coco_captions")
    smoke = get_config("smoke")
    assert smoke.smoke and smoke.geometry.num_alphas < c.geometry.num_alphas
    with pytest.raises(ConfigError, match=r"unknown config variant 'nope'.*vit_b32.*smoke"):
        get_config("nope")


def test_end_to_end_smoke(tmp_path):
    from configs.geometry import get_config
    from experiments import geometry as experiment

    config, workdir, results = run_smoke(get_config, experiment, tmp_path, tmp_path / "data")
    for name in ("results.json", "metrics.csv", "report.md"):
        assert (workdir / name).is_file(), name
    stored = json.loads((workdir / "results.json").read_text())
    geo = stored["geometry"]
    assert geo == json.loads(json.dumps(to_jsonable(results["geometry"])))
    assert geo["pairs"]["source"] == "captions"
    assert geo["pairs"]["n_images"] == geo["pairs"]["n_pairs"] == config.max_examples
    # 64 images and 64 captions: chance is exactly one half, the training accuracy a whole
    # number of the 128 points, on the two features ranked first by Sep
    assert geo["svm"]["chance"] == 0.5
    assert (128 * geo["svm"]["accuracy"]).is_integer()
    top = geo["separability"]["top"]
    assert geo["svm"]["features"] == [top[0]["feature"], top[1]["feature"]]
    assert top[0]["sep"] >= top[1]["sep"] >= top[2]["sep"]
    assert geo["conformity"]["image"]["normalised"]["pearson"] > 1 - 1e-6
    assert geo["loss"]["logit_scale"] > 0
    for side in ("image", "text"):
        assert np.isfinite(geo["loss"][side]["summary"]["total_at_0"])
        assert len(geo["kl"][side]["kl_image_text"]) == config.geometry.num_alphas
    md = (workdir / "report.md").read_text()
    links = check_links(workdir, md)
    assert links == geo["figures"] == study.figure_names(("image", "text"))
    # a re-render from the saved files alone gives the same report
    from jaxclip.studies.runner import render_run

    render_run(workdir)
    assert (workdir / "report.md").read_text() == md
    metrics = (workdir / "metrics.csv").read_text()
    assert "geometry/loss/image/summary/total_at_0" in metrics
