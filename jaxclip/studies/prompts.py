"""Study: prompt engineering for zero-shot classification.

Binds `jaxclip.analysis.zero_shot.compare_templates`, `similarity_variants` and
`text_norm_effects` to a model × labelled dataset (`analyse`); the report is drawn by
`jaxclip.studies.prompts_render.render`:

* any list of prompt templates in one run (template set names expand into their templates, one
  row each; literal templates are taken as they are), plus prompt ensembles of whole sets
  (e.g. CLIP's 80 ImageNet templates) and the ensemble of the listed templates: zero-shot
  top-1 / top-5 of each, the change against "a photo of a {}.", a bar chart, and the sources'
  numbers for orientation (`jaxclip.report.references`: IT5005 report, DATA586 slides);
* the similarity comparison: cosine vs the raw dot product of the unnormalised embeddings vs
  the logit-scaled cosine CLIP's forward pass returns, with the text norms that explain the
  difference;
* error bars and paired tests (`jaxclip.analysis.bootstrap`, seeded by `config.seed`): a 95 %
  bootstrap interval on every top-1 / top-5 (`top1_ci`, `top5_ci`), and each template against
  the baseline on the same images (`comparisons`: McNemar's exact test, Holm-adjusted over the
  table, and the paired bootstrap interval of the difference), as is cosine vs dot.

Every template is scored in one batched contraction (`compare_templates`), and every prompt of
the study is embedded in one encoder call. The config section is
`configs/prompts.py: study_config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxclip.analysis import bootstrap
from jaxclip.analysis import zero_shot as zs
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.data.templates import TEMPLATE_SETS
from jaxclip.report.references import IT5005_SIMILARITY_TOP1
from jaxclip.studies.context import Context, Study
from jaxclip.studies.prompts_render import render
from jaxclip.studies.result import StudyResult, optional
from jaxclip.studies.shared import embed_texts, resolve_template_set

__all__ = ["STUDY", "PromptsResult", "analyse", "check_config", "expand_templates"]

NAME = "prompts"
FIGURES = ("prompts_templates.png", "prompts_text_norms.png")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PromptsResult(StudyResult):
    """The prompt study's results.json entry (accuracies as fractions in [0, 1])."""

    split: str
    skipped: str | None = optional()
    num_samples: int | None = optional()
    num_classes: int | None = optional()
    unlabelled_dropped: int | None = optional()
    chance: float | None = optional()
    baseline: str | None = optional()  # the template the Δ column is measured against
    # one row per template / ensemble, with top1_ci / top5_ci ({"value", "ci_low", "ci_high",
    # "n"}: 95 % bootstrap over the images, config seed)
    templates: list | None = optional()
    # each other row vs the baseline on the same images: {"a", "b", "difference", "ci_low",
    # "ci_high", "p_value" (McNemar exact), "p_holm" (over this list), "distinguishable", ...}
    comparisons: list | None = optional()
    best: dict | None = optional()
    worst: dict | None = optional()
    # cosine vs dot product (variants with top1_ci, "comparison": cosine vs dot), text norms
    similarity: dict | None = optional()
    figures: list | None = optional()


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
    check_choice("prompts.split", cfg.split, ("train", "test"))
    for field in ("templates", "ensembles"):
        entries = cfg[field]
        if isinstance(entries, str):
            raise ConfigError(
                f"config.prompts.{field}={entries!r} must be a tuple of names or templates"
            )
        for e in entries:
            if field == "ensembles" and not (e in TEMPLATE_SETS or e == "dataset"):
                raise ConfigError(
                    f"config.prompts.ensembles entry {e!r} is not valid; choose from: "
                    f"{', '.join(TEMPLATE_SETS)}, dataset"
                )
            if field == "templates" and not (
                isinstance(e, str) and (e in TEMPLATE_SETS or e == "dataset" or e.count("{}") == 1)
            ):
                raise ConfigError(
                    f"config.prompts.templates entry {e!r} is not valid; use a TEMPLATE_SETS name "
                    f"({', '.join(TEMPLATE_SETS)}), dataset, or a template with exactly one '{{}}'"
                )
    if not cfg.templates and not cfg.ensembles:
        raise ConfigError("config.prompts.templates and .ensembles are both empty; give one")
    for field in ("baseline", "similarity_template"):
        if cfg[field].count("{}") != 1:
            raise ConfigError(
                f"config.prompts.{field}={cfg[field]!r} must contain exactly one '{{}}'"
            )


def expand_templates(entries: Sequence[str], dataset: str) -> list[str]:
    """Set names -> their templates, literals as they are; order kept, duplicates dropped."""
    out: list[str] = []
    for e in entries:
        out.extend(resolve_template_set(e, dataset)[1])
    return list(dict.fromkeys(out))


