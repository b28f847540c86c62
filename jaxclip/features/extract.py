"""Fast, data-parallel, cached extraction of raw CLIP embeddings.

The image path is one jitted function per model: uint8 batch -> (resize, crop, normalise on the
device) -> image tower -> raw embeddings. It runs data-parallel over every device (the batch is
sharded over a one-axis `Mesh`; parameters are replicated), and multi-host: each process feeds
its own slice of every global batch (`jax.make_array_from_process_local_data`), the embeddings,
the per-row metadata (gathered as raw bytes, so int64 indices stay int64) and the captions
(gathered as UTF-8 bytes) reach every process, the processes agree on which shards any of them
lacks (no shared disk needed), and process 0 writes the cache. The last batch is padded to full
size and its padding rows are dropped, so the function compiles once, and the jitted function
is kept per model (`_cached_apply`), so further splits and prompt sets do not recompile. Host
work (decode, and on CPU backends the resize, see `host_resize`) runs in the input pipeline's
worker threads while the device computes the previous batch.

Results go to a `ShardStore` (see cache.py) keyed by `feature_key` (model weights and config,
platform and device count, data, split, preprocessing, batch size, dtype, version): re-running
with the same reads the cache; an interrupted run resumes from completed shards; two concurrent
runs of the same entry encode it once (a file lock per entry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxclip import atomic
from jaxclip.features.cache import ShardStore, default_root
from jaxclip.progress import bar as progress_bar
from jaxclip.version import __version__

PREPROCESS_MODES = ("device", "host")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass
class ImageFeatures:
    """Raw image embeddings of one dataset split, with everything needed to analyse them.

    Attributes:
      embeds: (N, D) float32 raw (unnormalised) image embeddings, in dataset order.
      labels: (N,) int class labels (-1 where the dataset has none).
      indices: (N,) int position of each row in the dataset source.
      attributes: extra integer labels per row (e.g. shapes' colour, size), name -> (N,).
      captions: per row, its captions (captioned datasets only), else None.
      classnames: prompt-ready class names, index = label.
      meta: what produced these features (model, fingerprint, preprocessing, dataset, cache).
      labels_multi: (N, C) bool, the classes present per row (multi-label datasets), else None.
    """

    embeds: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    attributes: dict[str, np.ndarray]
    captions: list[list[str]] | None
    classnames: tuple[str, ...]
    meta: dict[str, Any]
    labels_multi: np.ndarray | None = None

    def caption_arrays(self) -> tuple[list[str], np.ndarray]:
        """All captions flattened, and for each the row of its image (for retrieval)."""
        if self.captions is None:
            raise ValueError(f"dataset {self.meta.get('dataset')!r} has no captions")
        texts = [c for caps in self.captions for c in caps]
        rows = np.repeat(np.arange(len(self.captions)), [len(c) for c in self.captions])
        return texts, rows


def _mesh(devices: Sequence[jax.Device] | None) -> Mesh:
    """A one-axis ("data") mesh whose devices are grouped by process, in process order.

    So process p's devices hold rows [p * B / P, (p + 1) * B / P) of a global batch: the slice
    the input pipeline gives it, and the order in which `_gather_rows` stacks the per-process
    metadata (jax.devices() need not be ordered by process on every platform).
    """
    devs = list(devices) if devices is not None else jax.devices()
    devs = sorted(devs, key=lambda d: (d.process_index, d.id))
    return Mesh(np.asarray(devs), ("data",))


class ShardedApply:
    """`fn(params, batch)` jitted data-parallel over a mesh; gathers results to every host.

    The batch's leading dimension is split over the mesh's devices (it must be a multiple of
    their number); `params` are replicated once at construction.
    """

    def __init__(self, fn: Callable, params: Any, devices: Sequence[jax.Device] | None = None):
        mesh = _mesh(devices)
        self.num_devices = mesh.size
        self.data = NamedSharding(mesh, PartitionSpec("data"))
        replicated = NamedSharding(mesh, PartitionSpec())
        self.params = jax.device_put(params, replicated)
        self._fn = jax.jit(fn, in_shardings=(replicated, self.data), out_shardings=self.data)

    def dispatch(self, local_batch: np.ndarray) -> jax.Array:
        """Starts the computation on this process's slice of a global batch (asynchronous)."""
        if jax.process_count() == 1:
            x = jax.device_put(local_batch, self.data)
        else:
            x = jax.make_array_from_process_local_data(self.data, local_batch)
        return self._fn(self.params, x)

    @staticmethod
    def fetch(out: jax.Array) -> np.ndarray:
        """The whole global result as numpy, on every process."""
        if jax.process_count() == 1:
            return np.asarray(out)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(out, tiled=True))


