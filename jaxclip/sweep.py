"""Sweeps: chosen studies over models × datasets, resumable, into one leaderboard.

A **cell** is one (model, dataset, study); it runs as `jaxclip.studies.runner.run_studies` would
run that study alone, into `WORKDIR/cells/<model>/<dataset>/<study>/`, and is finished when its
`results.json` exists (the runner writes it atomically, after the study's work). A rerun skips
finished cells and does not open a model whose cells are all finished; the cells of one model ×
dataset share the feature cache (`jaxclip.features`), so a second study on the same data
encodes nothing again. An interrupted sweep resumes at the first unfinished cell.

After the cells, `WORKDIR/leaderboard.csv` (columns `LEADERBOARD_COLUMNS`, rows sorted by model,
dataset, metric, numbers with `DIGITS` decimals) is rebuilt from the finished cells'
results.json alone, so a resumed sweep writes the same bytes as an uninterrupted one;
`WORKDIR/comparisons.csv` (`comparison_rows`: every pair of models on the same test images,
McNemar + paired bootstrap + Holm per dataset and metric, from the per-example results that
the zero-shot, probe and retrieval cells keep in their arrays.npz, `per_example`) likewise,
atomically, with its header only when there is no pair; `WORKDIR/report.md` (its "Model vs
model" section says the comparisons in words) and the heat map `WORKDIR/sweep_heatmap.png`
follow from them (`jaxclip.report.sweep`).

Models of the grid: `config.models` (catalog names, hub ids, local paths) plus, for each run
folder of `config.train_runs` (a `train_clip` workdir), its orbax checkpoint steps
(`<run>/checkpoints/<step>`, which `jaxclip.load` opens), all of them or those of
`config.train_steps`.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ml_collections

from jaxclip import atomic, progress
from jaxclip.config_args import ConfigError

# Fields of the sweep config that are not copied into the cells' configs.
SWEEP_FIELDS = (
    "grid",
    "models",
    "datasets",
    "studies",
    "train_runs",
    "train_steps",
    "headline_metric",
    "dry_run",
    "cell_reports",
)
LEADERBOARD_COLUMNS = ("model", "dataset", "metric", "value", "ci_low", "ci_high", "n")
LEADERBOARD_FILE = "leaderboard.csv"
COMPARISONS_FILE = "comparisons.csv"
COMPARISON_COLUMNS = (
    "dataset", "metric", "model_a", "model_b", "difference", "ci_low", "ci_high", "p_value",
    "p_holm", "distinguishable", "n",
)  # fmt: skip
HEATMAP_FILE = "sweep_heatmap.png"
DIGITS = 6  # decimals of value / ci_low / ci_high (fractions in [0, 1])
# Datasets whose items carry captions (the retrieval study runs on them only).
CAPTIONED = ("shapes", "coco_captions", "caption_pairs", "webdataset")
CAPTIONED_ONLY_STUDIES = ("retrieval",)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One model × dataset × study of a sweep."""

    model: str
    dataset: str
    study: str

    def folder(self, workdir: str | os.PathLike) -> Path:
        return Path(workdir) / "cells" / slug(self.model) / slug(self.dataset) / self.study

    def results(self, workdir: str | os.PathLike) -> Path:
        return self.folder(workdir) / "results.json"


def slug(name: str) -> str:
    """A folder name for a model or dataset name: itself when it is a plain name, else its
    characters outside [A-Za-z0-9._-] as "_" plus a short hash (two names never share one)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "_"
    if clean == name:
        return name
    return f"{clean}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def names(value: Any) -> list[str]:
    """The comma-separated names of a config field (a string or a sequence)."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return [str(n).strip() for n in items if str(n).strip()]


def expand_models(config: Any) -> list[str]:
    """`config.models`, then each run of `config.train_runs` as its checkpoint steps
    (`config.train_steps` or all)."""
    from jaxclip.models.steps import checkpoint_steps, is_run_folder

    models = names(config.models)
    try:
        wanted = [int(s) for s in names(config.get("train_steps", ""))]
    except ValueError:
        raise ConfigError(
            f"config.train_steps={config.train_steps!r} must be comma-separated integers"
        ) from None
    for run in names(config.get("train_runs", "")):
        found = checkpoint_steps(run)
        if not is_run_folder(run) or not found:
            raise ConfigError(
                f"config.train_runs: {run!r} is not a train_clip run folder with checkpoints "
                "(expected train_config.json and checkpoints/<step>)"
            )
        missing = [s for s in wanted if s not in found]
        if missing:
            raise ConfigError(
                f"config.train_steps={','.join(map(str, wanted))}: run {run!r} has no step "
                f"{', '.join(map(str, missing))}; its steps: {', '.join(map(str, found))}"
            )
        steps = wanted or found
        models += [os.path.join(run, "checkpoints", str(s)) for s in steps]
    return models


