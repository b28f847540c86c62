"""Two processes under `jax.distributed` (CPU, loopback, one device each) extract a webdataset
together, each from its own copy of the tar shards (hosts without a shared disk) into its own
cache: each reads only its rows of every batch, and the features both return equal a
one-process extraction of the same shards exactly (embeddings bit for bit, labels, indices,
captions)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclip.data import datasets as ds
from jaxclip.data import webdataset as wds
from jaxclip.data.datasets import load_dataset
from jaxclip.data.shapes import SHAPES, render_example
from jaxclip.features.extract import extract_images

ROOT = Path(__file__).resolve().parents[1]
N, SIZE, BATCH = 37, 32, 16  # 3 batches, the last one padded
TIMEOUT_S = 300

_WORKER = r"""
import json, sys, time
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
import numpy as np

address, pid, shards, cache, out = sys.argv[1:6]
pid = int(pid)
jax.distributed.initialize(address, num_processes=2, process_id=pid)
assert jax.process_count() == 2 and len(jax.local_devices()) == 1

from jaxclip.data.datasets import load_dataset
from jaxclip.features.extract import extract_images
from jaxclip.models.catalog import open_model

source = load_dataset("webdataset", "test", path=shards)
read = []
getitem = type(source).__getitem__

class Recording(type(source)):
    def __getitem__(self, index):
        read.append(int(index))
        return getitem(self, index)

source.__class__ = Recording
feats = extract_images(open_model("tiny_random"), source, batch_size=BATCH, shard_batches=1,
                       cache_root=cache, progress=False)
np.savez(f"{out}/features{pid}.npz", embeds=feats.embeds, labels=feats.labels,
         indices=feats.indices)
with open(f"{out}/worker{pid}.json", "w") as f:
    json.dump({"read": read, "captions": feats.captions, "encoded": feats.meta["encoded"],
               "fingerprint": source.info.fingerprint}, f)
print("done", flush=True)
""".replace("BATCH", str(BATCH))


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _write_shards(folder: Path) -> None:
    """N shapes images with class and captions, 10 samples a shard (4 shards)."""
    folder.mkdir(parents=True)
    examples = [render_example(i, 1, SIZE) for i in range(N)]
    for s in range(0, N, 10):
        with tarfile.open(folder / f"{s // 10}.tar", "w") as tar:
            for i in range(s, min(s + 10, N)):
                e = examples[i]
                fields = {
                    "png": _png(e["image"]),
                    "cls": str(e["label"]).encode(),
                    "txt": "\n".join(e["captions"]).encode(),
                }
                for field, data in fields.items():
                    info = tarfile.TarInfo(f"img{i:03d}.{field}")
                    info.size, info.mtime = len(data), 0
                    tar.addfile(info, io.BytesIO(data))
    (folder.parent / "classnames.txt").write_text("\n".join(SHAPES) + "\n")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_pair(tmp_path: Path) -> None:
    """Both workers, each on its own copy of the shards; kills both on failure or timeout."""
    address = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "JAX_PLATFORMS": "cpu",
        "TQDM_DISABLE": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    procs, logs = [], []
    try:
        for pid in range(2):
            host = tmp_path / f"host{pid}"
            logs.append(open(tmp_path / f"worker{pid}.log", "w+"))
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _WORKER,
                        address,
                        str(pid),
                        str(host / "wds"),
                        str(host / "cache"),
                        str(tmp_path),
                    ],
                    env={**env, "JAXCLIP_DATA_DIR": str(host / "data_dir")},
                    cwd=ROOT,
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    codes = [p.returncode for p in procs]
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    if codes != [0, 0]:
        tails = "\n".join(f"--- worker {i}:\n{o[-3000:]}" for i, o in enumerate(outputs))
        pytest.fail(f"2-process webdataset extraction failed; exit codes {codes}:\n{tails}")


@pytest.mark.slow  # two fresh JAX processes
def test_two_processes_on_their_own_shard_copies_equal_one(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))
    ds._VERIFY_CACHE.clear()
    wds._INDEX_CACHE.clear()
    _write_shards(tmp_path / "host0" / "wds" / "test")
    shutil.copytree(tmp_path / "host0" / "wds", tmp_path / "host1" / "wds")
    _write_shards(tmp_path / "ref" / "wds" / "test")
    _run_pair(tmp_path)

    source = load_dataset("webdataset", "test", path=tmp_path / "ref" / "wds")
    ref = extract_images(
        tiny_model,
        source,
        batch_size=BATCH,
        shard_batches=1,
        cache_root=tmp_path / "ref_cache",
        progress=False,
    )
    items = [source[i] for i in range(N)]
    reads = []
    for pid in range(2):
        extra = json.loads((tmp_path / f"worker{pid}.json").read_text())
        assert extra["fingerprint"] == source.info.fingerprint  # the copies are the same data
        assert extra["encoded"] == N
        with np.load(tmp_path / f"features{pid}.npz") as z:
            np.testing.assert_array_equal(z["embeds"], ref.embeds)
            np.testing.assert_array_equal(z["labels"], ref.labels)
            np.testing.assert_array_equal(z["indices"], np.arange(N))
        assert extra["captions"] == ref.captions == [it["captions"] for it in items]
        reads.append(set(extra["read"]))
    # Each process read only its own rows; together, every row once.
    assert reads[0] and reads[1] and not reads[0] & reads[1]
    assert reads[0] | reads[1] == set(range(N))
    np.testing.assert_array_equal(ref.labels, [it["label"] for it in items])
    # Process 0 wrote the cache on its disk; process 1 wrote nothing on its own.
    assert any((tmp_path / "host0" / "cache").rglob("*.npz"))
    assert not any((tmp_path / "host1" / "cache").rglob("*.npz"))
