"""Study: class-agnostic logit features, their entropy, and temperature (the thesis).

Each image is described by its cosine similarity to K generic prompts that name no class ("a
photo of an object", "a blurry photo", ...; `jaxclip.data.prompts.PROMPT_SETS`), and a probe
learns the classes from those K numbers. Binds `jaxclip.analysis.logits` and the probes of
`jaxclip.probes` to one model × labelled dataset:

* probes on the K features (`class_agnostic_probes`): the thesis's SVC(linear, C=1) without a
  scaler when the train split is small enough, the JAX logistic probe (CLIP protocol) and an
  MLP; beside zero-shot and, as a ceiling, the same logistic probe on the normalised image
  embeddings themselves (the K cosines are a linear map of the normalised embedding onto the
  span of the prompts);
* entropy of softmax(cosines / τ): at the raw cosines (τ = 1), at the model's logit scale
  (τ = 1 / s) and over a τ grid; mean top-1 confidence; per-image histograms;
* the τ sweep for (a) logits / τ and (b) softmax(logits / τ) as features, with the identity
  that makes (a) a mere change of regularisation (`tau_l2_equivalence`);
* the number of prompts (nested generic16 ⊂ 32 ⊂ 100 ⊂ 200 ⊂ 400) vs probe accuracy.

The thesis's numbers (`jaxclip.report.references.CLASS_AGNOSTIC`, its Table 4.1) are printed
beside ours when model and dataset match. The resolution question (CIFAR's 32 px vs
Imagenette) is a second run on another dataset variant, never two datasets in one study.

Reference: N. Benedetto, "What Do Vision-Language Models Understand? Dissecting CLIP Model from
Baseline Supervised Classification to Class-Agnostic Similarity Features", University of
Florence, 2025.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from jaxclip import progress
from jaxclip.analysis import bootstrap
from jaxclip.analysis import logits as lg
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.data.prompts import PROMPT_SETS
from jaxclip.probes.protocol import chance_and_majority, labelled_splits
from jaxclip.probes.split import train_val_split
from jaxclip.report.references import CLASS_AGNOSTIC, lookup
from jaxclip.studies import class_agnostic_probes as cap
from jaxclip.studies.class_agnostic_render import THESIS_TAUS, render
from jaxclip.studies.context import Context, Study
from jaxclip.studies.probe_common import (
    add_intervals,
    check_mlp_config,
    check_mlp_dropouts,
    headline_rows,
)
from jaxclip.studies.result import StudyResult, optional, sidecar, timing
from jaxclip.studies.shared import check_positive_tuple, embed_texts

__all__ = ["NAME", "STUDY", "THESIS_TAUS", "ClassAgnosticResult", "analyse", "check_config"]

NAME = "class_agnostic"
FEATURE_SCALES = ("cosine", "model")
SWEEP_SCALINGS = ("raw", "standardized")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassAgnosticResult(StudyResult):
    """The class-agnostic study's results.json entry (fields in its order) and its figures' data.

    Sidecars: `entropy_std` (T,) per-image entropy std per τ of the grid; the entropy
    histograms as `histogram_labels` (L,), `histogram_counts` (L, B), `histogram_edges`
    (L, B + 1) and the same for the gap histograms; `dropped_prompt_counts` (prompt counts
    larger than the set). `seconds`: wall time per part.
    """

    skipped: str | None = optional()
    prompts: str | None = optional()
    num_prompts: int | None = optional()
    prompt_rank: int | None = optional()
    dim: int | None = optional()
    features: str | None = optional()
    logit_scale: float | None = optional()
    num_train: int | None = optional()
    num_fit: int | None = optional()
    num_val: int | None = optional()
    num_test: int | None = optional()
    num_classes: int | None = optional()
    chance: float | None = optional()
    majority: float | None = optional()
    dropped: dict[str, int] | None = optional()
    cosine_spread: dict[str, float] | None = optional()
    published_thesis: dict[str, float] | None = optional()
    # SVC on logits / τ per config τ, each row with test_accuracy_ci (95 % bootstrap over the
    # test images, config seed)
    svc_tau: list[dict[str, float]] | None = optional()
    # neighbouring τ of svc_tau (sorted high to low) paired on the same test images: McNemar
    # exact, Holm over the pairs, paired bootstrap interval (`bootstrap.paired_comparisons`)
    svc_tau_comparisons: list[dict[str, Any]] | None = optional()
    svc_skipped: str | None = optional()
    mlp_grid: list[dict[str, Any]] | None = optional()
    methods: dict[str, dict[str, Any]] | None = optional()
    headline: list[dict[str, Any]] | None = optional()
    reference_methods: dict[str, dict[str, Any]] | None = optional()
    entropy: dict[str, Any] | None = optional()
    temperature: dict[str, dict[str, Any]] | None = optional()
    tau_l2_equivalence: dict[str, Any] | None = optional()
    prompt_count: dict[str, Any] | None = optional()
    figures: list[str] | None = optional()
    entropy_std: np.ndarray | None = sidecar()
    histogram_labels: np.ndarray | None = sidecar()
    histogram_counts: np.ndarray | None = sidecar()
    histogram_edges: np.ndarray | None = sidecar()
    gap_histogram_labels: np.ndarray | None = sidecar()
    gap_histogram_counts: np.ndarray | None = sidecar()
    gap_histogram_edges: np.ndarray | None = sidecar()
    dropped_prompt_counts: np.ndarray | None = sidecar()
    seconds: dict[str, float] = timing()


def check_config(cfg: Any) -> None:
    """Rejects bad values of `config.class_agnostic` with one line naming the field."""
    check_choice("class_agnostic.prompts", cfg.prompts, PROMPT_SETS)
    check_choice("class_agnostic.prompt_count_set", cfg.prompt_count_set, PROMPT_SETS)
    check_choice("class_agnostic.features", cfg.features, FEATURE_SCALES)
    sweeps = tuple(cfg.sweeps)
    if any(s not in SWEEP_SCALINGS for s in sweeps) or len(set(sweeps)) != len(sweeps):
        raise ConfigError(
            f"config.class_agnostic.sweeps={sweeps!r} is not valid; use a subset of "
            f"{SWEEP_SCALINGS}"
        )
    if not 0.0 < float(cfg.val_fraction) < 1.0:
        raise ConfigError(
            f"config.class_agnostic.val_fraction={cfg.val_fraction} must be in (0, 1)"
        )
    for field in ("svc_c", "sweep_l2", "prompt_count_l2", "tau_min", "tau_max", "sweep_tol"):
        if not float(cfg[field]) > 0:
            raise ConfigError(f"config.class_agnostic.{field}={cfg[field]} must be > 0")
    if not float(cfg.tau_min) <= float(cfg.tau_max):
        raise ConfigError(
            f"config.class_agnostic.tau_min={cfg.tau_min} must be <= tau_max={cfg.tau_max}"
        )
    for field, lo in (("svc_max_train", 0), ("max_iter", 1), ("entropy_bins", 1),
                      ("num_taus", 1), ("sweep_max_iter", 1), ("equivalence_max_train", 0)):  # fmt: skip
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.class_agnostic.{field}={cfg[field]} must be >= {lo}")
    check_mlp_config("class_agnostic", cfg)
    check_positive_tuple("class_agnostic.l2_grid", cfg.l2_grid)
    check_positive_tuple("class_agnostic.prompt_counts", cfg.prompt_counts, integer=True)
    for field in ("hist_taus", "extra_taus", "equivalence_taus", "svc_taus"):
        if tuple(cfg[field]):
            check_positive_tuple(f"class_agnostic.{field}", cfg[field])
    check_mlp_dropouts("class_agnostic", cfg, "in [0, 1)")
    if cfg.zero_shot_template.count("{}") != 1:
        raise ConfigError(
            f"config.class_agnostic.zero_shot_template={cfg.zero_shot_template!r} must contain "
            "one '{}'"
        )


def tau_grid(cfg: Any) -> np.ndarray:
    """The sweep's temperatures of a config section (`lg.tau_grid` of its fields)."""
    return lg.tau_grid(cfg.tau_min, cfg.tau_max, int(cfg.num_taus), tuple(cfg.extra_taus))


