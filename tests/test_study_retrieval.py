"""Tests for the retrieval study (jaxclip/studies/retrieval.py and retrieval_render.py,
jaxclip/analysis/queries.py, configs/retrieval.py, experiments/retrieval.py): captions planted
on their image's direction (R@1 = 100 % but for known swaps), labelled attributes for scored
queries, all checked against NumPy brute force; the result's JSON round trip; image grids
drawn from the rows in the result; and an end-to-end smoke run on shapes/tiny."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

from configs.retrieval import study_config
from jaxclip.analysis.queries import parse_query
from jaxclip.data import shapes
from jaxclip.features.extract import ImageFeatures
from jaxclip.report import to_jsonable
from jaxclip.report.plots_retrieval import thumbnail
from jaxclip.studies import retrieval as study
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_smoke, run_study

CLASSES = ("circle", "square", "star")
COLORS = ("red", "green", "blue")
D = 24
N = 36  # images: every (class, colour) pair four times
N_SWAPPED = 4  # caption 1 of images 0..3 is planted on the NEXT image's embedding


def _dirs():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    return {w: q[:, i] for i, w in enumerate([*CLASSES, *COLORS])}


DIRS = _dirs()


def _word_vector(text: str) -> np.ndarray | None:
    words = re.findall(r"[a-z]+", text.lower())
    v = np.zeros(D)
    for w in words:
        for name, d in DIRS.items():
            if w in (name, name + "s"):
                v += d
    return v if v.any() else None


def _run(ctx: FakeContext, cfg) -> SimpleNamespace:
    """analyse + render as the runner does: .results (the results.json entry), .report."""
    results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
    return SimpleNamespace(results=results, report=section.report)


def _ctx(features, table, workdir, **kw) -> FakeContext:
    """The test split `features`, its images served by row; a text is embedded as its row of
    `table`, or else (a query) as 3 × the sum of its words' directions."""

    def embed(t: str) -> np.ndarray:
        if t in table:
            return np.asarray(table[t], np.float32)
        v = _word_vector(t)
        assert v is not None, t
        return (3.0 * v).astype(np.float32)

    return FakeContext(features, workdir, embed=embed, attributes={"color": COLORS},
                       source_items=len(features.embeds), **kw)  # fmt: skip


def _planted(seed: int = 0, captions: bool = True):
    rng = np.random.default_rng(seed)
    label = np.tile(np.repeat(np.arange(3), 3), 4)
    color = np.tile(np.arange(3), 12)
    x = np.stack([DIRS[CLASSES[a]] + DIRS[COLORS[b]] for a, b in zip(label, color)])
    x = x + 0.1 * rng.normal(size=x.shape)  # each image its own direction
    caps, table = None, {}
    if captions:
        caps = []
        for i in range(N):
            c0 = f"{COLORS[color[i]]} {CLASSES[label[i]]} number {i}"
            c1 = f"caption one of image {i}"
            table[c0] = 2.0 * x[i]  # exactly on its image
            table[c1] = 0.5 * x[(i + 1) % N] if i < N_SWAPPED else 0.5 * x[i]
            caps.append([c0, c1])
    feats = ImageFeatures(
        embeds=x.astype(np.float32),
        labels=label,
        indices=np.arange(N),
        attributes={"color": color},
        captions=caps,
        classnames=CLASSES,
        meta={},
    )
    return feats, table


def _cos(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
        b / np.linalg.norm(b, axis=1)[:, None]
    ).T


def _cfg(**kw):
    cfg = study_config()
    cfg.queries = ("a red circle", "green stars")
    cfg.chains = (("a star", "a blue star", "blue squares"),)
    cfg.grid_k = 4
    cfg.refinement_k = 5
    cfg.examples = 3
    cfg.update(kw)
    return cfg


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    feats, table = _planted()
    ctx = _ctx(feats, table, tmp_path_factory.mktemp("rt"), model="vit_b32",
               dataset="coco_captions")  # fmt: skip
    return ctx, feats, table, _run(ctx, _cfg())


