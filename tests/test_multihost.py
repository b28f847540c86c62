"""Extraction under `jax.distributed` with 2 CPU processes on loopback equals 1 process.

Two worker processes (one CPU device each) join a coordinator on 127.0.0.1 and run, together:

1. the extraction entry point (`experiments.extract.run` with `config.distributed=True`) on
   shapes/tiny with its captions and text sets, sharing one cache folder (process 0 writes it);
2. `extract_images` / `extract_texts` on 77 rows (3 shards, the last batch padded) into the
   shared cache, then again with process 0 on that complete cache and process 1 on an empty
   private one (hosts without a shared disk): they must agree to recompute together instead
   of one of them waiting forever in a collective.

The reference is the same work in this (single) process. Expected: the cache folders hold the
same files byte for byte (shards are written deterministically, see cache.npz_bytes; the per-
device program and batch slices are the same, so XLA computes the same bits), both processes
return the reference's embeddings, labels, indices, attributes and captions, only process 0
writes, and results.json matches once the run-specific fields (cache root, distributed settings)
are set aside. CPU collectives go through gloo (`jax_cpu_collectives_implementation`).
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxclip.data.datasets import load_dataset
from jaxclip.data.subset import maybe_subset
from jaxclip.features.extract import extract_images, extract_texts

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from configs.extract import get_config  # noqa: E402
from experiments import extract as entry  # noqa: E402

TIMEOUT_S = 300  # both workers, generous for a loaded 2-core machine (~20 s when idle)
STRAGGLER_S = 60  # once one worker has exited cleanly, the other must follow within this
TEXTS = [f"a photo of {i} red circles" for i in range(37)]
# Keys of results.json that differ between the runs by construction.
RUN_SPECIFIC = ("distributed", "coordinator_address", "num_processes", "process_id", "cache_dir")

_WORKER = r"""
import json, sys, time
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
import numpy as np

sys.path.insert(0, sys.argv[1])
address, pid, data_dir, shared, private, out = sys.argv[2:8]
pid = int(pid)
t0 = time.time()

from configs.extract import get_config
from experiments import extract as entry
from jaxclip.data.datasets import load_dataset
from jaxclip.data.subset import maybe_subset
from jaxclip.features.extract import extract_images, extract_texts
from jaxclip.models.catalog import open_model

config = get_config("smoke")
config.data_dir, config.cache_dir = data_dir, shared
config.distributed, config.coordinator_address = True, address
config.num_processes, config.process_id = 2, pid
results = entry.run(config, f"{out}/workdir{pid}")
assert jax.process_count() == 2 and jax.process_index() == pid, jax.process_count()
assert len(jax.local_devices()) == 1 and jax.device_count() == 2

model = open_model("tiny_random")
source = maybe_subset(load_dataset("shapes/tiny", "test", data_dir=data_dir), 77, seed=5)
texts = [f"a photo of {i} red circles" for i in range(37)]

def extract(cache):
    feats = extract_images(model, source, batch_size=32, shard_batches=1, cache_root=cache,
                           progress=False)
    return feats, extract_texts(model, texts, batch_size=16, cache_root=cache, progress=False)

# Phase 2: 77 rows (3 shards, the last one padded) into the shared cache, together; then
# phase 3: process 0 finds them cached, process 1 (its own disk) finds nothing.
extract(shared)
feats, temb = extract(shared if pid == 0 else private)
np.savez(f"{out}/features{pid}.npz", embeds=feats.embeds, labels=feats.labels,
         indices=feats.indices, texts=temb,
         **{f"attr_{k}": v for k, v in feats.attributes.items()})
with open(f"{out}/captions{pid}.json", "w") as f:
    json.dump({"captions": feats.captions, "encoded": feats.meta["encoded"],
               "results": results}, f)
