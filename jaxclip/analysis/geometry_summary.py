"""The double-ellipsoid analyses summarised as results: JSON-ready numbers plus plot arrays.

Each function takes raw embeddings (images (N_i, D), texts (N_t, D); pairs where the loss needs
them), calls the primitives of `jaxclip.analysis.geometry` / `.conformity`, and returns what a
report of that part needs: a `Summary` whose `entry` is a dict of plain numbers and lists (a
results.json entry) and whose `arrays` hold what only a figure needs (histogram values, scatter
points, spectra). Nothing here draws or writes.

Reference: M. Y. Levi, G. Gilboa, "The Double-Ellipsoid Geometry of CLIP", 2025.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxclip.analysis import conformity as conf
from jaxclip.analysis import geometry as geo

__all__ = [
    "LOSS_CURVES",
    "SIGMOID_LOSS_CURVES",
    "Summary",
    "conformity_summary",
    "gap_summary",
    "kl_summary",
    "loss_summary",
    "moments_summary",
    "separability_summary",
    "shell_summary",
    "spectrum_summary",
    "svm_summary",
]

# The loss parts kept per α (`jaxclip.losses.ClipLossParts` fields and R@1 of both directions).
LOSS_CURVES = (
    "total",
    "alignment",
    "uniformity",
    "correct",
    "wrong",
    "n_correct",
    "n_wrong",
    "accuracy_i2t",
    "accuracy_t2i",
)


# The sigmoid loss's parts kept per α (`jaxclip.losses.SigmoidLossParts` fields).
SIGMOID_LOSS_CURVES = (
    "total",
    "positive",
    "negative",
    "mean_positive_logit",
    "mean_negative_logit",
    "accuracy",
)


class Summary(NamedTuple):
    """One part's results: `entry` (JSON-ready) and `arrays` (for its figures only)."""

    entry: dict[str, Any]
    arrays: dict[str, np.ndarray]


def moments_summary(image: np.ndarray, text: np.ndarray) -> dict[str, Any]:
    """‖m‖, ‖σ‖ and ‖m‖/‖σ‖ per modality (`geo.modality_moments`), keyed "image", "text"."""
    out = {}
    for name, x in (("image", image), ("text", text)):
        m = geo.modality_moments(x)
        out[name] = {"mean_norm": m.mean_norm, "std_norm": m.std_norm, "ratio": m.ratio}
    return out


def separability_summary(
    image: np.ndarray,
    text: np.ndarray,
    *,
    top_k: int,
    hist_features: int,
    kl_bins: int,
    smoothing: float,
) -> Summary:
    """Sep(l) of every feature (Eq. 5): the `top_k` most separating features and how many
    have Sep > 1.

    Each row of `entry["top"]` holds the feature's Sep, per-modality mean and std, and the
    histogram KL(image ‖ text) on `kl_bins` shared bins with additive `smoothing`. Arrays:
    `sep_sorted` (D,) descending; `hist_image` (N_i, h), `hist_text` (N_t, h) the values of the
    h = min(hist_features, top_k) most separating features, most separating first.
    """
    sep = geo.feature_separability(image, text)
    k = min(int(top_k), image.shape[1])
    top = []
    for rank, f in enumerate(sep.order[:k], start=1):
        f = int(f)
        top.append(
            {
                "rank": rank,
                "feature": f,
                "sep": float(sep.sep[f]),
                "mean_image": float(sep.mean_image[f]),
                "mean_text": float(sep.mean_text[f]),
                "std_image": float(np.sqrt(sep.var_image[f])),
                "std_text": float(np.sqrt(sep.var_text[f])),
                "kl_image_text": geo.histogram_kl(
                    image[:, f], text[:, f], bins=int(kl_bins), smoothing=smoothing
                ),
            }
        )
    entry = {"top": top, "n_features_sep_gt_1": int(np.sum(sep.sep > 1.0))}
    hist = [int(f) for f in sep.order[: min(int(hist_features), k)]]
    arrays = {
        "sep_sorted": sep.sep[sep.order],
        "hist_image": np.asarray(image)[:, hist],
        "hist_text": np.asarray(text)[:, hist],
    }
    return Summary(entry, arrays)


