"""Runs a list of studies on one model × dataset and writes one report.

`run_studies(config, workdir, names)` is the whole body of every analysis entry point
(`experiments/zero_shot.py` runs ["zero_shot"], `experiments/dissect.py` runs them all):
check the config, open the model, build a `Context`, run each study, and write
`results.json`, `metrics.csv` and `report.md` (plots are written by the studies).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from absl import logging

from jaxclip import atomic
from jaxclip.report import Report, write_results
from jaxclip.studies.common import check_common
from jaxclip.studies.context import Context, Section

# Study name -> module in jaxclip.studies with `run(ctx, cfg) -> Section`. Explicit, no registry.
STUDIES: dict[str, str] = {
    "zero_shot": "jaxclip.studies.zero_shot",
    "prompts": "jaxclip.studies.prompts",
    "probe": "jaxclip.studies.probe",
    "class_agnostic": "jaxclip.studies.class_agnostic",
    "retrieval": "jaxclip.studies.retrieval",
    "geometry": "jaxclip.studies.geometry",
}


def study_module(name: str):
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose from: {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name])


def collect_headlines(results: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Rows for the "At a glance" table: each study's `headline` (a dict or a list of dicts
    with method, top1, top5, macro_f1 as fractions), shown in percent."""
    rows = []
    for name in names:
        heads = (
            results.get(name, {}).get("headline") if isinstance(results.get(name), dict) else None
        )
        for head in [heads] if isinstance(heads, dict) else heads or []:
            row = {"study": name, "method": head.get("method", name)}
            for key in ("top1", "top5", "macro_f1"):
                value = head.get(key)
                row[key] = None if value is None else 100.0 * float(value)
            rows.append(row)
    return rows


def run_studies(
    config: Any, workdir: str | Path, names: list[str], *, title: str | None = None, model=None
) -> dict[str, Any]:
    """Runs `names` in order; returns the results dict that was written to results.json."""
    from jaxclip.models.catalog import open_model

    check_common(config)
    modules = {n: study_module(n) for n in names}
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if model is None:
        model = open_model(config.model, dtype=config.dtype, cache_dir=config.cache_dir or None)
    ctx = Context(model, config, workdir)
    results: dict[str, Any] = {
        "config": config.to_dict(),
        "model": {"name": model.name, "params_sha256": model.fingerprint},
    }
    report = Report(title or f"{', '.join(names)}: {config.model} on {config.dataset}")
    report.text(
        f"Model `{config.model}` ({model.name}), dataset `{config.dataset}` "
        f"(train split `{config.train_split}`, test split `{config.test_split}`"
        + (f", {config.max_examples} examples per split" if config.max_examples else "")
        + ")."
    )
    timings: dict[str, float] = {}
    sections: list[Section] = []
    for name, module in modules.items():
        t = time.perf_counter()
        logging.info("study %s ...", name)
        section: Section = module.run(ctx, config[name])
        timings[name] = round(time.perf_counter() - t, 3)
        results[name] = section.results
        sections.append(section)
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
    data = {}
    for which in ("train", "test"):
        if which in ctx._features:
            f = ctx._features[which]
            data[which] = {"num_examples": len(f.embeds), "cache": f.meta.get("cache")}
    results["data"] = data
    write_results(workdir, results)
    # Timings vary run to run, so they stay out of results.json (which is reproducible).
    timings["total"] = round(time.perf_counter() - t0, 3)
    atomic.write_json(workdir / "timings.json", timings)
    report.section("Timings")
    report.table([{"study": k, "seconds": v} for k, v in timings.items()], floatfmt=".1f")
    report.write(workdir)
    return results
