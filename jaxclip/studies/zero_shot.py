"""Study: zero-shot classification of one model on one labelled dataset (DESIGN.md item 2).

Binds `jaxclip.analysis.zero_shot` to a model × dataset and writes its report:

* class weights from a template set (CLIP paper §3.1.4: normalise each prompt embedding,
  average over the templates, renormalise), top-1 / top-5, mean per-class recall and macro F1,
  beside chance level and the published numbers when model and dataset match
  (`jaxclip.report.references.ZERO_SHOT_TOP1`: CLIP paper, LAION CLIP_benchmark, the thesis);
* the per-class precision / recall / F1 table (best and worst `k_best` classes, the full table
  in a collapsible block), a per-class F1 bar chart, the clustered confusion matrix and the most
  confused (true, predicted) pairs (the thesis's CIFAR-10 / CIFAR-100 figures 2.3-2.4);
* on datasets with extra labels (the built-in shapes: colour, size, count, background,
  position), zero-shot on each attribute with its own prompt template, against chance;
  optionally "class-marginal" prompts that replace the generic noun ("shape") by every class
  name and average the embeddings, so the prompt names the object as the training captions do.

The results carry a `headline` dict (top-1, top-5, split, sample count, templates) so a joint
report can set zero-shot beside a linear probe of the same features (DESIGN.md item 4).

Reference: A. Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from jaxclip.analysis import zero_shot as zs
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.data.templates import DATASET_TEMPLATES, TEMPLATE_SETS
from jaxclip.report import Report, markdown_table, save_figure
from jaxclip.report import plots_classification as plots
from jaxclip.report.references import ZERO_SHOT_TOP1, lookup
from jaxclip.studies.legacy import LegacySection as Section

__all__ = [
    "POSITION_PHRASES",
    "attribute_prompts",
    "check_config",
    "default_config",
    "embed_texts",
    "plural",
    "resolve_template_set",
    "run",
]

NAME = "zero_shot"

# The phrases the shapes captions use for the nine positions (= jaxclip.data.shapes
# .POSITION_PHRASES, copied here so the config does not import the dataset builder).
POSITION_PHRASES: tuple[str, ...] = (
    "in the top left",
    "at the top",
    "in the top right",
    "on the left",
    "in the center",
    "on the right",
    "in the bottom left",
    "at the bottom",
    "in the bottom right",
)


def default_config() -> ml_collections.ConfigDict:
    """The zero-shot study's section of the config (`config.zero_shot`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role evaluated: "test" or "train"
    # Class prompts: a TEMPLATE_SETS name (photo, imagenet80, imagenet7, cifar, food101, eurosat,
    # source), "dataset" (the set the CLIP paper used for this dataset, "photo" where it has
    # none) or one literal template containing "{}". Several templates are ensembled.
    c.templates = "photo"
    c.k_best = 5  # rows of the best / worst class tables (ranked by F1)
    c.top_confusions = 10  # most confused (true -> predicted) pairs listed and drawn
    c.store_confusion_max_classes = 100  # confusion matrix stored in results.json up to this C
    c.attributes = True  # datasets with extra labels (shapes): zero-shot on each attribute too
    # Attribute -> prompt template, "{}" = the value (or its phrase from attribute_values).
    # Attributes of the dataset not listed here use "a photo of something {}.".
    c.attribute_templates = ml_collections.ConfigDict(
        {
            "color": "a photo of a {} shape.",
            "size": "a photo of a {} shape.",
            "count": "a photo of {}.",
            "background": "a photo of a shape on a {} background.",
            "position": "a photo of a shape {}.",
        }
    )
    # Attribute -> one phrase per value (in value order) put in the template instead of the
    # value's name; attributes not listed use their value names ("red", "small", ...).
    c.attribute_values = ml_collections.ConfigDict(
        {"count": ("one shape", "two shapes", "three shapes"), "position": POSITION_PHRASES}
    )
    # Class-marginal prompts: the generic noun `class_word` (and its plural) in each attribute
    # prompt is replaced by every class name in turn ("a photo of a red circle.", ...) and the
    # C prompt embeddings are averaged (normalise, mean, renormalise). "" = off.
    c.class_word = "shape"
    return c


def check_config(cfg: ml_collections.ConfigDict) -> None:
    """Rejects bad values with one line naming the field and what is allowed."""
    check_choice("zero_shot.split", cfg.split, ("train", "test"))
    _check_template_spec("zero_shot.templates", cfg.templates)
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


