"""Tests for the zero-shot study (jaxclip/studies/zero_shot.py and zero_shot_render.py,
configs/zero_shot.py, experiments/zero_shot.py): planted class and attribute directions with
known answers, checked against scikit-learn / NumPy float64, the result's JSON round trip, and
an end-to-end smoke run on shapes/tiny."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn import metrics as skm

from configs.zero_shot import POSITION_PHRASES, study_config
from jaxclip.config_args import ConfigError
from jaxclip.data import shapes
from jaxclip.data.templates import plural
from jaxclip.features.extract import ImageFeatures
from jaxclip.report import to_jsonable
from jaxclip.studies import zero_shot as study
from jaxclip.studies.shared import resolve_template_set
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_smoke, run_study

CLASSES = ("circle", "square", "triangle", "star", "cross", "heart")
COLORS = ("red", "green", "blue")
SIZES = ("small", "large")
TEXTURES = ("smooth", "rough")  # an attribute the config has no template for
D = 24
PER_CLASS = 12
N_CONFUSED = 5  # circle images drawn along the square direction


def _directions():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    words = [*CLASSES, *COLORS, *SIZES, *TEXTURES]
    return {w: q[:, i] for i, w in enumerate(words)}


DIRS = _directions()


def _embed(text: str) -> np.ndarray:
    """A planted text encoder: 4 × the sum of the directions of the known words in `text`."""
    words = re.findall(r"[a-z]+", text.lower())
    v = np.zeros(D)
    for w in words:
        for name, d in DIRS.items():
            if w in (name, name + "s", name + "es"):
                v += d
    return (4.0 * v).astype(np.float32)


def _run(ctx: FakeContext, cfg) -> SimpleNamespace:
    """analyse + render as the runner does: .results (the results.json entry), .report."""
    results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
    return SimpleNamespace(results=results, report=section.report)


def _ctx(features, workdir, **kw) -> FakeContext:
    """The test split `features` with the planted text encoder (logit scale 100)."""
    return FakeContext(features, workdir, embed=_embed, **kw)


def _planted(seed: int = 0):
    """Images = 3 e_class + 2 a_color + 2 b_size + 2 c_texture + noise; 5 circles planted as
    squares; 3 unlabelled rows at the end."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), PER_CLASS)
    drawn = labels.copy()
    drawn[:N_CONFUSED] = 1  # these circles look like squares
    color = rng.integers(0, len(COLORS), size=len(labels))
    size = rng.integers(0, len(SIZES), size=len(labels))
    texture = rng.integers(0, len(TEXTURES), size=len(labels))
    x = np.stack(
        [
            3 * DIRS[CLASSES[d]] + 2 * DIRS[COLORS[c]] + 2 * DIRS[SIZES[s]] + 2 * DIRS[TEXTURES[t]]
            for d, c, s, t in zip(drawn, color, size, texture)
        ]
    )
    x = x + 0.2 * rng.normal(size=x.shape)
    x = np.concatenate([x, 3 * x[:3]])  # unlabelled rows (dropped by the study)
    labels = np.concatenate([labels, [-1, -1, -1]])
    attrs = {  # not the dataset's order: the study must follow the dataset's (NAMES)
        "texture": np.concatenate([texture, texture[:3]]),
        "size": np.concatenate([size, size[:3]]),
        "color": np.concatenate([color, color[:3]]),
    }
    feats = ImageFeatures(
        embeds=x.astype(np.float32),
        labels=labels,
        indices=np.arange(len(labels)),
        attributes=attrs,
        captions=None,
        classnames=CLASSES,
        meta={"dataset": "planted"},
    )
    return feats


NAMES = {"color": COLORS, "size": SIZES, "texture": TEXTURES}


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    feats = _planted()
    workdir = tmp_path_factory.mktemp("zs")
    ctx = _ctx(feats, workdir, model="vit_b32", dataset="cifar10", attributes=NAMES)
    cfg = study_config()
    cfg.k_best = 2
    section = _run(ctx, cfg)
    return ctx, feats, section


