"""Tests for jaxclip.analysis.geometry_summary: each part's results entry and figure arrays on
planted two-modality data, against NumPy computed here."""

import json

import numpy as np
import pytest
from scipy.special import logsumexp

from jaxclip.analysis import geometry_summary as gs

D = 12
SEP = (2, 7)  # image means +4 / -3, text -4 / +3, noise in [-1, 1]: separable by construction


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    n = 200
    base = rng.normal(size=(n, D)) + 2.0
    image = base + 0.2 * rng.normal(size=(n, D))
    text = base + 0.2 * rng.normal(size=(n, D))
    for x, sign in ((image, 1.0), (text, -1.0)):
        x[:, SEP[0]] = sign * 4.0 + rng.uniform(-1, 1, n)
        x[:, SEP[1]] = -sign * 3.0 + rng.uniform(-1, 1, n)
    return image, text


def test_moments_and_gap(planted):
    image, text = planted
    mo = gs.moments_summary(image, text)
    for name, x in (("image", image), ("text", text)):
        np.testing.assert_allclose(mo[name]["mean_norm"], np.linalg.norm(x.mean(0)), rtol=1e-12)
        np.testing.assert_allclose(mo[name]["std_norm"], np.linalg.norm(x.std(0)), rtol=1e-12)
    gap = gs.gap_summary(image, text)
    np.testing.assert_allclose(gap["norm"], np.linalg.norm(image.mean(0) - text.mean(0)))
    json.dumps(mo | {"gap": gap}, allow_nan=False)


def test_separability_and_svm(planted):
    image, text = planted
    sep = gs.separability_summary(image, text, top_k=4, hist_features=2, kl_bins=20, smoothing=0.5)
    top = sep.entry["top"]
    assert [r["feature"] for r in top[:2]] == list(SEP)
    assert [r["rank"] for r in top] == [1, 2, 3, 4]
    assert sep.entry["n_features_sep_gt_1"] == 2
    by_hand = np.abs(image.mean(0) - text.mean(0)) / np.sqrt(image.var(0) + text.var(0))
    np.testing.assert_allclose(sep.arrays["sep_sorted"], np.sort(by_hand)[::-1], rtol=1e-12)
    np.testing.assert_array_equal(sep.arrays["hist_image"], image[:, list(SEP)])
    np.testing.assert_array_equal(sep.arrays["hist_text"], text[:, list(SEP)])
    svm = gs.svm_summary(image, text, SEP, C=1.0, max_points=150, seed=0)
    assert svm.entry["accuracy"] == 1.0 and svm.entry["chance"] == 0.5
    assert svm.entry["features"] == list(SEP) and svm.entry["C"] == 1.0
    pts, lab = svm.arrays["svm_points"], svm.arrays["svm_labels"]
    assert pts.shape == (150, 2) and set(np.unique(lab)) == {0, 1}
    w, b = np.asarray(svm.entry["coef"]), svm.entry["intercept"]
    assert ((pts @ w + b > 0) == (lab == 1)).all()  # the boundary drawn separates the points


def test_shell_and_spectrum(planted):
    image, text = planted
    shell = gs.shell_summary(image, text)
    norms = np.linalg.norm(image - image.mean(0), axis=1)
    np.testing.assert_allclose(shell.arrays["shell_norms_image"], norms, rtol=1e-12)
    np.testing.assert_allclose(shell.entry["image"]["mean_norm"], norms.mean(), rtol=1e-12)
    np.testing.assert_allclose(
        shell.entry["image"]["min_over_mean"], norms.min() / norms.mean(), rtol=1e-12
    )
    spec = gs.spectrum_summary(image, text)
    assert spec.arrays["variances"].shape == spec.arrays["eigenvalues"].shape == (2, D)
    np.testing.assert_allclose(spec.arrays["variances"][1], np.sort(text.var(0))[::-1])
    np.testing.assert_array_equal(spec.arrays["distinct_points"], [200, 200])
    cov = np.cov(image.T, bias=True)
    odd = (np.abs(cov).sum(1) - np.diag(cov)) / np.diag(cov)
    np.testing.assert_allclose(spec.arrays["odd"][0], odd, rtol=1e-10)
    np.testing.assert_allclose(spec.entry["image"]["odd_max"], odd.max(), rtol=1e-10)
    dup = gs.spectrum_summary(np.repeat(image[:3], 2, axis=0), text[:6])
    np.testing.assert_array_equal(dup.arrays["distinct_points"], [3, 6])


def test_loss_summary_against_numpy(planted):
    image, text = planted
    alphas = np.array([-1.0, 0.0, 1.0])
    out = gs.loss_summary(image, text, alphas, ["image"], logit_scale=10.0, budget_bytes=2**20)
    assert list(out) == ["alphas", "logit_scale", "image"]
    curves, summary = out["image"]["curves"], out["image"]["summary"]
    assert list(curves) == list(gs.LOSS_CURVES)
    v = image / np.linalg.norm(image, axis=1, keepdims=True)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = 10.0 * v @ t.T
    d = np.diag(logits)
    total = 0.5 * ((logsumexp(logits, 1) - d).mean() + (logsumexp(logits, 0) - d).mean())
    np.testing.assert_allclose(curves["total"][1], total, rtol=1e-4)
    assert summary["total_at_0"] == curves["total"][1]
    assert summary["alpha_min_total"] == alphas[int(np.argmin(curves["total"]))]


def test_conformity_and_kl(planted):
    image, text = planted
    texts = [f"t{j % 50}" for j in range(len(text))]  # 50 distinct texts, each 4 times
    c = gs.conformity_summary(image, text, texts, examples=3)
    xn = image / np.linalg.norm(image, axis=1, keepdims=True)
    g = xn @ xn.T
    brute = (g.sum(1) - 1.0) / (len(image) - 1)
    np.testing.assert_allclose(c.arrays["conformity_image"], brute, atol=1e-10)
    np.testing.assert_allclose(c.entry["image"]["mean"], brute.mean(), atol=1e-10)
    m = image.mean(0)
    np.testing.assert_allclose(c.arrays["cos_raw_image"], xn @ (m / np.linalg.norm(m)), atol=1e-10)
    assert c.entry["image"]["normalised"]["pearson"] > 1 - 1e-9
    ex = c.entry["examples"]
    assert len(ex["most"]) == len(ex["least"]) == 3
    assert len({e["caption"] for e in ex["most"] + ex["least"]}) == 6  # distinct texts only
    assert "examples" not in gs.conformity_summary(image, text, texts).entry
    alphas = np.array([-0.5, 0.0, 0.5])
    kl = gs.kl_summary(image, text, alphas, ["image", "text"], method="histogram", bins=10,
                       smoothing=0.5)  # fmt: skip
    assert list(kl.entry) == ["alphas", "method", "bins", "smoothing", "image", "text"]
    for side in ("image", "text"):
        s = kl.entry[side]
        assert s["kl_at_0"] == s["kl_image_text"][1] and s["kl_min"] == min(s["kl_image_text"])
    np.testing.assert_allclose(kl.arrays["kl_conformity_image"], brute, atol=1e-5)
