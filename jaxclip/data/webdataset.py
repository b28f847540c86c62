"""Webdataset tar shards as a random-access `DatasetSource`: `load_webdataset(split, path=...)`.

A webdataset is a set of plain tar files ("shards"); a sample is the run of consecutive members
sharing a key (the member path up to the first dot of its file name), and each member's
extension names a field: an image (`jpg`, `png`, `webp`, ...), `cls` (an integer label as
text), `txt` (captions, one per line), `npy` (a multi-hot label vector, CLIP_benchmark's
multi-label format) and `json` (a dict; its `label` / `caption(s)` are used where `cls` / `txt`
are absent). CLIP_benchmark's layout (`clip-benchmark/wds_<name>` on the Hugging Face hub) is
`<root>/<split>/{0..N-1}.tar` with `<split>/nshards.txt`, `classnames.txt`,
`zeroshot_classification_templates.txt` and `dataset_type.txt` (classification, retrieval or
multilabel) at the root; all of them are read when present.

`path` is a folder (`DIR/<split>/*.tar`, or `DIR/*.tar` with split="all"), a shard pattern with
brace ranges / lists or globs (`shards/train-{000..009}.tar`), or a hub dataset repo
(`clip-benchmark/wds_cifar100`, or `hf://clip-benchmark/wds_cifar100`), downloaded with
`huggingface_hub.snapshot_download` (only that split's shards and the text files) into the hub
cache. Offline, a repo that is not cached fails at once with one line saying what to download.

Reader: the `webdataset` package streams samples (an iterable, no indexing), which neither the
feature cache's resumption nor the per-process row slices of `jaxclip.data.pipeline` can use, so
shards are read here with the standard library: each shard is scanned once with `tarfile` (only
headers are read; `cls` values, a few bytes each, are kept), the member offsets are cached in
memory and under `<data dir>/wds_index/`, and items are read by seeking to their offsets. That
gives random access with a stable length, so caching, resumption and process sharding work as
for every other source. A truncated shard keeps its complete samples; the cut one is skipped
and counted in `source.skipped` (with `strict=True` it raises).
"""

from __future__ import annotations

import glob
import hashlib
import io
import itertools
import json
import logging
import os
import re
import tarfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxclip import hub
from jaxclip.data.datasets import (
    IMAGE_EXTENSIONS,
    DatasetInfo,
    DatasetSource,
    as_rgb_uint8,
)
from jaxclip.errors import UserError, UserFileNotFoundError, UserValueError

log = logging.getLogger(__name__)

