"""Study: the double-ellipsoid geometry of the raw embedding space (Levi & Gilboa 2025).

Binds the pure analyses of `jaxclip.analysis.geometry`, `jaxclip.analysis.conformity` and
`jaxclip.losses` to one model × dataset and writes their report (DESIGN.md item 9):

* modality means ‖m‖, ‖σ‖, ‖m‖/‖σ‖ (paper, COCO ViT-B/32: 0.94 images, 1.03 text);
* per-feature separability Sep(l) (Eq. 5), its top-k table, per-modality histograms of the most
  separating features, and a linear SVM on the two best features (Fig. 2);
* thin-shell statistics of the centred vectors (Eqs. 3-4; COCO images 7.5873 vs 7.6007);
* variance spectrum and off-diagonal dominance ODD (Eq. 6, Fig. 5); the modality-gap vector;
* the CLIP loss as one modality is shifted, v' = v − α·m (Eq. 9), split into alignment /
  uniformity and correctly / wrongly matched terms, image side and text side (Fig. 6);
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
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from jaxclip.analysis import conformity as conf
from jaxclip.analysis import geometry as geo
from jaxclip.config_args import ConfigError, check_choice
from jaxclip.report import Report, markdown_table, save_figure
from jaxclip.report import plots_geometry as plots
from jaxclip.report.references import lookup
from jaxclip.studies.legacy import LegacySection as Section

__all__ = ["PAPER", "Pairs", "alpha_grid", "check_config", "default_config", "make_pairs", "run"]

NAME = "geometry"
SIDES = ("image", "text")
KL_METHODS = ("histogram", "gaussian")

# Published numbers of Levi & Gilboa (OpenAI ViT-B/32 on MS-COCO val, 5k images as one batch),
# printed beside ours when model and dataset match (`jaxclip.report.references.lookup` keys).
PAPER: dict[tuple[str, str], dict[str, float]] = {
    ("vit_b32", "coco_captions"): {
        "ratio_image": 0.94,  # ‖m_i‖/‖σ_i‖
        "ratio_text": 1.03,  # ‖m_t‖/‖σ_t‖
        "svm_accuracy": 1.0,  # linear SVM on features 93 and 134
        "shell_mean_norm_image": 7.5873,  # μ_norm = E‖v − m‖ of images
        "shell_var_norm_image": 0.1914,  # var(‖v − m‖) of images
        "shell_sqrt_trace_image": 7.6007,  # sqrt(E‖v − m‖²) = sqrt(tr C)
        "shell_rel_error_image": 0.0018,  # 0.18 %
        "conformity_pearson_image": 0.9998,  # raw-mean estimate, Eq. 11
        "conformity_pearson_text": 0.9998,
        "conformity_a_image": 1.461,
        "conformity_b_image": -0.002,
        "conformity_a_text": 1.411,
        "conformity_b_text": -0.008,
        "kl_at_0": 0.14,  # KL of the conformity distributions at α = 0 (Fig. 11)
        "n_tag_features": 9,  # features acting as modality "tags" (Sec. 4)
        "dimension": 512,
    }
}
_P = PAPER[("vit_b32", "coco_captions")]  # the paper's setting, quoted in every report


def default_config() -> ml_collections.ConfigDict:
    """The geometry study's section of the config (`config.geometry`)."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role analysed, "test" or "train" (the paper: all of COCO val)
    # Captioned datasets: the caption paired with each image: "first", a 0-based index ("2"),
    # or "all" (every caption, its image repeated once per caption in the loss and KL/loss
    # sweeps' pairs; image statistics still count each image once).
    c.caption = "first"
    c.class_template = "a photo of a {}."  # no captions: the text paired with each image
    c.max_pairs = 0  # > 0: a seeded random subset of this many images (0 = all, as the paper)
    c.alpha_min = -1.0  # α grid of the shift v' = v − α·m (Eq. 9): lower end
    c.alpha_max = 1.0  # upper end (α = 1 centres the shifted modality at the origin)
    c.num_alphas = 21  # grid points, evenly spaced; α = 0 (CLIP as trained) is always added
    c.sides = ("image", "text")  # which modality is shifted, one sweep each (loss and KL)
    c.logit_scale = 0.0  # s = 1/τ of the loss; 0 = the model's own learned `ctx.logit_scale`
    c.loss_memory_mb = 256  # memory budget of the blockwise loss sweep (rows per block follow)
    c.top_k = 10  # rows of the table of most separating features
    c.hist_features = 3  # most separating features drawn as per-modality histograms
    c.feature_kl_bins = 60  # bins of the per-feature image-vs-text histogram KL in the Sep table
    c.svm_c = 1.0  # C of the linear SVM on the two most separating features
    c.kl_method = "histogram"  # conformity KL: "histogram" (binned) or "gaussian" (fitted)
    c.kl_bins = 100  # bins of the conformity histograms (KL and the distribution plot)
    c.kl_smoothing = 0.5  # additive smoothing of histogram counts (0.5 = Jeffreys prior)
    c.max_scatter_points = 5000  # points drawn in scatter plots (SVM, conformity); seeded
    c.examples = 3  # most / least conforming captions listed (captioned datasets)
    return c


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
    v = str(value).strip().lower()
    if v == "first":
        return 0
    if v == "all":
        return "all"
    if v.isdigit():
        return int(v)
    raise ConfigError(
        f"config.geometry.caption={value!r} is not valid; use 'first', 'all' or a 0-based index"
    )


