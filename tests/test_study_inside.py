"""The `inside` study on a planted decomposition with known answers, and a smoke run."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from configs.inside import study_config
from jaxclip.features.extract import ImageFeatures
from jaxclip.models.decompose import Decomposition
from jaxclip.studies import inside as study
from tests.study_fakes import FakeContext, check_bad_config, check_links, run_smoke

D, L, H = 48, 2, 3
SHAPES = ("circle", "square", "star", "heart")
ATTRS = {
    "color": ("red", "green", "blue"),
    "position": tuple(f"p{i}" for i in range(9)),
    "count": ("one", "two", "three"),
}


def embed(text: str) -> np.ndarray:
    """The planted text encoder: a fixed random direction per string (near-orthogonal, D=48)."""
    v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(D)
    return (v / np.linalg.norm(v)).astype(np.float32)


def planted_split(n: int, seed: int):
    """Head L1H0 carries the class prompt's direction, L1H2 the colour phrase's; the rest is
    noise. The class prompt's per-token score peaks on the patch at the centre of the object's
    cell (4x4 patches; cell centre (r, c) -> patch (round(r*1.5+0.25)...), see below)."""
    rng = np.random.default_rng(seed)
    cfg = study_config()
    y = {
        "class": rng.integers(0, 4, n),
        **{a: rng.integers(0, len(v), n) for a, v in ATTRS.items()},
    }
    heads = 0.05 * rng.standard_normal((n, L, H, D))
    cls = np.stack([embed(cfg.class_template.replace("{}", s)) for s in SHAPES])
    col = np.stack([embed(f"a photo of a {c} shape.") for c in ATTRS["color"]])
    heads[:, 1, 0] += 2.0 * cls[y["class"]]
    heads[:, 1, 2] += 1.5 * col[y["color"]]
    mlps = 0.05 * rng.standard_normal((n, L, D))
    emb_path = 0.05 * rng.standard_normal((n, D))
    bias = 0.01 * rng.standard_normal(D)
    # Token scores: (N, L, H, 17, 4); the own-class column peaks at the patch that lies wholly
    # inside the object's 3x3 cell, spread over layers/heads (only their sum is read).
    ts = 0.01 * rng.standard_normal((n, L, H, 17, 4))
    patch_of = {0: 0, 1: 1, 2: 3}  # cell row/col -> a patch row/col overlapping it most
    for i in range(n):
        r, c = divmod(int(y["position"][i]), 3)
        ts[i, :, :, 1 + 4 * patch_of[r] + patch_of[c], y["class"][i]] += 1.0
    # Residual states (W = 16): the class is decodable from the class token only after block 2,
    # the colour from the patch mean from the start.
    cls_states = 0.05 * rng.standard_normal((n, L + 1, 16))
    cls_states[:, 2, :4] += np.eye(4)[y["class"]]
    patch_means = 0.05 * rng.standard_normal((n, L + 1, 16))
    patch_means[:, :, :3] += np.eye(3)[y["color"]][:, None]
    dec = Decomposition(
        cls_states=cls_states.astype(np.float32),
        patch_means=patch_means.astype(np.float32),
        heads=heads.astype(np.float32),
        mlps=mlps.astype(np.float32),
        embed=emb_path.astype(np.float32),
        bias=bias.astype(np.float32),
        token_scores=ts.astype(np.float32),
    )
    feats = ImageFeatures(
        embeds=dec.total().astype(np.float32),
        labels=y["class"],
        indices=np.arange(n),
        attributes={a: y[a] for a in ATTRS},
        captions=None,
        classnames=SHAPES,
        meta={},
    )
    return dec, feats


class PlantedContext(FakeContext):
    def __init__(self, workdir):
        self.decs, feats = {}, {}
        for which, seed in (("train", 0), ("test", 1)):
            self.decs[which], feats[which] = planted_split(120, seed)
        super().__init__(feats, workdir, embed=embed, attributes=ATTRS, source_items=120)

    def decompose(self, which, rows, directions):
        d = self.decs[which]
        keep = lambda a: None if a is None else a[rows]
        return Decomposition(
            d.heads[rows],
            d.mlps[rows],
            d.embed[rows],
            d.bias,
            keep(d.token_scores) if directions is not None else None,
            d.cls_states[rows],
            d.patch_means[rows],
        )


def test_planted_heads_labels_maps_and_ablation(tmp_path):
    ctx = PlantedContext(tmp_path)
    cfg = study_config()
    cfg.num_images = 100
    entry, section = run_study_entry(ctx, cfg)
    assert entry["num_train"] == entry["num_test"] == 100 and entry["layers"] == L
    assert entry["exact_sum_max_rel_error"] < 1e-6
    best = {b["label"]: (b["layer"], b["head"], b["accuracy"]) for b in entry["head_probe_best"]}
    assert best["class"][:2] == (1, 0) and best["class"][2] == 1.0
    assert best["color"][:2] == (1, 2) and best["color"][2] == 1.0
    # The planted noise heads know nothing: their class accuracy is near chance.
    assert np.asarray(entry["head_probes"]["class"])[0].max() < 0.5
    assert entry["text_span_labels"]["class"] == ["L1H0"]
    assert entry["text_span_labels"]["color"] == ["L1H2"]
    span = {(s["layer"], s["head"]): s for s in entry["text_span"]}
    assert span[(1, 2)]["explained"][2] > 0.9  # three colour phrases span the colour head
    # Zero-shot on the unablated embedding, computed here independently.
    te = ctx.decs["test"]
    y = ctx.features("test").labels[:100]
    w = np.stack([embed(f"a photo of a {s}.") for s in SHAPES])
    tot = te.total()[:100]
    want = ((tot / np.linalg.norm(tot, axis=1, keepdims=True)) @ w.T).argmax(1) == y
    assert entry["ablation"]["unablated"]["zero_shot"] == float(want.mean()) == 1.0
    # Ablating the last layer removes the class head: zero-shot falls to about chance.
    assert entry["ablation"]["last"][1]["zero_shot"] < 0.5
    assert entry["ablation"]["first"][1]["zero_shot"] == 1.0  # layer 0 holds nothing
    lp = entry["layer_probes"]
    assert [a == 1.0 for a in lp["class"]["cls"]] == [False, False, True]
    assert max(lp["class"]["cls"][:2]) < 0.5 and lp["color"]["patch_mean"] == [1.0] * 3
    p = entry["pointing"]
    single = ctx.features("test").attributes["count"][:100] == 0
    assert p["num_images"] == int(single.sum()) and p["accuracy"] == 1.0
    assert abs(p["random_cell"] - 1 / 9) < 1e-12
    md = section.report.markdown()
    check_links(tmp_path, md)
    assert "100.0% of" in md and "11.1%" in md


def run_study_entry(ctx, cfg):
    from tests.study_fakes import run_study

    return run_study(study.STUDY, ctx, cfg, "inside")


def test_bad_config_names_the_value():
    check_bad_config(study_config, study.check_config, "num_images", 0, r"num_images=0 must be")
    check_bad_config(study_config, study.check_config, "class_template", "x", r"exactly one")


def test_smoke_run(tmp_path, shapes_data_dir):
    from configs.inside import get_config
    from experiments import inside as experiment

    config, workdir, _ = run_smoke(get_config, experiment, tmp_path, shapes_data_dir)
    stored = json.loads((workdir / "results.json").read_text())["inside"]
    assert stored["num_test"] == stored["num_train"] == config.inside.num_images == 48
    # The decomposition of the tiny model sums to the cached embeddings.
    assert stored["exact_sum_max_rel_error"] < 1e-5
    assert stored["layers"] == 2 and stored["heads"] == 2
    assert len(stored["layer_probes"]["class"]["cls"]) == 3
    assert stored["pointing"]["random_cell"] > 0.11
    check_links(workdir, (workdir / "report.md").read_text())


def _zero_shot(emb: np.ndarray, y: np.ndarray) -> float:
    """Zero-shot accuracy with the planted class prompts, float64 (independent of the study)."""
    w = np.stack([embed(f"a photo of a {s}.") for s in SHAPES]).astype(np.float64)
    scores = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ w.T
    return float((scores.argmax(1) == y).mean())


def test_single_head_ablation_matches_a_numpy_resum(tmp_path):
    import matplotlib.pyplot as plt

    from jaxclip.studies.inside_render import head_ablation_figure

    ctx = PlantedContext(tmp_path)
    cfg = study_config()
    cfg.num_images = 100
    cfg.head_ablation_top = 2
    entry, section = run_study_entry(ctx, cfg)
    te = ctx.decs["test"]
    y = ctx.features("test").labels[:100]
    heads = te.heads[:100].astype(np.float64)
    rest = te.mlps[:100].astype(np.float64).sum(1) + te.embed[:100] + te.bias.astype(np.float64)
    base = _zero_shot(heads.sum((1, 2)) + rest, y)
    ha = entry["head_ablation"]
    assert ha["layers"] == [0, 1] and np.shape(ha["zero_shot"]) == np.shape(ha["probe"]) == (L, H)
    want = np.zeros((L, H))
    for layer in range(L):
        for h in range(H):
            ablated = heads.copy()
            ablated[:, layer, h] = heads[:, layer, h].mean(0)  # its mean over the test images
            want[layer, h] = _zero_shot(ablated.sum((1, 2)) + rest, y)
    np.testing.assert_array_equal(np.asarray(ha["zero_shot"]), want)
    # The planted class head is the one that matters: zero-shot falls from 1.0 to about chance.
    assert base == 1.0 and want[1, 0] < 0.5 and np.delete(want.ravel(), H).min() == 1.0
    top = entry["head_ablation_top"]
    assert len(top) == 2 and (top[0]["layer"], top[0]["head"]) == (1, 0)
    assert top[0]["zero_shot_drop"] == pytest.approx(1.0 - want[1, 0], abs=1e-12)
    # The report's table and sentence carry the same numbers.
    md = section.report.markdown()
    drop = 100 * (1.0 - want[1, 0])
    probe_drop = 100 * (entry["ablation"]["unablated"]["probe"] - ha["probe"][1][0])
    assert f"{drop:.1f} ({probe_drop:.1f})" in md
    assert "Ablating L1H0 alone costs the most zero-shot accuracy: 100.0% becomes " in md
    assert f"L1H0 ({drop:.1f} zero-shot, {probe_drop:.1f} probe)" in md
    assert "inside_head_ablation.png" in md
    from jaxclip.studies.inside import InsideResult

    fig = head_ablation_figure(InsideResult.from_json(entry))
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in axes] == ["zero-shot accuracy lost", "probe accuracy lost"]
    assert all(ax.get_xlabel() == "head" and ax.get_ylabel() == "layer" for ax in axes)
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["0", "1"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0", "1", "2"]
    assert len(fig.axes) == 4  # two heat maps, two colour bars
    np.testing.assert_allclose(axes[0].images[0].get_array(), 100 * (1.0 - want))
    plt.close(fig)


def test_text_pool_general_and_file(tmp_path):
    ctx = PlantedContext(tmp_path)
    cfg = study_config()
    cfg.num_images = 60
    cfg.text_pool = "general"
    entry, section = run_study_entry(ctx, cfg)
    assert entry["text_pool"] == "general" and entry["text_pool_size"] == 2688
    assert all(s["labels"] == [None] * 3 for s in entry["text_span"])
    assert "from 2688 texts, the general pool" in section.report.markdown()
    pool = tmp_path / "my pool.txt"
    phrases = [f"a photo of a {c} shape." for c in ATTRS["color"]] + ["a photo of a circle."]
    pool.write_text("\n".join(phrases) + "\n")
    cfg.text_pool = str(pool)
    study.check_config(cfg)
    entry, section = run_study_entry(ctx, cfg)
    assert entry["text_pool"] == "file:my pool.txt" and entry["text_pool_size"] == 4
    span = {(s["layer"], s["head"]): s for s in entry["text_span"]}
    # The planted colour head picks the three colour phrases first.
    assert set(span[(1, 2)]["texts"]) == set(phrases[:3])


def test_bad_pool_and_head_ablation_config(tmp_path):
    check_bad_config(
        study_config, study.check_config, "text_pool", str(tmp_path / "nope.txt"), "no such file"
    )
    (tmp_path / "empty.txt").write_text("\n")
    check_bad_config(
        study_config, study.check_config, "text_pool", str(tmp_path / "empty.txt"), "holds no"
    )
    check_bad_config(
        study_config, study.check_config, "head_ablation_layers", -1, r"head_ablation_layers=-1"
    )