def _check_template_spec(field: str, spec: Any) -> None:
    if not isinstance(spec, str) or not (
        spec in TEMPLATE_SETS or spec == "dataset" or spec.count("{}") == 1
    ):
        raise ConfigError(
            f"config.{field}={spec!r} is not valid; choose one of: {', '.join(TEMPLATE_SETS)}, "
            "dataset, or a literal template with exactly one '{}'"
        )


def resolve_template_set(spec: str, dataset: str) -> tuple[str, tuple[str, ...], str]:
    """(name, templates, note) for a template spec: a TEMPLATE_SETS key, "dataset" or a literal.

    "dataset" is the set the CLIP paper used for the dataset (`DATASET_TEMPLATES`), "photo"
    with a note where the dataset has none.
    """
    if spec == "dataset":
        base = dataset.split("/")[0]
        if base in DATASET_TEMPLATES:
            name = DATASET_TEMPLATES[base]
            return name, TEMPLATE_SETS[name], f"the CLIP paper's set for {base}"
        return "photo", TEMPLATE_SETS["photo"], f"{base} has no set of its own; using photo"
    if spec in TEMPLATE_SETS:
        return spec, TEMPLATE_SETS[spec], ""
    if spec.count("{}") == 1:
        return "literal", (spec,), ""
    raise ConfigError(f"template spec {spec!r} is neither a TEMPLATE_SETS key nor a template")


def plural(noun: str) -> str:
    """English plural of a class noun (the last word): +es after s/x/z/ch/sh, else +s."""
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    return noun + "s"


def embed_texts(ctx: Any, texts: Sequence[str]) -> np.ndarray:
    """`ctx.texts` of every distinct string once (one encoder call), rows in `texts` order."""
    texts = [str(t) for t in texts]
    uniq = list(dict.fromkeys(texts))
    emb = np.asarray(ctx.texts(uniq), np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(uniq):
        raise ValueError(f"ctx.texts returned shape {emb.shape} for {len(uniq)} texts")
    pos = {t: i for i, t in enumerate(uniq)}
    return emb[[pos[t] for t in texts]]


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
    if word and classnames and any(_has_word(g[0], word) for g in generic):
        pat = re.compile(rf"\b({re.escape(word)}|{re.escape(plural(word))})\b")

        def sub(text: str, name: str) -> str:
            return pat.sub(lambda m: name if m.group(1) == word else plural(name), text)

        marginal = [[sub(g[0], str(c)) for c in classnames] for g in generic]
    return generic, marginal


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"\b({re.escape(word)}|{re.escape(plural(word))})\b", text) is not None


# ------------------------------------------------------------------------------- the study


def run(ctx: Any, cfg: ml_collections.ConfigDict) -> Section:
    """Runs the zero-shot study on `ctx` (a `Context`) with `cfg` = config.zero_shot."""
    check_config(cfg)
    model, dataset = str(ctx.config.model), str(ctx.config.dataset)
    report = Report("Zero-shot classification")
    features = ctx.features(cfg.split)
    split_name = ctx.split_name(cfg.split) if hasattr(ctx, "split_name") else cfg.split
    x = np.asarray(features.embeds, np.float32)
    labels = np.asarray(features.labels, np.int64)
    classnames = tuple(str(c) for c in features.classnames)
    keep = labels >= 0
    can_classify = bool(keep.any()) and len(classnames) >= 2
    attr_names = _attribute_value_names(ctx, cfg, features)
    results: dict[str, Any] = {"split": split_name}
    if not can_classify and not attr_names:
        why = (
            "this split has no class labels"
            if not keep.any()
            else f"the dataset has {len(classnames)} class name(s); zero-shot needs at least 2"
        )
        report.text(f"Skipped: {why}.")
        return Section(NAME, {"split": split_name, "skipped": why}, report)

    set_name, templates, tnote = resolve_template_set(cfg.templates, dataset)
    # Every prompt of the study in one encoder call.
    class_prompts = (
        [t.replace("{}", c) for c in classnames for t in templates] if can_classify else []
    )
    attr_prompts = {
        a: attribute_prompts(
            _attr_template(cfg, a), _attr_values(cfg, a, v), classnames, cfg.class_word
        )
        for a, v in attr_names.items()
    }
    flat = list(class_prompts)
    for gen, marg in attr_prompts.values():
        flat += [p for ps in gen for p in ps] + [p for ps in marg for p in ps]
    emb = embed_texts(ctx, flat) if flat else np.zeros((0, x.shape[1]), np.float32)
    if emb.shape[1] != x.shape[1]:
        raise ValueError(f"image {x.shape} and text {emb.shape} embeddings differ in D")
    figures: list[str] = []
    wd = ctx.workdir
    if can_classify:
        text = emb[: len(class_prompts)].reshape(len(classnames), len(templates), -1)
        _classify(
            x[keep],
            labels[keep],
            text,
            classnames,
            templates,
            set_name,
            tnote,
            cfg,
            ctx,
            model,
            dataset,
            split_name,
            int((~keep).sum()),
            results,
            report,
            figures,
            wd,
        )
    else:
        report.text(
            "The class-label part is skipped: "
            + ("this split has no class labels." if not keep.any() else "fewer than 2 classes.")
        )
    if attr_names:
        _attributes(
            x,
            features,
            attr_names,
            attr_prompts,
            emb[len(class_prompts) :],
            cfg,
            results,
            report,
            figures,
            wd,
        )
    if can_classify:
        _probe_hook(results, report)
    results["figures"] = figures
    return Section(NAME, results, report)


