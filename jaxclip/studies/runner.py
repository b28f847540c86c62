"""Runs a list of studies on one model × dataset, and renders a run's report from its files.

`run_studies(config, workdir, names)` is the whole body of every analysis entry point
(`experiments/zero_shot.py` runs ["zero_shot"], `experiments/dissect.py` runs them all): check
the config, open the model, `analyse` each study, write `results.json`, `metrics.csv`,
`arrays.npz` and `timings.json`, then `render_run(workdir)` draws `report.md` and the figures
from those files alone, which is also what `python -m experiments.report --workdir=DIR` does.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from jaxclip import atomic
from jaxclip.report import Report, to_jsonable, write_results
from jaxclip.studies import class_agnostic, geometry, inside, probe, prompts, retrieval, zero_shot
from jaxclip.studies.common import check_common
from jaxclip.studies.context import RenderContext, RunContext, Section, Study, image_reader

# Study name -> its functions, in the order `dissect` runs them. Explicit, no registry.
STUDIES: dict[str, Study] = {
    "zero_shot": zero_shot.STUDY,
    "prompts": prompts.STUDY,
    "probe": probe.STUDY,
    "class_agnostic": class_agnostic.STUDY,
    "retrieval": retrieval.STUDY,
    "geometry": geometry.STUDY,
    "inside": inside.STUDY,
}

ARRAYS_FILE = "arrays.npz"
TIMINGS_FILE = "timings.json"


def check_config(config: ml_collections.ConfigDict, names: list[str]) -> None:
    """Validates the common fields and each named study's section (one ConfigError each)."""
    check_common(config)
    for name in names:
        study(name).check_config(config[name])


def study(name: str) -> Study:
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose from: {', '.join(STUDIES)}")
    return STUDIES[name]


def report_title(config: Any, names: list[str]) -> str:
    """The report's title: the main job's (its config names `studies`) or the studies run."""
    if "studies" in config:
        return f"Dissecting {config.model} on {config.dataset}"
    return f"{', '.join(names)}: {config.model} on {config.dataset}"


def run_studies(config: Any, workdir: str | Path, names: list[str], *, model=None) -> dict:
    """Runs `names` in order; returns the results dict that was written to results.json."""
    from jaxclip.models.catalog import open_model

    check_config(config, names)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if model is None:
        model = open_model(config.model, dtype=config.dtype, cache_dir=config.cache_dir or None)
    ctx = RunContext(model, config)
    results: dict[str, Any] = {
        "config": config.to_dict(),
        "model": {
            "name": model.name,
            "params_sha256": model.fingerprint,
            "preprocess_rule": model.preprocess.rule,
        },
    }
    timings: dict[str, Any] = {}
    parts: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        t = time.perf_counter()
        logging.info("study %s ...", name)
        result = STUDIES[name].analyse(ctx, config[name])
        if STUDIES[name].write_files is not None:
            STUDIES[name].write_files(result, workdir)
        timings[name] = round(time.perf_counter() - t, 3)
        results[name] = result.to_json()
        arrays.update({f"{name}.{k}": v for k, v in result.arrays().items()})
        if result.timings():
            parts[name] = result.timings()
    results["data"] = ctx.data_summary()
    write_results(workdir, results)
    _write_arrays(workdir / ARRAYS_FILE, arrays)
    t = time.perf_counter()
    render_run(workdir, timings={**timings, "parts": parts}, t0=t0)
    logging.info("report drawn in %.1f s", time.perf_counter() - t)
    return results


def render_run(
    workdir: str | Path, *, timings: Mapping[str, Any] | None = None, t0: float | None = None
) -> Path:
    """Draws `workdir/report.md` and its figures from the run's saved files; returns its path.

    Args:
      workdir: a finished run's folder (results.json, arrays.npz, timings.json).
      timings: a run in progress passes its study timings; the total (from `t0`) and the
        report's own time are added and `timings.json` is written. Without them the saved
        `timings.json` is read, so a re-render gives the same report.
    """
    workdir = Path(workdir)
    results = json.loads((workdir / "results.json").read_text())
    # The config exactly as saved (tuples are lists after JSON), so a fresh run and a
    # re-render format it the same way.
    config = ml_collections.ConfigDict(results["config"])
    names = [n for n in results if n in STUDIES]
    arrays = _read_arrays(workdir / ARRAYS_FILE)
    if timings is None:
        path = workdir / TIMINGS_FILE
        saved = json.loads(path.read_text()) if path.exists() else {}
    else:
        saved = dict(timings)
    parts = saved.get("parts", {})
    out = RenderContext(config, workdir, image_reader(config))
    sections = []
    for name in names:
        own = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(name + ".")}
        result = STUDIES[name].result.from_json(results[name], own, parts.get(name))
        sections.append(STUDIES[name].render(result, out))
    if timings is not None:
        saved["total"] = round(time.perf_counter() - (t0 or time.perf_counter()), 3)
        atomic.write_json(workdir / TIMINGS_FILE, to_jsonable(saved))
    report = _assemble(config, names, results, sections, saved)
    return report.write(workdir)


def _assemble(
    config: Any,
    names: list[str],
    results: Mapping[str, Any],
    sections: list[Section],
    timings: Mapping[str, Any],
) -> Report:
    report = Report(report_title(config, names))
    report.text(
        f"Model `{config.model}` ({results['model']['name']}), dataset `{config.dataset}` "
        f"(train split `{config.train_split}`, test split `{config.test_split}`"
        + (f", {config.max_examples} examples per split" if config.max_examples else "")
        + ")."
    )
    headlines = collect_headlines(results, names)
    if len(headlines) > 1:
        report.section("At a glance")
        report.text(
            "Classification accuracy of the same image embeddings (test split) by every method "
            "this run used: zero-shot needs no labels, probes train on the train split."
        )
        report.table(headlines, ["study", "method", "top1", "top5", "macro_f1"], floatfmt=".2f")
    for section in sections:
        report.extend(section.report)
    report.section("Timings")
    rows = [{"study": k, "seconds": v} for k, v in timings.items() if k != "parts"]
    report.table(rows, floatfmt=".1f")
    return report


def collect_headlines(results: Mapping[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Rows for the "At a glance" table: each study's `headline` (a dict or a list of dicts
    with method, top1, top5, macro_f1 as fractions), shown in percent."""
    rows = []
    for name in names:
        entry = results.get(name)
        heads = entry.get("headline") if isinstance(entry, dict) else None
        for head in [heads] if isinstance(heads, dict) else heads or []:
            row = {"study": name, "method": head.get("method", name)}
            for key in ("top1", "top5", "macro_f1"):
                value = head.get(key)
                row[key] = None if value is None else 100.0 * float(value)
            rows.append(row)
    return rows


def _write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic.write_bytes(path, buf.getvalue())


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return dict(z)