IMAGE_FIELDS: tuple[str, ...] = tuple(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
DATASET_TYPES = ("classification", "retrieval", "multilabel")
META_FILES = ("classnames.txt", "zeroshot_classification_templates.txt", "dataset_type.txt")
_INDEX_VERSION = 1
_INDEX_CACHE: dict[str, dict[str, Any]] = {}
_INDEX_LOCK = threading.Lock()
_HUB_REPO = re.compile(r"^(?:hf://(?:datasets/)?)?([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)$")


class HubUnavailableError(UserError, ConnectionError):
    """A hub dataset is neither in the local cache nor downloadable now (offline)."""


# ----------------------------------------------------------------------------------------------
# Shard lists: brace patterns, folders, hub repos.


def expand_braces(pattern: str) -> list[str]:
    """Every string `pattern` denotes: `{a,b}` lists and `{0..9}` / `{000..099}` ranges.

    Ranges keep the zero padding of their first bound; several and nested braces combine.
    Unbalanced or empty braces and ranges whose bounds are not integers raise `UserValueError`.
    """
    depth = 0
    for ch in pattern:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth != 0:
        raise UserValueError(
            f"shard pattern {pattern!r} has an unbalanced brace; write lists as {{a,b}} and "
            "ranges as {000..009}"
        )
    return _expand(pattern)


def _expand(pattern: str) -> list[str]:
    """Expands the first outermost brace (bash order: `{x,{y,z}}` -> x, y, z), then the rest."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, cuts, end = 0, [], -1
    for i in range(start, len(pattern)):
        ch = pattern[i]
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 1:
            cuts.append(i)
        if depth == 0:
            end = i
            break
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    r = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if r is None and (not body or (not cuts and "{" not in body)):
        raise UserValueError(
            f"brace {{{body}}} in shard pattern {pattern!r} is not a list {{a,b}} or an integer "
            "range {000..009}"
        )
    if r:
        lo, hi = int(r.group(1)), int(r.group(2))
        if hi < lo:
            raise UserValueError(f"brace range {{{body}}} in {pattern!r} runs backwards")
        width = len(r.group(1)) if r.group(1).startswith("0") else 0
        options = [str(i).zfill(width) for i in range(lo, hi + 1)]
    else:
        bounds = [start, *cuts, end]
        parts = [pattern[a + 1 : b] for a, b in itertools.pairwise(bounds)]
        options = [o for part in parts for o in _expand(part)]
    return [head + opt + rest for opt in options for rest in _expand(tail)]


def _natural_key(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _tars_in(folder: Path) -> list[Path]:
    nshards = folder / "nshards.txt"
    if nshards.is_file():
        text = nshards.read_text().strip()
        if not text.isdigit():
            raise UserValueError(f"{nshards}: holds {text[:40]!r}; expected the shard count")
        n = int(text)
        shards = [folder / f"{i}.tar" for i in range(n)]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise UserFileNotFoundError(
                f"{folder}: nshards.txt says {n} shards but {missing[:3]} are missing"
            )
        return shards
    return sorted(folder.glob("*.tar"), key=lambda p: _natural_key(p.name))


def _is_pattern(path: str) -> bool:
    return any(c in path for c in "{*?[") or path.endswith(".tar")


def local_shards(path: str, split: str) -> tuple[list[Path], Path | None]:
    """(shards, folder holding classnames.txt etc. or None) of a local folder or pattern."""
    if _is_pattern(path):
        shards: list[Path] = []
        for p in expand_braces(os.path.expanduser(path)):
            hits = sorted(glob.glob(p), key=_natural_key) if any(c in p for c in "*?[") else [p]
            shards.extend(Path(h) for h in hits)
        missing = [os.fspath(s) for s in shards if not s.is_file()]
        if not shards or missing:
            raise UserFileNotFoundError(
                f"webdataset: {path!r} matches no tar file"
                + (f" ({len(missing)} missing, e.g. {missing[0]})" if missing else "")
            )
        parent = shards[0].parent
        meta = next(
            (d for d in (parent, parent.parent) if any((d / f).is_file() for f in META_FILES)),
            None,
        )
        return shards, meta
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserFileNotFoundError(
            f"webdataset: {path!r} is not a folder, a tar pattern or a hub repo (owner/name)"
        )
    if (root / split).is_dir():
        shards = _tars_in(root / split)
        if not shards:
            raise UserFileNotFoundError(f"webdataset: no .tar shards in {root / split}")
        return shards, root
    if split == "all" and _tars_in(root):
        return _tars_in(root), root
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and _tars_in(p))
    raise UserValueError(
        f"webdataset: no split folder {split!r} with .tar shards in {root}; found {found}. Pass "
        f"one of them as split, or split='all' to read the shards in {root} itself"
    )


def hub_repo(path: str) -> str | None:
    """The hub repo id that `path` names ("owner/name" that is not a local path), else None."""
    m = _HUB_REPO.match(path)
    if m is None or (not path.startswith("hf://") and os.path.exists(path)):
        return None
    return m.group(1)


def download_hint(repo: str, split: str) -> str:
    """How to get `repo`'s `split` onto this machine (the offline error's advice)."""
    return (
        f"download it where there is a network (`huggingface-cli download {repo} "
        f"--repo-type dataset --include '{split}/*' '*.txt'`, with the same HF_HOME / "
        f"HF_HUB_CACHE as here), or copy its {split}/*.tar and *.txt files to a folder DIR and "
        f"pass --config.dataset=webdataset --config.data_path=DIR"
    )


def hub_snapshot(repo: str, split: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local folder of `repo`'s `split` shards and text files, downloaded if needed.

    The hub cache is tried first (no network); then, unless HF_HUB_OFFLINE is set and if the
    hub answers within 3 s, `snapshot_download` fetches what is missing. Otherwise raises
    `HubUnavailableError` at once, in one line.
    """
    from huggingface_hub import snapshot_download

    patterns = [f"{split}/*.tar", f"{split}/nshards.txt", *META_FILES]
    # HF_HUB_CACHE read now, not when huggingface_hub was imported (it may have been set since).
    cache_dir = cache_dir or os.environ.get("HF_HUB_CACHE") or None
    kwargs = {"repo_type": "dataset", "allow_patterns": patterns, "cache_dir": cache_dir}
    cached: Path | None = None
    try:
        cached = Path(snapshot_download(repo, local_files_only=True, **kwargs))
    except Exception:  # not cached (LocalEntryNotFoundError and friends)
        cached = None
    if cached is not None and _tars_in(cached / split):
        return cached
    why = hub.unavailable(timeout=3.0)
    if not why:
        try:
            return Path(snapshot_download(repo, etag_timeout=10, **kwargs))
        except Exception as e:
            why = " ".join(f"{type(e).__name__}: {e}".split())[:200]
    raise HubUnavailableError(
        f"webdataset {repo!r} split {split!r} is not in the hub cache and cannot be downloaded "
        f"now ({why}); {download_hint(repo, split)}"
    )