def test_caption_recalls_against_brute_force(planted_run):
    _, feats, table, section = planted_run
    cap = section.results["captions"]
    texts = [c for cs in feats.captions for c in cs]
    t2i = np.repeat(np.arange(N), 2)
    e = np.stack([table[t] for t in texts])
    s = _cos(e, feats.embeds)  # (captions, images)
    rank_t = (s > s[np.arange(len(texts)), t2i][:, None]).sum(1)
    best = np.array([s[t2i == i, i].max() for i in range(N)])
    rank_i = (s.T > best[:, None]).sum(1)
    # by construction: every caption finds its image first but the N_SWAPPED planted ones,
    # and every image still has one caption exactly on it
    assert cap["text_to_image"]["R@1"] == pytest.approx(1 - N_SWAPPED / len(texts))
    assert cap["image_to_text"]["R@1"] == 1.0
    for direction, rank in (("text_to_image", rank_t), ("image_to_text", rank_i)):
        row = cap[direction]
        for k in (1, 5, 10):
            assert row[f"R@{k}"] == pytest.approx(np.mean(rank < k)), (direction, k)
        assert row["MedR"] == pytest.approx(np.median(rank + 1))
        assert row["MeanR"] == pytest.approx(np.mean(rank + 1))
    assert cap["num_texts"] == 2 * N and cap["images_without_captions"] == 0
    own = cap["own_image"]
    assert own["top1"] == cap["text_to_image"]["R@1"]
    assert own["top5"] == pytest.approx(np.mean(rank_t < 5))
    for ex in cap["examples"]:
        t = texts.index(ex["caption"])
        assert ex["rank"] == rank_t[t] + 1
        assert ex["own_cosine"] == pytest.approx(s[t, t2i[t]], abs=1e-5)
    assert [e["rank"] for e in cap["examples"]] == sorted(e["rank"] for e in cap["examples"])


