"""Study: the double-ellipsoid geometry of the raw embedding space (Levi & Gilboa 2025).

`analyse` binds the pure analyses of `jaxclip.analysis.geometry_summary` (over
`jaxclip.analysis.geometry`, `.conformity` and `jaxclip.losses`) to one model × dataset; the
report is drawn by `jaxclip.studies.geometry_render` (the "double ellipsoid" paper, Levi & Gilboa 2025):

* modality means ‖m‖, ‖σ‖, ‖m‖/‖σ‖ (paper, COCO ViT-B/32: 0.94 images, 1.03 text), each with
  its 95 % bootstrap interval over the images (`jaxclip.analysis.geometry_intervals`; so are the
  gap's three numbers);
* per-feature separability Sep(l) (Eq. 5), its top-k table, per-modality histograms of the most
  separating features, and a linear SVM on the two best features (Fig. 2);
* thin-shell statistics of the centred vectors (Eqs. 3-4; COCO images 7.5873 vs 7.6007);
* variance spectrum and off-diagonal dominance ODD (Eq. 6, Fig. 5); the modality-gap vector;
* the CLIP loss as one modality is shifted, v' = v − α·m (Eq. 9), split into alignment /
  uniformity and correctly / wrongly matched terms, image side and text side (Fig. 6); for a
  sigmoid-loss model (SigLIP, or a CLIP trained with `loss="sigmoid"`: the context has a
  `logit_bias`) SigLIP's sigmoid loss on the scores t·cos + b, split into its positive
  (matched pairs) and negative (all other pairs) parts;
* conformity and its mean-cosine estimate with the raw and the normalised mean (Eqs. 10-11,
  Fig. 9), and the KL between the image and text conformity distributions vs α (Fig. 11).

Pairs: on a captioned dataset every image of the split is paired with one caption (config
`caption`: "first", an index, or "all" = every caption with its image repeated in the loss); on a
dataset without captions with `class_template` filled with its label's class name. The whole
split is one batch, as the paper does on COCO (the loss sweep streams row blocks).

Reference: M. Y. Levi, G. Gilboa, "The Double-Ellipsoid Geometry of CLIP", 2025.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from jaxclip import progress
from jaxclip.analysis import geometry_summary as gs
from jaxclip.analysis.geometry_intervals import geometry_intervals
from jaxclip.analysis.pairs import PairPlan, Pairs, make_pairs, parse_caption, plan_pairs
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.report.references import GEOMETRY_PAPER, lookup
from jaxclip.studies.context import Context, Study
from jaxclip.studies.geometry_render import render
from jaxclip.studies.result import StudyResult, optional, sidecar
from jaxclip.studies.shared import embed_texts

__all__ = ["STUDY", "GeometryResult", "alpha_grid", "analyse", "check_config", "figure_names"]

NAME = "geometry"
SIDES = ("image", "text")
KL_METHODS = ("histogram", "gaussian")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GeometryResult(StudyResult):
    """The geometry study's results.json entry (fields in its order) and its figures' arrays.

    A split that cannot be paired has `skipped` only; one with fewer than 2 images or 2
    distinct texts has `pairs` (and `paper`) and `skipped`; otherwise every part is set.
    """

    pairs: dict[str, Any] | None = optional()  # source, caption, split, counts, dimension
    paper: dict[str, float] | None = optional()  # published numbers, paper's model × dataset
    skipped: str | None = optional()
    moments: dict[str, Any] | None = optional()
    moments_ci: dict[str, Any] | None = optional()  # side -> statistic -> 95 % interval
    separability: dict[str, Any] | None = optional()
    svm: dict[str, Any] | None = optional()
    thin_shell: dict[str, Any] | None = optional()
    spectrum: dict[str, Any] | None = optional()
    gap: dict[str, float] | None = optional()
    gap_ci: dict[str, Any] | None = optional()  # statistic -> 95 % interval (images resampled)
    loss: dict[str, Any] | None = optional()
    conformity: dict[str, Any] | None = optional()
    kl: dict[str, Any] | None = optional()
    figures: list[str] | None = optional()
    # images in the split, and left after the seeded subset (0-d)
    split_images: np.ndarray | None = sidecar()
    sampled_images: np.ndarray | None = sidecar()
    # `geometry_summary` arrays, for the figures (and the rank note of the spectrum)
    sep_sorted: np.ndarray | None = sidecar()
    hist_image: np.ndarray | None = sidecar()
    hist_text: np.ndarray | None = sidecar()
    svm_points: np.ndarray | None = sidecar()
    svm_labels: np.ndarray | None = sidecar()
    shell_norms_image: np.ndarray | None = sidecar()
    shell_norms_text: np.ndarray | None = sidecar()
    variances: np.ndarray | None = sidecar()
    eigenvalues: np.ndarray | None = sidecar()
    odd: np.ndarray | None = sidecar()
    distinct_points: np.ndarray | None = sidecar()
    conformity_image: np.ndarray | None = sidecar()
    conformity_text: np.ndarray | None = sidecar()
    cos_raw_image: np.ndarray | None = sidecar()
    cos_raw_text: np.ndarray | None = sidecar()
    cos_normalised_image: np.ndarray | None = sidecar()
    cos_normalised_text: np.ndarray | None = sidecar()
    kl_conformity_image: np.ndarray | None = sidecar()
    kl_conformity_text: np.ndarray | None = sidecar()


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
    check_choice("geometry.split", cfg.split, ("train", "test"))
    _caption_choice(cfg.caption)
    check_choice("geometry.kl_method", cfg.kl_method, KL_METHODS)
    sides = tuple(cfg.sides)
    if not sides or any(s not in SIDES for s in sides) or len(set(sides)) != len(sides):
        raise ConfigError(
            f"config.geometry.sides={sides!r} is not valid; use a non-empty subset of {SIDES}"
        )
    if "{}" not in cfg.class_template:
        raise ConfigError(
            f"config.geometry.class_template={cfg.class_template!r} must contain '{{}}'"
        )
    if not cfg.alpha_min < cfg.alpha_max:
        raise ConfigError(
            f"config.geometry.alpha_min={cfg.alpha_min} must be < alpha_max={cfg.alpha_max}"
        )
    for field, lo in (
        ("num_alphas", 2),
        ("top_k", 2),
        ("hist_features", 1),
        ("feature_kl_bins", 1),
        ("kl_bins", 1),
        ("max_scatter_points", 1),
        ("loss_memory_mb", 1),
        ("max_pairs", 0),
        ("examples", 0),
    ):
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.geometry.{field}={cfg[field]} must be >= {lo}")
    for field in ("svm_c",):
        if not cfg[field] > 0:
            raise ConfigError(f"config.geometry.{field}={cfg[field]} must be > 0")
    for field in ("logit_scale", "kl_smoothing"):
        if cfg[field] < 0:
            raise ConfigError(f"config.geometry.{field}={cfg[field]} must be >= 0")


def _caption_choice(value: Any) -> int | str:
    """ "first" -> 0, "3" -> 3, "all" -> "all"; anything else raises ConfigError."""
    try:
        return parse_caption(value)
    except ValueError:
        raise ConfigError(
            f"config.geometry.caption={value!r} is not valid; use 'first', 'all' or a 0-based index"
        ) from None


def alpha_grid(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """`num_alphas` evenly spaced α in [alpha_min, alpha_max], plus α = 0, sorted, unique."""
    grid = np.linspace(cfg.alpha_min, cfg.alpha_max, int(cfg.num_alphas))
    grid = np.unique(np.round(np.concatenate([grid, [0.0]]), 10))
    return grid + 0.0  # no -0.0


def figure_names(sides: Any) -> list[str]:
    """The figures of a full run, in report order (results.json lists them)."""
    return [
        "geometry_separability.png",
        "geometry_feature_histograms.png",
        "geometry_svm.png",
        "geometry_thin_shell.png",
        "geometry_variance_spectrum.png",
        "geometry_odd.png",
        *(f"geometry_loss_{side}.png" for side in sides),
        "geometry_conformity_fit.png",
        "geometry_conformity_distributions.png",
        *(f"geometry_kl_{side}.png" for side in sides),
    ]


def _pairs(ctx: Context, cfg: ml_collections.ConfigDict, seed: int) -> tuple[Pairs, PairPlan] | str:
    """The split's image-text pairs and their plan (`jaxclip.analysis.pairs`), each distinct
    text embedded once; or why the split cannot be paired."""
    features = ctx.features(cfg.split)
    plan = plan_pairs(
        len(features.embeds),
        captions=features.captions,
        labels=features.labels,
        classnames=features.classnames,
        caption=cfg.caption,
        class_template=cfg.class_template,
        max_pairs=int(cfg.max_pairs),
        seed=seed,
    )
    if isinstance(plan, str):
        return plan
    return make_pairs(features.embeds, plan, embed_texts(ctx, plan.texts)), plan


def analyse(ctx: Context, cfg: ml_collections.ConfigDict) -> GeometryResult:
    """Runs every part of the geometry study on `ctx` with `cfg` = config.geometry."""
    check_config(cfg)
    seed = int(ctx.config.seed)
    paired = _pairs(ctx, cfg, seed)
    if isinstance(paired, str):
        return GeometryResult(skipped=paired)
    pairs, plan = paired
    head: dict[str, Any] = {
        "pairs": {
            "source": pairs.source,
            "caption": str(cfg.caption) if pairs.source == "captions" else None,
            "split": ctx.split_name(cfg.split),
            "n_images": len(pairs.image),
            "n_texts": len(pairs.text),
            "n_distinct_texts": len(set(pairs.texts)),
            "n_pairs": len(pairs.pair_image),
            "dimension": int(pairs.image.shape[1]),
        },
        "paper": dict(lookup(GEOMETRY_PAPER, str(ctx.config.model), str(ctx.config.dataset)))
        or None,
        "split_images": np.asarray(plan.n_split),
        "sampled_images": np.asarray(plan.n_sampled),
    }
    n_texts = head["pairs"]["n_distinct_texts"]
    if len(pairs.image) < 2 or n_texts < 2:
        msg = f"need at least 2 images and 2 distinct texts, got {len(pairs.image)} and {n_texts}"
        return GeometryResult(**head, skipped=msg)
    scale = float(cfg.logit_scale) if cfg.logit_scale > 0 else float(ctx.logit_scale)
    bias = getattr(ctx, "logit_bias", None)  # a sigmoid-loss model's b (None: CLIP)
    bias = None if bias is None else float(bias)
    return GeometryResult(**head, **_parts(pairs, cfg, scale, seed, bias))


def _parts(
    pairs: Pairs,
    cfg: ml_collections.ConfigDict,
    scale: float,
    seed: int,
    bias: float | None = None,
) -> dict:
    """Every part's results.json entry and arrays, as `GeometryResult` keyword arguments."""
    xi, xt = pairs.image, pairs.text
    alphas = alpha_grid(cfg)
    progress.step("separability")
    sep = gs.separability_summary(
        xi, xt, top_k=int(cfg.top_k), hist_features=int(cfg.hist_features),
        kl_bins=int(cfg.feature_kl_bins), smoothing=cfg.kl_smoothing,
    )  # fmt: skip
    top = sep.entry["top"]
    progress.step("svm on the two most separating features")
    svm = gs.svm_summary(
        xi, xt, (top[0]["feature"], top[1]["feature"]), C=cfg.svm_c,
        max_points=int(cfg.max_scatter_points), seed=seed,
    )  # fmt: skip
    progress.step("thin shell, spectrum")
    shell = gs.shell_summary(xi, xt)
    spectrum = gs.spectrum_summary(xi, xt)
    progress.step(f"loss sweep over {len(alphas)} alphas")
    loss = gs.loss_summary(
        pairs.pair_image, pairs.pair_text, alphas, cfg.sides, logit_scale=scale,
        budget_bytes=int(cfg.loss_memory_mb) * 2**20, logit_bias=bias,
    )  # fmt: skip
    examples = int(cfg.examples) if pairs.source == "captions" else 0
    progress.step("conformity")
    conformity = gs.conformity_summary(
        xi, xt, pairs.texts, examples=examples, scores=None if bias is None else (scale, bias)
    )
    progress.step(f"conformity KL sweep over {len(alphas)} alphas")
    kl = gs.kl_summary(
        xi, xt, alphas, cfg.sides, method=cfg.kl_method, bins=int(cfg.kl_bins),
        smoothing=float(cfg.kl_smoothing),
    )  # fmt: skip
    progress.step("bootstrap intervals of the means and the gap")
    ci = geometry_intervals(xi, xt, pairs.owner, seed=seed)
    return {
        "moments": gs.moments_summary(xi, xt),
        "moments_ci": ci["moments_ci"],
        "separability": sep.entry,
        "svm": svm.entry,
        "thin_shell": shell.entry,
        "spectrum": spectrum.entry,
        "gap": gs.gap_summary(xi, xt),
        "gap_ci": ci["gap_ci"],
        "loss": loss,
        "conformity": conformity.entry,
        "kl": kl.entry,
        "figures": figure_names(cfg.sides),
        **sep.arrays,
        **svm.arrays,
        **shell.arrays,
        **spectrum.arrays,
        **conformity.arrays,
        **kl.arrays,
    }


STUDY = Study(analyse, render, GeometryResult, check_config)