def test_result_survives_the_json_round_trip(tmp_path):
    feats = _planted()
    ctx = _ctx(feats, tmp_path, model="vit_b32", dataset="cifar10", attributes=NAMES)
    result = study.analyse(ctx, study_config())
    again = result.reloaded()
    assert again.to_json() == json.loads(json.dumps(result.to_json()))
    np.testing.assert_array_equal(again.confusion_counts, result.confusion_counts)
    np.testing.assert_array_equal(again.attribute_confusions, result.attribute_confusions)
    assert str(again.marginal_example) == "a photo of a red circle."
    # the attribute confusions are zero-padded to the most values, in `attributes` order
    assert again.attribute_confusions.shape == (3, 3, 3)
    assert again.attribute_confusions[1, 2].sum() == 0  # size has 2 values
    assert again.attribute_confusions[0].sum() == len(feats.labels)


def _independent_cosines(feats):
    """Independent zero-shot in float64: prompts "a photo of a {}." -> e_c, cosines of the
    labelled images; (labelled mask, labels, (N, C) cosines)."""
    keep = feats.labels >= 0
    x = feats.embeds[keep].astype(np.float64)
    w = np.stack([_embed(f"a photo of a {c}.") for c in CLASSES]).astype(np.float64)
    s = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1)[:, None]).T
    return keep, feats.labels[keep], s


