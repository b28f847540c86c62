"""Study: class-agnostic logit features, their entropy, and temperature (DESIGN.md items 7-8).

Each image is described by its cosine similarity to K generic prompts that name no class ("a
photo of an object", "a blurry photo", ...; `jaxclip.data.prompts.PROMPT_SETS`), and a probe
learns the classes from those K numbers. Binds `jaxclip.analysis.logits` and the probes to one
model × labelled dataset and writes the report:

* probes on the K features: the thesis's SVC(linear, C=1) without a scaler (29.30 % on
  CIFAR-100 with ViT-B/32 and the 32 prompts) when the train split is small enough, the JAX
  logistic probe (CLIP protocol) and an MLP; beside zero-shot and, as a ceiling, the same
  logistic probe on the normalised image embeddings themselves (the K cosines are a linear
  map of the normalised embedding onto the span of the prompts, so with K ≥ D prompts of full
  rank a linear probe can in principle do what it does on the embedding);
* entropy of softmax(cosines / τ): at the raw cosines (τ = 1: the thesis's 3.4656 vs
  ln 32 = 3.4657), at the model's logit scale (τ = 1 / s) and over a τ grid; mean top-1
  confidence; per-image histograms;
* the τ sweep for (a) logits / τ and (b) softmax(logits / τ) as features, with the identity
  that makes (a) a mere change of regularisation (x / τ at strength λ ≡ x at λτ²; exactly
  invariant under standardisation) shown numerically (`tau_l2_equivalence`), so only (b)
  changes what a linear probe can separate;
* the number of prompts (nested generic16 ⊂ 32 ⊂ 100 ⊂ 200 ⊂ 400) vs probe accuracy.

The thesis's numbers (`jaxclip.report.references.CLASS_AGNOSTIC`, its Table 4.1) are printed
beside ours when model and dataset match. The resolution question (CIFAR's 32 px vs
Imagenette) is a second run on another dataset variant, never two datasets in one study.

Reference: N. Benedetto, "What Do Vision-Language Models Understand? Dissecting CLIP Model from
Baseline Supervised Classification to Class-Agnostic Similarity Features", University of
Florence, 2025.
"""

from __future__ import annotations

import math
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from jaxclip.analysis import logits as lg
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.data.prompts import PROMPT_SETS
from jaxclip.probes import baselines, linear
from jaxclip.report import Report, markdown_table, plots_probes, save_figure
from jaxclip.report.references import CLASS_AGNOSTIC, CLASS_AGNOSTIC_TAU_ENTROPY, lookup
from jaxclip.studies import probe as probe_study
from jaxclip.studies.legacy import LegacySection as Section

__all__ = ["THESIS_TAU_ENTROPY", "check_config", "default_config", "run", "tau_grid"]

NAME = "class_agnostic"
FEATURE_SCALES = ("cosine", "model")
SWEEP_SCALINGS = ("raw", "standardized")
THESIS_TAUS: tuple[float, ...] = (0.5, 0.07, 0.03, 0.02)
# Mean softmax entropy per temperature of the thesis's Table 4.1 (ViT-B/32, CIFAR-100, the 32
# generic prompts); its accuracies are in `references.CLASS_AGNOSTIC`.
THESIS_TAU_ENTROPY: dict[float, float] = CLASS_AGNOSTIC_TAU_ENTROPY[("vit_b32", "cifar100")]


