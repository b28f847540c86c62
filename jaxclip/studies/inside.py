"""Inside the image tower: which layers, heads and tokens make the image embedding.

The embedding of a ViT is an exact sum of direct contributions of every attention head, every
MLP, the embedding path and a bias (`jaxclip.models.decompose`; Gandelsman, Efros and
Steinhardt, ICLR 2024). On a few hundred images of each split this study

* checks the sum against the cached embeddings (`exact_sum_max_rel_error`);
* mean-ablates whole layers from the first upward and from the last downward, and reports
  zero-shot accuracy (class prompts) and linear-probe accuracy (a ridge classifier fitted on the
  unablated train embeddings, applied to the ablated test embeddings) beside the unablated ones;
* mean-ablates every single head of the last `head_ablation_layers` layers (0: all) alone and
  reports both accuracies per head, and the heads whose ablation costs the most;
* probes every head's contribution for every label (the class and each attribute): a ridge
  classifier per head, trained on the train images, accuracy on the test images; and the same
  probe on the residual stream after each layer (class token, and mean of the patch tokens),
  showing where each label becomes decodable;
* runs TextSpan on the heads of the last layers with a pool of texts (`text_pool`): the
  attribute phrases (one per value of every label, so each chosen text names a label), the
  general pool of `jaxclip.data.text_pool`, or the lines of a file;
* draws per-patch maps of the image's own class prompt (token scores summed over layers and
  heads) and plays the pointing game where object positions are known (shapes: the 3x3
  `position` label of images with one object), against the 1/9 of a random cell.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip import progress
from jaxclip.analysis import inside
from jaxclip.config_args import ConfigError
from jaxclip.data.text_pool import general_pool, load_pool_file
from jaxclip.errors import UserError
from jaxclip.studies.context import Study
from jaxclip.studies.result import StudyResult, optional, sidecar, timing
from jaxclip.studies.shared import attribute_value_names, embed_texts

NAME = "inside"
TEXT_POOLS = ("attributes", "general")  # or a file of one description per line


@dataclasses.dataclass(frozen=True, kw_only=True)
class InsideResult(StudyResult):
    """results.json["inside"] (see the module docstring)."""

    num_train: int
    num_test: int
    layers: int
    heads: int
    exact_sum_max_rel_error: float
    labels: list  # label names probed ("class" first)
    chance: dict  # label -> accuracy of always answering the most frequent train value
    ablation: dict  # unablated, first (k layers from the first up), last (from the last down)
    # one head mean-ablated at a time: {"layers": [l, ...], "zero_shot": [[acc per head] per
    # layer], "probe": [[...]]} (accuracies; drops are from ablation["unablated"])
    head_ablation: dict
    head_ablation_top: list  # the heads whose ablation drops zero-shot accuracy most
    head_probes: dict  # label -> (L, H) test accuracies; "embedding" -> label -> accuracy
    head_probe_best: list  # per label: the best head and its accuracy
    # label -> {"cls": [L + 1], "patch_mean": [L + 1]} probe accuracy from the residual stream
    # after the pre-LayerNorm (0) and after each block (None: states not available)
    layer_probes: dict | None = optional()
    text_pool: str  # "attributes", "general" or "file:<file name>"
    text_pool_size: int  # texts TextSpan chose from
    text_span: list  # per head of the last layers: chosen phrases, their labels, explained
    text_span_labels: dict  # label -> heads whose first TextSpan phrase names it
    pointing: dict | None = optional()  # pointing game (None: no position labels)
    maps: np.ndarray | None = sidecar()  # (E, P, P) example per-patch maps
    map_rows: np.ndarray | None = sidecar()  # (E,) rows of the test source drawn
    seconds: dict = timing()


def check_config(cfg: Any) -> None:
    """Validates config.inside (one ConfigError naming the bad value)."""
    for field in (
        "num_images",
        "batch_size",
        "text_span_k",
        "text_span_layers",
        "grid",
        "head_ablation_top",
    ):
        if not isinstance(cfg[field], int) or cfg[field] < 1:
            raise ConfigError(f"config.inside.{field}={cfg[field]!r} must be an integer >= 1")
    if not isinstance(cfg.head_ablation_layers, int) or cfg.head_ablation_layers < 0:
        raise ConfigError(
            f"config.inside.head_ablation_layers={cfg.head_ablation_layers!r} must be an integer "
            ">= 0 (0 = all layers)"
        )
    if not isinstance(cfg.text_pool, str) or not cfg.text_pool:
        raise ConfigError(
            f"config.inside.text_pool={cfg.text_pool!r} must be one of {TEXT_POOLS} or a file"
        )
    if cfg.text_pool not in TEXT_POOLS:
        try:
            load_pool_file(cfg.text_pool, field="config.inside.text_pool")
        except UserError as e:
            raise ConfigError(str(e)) from None
    if cfg.map_examples < 0:
        raise ConfigError(f"config.inside.map_examples={cfg.map_examples!r} must be >= 0")
    if not isinstance(cfg.class_template, str) or cfg.class_template.count("{}") != 1:
        raise ConfigError(
            f"config.inside.class_template={cfg.class_template!r} must contain exactly one '{{}}'"
        )
    if not cfg.probe_alpha > 0:
        raise ConfigError(f"config.inside.probe_alpha={cfg.probe_alpha!r} must be > 0")


def _labels(feats: Any, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    out = {"class": np.asarray(feats.labels)[rows]}
    for a in names:
        out[a] = np.asarray(feats.attributes[a])[rows]
    return out


def _phrases(cfg: Any, classnames: tuple[str, ...], values: dict[str, tuple[str, ...]]):
    """TextSpan pool: (phrases, label of each) from the class and attribute templates."""
    texts, owner = [], []
    for c in classnames:
        texts.append(cfg.class_template.replace("{}", c))
        owner.append("class")
    for a, vals in values.items():
        template = cfg.attribute_templates.get(a, "a photo of something {}.")
        for v in cfg.attribute_values.get(a, vals):
            texts.append(template.replace("{}", str(v)))
            owner.append(a)
    return texts, owner


def _pool(cfg: Any, classnames: tuple[str, ...], values: dict[str, tuple[str, ...]]):
    """TextSpan's texts, the label each names (None: not an attribute phrase), the pool's name."""
    if cfg.text_pool == "attributes":
        texts, owner = _phrases(cfg, classnames, values)
        return texts, owner, "attributes"
    if cfg.text_pool == "general":
        texts, name = general_pool(), "general"
    else:
        texts = load_pool_file(cfg.text_pool, field="config.inside.text_pool")
        name = f"file:{Path(cfg.text_pool).name}"
    return texts, [None] * len(texts), name


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _accuracy(emb: np.ndarray, weights: np.ndarray, y: np.ndarray) -> float:
    return float(((_normalise(emb) @ weights.T).argmax(-1) == y).mean())


def analyse(ctx: Any, cfg: Any) -> InsideResult:
    """The study (see the module docstring); `cfg` is config.inside."""
    seconds: dict[str, float] = {}
    progress.step("decompose the embeddings")
    t0 = time.perf_counter()
    train_f, test_f = ctx.features("train"), ctx.features("test")
    classnames = tuple(str(c) for c in test_f.classnames)
    values = {a: v for a, v in attribute_value_names(ctx, "test").items() if a in test_f.attributes}
    rows = {
        "train": np.arange(min(cfg.num_images, len(train_f.embeds))),
        "test": np.arange(min(cfg.num_images, len(test_f.embeds))),
    }
    class_w = _normalise(
        embed_texts(ctx, [cfg.class_template.replace("{}", c) for c in classnames])
    )
    dec = {w: ctx.decompose(w, rows[w], class_w if w == "test" else None) for w in rows}
    seconds["decompose"] = time.perf_counter() - t0
    tr, te = dec["train"], dec["test"]
    n_layers, n_heads = tr.heads.shape[1:3]
    err = max(
        float(np.abs(d.total() - f.embeds[rows[w]]).max() / np.abs(f.embeds[rows[w]]).max())
        for w, d, f in (("train", tr, train_f), ("test", te, test_f))
    )
    y_tr = _labels(train_f, rows["train"], list(values))
    y_te = _labels(test_f, rows["test"], list(values))
    names = ["class", *values]
    sizes = {"class": len(classnames), **{a: len(v) for a, v in values.items()}}
    chance = {
        k: float((y_te[k] == np.bincount(y_tr[k], minlength=sizes[k]).argmax()).mean())
        for k in names
    }

    # Mean-ablation of whole layers (means over the test images).
    progress.step("ablation")
    t = time.perf_counter()
    probe_tr = _normalise(tr.total())
    onehot = np.where(np.arange(sizes["class"])[None] == y_tr["class"][:, None], 1.0, -1.0)
    mx, my = probe_tr.mean(0), onehot.mean(0)
    gram = (probe_tr - mx).T @ (probe_tr - mx) + cfg.probe_alpha * np.eye(probe_tr.shape[1])
    w_probe = np.linalg.solve(gram, (probe_tr - mx).T @ (onehot - my))
    means = inside.component_means(te.heads, te.mlps, te.embed)

    def scores(emb: np.ndarray) -> dict[str, float]:
        probe = float((((_normalise(emb) - mx) @ w_probe + my).argmax(-1) == y_te["class"]).mean())
        return {"zero_shot": _accuracy(emb, class_w, y_te["class"]), "probe": probe}

    ablation: dict[str, Any] = {"unablated": scores(te.total())}
    for direction in ("first", "last"):
        ablation[direction] = [
            {
                "layers": k,
                **scores(
                    inside.mean_ablate(
                        te.heads, te.mlps, te.embed, te.bias, head_mask=hm, mlp_mask=mm, means=means
                    )
                ),
            }
            for k, hm, mm in inside.layer_masks(n_layers, n_heads, direction)
        ]
        ablation[f"{direction}_attention_only"] = [
            {
                "layers": k,
                **scores(
                    inside.mean_ablate(
                        te.heads, te.mlps, te.embed, te.bias, head_mask=hm, mlp_mask=mm, means=means
                    )
                ),
            }
            for k, hm, mm in inside.layer_masks(n_layers, n_heads, direction, mlps=False)
        ]
    seconds["ablation"] = time.perf_counter() - t

    # Mean-ablation of single heads.
    progress.step("head ablation")
    t = time.perf_counter()
    n_abl = n_layers if cfg.head_ablation_layers == 0 else min(cfg.head_ablation_layers, n_layers)
    head_ablation: dict[str, Any] = {
        "layers": list(range(n_layers - n_abl, n_layers)),
        "zero_shot": [],
        "probe": [],
    }
    for layer in head_ablation["layers"]:
        per_head = [
            scores(e)
            for e in inside.single_head_ablations(
                te.heads, te.mlps, te.embed, te.bias, layer, means=means
            )
        ]
        for key in ("zero_shot", "probe"):
            head_ablation[key].append([r[key] for r in per_head])
    base = ablation["unablated"]
    ranked = sorted(
        (
            {
                "layer": layer,
                "head": h,
                "zero_shot_drop": base["zero_shot"] - zs,
                "probe_drop": base["probe"] - pr,
            }
            for layer, zs_row, pr_row in zip(
                head_ablation["layers"],
                head_ablation["zero_shot"],
                head_ablation["probe"],
                strict=True,
            )
            for h, (zs, pr) in enumerate(zip(zs_row, pr_row, strict=True))
        ),
        key=lambda r: (-r["zero_shot_drop"], -r["probe_drop"], r["layer"], r["head"]),
    )
    head_top = ranked[: cfg.head_ablation_top]
    seconds["head_ablation"] = time.perf_counter() - t

    # Ridge probe of every head, and of the whole embedding, for every label.
    progress.step("head probes")
    t = time.perf_counter()
    head_probes: dict[str, Any] = {"embedding": {}}
    best = []
    for k in names:
        acc = inside.ridge_probe_accuracy(
            np.moveaxis(tr.heads, 0, 2),
            y_tr[k],
            np.moveaxis(te.heads, 0, 2),
            y_te[k],
            alpha=cfg.probe_alpha,
            num_classes=sizes[k],
        )
        head_probes[k] = acc.tolist()
        head_probes["embedding"][k] = float(
            inside.ridge_probe_accuracy(
                tr.total(),
                y_tr[k],
                te.total(),
                y_te[k],
                alpha=cfg.probe_alpha,
                num_classes=sizes[k],
            )
        )
        layer, head = np.unravel_index(int(acc.argmax()), acc.shape)
        best.append(
            {
                "label": k,
                "layer": int(layer),
                "head": int(head),
                "accuracy": float(acc.max()),
                "chance": chance[k],
            }
        )
    layer_probes = None
    if tr.cls_states is not None and te.cls_states is not None:
        layer_probes = {
            k: {
                where: inside.ridge_probe_accuracy(
                    np.moveaxis(getattr(tr, field), 0, 1),
                    y_tr[k],
                    np.moveaxis(getattr(te, field), 0, 1),
                    y_te[k],
                    alpha=cfg.probe_alpha,
                    num_classes=sizes[k],
                ).tolist()
                for where, field in (("cls", "cls_states"), ("patch_mean", "patch_means"))
            }
            for k in names
        }
    seconds["head_probes"] = time.perf_counter() - t

    # TextSpan of the heads of the last layers over the attribute phrases.
    progress.step("text span")
    t = time.perf_counter()
    phrases, owner, pool_name = _pool(cfg, classnames, values)
    pool = embed_texts(ctx, phrases)
    k_span = min(cfg.text_span_k, len(phrases))
    spans = []
    for layer in range(max(0, n_layers - cfg.text_span_layers), n_layers):
        for head in range(n_heads):
            span = inside.text_span(te.heads[:, layer, head], pool, k_span)
            spans.append(
                {
                    "layer": layer,
                    "head": head,
                    "texts": [phrases[i] for i in span.indices],
                    "labels": [owner[i] for i in span.indices],
                    "explained": list(span.explained),
                }
            )
    span_labels = {
        k: [f"L{s['layer']}H{s['head']}" for s in spans if s["labels"][0] == k] for k in names
    }
    seconds["text_span"] = time.perf_counter() - t

    # Per-patch maps of the image's own class prompt, and the pointing game.
    progress.step("maps")
    t = time.perf_counter()
    own = te.token_scores.sum((1, 2))[np.arange(len(rows["test"])), :, y_te["class"]]  # (N, T)
    side = math.isqrt(own.shape[1] - 1)
    maps = own[:, 1:].reshape(-1, side, side)
    pointing = None
    pos, cnt = cfg.position_attribute, cfg.count_attribute
    if pos in values and len(values[pos]) == cfg.grid**2:
        single = np.ones(len(maps), bool) if cnt not in values else y_te[cnt] == 0
        hits = inside.pointing_game(maps[single], cfg.grid, y_te[pos][single])
        pointing = {
            "num_images": int(single.sum()),
            "accuracy": float(hits.mean()) if single.any() else None,
            "random_cell": 1.0 / cfg.grid**2,
            "grid": cfg.grid,
            "patches": side,
        }
    ex = np.arange(min(cfg.map_examples, len(maps)))
    seconds["maps"] = time.perf_counter() - t
    return InsideResult(
        num_train=len(rows["train"]),
        num_test=len(rows["test"]),
        layers=int(n_layers),
        heads=int(n_heads),
        exact_sum_max_rel_error=err,
        labels=names,
        chance=chance,
        ablation=ablation,
        head_ablation=head_ablation,
        head_ablation_top=head_top,
        head_probes=head_probes,
        head_probe_best=best,
        layer_probes=layer_probes,
        text_pool=pool_name,
        text_pool_size=len(phrases),
        text_span=spans,
        text_span_labels=span_labels,
        pointing=pointing,
        maps=maps[ex].astype(np.float32),
        map_rows=rows["test"][ex],
        seconds=seconds,
    )


def _study() -> Study:
    from jaxclip.studies.inside_render import render

    return Study(analyse, render, InsideResult, check_config, fits_on_train=True)


STUDY = _study()