def test_classification_numbers_against_sklearn(planted_run):
    _, feats, section = planted_run
    res = section.results
    keep, y, s = _independent_cosines(feats)
    pred = s.argmax(1)
    assert res["num_samples"] == keep.sum() and res["unlabelled_dropped"] == 3
    # Known by construction: every image right except the 5 circles drawn as squares.
    assert res["top1"] == pytest.approx((len(y) - N_CONFUSED) / len(y))
    assert res["top1"] == pytest.approx(skm.accuracy_score(y, pred))
    assert res["top5"] == pytest.approx(
        skm.top_k_accuracy_score(y, s, k=5, labels=np.arange(len(CLASSES)))
    )
    assert res["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert res["mean_per_class_recall"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    p, r, f1, sup = skm.precision_recall_fscore_support(y, pred, zero_division=0)
    for k, row in enumerate(res["per_class"]):
        assert row["class"] == CLASSES[k]
        np.testing.assert_allclose(
            [row["precision"], row["recall"], row["f1"]], [p[k], r[k], f1[k]], rtol=1e-12
        )
        assert row["support"] == sup[k]
    np.testing.assert_array_equal(res["confusion"], skm.confusion_matrix(y, pred))
    assert res["per_class"][0]["confused_with"] == "square"
    assert res["per_class"][0]["confused_share"] == pytest.approx(N_CONFUSED / PER_CLASS)
    assert res["top_confusions"][0] == {
        "true": "circle",
        "predicted": "square",
        "count": N_CONFUSED,
        "fraction": pytest.approx(N_CONFUSED / PER_CLASS),
    }
    assert len(res["top_confusions"]) == 1  # nothing else is confused
    assert res["chance"] == pytest.approx(1 / len(CLASSES))
    assert res["worst"][0]["class"] in ("circle", "square")
    assert res["headline"]["top1"] == res["top1"] and res["headline"]["templates"] == "photo"


def test_attributes_are_classified_with_their_own_prompts(planted_run):
    ctx, feats, section = planted_run
    attrs = section.results["attributes"]
    assert list(attrs) == ["color", "size", "texture"]
    for name, values in NAMES.items():
        a = attrs[name]
        assert a["values"] == list(values)
        # every row has attribute labels, the rows without a class label included
        assert a["num_samples"] == len(feats.labels)
        assert a["generic"]["top1"] == 1.0, name
        assert a["chance"] == pytest.approx(1 / len(values))
        counts = np.bincount(feats.attributes[name], minlength=len(values))
        assert a["majority"] == pytest.approx(counts.max() / counts.sum())
    assert attrs["color"]["prompts"] == [f"a photo of a {c} shape." for c in COLORS]
    assert attrs["texture"]["prompts"] == [f"a photo of something {t}." for t in TEXTURES]
    # class-marginal prompts: "shape" replaced by every class name, averaged: still exact
    assert attrs["color"]["class_marginal"]["top1"] == 1.0
    assert "class_marginal" not in attrs["texture"]  # no "shape" in its template
    # one encoder call for every prompt of the study, each distinct prompt once
    assert len(ctx.text_calls) == 1
    call = ctx.text_calls[0]
    assert len(call) == len(set(call))
    assert "a photo of a red heart." in call and "a photo of a circle." in call


def test_report_links_tables_and_published_numbers(planted_run):
    ctx, _, section = planted_run
    md = section.report.markdown()
    links = check_links(ctx.workdir, md)
    assert set(links) == set(section.results["figures"])
    for name in (
        "zero_shot_per_class_f1.png",
        "zero_shot_confusion.png",
        "zero_shot_attributes.png",
        "zero_shot_attribute_confusions.png",
    ):
        assert name in links
    # published CIFAR-10 numbers of ViT-B/32 beside ours
    assert section.results["published_top1_percent"]["CLIP paper"] == 91.3
    assert "| CLIP paper | 91.30 |" in md and "| thesis | 88.80 |" in md
    assert "<details><summary>All 6 classes" in md
    assert "| circle | square | 5 | 41.7 |" in md  # most confused pair table
    assert "Chance is 1/C = 16.67 %" in md
    assert "3 images without a label are left out" in md
    assert md.index("Zero-shot on the other attributes") < md.index("Zero-shot vs linear probe")
    json.dumps(to_jsonable(section.results), allow_nan=False)


def test_ensemble_templates_and_no_published_numbers(tmp_path):
    feats = _planted()
    ctx = _ctx(feats, tmp_path, attributes=NAMES)
    cfg = study_config()
    cfg.templates = "imagenet7"
    cfg.attributes = False
    section = _run(ctx, cfg)
    res = section.results
    assert res["templates"]["count"] == 7 and res["templates"]["set"] == "imagenet7"
    assert "attributes" not in res and "published_top1_percent" not in res
    assert len(ctx.text_calls[0]) == 7 * len(CLASSES)
    md = section.report.markdown()
    assert "No published zero-shot numbers" in md and "7 templates" in md


def test_no_labels_and_no_attributes_skips(tmp_path):
    feats = _planted()
    feats = ImageFeatures(
        embeds=feats.embeds,
        labels=np.full(len(feats.labels), -1),
        indices=feats.indices,
        attributes={},
        captions=None,
        classnames=(),
        meta={},
    )
    section = _run(_ctx(feats, tmp_path), study_config())
    assert section.results["skipped"] == "this split has no class labels"
    assert "Skipped" in section.report.markdown()
    assert not list(tmp_path.glob("*.png"))


def test_resolve_template_set_and_helpers():
    name, temps, note = resolve_template_set("dataset", "cifar100")
    assert name == "cifar" and len(temps) == 18 and "CLIP paper" in note
    name, temps, note = resolve_template_set("dataset", "shapes/tiny")
    assert (name, temps) == ("photo", ("a photo of a {}.",)) and "no set" in note
    assert resolve_template_set("itap of a {}.", "x")[1] == ("itap of a {}.",)
    assert plural("cross") == "crosses" and plural("circle") == "circles"
    gen, marg = study.attribute_prompts("a photo of {}.", ["one shape", "two shapes"],
                                        ["cross", "star"], "shape")  # fmt: skip
    assert gen == [["a photo of one shape."], ["a photo of two shapes."]]
    assert marg == [
        ["a photo of one cross.", "a photo of one star."],
        ["a photo of two crosses.", "a photo of two stars."],
    ]
    assert POSITION_PHRASES == shapes.POSITION_PHRASES


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("split", "val", "split"),
        ("templates", "nope", "templates"),
        ("k_best", 0, "k_best"),
        ("class_word", "sh@pe", "class_word"),
    ],
)
def test_bad_config_values_raise(field, value, match):
    check_bad_config(study_config, study.check_config, field, value, match)


def test_attribute_phrases_must_match_the_values(tmp_path):
    feats = _planted()
    feats.attributes["count"] = np.zeros(len(feats.labels), int)
    ctx = _ctx(feats, tmp_path, attributes={**NAMES, "count": ("one", "two")})
    with pytest.raises(ConfigError, match=r"attribute_values.count has 3 phrases"):
        _run(ctx, study_config())