def svm_summary(
    image: np.ndarray,
    text: np.ndarray,
    features: tuple[int, int],
    *,
    C: float,
    max_points: int,
    seed: int,
) -> Summary:
    """A linear SVM on two features (`geo.svm_two_features`, Fig. 2) and chance (always the
    larger modality). Arrays: `svm_points` (P, 2), a seeded subsample of at most `max_points`
    points, and `svm_labels` (P,), 1 = image, 0 = text."""
    svm = geo.svm_two_features(
        image, text, features, C=C, max_plot_points=int(max_points), seed=seed
    )
    entry = {
        "features": list(svm.features),
        "accuracy": svm.accuracy,
        "chance": max(len(image), len(text)) / (len(image) + len(text)),
        "C": float(C),
        "coef": svm.coef.tolist(),
        "intercept": svm.intercept,
    }
    return Summary(entry, {"svm_points": svm.points, "svm_labels": svm.labels})


def shell_summary(image: np.ndarray, text: np.ndarray) -> Summary:
    """Thin-shell statistics of the centred norms ‖v − m‖ per modality (Eqs. 3-4) and min/μ, the
    smallest centred norm over the mean one. Arrays: `shell_norms_image`, `shell_norms_text`."""
    entry, arrays = {}, {}
    for name, x in (("image", image), ("text", text)):
        sh = geo.thin_shell(x)
        entry[name] = {
            "mean_norm": sh.mean_norm,
            "var_norm": sh.var_norm,
            "sqrt_trace": sh.sqrt_trace,
            "rel_error": sh.rel_error,
            "min_over_mean": float(sh.norms.min() / sh.mean_norm) if sh.mean_norm > 0 else None,
        }
        arrays[f"shell_norms_{name}"] = sh.norms
    return Summary(entry, arrays)


