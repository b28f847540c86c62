"""The `inside` study on a planted decomposition with known answers, and a smoke run."""

from __future__ import annotations

import json
import zlib

import numpy as np

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