def analyse(ctx: Context, cfg: Any) -> ClassAgnosticResult:
    """Class-agnostic features of the context's splits, probes on them, entropy, τ sweeps and
    the prompt-count sweep, with `cfg` = config.class_agnostic."""
    check_config(cfg)
    seed = int(ctx.config.get("seed", 0))
    data = labelled_splits(ctx.features("train"), ctx.features("test"))
    if isinstance(data, str):
        return ClassAgnosticResult(skipped=data)
    prompts = tuple(PROMPT_SETS[cfg.prompts])
    count_set = tuple(PROMPT_SETS[cfg.prompt_count_set])
    t_main, t_count = _prompt_embeddings(ctx, prompts, count_set, data.x_train.shape)
    scale = float(ctx.logit_scale)
    fit_idx, val_idx = train_val_split(len(data.y_train), float(cfg.val_fraction), seed)
    feats = cap.Features.of(data, t_main, scale if cfg.features == "model" else 1.0)
    # The x/τ check and the prompt-count sweep share nothing with the probes and the τ sweeps:
    # they run on a second thread meanwhile (JAX and libsvm release the GIL; every part
    # computes what it computes alone).
    side: dict[str, float] = {}
    with ThreadPoolExecutor(1, "class-agnostic") as pool:
        equivalence_ = pool.submit(_equivalence, data, feats, cfg, seed, side)
        counts_ = pool.submit(_prompt_count, data, t_count, scale, cfg, side)
        fits = cap.fit_probes(ctx, data, feats, fit_idx, val_idx, cfg, seed)
        seconds = fits.seconds
        taus = tau_grid(cfg)
        es = _timed(seconds, "entropy", lambda: _entropy(feats.z_test, taus, scale, cfg))
        sweeps = _sweeps(data, feats, taus, scale, cfg, seconds)
        equivalence = equivalence_.result()
        counts, dropped_counts = counts_.result()
    seconds.update(side)  # one worker, so in submission order
    add_intervals(fits.methods, fits.predictions, fits.top5, data.y_test, data.classes, seed)
    tau_comparisons = _svc_intervals(fits, seed)
    chance, majority = chance_and_majority(data.y_test, data.classes)
    published = lookup(CLASS_AGNOSTIC, str(ctx.config.model), str(ctx.config.dataset))
    hist = _histogram_arrays(es.histograms)
    gaps = _histogram_arrays(es.gap_histograms)
    return ClassAgnosticResult(
        prompts=cfg.prompts,
        num_prompts=len(prompts),
        prompt_rank=lg.prompt_rank(t_main),
        dim=data.x_train.shape[1],
        features=cfg.features,
        logit_scale=scale,
        num_train=len(data.y_train),
        num_fit=len(fit_idx),
        num_val=len(val_idx),
        num_test=len(data.y_test),
        num_classes=int(data.classes.size),
        chance=chance,
        majority=majority,
        dropped=data.dropped,
        cosine_spread=lg.cosine_spread(feats.z_test),
        published_thesis=dict(published) if published else None,
        svc_tau=fits.svc_tau or None,
        svc_tau_comparisons=tau_comparisons,
        svc_skipped=fits.svc_skipped,
        mlp_grid=fits.mlp_grid,
        methods=fits.methods,
        headline=headline_rows(fits.methods),
        reference_methods=fits.references,
        entropy={"ln_k": es.ln_k, "raw": es.raw, "model": es.model, "per_tau": es.rows()},
        temperature={s: _sweep_entry(sw, seed) for s, sw in sweeps.items()},
        tau_l2_equivalence=equivalence,
        prompt_count=counts,
        figures=_figure_names(tuple(sweeps), bool(counts)),
        entropy_std=np.asarray(es.std_entropy),
        histogram_labels=hist[0],
        histogram_counts=hist[1],
        histogram_edges=hist[2],
        gap_histogram_labels=gaps[0],
        gap_histogram_counts=gaps[1],
        gap_histogram_edges=gaps[2],
        dropped_prompt_counts=np.asarray(dropped_counts, np.int64),
        seconds=seconds,
    )