def test_config_variants():
    from configs.zero_shot import get_config

    c = get_config()
    study.check_config(c.zero_shot)
    assert c.zero_shot.templates == "photo"
    c = get_config("vit_b32,cifar100")
    assert (c.model, c.dataset) == ("vit_b32", "cifar100")
    smoke = get_config("smoke")
    assert smoke.smoke and smoke.zero_shot.k_best < c.zero_shot.k_best
    with pytest.raises(ConfigError, match=r"unknown config variant 'nope'"):
        get_config("nope")


def test_end_to_end_smoke(tmp_path, shapes_data_dir):
    from configs.zero_shot import get_config
    from experiments import zero_shot as experiment

    config, workdir, results = run_smoke(get_config, experiment, tmp_path, shapes_data_dir)
    for name in ("results.json", "metrics.csv", "report.md"):
        assert (workdir / name).is_file(), name
    stored = json.loads((workdir / "results.json").read_text())
    zs = stored["zero_shot"]
    assert zs == json.loads(json.dumps(to_jsonable(results["zero_shot"])))
    assert zs["num_samples"] == config.max_examples and zs["num_classes"] == 8
    for key in ("top1", "top5", "mean_per_class_recall", "macro_f1"):
        assert 0.0 <= zs[key] <= 1.0
    assert zs["top5"] >= zs["top1"]
    assert list(zs["attributes"]) == list(shapes.ATTRIBUTES)  # the dataset's order
    assert zs["attributes"]["count"]["prompts"][1] == "a photo of two shapes."
    md = (workdir / "report.md").read_text()
    assert len(check_links(workdir, md)) == len(zs["figures"]) == 4
    assert "zero_shot/top1" in (workdir / "metrics.csv").read_text()
    (record,) = json.loads((workdir / "clip_benchmark.json").read_text())
    assert record["task"] == "zeroshot_classification" and record["dataset"] == config.dataset
    assert record["metrics"] == zs["clip_benchmark"]
    assert list(record["metrics"]) == ["acc1", "acc5", "mean_per_class_recall"]


def test_attributes_only_when_the_split_has_no_class_labels(tmp_path):
    f = _planted()
    f = ImageFeatures(f.embeds, np.full(len(f.labels), -1), f.indices, f.attributes, None,
                      CLASSES, {})  # fmt: skip
    ran = _run(_ctx(f, tmp_path, attributes=NAMES), study_config())
    assert list(ran.results) == ["split", "attributes", "figures"]
    assert ran.results["figures"] == list(study.ATTRIBUTE_FIGURES)
    assert ran.results["attributes"]["color"]["generic"]["top1"] == 1.0
    md = ran.report.markdown()
    assert "The class-label part is skipped: this split has no class labels." in md
    assert "Zero-shot vs linear probe" not in md
    assert set(check_links(tmp_path, md)) == set(study.ATTRIBUTE_FIGURES)


def test_headline_intervals_from_the_same_resamples(planted_run):
    from jaxclip.analysis import bootstrap

    ctx, feats, section = planted_run
    res = section.results
    _, y, s = _independent_cosines(feats)
    correct = s.argmax(1) == y
    # the counts path: a numpy loop drawing Binomial(n, k / n) resampled counts (config seed)
    n, k = y.size, int(correct.sum())
    rng = np.random.default_rng(ctx.config.seed)
    acc = np.array([rng.binomial(n, k / n) / n for _ in range(10_000)])
    lo, hi = bootstrap.percentile_interval(acc)
    assert res["top1_ci"] == {"value": res["top1"], "ci_low": lo, "ci_high": hi, "n": n}
    for name in ("top5", "mean_per_class_recall", "macro_f1"):
        ci = res[f"{name}_ci"]
        assert ci["value"] == pytest.approx(res[name])
        assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
    top1 = res["top1_ci"]
    cell = f"{100 * res['top1']:.2f} [{100 * top1['ci_low']:.2f}, {100 * top1['ci_high']:.2f}]"
    assert f"| top-1 accuracy | {cell} |" in section.report.markdown()


def test_format_interval_by_hand():
    from jaxclip.report.intervals import format_ci, format_interval

    assert format_interval(0.63756, 0.63301, 0.642149) == "63.76 [63.30, 64.21]"
    assert (
        format_ci({"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}, digits=1) == "50.0 [25.0, 75.0]"
    )
    assert format_ci(None, 0.5) == "50.00" and format_ci(None) is None