def _attribute_value_names(
    ctx: Any, cfg: ml_collections.ConfigDict, features: Any
) -> dict[str, tuple[str, ...]]:
    """Attribute -> names of its values (from the dataset source's info), {} when unavailable."""
    attrs = dict(getattr(features, "attributes", None) or {})
    if not cfg.attributes or not attrs:
        return {}
    names: dict[str, tuple[str, ...]] = {}
    info_attrs: dict = {}
    if hasattr(ctx, "source"):
        info_attrs = dict(getattr(ctx.source(cfg.split).info, "attributes", {}) or {})
    # The dataset's attribute order (the features' dict order differs between a fresh
    # extraction and a cache read).
    for a in info_attrs:
        if a in attrs and len(info_attrs[a]) >= 2:
            names[a] = tuple(str(v) for v in info_attrs[a])
    return names


def _attr_template(cfg: ml_collections.ConfigDict, attr: str) -> str:
    return cfg.attribute_templates.get(attr, "a photo of something {}.")


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


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * float(x)


def _classify(
    x: np.ndarray,
    y: np.ndarray,
    text: np.ndarray,
    classnames: tuple[str, ...],
    templates: tuple[str, ...],
    set_name: str,
    tnote: str,
    cfg: ml_collections.ConfigDict,
    ctx: Any,
    model: str,
    dataset: str,
    split: str,
    n_unlabelled: int,
    results: dict,
    report: Report,
    figures: list[str],
    wd: Any,
) -> None:
    weights = zs.class_text_embeddings(text)
    res = zs.evaluate_zero_shot(
        x, y, weights, classnames, logit_scale=float(ctx.logit_scale), k_best=int(cfg.k_best)
    )
    c = res.num_classes
    counts = np.bincount(y, minlength=c)
    chance, majority = 1.0 / c, float(counts.max() / counts.sum())
    published = lookup(ZERO_SHOT_TOP1, model, dataset)
    conf = res.confusion
    # Most frequent wrong prediction per class (row maximum off the diagonal).
    off = conf.astype(np.int64).copy()
    np.fill_diagonal(off, -1)
    per_class = []
    for k, row in enumerate(res.per_class):
        j = int(np.argmax(off[k]))
        share = off[k, j] / max(int(counts[k]), 1)
        per_class.append(
            {
                **row,
                "index": k,
                "confused_with": classnames[j] if off[k, j] > 0 else None,
                "confused_share": float(share) if off[k, j] > 0 else 0.0,
            }
        )
    top_conf = plots.top_confusions(conf, classnames, int(cfg.top_confusions))
    results.update(
        {
            "templates": {
                "spec": cfg.templates,
                "set": set_name,
                "count": len(templates),
                "templates": list(templates),
            },
            "num_samples": res.num_samples,
            "num_classes": c,
            "unlabelled_dropped": n_unlabelled,
            "top1": res.top1,
            "top5": res.top5,
            "mean_per_class_recall": res.mean_per_class_recall,
            "macro_f1": res.macro_f1,
            "chance": chance,
            "majority": majority,
            "per_class": per_class,
            "best": res.best,
            "worst": res.worst,
            "top_confusions": top_conf,
            "headline": {
                "method": "zero-shot",
                "split": split,
                "num_samples": res.num_samples,
                "templates": set_name if set_name != "literal" else templates[0],
                "top1": res.top1,
                "top5": res.top5,
                "macro_f1": res.macro_f1,
            },
        }
    )
    if published:
        results["published_top1_percent"] = dict(published)
    if c <= int(cfg.store_confusion_max_classes):
        results["confusion"] = conf.tolist()

    # ---------------------------------------------------------------------- report: accuracy
    if len(templates) == 1:
        how = f'the single template "{templates[0]}"'
    else:
        shown = ", ".join(f'"{t}"' for t in templates[:3])
        how = (
            f"the {len(templates)} templates of the `{set_name}` set ({shown}, …), ensembled: "
            "each prompt embedding is normalised, the C class embeddings are the renormalised "
            "mean over templates (CLIP paper §3.1.4)"
        )
    note = f" (`templates = {cfg.templates}`: {tnote})" if tnote else ""
    drop = f" {n_unlabelled} images without a label are left out." if n_unlabelled else ""
    report.text(
        f"Each image is assigned the class whose text embedding has the highest cosine "
        f"similarity with it. Class prompts{note}: {how}. Data: {res.num_samples} images of "
        f"the `{split}` split of `{dataset}`, {c} classes, embedded by `{model}`.{drop} "
        "Top-k counts an image as correct when its class is among the k highest scores (ties "
        "go to the lower class index, as argmax). Mean per-class recall (balanced accuracy) "
        "weighs every class equally; macro F1 is the unweighted mean of the per-class F1. "
        f"Chance is 1/C = {100 * chance:.2f} % for top-1 (always answering the most frequent "
        f"class: {100 * majority:.2f} %) and {100 * min(1.0, 5 / c):.2f} % for top-5."
    )
    report.section("Accuracy", level=2)
    rows = [
        {"metric": "top-1 accuracy", "ours %": _pct(res.top1), "chance %": 100 * chance},
        {"metric": "top-5 accuracy", "ours %": _pct(res.top5), "chance %": 100 * min(1, 5 / c)},
        {
            "metric": "mean per-class recall",
            "ours %": _pct(res.mean_per_class_recall),
            "chance %": 100 * chance,
        },
        {"metric": "macro F1", "ours %": _pct(res.macro_f1), "chance %": None},
    ]
    report.table(rows, floatfmt=".2f")
    if published:
        pub = [{"source": "ours (this run)", "top-1 %": 100 * res.top1}] + [
            {"source": k, "top-1 %": v} for k, v in published.items()
        ]
        report.text(
            f"Published zero-shot top-1 for `{model}` on `{dataset.split('/')[0]}`. The CLIP "
            "paper and CLIP_benchmark use the dataset's own prompt ensemble (`templates="
            'dataset`); the thesis used the single prompt "a photo of a {label}" (our '
            "`photo` set adds a full stop). Differences of about a point also come from "
            "preprocessing (resize/crop details) and the exact split."
        )
        report.table(pub, floatfmt=".2f")
    else:
        report.text(
            f"No published zero-shot numbers are on file for `{model}` on `{dataset}` "
            "(jaxclip.report.references.ZERO_SHOT_TOP1), so none are shown."
        )

    # --------------------------------------------------------------------- report: per class
    def table_rows(items: Sequence[dict]) -> list[dict]:
        return [
            {
                "class": r["class"],
                "precision %": 100 * r["precision"],
                "recall %": 100 * r["recall"],
                "F1 %": 100 * r["f1"],
                "support": r["support"],
                "most often mistaken for": (
                    f"{r['confused_with']} ({100 * r['confused_share']:.1f} %)"
                    if r["confused_with"]
                    else "—"
                ),
            }
            for r in items
        ]

    report.section("Per-class precision, recall and F1", level=2)
    report.text(
        "Precision: of the images predicted as the class, the share that belong to it; recall: "
        "of the class's images, the share found; F1 their harmonic mean (0 when a class is "
        "never predicted and never right). The last column is the wrong class its images are "
        "most often given, with the share of the class's images."
    )
    best = [per_class[r["index"]] for r in res.best]
    worst = [per_class[r["index"]] for r in res.worst]
    if c <= 2 * int(cfg.k_best):
        report.table(
            table_rows(sorted(per_class, key=lambda r: -r["f1"])),
            floatfmt=".1f",
            caption="All classes, best F1 first",
        )
    else:
        report.table(table_rows(best), floatfmt=".1f", caption=f"Best {len(best)} classes by F1")
        report.table(table_rows(worst), floatfmt=".1f", caption=f"Worst {len(worst)} classes by F1")
        report.text(
            f"<details><summary>All {c} classes (click to expand)</summary>\n\n"
            + markdown_table(table_rows(per_class), floatfmt=".1f")
            + "\n</details>"
        )
    f1 = np.asarray([r["f1"] for r in per_class])
    figures.append(
        plots.plot_per_class_f1(
            f1,
            classnames,
            wd,
            name="zero_shot_per_class_f1.png",
            title=f"Zero-shot per-class F1 ({c} classes, sorted); dashed: macro F1 = "
            f"{f1.mean():.3f}",
        )
    )
    report.figure(figures[-1], "Per-class F1, best to worst (dashed: the mean)")

    # -------------------------------------------------------------------- report: confusions
    report.section("Confusions", level=2)
    figures.append(
        plots.plot_confusion_matrix(
            conf,
            classnames,
            wd,
            name="zero_shot_confusion.png",
            title=f"Zero-shot confusion matrix ({c} classes, clustered order)",
            top_n=int(cfg.top_confusions),
        )
    )
    report.text(
        "Rows are true classes, columns predictions, each row normalised to 1 and drawn on a "
        "square-root colour scale so that small confusions stay visible. Classes are reordered "
        "by hierarchical clustering of the symmetrised confusions, so groups of classes that "
        "are mistaken for one another form blocks along the diagonal."
    )
    report.figure(figures[-1], "Row-normalised confusion matrix (clustered class order)")
    if top_conf:
        report.table(
            [
                {
                    "true class": r["true"],
                    "predicted as": r["predicted"],
                    "images": r["count"],
                    "share of the true class %": 100 * r["fraction"],
                }
                for r in top_conf
            ],
            floatfmt=".1f",
            caption="Most confused pairs (share of the true class's images given that label)",
        )
    else:
        report.text("No image is misclassified: there are no confusions to list.")