def _timed(seconds: dict[str, float], part: str, fn: Any, note: str | None = None) -> Any:
    """`fn()`, its wall time recorded as `seconds[part]`; `note` (default `part`) is shown as
    the study's progress meanwhile."""
    progress.step(note or part)
    t0 = time.perf_counter()
    out = fn()
    seconds[part] = time.perf_counter() - t0
    return out


def _prompt_embeddings(
    ctx: Context, prompts: tuple[str, ...], count_set: tuple[str, ...], image_shape: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of the main prompts and of the prompt-count set, in one encoder call."""
    emb = embed_texts(ctx, prompts + count_set)
    if emb.shape[1] != image_shape[1]:
        raise ValueError(
            f"ctx.texts returned {emb.shape[1]}-d embeddings; image embeddings are {image_shape}"
        )
    return emb[: len(prompts)], emb[len(prompts) :]


def _figure_names(sweeps: tuple[str, ...], prompt_count: bool) -> list[str]:
    names = [
        "class_agnostic_probes.png",
        "class_agnostic_entropy_histograms.png",
        "class_agnostic_tau_entropy.png",
    ]
    names += [f"class_agnostic_tau_accuracy_{s}.png" for s in sweeps]
    return names + (["class_agnostic_prompt_count.png"] if prompt_count else [])


def _entropy(z_test: np.ndarray, taus: np.ndarray, scale: float, cfg: Any) -> lg.EntropyStats:
    return lg.entropy_stats(
        z_test,
        taus,
        logit_scale=scale,
        bins=int(cfg.entropy_bins),
        hist_taus=tuple(float(t) for t in cfg.hist_taus),
    )


def _histogram_arrays(hist: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """{label: (counts, edges)} as (labels, stacked counts, stacked edges) arrays."""
    labels = np.asarray(list(hist), dtype=str)
    counts = np.stack([np.asarray(c) for c, _ in hist.values()])
    edges = np.stack([np.asarray(e, np.float64) for _, e in hist.values()])
    return labels, counts, edges


def _sweeps(
    data: Any, feats: cap.Features, taus: np.ndarray, scale: float, cfg: Any, seconds: dict
) -> dict[str, lg.TemperatureSweep]:
    sweeps = {}
    for i, scaling in enumerate(cfg.sweeps):
        note = f"tau sweep {i + 1}/{len(cfg.sweeps)} ({scaling}, {len(taus)} taus)"
        sweeps[scaling] = _timed(seconds, f"sweep_{scaling}", lambda s=scaling: lg.temperature_sweep(
            feats.z_train, data.y_train, feats.z_test, data.y_test, taus,
            l2=float(cfg.sweep_l2), standardize=s == "standardized", logit_scale=scale,
            max_iter=int(cfg.sweep_max_iter), tol=float(cfg.sweep_tol),
        ), note)  # fmt: skip
    return sweeps


def _svc_intervals(fits: cap.Fits, seed: int) -> list[dict[str, Any]] | None:
    """Bootstrap intervals of the SVC's test accuracy per τ (`test_accuracy_ci`), and
    neighbouring τ paired: (τ_i vs τ_i+1) with τ sorted from high to low."""
    for row, right in zip(fits.svc_tau, fits.svc_tau_correct, strict=True):
        row["test_accuracy_ci"] = bootstrap.mean_interval(right, seed=seed).as_dict()
    order = sorted(range(len(fits.svc_tau)), key=lambda i: -fits.svc_tau[i]["tau"])
    if len(order) < 2:
        return None
    right = fits.svc_tau_correct
    return bootstrap.paired_comparisons(
        [
            (f"τ {fits.svc_tau[i]['tau']:g}", f"τ {fits.svc_tau[j]['tau']:g}", right[i], right[j])
            for i, j in itertools.pairwise(order)
        ],
        seed=seed,
    )


# results.json row key of each probe variant of a τ sweep, and the sweep's per-example field
SWEEP_VARIANTS = {
    "acc_logits_over_tau": "correct_scaled",
    "acc_softmax_logits_over_tau": "correct_softmax",
}


def _sweep_entry(sw: lg.TemperatureSweep, seed: int) -> dict[str, Any]:
    """A sweep's results.json entry: its rows, each accuracy of (a) and (b) with its bootstrap
    interval (`<key>_ci`), and `comparisons`: per variant, the thesis's temperatures that are on
    the grid, neighbouring ones paired (sorted high to low; McNemar, Holm over the variant's
    pairs, paired bootstrap interval)."""
    rows = sw.rows()
    comparisons = {}
    for key, field in SWEEP_VARIANTS.items():
        right = getattr(sw, field)
        if right is None:
            continue
        for row, r in zip(rows, right, strict=True):
            row[f"{key}_ci"] = bootstrap.mean_interval(r, seed=seed).as_dict()
        picks = sorted(
            {i for i, t in enumerate(sw.taus) for x in THESIS_TAUS if abs(t - x) <= 1e-9 * x},
            key=lambda i: -sw.taus[i],
        )
        if len(picks) > 1:
            comparisons[key] = bootstrap.paired_comparisons(
                [
                    (f"τ {sw.taus[i]:g}", f"τ {sw.taus[j]:g}", right[i], right[j])
                    for i, j in itertools.pairwise(picks)
                ],
                seed=seed,
            )
    return {
        "l2": sw.l2,
        "standardize": sw.standardize,
        "rows": rows,
        "points": sw.points,
        "max_identity_gap": float(np.max(np.abs(sw.acc_scaled - sw.acc_scaled_via_l2))),
        "best_softmax": {
            "tau": float(sw.taus[int(np.argmax(sw.acc_softmax))]),
            "accuracy": float(np.max(sw.acc_softmax)),
        },
        "comparisons": comparisons or None,
    }


def _equivalence(
    data: Any, feats: cap.Features, cfg: Any, seed: int, seconds: dict
) -> dict[str, Any] | None:
    """The x/τ ≡ L2·τ² check on a seeded subset of the training rows (None when off)."""
    if not tuple(cfg.equivalence_taus):
        return None
    n_train, n_eq = len(data.y_train), int(cfg.equivalence_max_train)
    sub = np.arange(n_train)
    if 0 < n_eq < n_train:
        sub = np.sort(np.random.default_rng(seed).choice(n_train, n_eq, replace=False))
    rows = _timed(seconds, "equivalence", lambda: lg.tau_l2_equivalence(
        feats.z_train[sub], data.y_train[sub], feats.z_test, data.y_test,
        taus=tuple(float(t) for t in cfg.equivalence_taus), l2=float(cfg.sweep_l2),
    ), f"x/tau vs L2 check over {len(cfg.equivalence_taus)} taus")  # fmt: skip
    return {"num_train": int(sub.size), "rows": rows}


def _prompt_count(
    data: Any, t_count: np.ndarray, scale: float, cfg: Any, seconds: dict
) -> tuple[dict[str, Any] | None, list[int]]:
    """Probe accuracy on nested prefixes of the prompt-count set; (entry, sizes left out)."""
    sizes = sorted({int(s) for s in cfg.prompt_counts if int(s) <= len(t_count)})
    dropped = sorted({int(s) for s in cfg.prompt_counts} - set(sizes))
    if not sizes:
        return None, dropped
    progress.step(f"prompt-count sweep over {len(sizes)} set sizes")
    t0 = time.perf_counter()
    ptr = np.asarray(lg.prompt_logits(data.x_train, t_count))
    pte = np.asarray(lg.prompt_logits(data.x_test, t_count))
    order = np.arange(len(t_count))  # nested prefixes: the sets' own order
    common = {"order": order, "l2": float(cfg.prompt_count_l2), "standardize": True}
    lin = lg.prompt_count_sweep(ptr, data.y_train, pte, data.y_test, sizes, **common)
    soft = lg.prompt_count_sweep(
        ptr, data.y_train, pte, data.y_test, sizes, kind="softmax", tau=1.0 / scale, **common
    )
    rows = [
        {
            "num_prompts": s,
            "rank": lg.prompt_rank(t_count[:s]),
            "accuracy": a["accuracy"],
            "train_accuracy": a["train_accuracy"],
            "accuracy_softmax": b["accuracy"],
        }
        for s, a, b in zip(sizes, lin, soft)
    ]
    seconds["prompt_count"] = time.perf_counter() - t0
    entry = {
        "set": cfg.prompt_count_set,
        "l2": float(cfg.prompt_count_l2),
        "softmax_tau": 1.0 / scale,
        "rows": rows,
    }
    return entry, dropped


STUDY = Study(analyse, render, ClassAgnosticResult, check_config, fits_on_train=True)
