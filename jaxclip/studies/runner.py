"""Runs a list of studies on one model × dataset, and renders a run's report from its files.

`run_studies(config, workdir, names)` is the whole body of every analysis entry point
(`experiments/zero_shot.py` runs ["zero_shot"], `experiments/dissect.py` runs them all): check
the config, open the model, `analyse` each study, write `arrays.npz`, `results.json`,
`metrics.csv` and `timings.json` (results.json after arrays.npz and clip_benchmark.json, so a
folder with results.json has them: a sweep's finished cell), then `render_run(workdir)`
draws `report.md` and the figures from those files alone, which is also what
`python -m experiments.report --workdir=DIR` does. While the studies run, a `SectionDrawer`
draws each finished study's section and figures on a second thread from the result in its saved
form, so `render_run` only waits for the last ones and assembles the same report a re-render
draws.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from jaxclip import atomic, progress
from jaxclip.analysis.clip_benchmark import record as cb_record
from jaxclip.report import Report, text_table, to_jsonable, write_results
from jaxclip.report.intervals import format_ci
from jaxclip.studies import class_agnostic, geometry, inside, probe, prompts, retrieval, zero_shot
from jaxclip.studies.common import check_common
from jaxclip.studies.context import (
    RenderContext,
    RunContext,
    Section,
    Study,
    check_split_overlap,
    image_reader,
)
from jaxclip.studies.probe_common import UNCONVERGED, flag_unconverged, unconverged_note
from jaxclip.studies.result import StudyResult

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

GLANCE_COLUMNS = ["study", "method", "top1", "top5", "macro_f1"]  # the "At a glance" table
ARRAYS_FILE = "arrays.npz"
TIMINGS_FILE = "timings.json"
CLIP_BENCHMARK_FILE = "clip_benchmark.json"


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


def run_studies(
    config: Any,
    workdir: str | Path,
    names: list[str],
    *,
    model=None,
    t0: float | None = None,
    before: Mapping[str, float] | None = None,
    render: bool = True,
) -> dict:
    """Runs `names` in order; returns the results dict that was written to results.json.

    `render=False` writes the files but not report.md and its figures (a sweep's cells;
    `python -m experiments.report --workdir=DIR` draws them later).

    `t0` (a `time.perf_counter()` value) and `before` (seconds of steps run before this call,
    e.g. `{"train_model": 180.2}` when the model was trained on first use) let an entry point
    count its own steps into the Timings table; the total runs from `t0` (default: now).
    """
    from jaxclip.models.catalog import open_model

    t0 = time.perf_counter() if t0 is None else t0
    check_config(config, names)
    # Train / test overlap matters to studies that fit on one and score on the other:
    # refused unless config.allow_split_overlap (None: no such study, not checked).
    fits = any(STUDIES[n].fits_on_train for n in names)
    shared = check_split_overlap(config) if fits else None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, Any] = {k: round(float(v), 3) for k, v in (before or {}).items()}
    t = time.perf_counter()
    if model is None:
        with progress.task(f"open model {config.model}"):
            model = open_model(config.model, dtype=config.dtype, cache_dir=config.cache_dir or None)
    timings["open_model"] = round(time.perf_counter() - t, 3)
    ctx = RunContext(model, config)
    results: dict[str, Any] = {
        "config": config.to_dict(),
        "model": {
            "name": model.name,
            "params_sha256": model.fingerprint,
            "preprocess_rule": model.preprocess.rule,
        },
    }
    if training_eval := _training_eval(config):
        results["model"]["training_eval"] = training_eval
    parts: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    drawer = SectionDrawer(results["config"], workdir) if render else None
    try:
        for i, name in enumerate(names):
            t = time.perf_counter()
            logging.info("study %s ...", name)
            with progress.task(f"{name} [{i + 1}/{len(names)}]"):
                result = STUDIES[name].analyse(ctx, config[name])
            if STUDIES[name].write_files is not None:
                STUDIES[name].write_files(result, workdir)
            timings[name] = round(time.perf_counter() - t, 3)
            results[name] = result.to_json()
            arrays.update({f"{name}.{k}": v for k, v in result.arrays().items()})
            if result.timings():
                parts[name] = result.timings()
            if drawer is not None:
                drawer.submit(name, result)
        _write_run(workdir, ctx, results, arrays, timings, shared)
        if drawer is None:
            total = {**timings, "parts": parts, "total": round(time.perf_counter() - t0, 3)}
            atomic.write_json(workdir / TIMINGS_FILE, to_jsonable(add_other(total)))
            return results
        with progress.task("report"):
            render_run(workdir, timings={**timings, "parts": parts}, t0=t0, drawn=drawer)
    finally:
        if drawer is not None:
            drawer.close()
    return results


def _write_run(
    workdir: Path,
    ctx: RunContext,
    results: dict[str, Any],
    arrays: Mapping[str, np.ndarray],
    timings: dict[str, Any],
    shared: int | None,
) -> None:
    """The data summary into `results`, then clip_benchmark.json, arrays.npz and results.json
    (with metrics.csv); their time is `timings["write_results"]`."""
    t = time.perf_counter()
    results["data"] = ctx.data_summary()
    if shared is not None:
        results["data"]["train_test_shared"] = shared
    # results.json last: a sweep takes a folder with results.json for finished, so what it reads
    # beside it (the sidecar arrays) must be there by then
    atomic.write_json(workdir / CLIP_BENCHMARK_FILE, clip_benchmark_records(results))
    _write_arrays(workdir / ARRAYS_FILE, arrays)
    write_results(workdir, results)
    timings["write_results"] = round(time.perf_counter() - t, 3)


class SectionDrawer:
    """Draws the studies' report sections on one second thread as their results come in.

    `submit` hands over a study's result; the thread draws it in its saved form
    (`StudyResult.reloaded`, and the config through JSON: what `render_run` reads back from
    the files), so each section, figures included, is the one a re-render draws.
    `section(name)` waits for it and raises what drawing raised; `seconds` holds each
    section's drawing time. Only this thread uses matplotlib meanwhile; the
    studies' JAX and scikit-learn work mostly runs outside the GIL, so drawing overlaps it.
    """

    def __init__(self, config: Mapping[str, Any], workdir: Path) -> None:
        saved = ml_collections.ConfigDict(json.loads(json.dumps(to_jsonable(config))))
        self._out = RenderContext(saved, Path(workdir), image_reader(saved))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxclip-report")
        self._futures: dict[str, Future] = {}
        self.seconds: dict[str, float] = {}

    def submit(self, name: str, result: StudyResult) -> None:
        """Queues study `name`'s section, drawn from `result.reloaded()`."""
        self._futures[name] = self._pool.submit(self._draw, name, result)

    def _draw(self, name: str, result: StudyResult) -> Section:
        t = time.perf_counter()
        section = STUDIES[name].render(result.reloaded(), self._out)
        self.seconds[name] = round(time.perf_counter() - t, 3)
        return section

    def section(self, name: str) -> Section | None:
        """Study `name`'s section once drawn (None: not submitted)."""
        future = self._futures.get(name)
        return None if future is None else future.result()

    def close(self) -> None:
        """Stops the thread after the section it is drawing (queued ones are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def render_run(
    workdir: str | Path,
    *,
    timings: Mapping[str, Any] | None = None,
    t0: float | None = None,
    drawn: SectionDrawer | None = None,
) -> Path:
    """Draws `workdir/report.md` and its figures from the run's saved files; returns its path.

    Args:
      workdir: a finished run's folder (results.json, arrays.npz, timings.json).
      timings: a run in progress passes its study timings; the total (from `t0`) and the
        report's own time are added and `timings.json` is written. Without them the saved
        `timings.json` is read, so a re-render gives the same report.
      drawn: the run's `SectionDrawer`: the sections it drew are used as they are (their
        drawing times become `parts["report"]` of the timings).
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
    t_render = time.perf_counter()
    sections = []
    for name in names:
        section = drawn.section(name) if drawn is not None else None
        if section is None:
            own = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(name + ".")}
            result = STUDIES[name].result.from_json(results[name], own, parts.get(name))
            section = STUDIES[name].render(result, out)
        sections.append(section)
    if drawn is not None and drawn.seconds:
        saved["parts"] = {**parts, "report": dict(drawn.seconds)}
    if timings is not None:
        now = time.perf_counter()
        saved["report"] = round(now - t_render, 3)
        saved["total"] = round(now - (t0 or t_render), 3)
        saved = add_other(saved)
        atomic.write_json(workdir / TIMINGS_FILE, to_jsonable(saved))
    report = _assemble(config, names, results, sections, saved)
    if records := results["model"].get("training_eval"):
        from jaxclip.report.plots import save_figure
        from jaxclip.report.training import eval_curves_figure

        name = save_figure(eval_curves_figure(records), workdir, "model_training_eval.png")
        report.section(f"How `{config.model}` learned")
        report.text(
            "Held-out evaluation during the model's training (`python -m experiments.train_clip`"
            ", `eval_every`): zero-shot accuracy per attribute and image <-> caption retrieval "
            "recall on a fixed subset of the test split, against the training step."
        )
        report.figure(name, "Held-out zero-shot accuracy and retrieval recall during training")
    return report.write(workdir)