print(f"worker {pid} done in {time.time() - t0:.1f}s", flush=True)
"""


def _free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn_pair(tmp_path: Path, data_dir: Path) -> list[str]:
    """Runs the two workers; returns their outputs. Kills both on any failure or timeout."""
    port = _free_port()
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "JAX_PLATFORMS": "cpu",
        "TQDM_DISABLE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    args = [
        str(ROOT),
        f"127.0.0.1:{port}",
        None,
        str(data_dir),
        str(tmp_path / "shared"),
        str(tmp_path / "private1"),
        str(tmp_path),
    ]
    logs = [open(tmp_path / f"worker{i}.log", "w+") for i in range(2)]
    procs: list[subprocess.Popen] = []
    codes: list[int | None] = [None, None]
    try:
        for i in range(2):
            argv = [a if a is not None else str(i) for a in args]
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _WORKER, *argv],
                    env=env,
                    stdout=logs[i],
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        # A worker is finished when it prints "done": its exit can then still wait in
        # jax.distributed's shutdown barrier for a peer that is stuck, so exit codes alone
        # would only tell after the barrier's own timeout (minutes).
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            texts = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
            done = [c == 0 or "done in" in t for c, t in zip(codes, texts)]
            failed = [c not in (None, 0) or "Traceback" in t for c, t in zip(codes, texts)]
            if any(failed) or all(done):
                break
            if any(done):  # the other one is at most a collective behind
                deadline = min(deadline, time.monotonic() + STRAGGLER_S)
            time.sleep(0.2)
        if all(done) and not any(failed):
            for p in procs:  # both finished their work: let them shut down cleanly
                try:
                    p.wait(timeout=STRAGGLER_S)
                except subprocess.TimeoutExpired:
                    pass
        codes = [p.poll() for p in procs]
    finally:
        for p in procs:  # each worker leads its own session: kill it and anything it started
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    if codes != [0, 0]:
        tails = "\n".join(
            f"--- worker {i} (exit {c}):\n{o[-3000:]}"
            for i, (c, o) in enumerate(zip(codes, outputs))
        )
        hung = None in codes and not any(
            c not in (None, 0) or "Traceback" in o for c, o in zip(codes, outputs)
        )
        state = "hung (killed)" if hung else "failed"
        pytest.fail(f"2-process extraction {state}; exit codes {codes}:\n{tails}")
    return outputs


def _strip(results: dict) -> dict:
    out = json.loads(json.dumps(results))
    for k in RUN_SPECIFIC:
        out["config"].pop(k)
    for section in ("splits", "texts"):
        for v in out[section].values():
            v["cache"] = Path(v["cache"]).name
    return out


def _files(root: Path) -> dict[str, Path]:
    # The cache's files, not its lock files (`.locks/`: single-process runs only).
    files = sorted(p for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)
    return {str(p.relative_to(root)): p for p in files}


@pytest.mark.slow  # two fresh JAX processes: ~20 s on an idle 2-core machine
def test_two_processes_equal_one(tiny_model, shapes_data_dir, tmp_path):
    outputs = _spawn_pair(tmp_path, shapes_data_dir)
    assert all("done in" in o for o in outputs)

    # The reference: the same work in this one process.
    ref_cache = tmp_path / "ref_cache"
    config = get_config("smoke")
    config.data_dir, config.cache_dir = str(shapes_data_dir), str(ref_cache)
    ref_results = entry.run(config, tmp_path / "ref_workdir")
    source = maybe_subset(load_dataset("shapes/tiny", "test", data_dir=shapes_data_dir), 77, 5)
    ref = extract_images(
        tiny_model, source, batch_size=32, shard_batches=1, cache_root=ref_cache, progress=False
    )
    ref_texts = extract_texts(
        tiny_model, TEXTS, batch_size=16, cache_root=ref_cache, progress=False
    )

    # Same cache: the same entries, file for file, byte for byte.
    shared, want = _files(tmp_path / "shared"), _files(ref_cache)
    assert set(shared) == set(want)
    differ = [name for name in want if not filecmp.cmp(want[name], shared[name], shallow=False)]
    assert not differ, f"cache files differ between 1 and 2 processes: {differ}"
    assert not (tmp_path / "private1").exists() or not _files(tmp_path / "private1")

    # Only process 0 wrote the workdir; its results match the single-process run's.
    assert not (tmp_path / "workdir1" / "results.json").exists()
    written = json.loads((tmp_path / "workdir0" / "results.json").read_text())
    assert _strip(written) == _strip(ref_results)

    # Both processes returned the reference's rows, whichever cache they started from.
    items = [source[i] for i in range(len(source))]
    for pid in range(2):
        with np.load(tmp_path / f"features{pid}.npz") as z:
            got = {k: z[k] for k in z.files}
        extra = json.loads((tmp_path / f"captions{pid}.json").read_text())
        assert extra["encoded"] == 77  # process 1's empty cache made both recompute
        np.testing.assert_allclose(got["embeds"], ref.embeds, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(got["labels"], ref.labels)
        np.testing.assert_array_equal(got["indices"], source.indices)
        assert got["indices"].dtype == ref.indices.dtype == np.int64
        for k, v in ref.attributes.items():
            np.testing.assert_array_equal(got[f"attr_{k}"], v)
            np.testing.assert_array_equal(v, [it[k] for it in items])
        assert extra["captions"] == [list(it["captions"]) for it in items] == ref.captions
        np.testing.assert_allclose(got["texts"], ref_texts, atol=1e-6, rtol=0)
        assert _strip(extra["results"]) == _strip(ref_results)
    # And the reference itself is the model's own encoder on those images.
    images = np.stack([it["image"] for it in items])
    np.testing.assert_allclose(ref.embeds, tiny_model.encode_image(images), atol=1e-5, rtol=0)