def _spectrum_entry(sp: geo.VarianceSpectrum, odd: np.ndarray) -> dict[str, Any]:
    fin = odd[np.isfinite(odd)]
    median = np.median(sp.variances)
    return {
        "participation_ratio": sp.participation_ratio,
        "variance_ratio_max_min": sp.variance_ratio,
        "variance_max_over_median": float(sp.variances[0] / median) if median > 0 else None,
        "top_10pct_variance_share": float(
            sp.variances[: max(1, len(sp.variances) // 10)].sum() / sp.variances.sum()
        ),
        "odd_median": float(np.median(fin)) if fin.size else None,
        "odd_mean": float(np.mean(fin)) if fin.size else None,
        "odd_max": float(np.max(fin)) if fin.size else None,
        "odd_fraction_gt_1": float(np.mean(fin > 1.0)) if fin.size else None,
    }


def spectrum_summary(image: np.ndarray, text: np.ndarray) -> Summary:
    """Variance spectrum and off-diagonal dominance ODD (Eq. 6, Fig. 5) per modality.

    Arrays (row 0 images, row 1 texts): `variances` (2, D) per-feature variances sorted
    descending, `eigenvalues` (2, D) of the covariance, `odd` (2, D) ODD of every feature, and
    `distinct_points` (2,) the number of distinct rows (the covariance has rank < D when it is
    at most D).
    """
    entry, rows = {}, {"variances": [], "eigenvalues": [], "odd": [], "distinct_points": []}
    for name, x in (("image", image), ("text", text)):
        cov = geo.covariance(x)
        sp = geo.variance_spectrum(x, cov)
        odd = geo.off_diagonal_dominance(cov)
        entry[name] = _spectrum_entry(sp, odd)
        rows["variances"].append(sp.variances)
        rows["eigenvalues"].append(sp.eigenvalues)
        rows["odd"].append(odd)
        rows["distinct_points"].append(len(np.unique(x, axis=0)))
    return Summary(entry, {k: np.asarray(v) for k, v in rows.items()})


def gap_summary(image: np.ndarray, text: np.ndarray) -> dict[str, float]:
    """The modality gap (`geo.modality_gap`): ‖m_i − m_t‖, cos(m_i, m_t), normalised ‖Δ‖."""
    g = geo.modality_gap(image, text)
    return {"norm": g.norm, "cos_means": g.cos_means, "normalised_norm": g.normalised_norm}


def _curve_summary(alphas: np.ndarray, curves: dict[str, np.ndarray]) -> dict[str, float]:
    i0 = int(np.argmin(np.abs(alphas)))
    tot = curves["total"]
    k = int(np.nanargmin(tot))
    return {
        "alpha_min_total": float(alphas[k]),
        "total_min": float(tot[k]),
        "total_at_0": float(tot[i0]),
        "alignment_at_0": float(curves["alignment"][i0]),
        "uniformity_at_0": float(curves["uniformity"][i0]),
        "correct_at_0": float(curves["correct"][i0]),
        "wrong_at_0": float(curves["wrong"][i0]),
        "alpha_min_alignment": float(alphas[int(np.nanargmin(curves["alignment"]))]),
        "alpha_min_uniformity": float(alphas[int(np.nanargmin(curves["uniformity"]))]),
        "accuracy_i2t_at_0": float(curves["accuracy_i2t"][i0]),
        "accuracy_t2i_at_0": float(curves["accuracy_t2i"][i0]),
    }


def _sigmoid_curve_summary(alphas: np.ndarray, curves: dict[str, np.ndarray]) -> dict[str, float]:
    i0 = int(np.argmin(np.abs(alphas)))
    tot = curves["total"]
    k = int(np.nanargmin(tot))
    return {
        "alpha_min_total": float(alphas[k]),
        "total_min": float(tot[k]),
        "total_at_0": float(tot[i0]),
        "positive_at_0": float(curves["positive"][i0]),
        "negative_at_0": float(curves["negative"][i0]),
        "alpha_min_positive": float(alphas[int(np.nanargmin(curves["positive"]))]),
        "alpha_min_negative": float(alphas[int(np.nanargmin(curves["negative"]))]),
        "accuracy_at_0": float(curves["accuracy"][i0]),
    }


def loss_summary(
    pair_image: np.ndarray,
    pair_text: np.ndarray,
    alphas: np.ndarray,
    sides: Sequence[str],
    *,
    logit_scale: float,
    budget_bytes: int,
    logit_bias: float | None = None,
) -> dict[str, Any]:
    """The model's loss of all pairs as one batch while one modality moves, v' = v − α·m (Eq. 9).

    Without `logit_bias`, CLIP's softmax loss: per shifted side `curves` (every `LOSS_CURVES`
    part per α) and `summary` (the α of the minimal total / alignment / uniformity, and the
    parts at α = 0, the α nearest 0). With a `logit_bias` b (a sigmoid-loss model), SigLIP's
    sigmoid loss on the scores t·cos + b: `SIGMOID_LOSS_CURVES` (total = positive + negative)
    and the α of the minimal total / positive / negative part, with `loss` = "sigmoid" and
    `logit_bias` added to the entry.
    """
    sigmoid = logit_bias is not None
    out: dict[str, Any] = {"alphas": alphas.tolist(), "logit_scale": logit_scale}
    if sigmoid:  # a softmax model's entry keeps the keys it always had
        out.update(loss="sigmoid", logit_bias=float(logit_bias))
    names = SIGMOID_LOSS_CURVES if sigmoid else LOSS_CURVES
    for side in sides:
        parts = geo.alpha_shift_loss_sweep(
            pair_image, pair_text, alphas, side=side, logit_scale=logit_scale,
            logit_bias=logit_bias, budget_bytes=budget_bytes,
        )  # fmt: skip
        curves = {k: np.asarray(getattr(parts, k), np.float64) for k in names}
        summary = _sigmoid_curve_summary if sigmoid else _curve_summary
        out[side] = {
            "curves": {k: v.tolist() for k, v in curves.items()},
            "summary": summary(alphas, curves),
        }
    return out


def _fit_entry(fit: conf.ConformityFit) -> dict[str, float]:
    out = {"a": fit.a, "b": fit.b, "pearson": fit.pearson, "max_abs_error": fit.max_abs_error}
    if fit.mean_kind == "normalised":
        out.update(a_exact=fit.a_exact, b_exact=fit.b_exact)
    return out


def _examples(texts: Sequence[str], c: np.ndarray, k: int) -> dict[str, list[dict]]:
    order = np.argsort(-c, kind="stable")
    seen: dict[str, float] = {}
    for j in order:
        seen.setdefault(texts[int(j)], float(c[int(j)]))
    uniq = list(seen.items())
    k = min(int(k), len(uniq) // 2)
    return {
        "most": [{"caption": t, "conformity": v} for t, v in uniq[:k]],
        "least": [{"caption": t, "conformity": v} for t, v in uniq[::-1][:k]],
    }


def conformity_summary(
    image: np.ndarray,
    text: np.ndarray,
    texts: Sequence[str],
    *,
    examples: int = 0,
    scores: tuple[float, float] | None = None,
) -> Summary:
    """Exact conformity (Eq. 10) and its fits from the raw and the normalised mean (Eq. 11).

    Per modality: n, mean and std of the conformities, and per mean kind the least-squares a,
    b, Pearson and max abs. error (closed-form a, b for the normalised mean). With `examples`
    > 0 also the most and least conforming distinct texts (`texts`, one per text row).
    Arrays per modality: `conformity_<m>` and the cosines `cos_raw_<m>`, `cos_normalised_<m>`.

    `scores` = (t, b) of a sigmoid-loss model adds `scores`: conformity in the model's score
    units, the mean of t·cos + b over the other members, = t·C + b (an affine map of C: the
    Pearson of each fit is unchanged, its a is multiplied by t and its b becomes t·b_fit + b).
    """
    entry: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    est = {}
    for name, x in (("image", image), ("text", text)):
        e = est[name] = conf.conformity_estimate(x)
        entry[name] = {
            "n": len(e.conformity),
            "mean": float(e.conformity.mean()),
            "std": float(e.conformity.std()),
        }
        arrays[f"conformity_{name}"] = e.conformity
        for fit in (e.raw, e.normalised):
            entry[name][fit.mean_kind] = _fit_entry(fit)
            arrays[f"cos_{fit.mean_kind}_{name}"] = fit.cos_to_mean
    if scores is not None:
        t, b = float(scores[0]), float(scores[1])
        entry["scores"] = {"logit_scale": t, "logit_bias": b}
        for name in ("image", "text"):
            c, fit = est[name].conformity, est[name].raw
            entry["scores"][name] = {
                "mean": float(np.mean(t * c + b)),
                "std": float(np.std(t * c)),
                "a": t * float(fit.a),
                "b": t * float(fit.b) + b,
            }
    if examples > 0:
        entry["examples"] = _examples(texts, est["text"].conformity, examples)
    return Summary(entry, arrays)


def kl_summary(
    image: np.ndarray,
    text: np.ndarray,
    alphas: np.ndarray,
    sides: Sequence[str],
    *,
    method: str,
    bins: int,
    smoothing: float,
) -> Summary:
    """KL between the image and text conformity distributions as one modality moves (Fig. 11).

    Per shifted side: both KL directions per α, the α of the minimal KL(image ‖ text) and both
    at α = 0. Arrays: `kl_conformity_image`, `kl_conformity_text`, the conformities at α = 0
    (the same for either side) that the KL compares.
    """
    i0 = int(np.argmin(np.abs(alphas)))
    out: dict[str, Any] = {
        "alphas": alphas.tolist(),
        "method": method,
        "bins": int(bins),
        "smoothing": float(smoothing),
    }
    arrays: dict[str, np.ndarray] = {}
    for side in sides:
        sw = geo.conformity_kl_sweep(
            image, text, alphas, side=side, method=method, bins=int(bins),
            smoothing=float(smoothing),
        )  # fmt: skip
        if not arrays:
            arrays = {
                "kl_conformity_image": np.asarray(sw.image_conformity[i0]),
                "kl_conformity_text": np.asarray(sw.text_conformity[i0]),
            }
        k = int(np.nanargmin(sw.kl_image_text))
        out[side] = {
            "kl_image_text": sw.kl_image_text.tolist(),
            "kl_text_image": sw.kl_text_image.tolist(),
            "alpha_min": float(alphas[k]),
            "kl_min": float(sw.kl_image_text[k]),
            "kl_at_0": float(sw.kl_image_text[i0]),
            "kl_text_image_at_0": float(sw.kl_text_image[i0]),
        }
    return Summary(out, arrays)
