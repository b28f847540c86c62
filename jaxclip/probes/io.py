"""Save and load trained probes: one `.npz` file (arrays + a JSON metadata entry), atomic.

Layout: every array of the probe under its own key ("coef", "intercept", "mean", "scale",
"classes" for a `LinearProbe`; "layer{i}_w", "layer{i}_b", ... for an `MLPProbe`) and the key
"__meta__" holding UTF-8 JSON bytes: {"format": "jaxclip.probe", "version": 1, "type": ...,
plus the probe's scalar fields}. Nothing is pickled (loads with allow_pickle=False), and the
file is written through `jaxclip.atomic`, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip import atomic
from jaxclip.probes.linear import LinearProbe
from jaxclip.probes.mlp import MLPProbe
from jaxclip.report.records import to_jsonable

FORMAT = "jaxclip.probe"
VERSION = 1


def _classes_array(classes: np.ndarray) -> np.ndarray:
    c = np.asarray(classes)
    if c.dtype == object:
        c = c.astype(str)
    return c


def save_probe(probe: LinearProbe | MLPProbe, path: str | os.PathLike) -> Path:
    """Writes `probe` to `path` (".npz" appended if missing) atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    atomic.write_bytes(path, probe_bytes(probe))
    return path


def probe_bytes(probe: LinearProbe | MLPProbe) -> bytes:
    """The bytes of the `.npz` file `save_probe` writes for `probe` (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {
        "mean": np.asarray(probe.mean, np.float32),
        "scale": np.asarray(probe.scale, np.float32),
        "classes": _classes_array(probe.classes),
    }
    if isinstance(probe, LinearProbe):
        arrays["coef"] = np.asarray(probe.coef, np.float32)
        arrays["intercept"] = np.asarray(probe.intercept, np.float32)
        meta = {
            "type": "linear",
            "l2": probe.l2,
            "l2_grid": list(probe.l2_grid),
            "val_accuracy": probe.val_accuracy,
            "train_accuracy": probe.train_accuracy,
            "n_iter": probe.n_iter,
            "converged": probe.converged,
        }
    elif isinstance(probe, MLPProbe):
        for i, layer in enumerate(probe.params):
            arrays[f"layer{i}_w"] = np.asarray(layer["w"], np.float32)
            arrays[f"layer{i}_b"] = np.asarray(layer["b"], np.float32)
        meta = {
            "type": "mlp",
            "num_layers": len(probe.params),
            "hidden": list(probe.hidden),
            "config": probe.config,
            "val_accuracy": probe.val_accuracy,
            "best_epoch": probe.best_epoch,
            "grid": probe.grid,
            "seconds": probe.seconds,
        }
    else:
        raise TypeError(f"can only save LinearProbe or MLPProbe; got {type(probe).__name__}")
    meta = {"format": FORMAT, "version": VERSION, **to_jsonable(meta)}
    if "__meta__" in arrays:
        raise ValueError("reserved key __meta__")
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def load_probe(path: str | os.PathLike) -> LinearProbe | MLPProbe:
    """Reads a probe written by `save_probe`."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    if "__meta__" not in arrays:
        raise ValueError(f"{path} is not a jaxclip probe file (no __meta__ entry)")
    meta: dict[str, Any] = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: version {meta.get('version')!r}; this jaxclip reads {VERSION}")
    common = {"mean": arrays["mean"], "scale": arrays["scale"], "classes": arrays["classes"]}
    nan = float("nan")
    if meta["type"] == "linear":
        val = meta.get("val_accuracy")
        tr = meta.get("train_accuracy")
        return LinearProbe(
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            l2=float(meta["l2"]),
            l2_grid=tuple(meta.get("l2_grid", ())),
            val_accuracy=None if val is None else tuple(val),
            train_accuracy=nan if tr is None else float(tr),
            n_iter=int(meta.get("n_iter", 0)),
            converged=bool(meta.get("converged", True)),
            **common,
        )
    if meta["type"] == "mlp":
        params = [
            {"w": arrays[f"layer{i}_w"], "b": arrays[f"layer{i}_b"]}
            for i in range(int(meta["num_layers"]))
        ]
        va = meta.get("val_accuracy")
        sec = meta.get("seconds")
        return MLPProbe(
            params=params,
            hidden=tuple(meta["hidden"]),
            config=meta["config"],
            val_accuracy=nan if va is None else float(va),
            best_epoch=int(meta.get("best_epoch", 0)),
            grid=meta.get("grid", []),
            seconds=nan if sec is None else float(sec),
            **common,
        )
    raise ValueError(f"{path}: unknown probe type {meta['type']!r} (expected 'linear' or 'mlp')")
