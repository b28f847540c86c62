"""Unconverged probe fits are flagged where their numbers are shown: the † mark on the probe
tables and the joint report's "At a glance" table, and a footnote generated from the flags."""

from __future__ import annotations

import ml_collections

from jaxclip.studies import probe as study
from jaxclip.studies.probe_common import (
    UNCONVERGED,
    headline_rows,
    method_rows,
    unconverged_note,
)
from jaxclip.studies.runner import _assemble, collect_headlines
from tests.study_fakes import run_study
from tests.test_study_probe import _cfg, _ctx, _split

JAX = "JAX logistic regression (CLIP protocol)"


def _config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"model": "x", "dataset": "y", "train_split": "train",
                                      "test_split": "test", "max_examples": 0})  # fmt: skip


def _methods(converged: dict[str, bool | None]) -> dict[str, dict]:
    out = {}
    for key, flag in converged.items():
        m = {"method": key, "trained_on": "train", "train_accuracy": 0.9, "test_accuracy": 0.8,
             "top5": None, "macro_f1": 0.7, "chosen": ""}  # fmt: skip
        if flag is not None:
            m["converged"] = flag
        out[key] = m
    return out


def test_rows_carry_the_mark_only_when_converged_is_false():
    methods = _methods({"a": True, "b": False, "svc": None})
    rows = method_rows(methods, {}, "trained on")
    assert [r["method"] for r in rows] == ["a", f"b {UNCONVERGED}", "svc"]
    heads = headline_rows(methods)
    assert [h.get("converged") for h in heads] == [True, False, None]
    assert "converged" not in heads[2]  # no solver flag: nothing claimed


def test_footnote_names_every_flagged_method():
    assert unconverged_note([]) is None
    one = unconverged_note(["b"])
    assert one.startswith(f"{UNCONVERGED} Not converged: the solver of b stopped at its")
    two = unconverged_note(["b", "c"])
    assert two.startswith(f"{UNCONVERGED} Not converged: the solvers of b and c stopped at their")


def test_step_capped_probe_is_flagged_in_its_tables_and_at_a_glance(tmp_path):
    cfg = _cfg()
    cfg.max_iter = 1  # one L-BFGS step cannot reach the tolerance on 4 planted classes
    cfg.mlp = False
    cfg.linear_svc = False
    cfg.sklearn_logistic = False
    cfg.svc_max_train = 0
    cfg.attributes = False
    cfg.save_probe = False
    cfg.shots = (1,)
    cfg.shot_repeats = 1
    ctx = _ctx(_split(80, 1), _split(40, 2), tmp_path, model="x", dataset="y")
    results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
    m = results["methods"]["jax_logistic"]
    assert m["converged"] is False
    md = section.report.markdown()
    assert f"| {JAX} {UNCONVERGED} |" in md  # the methods table row
    assert f"{UNCONVERGED} Not converged: the solver of {JAX} stopped" in md
    path = results["jax_logistic_path"]
    assert not any(p["converged"] for p in path)
    assert f"Note: {len(path)} of the {len(path)} path fits stopped" in md
    # the joint report's "At a glance" table
    all_results = {"model": {"name": "x"}, "probe": results,
                   "zero_shot": {"headline": {"method": "zero-shot", "top1": 0.5}}}  # fmt: skip
    heads = collect_headlines(all_results, ["zero_shot", "probe"])
    assert [h["method"] for h in heads] == ["zero-shot", f"{JAX} {UNCONVERGED}"]
    glance = _assemble(_config(), ["zero_shot", "probe"], all_results, [], {}).markdown()
    row = [ln for ln in glance.splitlines() if ln.startswith("| probe")]
    assert len(row) == 1 and f"| {JAX} {UNCONVERGED} |" in row[0]
    assert f"{UNCONVERGED} Not converged: the solver of probe: {JAX} stopped" in glance


def test_no_mark_and_no_footnote_when_every_fit_converged():
    results = {"model": {"name": "x"},
               "probe": {"headline": headline_rows(_methods({"a": True, "svc": None}))},
               "zero_shot": {"headline": {"method": "zero-shot", "top1": 0.5}}}  # fmt: skip
    heads = collect_headlines(results, ["zero_shot", "probe"])
    assert [h["method"] for h in heads] == ["zero-shot", "a", "svc"]
    md = _assemble(_config(), ["zero_shot", "probe"], results, [], {}).markdown()
    assert "At a glance" in md and "| a " in md
    assert UNCONVERGED not in md
