"""An on-disk, content-keyed, crash-safe store of embedding shards.

Layout of one entry (one model × dataset × split × preprocessing × batch size):

    <root>/<kind>-<key>/
        meta.json            what the key was computed from (human-readable)
        shard-00000.npz      arrays for rows [start, stop) + a checksummed header
        ...
        complete.json        written last: number of shards and rows

`key` is a hash of everything that determines the numbers (built in one place,
`jaxclip.features.extract.feature_key`: the model's parameter fingerprint and architecture
config, the platform and device count, the preprocessing, the dataset's content fingerprint and
split, the batch size, the compute dtype and the jaxclip version), so a changed model,
preprocessing, split or device count never reuses stale features. Every shard is written to a temporary file and renamed into place (atomic), and carries
the key, its row range and a SHA-256 of its arrays: a truncated, corrupted or foreign shard is
detected on read and recomputed, never used. An interrupted run therefore resumes from the
completed shards and, because XLA on a fixed batch size is deterministic, ends bit-identical to
an uninterrupted run. Shard files are written deterministically (`npz_bytes`: sorted members, a
fixed zip timestamp), so equal arrays give byte-equal files: a cache written by one process
and one written by several compare equal with `cmp`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging

from jaxclip import atomic

_HEADER = "__header__"


def default_root() -> Path:
    """`$JAXCLIP_CACHE` or `~/.cache/jaxclip/features`."""
    env = os.environ.get("JAXCLIP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "jaxclip" / "features"


def cache_key(fields: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of JSON-serialisable `fields` (key order does not matter)."""
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of `arrays` (in sorted name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# A fixed zip timestamp: `np.savez` stamps each member with the current time, so two runs that
# compute the same arrays would write different bytes.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (what `np.savez` writes, `np.load` reads) as deterministic bytes.

    Members are written in sorted name order with a fixed timestamp and no pickles, so the
    same arrays always give the same bytes: a cache written by one process or by many, today
    or tomorrow, compares equal with `cmp`.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE_TIME)
            info.create_system = 3  # "unix": the default depends on the writing platform
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arrays[name]), allow_pickle=False)
    return buf.getvalue()


class ShardStore:
    """One cache entry: numbered shards of row ranges, each self-validating."""

    def __init__(self, root: str | os.PathLike, kind: str, fields: Mapping[str, Any]):
        self.key = cache_key(fields)
        self.fields = dict(fields)
        self.path = Path(root) / f"{kind}-{self.key}"

    def shard_path(self, shard: int) -> Path:
        return self.path / f"shard-{shard:05d}.npz"

    def write_meta(self) -> None:
        if not (self.path / "meta.json").exists():
            atomic.write_json(self.path / "meta.json", {"key": self.key, **self.fields})

    def write_shard(
        self,
        shard: int,
        start: int,
        stop: int,
        arrays: Mapping[str, np.ndarray],
        ragged: tuple[str, ...] = (),
    ):
        """Stores rows [start, stop) atomically with a header naming key, range and checksum.

        Every array has one entry per row, except those named in `ragged` (e.g. flattened
        captions, whose per-row counts are stored as a row array).
        """
        for name, a in arrays.items():
            if name not in ragged and len(a) != stop - start:
                raise ValueError(
                    f"shard {shard}: {name} has {len(a)} rows, expected {stop - start}"
                )
        header = {
            "key": self.key,
            "shard": shard,
            "start": start,
            "stop": stop,
            "sha256": arrays_digest(arrays),
        }
        header_bytes = np.frombuffer(json.dumps(header).encode(), np.uint8)
        atomic.write_bytes(self.shard_path(shard), npz_bytes({**arrays, _HEADER: header_bytes}))

    def read_shard(self, shard: int, start: int, stop: int) -> dict[str, np.ndarray] | None:
        """The shard's arrays if it exists and is intact and current; else None (and says why)."""
        path = self.shard_path(shard)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            header = json.loads(arrays.pop(_HEADER).tobytes().decode())
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            logging.warning("cache shard %s is unreadable (%s); recomputing it", path, e)
            return None
        expected = {"key": self.key, "shard": shard, "start": start, "stop": stop}
        stale = {k: header.get(k) for k in expected if header.get(k) != expected[k]}
        if stale:
            logging.warning("cache shard %s is stale (%s); recomputing it", path, stale)
            return None
        if header.get("sha256") != arrays_digest(arrays):
            logging.warning("cache shard %s fails its checksum; recomputing it", path)
            return None
        return arrays

    def mark_complete(self, num_shards: int, num_rows: int) -> None:
        atomic.write_json(self.path / "complete.json", {"shards": num_shards, "rows": num_rows})

    def is_complete(self) -> bool:
        return (self.path / "complete.json").exists()