# model -> {(what, options..., devices): (params, module, preprocess, ShardedApply)}. Each
# extraction call would otherwise build a new jitted function and recompile it (seconds to a
# minute for a ViT-B on a CPU) and copy the parameters to the devices again: once per split,
# per prompt set, per study.
_APPLY_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple, tuple]] = weakref.WeakKeyDictionary()


def _cached_apply(
    model: Any, what: tuple, make_fn: Callable[[], Callable], devices: Sequence[jax.Device]
) -> ShardedApply:
    """The ShardedApply of `make_fn()` over `devices` for `model`, built once per model.

    Rebuilt if the model's params, module or preprocessing objects were replaced since.
    """
    parts = (model.params, model.module, getattr(model, "preprocess", None))
    key = (*what, tuple((d.process_index, d.id) for d in devices))
    try:
        per_model = _APPLY_CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable or not hashable: no caching
        return ShardedApply(make_fn(), model.params, devices=devices)
    hit = per_model.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[:3], parts)):
        hit = (*parts, ShardedApply(make_fn(), model.params, devices=devices))
        per_model[key] = hit
    return hit[3]


def model_key(model: Any) -> dict[str, Any]:
    """The model's part of every feature key: name, parameter hash and architecture config.

    The config (activation, heads, LayerNorm eps, ...) changes the numbers without changing
    the weights, e.g. `jaxclip.load(file, hidden_act="gelu")`, so the weights alone do not
    identify the features.
    """
    config = model.config
    config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    return {
        "model": model.name,
        "params_sha256": model.fingerprint,
        "model_config": json.loads(json.dumps(config, sort_keys=True, default=str)),
    }


def feature_key(model: Any, devices: Sequence[jax.Device], **fields: Any) -> dict[str, Any]:
    """The fields a feature-cache entry is keyed by (`ShardStore` hashes them; meta.json lists
    them): the model (`model_key`), where it ran (platform and global device count: results
    differ in the last bits across device counts; not the process count, so N processes and one
    process over the same N devices write the same entries), the kind-specific `fields` (data,
    batch size, dtype, preprocessing, ...) and the jaxclip version.

    The one place every feature key is built: a new ingredient of every key goes here.
    """
    devices = list(devices)
    return {
        **model_key(model),
        "platform": devices[0].platform,
        "device_count": len(devices),
        **fields,
        "jaxclip": __version__,
    }


# Beside the entries of a cache root: one lock file per entry (never deleted: a lock file
# removed while another process waits on it would let a third one take a second lock).
LOCK_DIR = ".locks"


def _entry_lock(store: ShardStore) -> contextlib.AbstractContextManager:
    """An exclusive lock on one cache entry (a file beside its folder), so that concurrent
    extractions of the same entry encode it once: the second waits, then reads the shards.

    Multi-process runs coordinate through their collectives instead (no lock)."""
    if jax.process_count() > 1:
        return contextlib.nullcontext()
    return atomic.file_lock(store.path.parent / LOCK_DIR / f"{store.path.name}.lock")


def round_batch_size(batch_size: int, num_devices: int) -> int:
    """The smallest multiple of `num_devices` that is >= batch_size (so shards are equal)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return -(-batch_size // num_devices) * num_devices


def image_encode_fn(model: Any, preprocess: str, dtype: str | None = None) -> Callable:
    """The pure function (params, uint8 NHWC) -> float32 (N, D) raw embeddings."""
    from jaxclip.data.preprocess import normalize, preprocess_device

    if preprocess not in PREPROCESS_MODES:
        raise ValueError(
            f"preprocess={preprocess!r} is not valid; choose one of {PREPROCESS_MODES}"
        )
    module = model.module if dtype is None else model.module.clone(dtype=DTYPES[dtype])
    cfg = model.preprocess

    def fn(params, images):
        if preprocess == "device":
            pixels = preprocess_device(images, cfg)
        else:  # the host already resized and cropped with PIL: only normalise here
            pixels = normalize(images, cfg)
        emb, _ = module.apply({"params": params}, pixels, method=module.encode_image)
        return emb.astype(jnp.float32)

    return fn


def _pipelined(apply: ShardedApply, batches: Iterator[dict]) -> Iterator[tuple[dict, np.ndarray]]:
    """Yields (batch, embeddings), dispatching batch k+1 before fetching batch k's result."""
    pending: tuple[dict, jax.Array] | None = None
    for batch in batches:
        out = apply.dispatch(batch["image"])
        if pending is not None:
            yield pending[0], apply.fetch(pending[1])
        pending = (batch, out)
    if pending is not None:
        yield pending[0], apply.fetch(pending[1])