def has_captions(dataset: str) -> bool:
    """Whether `dataset` carries captions (retrieval runs on these only), from its name."""
    base = dataset.partition("/")[0]
    if base == "cb":
        from jaxclip.data.clip_benchmark import RETRIEVAL, lookup

        return lookup(dataset).task == RETRIEVAL
    return base in CAPTIONED


def check_names(config: Any) -> list[Cell]:
    """Every cell of the sweep, after checking its model, dataset and study names (one
    ConfigError naming the bad one and what is allowed); opens nothing."""
    from jaxclip.data.datasets import check_dataset_name
    from jaxclip.models.catalog import MODELS
    from jaxclip.studies.runner import STUDIES

    studies = names(config.studies)
    bad = [s for s in studies if s not in STUDIES]
    if bad or not studies:
        raise ConfigError(
            f"config.studies={config.studies!r}: unknown study {', '.join(map(repr, bad))}; "
            f"choose a comma-separated subset of: {', '.join(STUDIES)}"
        )
    models = expand_models(config)
    if not models:
        raise ConfigError("config.models is empty (and config.train_runs names no run)")
    for m in models:
        if m not in MODELS and "/" not in m and not os.path.exists(os.path.expanduser(m)):
            raise ConfigError(
                f"config.models: unknown model {m!r}; choose from: {', '.join(MODELS)}, "
                "an HF hub id (owner/name), an OpenCLIP name or a local path"
            )
    datasets = names(config.datasets)
    if not datasets:
        raise ConfigError("config.datasets is empty")
    for d in datasets:
        try:
            check_dataset_name(d)
        except ConfigError as e:
            raise ConfigError(f"config.datasets: {e}") from None
    metric = str(config.headline_metric)
    if metric.split(".")[0] not in studies:
        raise ConfigError(
            f"config.headline_metric={metric!r} is not a metric of the studies run "
            f"({', '.join(studies)}); e.g. zero_shot.top1, probe.jax_logistic.top1"
        )
    for name, n in (("models", models), ("datasets", datasets), ("studies", studies)):
        dup = sorted({x for x in n if n.count(x) > 1})
        if dup:
            raise ConfigError(f"config.{name} names {', '.join(dup)} twice")
    return [
        Cell(m, d, s)
        for m in models
        for d in datasets
        for s in studies
        if s not in CAPTIONED_ONLY_STUDIES or has_captions(d)
    ]


def cell_config(config: Any, cell: Cell) -> ml_collections.ConfigDict:
    """The config of one cell: the sweep's common fields with the cell's model, dataset and
    that dataset's default splits, plus the study's section."""
    from jaxclip.data.datasets import DEFAULT_SPLITS

    train_split, test_split = DEFAULT_SPLITS[cell.dataset.split("/")[0]]
    c = ml_collections.ConfigDict()
    c.model = cell.model
    c.dataset = cell.dataset
    c.train_split = train_split
    c.test_split = test_split
    from jaxclip.studies.runner import STUDIES

    for key, value in config.items():
        if key in SWEEP_FIELDS or key in STUDIES or key in c:
            continue
        c[key] = value.to_dict() if hasattr(value, "to_dict") else value
    c[cell.study] = ml_collections.ConfigDict(config[cell.study].to_dict())
    return c


def check_cells(config: Any, cells: list[Cell]) -> None:
    """Every cell's config checked as the runner checks it (before any work)."""
    from jaxclip.studies import runner

    for cell in cells:
        runner.check_config(cell_config(config, cell), [cell.study])


def _cache_root(config: Any) -> Path:
    from jaxclip.features.cache import default_root

    return Path(config.cache_dir).expanduser() if config.cache_dir else default_root()