def resolve(
    path: str, split: str, *, cache_dir: str | os.PathLike | None = None
) -> tuple[list[Path], Path | None, str | None]:
    """(shards, metadata folder, hub repo or None) for a `path` of any accepted form."""
    repo = hub_repo(path)
    if repo is None:
        shards, meta = local_shards(path, split)
        return shards, meta, None
    root = hub_snapshot(repo, split, cache_dir=cache_dir)
    return _tars_in(root / split), root, repo


# ----------------------------------------------------------------------------------------------
# The per-shard index.


def _split_name(member: str) -> tuple[str, str]:
    """(key, field) of a member path: key = path up to the first dot of the file name."""
    folder, _, base = member.rpartition("/")
    stem, dot, ext = base.partition(".")
    key = f"{folder}/{stem}" if folder else stem
    return key, ext.lower() if dot else ""


def index_shard(path: Path) -> dict[str, Any]:
    """Scans one tar's headers: its samples (key, field -> (offset, size)) and `cls` values.

    Returns {"samples": [[key, {field: [offset, size]}, cls or None], ...], "truncated":
    reason or ""}; a sample cut by the end of a truncated file is left out.
    """
    size = path.stat().st_size
    samples: list[list[Any]] = []
    cls_at: list[tuple[list[Any], int, int]] = []
    truncated, cut_open_sample = "", True
    try:
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
            current: list[Any] | None = None
            for member in tar:
                if not member.isfile():
                    continue
                key, field = _split_name(member.name)
                if key.rsplit("/", 1)[-1].startswith(".") or not field:
                    continue
                if member.offset_data + member.size > size:
                    truncated = f"member {member.name} ends past the end of the file"
                    cut_open_sample = current is not None and current[0] == key
                    break
                if current is None or current[0] != key:
                    current = [key, {}, None]
                    samples.append(current)
                current[1][field] = [member.offset_data, member.size]
                if field == "cls":
                    cls_at.append((current, member.offset_data, member.size))
            # A complete tar ends with two zero blocks after its last member.
            if not truncated and tar.offset + 2 * tarfile.BLOCKSIZE > size:
                truncated = "no end-of-archive marker"
            for sample, offset, n in cls_at:
                f.seek(offset)
                sample[2] = int(f.read(n).decode().strip())
    except (tarfile.TarError, EOFError, OSError) as e:
        truncated = f"{type(e).__name__}: {e}"
    if truncated and samples and cut_open_sample:
        samples.pop()  # the sample being read when the file ended may miss members
    return {"samples": samples, "truncated": truncated}


def _shard_id(path: Path) -> str:
    st = path.stat()
    return f"{os.fspath(path.resolve())}\t{st.st_size}\t{st.st_mtime_ns}"


def _index_dir() -> Path:
    from jaxclip.data.shapes import default_data_dir

    return Path(default_data_dir()) / "wds_index"


def cached_index(path: Path) -> dict[str, Any]:
    """`index_shard(path)`, cached in memory and on disk per (path, size, mtime)."""
    sid = _shard_id(path)
    with _INDEX_LOCK:
        if sid in _INDEX_CACHE:
            return _INDEX_CACHE[sid]
    digest = hashlib.sha256(f"{_INDEX_VERSION}\n{sid}".encode()).hexdigest()[:24]
    cache_file = _index_dir() / f"{digest}.json"
    index = None
    if cache_file.is_file():
        try:
            stored = json.loads(cache_file.read_text())
            if stored.get("shard") == sid:
                index = stored["index"]
        except (OSError, ValueError, KeyError):
            index = None
    if index is None:
        index = index_shard(path)
        from jaxclip.atomic import write_json

        try:
            write_json(cache_file, {"shard": sid, "index": index})
        except OSError as e:  # a read-only data dir only costs a re-scan
            log.warning("could not write webdataset index %s: %s", cache_file, e)
    with _INDEX_LOCK:
        _INDEX_CACHE[sid] = index
    return index


# ----------------------------------------------------------------------------------------------
# The source.


def _read_lines(path: Path | None) -> tuple[str, ...] | None:
    if path is None or not path.is_file():
        return None
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line)


