"""`configs/geometry.py:siglip_vs_clip`: the geometry study of a softmax and a sigmoid model side
by side. End to end on two tiny random models (`tiny_random`, `tiny_random_sigmoid`) on
shapes/tiny; the verdict sentence is checked on entries whose answer is known by hand."""

from __future__ import annotations

import json

import pytest

from configs.geometry import get_config
from jaxclip.studies import geometry_compare as gc


def test_siglip_vs_clip_renders_both_columns(tmp_path):
    from experiments import geometry as experiment

    config = get_config("siglip_vs_clip,smoke")
    assert tuple(config.compare_models) == ("tiny_random", "tiny_random_sigmoid")
    assert get_config("siglip_vs_clip").compare_models == ("mini", "mini_siglip")
    assert get_config("smoke").compare_models == ()
    config.cache_dir = str(tmp_path / "cache")
    config.data_dir = str(tmp_path / "data")
    g = config.geometry
    g.num_alphas, g.sides = 3, ("image",)
    record = experiment.run(config, str(tmp_path / "run"))
    run = tmp_path / "run"
    entries = {
        m: json.loads((run / m / "results.json").read_text())["geometry"]
        for m in config.compare_models
    }
    assert entries["tiny_random"]["loss"].get("loss") is None
    sig = entries["tiny_random_sigmoid"]["loss"]
    assert sig["loss"] == "sigmoid" and sig["logit_bias"] == pytest.approx(-10.0)
    assert sig["logit_scale"] == pytest.approx(10.0, rel=1e-6)
    md = (run / "report.md").read_text()
    assert json.loads((run / "comparison.json").read_text()) == record
    header = next(line for line in md.splitlines() if line.startswith("| quantity"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "quantity",
        "tiny_random",
        "tiny_random_sigmoid",
    ]
    rows = {r["quantity"]: r for r in record["rows"]}
    assert rows["loss"] == {
        "quantity": "loss",
        "tiny_random": "softmax",
        "tiny_random_sigmoid": "sigmoid",
    }
    # Each column holds its own run's numbers.
    q = "modality gap ‖m_i − m_t‖ (raw)"
    for m, e in entries.items():
        assert rows[q][m] == f"{e['gap']['norm']:.4f}"
    assert rows["positive + negative at α = 0, images shifted"]["tiny_random"] == "—"
    assert rows["alignment + uniformity at α = 0, images shifted"]["tiny_random_sigmoid"] == "—"
    for m in config.compare_models:
        assert record["verdicts"][m]["sentence"] in md
        assert f"]({m}/report.md)" in md and (run / m / "report.md").is_file()
    assert "for the sigmoid model `tiny_random_sigmoid`" in md
    assert "for the softmax model `tiny_random`" in md


def _entry(ratio_i, ratio_t, err_i, err_t, alpha_i, sigmoid=True):
    loss = {"logit_scale": 10.0, "image": {"summary": {"alpha_min_total": alpha_i}}}
    if sigmoid:
        loss.update(loss="sigmoid", logit_bias=-10.0)
    return {
        "moments": {"image": {"ratio": ratio_i}, "text": {"ratio": ratio_t}},
        "thin_shell": {"image": {"rel_error": err_i}, "text": {"rel_error": err_t}},
        "loss": loss,
    }


def test_verdict_sentences_follow_the_numbers():
    holds = gc.verdict_sentence("m", _entry(0.9, 1.1, 0.002, 0.01, 0.1))
    assert holds.startswith("The double-ellipsoid picture holds for the sigmoid model `m`:")
    assert "0.900 (images), 1.100 (texts)" in holds and "α = +0.10" in holds
    fails = gc.verdict_sentence("m", _entry(0.2, 1.1, 0.002, 0.08, -0.5, sigmoid=False))
    assert fails.startswith("The double-ellipsoid picture does not hold for the softmax model")
    assert "not offset" in fails and "8.00 % (texts)" in fails and "α = -0.50" in fails
    # Exactly at the thresholds still holds.
    c = gc.CRITERIA
    edge = _entry(c["min_offset_ratio"], 1.0, 0.0, c["max_shell_rel_error"], c["max_abs_alpha"])
    assert gc.verdict(edge)[0]