def default_config() -> ml_collections.ConfigDict:
    """The class-agnostic study's section of the config (`config.class_agnostic`)."""
    c = ml_collections.ConfigDict()
    c.prompts = "generic32"  # generic prompt set (PROMPT_SETS key): the K features
    # Probe features: "cosine" (the raw cosine similarities, as the thesis) or "model" (cosines
    # × the model's logit scale). Only the unstandardised SVC sees the difference.
    c.features = "cosine"
    c.val_fraction = 0.2  # share of the train split held out to choose L2 / MLP settings
    # The thesis's SVC(linear) on the K features, no scaler: only when the train split has at
    # most this many examples (0 = never).
    c.svc_max_train = 20_000
    c.svc_c = 1.0  # its C (the thesis: 1)
    c.svc_standardize = False  # StandardScaler before it (the thesis: none)
    # Extra SVC runs on logits / τ at these τ (the thesis's Table 4.1); equal to SVC(C / τ²)
    # on the logits, which libsvm solves slowly for small τ (τ = 0.02: C = 2500, about 100 s
    # on 10k × 32), hence off by default.
    c.svc_taus = ()
    c.l2_grid = tuple(linear.DEFAULT_L2_GRID)  # JAX logistic probe: L2 strengths to pick from
    c.max_iter = 100  # JAX logistic probe: most L-BFGS steps per fit
    c.mlp = True  # an MLP probe on the K features
    c.mlp_widths = (256,)  # hidden widths (grid axis); each width is one vmapped run
    c.mlp_layers = 1  # hidden layers of that width
    c.mlp_learning_rates = (1e-3,)  # adamw learning rates (grid axis)
    c.mlp_weight_decays = (1e-4, 1e-2)  # adamw weight decays (grid axis)
    c.mlp_dropouts = (0.0,)  # dropout after each hidden layer (grid axis)
    c.mlp_seeds = (0, 1)  # initialisation seeds (grid axis)
    c.mlp_epochs = 30  # most epochs (early stopping on validation accuracy)
    c.mlp_patience = 5  # epochs without a better validation accuracy before a member stops
    c.mlp_batch_size = 256  # minibatch size
    c.ceiling = True  # the JAX logistic probe on the L2-normalised image embeddings too
    c.zero_shot_template = "a photo of a {}."  # class prompt of the zero-shot reference
    c.entropy_bins = 40  # histogram bins over [0, ln K]
    c.hist_taus = THESIS_TAUS  # temperatures whose per-image entropies are histogrammed
    c.num_taus = 32  # τ sweep: log-spaced temperatures ...
    c.tau_min = 1e-3  # ... from tau_min ...
    c.tau_max = 1.0  # ... to tau_max
    c.extra_taus = THESIS_TAUS  # added to the sweep grid (the thesis's temperatures)
    c.sweep_l2 = 1.0  # fixed L2 of the sweep's logistic probes (sklearn C = 1 / L2; thesis C = 1)
    # Feature scaling of the τ sweeps: "raw" (no scaler, the thesis's setting, where τ acts as
    # the regularisation) and/or "standardized" (StandardScaler per τ: (a) is then invariant).
    c.sweeps = SWEEP_SCALINGS
    c.sweep_max_iter = 300  # L-BFGS steps per sweep probe
    c.sweep_tol = 1e-5  # the sweep probes' stopping tolerance (tight: the identity is checked)
    c.equivalence_taus = (1.0, *THESIS_TAUS)  # τ of the numerical x/τ ≡ L2·τ² check
    c.equivalence_max_train = 2000  # training rows of that check (a seeded subset; 0 = all)
    c.prompt_count_set = "generic400"  # nested set whose prefixes the prompt-count sweep uses
    c.prompt_counts = (16, 32, 100, 200, 400)  # its prefix sizes K
    c.prompt_count_l2 = 1.0  # fixed L2 of the prompt-count probes (standardised features)
    return c


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
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
    for field, lo in (
        ("svc_max_train", 0),
        ("max_iter", 1),
        ("mlp_layers", 1),
        ("mlp_epochs", 1),
        ("mlp_patience", 1),
        ("mlp_batch_size", 1),
        ("entropy_bins", 1),
        ("num_taus", 1),
        ("sweep_max_iter", 1),
        ("equivalence_max_train", 0),
    ):
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.class_agnostic.{field}={cfg[field]} must be >= {lo}")
    chk = probe_study._check_positive_tuple
    chk("class_agnostic.l2_grid", cfg.l2_grid)
    chk("class_agnostic.mlp_widths", cfg.mlp_widths, integer=True)
    chk("class_agnostic.mlp_learning_rates", cfg.mlp_learning_rates)
    chk("class_agnostic.mlp_weight_decays", cfg.mlp_weight_decays, allow_zero=True)
    chk("class_agnostic.mlp_seeds", cfg.mlp_seeds, integer=True, allow_zero=True)
    chk("class_agnostic.prompt_counts", cfg.prompt_counts, integer=True)
    for field in ("hist_taus", "extra_taus", "equivalence_taus", "svc_taus"):
        if tuple(cfg[field]):
            chk(f"class_agnostic.{field}", cfg[field])
    if not cfg.mlp_dropouts or any(not 0.0 <= float(p) < 1.0 for p in cfg.mlp_dropouts):
        raise ConfigError(
            f"config.class_agnostic.mlp_dropouts={tuple(cfg.mlp_dropouts)} must be in [0, 1)"
        )
    if cfg.zero_shot_template.count("{}") != 1:
        raise ConfigError(
            f"config.class_agnostic.zero_shot_template={cfg.zero_shot_template!r} must contain "
            "one '{}'"
        )