def _gather_rows(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-row arrays of every process, concatenated in process order; exact, dtypes kept.

    `process_allgather` goes through JAX, which (without x64) would turn int64 into int32 and
    float64 into float32; here every array is viewed as raw bytes, all of them are packed into
    one uint8 (rows, bytes) block (one collective per batch) and unpacked after the gather, so
    what every process gets is bit for bit what the processes had. No-op on one process.
    """
    if jax.process_count() == 1:
        return arrays
    from jax.experimental import multihost_utils

    names = sorted(arrays)
    rows = {len(arrays[k]) for k in names}
    if len(rows) != 1:
        shapes = {k: arrays[k].shape for k in names}
        raise ValueError(f"per-row arrays must share their first dimension; got {shapes}")
    (local,) = rows
    parts, layout = [], []
    for k in names:
        a = np.ascontiguousarray(arrays[k])
        raw = a.reshape(local, -1).view(np.uint8)
        parts.append(raw)
        layout.append((k, a.dtype, a.shape[1:], raw.shape[1]))
    block = np.concatenate(parts, axis=1)
    gathered = np.asarray(multihost_utils.process_allgather(block, tiled=True))
    out, col = {}, 0
    for k, dtype, tail, width in layout:
        raw = np.ascontiguousarray(gathered[:, col : col + width])
        out[k] = raw.view(dtype).reshape(len(gathered), *tail)
        col += width
    return out


def _gather_batch(batch: dict, has_captions: bool) -> tuple[dict[str, np.ndarray], list | None]:
    """A batch's per-row metadata (all but the images) and captions, from every process.

    Labels, indices, attributes and `valid` are gathered exactly (`_gather_rows`). Captions are
    strings, which no collective carries: each process encodes its rows' captions as UTF-8 JSON,
    the per-row byte counts travel with the metadata, and the byte strings are gathered padded
    to the longest process's (a second collective, captioned datasets only).
    """
    keys = [k for k, v in batch.items() if k not in ("image", "captions") and hasattr(v, "shape")]
    arrays = {k: np.asarray(batch[k]) for k in keys}
    if jax.process_count() == 1:
        return arrays, (list(batch["captions"]) if has_captions else None)
    from jax.experimental import multihost_utils

    blobs: list[bytes] = []
    if has_captions:
        blobs = [json.dumps(list(c), ensure_ascii=False).encode() for c in batch["captions"]]
        arrays["_caption_bytes"] = np.asarray([len(b) for b in blobs], np.int64)
    meta = _gather_rows(arrays)
    if not has_captions:
        return meta, None
    lengths = meta.pop("_caption_bytes").reshape(jax.process_count(), -1)
    width = max(1, int(lengths.sum(1).max()))
    own = np.zeros(width, np.uint8)
    joined = b"".join(blobs)
    own[: len(joined)] = np.frombuffer(joined, np.uint8)
    everyone = np.asarray(multihost_utils.process_allgather(own))  # (processes, width)
    captions: list[list[str]] = []
    for p, row_lengths in enumerate(lengths):
        data = everyone[p].tobytes()
        bounds = np.concatenate([[0], np.cumsum(row_lengths)])
        captions.extend(json.loads(data[a:b]) for a, b in itertools.pairwise(bounds))
    return meta, captions


def _flatten_captions(captions: list[list[str]]) -> dict[str, np.ndarray]:
    flat = [c for caps in captions for c in caps]
    return {
        "caption_text": np.asarray(flat, dtype=np.str_),
        "caption_count": np.asarray([len(c) for c in captions], np.int32),
    }


def extract_images(
    model: Any,
    source: Any,
    *,
    batch_size: int = 256,
    preprocess: str = "device",
    dtype: str | None = None,
    cache_root: str | Path | None = None,
    shard_batches: int = 8,
    num_workers: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
    stop_after_shards: int | None = None,
    host_resize: bool | None = None,
) -> ImageFeatures:
    """Raw image embeddings of every example of `source`, cached and resumable.

    Args:
      model: a `jaxclip.load(...)` result (module, params, preprocess config, fingerprint).
      source: a `jaxclip.data` dataset source (len, getitem, info).
      batch_size: global batch size, rounded up to a multiple of the device count.
      preprocess: "device" (resize + crop + normalise on the accelerator, fast; images of mixed
        sizes are first brought to the model's resolution on the host) or "host" (PIL bicubic
        resize + centre crop on the host, exactly CLIP's transform; normalise on the device).
      dtype: compute dtype override ("float32" or "bfloat16"); None keeps the model's.
      cache_root: cache folder (default `$JAXCLIP_CACHE` or ~/.cache/jaxclip/features).
      shard_batches: batches per cache shard (the unit of resumption).
      num_workers: host decode threads for the input pipeline.
      devices: devices to run on (default: all).
      progress: show a progress bar with images/s.
      stop_after_shards: stop (raising KeyboardInterrupt) after writing this many new shards;
        only for testing resumption.
      host_resize: preprocess="device" only: where images that are not already S x S get
        their resize + centre crop. None (default) picks the host (PIL, in the decode
        threads) when the devices are CPUs, where the "device" is the host's own cores and
        PIL's banded filter costs a fraction of the dense resampling matmuls of the
        accelerator path (about 1.5 GFLOP per 500x375 image, a sixth of ViT-B/32 itself), or
        when the images differ in size; the accelerator otherwise. Both give the same pixels
        (bit-identical by construction, see jaxclip.data.preprocess), so the choice is not
        part of the cache key. True / False force it (benchmarks).

    Returns:
      ImageFeatures in dataset order (`meta` also says where images were resized,
      "resized_on", how many rows this call encoded, "encoded", and in how many seconds).
    """
    from jaxclip.data.pipeline import batches as make_batches

    if shard_batches < 1:
        raise ValueError(f"shard_batches={shard_batches} must be >= 1")
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not valid; choose one of {list(DTYPES)}")
    info = source.info
    n = len(source)
    if n == 0:
        raise ValueError(f"dataset {info.name!r} split {info.split!r} has no examples")
    mesh_devices = list(devices) if devices is not None else jax.devices()
    batch_size = round_batch_size(batch_size, len(mesh_devices))
    size = model.preprocess.image_size
    host_size = size if (preprocess == "host" or info.image_shape is None) else None
    if host_resize is None:
        host_resize = host_size is not None or mesh_devices[0].platform == "cpu"
    elif not host_resize and host_size is not None:
        raise ValueError(
            f"host_resize=False is not possible: preprocess={preprocess!r} and image shape "
            f"{info.image_shape} (None: mixed sizes) need the host to resize"
        )
    resized_on = None if info.image_shape == (size, size) else ("host" if host_resize else "device")
    compute_dtype = dtype or _dtype_name(model)
    fields = feature_key(
        model,
        mesh_devices,
        preprocess=preprocess,
        # `crop` joins the key only when it is not CLIP's default, so CLIP caches keep theirs;
        # `rule` ("hf" / "torchvision": crop offsets, RGB order) is always part of it.
        preprocess_config={
            k: v for k, v in dataclasses.asdict(model.preprocess).items() if k != "crop" or not v
        },
        host_resize=host_size,
        dataset=info.name,
        split=info.split,
        dataset_version=str(info.version),
        dataset_fingerprint=info.fingerprint,
        num_examples=n,
        batch_size=batch_size,
        # The shard layout is part of the key: a run with another shard size would otherwise
        # find every shard "stale" and overwrite a complete entry.
        rows_per_shard=batch_size * shard_batches,
        dtype=compute_dtype,
    )
    store = ShardStore(cache_root or default_root(), "images", fields)
    rows_per_shard = batch_size * shard_batches
    num_shards = -(-n // rows_per_shard)
    ranges = [(s * rows_per_shard, min(n, (s + 1) * rows_per_shard)) for s in range(num_shards)]

    shards: dict[int, dict[str, np.ndarray]] = {}
    encoded, elapsed = 0, 0.0
    for s, (start, stop) in enumerate(ranges):
        arrays = store.read_shard(s, start, stop)
        if arrays is not None:
            shards[s] = arrays
    missing = _agree_on_missing([s for s in range(num_shards) if s not in shards], num_shards)
    with contextlib.ExitStack() as stack:
        if missing and jax.process_count() == 1:
            stack.enter_context(_entry_lock(store))
            # A concurrent extraction of this entry may have written them while we waited.
            for s in missing:
                arrays = store.read_shard(s, *ranges[s])
                if arrays is not None:
                    shards[s] = arrays
            missing = [s for s in missing if s not in shards]
        if missing:
            logging.info("extracting %d/%d shards into %s", len(missing), num_shards, store.path)
            if jax.process_index() == 0:
                store.write_meta()
            apply = _cached_apply(
                model,
                ("image", preprocess, dtype),
                lambda: image_encode_fn(model, preprocess, dtype),
                mesh_devices,
            )
            written = 0
            bar = progress_bar(
                total=sum(ranges[s][1] - ranges[s][0] for s in missing),
                unit="img",
                desc=f"encode {info.name}/{info.split}",
                disable=not progress or jax.process_index() != 0,
            )
            t0 = time.perf_counter()
            for run in _contiguous_runs(missing):
                it = make_batches(
                    source,
                    batch_size,
                    image_size=size if host_resize else None,
                    crop=model.preprocess.crop,
                    rule=model.preprocess.rule,
                    shard_index=jax.process_index(),
                    shard_count=jax.process_count(),
                    num_workers=num_workers,
                    start_batch=run[0] * shard_batches,
                )
                results = _pipelined(apply, it)
                try:
                    for s in run:
                        start, stop = ranges[s]
                        parts: list[dict[str, np.ndarray]] = []
                        caps: list[list[str]] = []
                        while sum(len(p["embeds"]) for p in parts) < stop - start:
                            batch, emb = next(results)
                            meta, batch_caps = _gather_batch(batch, info.has_captions)
                            valid = meta.pop("valid").astype(bool)
                            parts.append(
                                {"embeds": emb[valid], **{k: v[valid] for k, v in meta.items()}}
                            )
                            if batch_caps is not None:
                                caps.extend(c for c, ok in zip(batch_caps, valid) if ok)
                            bar.update(int(valid.sum()))
                        arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                        if info.has_captions:
                            arrays.update(_flatten_captions(caps))
                        if jax.process_index() == 0:
                            store.write_shard(s, start, stop, arrays, ragged=("caption_text",))
                        shards[s] = arrays
                        written += 1
                        if stop_after_shards is not None and written >= stop_after_shards:
                            raise KeyboardInterrupt(f"stopped after {written} shards (test hook)")
                finally:
                    results.close()
            bar.close()
            elapsed = time.perf_counter() - t0
            encoded = sum(ranges[s][1] - ranges[s][0] for s in missing)
            logging.info(
                "encoded %d images in %.1fs (%.1f img/s)", encoded, elapsed, encoded / elapsed
            )
        if jax.process_index() == 0 and not store.is_complete():
            store.mark_complete(num_shards, n)
    # `encoded` rows were computed by this call in `encode_seconds` (0: all read from the cache).
    run_meta = {
        "cache": str(store.path),
        "resized_on": resized_on,
        "encoded": encoded,
        "encode_seconds": elapsed,
    }
    return _assemble(shards, num_shards, info, {**fields, **run_meta})


def _dtype_name(model: Any) -> str:
    return "bfloat16" if jnp.dtype(model.module.dtype) == jnp.bfloat16 else "float32"


def _agree_on_missing(missing: list[int], num_shards: int) -> list[int]:
    """The shards missing on ANY process (all recompute them together; no shared disk needed)."""
    if jax.process_count() == 1:
        return missing
    from jax.experimental import multihost_utils

    mask = np.zeros(num_shards, bool)
    mask[missing] = True
    union = np.asarray(multihost_utils.process_allgather(mask)).reshape(-1, num_shards).any(0)
    return [int(i) for i in np.flatnonzero(union)]


def _contiguous_runs(ids: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in ids:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _assemble(
    shards: dict[int, dict[str, np.ndarray]], num_shards: int, info: Any, meta: dict
) -> ImageFeatures:
    parts = [shards[s] for s in range(num_shards)]
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    captions = None
    if "caption_text" in cat:
        bounds = np.concatenate([[0], np.cumsum(cat.pop("caption_count"))])
        text = cat.pop("caption_text").tolist()
        captions = [text[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
    embeds = cat.pop("embeds").astype(np.float32)
    labels = cat.pop("label") if "label" in cat else np.full(len(embeds), -1)
    indices = cat.pop("index")
    labels_multi = cat.pop("labels_multi").astype(bool) if "labels_multi" in cat else None
    # The dataset's attribute order, whether the shards came from this run or from the cache.
    order = [k for k in info.attributes if k in cat] + sorted(
        k for k in cat if k not in info.attributes
    )
    return ImageFeatures(
        embeds=embeds,
        labels=np.asarray(labels, np.int64),
        indices=np.asarray(indices, np.int64),
        attributes={k: cat[k] for k in order},
        captions=captions,
        classnames=tuple(info.classnames),
        meta=meta,
        labels_multi=labels_multi,
    )


def text_encode_fn(model: Any, dtype: str | None = None) -> Callable:
    """The pure function (params, int32 token ids) -> float32 (N, D) raw text embeddings."""
    module = model.module if dtype is None else model.module.clone(dtype=DTYPES[dtype])

    def fn(params, ids):
        emb, _ = module.apply({"params": params}, ids, method=module.encode_text)
        return emb.astype(jnp.float32)

    return fn


def _process_slice(global_batch: np.ndarray) -> np.ndarray:
    """This process's contiguous slice of a global batch (the whole batch on one process)."""
    count, index = jax.process_count(), jax.process_index()
    local = len(global_batch) // count
    return global_batch[index * local : (index + 1) * local]


def text_store(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    dtype: str | None = None,
    cache_root: str | Path | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> ShardStore:
    """The cache entry `extract_texts` uses for these arguments (its `.path` is the folder).

    The effective batch size (`.fields["batch_size"]`) is min(batch_size, len(texts)) rounded up
    to a multiple of the device count and of the process count.
    """
    texts = list(texts)
    mesh_devices = list(devices) if devices is not None else jax.devices()
    batch_size = round_batch_size(min(batch_size, max(1, len(texts))), len(mesh_devices))
    batch_size = round_batch_size(batch_size, jax.process_count())
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    fields = feature_key(
        model,
        mesh_devices,
        texts_sha256=digest,
        num_texts=len(texts),
        batch_size=batch_size,
        dtype=dtype or _dtype_name(model),
    )
    return ShardStore(cache_root or default_root(), "texts", fields)


def extract_texts(
    model: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    dtype: str | None = None,
    cache_root: str | Path | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Raw text embeddings (len(texts), D) float32, batched data-parallel and cached.

    The cache key (`feature_key`) covers the model (fingerprint and config), the platform and
    device count, the exact texts (in order), the batch size and the dtype; a repeated call
    with the same prompts is a file read, and concurrent calls encode once (`_entry_lock`).
    """
    texts = list(texts)
    if not texts:
        raise ValueError("extract_texts needs at least one text")
    mesh_devices = list(devices) if devices is not None else jax.devices()
    store = text_store(
        model, texts, batch_size=batch_size, dtype=dtype, cache_root=cache_root, devices=devices
    )
    batch_size = store.fields["batch_size"]
    cached = store.read_shard(0, 0, len(texts))
    # Every process must take the same branch (encoding is collective): encode unless every
    # process found the cache (a process without it, e.g. on another disk, needs the result).
    if not _agree_on_missing([] if cached is not None else [0], 1):
        return cached["embeds"]
    with _entry_lock(store):
        if jax.process_count() == 1:  # a concurrent call may have written it meanwhile
            cached = store.read_shard(0, 0, len(texts))
            if cached is not None:
                return cached["embeds"]
        return _encode_texts(model, texts, store, batch_size, dtype, mesh_devices, progress)


def _encode_texts(
    model: Any,
    texts: list[str],
    store: ShardStore,
    batch_size: int,
    dtype: str | None,
    mesh_devices: list[jax.Device],
    progress: bool,
) -> np.ndarray:
    """Encodes `texts` data-parallel and writes them to `store` (process 0)."""
    ids = model.token_ids(texts)  # cut after the last EOS where that is exact (see LoadedCLIP)
    apply = _cached_apply(
        model, ("text", dtype), lambda: text_encode_fn(model, dtype), mesh_devices
    )
    out = np.empty((len(texts), model.config.projection_dim), np.float32)
    bar = progress_bar(
        total=len(texts),
        unit="txt",
        desc="encode texts",
        disable=not progress or jax.process_index() != 0,
    )
    starts = range(0, len(texts), batch_size)
    pending = None
    for start in [*starts, None]:
        result = None
        if start is not None:
            chunk = ids[start : start + batch_size]
            pad = batch_size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            result = (start, batch_size - pad, apply.dispatch(_process_slice(chunk)))
        if pending is not None:
            s, m, arr = pending
            out[s : s + m] = apply.fetch(arr)[:m]
            bar.update(m)
        pending = result
    bar.close()
    if jax.process_index() == 0:
        store.write_meta()
        store.write_shard(0, 0, len(texts), {"embeds": out})
    return out
