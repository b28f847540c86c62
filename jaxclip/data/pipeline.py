"""Host input pipeline: deterministic, sharded, padded, prefetched uint8 batches.

`batches(source, batch_size)` walks a `DatasetSource` in index order. The dataset is cut into
global batches of `batch_size` rows; with `shard_count` processes, process `shard_index` gets the
contiguous slice `[shard_index * B/shard_count, (shard_index + 1) * B/shard_count)` of every
global batch, so concatenating the processes' batches in process order gives the one-process
batch. The last batch is padded to full size with `valid=False` rows (zeros, label/index -1),
so a jitted step compiles once. Decoding (and the optional host resize + centre crop) runs in a
thread pool (PIL releases the GIL) with `prefetch` batches in flight ahead of the one being
consumed, so the host works while the device computes. No TensorFlow is needed.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

# A batch: image uint8 (B, H, W, 3), label int32 (B,), index int64 (B,), valid bool (B,), one
# int32 (B,) array per extra attribute label, labels_multi bool (B, C) for multi-label
# datasets (`info.multi_label`), and captions (list of B lists of str) when the
# dataset has captions. B = batch_size // shard_count.
Batch = dict[str, Any]

_MAX_CHUNK = 16  # rows per worker task at most


def num_batches(n: int, batch_size: int) -> int:
    """Number of (padded) batches covering `n` examples: ceil(n / batch_size)."""
    if not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n={n!r}: expected an int >= 0")
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected an int >= 1")
    return -(-int(n) // int(batch_size))


def default_num_workers() -> int:
    """Decode threads by default: the CPU count, at most 16."""
    return max(1, min(16, os.cpu_count() or 1))


def batches(
    source: Any,
    batch_size: int,
    *,
    image_size: int | None = None,
    crop: bool = True,
    rule: str = "hf",
    shard_index: int = 0,
    shard_count: int = 1,
    num_workers: int | None = None,
    prefetch: int = 2,
    start_batch: int = 0,
) -> Iterator[Batch]:
    """Yields this process's part of every global batch of `source`, from `start_batch` on.

    Args:
      source: a `DatasetSource` (len, [i] -> item dict, .info; `.verify()` is called first).
      batch_size: global batch size (all processes together); a multiple of `shard_count`.
      image_size: if given, every image is brought to (image_size, image_size) on the host with
        CLIP's shortest-side bicubic resize + centre crop (`preprocess.resize_crop_host`);
        images already of that size pass unchanged. If None, images pass as they are, which
        requires `source.info.image_shape` (all images one size).
      crop: False resizes both sides to image_size without cropping (SigLIP's preprocessing,
        `PreprocessConfig.crop`).
      rule: the crop rule of that host resize, "hf" or "torchvision" (`PreprocessConfig.rule`).
      shard_index, shard_count: this process and the number of processes.
      num_workers: decode threads (None: `default_num_workers()`; 0: decode in the caller).
      prefetch: batches decoded ahead of the one being consumed.
      start_batch: first global batch to yield (to resume; batch b covers rows
        [b * batch_size, (b + 1) * batch_size) of the dataset).

    Yields:
      `Batch` dicts of batch_size // shard_count rows.
    """
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected an int >= 1")
    if not isinstance(shard_count, int | np.integer) or shard_count < 1:
        raise ValueError(f"shard_count={shard_count!r}: expected an int >= 1")
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index={shard_index!r}: expected 0 <= shard_index < {shard_count}")
    if batch_size % shard_count:
        raise ValueError(
            f"batch_size={batch_size} is not a multiple of shard_count={shard_count}; allowed: "
            "batch sizes that split evenly over the processes"
        )
    if image_size is not None and (not isinstance(image_size, int | np.integer) or image_size < 1):
        raise ValueError(f"image_size={image_size!r}: expected None or an int >= 1")
    from jaxclip.data.preprocess import RULES

    if rule not in RULES:
        raise ValueError(f"rule={rule!r}: expected one of {RULES}")
    if prefetch < 0 or start_batch < 0:
        raise ValueError(f"prefetch={prefetch}, start_batch={start_batch}: expected ints >= 0")
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if workers < 0:
        raise ValueError(f"num_workers={num_workers!r}: expected None or an int >= 0")

    if hasattr(source, "verify"):
        source.verify()
    info = source.info
    n = len(source)
    local = batch_size // shard_count
    total = num_batches(n, batch_size)
    if image_size is not None:
        shape = (int(image_size), int(image_size))
    elif info.image_shape is not None:
        shape = tuple(info.image_shape)
    else:
        raise ValueError(
            f"images of {info.name!r} ({info.split}) differ in size or their size is unknown: "
            "pass image_size= to resize and centre-crop them on the host"
        )
    attr_keys = tuple(info.attributes)
    has_captions = bool(info.has_captions)
    multi_label = bool(getattr(info, "multi_label", False))

    def load(i: int) -> dict[str, Any]:
        item = source[i]
        image = item["image"]
        if image.shape[:2] != shape:
            if image_size is None:
                raise ValueError(
                    f"{info.name}[{i}]: image shape {image.shape} differs from the dataset's "
                    f"{shape}; pass image_size= to resize on the host"
                )
            from jaxclip.data.preprocess import resize_crop_host

            image = resize_crop_host(image, int(image_size), crop, rule)
        item["image"] = image
        return item

    def rows(b: int) -> range:
        start = b * batch_size + shard_index * local
        return range(start, start + local)

    def assemble(items: list[dict[str, Any] | None]) -> Batch:
        out: Batch = {
            "image": np.zeros((local, *shape, 3), np.uint8),
            "label": np.full(local, -1, np.int32),
            "index": np.full(local, -1, np.int64),
            "valid": np.zeros(local, bool),
        }
        for key in attr_keys:
            out[key] = np.full(local, -1, np.int32)
        if multi_label:
            out["labels_multi"] = np.zeros((local, info.num_classes), bool)
        if has_captions:
            out["captions"] = [[] for _ in range(local)]
        for r, item in enumerate(items):
            if item is None:
                continue
            out["image"][r] = item["image"]
            out["label"][r] = item["label"]
            out["index"][r] = item["index"]
            out["valid"][r] = True
            for key in attr_keys:
                out[key][r] = item[key]
            if multi_label:
                out["labels_multi"][r] = item["labels_multi"]
            if has_captions:
                out["captions"][r] = list(item["captions"])
        return out

    if workers == 0:
        for b in range(start_batch, total):
            yield assemble([load(i) if i < n else None for i in rows(b)])
        return

    # Work is handed out in chunks of rows (fewer futures: small images decode in ~0.1 ms, so
    # per-row tasks would cost as much as the decoding).
    chunk = max(1, min(_MAX_CHUNK, -(-local // (2 * workers))))

    def load_rows(idx: list[int]) -> list[dict[str, Any] | None]:
        return [load(i) if i < n else None for i in idx]

    def submit(b: int) -> list[Future]:
        idx = list(rows(b))
        return [pool.submit(load_rows, idx[j : j + chunk]) for j in range(0, local, chunk)]

    pool = ThreadPoolExecutor(workers, thread_name_prefix="jaxclip-data")
    pending: collections.deque[list[Future]] = collections.deque()
    next_b = start_batch
    try:
        while pending or next_b < total:
            while next_b < total and len(pending) <= prefetch:
                pending.append(submit(next_b))
                next_b += 1
            futures = pending.popleft()
            yield assemble([item for f in futures for item in f.result()])
    finally:
        for futures in pending:
            for f in futures:
                f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
