"""Geometry bootstrap intervals against a float64 numpy loop over the same index rows."""

import numpy as np
import pytest

from jaxclip.analysis import bootstrap
from jaxclip.analysis import geometry as geo
from jaxclip.analysis.geometry_intervals import geometry_intervals, resampled_geometry
from jaxclip.errors import UserValueError


def _embeddings(seed=0, n=60, d=16, texts_per_image=(1, 3)):
    rng = np.random.default_rng(seed)
    image = rng.normal(0.3, 1.0, (n, d)) * rng.uniform(0.2, 2.0, d)
    per = rng.integers(texts_per_image[0], texts_per_image[1] + 1, n)
    owner = np.repeat(np.arange(n), per)
    text = rng.normal(-0.2, 0.7, (len(owner), d)) + 0.3 * image[owner]
    return image, text, owner


def _reference(image, text, owner, rows):
    """Each statistic recomputed in float64 from the resampled images and their texts."""
    out = {k: [] for k in ("image.mean_norm", "image.std_norm", "image.ratio", "text.mean_norm",
                           "text.std_norm", "text.ratio", "gap.norm", "gap.cos_means",
                           "gap.normalised_norm")}  # fmt: skip
    for r in rows:
        xi = image[r]
        xt = np.repeat(text, np.bincount(r, minlength=len(image))[owner], axis=0)
        for side, x in (("image", xi), ("text", xt)):
            m = geo.modality_moments(x)
            out[f"{side}.mean_norm"].append(m.mean_norm)
            out[f"{side}.std_norm"].append(m.std_norm)
            out[f"{side}.ratio"].append(m.ratio)
        g = geo.modality_gap(xi, xt)
        out["gap.norm"].append(g.norm)
        out["gap.cos_means"].append(g.cos_means)
        out["gap.normalised_norm"].append(g.normalised_norm)
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("texts_per_image", [(1, 1), (1, 3)])
def test_resamples_equal_a_float64_loop_over_the_same_rows(texts_per_image):
    image, text, owner = _embeddings(texts_per_image=texts_per_image)
    chunk = 7  # several chunks, the last one partial
    got = resampled_geometry(image, text, owner, num_resamples=40, seed=3, chunk=chunk)
    rows = np.concatenate(list(bootstrap.resample_indices(len(image), 40, 3, chunk)))
    want = _reference(image, text, owner, rows)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=2e-6, err_msg=k)


def test_intervals_hold_the_study_values_and_bracket_them():
    image, text, owner = _embeddings(seed=1, n=200)
    ci = geometry_intervals(image, text, owner, num_resamples=500, seed=0)
    m = geo.modality_moments(image)
    g = geo.modality_gap(image, text)
    assert ci["moments_ci"]["image"]["ratio"]["value"] == m.ratio
    assert ci["gap_ci"]["norm"]["value"] == g.norm
    for entry in [*ci["moments_ci"]["image"].values(), *ci["moments_ci"]["text"].values(),
                  *ci["gap_ci"].values()]:  # fmt: skip
        assert entry["n"] == 200
        assert entry["ci_low"] < entry["value"] < entry["ci_high"]
    # Percentiles of the same resamples as `resampled_geometry` (numpy's linear rule).
    s = resampled_geometry(image, text, owner, num_resamples=500, seed=0)["gap.cos_means"]
    lo, hi = np.percentile(s, [2.5, 97.5])
    assert ci["gap_ci"]["cos_means"]["ci_low"] == pytest.approx(lo, abs=0)
    assert ci["gap_ci"]["cos_means"]["ci_high"] == pytest.approx(hi, abs=0)


def test_interval_width_shrinks_like_one_over_sqrt_n():
    small = geometry_intervals(*_embeddings(seed=2, n=100), num_resamples=1000, seed=0)
    large = geometry_intervals(*_embeddings(seed=2, n=1600), num_resamples=1000, seed=0)

    def width(c):
        return c["gap_ci"]["norm"]["ci_high"] - c["gap_ci"]["norm"]["ci_low"]

    assert 2.5 < width(small) / width(large) < 6.5  # sqrt(16) = 4


def test_bad_owner_is_one_clear_error():
    image, text, owner = _embeddings()
    with pytest.raises(UserValueError, match="owner has shape"):
        resampled_geometry(image, text, owner[:-1], num_resamples=10)
    with pytest.raises(UserValueError, match="num_resamples"):
        resampled_geometry(image, text, owner, num_resamples=1)