def test_recall_intervals_resample_images_with_their_captions(planted_run):
    from jaxclip.analysis import bootstrap

    ctx, feats, table, section = planted_run
    cap = section.results["captions"]
    texts = [c for cs in feats.captions for c in cs]
    t2i = np.repeat(np.arange(N), 2)
    s = _cos(np.stack([table[t] for t in texts]), feats.embeds)
    rank_t = (s > s[np.arange(len(texts)), t2i][:, None]).sum(1)
    for k in (1, 5):
        # numpy loop over the same image index rows (config seed): every drawn image brings
        # both of its captions; recall = their hits / their number
        per_image = np.stack([np.bincount(t2i, rank_t < k, N), np.bincount(t2i, None, N)], 1)
        rec = [
            per_image[row, 0].sum() / per_image[row, 1].sum()
            for idx in bootstrap.resample_indices(N, 10_000, ctx.config.seed)
            for row in idx
        ]
        lo, hi = bootstrap.percentile_interval(np.array(rec))
        ci = cap["text_to_image"][f"R@{k}_ci"]
        assert ci["value"] == pytest.approx(np.mean(rank_t < k)) and ci["n"] == N
        assert (ci["ci_low"], ci["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    # image -> text: every image has a caption exactly on it, R@1 = 1 in every resample
    assert cap["image_to_text"]["R@1_ci"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": N}
    r1 = cap["text_to_image"]["R@1_ci"]
    cell = f"{100 * r1['value']:.2f} [{100 * r1['ci_low']:.2f}, {100 * r1['ci_high']:.2f}]"
    md = section.report.markdown()
    assert f"| text → image | {2 * N} | {cell} |" in md
    assert "text → image resamples images with all their captions together" in md


def test_caption_ceiling_from_the_labels(planted_run):
    section = planted_run[-1]
    ceiling = section.results["captions"]["own_image"]["ceiling"]
    # caption 0 names colour and class: 4 images share them; caption 1 names nothing: all N
    assert ceiling["R@1"] == pytest.approx(0.5 * (1 / 4) + 0.5 * (1 / N))
    assert ceiling["R@5"] == pytest.approx(0.5 * 1.0 + 0.5 * (5 / N))
    assert ceiling["parsed_share"] == 0.5
    assert ceiling["mean_matching_images"] == pytest.approx((4 + N) / 2)


def test_published_numbers_and_gallery_note(planted_run):
    ctx, _, _, section = planted_run
    md = section.report.markdown()
    assert section.results["captions"]["published_percent"]["text_to_image"]["1"] == 30.44
    assert "| text → image: published |  | 30.44 | 55.94 | 66.87 |" in md
    assert "not comparable" in md  # 36 images, not 5,000
    links = check_links(ctx.workdir, md)
    assert (
        set(links)
        == set(section.results["figures"])
        == {
            "retrieval_rank_distribution.png",
            "retrieval_captions.png",
            "retrieval_queries.png",
            "retrieval_chain_1.png",
        }
    )
    json.dumps(to_jsonable(section.results), allow_nan=False)


def test_queries_precision_against_brute_force(planted_run):
    ctx, feats, _, section = planted_run
    q = {r["query"]: r for r in section.results["queries"]}
    label, color = feats.labels, feats.attributes["color"]
    for text, (want_label, want_colors) in {
        "a red circle": (0, {0}),
        "green stars": (2, {1}),
    }.items():
        r = q[text]
        s = _cos(3.0 * _word_vector(text)[None], feats.embeds)[0]
        top = np.argsort(-s, kind="stable")[:4]
        assert r["top_rows"] == top.tolist()
        np.testing.assert_allclose(r["scores"], s[top], atol=1e-5)
        match = (label == want_label) & np.isin(color, list(want_colors))
        assert r["precision_at_k"] == pytest.approx(match[top].mean())
        assert r["base_rate"] == pytest.approx(match.mean())
        assert r["matching_images"] == match.sum() == 4
        assert r["precision_at_k"] == 1.0  # the 4 images of that pair come first
    assert q["a red circle"]["parsed"] == "class=circle, color=red"
    # the grids read exactly the images they show, each once
    assert len(ctx.src.reads) == len(set(ctx.src.reads))
    shown = {r for q in section.results["queries"] for r in q["top_rows"]}
    assert shown <= set(ctx.src.reads)


def test_result_survives_the_json_round_trip(planted_run):
    ctx = planted_run[0]
    result = study.analyse(ctx, _cfg())
    again = result.reloaded()
    assert again.to_json() == json.loads(json.dumps(result.to_json()))
    assert list(again.label_names) == ["label", "color"]
    np.testing.assert_array_equal(again.ranks_text_to_image, result.ranks_text_to_image)
    # the example grid rows start with each caption's top image, its cosine in the JSON
    for e, rows, scores in zip(again.captions["examples"], again.example_rows,
                               again.example_scores):  # fmt: skip
        assert scores[0] == pytest.approx(e["top1_cosine"])
        assert len(rows) == 4
    # the chain grids: one row per step (grid_k = 4), the refinement top 5 starts the same
    (chain,) = again.chains
    assert again.chain_rows.shape == (3, 4) == again.chain_highlight.shape
    for j in range(3):
        assert list(again.chain_rows[j]) == chain["top_rows"][j][:4]
    np.testing.assert_array_equal(again.query_highlight, [[True] * 4, [True] * 4])


def test_grids_are_drawn_from_the_result_rows(planted_run, tmp_path):
    """Render alone (as `experiments.report`) reads exactly the rows the result names."""
    from jaxclip.studies.context import RenderContext

    ctx, _, _, _ = planted_run
    result = study.analyse(ctx, _cfg()).reloaded()
    reads: list[tuple[str, int]] = []

    def images(which, rows):
        reads.extend((which, int(r)) for r in rows)
        return [np.full((6, 6, 3), int(r), np.uint8) for r in rows]

    config = ctx.config.copy_and_resolve_references()
    config.retrieval = _cfg()
    section = study.STUDY.render(result, RenderContext(config, tmp_path, images))
    want = {int(r) for r in np.concatenate([
        np.ravel(result.example_rows), np.ravel(result.chain_rows),
        np.ravel([q["top_rows"] for q in result.queries])])}  # fmt: skip
    assert {r for _, r in reads} == want and {w for w, _ in reads} == {"test"}
    assert len(reads) == len(set(reads))  # each image read once
    assert set(check_links(tmp_path, section.report.markdown())) == set(result.figures)
    # without images the grids are left out, the rest of the report is drawn
    bare = study.STUDY.render(result, RenderContext(config, tmp_path / "bare", None))
    assert "retrieval_queries.png" not in bare.report.markdown()
    assert "Ad-hoc queries" in bare.report.markdown()


def test_refinement_chain_against_numpy(planted_run):
    _, feats, _, section = planted_run
    (chain,) = section.results["chains"]
    assert chain["queries"] == ["a star", "a blue star", "blue squares"]
    s = _cos(np.stack([3.0 * _word_vector(t) for t in chain["queries"]]), feats.embeds)
    top = np.argsort(-s, axis=1, kind="stable")[:, :5]
    for j, step in enumerate(chain["steps"]):
        a, b = set(top[j]), set(top[j + 1])
        assert step["overlap"] == len(a & b)
        assert step["jaccard"] == pytest.approx(len(a & b) / len(a | b))
        shift = np.mean(s[j + 1, top[j]] - s[j, top[j]])
        assert step["score_shift"] == pytest.approx(shift, abs=1e-5)
    prec = [p["precision_at_k"] for p in chain["precision"]]
    # top 5 of: 12 stars (all match), 4 blue stars (4 of 5), 4 blue squares (4 of 5)
    assert prec == [1.0, 0.8, 0.8]
    assert [p["parsed"] for p in chain["precision"]] == [
        "class=star",
        "class=star, color=blue",
        "class=square, color=blue",
    ]


def test_no_captions_skips_that_part(tmp_path):
    feats, _ = _planted(captions=False)
    ctx = _ctx(feats, {}, tmp_path)
    section = _run(ctx, _cfg())
    assert section.results["captions"] == {"skipped": "this dataset has no captions"}
    md = section.report.markdown()
    assert "has no captions" in md
    assert "queries" in section.results and "chains" in section.results
    check_links(tmp_path, md)


def test_parse_query_on_shapes_vocabulary():
    names = {"label": shapes.SHAPES, **shapes.ATTRIBUTES}

    def parse(text):
        p = parse_query(text, names)
        return {k: tuple(names[k][v] for v in vals) for k, vals in p.constraints.items()}

    assert parse("two small red circles") == {
        "label": ("circle",),
        "count": ("two",),
        "size": ("small",),
        "color": ("red",),
    }
    assert parse("a red circle")["count"] == ("one",)  # singular noun
    assert parse("red crosses")["count"] == ("two", "three")  # plural noun
    got = parse("a large red circle in the top left on a striped background")
    assert got["position"] == ("top left",) and got["background"] == ("striped",)
    assert parse("there are two blue squares at the bottom")["position"] == ("bottom",)
    assert parse("a shape") == {}
    # every generated caption of the shapes dataset parses back to its own labels
    for i in range(40):
        ex = shapes.render_example(i, 1, 32)
        for cap in ex["captions"]:
            p = parse_query(cap, names)
            labels = {"label": ex["label"], **{a: ex[a] for a in shapes.ATTRIBUTES}}
            for k, vals in p.constraints.items():
                assert labels[k] in vals, (cap, k)
            assert {"label", "color", "count"} <= set(p.constraints), cap


def test_thumbnails_are_centre_crops():
    img = np.zeros((10, 16, 3), np.uint8)
    img[:, 3:13] = 200  # the centre 10 x 10 square is bright, the sides dark
    t = thumbnail(img, 5)
    assert t.shape == (5, 5, 3) and t.dtype == np.uint8
    assert t.min() >= 190  # only the bright centre square remains
    assert thumbnail(img[:, 3:13], 10) is not None
    np.testing.assert_array_equal(thumbnail(img[:, 3:13], 10), img[:, 3:13])


def test_default_queries_by_dataset():
    assert study.default_queries("shapes/tiny") == (study.SHAPES_QUERIES, study.SHAPES_CHAINS)
    q, chains = study.default_queries("coco_captions")
    assert "a photo of a bird" in q
    assert chains[0] == ("a photo of a bird", "a photo of a white bird",
                         "a photo of a flying white bird")  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ks", (0, 5), "ks"),
        ("chains", (("only one",),), "chains entry"),
        ("queries", ("",), "queries"),
        ("grid_k", 0, "grid_k"),
        ("split", "valid", "split"),
    ],
)
def test_bad_config_values_raise(field, value, match):
    check_bad_config(study_config, study.check_config, field, value, match)


def test_config_variants():
    from configs.retrieval import get_config

    c = get_config("vit_b32,coco")
    study.check_config(c.retrieval)
    assert c.dataset == "coco_captions" and c.retrieval.ks == (1, 5, 10)
    smoke = get_config("smoke")
    assert smoke.retrieval.grid_k < c.retrieval.grid_k


def test_end_to_end_smoke(tmp_path, shapes_data_dir):
    from configs.retrieval import get_config
    from experiments import retrieval as experiment

    config, workdir, results = run_smoke(get_config, experiment, tmp_path, shapes_data_dir)
    stored = json.loads((workdir / "results.json").read_text())["retrieval"]
    assert stored == json.loads(json.dumps(to_jsonable(results["retrieval"])))
    cap = stored["captions"]
    assert cap["num_texts"] == 5 * config.max_examples
    for direction in ("text_to_image", "image_to_text"):
        row = cap[direction]
        assert 0 <= row["R@1"] <= row["R@5"] <= row["R@10"] <= 1
        assert 1 <= row["MedR"] <= config.max_examples * (5 if direction == "image_to_text" else 1)
    assert 0.5 < cap["own_image"]["ceiling"]["R@1"] <= 1.0
    assert [q["query"] for q in stored["queries"]] == list(study.SHAPES_QUERIES)
    assert len(stored["chains"]) == len(study.SHAPES_CHAINS)
    md = (workdir / "report.md").read_text()
    assert len(check_links(workdir, md)) == len(stored["figures"]) == 3 + len(study.SHAPES_CHAINS)
    assert "retrieval/captions/text_to_image/R@1" in (workdir / "metrics.csv").read_text()
    (record,) = json.loads((workdir / "clip_benchmark.json").read_text())
    assert record["task"] == "zeroshot_retrieval" and record["metrics"] == cap["clip_benchmark"]
    assert list(record["metrics"])[:2] == ["image_retrieval_recall@1", "text_retrieval_recall@1"]
