"""Machine-readable results: `results.json` (everything) and `metrics.csv` (the scalars).

An experiment's `run(config, workdir)` returns one nested dict; `write_results` stores it.
numpy / JAX arrays and scalars, dataclasses and paths are converted to plain JSON; NaN and
infinities become `null` so the file is strict JSON that any tool reads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip import atomic


def to_jsonable(obj: Any) -> Any:
    """Recursively converts `obj` to JSON-safe Python (dict, list, str, int, float, None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, bool)) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):  # ml_collections.ConfigDict
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "__array__"):
        arr = np.asarray(obj)
        if arr.ndim == 0:
            return to_jsonable(arr.item())
        return to_jsonable(arr.tolist())
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    raise TypeError(f"cannot store a {type(obj).__name__} in results.json: {obj!r:.80}")


def flatten_metrics(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalar leaves of a nested results dict, keyed by their '/'-joined path.

    Lists and arrays are skipped (they live in results.json); booleans become 0/1.
    """
    flat: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, (bool, int, float, np.number)) or (
            hasattr(value, "shape") and getattr(value, "shape", None) == ()
        ):
            flat[name] = float(np.asarray(value))
    return flat


def write_results(workdir: str | os.PathLike, results: Mapping[str, Any]) -> dict[str, Path]:
    """Writes `workdir/results.json` and `workdir/metrics.csv` atomically; returns their paths."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    clean = to_jsonable(results)
    atomic.write_json(workdir / "results.json", clean)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["metric", "value"])
    for name, value in flatten_metrics(results).items():
        writer.writerow([name, repr(value) if math.isfinite(value) else ""])
    atomic.write_text(workdir / "metrics.csv", buf.getvalue())
    return {"results": workdir / "results.json", "metrics": workdir / "metrics.csv"}