def _probe_hook(results: dict, report: Report) -> None:
    """The "zero-shot vs linear probe" section: our numbers, and where the probe's come from."""
    report.section("Zero-shot vs linear probe", level=2)
    report.text(
        f"Zero-shot uses no labels: {100 * results['top1']:.2f} % top-1 here. A linear probe "
        "trained on the same image embeddings (the `probe` study) uses the training labels and "
        "usually does better on the dataset it was trained for (the sources: 68.75 % probe vs "
        "58.85 % zero-shot on an ImageNet subset; CIFAR-100 78.01 % vs 61.71 %). The `headline` "
        "entry of this study's results holds the numbers a joint report sets beside the probe's."
    )


# -------------------------------------------------------------------------------- attributes


def _attributes(
    x: np.ndarray,
    features: Any,
    attr_names: dict[str, tuple[str, ...]],
    attr_prompts: dict[str, tuple[list[list[str]], list[list[str]]]],
    emb: np.ndarray,
    cfg: ml_collections.ConfigDict,
    results: dict,
    report: Report,
    figures: list[str],
    wd: Any,
) -> None:
    out: dict[str, Any] = {}
    confusions: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    # Slice each attribute's prompt embeddings, then build the class weights of all attributes
    # in one call per kind (one compilation instead of one per attribute shape).
    d = emb.shape[1]
    pos, parts = 0, {}
    for attr, names in attr_names.items():
        gen, marg = attr_prompts[attr]
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
    rows = []
    for attr, names in attr_names.items():
        gen, _ = attr_prompts[attr]
        v = len(names)
        y = np.asarray(features.attributes[attr], np.int64)
        ok = (y >= 0) & (y < v)
        if not ok.any():
            continue
        yk, xk = y[ok], x[ok]
        counts = np.bincount(yk, minlength=v)
        entry: dict[str, Any] = {
            "values": list(names),
            "template": _attr_template(cfg, attr),
            "prompts": [g[0] for g in gen],
            "num_samples": int(ok.sum()),
            "chance": 1.0 / v,
            "majority": float(counts.max() / counts.sum()),
        }
        for kind, w in weights[attr].items():
            r = zs.evaluate_zero_shot(xk, yk, w, names, k_best=1)
            entry[kind] = {
                "top1": r.top1,
                "mean_per_class_recall": r.mean_per_class_recall,
                "macro_f1": r.macro_f1,
                "per_value_recall": {
                    p["class"]: p["recall"] for p in r.per_class if p["support"] > 0
                },
            }
            if kind == "generic":
                confusions[attr] = (r.confusion, names)
        out[attr] = entry
        rows.append(
            {
                "attribute": attr,
                "values": v,
                "prompt (first value)": entry["prompts"][0],
                "top-1 %": _pct(entry["generic"]["top1"]),
                "balanced acc. %": _pct(entry["generic"]["mean_per_class_recall"]),
                "class-marginal top-1 %": _pct(entry.get("class_marginal", {}).get("top1")),
                "chance 1/K %": 100.0 / v,
                "majority %": 100 * entry["majority"],
            }
        )
    if not out:
        return
    results["attributes"] = out
    report.section("Zero-shot on the other attributes", level=2)
    marg_note = (
        f' The class-marginal column replaces "{cfg.class_word}" by each class name '
        f'("{_first_marginal(attr_prompts)}", …) and averages the prompt embeddings over the '
        "classes, so the prompt names the object as training captions do; a large gain over "
        f'the generic prompt means the model does not understand "{cfg.class_word}".'
        if cfg.class_word and any(m for _, m in attr_prompts.values())
        else ""
    )
    report.text(
        "Besides the class label this dataset labels every image with the attributes below. "
        "Each is classified zero-shot like the classes: one prompt per value (template in the "
        "config, `zero_shot.attribute_templates`), the value with the most similar prompt "
        "wins. Chance is 1/K for K values; the majority column is the accuracy of always "
        f"answering the most frequent value.{marg_note}"
    )
    report.table(rows, floatfmt=".1f")
    figures.append(_plot_attribute_accuracy(out, wd))
    report.figure(figures[-1], "Attribute zero-shot top-1 against chance")
    figures.append(_plot_attribute_confusions(confusions, wd))
    report.figure(
        figures[-1],
        "Row-normalised confusion matrices of the attributes (generic prompts; rows true)",
    )


