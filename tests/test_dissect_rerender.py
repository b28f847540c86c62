"""The main job end to end (smoke), and its report drawn again from the saved files alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from configs.dissect import get_config
from experiments import dissect
from jaxclip.studies.runner import STUDIES
from tests.study_fakes import check_links

ROOT = Path(__file__).resolve().parents[1]


def test_dissect_smoke_then_report_redraws_the_same_report(tmp_path, shapes_data_dir):
    config = get_config("smoke")
    config.cache_dir = str(tmp_path / "cache")
    config.data_dir = str(shapes_data_dir)
    workdir = tmp_path / "run"
    results = dissect.run(config, str(workdir))
    assert [k for k in results if k in STUDIES] == list(STUDIES)  # every study, in order
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["config"]["studies"] == ",".join(STUDIES)
    assert saved["model"]["name"] == "tiny_random(seed=0)"
    assert saved["model"]["preprocess_rule"] == "hf"
    # No path of this machine: config paths as the user gave them, cache entries by name.
    assert saved["config"]["cache_dir"] == config.cache_dir
    assert not _absolute_paths({k: v for k, v in saved.items() if k != "config"})
    assert all(
        d["cache"].startswith("images-") for d in saved["data"].values() if isinstance(d, dict)
    )
    report = (workdir / "report.md").read_text()
    links = check_links(workdir, report)
    for name in STUDIES:
        assert any(link.startswith(name) for link in links), f"no figure of study {name}"

    # Remove every figure and the report, then re-render from results.json / arrays.npz /
    # timings.json in a fresh process: the same report, every figure drawn again.
    figures = {p.name: p.read_bytes() for p in workdir.glob("*.png")}
    for name in figures:
        (workdir / name).unlink()
    (workdir / "report.md").unlink()
    before = (workdir / "results.json").read_bytes()
    out = subprocess.run(
        [sys.executable, "-m", "experiments.report", f"--workdir={workdir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert (workdir / "report.md").read_text() == report
    assert sorted(p.name for p in workdir.glob("*.png")) == sorted(figures)
    assert (workdir / "results.json").read_bytes() == before  # re-rendering computes nothing


def _absolute_paths(tree) -> list[str]:
    """Every string in a JSON tree that looks like an absolute path."""
    if isinstance(tree, dict):
        return [p for v in tree.values() for p in _absolute_paths(v)]
    if isinstance(tree, list):
        return [p for v in tree for p in _absolute_paths(v)]
    return (
        [tree] if isinstance(tree, str) and (tree.startswith(("/", "~")) or ":\\" in tree) else []
    )