def _decode_image(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return as_rgb_uint8(np.asarray(im.convert("RGB")))


class WebDatasetSource(DatasetSource):
    """Samples of webdataset tar shards, in shard order then tar order; random access.

    Attributes beyond `DatasetSource`: `shards` (the tar paths), `templates` (the repo's
    zero-shot templates, "{c}" turned into "{}", or None), `dataset_type`, `repo` (hub id or
    None) and `skipped` ((shard, reason) of each truncated shard's lost sample).
    """

    def __init__(
        self,
        shards: Sequence[str | os.PathLike],
        *,
        name: str = "webdataset",
        split: str = "test",
        meta_dir: str | os.PathLike | None = None,
        classnames: Sequence[str] | None = None,
        dataset_type: str | None = None,
        strict: bool = False,
        repo: str | None = None,
    ):
        self.shards = [Path(s) for s in shards]
        if not self.shards:
            raise UserValueError(f"{name}: no shards (an empty shard list)")
        self.repo = repo
        self._name, self._split, self._strict = name, split, strict
        meta = Path(meta_dir) if meta_dir is not None else None
        self._given_classnames = tuple(classnames) if classnames is not None else None
        self._file_classnames = _read_lines(meta / "classnames.txt" if meta else None)
        templates = _read_lines(meta / "zeroshot_classification_templates.txt" if meta else None)
        self.templates = tuple(t.replace("{c}", "{}") for t in templates) if templates else None
        type_lines = _read_lines(meta / "dataset_type.txt" if meta else None)
        self._declared_type = dataset_type or (type_lines[0].lower() if type_lines else None)
        if self._declared_type is not None and self._declared_type not in DATASET_TYPES:
            raise UserValueError(
                f"{name}: dataset type {self._declared_type!r} is not one of {DATASET_TYPES}"
            )
        self._lock = threading.Lock()
        self._ready = False
        self.skipped = []

    # -- the index -----------------------------------------------------------------------------

    def verify(self) -> None:
        """Indexes every shard once (cached) and checks that each sample has its fields."""
        with self._lock:
            if self._ready:
                return
            rows: list[tuple[int, str, dict[str, list[int]], int | None]] = []
            skipped = []
            h = hashlib.sha256(f"webdataset\n{self._split}\n".encode())
            for s, shard in enumerate(self.shards):
                if not shard.is_file():
                    raise UserFileNotFoundError(f"{self._name}: shard {shard} does not exist")
                index = cached_index(shard)
                if index["truncated"]:
                    reason = f"truncated tar ({index['truncated']})"
                    if self._strict:
                        raise UserValueError(
                            f"{shard}: {reason}; strict mode reads only complete shards "
                            "(without strict the cut sample is skipped)"
                        )
                    skipped.append((os.fspath(shard), reason))
                st = shard.stat()
                h.update(f"{shard.name}\t{st.st_size}\t{len(index['samples'])}\n".encode())
                rows.extend((s, key, fields, cls) for key, fields, cls in index["samples"])
            if skipped:
                log.warning(
                    "%s: %d truncated shard(s); their cut samples are skipped, e.g. %s (%s)",
                    self._name,
                    len(skipped),
                    *skipped[0],
                )
            self._rows, self.skipped = rows, skipped
            self._fingerprint = "webdataset:" + h.hexdigest()[:24]
            self._setup_fields()
            self._ready = True

    def _setup_fields(self) -> None:
        rows = self._rows
        if not rows:
            raise UserValueError(f"{self._name}: the shards hold no samples")
        first = rows[0][2]
        kind = self._declared_type
        if kind is None:
            if "npy" in first and "cls" not in first:
                kind = "multilabel"
            elif "cls" in first:
                kind = "classification"
            else:
                kind = "retrieval"
        self.dataset_type = kind
        label_field = {"classification": "cls", "multilabel": "npy"}.get(kind)
        if kind == "classification" and "cls" not in first and "json" in first:
            label_field = "json"
        self._label_field = label_field
        self._caption_field = "txt" if "txt" in first else None
        if kind == "retrieval" and self._caption_field is None:
            self._caption_field = "json" if "json" in first else None
        required = [f for f in (label_field, self._caption_field) if f]
        for s, key, fields, _ in rows:
            if not any(f in fields for f in IMAGE_FIELDS):
                raise UserValueError(
                    f"{self.shards[s]}: sample {key!r} has no image field (it has "
                    f"{sorted(fields)}; images: {', '.join(IMAGE_FIELDS)})"
                )
            for f in required:
                if f not in fields:
                    raise UserValueError(
                        f"{self.shards[s]}: sample {key!r} has no {f!r} field (it has "
                        f"{sorted(fields)}), which a {kind} webdataset needs in every sample"
                    )
        if self._given_classnames is not None:
            names = self._given_classnames
        elif self._file_classnames is not None:
            names = self._file_classnames
        elif label_field == "cls":
            top = max(cls for *_, cls in rows)
            names = tuple(f"class {i}" for i in range(top + 1))
            log.warning("%s: no classnames.txt; naming the classes 'class 0' ...", self._name)
        elif label_field == "npy":
            width = len(np.asarray(self._read_npy(0)).reshape(-1))
            names = tuple(f"class {i}" for i in range(width))
        else:
            names = ()
        self._classnames = tuple(names)
        if label_field == "cls":
            bad = [cls for *_, cls in rows if not 0 <= cls < len(names)]
            if bad:
                raise UserValueError(
                    f"{self._name}: class label {bad[0]} is outside the {len(names)} class names"
                )

    # -- access --------------------------------------------------------------------------------

    @property
    def info(self) -> DatasetInfo:
        self.verify()
        return DatasetInfo(
            name=self._name,
            split=self._split,
            version="webdataset",
            classnames=self._classnames,
            num_classes=len(self._classnames),
            has_captions=self._caption_field is not None,
            image_shape=None,
            attributes={},
            fingerprint=self._fingerprint,
            multi_label=self._label_field == "npy",
        )

    def __len__(self) -> int:
        self.verify()
        return len(self._rows)

    def _read(self, i: int, field: str) -> bytes:
        s, _, fields, _ = self._rows[i]
        offset, size = fields[field]
        with open(self.shards[s], "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise RuntimeError(f"{self.shards[s]}: short read; did the shard change? Reload it.")
        return data

    def _read_npy(self, i: int) -> np.ndarray:
        return np.load(io.BytesIO(self._read(i, "npy")), allow_pickle=False)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = self._check_index(index)
        s, key, fields, cls = self._rows[i]
        image_field = next(f for f in IMAGE_FIELDS if f in fields)
        try:
            image = _decode_image(self._read(i, image_field))
        except Exception as e:
            raise UserValueError(
                f"{self.shards[s]}: sample {key!r} ({image_field}) does not decode "
                f"({type(e).__name__}: {e})"
            ) from e
        item: dict[str, Any] = {"image": image, "label": -1, "index": i}
        try:
            meta = json.loads(self._read(i, "json")) if "json" in fields else {}
        except ValueError as e:
            raise UserValueError(
                f"{self.shards[s]}: sample {key!r} has a bad json field ({e})"
            ) from None
        if self._label_field == "json":
            try:
                int(meta["label"])
            except (KeyError, TypeError, ValueError):
                raise UserValueError(
                    f"{self.shards[s]}: sample {key!r} has no integer 'label' in its json "
                    f"field (keys: {sorted(meta) if isinstance(meta, dict) else '-'})"
                ) from None
        if self._label_field == "cls":
            item["label"] = int(cls)
        elif self._label_field == "json":
            item["label"] = int(meta["label"])
        elif self._label_field == "npy":
            vec = np.asarray(self._read_npy(i)).reshape(-1)
            if len(vec) != len(self._classnames):
                raise UserValueError(
                    f"{self.shards[s]}: sample {key!r} has {len(vec)} labels, expected "
                    f"{len(self._classnames)}"
                )
            item["labels_multi"] = vec.astype(bool)
        if self._caption_field == "txt":
            text = self._read(i, "txt").decode("utf-8")
            item["captions"] = [t.strip() for t in text.splitlines() if t.strip()]
        elif self._caption_field == "json":
            caps = meta.get("captions", meta.get("caption", []))
            item["captions"] = [caps] if isinstance(caps, str) else [str(c) for c in caps]
        return item


def load_webdataset(
    split: str,
    *,
    path: str | os.PathLike | None = None,
    strict: bool = False,
    name: str = "webdataset",
    classnames: Sequence[str] | None = None,
    dataset_type: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> WebDatasetSource:
    """Webdataset shards at `path` (folder, pattern or hub repo; see module docstring)."""
    if path is None or not os.fspath(path):
        raise UserValueError(
            f"dataset {name!r} needs path= (--config.data_path=): a folder, a shard pattern "
            "such as 'DIR/{0..9}.tar' or a hub repo such as 'clip-benchmark/wds_cifar100'"
        )
    shards, meta, repo = resolve(os.fspath(path), split, cache_dir=cache_dir)
    return WebDatasetSource(
        shards,
        name=name,
        split=split,
        meta_dir=meta,
        classnames=classnames,
        dataset_type=dataset_type,
        strict=strict,
        repo=repo,
    )