def _first_marginal(attr_prompts: dict) -> str:
    for _, marg in attr_prompts.values():
        if marg:
            return marg[0][0]
    return ""


def _plot_attribute_accuracy(out: dict[str, Any], wd: Any) -> str:
    attrs = list(out)
    kinds = [k for k in ("generic", "class_marginal") if any(k in out[a] for a in attrs)]
    fig, ax = plt.subplots(figsize=(1.6 * len(attrs) + 3.0, 4.2))
    width = 0.8 / len(kinds)
    colors = {"generic": "#3b6fb6", "class_marginal": "#e69f00"}
    xs = np.arange(len(attrs))
    for i, kind in enumerate(kinds):
        vals = [100 * out[a][kind]["top1"] if kind in out[a] else np.nan for a in attrs]
        pos = xs - 0.4 + width * (i + 0.5)
        bars = ax.bar(
            pos, vals, width * 0.92, color=colors[kind], label=kind.replace("_", "-") + " prompts"
        )
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v + 1, f"{v:.0f}", ha="center", fontsize=8)
    for j, a in enumerate(attrs):
        ax.hlines(
            100 * out[a]["chance"],
            j - 0.45,
            j + 0.45,
            colors="k",
            linestyles="--",
            label="chance 1/K" if j == 0 else None,
        )
    ax.set_xticks(xs, [f"{a}\n({len(out[a]['values'])} values)" for a in attrs])
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Zero-shot on the attributes (dashed: chance)")
    return save_figure(fig, wd, "zero_shot_attributes.png")


def _plot_attribute_confusions(
    confusions: dict[str, tuple[np.ndarray, tuple[str, ...]]], wd: Any
) -> str:
    n = len(confusions)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.3 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (attr, (conf, names)) in zip(axes.ravel(), confusions.items()):
        p = plots.row_normalize(conf)
        ax.imshow(p, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
        k = len(names)
        ax.set_xticks(range(k), names, rotation=90, fontsize=8)
        ax.set_yticks(range(k), names, fontsize=8)
        for i in range(k):
            for j in range(k):
                if p[i, j] >= 0.005:
                    ax.text(
                        j,
                        i,
                        "1" if p[i, j] >= 0.995 else f"{p[i, j]:.2f}"[1:],
                        ha="center",
                        va="center",
                        fontsize=6 if k > 6 else 7,
                        color="white" if p[i, j] > 0.45 else "black",
                    )
        acc = np.trace(conf) / max(conf.sum(), 1)
        ax.set_title(f"{attr}: top-1 {100 * acc:.1f} % (chance {100 / k:.1f} %)", fontsize=10)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, wd, "zero_shot_attribute_confusions.png")