def tau_grid(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """The sweep's temperatures, descending: `num_taus` log-spaced in [tau_min, tau_max] plus
    `extra_taus` (duplicates within 1e-9 relative removed)."""
    base = np.logspace(math.log10(cfg.tau_min), math.log10(cfg.tau_max), int(cfg.num_taus))
    taus = np.concatenate([base, np.asarray(tuple(cfg.extra_taus), np.float64)])
    taus = np.sort(taus)[::-1]
    keep = [0] + [i for i in range(1, taus.size) if taus[i] < taus[i - 1] * (1 - 1e-9)]
    return taus[keep].copy()


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * float(x)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ------------------------------------------------------------------------------------ the study


def run(ctx: Any, cfg: ml_collections.ConfigDict) -> Section:
    """Runs the class-agnostic study on `ctx` (a `Context`) with `cfg` = config.class_agnostic."""
    check_config(cfg)
    model, dataset = str(ctx.config.model), str(ctx.config.dataset)
    seed = int(ctx.config.get("seed", 0))
    report = Report("Class-agnostic logit features")
    data = probe_study.labelled_splits(ctx)
    if isinstance(data, str):
        report.text(f"Skipped: {data}.")
        return Section(NAME, {"skipped": data}, report)

    prompts = tuple(PROMPT_SETS[cfg.prompts])
    count_set = tuple(PROMPT_SETS[cfg.prompt_count_set])
    k = len(prompts)
    # One encoder call for every prompt of the study (the sets are nested, but embed both).
    uniq = list(dict.fromkeys(prompts + count_set))
    emb = np.asarray(ctx.texts(uniq), np.float32)
    if emb.shape != (len(uniq), data.x_train.shape[1]):
        raise ValueError(
            f"ctx.texts returned {emb.shape} for {len(uniq)} prompts; image embeddings are "
            f"{data.x_train.shape}"
        )
    pos = {p: i for i, p in enumerate(uniq)}
    t_main = emb[[pos[p] for p in prompts]]
    t_count = emb[[pos[p] for p in count_set]]
    scale = float(ctx.logit_scale)
    ztr = np.asarray(lg.prompt_logits(data.x_train, t_main))  # raw cosines (N, K)
    zte = np.asarray(lg.prompt_logits(data.x_test, t_main))
    feat_scale = scale if cfg.features == "model" else 1.0
    ftr, fte = ztr * feat_scale, zte * feat_scale
    classes = data.classes
    c = int(classes.size)
    d = data.x_train.shape[1]
    n_train, n_test = len(data.y_train), len(data.y_test)
    rank = int(np.linalg.matrix_rank(_normalize(t_main.astype(np.float64))))
    fit_idx, val_idx = probe_study.train_val_split(n_train, float(cfg.val_fraction), seed)
    counts = np.bincount(np.searchsorted(classes, data.y_test), minlength=c)
    published = lookup(CLASS_AGNOSTIC, model, dataset)
    thesis_match = bool(published) and cfg.prompts == "generic32"

    results: dict[str, Any] = {
        "prompts": cfg.prompts,
        "num_prompts": k,
        "prompt_rank": rank,
        "dim": d,
        "features": cfg.features,
        "logit_scale": scale,
        "num_train": n_train,
        "num_fit": len(fit_idx),
        "num_val": len(val_idx),
        "num_test": n_test,
        "num_classes": c,
        "chance": 1.0 / c,
        "majority": float(counts.max() / counts.sum()),
        "dropped": data.dropped,
        "cosine_spread": {
            "mean_cosine": float(zte.mean()),
            "mean_range": float((zte.max(axis=1) - zte.min(axis=1)).mean()),
            "mean_std": float(zte.std(axis=1).mean()),
            # ln K - H ≈ Var_k(z) / 2 for nearly equal logits (second-order expansion)
            "half_mean_var": float(0.5 * zte.astype(np.float64).var(axis=1).mean()),
        },
    }
    if published:
        results["published_thesis"] = dict(published)
    seconds: dict[str, float] = {}
    notes: list[str] = []
    figures: list[str] = []
    wd = ctx.workdir

    # -------------------------------------------------------------------------------- probes
    methods: dict[str, dict[str, Any]] = {}
    fname = f"{k} generic-prompt " + ("cosines" if cfg.features == "cosine" else "logits")
    if n_train <= int(cfg.svc_max_train):
        r = baselines.svc_linear(
            ftr,
            data.y_train,
            fte,
            data.y_test,
            C=float(cfg.svc_c),
            standardize=bool(cfg.svc_standardize),
        )
        methods["svc_linear"] = {
            "method": f"class-agnostic: SVC(linear) on {fname}",
            "features": ("StandardScaler + " if cfg.svc_standardize else "no scaler, ") + fname,
            "train_accuracy": r.train_accuracy,
            "test_accuracy": r.test_accuracy,
            "top5": None,
            "macro_f1": r.macro_f1,
            "chosen": f"C = {cfg.svc_c:g} (fixed, as the thesis)",
        }
        seconds["svc_linear"] = r.fit_seconds
        svc_tau_rows = []
        for tau in cfg.svc_taus:
            rt = baselines.svc_linear(
                ztr / float(tau), data.y_train, zte / float(tau), data.y_test,
                C=float(cfg.svc_c), standardize=False,
            )  # fmt: skip
            svc_tau_rows.append({"tau": float(tau), "test_accuracy": rt.test_accuracy})
            seconds[f"svc_tau_{tau:g}"] = rt.fit_seconds
        if svc_tau_rows:
            results["svc_tau"] = svc_tau_rows
    else:
        why = (
            "`svc_max_train = 0`"
            if int(cfg.svc_max_train) == 0
            else f"the train split has {n_train} examples > `svc_max_train = {cfg.svc_max_train}`"
        )
        notes.append(
            f"The thesis's SVC(linear, C={cfg.svc_c:g}) on the {k} features was skipped: {why} "
            f"({probe_study.SVC_COST_NOTE}; on K = {k} features it is faster, but still "
            f"quadratic in N). Set `--config.class_agnostic.svc_max_train={n_train}` to run it."
        )
        results["svc_skipped"] = why

    t0 = time.perf_counter()
    lprobe, path, best = probe_study.jax_logistic(
        ftr[fit_idx], data.y_train[fit_idx], ftr[val_idx], data.y_train[val_idx],
        fte, data.y_test, tuple(float(v) for v in cfg.l2_grid),
        classes=classes, max_iter=int(cfg.max_iter),
    )  # fmt: skip
    seconds["jax_logistic"] = time.perf_counter() - t0
    assert lprobe is not None
    sc = probe_study.score_probe(lprobe.decision_function(fte), data.y_test, lprobe.classes)
    methods["jax_logistic"] = {
        "method": f"class-agnostic: JAX logistic on {fname}",
        "features": "StandardScaler + " + fname,
        "train_accuracy": lprobe.train_accuracy,
        "test_accuracy": sc["top1"],
        "top5": sc["top5"],
        "macro_f1": sc["macro_f1"],
        "l2": lprobe.l2,
        "chosen": f"L2 = {lprobe.l2:.3g} (C = {1 / lprobe.l2:.3g}, by validation)",
    }
    if cfg.mlp:
        mprobe, grid_rows, seconds["mlp"] = probe_study.fit_mlp_grid(
            ftr[fit_idx], data.y_train[fit_idx], ftr[val_idx], data.y_train[val_idx], cfg, seed
        )
        sc = probe_study.score_probe(mprobe.decision_function(fte), data.y_test, mprobe.classes)
        conf = mprobe.config
        methods["mlp"] = {
            "method": f"class-agnostic: MLP on {fname}",
            "features": "StandardScaler + " + fname,
            "train_accuracy": mprobe.score(ftr[fit_idx], data.y_train[fit_idx]),
            "test_accuracy": sc["top1"],
            "top5": sc["top5"],
            "macro_f1": sc["macro_f1"],
            "hidden": list(mprobe.hidden),
            "config": dict(conf),
            "chosen": f"width {mprobe.hidden[0]}, wd {conf['wd']:g}, seed {conf['seed']}, "
            f"epoch {mprobe.best_epoch} (fit part)",
        }
        results["mlp_grid"] = grid_rows
    results["methods"] = methods
    results["headline"] = probe_study.headline_rows(methods)

    context_rows: dict[str, dict[str, Any]] = {}
    zs_scores = probe_study.zero_shot_scores(
        ctx, data.x_test, [_name(data, kk) for kk in classes], cfg.zero_shot_template
    )
    if zs_scores is not None:
        sc = probe_study.score_probe(zs_scores, data.y_test, classes)
        context_rows["zero_shot"] = {
            "method": f'zero-shot ("{cfg.zero_shot_template}", class names)',
            "features": "cosines to C class prompts, no labels",
            "test_accuracy": sc["top1"],
            "top5": sc["top5"],
            "macro_f1": sc["macro_f1"],
        }
    if cfg.ceiling:
        t0 = time.perf_counter()
        xn_tr, xn_te = _normalize(data.x_train), _normalize(data.x_test)
        cprobe, _, _ = probe_study.jax_logistic(
            xn_tr[fit_idx], data.y_train[fit_idx], xn_tr[val_idx], data.y_train[val_idx],
            xn_te, data.y_test, tuple(float(v) for v in cfg.l2_grid),
            classes=classes, max_iter=int(cfg.max_iter),
        )  # fmt: skip
        seconds["ceiling"] = time.perf_counter() - t0
        assert cprobe is not None
        sc = probe_study.score_probe(cprobe.decision_function(xn_te), data.y_test, classes)
        context_rows["ceiling"] = {
            "method": "JAX logistic on the normalised image embeddings",
            "features": f"StandardScaler + the {d}-d embedding itself",
            "test_accuracy": sc["top1"],
            "top5": sc["top5"],
            "macro_f1": sc["macro_f1"],
        }
    results["reference_methods"] = context_rows

    # ------------------------------------------------------------------------------- entropy
    taus = tau_grid(cfg)
    t0 = time.perf_counter()
    es = lg.entropy_stats(
        zte,
        taus,
        logit_scale=scale,
        bins=int(cfg.entropy_bins),
        hist_taus=tuple(float(t) for t in cfg.hist_taus),
    )
    seconds["entropy"] = time.perf_counter() - t0
    results["entropy"] = {
        "ln_k": es.ln_k,
        "raw": es.raw,
        "model": es.model,
        "per_tau": es.rows(),
    }

    # ------------------------------------------------------------------ temperature sweeps
    sweeps: dict[str, lg.TemperatureSweep] = {}
    for scaling in cfg.sweeps:
        t0 = time.perf_counter()
        sweeps[scaling] = lg.temperature_sweep(
            ztr,
            data.y_train,
            zte,
            data.y_test,
            taus,
            l2=float(cfg.sweep_l2),
            standardize=scaling == "standardized",
            logit_scale=scale,
            max_iter=int(cfg.sweep_max_iter),
            tol=float(cfg.sweep_tol),
        )
        seconds[f"sweep_{scaling}"] = time.perf_counter() - t0
    results["temperature"] = {
        scaling: {
            "l2": sw.l2,
            "standardize": sw.standardize,
            "rows": sw.rows(),
            "points": sw.points,
            "max_identity_gap": float(np.max(np.abs(sw.acc_scaled - sw.acc_scaled_via_l2))),
            "best_softmax": {
                "tau": float(sw.taus[int(np.argmax(sw.acc_softmax))]),
                "accuracy": float(np.max(sw.acc_softmax)),
            },
        }
        for scaling, sw in sweeps.items()
    }
    eq_rows: list[dict[str, Any]] = []
    if tuple(cfg.equivalence_taus):
        n_eq = int(cfg.equivalence_max_train)
        sub = np.arange(n_train)
        if 0 < n_eq < n_train:
            sub = np.sort(np.random.default_rng(seed).choice(n_train, n_eq, replace=False))
        t0 = time.perf_counter()
        eq_rows = lg.tau_l2_equivalence(
            ztr[sub],
            data.y_train[sub],
            zte,
            data.y_test,
            taus=tuple(float(t) for t in cfg.equivalence_taus),
            l2=float(cfg.sweep_l2),
        )
        seconds["equivalence"] = time.perf_counter() - t0
        results["tau_l2_equivalence"] = {"num_train": int(sub.size), "rows": eq_rows}

    # -------------------------------------------------------------------------- prompt count
    sizes = sorted({int(s) for s in cfg.prompt_counts if int(s) <= len(count_set)})
    dropped_sizes = sorted({int(s) for s in cfg.prompt_counts} - set(sizes))
    count_rows: list[dict[str, Any]] = []
    if sizes:
        t0 = time.perf_counter()
        ptr = np.asarray(lg.prompt_logits(data.x_train, t_count))
        pte = np.asarray(lg.prompt_logits(data.x_test, t_count))
        order = np.arange(len(count_set))  # nested prefixes: the sets' own order
        common = {"order": order, "l2": float(cfg.prompt_count_l2), "standardize": True}
        lin = lg.prompt_count_sweep(ptr, data.y_train, pte, data.y_test, sizes, **common)
        soft = lg.prompt_count_sweep(
            ptr, data.y_train, pte, data.y_test, sizes, kind="softmax", tau=1.0 / scale, **common
        )
        tn = _normalize(t_count.astype(np.float64))
        for s, a, b in zip(sizes, lin, soft):
            count_rows.append(
                {
                    "num_prompts": s,
                    "rank": int(np.linalg.matrix_rank(tn[:s])),
                    "accuracy": a["accuracy"],
                    "train_accuracy": a["train_accuracy"],
                    "accuracy_softmax": b["accuracy"],
                }
            )
        seconds["prompt_count"] = time.perf_counter() - t0
        results["prompt_count"] = {
            "set": cfg.prompt_count_set,
            "l2": float(cfg.prompt_count_l2),
            "softmax_tau": 1.0 / scale,
            "rows": count_rows,
        }

    _write_report(
        report, results, methods, context_rows, seconds, notes, figures, wd, es, sweeps,
        eq_rows, count_rows, dropped_sizes, prompts, published, thesis_match, model, dataset,
        cfg, path, best,
    )  # fmt: skip
    results["figures"] = figures
    probe_study._timing_note(report, seconds)
    return Section(NAME, results, report)


def _name(data: probe_study.LabelledSplits, label: Any) -> str:
    k = int(label)
    return data.classnames[k] if 0 <= k < len(data.classnames) else str(k)


# ------------------------------------------------------------------------------------ report


def _write_report(
    report: Report,
    results: dict[str, Any],
    methods: dict[str, dict[str, Any]],
    context_rows: dict[str, dict[str, Any]],
    seconds: dict[str, float],
    notes: list[str],
    figures: list[str],
    wd: Any,
    es: lg.EntropyStats,
    sweeps: dict[str, lg.TemperatureSweep],
    eq_rows: list[dict[str, Any]],
    count_rows: list[dict[str, Any]],
    dropped_sizes: list[int],
    prompts: tuple[str, ...],
    published: dict[str, float],
    thesis_match: bool,
    model: str,
    dataset: str,
    cfg: ml_collections.ConfigDict,
    path: linear.LogisticPath,
    best: int,
) -> None:
    k, d, rank = results["num_prompts"], results["dim"], results["prompt_rank"]
    scale = results["logit_scale"]
    shown = ", ".join(f'"{p}"' for p in prompts[:4])
    span = (
        "they span the whole embedding space, so a linear probe on the cosines can in principle "
        "do what it does on the normalised embedding"
        if rank >= d
        else f"a linear probe on the cosines sees the image only through this {rank}-d "
        f"projection (of the {d} dimensions)"
    )
    feat = (
        "the raw cosines"
        if results["features"] == "cosine"
        else f"the cosines × the model's logit scale s = {scale:.4g}"
    )
    report.text(
        f"Each image is described by its cosine similarity to K = {k} generic prompts (the "
        f"`{results['prompts']}` set: {shown}, …) that name no class: f(x)_k = ⟨x/‖x‖, "
        f"t_k/‖t_k‖⟩. A probe then learns the {results['num_classes']} classes of `{dataset}` "
        f"from these {k} numbers ({results['num_train']} training and {results['num_test']} "
        f"test images, embedded by `{model}`). The features are a linear map of the normalised "
        f"image embedding: the {k} normalised prompt embeddings have rank {rank} in the "
        f"{d}-d space, and {span}. The probes get {feat}."
    )

    # ------------------------------------------------------------------------------ probes
    report.section("Probes on the class-agnostic features", level=2)
    rows = probe_study.method_rows(methods, seconds, "features")
    for key, m in context_rows.items():
        rows.append(
            {
                "method": f"(reference) {m['method']}",
                "features": m["features"],
                "train acc %": None,
                "test acc %": _pct(m["test_accuracy"]),
                "top-5 %": _pct(m.get("top5")),
                "macro F1 %": _pct(m["macro_f1"]),
                "chosen": "",
                "fit s": seconds.get(key),
            }
        )
    report.text(
        'The SVC is the thesis\'s probe: SVC(kernel="linear", C=1) on the features as they '
        "are, no scaler. The JAX logistic probe follows the CLIP protocol (StandardScaler, L2 "
        f"from a log grid by accuracy on a {100 * float(cfg.val_fraction):.0f} % validation "
        "split of the train split, refit on the whole train split); the MLP is trained on the "
        "rest of the train split with early stopping on the validation split. The reference "
        "rows use more than the K features: zero-shot compares the images with one prompt per "
        "class name, and the last row is the same logistic probe on the normalised image "
        f"embedding itself (everything the {k} cosines are computed from). Chance is "
        f"{100 * results['chance']:.2f} %. Fit times (JAX: with compilation) vary between runs "
        "and are kept out of results.json."
    )
    report.table(rows, floatfmt=".2f")
    for note in notes:
        report.text(note)
    figures.append(_plot_probes(methods, context_rows, results, published, thesis_match, wd))
    report.figure(figures[-1], "Test accuracy on the class-agnostic features")
    if thesis_match:
        ours = methods.get("svc_linear") if results["features"] == "cosine" else None
        raw_pt = sweeps["raw"].points["raw"] if "raw" in sweeps else None
        pub_rows = [
            {
                "probe": "SVC(linear, C=1), no scaler, raw cosines to the 32 generic prompts",
                "thesis %": published.get("raw cosines, SVC"),
                "ours %": _pct(ours["test_accuracy"]) if ours else None,
            }
        ]
        if raw_pt is not None:
            pub_rows.append(
                {
                    "probe": f"logistic, λ = {cfg.sweep_l2:g} (C = {1 / cfg.sweep_l2:g}), no "
                    "scaler, raw cosines (the τ = 1 point of the sweep)",
                    "thesis %": None,
                    "ours %": _pct(raw_pt["acc_scaled"]),
                }
            )
        why = (
            ""
            if ours
            else " Our SVC "
            + (
                "ran on cosines × s (`features = model`), not on the raw cosines"
                if "svc_linear" in methods
                else "was skipped (see above)"
            )
            + "; the logistic row is the same experiment with a logistic instead of a hinge "
            "loss."
        )
        report.text(
            f"The thesis's number for `{model}` on `{dataset.split('/')[0]}` (HF "
            "`openai/clip-vit-base-patch32`, CIFAR-100, the 32 prompts of `generic32`)." + why
        )
        report.table(pub_rows, floatfmt=".2f")
    elif published:
        report.text(
            f"The thesis's numbers for `{model}` on `{dataset.split('/')[0]}` use the 32 prompts "
            f"of `generic32`; this run uses `{results['prompts']}`, so they are not comparable "
            "and not shown beside ours."
        )

    # ----------------------------------------------------------------------------- entropy
    report.section("How close to uniform: softmax entropy", level=2)
    ln_k = es.ln_k
    ent = results["entropy"]
    sp = results["cosine_spread"]
    erows = []

    def erow(label: str, pt: dict[str, float], thesis: float | None) -> dict[str, Any]:
        return {
            "setting": label,
            "τ": pt["tau"],
            "mean H (nats)": pt["mean_entropy"],
            "ln K − mean H": ln_k - pt["mean_entropy"],
            "std H": pt.get("std_entropy"),
            "mean top-1 prob %": 100 * pt["mean_confidence"],
            "thesis mean H": thesis,
        }

    erows.append(
        erow(
            "raw cosines",
            ent["raw"],
            published.get("mean entropy at raw cosines") if thesis_match else None,
        )
    )
    if ent["model"]:
        erows.append(erow(f"model logit scale s = {scale:.4g}", ent["model"], None))
    per_tau = {round(r["tau"], 12): r for r in ent["per_tau"]}
    std_by_tau = dict(zip(np.round(es.taus, 12), es.std_entropy))
    for tau in sorted({float(t) for t in cfg.extra_taus}, reverse=True):
        r = per_tau.get(round(tau, 12))
        if r is None:
            continue
        pt = {**r, "std_entropy": float(std_by_tau[round(tau, 12)])}
        erows.append(
            erow("τ (thesis table 4.1)", pt, THESIS_TAU_ENTROPY.get(tau) if thesis_match else None)
        )
    if not thesis_match:
        for r in erows:
            r.pop("thesis mean H")
    report.text(
        f"Entropy of p = softmax(cosines / τ) over the K = {k} prompts, per test image, "
        f"H = −Σ p_k ln p_k (exact log-sum-exp form, no 1e-9 fudge); the maximum is "
        f"ln K = {ln_k:.4f} (uniform). At the raw cosines (τ = 1) the {k} cosines of one test "
        f"image span {sp['mean_range']:.3f} on average (max − min; standard deviation "
        f"{sp['mean_std']:.4f} around a mean cosine of {sp['mean_cosine']:.3f}), so the softmax "
        "is almost exactly uniform: for nearly equal logits z, ln K − H ≈ Var_k(z) / 2, here "
        f"{sp['half_mean_var']:.5f} predicted vs {ln_k - ent['raw']['mean_entropy']:.5f} "
        "measured. That is what the thesis saw (3.4656 vs ln 32 = 3.4657 with ViT-B/32 on "
        "CIFAR-100) and read as 'broadly distributed logits'. But the model never applies a "
        "softmax at τ = 1: it multiplies the cosines by its learned logit scale s = "
        f"{scale:.4g} (τ = 1/s = {1 / scale:.4g}), where the distribution is much sharper. "
        "Entropy describes the softmax, not the features: a probe on the cosines or on "
        "logits / τ never sees it (their spread, hence what a linear probe can separate, is "
        "the same at every τ); only the softmax features of (b) below depend on it."
    )
    report.table(erows, floatfmt=".4f")
    figures.append(
        plots_probes.plot_entropy_histograms(
            wd,
            es.histograms,
            ln_k,
            gap_histograms=es.gap_histograms,
            title=f"Per-image softmax entropy (K = {k}, test split)",
            name="class_agnostic_entropy_histograms.png",
        )
    )
    report.figure(
        figures[-1],
        "Per-image entropy histograms (left) and their distance below ln K on a log scale (right)",
    )
    figures.append(
        plots_probes.plot_temperature_entropy(
            wd,
            es.taus,
            es.mean_entropy,
            ln_k,
            mean_confidence=es.mean_confidence,
            points={"raw": ent["raw"], **({"model": ent["model"]} if ent["model"] else {})},
            title=f"Mean softmax entropy and top-1 confidence vs τ (K = {k})",
            name="class_agnostic_tau_entropy.png",
        )
    )
    report.figure(figures[-1], "Mean entropy (left axis) and mean top-1 probability vs τ")

    # ------------------------------------------------------------------------- temperature
    report.section("Temperature: regularisation or a new feature?", level=2)
    report.text(
        "Two ways to put a temperature into the features: (a) logits / τ and (b) "
        "softmax(logits / τ). For a linear probe with an L2 penalty, (a) changes nothing but the "
        "penalty. With logits W x / τ + b and the objective Σ_n CE(W x_n / τ + b, y_n) + "
        "(λ/2)‖W‖², substituting W = τ V gives Σ_n CE(V x_n + b, y_n) + (λτ²/2)‖V‖²: **the probe "
        "on x / τ at strength λ is the probe on x at strength λτ²** (scikit-learn C → C / τ²; "
        "the same holds for the hinge loss of a linear SVM), with the same predictions. With a "
        "StandardScaler, (x/τ − m/τ) / (s/τ) = (x − m) / s: the features do not change at all, "
        "so (a) is exactly invariant. The thesis's rising accuracy for smaller τ (50.62 % at τ "
        "= 0.5 to 63.76 % at τ = 0.03, no scaler, C = 1) is therefore the same SVM with a "
        "weaker penalty (C = 4 … 1111), not sharper features. Only (b), a non-linear map, can "
        "change what a linear probe separates — and it has two limits: for large τ, "
        "softmax(z/τ) ≈ (1 + (z − z̄)/τ) / K is an affine map of the logits minus their "
        "per-image mean, so (b) tends to (a) on centred logits; for small τ it tends to the "
        "one-hot of the best-matching prompt and keeps nothing but that argmax."
    )
    if eq_rows:
        report.text(
            f"The identity, checked numerically with `tau_l2_equivalence` (JAX logistic probes "
            f"on {results['tau_l2_equivalence']['num_train']} training images, no scaler, "
            f"λ = {cfg.sweep_l2:g}, tight solver tolerance): left, the probe on x / τ at λ; "
            "right, the probe on x at λτ². Equal objectives, W_τ = τ W′ up to the solver "
            "tolerance, identical test predictions; the last two columns add a StandardScaler, "
            "which makes the accuracy the same for every τ."
        )
        report.table(
            [
                {
                    "τ": r["tau"],
                    "λτ²": r["l2_times_tau2"],
                    "acc x/τ at λ %": 100 * r["acc_x_over_tau_at_l2"],
                    "acc x at λτ² %": 100 * r["acc_x_at_l2_tau2"],
                    "objective left": r["objective_left"],
                    "objective right": r["objective_right"],
                    "max|W_τ − τW′| / max|W_τ|": r["rel_coef_diff"],
                    "same predictions %": 100 * r["same_predictions"],
                    "std. x/τ %": 100 * r["acc_standardized_x_over_tau"],
                    "std. x %": 100 * r["acc_standardized_x"],
                }
                for r in eq_rows
            ],
            floatfmt=".6g",
        )
    for scaling, sw in sweeps.items():
        tr = results["temperature"][scaling]
        how = (
            "no scaler (the thesis's setting: τ acts as the regularisation)"
            if scaling == "raw"
            else "a StandardScaler per τ (fitted on the training features)"
        )
        figures.append(
            plots_probes.plot_temperature_accuracy(
                wd,
                sw.taus,
                sw.acc_scaled,
                sw.acc_softmax,
                acc_scaled_via_l2=sw.acc_scaled_via_l2,
                points=sw.points,
                title=f"Logistic probe (λ = {sw.l2:g}) vs τ, {scaling} features (K = {k})",
                name=f"class_agnostic_tau_accuracy_{scaling}.png",
            )
        )
        best_b = tr["best_softmax"]
        report.text(
            f"**Sweep with {how}.** A logistic probe at fixed λ = {sw.l2:g} (C = "
            f"{1 / sw.l2:g}) on the whole train split for each of {sw.taus.size} temperatures "
            f"({sw.taus.min():.3g} … {sw.taus.max():.3g}, log-spaced, plus the thesis's). Curve "
            "(a) is fitted directly on logits / τ; the crosses are the same accuracies obtained "
            "through the identity, all from the untouched logits at λτ² (one warm-started "
            "regularisation path). They agree to "
            f"{100 * tr['max_identity_gap']:.2f} points at most (the solver tolerance, "
            f"{round(tr['max_identity_gap'] * results['num_test'])} of {results['num_test']} "
            "test images). Curve (b), softmax(logits / τ), is a different feature set for each "
            f"τ: its best accuracy here is {100 * best_b['accuracy']:.2f} % at τ = "
            f"{best_b['tau']:.3g} (read off the test set, for insight only)."
        )
        report.figure(figures[-1], f"Test accuracy vs τ, {scaling} features")
    if sweeps:
        report.text(_tau_table_intro(thesis_match))
        report.table(_tau_table(sweeps, es, published, thesis_match, results), floatfmt=".2f")
        full = []
        for scaling, sw in sweeps.items():
            for r in sw.rows():
                full.append(
                    {
                        "features": scaling,
                        "τ": r["tau"],
                        "mean H": r["mean_entropy"],
                        "top-1 prob %": 100 * r["mean_confidence"],
                        "(a) logits/τ %": 100 * r["acc_logits_over_tau"],
                        "(a) via λτ² %": 100 * r["acc_logits_at_l2_tau2"],
                        "λ effective": r["l2_effective"],
                        "(b) softmax %": 100 * r["acc_softmax_logits_over_tau"],
                    }
                )
        report.text(
            "<details><summary>Every τ of the sweeps (click to expand)</summary>\n\n"
            + markdown_table(full, floatfmt=".4g")
            + "\n</details>"
        )
    if "svc_tau" in results:
        report.text(
            "SVC(linear, C = 1, no scaler) on logits / τ, as the thesis ran it (equal to "
            "SVC(C / τ²) on the logits):"
        )
        report.table(
            [
                {
                    "τ": r["tau"],
                    "test acc %": 100 * r["test_accuracy"],
                    "thesis %": published.get(f"tau={r['tau']:g}") if thesis_match else None,
                }
                for r in results["svc_tau"]
            ],
            floatfmt=".2f",
        )

    # ------------------------------------------------------------------------ prompt count
    if count_rows:
        report.section("Number of prompts", level=2)
        report.text(
            f"Nested prefixes of `{cfg.prompt_count_set}` (generic16 ⊂ generic32 ⊂ generic100 ⊂ "
            f"generic200 ⊂ generic400: the first K prompts of the set), a logistic probe at "
            f"fixed λ = {cfg.prompt_count_l2:g} on the standardised cosines and on "
            f"softmax(cosines / τ) at the model's own τ = 1/s = {1 / scale:.4g} (also "
            "standardised), trained on the whole train split. *Rank* is the rank of the K "
            f"normalised prompt embeddings in the {d}-d space: once it reaches {d}, more prompts "
            "add no linear information (the cosines are a linear map of the normalised "
            "embedding), only redundancy for the regulariser."
            + (
                f" Sizes {', '.join(map(str, dropped_sizes))} exceed the set and are left out."
                if dropped_sizes
                else ""
            )
        )
        ceiling = context_rows.get("ceiling")
        zs_row = context_rows.get("zero_shot")
        report.table(
            [
                {
                    "K prompts": r["num_prompts"],
                    "rank": r["rank"],
                    "cosines: test %": 100 * r["accuracy"],
                    "cosines: train %": 100 * r["train_accuracy"],
                    "softmax at 1/s: test %": 100 * r["accuracy_softmax"],
                }
                for r in count_rows
            ],
            floatfmt=".2f",
        )
        series = {
            "softmax(cosines · s), test": [
                {"num_prompts": r["num_prompts"], "accuracy": r["accuracy_softmax"]}
                for r in count_rows
            ]
        }
        sizes = [r["num_prompts"] for r in count_rows]
        if ceiling:
            series["ceiling: probe on the normalised embedding"] = [
                {"num_prompts": s, "accuracy": ceiling["test_accuracy"]} for s in sizes
            ]
        if zs_row:
            series["zero-shot (class names)"] = [
                {"num_prompts": s, "accuracy": zs_row["test_accuracy"]} for s in sizes
            ]
        figures.append(
            plots_probes.plot_prompt_count(
                wd,
                [{"num_prompts": r["num_prompts"], "accuracy": r["accuracy"]} for r in count_rows],
                series=series,
                title=f"Probe accuracy vs number of generic prompts (D = {d})",
                name="class_agnostic_prompt_count.png",
            )
        )
        report.figure(
            figures[-1],
            "Test accuracy vs K (first curve: standardised cosines; flat lines: references)",
        )

    # --------------------------------------------------------------------------- resolution
    report.section("Image resolution", level=2)
    base = dataset.split("/")[0]
    report.text(
        "The thesis also asks whether low-resolution images (CIFAR's 32 px, upsampled to the "
        "model's input) are what limits the class-agnostic features, and compares with "
        "Imagenette. That is a second run on another dataset, never two datasets in one "
        "study: e.g. `python -m experiments.class_agnostic "
        "--config=configs/class_agnostic.py:mini,shapes128` (shapes drawn at 128 px) or "
        "`:mini,shapes32` (32 px, CIFAR-like) against the default 64 px `:mini`, or "
        "`:vit_b32,cifar100` against `:vit_b32,imagenette`, then compare the two reports."
        + (f" This run: `{dataset}`." if base else "")
    )


def _tau_table_intro(thesis_match: bool) -> str:
    txt = (
        "At the thesis's temperatures, the raw cosines (τ = 1) and the model's own τ = 1/s: "
        "mean entropy of the test softmax and the probes' test accuracy for (a) and (b)."
    )
    if thesis_match:
        txt += (
            " The thesis's columns are its Table 4.1 (linear SVC, C = 1, no scaler, on "
            "logits / τ): compare them with our (a) on raw features — the same experiment with "
            "a logistic instead of a hinge loss."
        )
    return txt


def _tau_table(
    sweeps: dict[str, lg.TemperatureSweep],
    es: lg.EntropyStats,
    published: dict[str, float],
    thesis_match: bool,
    results: dict[str, Any],
) -> list[dict[str, Any]]:
    first = next(iter(sweeps.values()))
    taus = list(first.taus)
    picks: list[tuple[str, float, int | str]] = [("raw cosines", 1.0, "raw")]
    if "model" in first.points:
        picks.append(("model scale", first.points["model"]["tau"], "model"))
    for tau in THESIS_TAUS:
        hit = [i for i, t in enumerate(taus) if abs(t - tau) <= 1e-9 * tau]
        if hit:
            picks.append(("thesis τ", tau, hit[0]))
    rows = []
    for label, tau, where in picks:
        row: dict[str, Any] = {"": label, "τ": f"{tau:.3g}"}
        h = (
            first.points[where]["mean_entropy"]
            if isinstance(where, str)
            else float(first.mean_entropy[where])
        )
        row["mean H"] = f"{h:.4f}"
        if thesis_match:
            th = (
                published.get("mean entropy at raw cosines")
                if where == "raw"
                else THESIS_TAU_ENTROPY.get(tau)
            )
            row["thesis H"] = None if th is None else f"{th:.4f}"
            row["thesis SVC %"] = (
                published.get("raw cosines, SVC")
                if where == "raw"
                else published.get(f"tau={tau:g}")
            )
        for scaling, sw in sweeps.items():
            if isinstance(where, str):
                a = sw.points[where]["acc_scaled"]
                b = sw.points[where]["acc_softmax"]
            else:
                a, b = float(sw.acc_scaled[where]), float(sw.acc_softmax[where])
            row[f"(a) {scaling} %"] = 100 * a
            row[f"(b) {scaling} %"] = 100 * b
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------- plots


def _plot_probes(
    methods: dict[str, dict[str, Any]],
    context_rows: dict[str, dict[str, Any]],
    results: dict[str, Any],
    published: dict[str, float],
    thesis_match: bool,
    wd: Any,
) -> str:
    items = [(m["method"], m["test_accuracy"], "#3b6fb6") for m in methods.values()]
    items += [(m["method"], m["test_accuracy"], "#9a9a9a") for m in context_rows.values()]
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(items) + 1.8))
    ys = np.arange(len(items))[::-1]
    vals = [100 * v for _, v, _ in items]
    bars = ax.barh(ys, vals, color=[col for _, _, col in items], height=0.6)
    for b, v in zip(bars, vals):
        ax.text(v + 0.5, b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center", fontsize=8)
    ax.axvline(100 * results["chance"], color="k", ls=":", label="chance 1/C")
    if thesis_match and "raw cosines, SVC" in published:
        ax.axvline(
            published["raw cosines, SVC"], color="C3", ls="-.", label="thesis: SVC on cosines"
        )
    ax.set_yticks(ys, [name for name, _, _ in items], fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(
        f"Probes on K = {results['num_prompts']} class-agnostic features (grey: references)"
    )
    return save_figure(fig, wd, "class_agnostic_probes.png")