def analyse(ctx: Context, cfg: ml_collections.ConfigDict) -> PromptsResult:
    """Every template and ensemble scored on `cfg.split`, and the similarity comparison."""
    check_config(cfg)
    dataset = str(ctx.config.dataset)
    features = ctx.features(cfg.split)
    split = ctx.split_name(cfg.split)
    labels = np.asarray(features.labels, np.int64)
    classnames = tuple(str(c) for c in features.classnames)
    keep = labels >= 0
    if not keep.any() or len(classnames) < 2:
        why = (
            "this split has no class labels"
            if not keep.any()
            else f"the dataset has {len(classnames)} class name(s); zero-shot needs at least 2"
        )
        return PromptsResult(split=split, skipped=why)
    x = np.asarray(features.embeds, np.float32)[keep]
    y = labels[keep]
    singles = expand_templates(cfg.templates, dataset)
    ensembles = []
    for e in dict.fromkeys(cfg.ensembles):
        name, temps, _ = resolve_template_set(e, dataset)
        ensembles.append((name, tuple(temps)))
    # One encoder call for every prompt of the study.
    all_templates = list(
        dict.fromkeys(singles + [t for _, ts in ensembles for t in ts] + [cfg.similarity_template])
    )
    prompts = [t.replace("{}", c) for t in all_templates for c in classnames]
    emb = embed_texts(ctx, prompts)
    if emb.shape[1] != x.shape[1]:
        raise ValueError(f"image {x.shape} and text {emb.shape} embeddings differ in D")
    per_t = emb.reshape(len(all_templates), len(classnames), -1)
    raw = {t: per_t[i] for i, t in enumerate(all_templates)}
    rows, baseline, ranks = _template_rows(
        x, y, raw, singles, ensembles, cfg, float(ctx.logit_scale)
    )
    seed = int(ctx.config.seed)
    for r in rows:
        rank = ranks[r["template"]]
        r["top1_ci"] = bootstrap.mean_interval(rank < 1, seed=seed).as_dict()
        if r.get("top5") is not None:
            r["top5_ci"] = bootstrap.mean_interval(rank < 5, seed=seed).as_dict()
    comparisons = bootstrap.paired_comparisons(
        [
            (r["template"], baseline, ranks[r["template"]] < 1, ranks[baseline] < 1)
            for r in rows
            if r["template"] != baseline
        ],
        seed=seed,
    )
    best = max(rows, key=lambda r: r["top1"])
    worst = min(rows, key=lambda r: r["top1"])
    return PromptsResult(
        split=split,
        num_samples=len(y),
        num_classes=len(classnames),
        unlabelled_dropped=int((~keep).sum()),
        chance=1.0 / len(classnames),
        baseline=baseline,
        templates=rows,
        comparisons=comparisons,
        best={"template": best["template"], "top1": best["top1"]},
        worst={"template": worst["template"], "top1": worst["top1"]},
        similarity=_similarity(x, y, raw[cfg.similarity_template], classnames, cfg, ctx),
        figures=list(FIGURES),
    )


def _template_rows(
    x: np.ndarray,
    y: np.ndarray,
    raw: dict[str, np.ndarray],
    singles: list[str],
    ensembles: list[tuple[str, tuple[str, ...]]],
    cfg: ml_collections.ConfigDict,
    logit_scale: float,
) -> tuple[list[dict[str, Any]], str, dict[str, np.ndarray]]:
    """(`compare_templates` rows with kind and Δ top-1, the baseline template, row -> ranks)."""
    # Entries for compare_templates: every single template's raw (C, D) embeddings, and each
    # ensemble's unit class weights (normalising them again changes nothing).
    entries: dict[str, np.ndarray] = {t: raw[t] for t in singles}
    kinds: dict[str, dict[str, Any]] = {t: {"kind": "template", "n_templates": 1} for t in singles}
    for name, temps in ensembles:
        label = f"ensemble: {name} ({len(temps)} templates)"
        entries[label] = np.asarray(zs.class_text_embeddings(np.stack([raw[t] for t in temps], 1)))
        kinds[label] = {"kind": "ensemble", "set": name, "n_templates": len(temps)}
    if cfg.ensemble_of_listed and len(singles) >= 2:
        label = f"ensemble: the {len(singles)} templates above"
        entries[label] = np.asarray(
            zs.class_text_embeddings(np.stack([raw[t] for t in singles], 1))
        )
        kinds[label] = {"kind": "ensemble", "set": "listed", "n_templates": len(singles)}
    rows, rank = zs.compare_templates(
        x, y, entries, logit_scale=logit_scale, ks=(1, 5), ensemble=False, return_ranks=True
    )
    baseline = cfg.baseline if cfg.baseline in entries else rows[0]["template"]
    base_top1 = next(r["top1"] for r in rows if r["template"] == baseline)
    for r in rows:
        r.update(kinds[r["template"]])
        r["delta_top1"] = r["top1"] - base_top1
    return rows, baseline, {r["template"]: rank[i] for i, r in enumerate(rows)}


def _similarity(
    x: np.ndarray,
    y: np.ndarray,
    text: np.ndarray,
    classnames: tuple[str, ...],
    cfg: ml_collections.ConfigDict,
    ctx: Context,
) -> dict[str, Any]:
    """The `similarity` entry: the three scores' accuracies and the text norms behind them."""
    scale = float(ctx.logit_scale)
    norms, per_class = zs.text_norm_effects(x, text, y, classnames)
    variants, ranks = zs.similarity_variants(x, text, y, logit_scale=scale, return_ranks=True)
    seed = int(ctx.config.seed)
    for r in variants:
        r["top1_ci"] = bootstrap.mean_interval(ranks[r["similarity"]] < 1, seed=seed).as_dict()
    (comparison,) = bootstrap.paired_comparisons(
        [("cosine", "dot", ranks["cosine"] < 1, ranks["dot"] < 1)], seed=seed
    )
    return {
        "template": cfg.similarity_template,
        "logit_scale": scale,
        "variants": variants,
        "comparison": comparison,
        "norms": norms,
        "per_class": per_class,
        "source_top1": dict(IT5005_SIMILARITY_TOP1),
    }


STUDY = Study(analyse, render, PromptsResult, check_config)