def cell_state(config: Any, cell: Cell, workdir: str | os.PathLike, cells: list[Cell]) -> str:
    """ "finished" (results.json exists); "features cached" (a finished cell of the same model
    and dataset recorded feature-cache entries that are all complete); else "to run"."""
    if cell.results(workdir).is_file():
        return "finished"
    root = _cache_root(config)
    for other in cells:
        if (other.model, other.dataset) != (cell.model, cell.dataset):
            continue
        path = other.results(workdir)
        if not path.is_file():
            continue
        data = json.loads(path.read_text()).get("data", {})
        entries = [v.get("cache") for v in data.values() if isinstance(v, dict)]
        roles = {k for k, v in data.items() if isinstance(v, dict) and v.get("cache")}
        needed = {"test"} | ({"train"} if cell.study in ("probe", "class_agnostic") else set())
        if needed <= roles and all((root / e / "complete.json").is_file() for e in entries if e):
            return "features cached"
    return "to run"


def dry_run(config: Any, workdir: str | os.PathLike) -> list[dict[str, str]]:
    """The cells with their state (`cell_state`), checking names only: nothing is opened,
    loaded or downloaded."""
    cells = check_names(config)
    return [
        {
            "model": c.model,
            "dataset": c.dataset,
            "study": c.study,
            "state": cell_state(config, c, workdir, cells),
        }
        for c in cells
    ]