def _training_eval(config: Any) -> list[dict[str, Any]]:
    """{step, eval_*} records of the run that trained `config.model` here ("mini"), logged by
    its held-out evaluation during training; [] for other models or runs without one."""
    from jaxclip.models.catalog import ModelNotTrained, trained_model_dir
    from jaxclip.report.training import eval_records
    from jaxclip.train import METRICS_FILE, read_metrics

    try:
        model_dir = trained_model_dir(str(config.model), config.cache_dir or None)
    except ModelNotTrained:
        return []
    return [
        {k: v for k, v in r.items() if k == "step" or k.startswith("eval_")}
        for r in eval_records(read_metrics(model_dir.parent / METRICS_FILE))
    ]


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
    shared = results.get("data", {}).get("train_test_shared") or 0
    if shared:
        report.text(
            f"**Warning: train and test share {shared} image{'s' if shared != 1 else ''}: "
            "accuracies are not held-out** (`allow_split_overlap`)."
        )
    headlines = collect_headlines(results, names)
    if len(headlines) > 1:
        report.section("At a glance")
        report.text(
            "Classification accuracy of the same image embeddings (test split) by every method "
            "this run used: zero-shot needs no labels, probes train on the train split."
        )
        report.table(headlines, GLANCE_COLUMNS, floatfmt=".2f")
        flagged = [
            f"{h['study']}: {h['method'].removesuffix(' ' + UNCONVERGED)}"
            for h in headlines
            if h["converged"] is False
        ]
        if note := unconverged_note(flagged):
            report.text(note)
    for section in sections:
        report.extend(section.report)
    report.section("Timings")
    report.text(
        "Wall-clock seconds of each step of this run; the steps add up to the total (`other`: "
        "the time between them)."
        + (
            " `train_model`: the model was trained on first use."
            if "train_model" in timings
            else ""
        )
        + _drawn_note(timings)
    )
    report.table(timing_rows(timings), floatfmt=".1f")
    return report


