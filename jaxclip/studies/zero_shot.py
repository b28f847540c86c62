"""Study: zero-shot classification of one model on one labelled dataset.

Binds `jaxclip.analysis.zero_shot` to a model × dataset (`analyse`); the report is drawn by
`jaxclip.studies.zero_shot_render.render`:

* class weights from a template set (CLIP paper §3.1.4: normalise each prompt embedding,
  average over the templates, renormalise), top-1 / top-5, mean per-class recall and macro F1,
  beside chance level and the published numbers when model and dataset match
  (`jaxclip.report.references.ZERO_SHOT_TOP1`: CLIP paper, LAION CLIP_benchmark, the thesis);
* the per-class precision / recall / F1 table with the class each class is most often mistaken
  for, the clustered confusion matrix and the most confused (true, predicted) pairs;
* on datasets with extra labels (the built-in shapes: colour, size, count, background,
  position), zero-shot on each attribute with its own prompt template, against chance;
  optionally "class-marginal" prompts that replace the generic noun ("shape") by every class
  name and average the embeddings, so the prompt names the object as the training captions do.

On a multi-label split (items with `labels_multi`, e.g. VOC2007 multi-label as
`cb/voc2007_multilabel` or a webdataset with `npy` label vectors) the class-label part is
retrieval-style instead: every class ranks the images by their cosine with its class weights,
and the result holds each class's average precision and their mean (mAP,
`jaxclip.analysis.multilabel`), the metric CLIP_benchmark reports there.

Top-1, top-5 and mean per-class recall follow the common field `metrics_protocol`: jaxclip's
definitions (`jaxclip.analysis.metrics`; top-5 null with at most 5 classes) or CLIP_benchmark's
(`jaxclip.analysis.clip_benchmark`); CLIP_benchmark's three numbers are kept in `clip_benchmark`
either way (the record of `WORKDIR/clip_benchmark.json`).

The results carry a `headline` dict (top-1, top-5, split, sample count, templates) so a joint
report can set zero-shot beside a linear probe of the same features. The config section is
`configs/zero_shot.py: study_config`.

Reference: A. Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxclip.analysis import bootstrap, metrics, multilabel
from jaxclip.analysis import clip_benchmark as cbm
from jaxclip.analysis import zero_shot as zs
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.data.templates import plural
from jaxclip.report.references import MULTILABEL_MAP, ZERO_SHOT_TOP1, lookup
from jaxclip.studies.context import Context, Study
from jaxclip.studies.result import StudyResult, optional, sidecar
from jaxclip.studies.shared import (
    attribute_value_names,
    check_template_spec,
    embed_texts,
    metrics_protocol,
    resolve_template_set,
)
from jaxclip.studies.zero_shot_render import render

__all__ = ["STUDY", "ZeroShotResult", "analyse", "attribute_prompts", "check_config"]

NAME = "zero_shot"
FIGURES = ("zero_shot_per_class_f1.png", "zero_shot_confusion.png")
ATTRIBUTE_FIGURES = ("zero_shot_attributes.png", "zero_shot_attribute_confusions.png")
DEFAULT_ATTRIBUTE_TEMPLATE = "a photo of something {}."


@dataclasses.dataclass(frozen=True, kw_only=True)
class ZeroShotResult(StudyResult):
    """The zero-shot study's results.json entry (fractions in [0, 1]).

    The class-label fields are absent when the split cannot be classified (no labels, fewer
    than two classes) but has attributes; `attributes` is absent on datasets without them.
    """

    split: str
    skipped: str | None = optional()
    templates: dict | None = optional()  # spec, set, count, templates
    num_samples: int | None = optional()
    num_classes: int | None = optional()
    unlabelled_dropped: int | None = optional()
    metrics_protocol: str | None = optional()  # whose definitions top1/top5/recall follow
    top1: float | None = optional()
    top5: float | None = optional(null_with="top1")  # null: top-5 undefined (<= 5 classes)
    mean_per_class_recall: float | None = optional()
    macro_f1: float | None = optional()
    # 95 % percentile bootstrap intervals over the test images (jaxclip's definitions, seeded by
    # config.seed): {"value", "ci_low", "ci_high"}; top5_ci null when top5 is.
    top1_ci: dict | None = optional()
    top5_ci: dict | None = optional()
    mean_per_class_recall_ci: dict | None = optional()
    macro_f1_ci: dict | None = optional()
    chance: float | None = optional()
    majority: float | None = optional()
    per_class: list | None = optional()  # rows with precision, recall, f1, confused_with, ...
    best: list | None = optional()
    worst: list | None = optional()
    top_confusions: list | None = optional()
    headline: dict | None = optional()
    published_top1_percent: dict | None = optional()
    # CLIP_benchmark's acc1, acc5 (null: < 5 classes), mean_per_class_recall, whatever the
    # protocol (the record of WORKDIR/clip_benchmark.json).
    clip_benchmark: dict | None = optional()
    confusion: list | None = optional()  # only up to store_confusion_max_classes classes
    # Multi-label splits: mAP over the classes with a positive image, its class count, the mean
    # positive rate (the mAP of a random ranking, in expectation), one row per class {"class",
    # "ap" (null: no positive image), "positives"}, published mAPs (percent).
    mean_average_precision: float | None = optional()
    map_classes: int | None = optional()
    chance_map: float | None = optional()
    average_precision: list | None = optional()
    published_map_percent: dict | None = optional()
    attributes: dict | None = optional()  # attribute -> values, prompts, scores per prompt kind
    figures: list | None = optional()
    # For the report only: the (C, C) confusion counts at any C; the attributes' generic-prompt
    # confusions (A, V, V), zero-padded to the most values, in `attributes` order; the first
    # class-marginal prompt (shown as an example); why the class-label part was skipped.
    confusion_counts: np.ndarray | None = sidecar()
    attribute_confusions: np.ndarray | None = sidecar()
    marginal_example: np.ndarray | None = sidecar()
    class_skip_reason: np.ndarray | None = sidecar()
    # per labelled test image, in split order: its class index and whether top-1 is right (for
    # paired comparisons between models, e.g. the sweep's model vs model)
    test_labels: np.ndarray | None = sidecar()
    top1_correct: np.ndarray | None = sidecar()


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
    check_choice("zero_shot.split", cfg.split, ("train", "test"))
    check_template_spec("zero_shot.templates", cfg.templates)
    for field, lo in (("k_best", 1), ("top_confusions", 0), ("store_confusion_max_classes", 0)):
        if int(cfg[field]) < lo:
            raise ConfigError(f"config.zero_shot.{field}={cfg[field]} must be >= {lo}")
    for attr, tpl in cfg.attribute_templates.items():
        if not isinstance(tpl, str) or tpl.count("{}") != 1:
            raise ConfigError(
                f"config.zero_shot.attribute_templates.{attr}={tpl!r} must be a string with "
                "exactly one '{}'"
            )
    for attr, values in cfg.attribute_values.items():
        if isinstance(values, str) or not all(isinstance(v, str) for v in values):
            raise ConfigError(
                f"config.zero_shot.attribute_values.{attr}={values!r} must be a tuple of strings"
            )
    if cfg.class_word and not re.fullmatch(r"[A-Za-z][A-Za-z -]*", cfg.class_word):
        raise ConfigError(
            f"config.zero_shot.class_word={cfg.class_word!r} must be a plain word (or '' = off)"
        )


def attribute_prompts(
    template: str, values: Sequence[str], classnames: Sequence[str], class_word: str
) -> tuple[list[list[str]], list[list[str]]]:
    """Generic and class-marginal prompts of one attribute.

    Returns (generic, marginal): generic[v] = [template with value phrase v]; marginal[v] =
    that prompt with the word `class_word` replaced by each class name (its plural by the
    class's plural), one per class; [] when `class_word` is empty or not in the template.
    """
    generic = [[template.replace("{}", v)] for v in values]
    marginal: list[list[str]] = []
    word = class_word.strip()
    if word and classnames:
        pat = re.compile(rf"\b({re.escape(word)}|{re.escape(plural(word))})\b")
        if any(pat.search(g[0]) for g in generic):

            def sub(text: str, name: str) -> str:
                return pat.sub(lambda m: name if m.group(1) == word else plural(name), text)

            marginal = [[sub(g[0], str(c)) for c in classnames] for g in generic]
    return generic, marginal


def attribute_template(cfg: ml_collections.ConfigDict, attr: str) -> str:
    """The prompt template of an attribute (the config's, else a generic one)."""
    return cfg.attribute_templates.get(attr, DEFAULT_ATTRIBUTE_TEMPLATE)


def _attr_values(cfg: ml_collections.ConfigDict, attr: str, names: Sequence[str]) -> list[str]:
    phrases = cfg.attribute_values.get(attr, None)
    if phrases is None:
        return list(names)
    if len(phrases) != len(names):
        raise ConfigError(
            f"config.zero_shot.attribute_values.{attr} has {len(phrases)} phrases but the "
            f"dataset's {attr!r} has {len(names)} values: {', '.join(names)}"
        )
    return list(phrases)


def _attribute_names(ctx: Context, cfg: Any, features: Any) -> dict[str, tuple[str, ...]]:
    """Attribute -> value names of the attributes to classify ({} when off or none)."""
    attrs = dict(getattr(features, "attributes", None) or {})
    if not cfg.attributes or not attrs:
        return {}
    info = attribute_value_names(ctx, cfg.split)
    return {a: v for a, v in info.items() if a in attrs and len(v) >= 2}


def analyse(ctx: Context, cfg: ml_collections.ConfigDict) -> ZeroShotResult:
    """Zero-shot on the class labels and the attributes of `cfg.split` (cfg = config.zero_shot)."""
    check_config(cfg)
    features = ctx.features(cfg.split)
    split = ctx.split_name(cfg.split)
    x = np.asarray(features.embeds, np.float32)
    labels = np.asarray(features.labels, np.int64)
    classnames = tuple(str(c) for c in features.classnames)
    multi = getattr(features, "labels_multi", None)
    if multi is not None:
        return _multilabel(ctx, cfg, x, np.asarray(multi, bool), classnames, split)
    keep = labels >= 0
    can_classify = bool(keep.any()) and len(classnames) >= 2
    attr_names = _attribute_names(ctx, cfg, features)
    if not can_classify and not attr_names:
        why = (
            "this split has no class labels"
            if not keep.any()
            else f"the dataset has {len(classnames)} class name(s); zero-shot needs at least 2"
        )
        return ZeroShotResult(split=split, skipped=why)

    set_name, templates, _ = resolve_template_set(cfg.templates, str(ctx.config.dataset))
    # Every prompt of the study in one encoder call.
    class_prompts = (
        [t.replace("{}", c) for c in classnames for t in templates] if can_classify else []
    )
    attr_prompts = {
        a: attribute_prompts(
            attribute_template(cfg, a), _attr_values(cfg, a, v), classnames, cfg.class_word
        )
        for a, v in attr_names.items()
    }
    flat = list(class_prompts)
    for gen, marg in attr_prompts.values():
        flat += [p for ps in gen for p in ps] + [p for ps in marg for p in ps]
    emb = embed_texts(ctx, flat) if flat else np.zeros((0, x.shape[1]), np.float32)
    if emb.shape[1] != x.shape[1]:
        raise ValueError(f"image {x.shape} and text {emb.shape} embeddings differ in D")
    fields: dict[str, Any] = {}
    figures: list[str] = []
    if can_classify:
        text = emb[: len(class_prompts)].reshape(len(classnames), len(templates), -1)
        fields |= _classify(x[keep], labels[keep], text, classnames, set_name, templates, cfg, ctx)
        fields["unlabelled_dropped"] = int((~keep).sum())
        figures += FIGURES
    else:
        why = "this split has no class labels." if not keep.any() else "fewer than 2 classes."
        fields["class_skip_reason"] = np.asarray(why)
    if attr_names:
        attrs, confusions = _attributes(
            x, features, attr_names, attr_prompts, emb[len(class_prompts) :], cfg
        )
        if attrs:
            fields["attributes"] = attrs
            fields["attribute_confusions"] = confusions
            first = next((m[0][0] for _, m in attr_prompts.values() if m), None)
            fields["marginal_example"] = None if first is None else np.asarray(first)
            figures += ATTRIBUTE_FIGURES
    return ZeroShotResult(split=split, **fields, figures=figures)


def _multilabel(
    ctx: Context,
    cfg: ml_collections.ConfigDict,
    x: np.ndarray,
    targets: np.ndarray,
    classnames: tuple[str, ...],
    split: str,
) -> ZeroShotResult:
    """Per-class AP and mAP of a multi-label split (targets: bool (N, C))."""
    if targets.shape != (len(x), len(classnames)):
        raise ValueError(
            f"labels_multi has shape {targets.shape}; expected ({len(x)}, {len(classnames)})"
        )
    if not targets.any():
        return ZeroShotResult(split=split, skipped="no image of this split has a label")
    set_name, templates, _ = resolve_template_set(cfg.templates, str(ctx.config.dataset))
    prompts = [t.replace("{}", c) for c in classnames for t in templates]
    text = embed_texts(ctx, prompts).reshape(len(classnames), len(templates), -1)
    weights = zs.class_text_embeddings(text)
    scores = np.asarray(zs.zero_shot_logits(x, weights, float(ctx.logit_scale)))
    res = multilabel.mean_average_precision(scores, targets)
    positives = targets.sum(0)
    ap = res["ap"]
    rows = [
        {
            "class": c,
            "ap": None if np.isnan(ap[k]) else float(ap[k]),
            "positives": int(positives[k]),
        }
        for k, c in enumerate(classnames)
    ]
    present = positives > 0
    published = lookup(MULTILABEL_MAP, str(ctx.config.model), str(ctx.config.dataset))
    return ZeroShotResult(
        split=split,
        templates={
            "spec": cfg.templates,
            "set": set_name,
            "count": len(templates),
            "templates": list(templates),
        },
        num_samples=len(x),
        num_classes=len(classnames),
        mean_average_precision=res["map"],
        map_classes=res["classes"],
        chance_map=float(np.mean(positives[present] / len(x))),
        average_precision=rows,
        published_map_percent=dict(published) if published else None,
        # CLIP_benchmark averages over every class (AP 0 for a class without positives).
        clip_benchmark={"mean_average_precision": float(np.nan_to_num(ap, nan=0.0).mean())},
    )


def _classify(
    x: np.ndarray,
    y: np.ndarray,
    text: np.ndarray,
    classnames: tuple[str, ...],
    set_name: str,
    templates: tuple[str, ...],
    cfg: ml_collections.ConfigDict,
    ctx: Context,
) -> dict[str, Any]:
    """The class-label fields of the result (text: (C, T, D) raw prompt embeddings)."""
    weights = zs.class_text_embeddings(text)
    res = zs.evaluate_zero_shot(
        x, y, weights, classnames, logit_scale=float(ctx.logit_scale), k_best=int(cfg.k_best)
    )
    c = res.num_classes
    bench = cbm.zero_shot(x, text, y)
    protocol = metrics_protocol(ctx)
    top1, top5, recall = res.top1, res.top5, res.mean_per_class_recall
    if protocol == "clip_benchmark":
        top1, top5, recall = bench["acc1"], bench["acc5"], bench["mean_per_class_recall"]
    counts = np.bincount(y, minlength=c)
    conf = res.confusion
    published = lookup(ZERO_SHOT_TOP1, str(ctx.config.model), str(ctx.config.dataset))
    iv = _intervals(x, y, weights, res, top5 is not None, ctx)
    return {
        "templates": {
            "spec": cfg.templates,
            "set": set_name,
            "count": len(templates),
            "templates": list(templates),
        },
        "num_samples": res.num_samples,
        "num_classes": c,
        "metrics_protocol": protocol,
        "top1": top1,
        "top5": top5,
        "mean_per_class_recall": recall,
        "macro_f1": res.macro_f1,
        **iv,
        "chance": 1.0 / c,
        "majority": float(counts.max() / counts.sum()),
        "per_class": zs.per_class_with_confusions(res.per_class, conf, classnames),
        "best": res.best,
        "worst": res.worst,
        "top_confusions": metrics.top_confusions(conf, classnames, int(cfg.top_confusions)),
        "headline": {
            "method": "zero-shot",
            "split": ctx.split_name(cfg.split),
            "num_samples": res.num_samples,
            "templates": set_name if set_name != "literal" else templates[0],
            "top1": top1,
            "top5": top5,
            "macro_f1": res.macro_f1,
            **{f"{k}_ci": iv[f"{k}_ci"] for k in ("top1", "top5", "macro_f1") if iv[f"{k}_ci"]},
        },
        "published_top1_percent": dict(published) if published else None,
        "clip_benchmark": bench,
        "confusion": conf.tolist() if c <= int(cfg.store_confusion_max_classes) else None,
        "confusion_counts": conf,
    }


def _intervals(
    x: np.ndarray, y: np.ndarray, weights: Any, res: Any, with_top5: bool, ctx: Context
) -> dict[str, Any]:
    """Bootstrap intervals of top-1, top-5, mean per-class recall and macro F1 (same resamples),
    and the per-image labels and top-1 hits they resample (sidecars)."""
    seed = int(ctx.config.seed)
    logits = np.asarray(zs.zero_shot_logits(x, weights, float(ctx.logit_scale)))
    rank = metrics.class_ranks(logits, y, ties="first")
    c = res.num_classes
    return {
        "test_labels": np.asarray(y, np.int64),
        "top1_correct": np.asarray(rank < 1),
        "top1_ci": bootstrap.mean_interval(rank < 1, seed=seed).as_dict(),
        "top5_ci": bootstrap.mean_interval(rank < 5, seed=seed).as_dict() if with_top5 else None,
        **{
            f"{m}_ci": bootstrap.class_interval(y, res.predictions, c, m, seed=seed).as_dict()
            for m in ("mean_per_class_recall", "macro_f1")
        },
    }


def _attribute_weights(
    attr_names: dict[str, tuple[str, ...]],
    attr_prompts: dict[str, tuple[list[list[str]], list[list[str]]]],
    emb: np.ndarray,
) -> dict[str, dict[str, np.ndarray]]:
    """Attribute -> prompt kind ("generic", "class_marginal") -> (V, D) unit class weights.

    The weights of all attributes are built in one call per kind (one compilation instead of
    one per attribute shape).
    """
    d = emb.shape[1]
    pos, parts = 0, {}
    for attr, names in attr_names.items():
        _, marg = attr_prompts[attr]
        v, n_marg = len(names), sum(len(p) for p in marg)
        e_gen = emb[pos : pos + v].reshape(v, 1, d)
        e_marg = emb[pos + v : pos + v + n_marg].reshape(v, -1, d) if marg else None
        parts[attr] = (e_gen, e_marg)
        pos += v + n_marg
    weights: dict[str, dict[str, np.ndarray]] = {a: {} for a in attr_names}
    for kind, i in (("generic", 0), ("class_marginal", 1)):
        todo = [a for a in attr_names if parts[a][i] is not None]
        if todo:
            w = np.asarray(zs.class_text_embeddings(np.concatenate([parts[a][i] for a in todo])))
            bounds = np.cumsum([0] + [len(attr_names[a]) for a in todo])
            for a, lo, hi in zip(todo, bounds[:-1], bounds[1:]):
                weights[a][kind] = w[lo:hi]
    return weights


def _attributes(
    x: np.ndarray,
    features: Any,
    attr_names: dict[str, tuple[str, ...]],
    attr_prompts: dict[str, tuple[list[list[str]], list[list[str]]]],
    emb: np.ndarray,
    cfg: ml_collections.ConfigDict,
) -> tuple[dict[str, Any], np.ndarray]:
    """(attribute -> entry, (A, V, V) generic-prompt confusions) of the labelled attributes."""
    weights = _attribute_weights(attr_names, attr_prompts, emb)
    out: dict[str, Any] = {}
    confusions: list[np.ndarray] = []
    for attr, names in attr_names.items():
        v = len(names)
        y = np.asarray(features.attributes[attr], np.int64)
        ok = (y >= 0) & (y < v)
        if not ok.any():
            continue
        counts = np.bincount(y[ok], minlength=v)
        scores, conf = zs.value_scores(x[ok], y[ok], weights[attr], names)
        out[attr] = {
            "values": list(names),
            "template": attribute_template(cfg, attr),
            "prompts": [g[0] for g in attr_prompts[attr][0]],
            "num_samples": int(ok.sum()),
            "chance": 1.0 / v,
            "majority": float(counts.max() / counts.sum()),
            **scores,
        }
        confusions.append(conf["generic"])
    size = max((len(m) for m in confusions), default=0)
    padded = np.zeros((len(confusions), size, size), np.int64)
    for i, m in enumerate(confusions):
        padded[i, : len(m), : len(m)] = m
    return out, padded


STUDY = Study(analyse, render, ZeroShotResult, check_config)
