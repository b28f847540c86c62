"""Image-caption pairs from a CSV, TSV or JSONL file: `load_caption_pairs(split, path=FILE)`.

Each row pairs an image path with one caption; rows naming the same image give it several
captions (in file order). CSV / TSV files have a header naming the image column (`image`,
`image_path`, `filepath`, `file` or `path`) and the caption column (`caption`, `text`, `title`
or `captions`); without such a header the first two columns are taken as image, caption.
JSONL rows are objects with one of those image keys and `caption` (a string) or `captions` (a
list). Relative image paths are relative to the file's folder. A `{split}` in the file name is
replaced by the split (`pairs_{split}.csv`); otherwise every split reads the same file.

Items are images in order of their first row, with `captions` and label -1. Images that are
missing or do not decode are skipped (listed in `source.skipped`) or, with `strict=True`, raise.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jaxclip.data.datasets import (
    DatasetInfo,
    DatasetSource,
    _check_file,
    _decode_file,
)
from jaxclip.errors import UserFileNotFoundError, UserValueError

IMAGE_KEYS = ("image", "image_path", "filepath", "file", "path")
CAPTION_KEYS = ("caption", "text", "title", "captions")


def _pick(keys: list[str], choices: tuple[str, ...]) -> str | None:
    lower = {k.strip().lower(): k for k in keys}
    return next((lower[c] for c in choices if c in lower), None)


def read_pairs(file: Path) -> list[tuple[str, str]]:
    """(image path as written, caption) of every row of a CSV / TSV / JSONL file."""
    suffix = file.suffix.lower()
    pairs: list[tuple[str, str]] = []
    if suffix in (".jsonl", ".json"):
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserValueError(f"{file}:{n}: not a JSON object ({e.msg})") from None
            if not isinstance(row, dict):
                raise UserValueError(f"{file}:{n}: a row must be a JSON object; got {row!r:.60}")
            image_key = _pick(list(row), IMAGE_KEYS)
            caption_key = _pick(list(row), CAPTION_KEYS)
            if image_key is None or caption_key is None:
                raise UserValueError(
                    f"{file}:{n}: a row needs an image key ({', '.join(IMAGE_KEYS)}) and a "
                    f"caption key ({', '.join(CAPTION_KEYS)}); it has {sorted(row)}"
                )
            caps = row[caption_key]
            for c in [caps] if isinstance(caps, str) else caps:
                pairs.append((str(row[image_key]), str(c)))
        return pairs
    if suffix not in (".csv", ".tsv", ".txt"):
        raise UserValueError(f"{file}: caption pairs must be a .csv, .tsv or .jsonl file")
    delimiter = "\t" if suffix in (".tsv", ".txt") else ","
    with open(file, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        return pairs
    image_col, caption_col = 0, 1
    header = rows[0]
    image_key, caption_key = _pick(header, IMAGE_KEYS), _pick(header, CAPTION_KEYS)
    if image_key is not None and caption_key is not None:
        image_col, caption_col = header.index(image_key), header.index(caption_key)
        rows = rows[1:]
    for n, row in enumerate(rows, 1):
        if len(row) <= max(image_col, caption_col):
            raise UserValueError(
                f"{file}: row {n} has {len(row)} column(s); expected image, caption"
            )
        pairs.append((row[image_col].strip(), row[caption_col].strip()))
    return pairs


class CaptionPairsSource(DatasetSource):
    """Images with their captions from a pairs file (see module docstring)."""

    def __init__(self, file: str | os.PathLike, *, split: str, strict: bool = False):
        self.file = Path(file)
        self._split, self._strict = split, strict
        self._verified = False
        self.skipped = []
        grouped: dict[str, list[str]] = {}
        for image, caption in read_pairs(self.file):
            grouped.setdefault(image, []).append(caption)
        if not grouped:
            raise UserValueError(f"{self.file}: no image-caption pairs")
        base = self.file.parent
        self._candidates = [
            (os.fspath(p if (p := Path(image).expanduser()).is_absolute() else base / p), caps)
            for image, caps in grouped.items()
        ]
        h = hashlib.sha256(f"caption_pairs\n{self.file.name}\n".encode())
        for path, caps in self._candidates:
            st = os.stat(path) if os.path.isfile(path) else None
            stamp = f"{st.st_size}\t{st.st_mtime_ns}" if st else "missing"
            h.update(f"{path}\t{stamp}\t{json.dumps(caps, ensure_ascii=False)}\n".encode())
        self._fingerprint = "caption_pairs:" + h.hexdigest()[:24]

    def verify(self) -> None:
        """Checks once that every image decodes; skips (or, if strict, raises on) bad ones."""
        if self._verified:
            return
        paths = [p for p, _ in self._candidates]
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            checks = list(pool.map(_check_file, paths))
        items, shapes, skipped = [], set(), []
        for (path, caps), (shape, reason) in zip(self._candidates, checks, strict=True):
            if shape is None:
                reason = "missing file" if not os.path.exists(path) else reason
                if self._strict:
                    raise UserValueError(f"{self.file}: image {path}: {reason} (strict mode)")
                skipped.append((path, reason))
            else:
                items.append((path, caps))
                shapes.add(shape)
        self._items, self._shapes, self.skipped = items, shapes, skipped
        self._verified = True

    @property
    def info(self) -> DatasetInfo:
        self.verify()
        return DatasetInfo(
            name="caption_pairs",
            split=self._split,
            version="caption_pairs",
            classnames=(),
            num_classes=0,
            has_captions=True,
            image_shape=next(iter(self._shapes)) if len(self._shapes) == 1 else None,
            attributes={},
            fingerprint=self._fingerprint,
        )

    def __len__(self) -> int:
        self.verify()
        return len(self._items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = self._check_index(index)
        path, caps = self._items[i]
        return {"image": _decode_file(path), "label": -1, "index": i, "captions": list(caps)}


def load_caption_pairs(
    split: str, *, path: str | os.PathLike | None = None, strict: bool = False
) -> CaptionPairsSource:
    """The pairs file `path` (with `{split}` replaced by the split) as a source."""
    if path is None or not os.fspath(path):
        raise UserValueError(
            "dataset 'caption_pairs' needs path= (--config.data_path=): a CSV, TSV or JSONL "
            "file of image path, caption rows"
        )
    file = Path(os.fspath(path).replace("{split}", split)).expanduser()
    if not file.is_file():
        raise UserFileNotFoundError(f"caption_pairs: {os.fspath(file)!r} is not a file")
    return CaptionPairsSource(file, split=split, strict=strict)