def _drawn_note(timings: Mapping[str, Any]) -> str:
    """The Timings text's sentence on sections drawn beside the studies ("" when none were)."""
    drawn = timings.get("parts", {}).get("report") or {}
    if not drawn:
        return ""
    return (
        f" The report's {len(drawn)} study "
        + ("section was" if len(drawn) == 1 else "sections were")
        + f" drawn on a second thread while the studies ran ({sum(drawn.values()):.1f} s of "
        "drawing that overlaps the other rows' time, not a row of its own), so `report` is the "
        "wait for the last section and the assembly."
    )


def add_other(timings: Mapping[str, Any]) -> dict[str, Any]:
    """`timings` (step -> seconds, "total", "parts") with "other" = total minus the steps, so
    the rows add up to the total. A saved "other" is recomputed; without "total", unchanged."""
    out = {k: v for k, v in timings.items() if k not in ("other", "total")}
    if "total" not in timings:
        return dict(timings)
    steps = sum(float(v) for k, v in out.items() if k != "parts")
    out["other"] = round(float(timings["total"]) - steps, 3)
    out["total"] = timings["total"]
    return out


def timing_rows(timings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Timings table: one row per step, "other" (the remainder), then "total"."""
    full = add_other(timings)
    return [{"step": k, "seconds": v} for k, v in full.items() if k != "parts"]


def glance_text(results: Mapping[str, Any]) -> str:
    """The report's "At a glance" rows as a plain-text table for the console ("" when the run
    has no headline, e.g. geometry alone)."""
    rows = collect_headlines(results, [n for n in results if n in STUDIES])
    if not rows:
        return ""
    title = "At a glance (accuracy in % on the test split; zero-shot needs no labels):"
    return title + "\n" + text_table(rows, GLANCE_COLUMNS, floatfmt=".2f").rstrip("\n")


def collect_headlines(results: Mapping[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Rows for the "At a glance" table: each study's `headline` (a dict or a list of dicts
    with method, top1, top5, macro_f1 as fractions), shown in percent, with the 95 % bootstrap
    interval where the headline has one (`top1_ci`, `top5_ci`, `macro_f1_ci`): `63.76 [63.30,
    64.21]`; a method whose `converged` is False carries the † mark."""
    rows = []
    for name in names:
        entry = results.get(name)
        heads = entry.get("headline") if isinstance(entry, dict) else None
        for head in [heads] if isinstance(heads, dict) else heads or []:
            converged = head.get("converged")
            method = flag_unconverged(head.get("method", name), converged)
            row = {"study": name, "method": method, "converged": converged}
            for key in ("top1", "top5", "macro_f1"):
                value, ci = head.get(key), head.get(f"{key}_ci")
                if value is None:
                    row[key] = None
                elif ci and ci.get("ci_low") is not None:
                    row[key] = format_ci(ci, float(value))
                else:
                    row[key] = 100.0 * float(value)
            rows.append(row)
    return rows


def clip_benchmark_records(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One CLIP_benchmark CLI record per task this run evaluated (zero-shot classification,
    caption retrieval), from the studies' `clip_benchmark` entries; [] when none ran."""
    config, name = results["config"], results["model"]["name"]
    tasks = (
        ("zeroshot_classification", (results.get("zero_shot") or {}).get("clip_benchmark")),
        (
            "zeroshot_retrieval",
            ((results.get("retrieval") or {}).get("captions") or {}).get("clip_benchmark"),
        ),
    )
    return [
        cb_record(config["dataset"], config["model"], task, values, pretrained=name)
        for task, values in tasks
        if values
    ]


def _write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic.write_bytes(path, buf.getvalue())


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return dict(z)