def run_sweep(
    config: Any,
    workdir: str | os.PathLike,
    *,
    prepare_model: Callable[[Any], Any] | None = None,
    open_model: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Runs every unfinished cell, then writes the leaderboard, the model vs model comparisons,
    the heat map and the report.

    Args:
      config: a sweep config (`configs/sweep.py`).
      workdir: the sweep's folder.
      prepare_model: called with a cell config before its model is opened (the entry point
        trains the "mini" model there on first use).
      open_model: cell config -> model (default `jaxclip.models.catalog.open_model`).

    Returns:
      {"cells", "run", "skipped", "models_opened", "leaderboard", "comparisons", "report"}, or
      {"dry_run", "cells"} with `config.dry_run`.
    """
    workdir = Path(workdir)
    cells = check_names(config)
    if config.dry_run:
        rows = dry_run(config, workdir)
        return {"dry_run": rows, "cells": len(rows)}
    check_cells(config, cells)
    from jaxclip.studies import runner

    if open_model is None:
        from jaxclip.models.catalog import open_model as _open

        def open_model(c):
            return _open(c.model, dtype=c.dtype, cache_dir=c.cache_dir or None)

    todo = [c for c in cells if not c.results(workdir).is_file()]
    opened = 0
    for model_name in dict.fromkeys(c.model for c in todo):
        mine = [c for c in todo if c.model == model_name]
        first = cell_config(config, mine[0])
        if prepare_model is not None:
            prepare_model(first)
        with progress.task(f"open model {model_name}"):
            model = open_model(first)
        opened += 1
        for cell in mine:
            label = f"{cell.model} × {cell.dataset} × {cell.study}"
            progress.say(f"sweep: cell {cells.index(cell) + 1}/{len(cells)}: {label}")
            runner.run_studies(
                cell_config(config, cell),
                cell.folder(workdir),
                [cell.study],
                model=model,
                render=bool(config.cell_reports),
            )
        del model
    rows = leaderboard_rows(cells, workdir)
    path = write_leaderboard(workdir / LEADERBOARD_FILE, rows)
    pairs, skipped = comparison_rows(cells, workdir, int(config.seed))
    atomic.write_text(workdir / COMPARISONS_FILE, comparisons_csv(pairs))
    from jaxclip.report.sweep import write_report

    report = write_report(config, cells, rows, workdir, pairs, skipped)
    return {
        "cells": len(cells),
        "run": len(todo),
        "skipped": len(cells) - len(todo),
        "models_opened": opened,
        "leaderboard": str(path),
        "comparisons": str(workdir / COMPARISONS_FILE),
        "report": str(report),
    }


# --- leaderboard ---------------------------------------------------------------------------------


def _interval(entry: Mapping[str, Any], keys: Iterable[str]) -> tuple[Any, Any]:
    """(ci_low, ci_high) of the first `<key>_ci` entry present, else (None, None)."""
    for key in keys:
        ci = entry.get(f"{key}_ci")
        if isinstance(ci, Mapping) and ci.get("ci_low") is not None:
            return ci["ci_low"], ci.get("ci_high")
    return None, None


def metric_rows(study: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The leaderboard metrics of one study's results.json entry: (metric, value, ci_low,
    ci_high, n) dicts; values are the entry's own numbers (fractions), intervals its `*_ci`
    fields where present.

    zero_shot: top1, top5 (n = num_samples); probe: each method's test top-1
    (`probe.<method>.top1`, n = num_test); retrieval: Recall@1/5/10 both ways
    (`retrieval.<direction>.R@k`, n = the direction's queries).
    """
    rows: list[dict[str, Any]] = []

    def add(metric, value, ci, n):
        if value is None:
            return
        rows.append({"metric": metric, "value": value, "ci_low": ci[0], "ci_high": ci[1], "n": n})

    if entry.get("skipped"):
        return rows
    if study == "zero_shot":
        for k in ("top1", "top5"):
            add(f"zero_shot.{k}", entry.get(k), _interval(entry, [k]), entry.get("num_samples"))
    elif study == "probe":
        for key, m in (entry.get("methods") or {}).items():
            ci = _interval(m, ["test_accuracy", "top1"])
            add(f"probe.{key}.top1", m.get("test_accuracy"), ci, entry.get("num_test"))
    elif study == "retrieval":
        caps = entry.get("captions") or {}
        for direction in ("text_to_image", "image_to_text"):
            d = caps.get(direction) or {}
            for k in ("R@1", "R@5", "R@10"):
                add(f"retrieval.{direction}.{k}", d.get(k), _interval(d, [k]), d.get("num_queries"))
    return rows


def leaderboard_rows(cells: list[Cell], workdir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of every finished cell, sorted by (model, dataset, metric)."""
    rows = []
    for cell in cells:
        path = cell.results(workdir)
        if not path.is_file():
            continue
        entry = json.loads(path.read_text()).get(cell.study) or {}
        for r in metric_rows(cell.study, entry):
            rows.append({"model": cell.model, "dataset": cell.dataset, **r})
    return sorted(rows, key=lambda r: (r["model"], r["dataset"], r["metric"]))


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{float(value):.{DIGITS}f}"


def _count(n: Any) -> Any:
    return "" if n is None else int(n)


def csv_text(header: Iterable[str], records: Iterable[Iterable[Any]]) -> str:
    """CSV text of a header and records, with "\\n" line ends on every platform."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return buf.getvalue()


def leaderboard_csv(rows: list[Mapping[str, Any]]) -> str:
    """The CSV text: `LEADERBOARD_COLUMNS`, numbers with `DIGITS` decimals, empty = none."""
    return csv_text(
        LEADERBOARD_COLUMNS,
        (
            [r["model"], r["dataset"], r["metric"]]
            + [_number(r[k]) for k in ("value", "ci_low", "ci_high")]
            + [_count(r["n"])]
            for r in rows
        ),
    )


def write_leaderboard(path: str | os.PathLike, rows: list[Mapping[str, Any]]) -> Path:
    atomic.write_text(path, leaderboard_csv(rows))
    return Path(path)


# --- model vs model ------------------------------------------------------------------------------


def per_example(study: str, arrays: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The metrics of one cell that have per-example results in its arrays.npz (`arrays`, keys
    `<study>.<field>`): metric (a leaderboard name) -> (bool hits, identity), the hits in test
    order and `identity` what two models' cells must store identically for their hits to be on
    the same examples; {} when the cell stored none (a skipped or multi-label study, or a cell
    written before they were kept).

    zero_shot: `zero_shot.top1` (its `top1_correct` sidecar; identity: `test_labels`); probe:
    `probe.<method>.top1` of each method (its `test_predictions` row == `test_labels`;
    identity: `test_labels`); retrieval: `retrieval.image_to_text.R@1` and `R@5` per captioned
    image (rank of its first caption < K, from `ranks_image_to_text`, where -1 marks an image
    without captions, not a query; identity: that mask).
    """
    import numpy as np

    def get(field):
        key = f"{study}.{field}"
        return np.asarray(arrays[key]) if key in arrays else None

    if study == "retrieval":
        ranks = get("ranks_image_to_text")
        if ranks is None:
            return {}
        query = ranks >= 0
        return {f"retrieval.image_to_text.R@{k}": (ranks[query] < k, query) for k in (1, 5)}
    labels = get("test_labels")
    if labels is None:
        return {}
    if study == "zero_shot":
        hits = get("top1_correct")
        return {} if hits is None else {"zero_shot.top1": (hits.astype(bool), labels)}
    if study == "probe":
        methods, predictions = get("test_methods"), get("test_predictions")
        if methods is None or predictions is None:
            return {}
        return {
            f"probe.{m}.top1": (np.asarray(pred == labels, bool), labels)
            for m, pred in zip(methods.tolist(), predictions, strict=True)
        }
    return {}


def _cell_metrics(cell: Cell, workdir: str | os.PathLike) -> dict[str, tuple[Any, Any]] | None:
    """`per_example` of a finished cell; None when the cell is not finished."""
    import numpy as np

    from jaxclip.studies.runner import ARRAYS_FILE

    if not cell.results(workdir).is_file():
        return None
    path = cell.folder(workdir) / ARRAYS_FILE
    if not path.is_file():
        return {}
    with np.load(path) as arrays:
        return per_example(cell.study, {k: arrays[k] for k in arrays.files})


def comparison_rows(
    cells: list[Cell], workdir: str | os.PathLike, seed: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every pair of models on every dataset, for each metric with per-example results
    (`per_example`: zero-shot top-1, each probe method's top-1, image -> text Recall@1 / @5)
    in both models' finished cells: McNemar's exact test and the paired bootstrap interval of
    the difference a − b on the same test examples (`bootstrap.paired_comparisons`, seeded by
    `seed`), Holm-adjusted over the pairs of one dataset and metric. Rebuilt from the cells' arrays.npz alone; model a
    is the first of the two names in sorted order, rows sorted by (dataset, metric, model_a,
    model_b), so neither the order of the config's models nor a resume changes the result.

    Returns (rows with the `COMPARISON_COLUMNS` keys, one line per pair or cell left out and
    why: the two cells are not on the same test examples (labels, or retrieval's queries,
    differ), or a finished cell has no per-example results while another model's cell of that
    dataset and study has).
    """
    import numpy as np

    from jaxclip.analysis import bootstrap

    models = sorted({c.model for c in cells})
    rows, skipped = [], []
    for dataset in sorted({c.dataset for c in cells}):
        for study in sorted({c.study for c in cells if c.dataset == dataset}):
            found = {m: _cell_metrics(Cell(m, dataset, study), workdir) for m in models}
            found = {m: v for m, v in found.items() if v is not None}
            if len(found) > 1 and any(found.values()):
                skipped += [
                    f"{m} on {dataset} ({study}): its finished cell has no per-example results "
                    "in its arrays.npz (a skipped study, or a cell from before they were kept: "
                    "delete the cell's folder to run it again)"
                    for m, v in found.items()
                    if not v
                ]
            metrics = sorted({k for v in found.values() for k in v})
            for metric in metrics:
                have = [m for m in models if metric in found.get(m, {})]
                pairs = []
                for i, a in enumerate(have):
                    for b in have[i + 1 :]:
                        (ha, la), (hb, lb) = found[a][metric], found[b][metric]
                        if la.shape != lb.shape or not np.array_equal(la, lb):
                            what = "queries" if study == "retrieval" else "labels"
                            skipped.append(
                                f"{a} vs {b} on {dataset} ({metric}): their test examples differ "
                                f"({ha.size} and {hb.size} examples, not the same {what} in the "
                                "same order)"
                            )
                            continue
                        pairs.append((a, b, ha, hb))
                for r in bootstrap.paired_comparisons(pairs, seed=seed):
                    rows.append(
                        {
                            "dataset": dataset,
                            "metric": metric,
                            "model_a": r["a"],
                            "model_b": r["b"],
                            **{k: r[k] for k in COMPARISON_COLUMNS[4:]},
                        }
                    )
    rows.sort(key=lambda r: (r["dataset"], r["metric"], r["model_a"], r["model_b"]))
    return rows, skipped


def comparisons_csv(rows: list[Mapping[str, Any]]) -> str:
    """The CSV text of `comparison_rows` (columns `COMPARISON_COLUMNS`, the header alone when
    there is no row): differences and intervals as fractions with `DIGITS` decimals, like the
    leaderboard; p-values in 6 significant digits; distinguishable as true / false."""
    return csv_text(
        COMPARISON_COLUMNS,
        (
            [r["dataset"], r["metric"], r["model_a"], r["model_b"]]
            + [_number(r[k]) for k in ("difference", "ci_low", "ci_high")]
            + [f"{r['p_value']:.6g}", f"{r['p_holm']:.6g}"]
            + [str(bool(r["distinguishable"])).lower(), _count(r["n"])]
            for r in rows
        ),
    )