def alpha_grid(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """`num_alphas` evenly spaced α in [alpha_min, alpha_max], plus α = 0, sorted, unique."""
    grid = np.linspace(cfg.alpha_min, cfg.alpha_max, int(cfg.num_alphas))
    grid = np.unique(np.round(np.concatenate([grid, [0.0]]), 10))
    return grid + 0.0  # no -0.0


# ------------------------------------------------------------------------------------ pairs


@dataclasses.dataclass
class Pairs:
    """The embeddings one geometry run analyses.

    `image` / `text` are the two modalities for the per-modality statistics (each image once;
    every text used once); `pair_image[j]`, `pair_text[j]` is pair j of the loss sweep.
    """

    image: np.ndarray  # (N_i, D) raw image embeddings, each image once
    text: np.ndarray  # (N_t, D) raw text embeddings
    texts: list[str]  # (N_t,) the text of each row of `text`
    pair_image: np.ndarray  # (P, D)
    pair_text: np.ndarray  # (P, D)
    source: str  # "captions" or "class_prompts"
    description: str  # one sentence for the report
    notes: list[str]  # anything dropped or special, for the report


def _embed_unique(texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Embeds each distinct string once and returns (len(texts), D) in order."""
    uniq, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    emb = np.asarray(embed([str(u) for u in uniq]), np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(uniq):
        raise ValueError(f"text embedder returned shape {emb.shape} for {len(uniq)} texts")
    return emb[inverse.reshape(-1)]


def _check_d(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    if text.shape[1] != image.shape[1]:
        raise ValueError(f"image {image.shape} and text {text.shape} embeddings differ in D")
    return text


def make_pairs(
    features: Any,
    cfg: ml_collections.ConfigDict,
    embed: Callable[[list[str]], np.ndarray],
    *,
    seed: int = 0,
) -> Pairs | str:
    """Pairs the images of `features` (an `ImageFeatures`) with texts, or says why it cannot.

    Captioned: caption `cfg.caption` of each image ("all": every caption, image repeated).
    Otherwise `cfg.class_template` of the image's class name (rows with label -1 dropped).

    Returns:
      `Pairs`, or a one-line reason (str) when the data has neither captions nor labels.
    """
    emb = np.asarray(features.embeds, np.float32)
    if emb.ndim != 2:
        raise ValueError(f"image embeddings must be (N, D), got shape {emb.shape}")
    n_all = len(emb)
    notes: list[str] = []
    rows = np.arange(n_all)
    if cfg.max_pairs and n_all > cfg.max_pairs:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n_all, size=int(cfg.max_pairs), replace=False))
        notes.append(f"a seeded random subset of {len(rows)} of the {n_all} images is used")
    if features.captions is not None:
        choice = _caption_choice(cfg.caption)
        caps = [list(features.captions[r]) for r in rows]
        if choice == "all":
            keep = np.asarray([len(c) > 0 for c in caps], bool)
            texts = [t for c, k in zip(caps, keep) if k for t in c]
            owner = np.repeat(np.arange(len(caps))[keep], [len(c) for c, k in zip(caps, keep) if k])
            description = (
                "every caption is paired with its image: the loss batch holds one pair per "
                "caption, so each image appears once per caption (its copies tie exactly, and "
                "the other captions of the same image are negatives); image statistics count "
                "each image once"
            )
        else:
            keep = np.asarray([len(c) > choice for c in caps], bool)
            texts = [c[choice] for c, k in zip(caps, keep) if k]
            owner = np.arange(int(keep.sum()))
            which = "its first caption" if choice == 0 else f"its caption number {choice} (0-based)"
            description = f"each image is paired with {which}"
        if not keep.all():
            notes.append(f"{int((~keep).sum())} images without such a caption are left out")
        if not keep.any():
            return f"no image of this split has caption {cfg.caption!r}"
        image = emb[rows[keep]]
        text = _check_d(image, _embed_unique(texts, embed))
        return Pairs(image, text, texts, image[owner], text, "captions", description, notes)
    labels = np.asarray(features.labels)[rows]
    keep = labels >= 0
    if not keep.any():
        return "this split has neither captions nor labels, so images cannot be paired with texts"
    if not keep.all():
        notes.append(f"{int((~keep).sum())} images without a label are left out")
    names = list(features.classnames)
    texts = [cfg.class_template.format(names[int(k)]) for k in labels[keep]]
    image = emb[rows[keep]]
    text = _check_d(image, _embed_unique(texts, embed))
    n_cls = len(set(texts))
    description = (
        f"this dataset has no captions, so each image is paired with the prompt "
        f'"{cfg.class_template.format("{classname}")}" of its label. The text side therefore '
        f"has only {n_cls} distinct points (one per class, weighted by class frequency): its "
        "shell, spectrum and conformity describe those class prompts, and images of one class "
        "share their text, so the loss has exact ties (false negatives by construction)"
    )
    return Pairs(image, text, texts, image, text, "class_prompts", description, notes)


# ------------------------------------------------------------------------------- the study


def run(ctx: Any, cfg: ml_collections.ConfigDict) -> Section:
    """Runs the geometry study on `ctx` (a `Context`) with `cfg` = config.geometry."""
    check_config(cfg)
    seed = int(getattr(ctx.config, "seed", 0))
    model, dataset = str(ctx.config.model), str(ctx.config.dataset)
    report = Report("Geometry of the raw embedding space: the double ellipsoid")
    features = ctx.features(cfg.split)
    pairs = make_pairs(features, cfg, ctx.texts, seed=seed)
    if isinstance(pairs, str):
        report.text(f"Skipped: {pairs}.")
        return Section(NAME, {"skipped": pairs}, report)
    if cfg.logit_scale > 0:
        scale, scale_src = float(cfg.logit_scale), "set in the config"
    else:
        scale, scale_src = float(ctx.logit_scale), "the model's own learned value"
    paper = lookup(PAPER, model, dataset)
    split_name = ctx.split_name(cfg.split) if hasattr(ctx, "split_name") else cfg.split
    results: dict[str, Any] = {
        "pairs": {
            "source": pairs.source,
            "caption": str(cfg.caption) if pairs.source == "captions" else None,
            "split": split_name,
            "n_images": len(pairs.image),
            "n_texts": len(pairs.text),
            "n_distinct_texts": len(set(pairs.texts)),
            "n_pairs": len(pairs.pair_image),
            "dimension": int(pairs.image.shape[1]),
        },
    }
    if paper:
        results["paper"] = dict(paper)
    report.text(_intro(pairs, split_name, model, dataset, paper))
    n_texts = len(set(pairs.texts))
    if len(pairs.image) < 2 or n_texts < 2:
        msg = f"need at least 2 images and 2 distinct texts, got {len(pairs.image)} and {n_texts}"
        report.text(f"Skipped: {msg}.")
        results["skipped"] = msg
        return Section(NAME, results, report)
    wd = ctx.workdir
    figures: list[str] = []
    body = _Deferred()  # the parts' report, written after the at-a-glance table they feed
    _moments(pairs, results, body, paper)
    _separability(pairs, cfg, results, body, figures, wd, seed)
    _shell_and_spectrum(pairs, results, body, figures, wd, paper)
    _gap(pairs, results, body)
    _loss(pairs, cfg, scale, scale_src, results, body, figures, wd)
    _conformity(pairs, cfg, results, body, figures, wd, paper)
    _kl(pairs, cfg, results, body, figures, wd, paper)
    results["figures"] = figures
    report.section("At a glance", level=2)
    report.text(
        "The headline numbers of the parts below, beside the paper's for OpenAI ViT-B/32 on "
        "MS-COCO (a reference point, not a target, unless this is that model and dataset)."
    )
    report.table(_glance(results), floatfmt=".4f")
    body.replay(report)
    return Section(NAME, results, report)


class _Deferred:
    """Records `Report` calls (section, text, table, figure) to replay them onto a Report later."""

    def __init__(self) -> None:
        self._calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method not in ("section", "text", "table", "figure"):
            raise AttributeError(method)
        return lambda *args, **kwargs: self._calls.append((method, args, kwargs))

    def replay(self, report: Report) -> None:
        for method, args, kwargs in self._calls:
            getattr(report, method)(*args, **kwargs)


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _glance(results: dict) -> list[dict[str, str]]:
    """Rows (quantity, ours, paper) from the results dict."""
    mo, sh, cf = results["moments"], results["thin_shell"], results["conformity"]
    rows = [
        ("‖m‖/‖σ‖, images", _fmt(mo["image"]["ratio"], ".3f"), f"{_P['ratio_image']}"),
        ("‖m‖/‖σ‖, texts", _fmt(mo["text"]["ratio"], ".3f"), f"{_P['ratio_text']}"),
        (
            "features with Sep > 1",
            f"{results['separability']['n_features_sep_gt_1']} of {results['pairs']['dimension']}",
            f"{_P['n_tag_features']} 'tag' features of {_P['dimension']}",
        ),
        (
            "SVM accuracy on the 2 best features",
            f"{100 * results['svm']['accuracy']:.2f} %",
            f"{100 * _P['svm_accuracy']:.0f} %",
        ),
        (
            "thin shell: mean ‖v − m‖ vs sqrt(tr C), images",
            f"{_fmt(sh['image']['mean_norm'])} vs {_fmt(sh['image']['sqrt_trace'])} "
            f"({100 * sh['image']['rel_error']:.2f} %)",
            f"{_P['shell_mean_norm_image']} vs {_P['shell_sqrt_trace_image']} "
            f"({100 * _P['shell_rel_error_image']:.2f} %)",
        ),
        ("‖m_i − m_t‖ (modality gap)", _fmt(results["gap"]["norm"]), "not reported"),
    ]
    for side in SIDES:
        if side in results["loss"]:
            su = results["loss"][side]["summary"]
            rows.append(
                (
                    f"α of minimal loss, {side}s shifted (loss at α = 0)",
                    f"{su['alpha_min_total']:+.2f} ({su['total_at_0']:.4f})",
                    "≈ 0" if side == "image" else "≈ 0 (supplement)",
                )
            )
    rows.append(
        (
            "conformity vs cos to raw mean: Pearson, images / texts",
            f"{_fmt(cf['image']['raw']['pearson'])} / {_fmt(cf['text']['raw']['pearson'])}",
            f"{_P['conformity_pearson_image']} / {_P['conformity_pearson_text']}",
        )
    )
    rows.append(
        (
            "conformity raw-mean fit: slope a, images / texts",
            f"{_fmt(cf['image']['raw']['a'], '.3f')} / {_fmt(cf['text']['raw']['a'], '.3f')}",
            f"{_P['conformity_a_image']} / {_P['conformity_a_text']}",
        )
    )
    rows.append(
        (
            "conformity vs cos to normalised mean: Pearson, images / texts",
            f"{_fmt(cf['image']['normalised']['pearson'], '.6f')} / "
            f"{_fmt(cf['text']['normalised']['pearson'], '.6f')}",
            "(exactly 1: identity)",
        )
    )
    for side in SIDES:
        if side in results["kl"]:
            k = results["kl"][side]
            rows.append(
                (
                    f"α of minimal conformity KL, {side}s shifted (KL at α = 0)",
                    f"{k['alpha_min']:+.2f} ({k['kl_at_0']:.4f})",
                    f"≈ 0 ({_P['kl_at_0']})" if side == "image" else "not reported",
                )
            )
    return [{"quantity": q, "ours": o, "paper (ViT-B/32, COCO)": p} for q, o, p in rows]


def _intro(pairs: Pairs, split: str, model: str, dataset: str, paper: dict) -> str:
    notes = "".join(f" Note: {n}." for n in pairs.notes)
    ref = (
        " The model and dataset are those of the paper, so its numbers are printed beside ours."
        if paper
        else " The paper's numbers (OpenAI ViT-B/32 on MS-COCO) are quoted in the text for "
        "orientation; they are not expected to match another model or dataset."
    )
    return (
        "This study looks at the *raw* embeddings, before the L2 normalisation CLIP applies for "
        'its cosine similarities, following Levi & Gilboa, "The Double-Ellipsoid Geometry of '
        'CLIP" (2025). Their finding for ViT-B/32 on MS-COCO: images and texts lie on two '
        "separate, thin, tilted ellipsoidal shells, each centred well away from the origin, and "
        "the contrastive loss is lowest near that offset.\n\n"
        f"Data: {len(pairs.image)} images and {len(pairs.text)} texts of the `{split}` split of "
        f"`{dataset}`, embedded by `{model}`; {pairs.description}. The whole set is analysed as "
        f"one batch of {len(pairs.pair_image)} pairs, as the paper does on COCO. Statistics use "
        f"population moments (ddof = 0); D = {pairs.image.shape[1]} features.{notes}{ref}"
    )


def _paper_cell(paper: dict, key: str) -> dict[str, Any]:
    return {"paper": paper[key]} if paper and key in paper else {}


def _moments(pairs: Pairs, results: dict, report: Any, paper: dict) -> None:
    out, rows = {}, []
    for name, x in (("image", pairs.image), ("text", pairs.text)):
        m = geo.modality_moments(x)
        out[name] = {"mean_norm": m.mean_norm, "std_norm": m.std_norm, "ratio": m.ratio}
        rows.append(
            {
                "modality": name,
                "‖m‖": m.mean_norm,
                "‖σ‖ = sqrt(tr C)": m.std_norm,
                "‖m‖/‖σ‖": m.ratio,
                **_paper_cell(paper, f"ratio_{name}"),
            }
        )
    results["moments"] = out
    report.section("Where the ellipsoids sit: modality means", level=2)
    report.text(
        "m is the mean raw embedding of a modality and σ the vector of its per-feature standard "
        "deviations, so ‖σ‖ = sqrt(tr C) measures the size of the shell. ‖m‖/‖σ‖ compares how far "
        "the centre lies from the origin with how wide the shell is: a ratio near 1 means the "
        "ellipsoid sits about one shell-width away from the origin, which on the unit sphere "
        "shows up as the narrow cone (paper, Property 5: 0.94 images, 1.03 text)."
    )
    report.table(rows, floatfmt=".4f", caption="Modality means")


def _separability(
    pairs: Pairs,
    cfg: ml_collections.ConfigDict,
    results: dict,
    report: Any,
    figures: list[str],
    wd: Any,
    seed: int,
) -> None:
    xi, xt = pairs.image, pairs.text
    sep = geo.feature_separability(xi, xt)
    k = min(int(cfg.top_k), xi.shape[1])
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
                    xi[:, f], xt[:, f], bins=int(cfg.feature_kl_bins), smoothing=cfg.kl_smoothing
                ),
            }
        )
    n_gt1 = int(np.sum(sep.sep > 1.0))
    results["separability"] = {"top": top, "n_features_sep_gt_1": n_gt1}
    figures.append(plots.plot_separability(sep, wd))
    figures.append(
        plots.plot_feature_histograms(xi, xt, sep, wd, top_k=min(int(cfg.hist_features), k))
    )
    report.section("Separating features", level=2)
    report.text(
        "Sep(l) = |m_i(l) − m_t(l)| / sqrt(var_i(l) + var_t(l)) (Eq. 5) is the distance between "
        "the image and text means along feature l in units of their pooled standard deviation. "
        "Sep > 1 means the two modalities barely overlap on that one coordinate: the feature acts "
        "as a modality tag (the paper finds about 9 such features on COCO). The last column is "
        "KL(image ‖ text) of that feature's two histograms "
        f"({cfg.feature_kl_bins} shared bins, nats; the paper quotes ≈ 301 for its feature 93, "
        f"and above 1 is a large difference). Here {n_gt1} of {xi.shape[1]} features have Sep > 1."
    )
    report.table(
        [
            {
                "rank": r["rank"],
                "feature": r["feature"],
                "Sep": r["sep"],
                "mean image": r["mean_image"],
                "mean text": r["mean_text"],
                "std image": r["std_image"],
                "std text": r["std_text"],
                "KL(image‖text)": r["kl_image_text"],
            }
            for r in top
        ],
        floatfmt=".4g",
        caption=f"Top {k} features by separability",
    )
    report.figure(figures[-2], "Sep(l) of every feature, sorted (paper Fig. 3 left)")
    report.figure(
        figures[-1],
        "Per-modality histograms of the most separating features (paper Fig. 2 left)",
    )
    svm = geo.svm_two_features(
        xi, xt, (top[0]["feature"], top[1]["feature"]), C=cfg.svm_c,
        max_plot_points=int(cfg.max_scatter_points), seed=seed,
    )  # fmt: skip
    chance = max(len(xi), len(xt)) / (len(xi) + len(xt))
    results["svm"] = {
        "features": list(svm.features),
        "accuracy": svm.accuracy,
        "chance": chance,
        "C": float(cfg.svm_c),
        "coef": svm.coef.tolist(),
        "intercept": svm.intercept,
    }
    figures.append(plots.plot_svm_boundary(svm, wd))
    report.section("Linear separability on two features", level=2)
    report.text(
        f"A linear SVM (scikit-learn LinearSVC, squared hinge, C = {cfg.svm_c}) on the raw values "
        "of the two most separating features, fitted and scored on all points as in the paper's "
        "Fig. 2 (100 % on COCO; Property 1: the modalities occupy disjoint regions). Chance, "
        f"always answering the larger modality, is {100 * chance:.2f} %."
    )
    row = {
        "features": f"{svm.features[0]}, {svm.features[1]}",
        "accuracy %": 100 * svm.accuracy,
        "chance %": 100 * chance,
    }
    if "svm_accuracy" in (results.get("paper") or {}):
        row["paper %"] = 100 * results["paper"]["svm_accuracy"]
    report.table([row], floatfmt=".2f")
    report.figure(
        figures[-1], "The two most separating features with the SVM boundary (paper Fig. 2 right)"
    )


def _shell_and_spectrum(
    pairs: Pairs, results: dict, report: Any, figures: list[str], wd: Any, paper: dict
) -> None:
    shells, specs, odds, shell_out, spec_out = {}, {}, {}, {}, {}
    for name, x in (("image", pairs.image), ("text", pairs.text)):
        sh = geo.thin_shell(x)
        cov = geo.covariance(x)
        sp = geo.variance_spectrum(x, cov)
        odd = geo.off_diagonal_dominance(cov)
        shells[name], specs[name], odds[name] = sh, sp, odd
        shell_out[name] = {
            "mean_norm": sh.mean_norm,
            "var_norm": sh.var_norm,
            "sqrt_trace": sh.sqrt_trace,
            "rel_error": sh.rel_error,
            "min_over_mean": float(sh.norms.min() / sh.mean_norm) if sh.mean_norm > 0 else None,
        }
        fin = odd[np.isfinite(odd)]
        spec_out[name] = {
            "participation_ratio": sp.participation_ratio,
            "variance_ratio_max_min": sp.variance_ratio,
            "variance_max_over_median": float(sp.variances[0] / np.median(sp.variances))
            if np.median(sp.variances) > 0
            else None,
            "top_10pct_variance_share": float(
                sp.variances[: max(1, len(sp.variances) // 10)].sum() / sp.variances.sum()
            ),
            "odd_median": float(np.median(fin)) if fin.size else None,
            "odd_mean": float(np.mean(fin)) if fin.size else None,
            "odd_max": float(np.max(fin)) if fin.size else None,
            "odd_fraction_gt_1": float(np.mean(fin > 1.0)) if fin.size else None,
        }
    results["thin_shell"] = shell_out
    results["spectrum"] = spec_out
    figures.append(plots.plot_centred_norms(shells["image"], shells["text"], wd))
    report.section("Thin shells", level=2)
    report.text(
        "Centre each modality, y = v − m. Every single coordinate of y is concentrated around 0, "
        "but the norm ‖y‖ is not: it concentrates around μ = E‖y‖ with no mass near 0, a thin "
        "shell (Property 2). Exactly E‖y‖² = tr C = μ² + var(‖y‖), so sqrt(tr C) ≈ μ when "
        "var(‖y‖) ≪ μ² (Eqs. 3-4); the relative error (sqrt(tr C) − μ)/μ measures how thin the "
        "shell is (paper, COCO images: μ = 7.5873, var = 0.1914, sqrt(tr C) = 7.6007, 0.18 %). "
        "min/μ is the smallest centred norm over the mean one: well above 0 means the inside of "
        "the shell is empty."
    )
    rows = []
    for name in SIDES:
        s = shell_out[name]
        row = {
            "modality": name,
            "mean ‖v−m‖": s["mean_norm"],
            "var ‖v−m‖": s["var_norm"],
            "sqrt(tr C)": s["sqrt_trace"],
            "rel. error %": 100 * s["rel_error"],
            "min/μ": s["min_over_mean"],
        }
        if name == "image" and paper:
            row["paper: μ / sqrt(tr C)"] = (
                f"{paper['shell_mean_norm_image']} / {paper['shell_sqrt_trace_image']}"
            )
        rows.append(row)
    report.table(rows, floatfmt=".4f")
    report.figure(figures[-1], "Histograms of the centred norms ‖v − m‖ (paper Fig. 4 bottom)")

    figures.append(plots.plot_variance_spectrum(specs["image"], specs["text"], wd))
    figures.append(plots.plot_odd(odds["image"], odds["text"], wd))
    report.section("Ellipsoids, not spheres: variance spectrum and tilt", level=2)
    report.text(
        "On a sphere every feature would have about the same variance; a long tail of large "
        "variances makes an ellipsoid (Property 3). The participation ratio (Σλ)²/Σλ² of the "
        "covariance eigenvalues is D for a sphere and 1 for a line; the top-10 % share is the "
        "fraction of the total variance carried by the 10 % largest-variance features. "
        "Off-diagonal dominance ODD(l) = Σ_{k≠l}|C_lk| / C_ll (Eq. 6): if every row had "
        "ODD < 1 the covariance would be diagonally dominant; large values mean strongly "
        "correlated features, an ellipsoid tilted against the axes (Property 4)."
    )
    d = pairs.image.shape[1]
    flat = [
        (name, len(np.unique(x, axis=0)))
        for name, x in (("image", pairs.image), ("text", pairs.text))
        if len(np.unique(x, axis=0)) - 1 < d
    ]
    if flat:
        what = " and ".join(f"the {name} set has only {n} distinct points" for name, n in flat)
        report.text(
            f"Note: {what}, fewer than D + 1 = {d + 1}, so the covariance has rank below D: the "
            "smallest eigenvalues are zero (rounding noise in the plot) and the shell is flat in "
            "those directions. More examples give a full-rank estimate."
        )
    rows = [
        {
            "modality": name,
            "participation ratio": spec_out[name]["participation_ratio"],
            "var max/min": spec_out[name]["variance_ratio_max_min"],
            "var max/median": spec_out[name]["variance_max_over_median"],
            "top-10 % share": spec_out[name]["top_10pct_variance_share"],
            "ODD median": spec_out[name]["odd_median"],
            "ODD max": spec_out[name]["odd_max"],
            "ODD > 1 (share of rows)": spec_out[name]["odd_fraction_gt_1"],
        }
        for name in SIDES
    ]
    report.table(rows, floatfmt=".3g", caption="Variance spectrum and ODD summary")
    report.figure(
        figures[-2], "Per-feature variances and covariance eigenvalues, sorted (paper Fig. 5 left)"
    )
    report.figure(figures[-1], "Off-diagonal dominance of every feature (paper Fig. 5 right)")


def _gap(pairs: Pairs, results: dict, report: Any) -> None:
    g = geo.modality_gap(pairs.image, pairs.text)
    results["gap"] = {
        "norm": g.norm,
        "cos_means": g.cos_means,
        "normalised_norm": g.normalised_norm,
    }
    report.section("Modality gap", level=2)
    report.text(
        "The gap vector m_i − m_t joins the centres of the two ellipsoids. Beside its norm: the "
        "cosine between the two centres, and the gap of the normalised embeddings, "
        "‖mean(v/‖v‖) − mean(t/‖t‖)‖ (the ‖Δ‖ of Liang et al. 2022, at most 2)."
    )
    report.table(
        [
            {
                "‖m_i − m_t‖": g.norm,
                "‖m_i‖": results["moments"]["image"]["mean_norm"],
                "‖m_t‖": results["moments"]["text"]["mean_norm"],
                "cos(m_i, m_t)": g.cos_means,
                "normalised gap ‖Δ‖": g.normalised_norm,
            }
        ],
        floatfmt=".4f",
    )


_CURVES = (
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


def _loss(
    pairs: Pairs,
    cfg: ml_collections.ConfigDict,
    scale: float,
    scale_src: str,
    results: dict,
    report: Any,
    figures: list[str],
    wd: Any,
) -> None:
    alphas = alpha_grid(cfg)
    i0 = int(np.argmin(np.abs(alphas)))
    budget = int(cfg.loss_memory_mb) * 2**20
    out: dict[str, Any] = {"alphas": alphas.tolist(), "logit_scale": scale}
    summary_rows = []
    per_alpha: dict[str, list[dict]] = {}
    for side in cfg.sides:
        parts = geo.alpha_shift_loss_sweep(
            pairs.pair_image, pairs.pair_text, alphas, side=side, logit_scale=scale,
            budget_bytes=budget,
        )  # fmt: skip
        curves = {k: np.asarray(getattr(parts, k), np.float64) for k in _CURVES}
        tot = curves["total"]
        k = int(np.nanargmin(tot))
        summary = {
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
        out[side] = {"curves": {k_: v.tolist() for k_, v in curves.items()}, "summary": summary}
        figures.append(
            plots.plot_loss_vs_alpha(alphas, parts, wd, side=side, name=f"geometry_loss_{side}")
        )
        summary_rows.append(
            {
                "shifted": side,
                "α at min total": summary["alpha_min_total"],
                "min total": summary["total_min"],
                "total at α=0": summary["total_at_0"],
                "alignment at α=0": summary["alignment_at_0"],
                "uniformity at α=0": summary["uniformity_at_0"],
                "correct at α=0": summary["correct_at_0"],
                "wrong at α=0": summary["wrong_at_0"],
                "α at min alignment": summary["alpha_min_alignment"],
                "α at min uniformity": summary["alpha_min_uniformity"],
            }
        )
        per_alpha[side] = [
            {
                "α": float(a),
                "total": curves["total"][j],
                "alignment": curves["alignment"][j],
                "uniformity": curves["uniformity"][j],
                "correct": curves["correct"][j],
                "wrong": curves["wrong"][j],
                "wrong terms": int(curves["n_wrong"][j]),
                "R@1 i→t %": 100 * curves["accuracy_i2t"][j],
                "R@1 t→i %": 100 * curves["accuracy_t2i"][j],
            }
            for j, a in enumerate(alphas)
        ]
    results["loss"] = out
    n = len(pairs.pair_image)
    report.section("Contrastive loss vs the position of the ellipsoid", level=2)
    ties = ""
    if pairs.source == "class_prompts" or len(set(pairs.texts)) < len(pairs.texts):
        ties = (
            " Some texts repeat here, so some logits tie exactly; a tie counts as correct only "
            "for the first of the tied pairs (`argmax` convention), so read correct / wrong and "
            "R@1 with that in mind."
        )
    if pairs.source == "captions" and str(cfg.caption).lower() == "all":
        ties = (
            " With every caption paired, each image appears once per caption: in the text→image "
            "direction its copies tie exactly and only the first copy counts as correct "
            "(`argmax` convention), so the correct / wrong split and R@1 t→i are pessimistic; "
            "the other captions of the same image are negatives (real false negatives)."
        )
    report.text(
        "Shift one modality along its own mean, v' = v − α·m (Eq. 9), keeping the other fixed: "
        "α = 0 is CLIP as trained, α = 1 centres that modality at the origin, α = −1 doubles its "
        f"offset. For each α the symmetric CLIP loss (Eq. 7) of all {n} pairs as one batch is "
        f"computed with logit scale s = {scale:.4g} ({scale_src}), and split two ways. "
        "(1) total = alignment + uniformity (Eq. 8): alignment = −s·mean cos of matched pairs "
        "(lower is better aligned), uniformity = mean over pairs of ½(log-sum-exp of its row + "
        "of its column). (2) By match: each of the "
        f"{2 * n} terms ({n} image→text rows and {n} text→image columns) is *correct* when its own pair has the largest logit, *wrong* otherwise; the "
        "total is their count-weighted mean. The paper (COCO, image side, Fig. 6) finds the loss "
        "of correct pairs falling toward α = 1 and that of wrong pairs rising, with the total "
        f"lowest near α = 0 (Property 6).{ties}"
    )
    report.table(summary_rows, floatfmt=".4f", caption="Loss summary per shifted modality")
    lo, hi = float(alphas[0]), float(alphas[-1])
    for side in cfg.sides:
        su = out[side]["summary"]
        a = su["alpha_min_total"]
        where = (
            f"at the edge of the grid [{lo:g}, {hi:g}], so the true minimum may lie beyond it"
            if a in (lo, hi)
            else "inside the grid"
        )
        report.text(
            f"{side.capitalize()}s shifted: the total loss is lowest at α = {a:+.2f} ({where}); "
            f"at α = 0 it is {su['total_at_0']:.4f}, {su['total_at_0'] - su['total_min']:.4f} "
            "above that minimum."
        )
    for side in cfg.sides:
        name = f"geometry_loss_{side}.png"
        report.figure(
            name,
            f"Loss vs α, {side}s shifted: total, alignment, uniformity; by match (paper Fig. 6)",
        )
        report.text(
            f"<details><summary>Loss at every α ({side}s shifted; nan = no term in that "
            "group)</summary>\n\n"
            + markdown_table(per_alpha[side], floatfmt=".4f")
            + "\n</details>"
        )


def _conformity(
    pairs: Pairs,
    cfg: ml_collections.ConfigDict,
    results: dict,
    report: Any,
    figures: list[str],
    wd: Any,
    paper: dict,
) -> None:
    est = {
        "image": conf.conformity_estimate(pairs.image),
        "text": conf.conformity_estimate(pairs.text),
    }
    out: dict[str, Any] = {}
    rows = []
    for name, e in est.items():
        n = len(e.conformity)
        out[name] = {
            "n": n,
            "mean": float(e.conformity.mean()),
            "std": float(e.conformity.std()),
        }
        for fit in (e.raw, e.normalised):
            out[name][fit.mean_kind] = {
                "a": fit.a,
                "b": fit.b,
                "pearson": fit.pearson,
                "max_abs_error": fit.max_abs_error,
            }
            if fit.mean_kind == "normalised":
                out[name][fit.mean_kind].update(a_exact=fit.a_exact, b_exact=fit.b_exact)
            row = {
                "modality": name,
                "mean used": "raw m (paper, Eq. 11)"
                if fit.mean_kind == "raw"
                else "normalised m̂ (exact)",
                "a": fit.a,
                "b": fit.b,
                "a closed form": None if fit.mean_kind == "raw" else fit.a_exact,
                "b closed form": None if fit.mean_kind == "raw" else fit.b_exact,
                "Pearson": fit.pearson,
                "max abs. error": fit.max_abs_error,
            }
            if paper and fit.mean_kind == "raw":
                row["paper a, b, Pearson"] = (
                    f"{paper[f'conformity_a_{name}']}, {paper[f'conformity_b_{name}']}, "
                    f"{paper[f'conformity_pearson_{name}']}"
                )
            rows.append(row)
    examples = None
    if pairs.source == "captions" and cfg.examples > 0:
        c = est["text"].conformity
        order = np.argsort(-c, kind="stable")
        seen: dict[str, float] = {}
        for j in order:
            seen.setdefault(pairs.texts[int(j)], float(c[int(j)]))
        uniq = list(seen.items())
        k = min(int(cfg.examples), len(uniq) // 2)
        examples = {
            "most": [{"caption": t, "conformity": v} for t, v in uniq[:k]],
            "least": [{"caption": t, "conformity": v} for t, v in uniq[::-1][:k]],
        }
        out["examples"] = examples
    results["conformity"] = out
    figures.append(plots.plot_conformity_fit(est, wd, max_points=int(cfg.max_scatter_points)))
    report.section("Conformity and its estimate from the mean", level=2)
    report.text(
        "Conformity C(v_j) = 1/(N−1) Σ_{k≠j} cos(v_j, v_k) is the mean cosine of an embedding to "
        "every other member of its modality (Eq. 10): high for common content, low for unusual "
        "content. It is computed exactly here. The paper estimates it from one vector, "
        "Ĉ = a·cos(v, m) + b with m the mean of the *raw* vectors (Eq. 11; COCO: Pearson 0.9998, "
        "a = 1.461, b = −0.002 for images, a = 1.411, b = −0.008 for text).\n\n"
        "**Exact identity.** With unit vectors x_i = v_i/‖v_i‖ and S = Σ_j x_j, "
        "C_i = (x_i·S − 1)/(N − 1). So with the mean of the *normalised* vectors, m̂ = S/N, "
        "conformity is exactly affine in the cosine: C_i = a·cos(v_i, m̂) + b with "
        "a = N‖m̂‖/(N − 1) and b = −1/(N − 1), Pearson exactly 1. The raw-mean estimate is the "
        "approximation; both are fitted by least squares below, with the closed-form a, b for "
        "the normalised mean beside them (they agree up to rounding)."
    )
    report.table(rows, floatfmt=".6g", caption="Fits C ≈ a·cos(v, mean) + b")
    report.figure(
        figures[-1], "Conformity vs cosine to the mean, raw (left) and normalised (right) mean, "
        "with the fit (paper Fig. 9)",
    )  # fmt: skip
    if examples:
        report.text("Most and least conforming captions (the paper's Fig. 9 examples):")
        report.table(
            [{"which": "most", **e} for e in examples["most"]]
            + [{"which": "least", **e} for e in examples["least"]],
            floatfmt=".4f",
        )


def _plot_conformity_distributions(
    image: np.ndarray, text: np.ndarray, workdir: Any, *, bins: int
) -> str:
    """Histograms of the image and text conformities on shared bins (paper Fig. 10)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    lo, hi = min(image.min(), text.min()), max(image.max(), text.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    ax.hist(image, bins=edges, density=True, alpha=0.6, color="tab:blue", label="image")
    ax.hist(text, bins=edges, density=True, alpha=0.6, color="tab:orange", label="text")
    ax.set_xlabel("conformity C(v)")
    ax.set_ylabel("density")
    ax.set_title("Conformity distributions at α = 0")
    ax.legend(fontsize=8)
    return save_figure(fig, workdir, "geometry_conformity_distributions")


def _kl(
    pairs: Pairs,
    cfg: ml_collections.ConfigDict,
    results: dict,
    report: Any,
    figures: list[str],
    wd: Any,
    paper: dict,
) -> None:
    alphas = alpha_grid(cfg)
    i0 = int(np.argmin(np.abs(alphas)))
    out: dict[str, Any] = {
        "alphas": alphas.tolist(),
        "method": cfg.kl_method,
        "bins": int(cfg.kl_bins),
        "smoothing": float(cfg.kl_smoothing),
    }
    rows = []
    dist_figure = None
    for side in cfg.sides:
        sw = geo.conformity_kl_sweep(
            pairs.image, pairs.text, alphas, side=side, method=cfg.kl_method,
            bins=int(cfg.kl_bins), smoothing=float(cfg.kl_smoothing),
        )  # fmt: skip
        if dist_figure is None:  # at α = 0 the conformities do not depend on the side
            dist_figure = _plot_conformity_distributions(
                sw.image_conformity[i0], sw.text_conformity[i0], wd, bins=int(cfg.kl_bins)
            )
            figures.append(dist_figure)
        k = int(np.nanargmin(sw.kl_image_text))
        out[side] = {
            "kl_image_text": sw.kl_image_text.tolist(),
            "kl_text_image": sw.kl_text_image.tolist(),
            "alpha_min": float(alphas[k]),
            "kl_min": float(sw.kl_image_text[k]),
            "kl_at_0": float(sw.kl_image_text[i0]),
            "kl_text_image_at_0": float(sw.kl_text_image[i0]),
        }
        figures.append(plots.plot_kl_vs_alpha(sw, wd, name=f"geometry_kl_{side}"))
        row = {
            "shifted": side,
            "α at min KL": out[side]["alpha_min"],
            "min KL(image‖text)": out[side]["kl_min"],
            "KL(image‖text) at α=0": out[side]["kl_at_0"],
            "KL(text‖image) at α=0": out[side]["kl_text_image_at_0"],
        }
        if paper and side == "image":
            row["paper KL at α=0"] = paper["kl_at_0"]
        rows.append(row)
    results["kl"] = out
    report.section("Matching the conformity distributions: KL vs α", level=2)
    how = (
        f"histograms on {cfg.kl_bins} shared equal-width bins with additive smoothing "
        f"{cfg.kl_smoothing}"
        if cfg.kl_method == "histogram"
        else "Gaussians fitted to each set of conformities"
    )
    report.text(
        "Images and texts have different conformity distributions (figure below): a common "
        "image can have an unusual caption and vice versa. Shifting one modality by α·m changes "
        "its conformities (toward α = 1 its members spread around the origin and their cosines "
        "fall). KL(image ‖ text) between the two conformity distributions, estimated from "
        f"{how} (nats), measures how well they match for each α. The paper (Fig. 11, images "
        "shifted) finds the best match near α = 0 with KL ≈ 0.14: the trained offsets match the "
        "two distributions, their explanation of the modality gap. KL(text ‖ image) is drawn "
        "too (KL is not symmetric)."
    )
    report.figure(dist_figure, "Conformity distributions at α = 0 (paper Fig. 10)")
    report.table(rows, floatfmt=".4f", caption="KL between the conformity distributions")
    for side in cfg.sides:
        report.figure(
            f"geometry_kl_{side}.png", f"KL of the conformity distributions vs α, {side}s shifted"
        )
