"""Cached, data-parallel residual-stream decompositions of dataset images.

`decompose_rows(model, source, rows, ...)` returns the `jaxclip.models.decompose.Decomposition`
(heads, MLPs, embedding path, bias, residual states and, given directions, per-token scores) of
some rows of a dataset split, computed data-parallel over this process's devices (the batch is
split over a one-axis mesh, as in `jaxclip.features.extract`) and stored like features: in a
`ShardStore` (atomic, checksummed shards of `rows_per_shard` rows, resumable) whose key
(`decomposition_store`, built by `extract.feature_key`) covers the model's weights and config,
the platform and device count, the dataset (name, split, version, content fingerprint), the
exact rows, the directions' bytes, the preprocessing and the batch size. A rerun with the same
reads the shards and computes nothing; any change computes a new entry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from absl import logging

from jaxclip.features.cache import ShardStore, default_root
from jaxclip.features.extract import _entry_lock, feature_key, round_batch_size
from jaxclip.models.decompose import Decomposition

_PER_ROW = ("heads", "mlps", "embed", "cls_states", "patch_means", "token_scores")


def _digest(a: np.ndarray | None) -> str | None:
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode() + a.tobytes()).hexdigest()


def decomposition_store(
    model: Any,
    source: Any,
    rows: np.ndarray,
    *,
    directions: np.ndarray | None = None,
    batch_size: int = 64,
    preprocess: str = "device",
    rows_per_shard: int = 256,
    cache_root: str | Path | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> ShardStore:
    """The cache entry `decompose_rows` uses for these arguments (`.path` is its folder)."""
    devs = list(devices) if devices is not None else jax.local_devices()
    info = source.info
    rows = np.asarray(rows, np.int64)
    u = None if directions is None else np.asarray(directions, np.float32)
    fields = feature_key(
        model,
        devs,
        kind="decomposition",
        preprocess=preprocess,
        preprocess_config={
            k: v for k, v in dataclasses.asdict(model.preprocess).items() if k != "crop" or not v
        },
        dataset=info.name,
        split=info.split,
        dataset_version=str(info.version),
        dataset_fingerprint=info.fingerprint,
        rows_sha256=_digest(rows),
        num_rows=len(rows),
        directions_sha256=_digest(u),
        batch_size=round_batch_size(batch_size, len(devs)),
        rows_per_shard=rows_per_shard,
        dtype="float32",
    )
    return ShardStore(cache_root or default_root(), "decomposition", fields)


def decompose_rows(
    model: Any,
    source: Any,
    rows: np.ndarray,
    *,
    directions: np.ndarray | None = None,
    batch_size: int = 64,
    preprocess: str = "device",
    rows_per_shard: int = 256,
    cache_root: str | Path | None = None,
    devices: Sequence[jax.Device] | None = None,
    expected_indices: np.ndarray | None = None,
) -> Decomposition:
    """The decomposition of items `rows` of `source` (a dataset split), cached.

    Args:
      model: a `jaxclip.load(...)` result with a ViT image tower.
      source: a `jaxclip.data` dataset source (len, getitem -> {"image", ...}, info).
      rows: (N,) item positions in `source`.
      directions: optional (K, D) directions for per-token scores (part of the key).
      batch_size: images per jitted call (rounded up to a multiple of the devices).
      preprocess: "device" or "host" (as `LoadedCLIP.decompose_image`).
      rows_per_shard: rows per cache shard (the unit of resumption).
      cache_root: cache folder (default `$JAXCLIP_CACHE` or ~/.cache/jaxclip/features).
      devices: devices to split each batch over (default: this process's devices).
      expected_indices: optional (N,) dataset indices the rows must have (items carrying an
        "index" are checked against it: features and decomposition describe the same images).
    """
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard={rows_per_shard} must be >= 1")
    rows = np.asarray(rows, np.int64)
    if rows.ndim != 1 or not len(rows):
        raise ValueError(f"rows must be a non-empty 1-D array; got shape {rows.shape}")
    store = decomposition_store(
        model,
        source,
        rows,
        directions=directions,
        batch_size=batch_size,
        preprocess=preprocess,
        rows_per_shard=rows_per_shard,
        cache_root=cache_root,
        devices=devices,
    )
    n = len(rows)
    ranges = [(a, min(n, a + rows_per_shard)) for a in range(0, n, rows_per_shard)]
    shards = {s: store.read_shard(s, a, b) for s, (a, b) in enumerate(ranges)}
    missing = [s for s, arrays in shards.items() if arrays is None]
    lock = _entry_lock(store) if missing else contextlib.nullcontext()
    with lock:
        for s in missing:  # a concurrent run may have written them while we waited
            shards[s] = store.read_shard(s, *ranges[s])
        missing = [s for s, arrays in shards.items() if arrays is None]
        if missing:
            logging.info("decomposing %d/%d shards into %s", len(missing), len(ranges), store.path)
            store.write_meta()
        for s in missing:
            a, b = ranges[s]
            images = []
            for i, r in enumerate(rows[a:b], start=a):
                item = source[int(r)]
                if (
                    expected_indices is not None
                    and "index" in item
                    and int(item["index"]) != int(expected_indices[i])
                ):
                    raise ValueError(
                        f"row {r} is example {item['index']}, not {expected_indices[i]}"
                    )
                images.append(np.asarray(item["image"]))
            dec = model.decompose_image(
                np.stack(images),
                directions=directions,
                batch_size=batch_size,
                preprocess=preprocess,
                devices=devices,
            )
            arrays = {k: getattr(dec, k) for k in _PER_ROW if getattr(dec, k) is not None}
            arrays["bias"] = dec.bias
            if jax.process_index() == 0:
                store.write_shard(s, a, b, arrays, ragged=("bias",))
            shards[s] = arrays
        if missing and jax.process_index() == 0:
            store.mark_complete(len(ranges), n)
    parts = [shards[s] for s in range(len(ranges))]
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "bias"}
    return Decomposition(bias=parts[0]["bias"], **cat)
