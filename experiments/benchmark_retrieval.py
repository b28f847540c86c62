"""Benchmark: blockwise JAX Recall@K (`jaxclip.analysis.retrieval`) vs a numpy reference.

The reference is what notebooks and CLIP_benchmark-style scripts do: build the full (Nt, Ni)
cosine matrix on the host, argsort every row (text -> image) and every column (image -> text),
and read off the position of the target. jaxclip computes exact ranks blockwise on the device
(two matmuls, integer counts per block) and never holds the matrix.

Each side runs in its own fresh subprocess on the same deterministic data, so time and peak
memory are clean:
  time        wall clock of one call, including JAX tracing + compilation (the "cold" number,
              what a user pays once); the warm time of a second call is printed beside it;
  peak extra  resident memory above the level just before the call, sampled every 2 ms by a
              psutil thread (a lower bound) and from the process high-water mark
              (getrusage ru_maxrss - RSS before; an upper bound).
The parent checks that both sides give the same ranks and recalls and prints the ratios.

Data: Ni images as random unit vectors in d dimensions, captions_per_image captions per image
made as normalise(image + noise * N(0, I)), so that recall is neither 0 nor 1.

Usage:
  python -m experiments.benchmark_retrieval            # 5k images x 25k captions, d = 512
  python -m experiments.benchmark_retrieval --small    # 500 x 2.5k, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

KS = (1, 5, 10)
TARGET_SPEEDUP = 5.0
TARGET_PEAK_BYTES = 1 << 30


def make_data(
    num_images: int, captions_per_image: int, dim: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic float32 images (Ni, d), captions (Ni * cpi, d) and caption -> image index."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((num_images, dim), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    t2i = np.repeat(np.arange(num_images, dtype=np.int64), captions_per_image)
    texts = images[t2i]
    texts += np.float32(noise) * rng.standard_normal(texts.shape, dtype=np.float32)
    return images, texts, t2i


def numpy_reference_ranks(
    images: np.ndarray, texts: np.ndarray, t2i: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Full similarity matrix + argsort (host, float32): t2i ranks (Nt,) and i2t ranks (Ni,)."""
    img = images / np.linalg.norm(images, axis=1, keepdims=True)
    txt = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    sim = txt @ img.T  # (Nt, Ni)
    order = np.argsort(-sim, axis=1)  # images, best first, per caption
    t2i_rank = np.argmax(order == t2i[:, None], axis=1)
    del order
    order = np.argsort(-sim.T, axis=1)  # texts, best first, per image
    i2t_rank = np.argmax(t2i[order] == np.arange(img.shape[0])[:, None], axis=1)
    return t2i_rank, i2t_rank


def jax_ranks(
    images: np.ndarray, texts: np.ndarray, t2i: np.ndarray, block_size: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """`jaxclip.analysis.retrieval.ranks`: t2i ranks (Nt,) and i2t ranks (Ni,)."""
    from jaxclip.analysis import retrieval

    r = retrieval.ranks(images, texts, t2i, block_size=block_size)
    jax_ranks.refined = (r.refined_text_queries, r.refined_image_queries)
    return r.text_to_image, r.image_to_text


class PeakRSS:
    """Samples this process's RSS in a thread; `peak` is the largest sample (bytes)."""

    def __init__(self, interval: float = 0.002):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def run_side(args: argparse.Namespace) -> dict[str, Any]:
    """Runs one side in this process; returns timings, memory and the ranks file path."""
    import psutil

    images, texts, t2i = make_data(
        args.images, args.captions_per_image, args.dim, args.noise, args.seed
    )
    if args.side == "jax":
        import jax

        jax.devices()  # backend start-up is not part of the measured call
        fn = lambda: jax_ranks(images, texts, t2i, args.block_size)
    else:
        fn = lambda: numpy_reference_ranks(images, texts, t2i)

    proc = psutil.Process()
    rss_before = proc.memory_info().rss
    with PeakRSS() as mon:
        t0 = time.perf_counter()
        t2i_rank, i2t_rank = fn()
        seconds = time.perf_counter() - t0
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    out: dict[str, Any] = {
        "side": args.side,
        "seconds": seconds,
        "peak_extra_bytes_sampled": max(0, mon.peak - rss_before),
        "peak_extra_bytes_upper": max(0, ru_peak - rss_before),
    }
    if args.side == "jax":  # warm call: compiled functions are cached
        t0 = time.perf_counter()
        fn()
        out["seconds_warm"] = time.perf_counter() - t0
        out["refined_queries"] = list(jax_ranks.refined)
    np.savez(args.ranks_out, t2i=t2i_rank, i2t=i2t_rank)
    return out


def _recalls(rank: np.ndarray) -> dict[str, float]:
    return {f"R@{k}": float(np.mean(rank < k)) for k in KS}


def _spawn(side: str, args: argparse.Namespace, ranks_out: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "experiments.benchmark_retrieval",
        f"--side={side}",
        f"--ranks-out={ranks_out}",
        f"--images={args.images}",
        f"--captions-per-image={args.captions_per_image}",
        f"--dim={args.dim}",
        f"--noise={args.noise}",
        f"--seed={args.seed}",
    ]
    if args.block_size is not None:
        cmd.append(f"--block-size={args.block_size}")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} side failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--small", action="store_true", help="500 images x 2.5k captions (quick)")
    p.add_argument("--images", type=int, default=5000, help="number of images Ni")
    p.add_argument("--captions-per-image", type=int, default=5, help="captions per image")
    p.add_argument("--dim", type=int, default=512, help="embedding width d")
    p.add_argument("--noise", type=float, default=0.3, help="caption noise per dimension")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    p.add_argument("--block-size", type=int, default=None, help="query rows per block (auto)")
    p.add_argument("--json", type=str, default=None, help="also write the summary here")
    p.add_argument("--side", choices=("numpy", "jax"), help=argparse.SUPPRESS)
    p.add_argument("--ranks-out", type=str, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.small:
        args.images = 500

    if args.side:  # child process
        print(json.dumps(run_side(args)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        ranks = {}
        for side in ("numpy", "jax"):
            path = os.path.join(tmp, f"{side}.npz")
            results[side] = _spawn(side, args, path)
            with np.load(path) as z:
                ranks[side] = (z["t2i"], z["i2t"])

    recalls = {
        side: {"text_to_image": _recalls(r[0]), "image_to_text": _recalls(r[1])}
        for side, r in ranks.items()
    }
    mismatch_t2i = int(np.sum(ranks["numpy"][0] != ranks["jax"][0]))
    mismatch_i2t = int(np.sum(ranks["numpy"][1] != ranks["jax"][1]))
    same_recalls = recalls["numpy"] == recalls["jax"]
    npy, jx = results["numpy"], results["jax"]
    speedup = npy["seconds"] / jx["seconds"]
    mem_ratio = npy["peak_extra_bytes_sampled"] / max(jx["peak_extra_bytes_sampled"], 1)
    nt = args.images * args.captions_per_image
    summary = {
        "problem": {"images": args.images, "captions": nt, "dim": args.dim, "noise": args.noise},
        "numpy": npy,
        "jax": jx,
        "recalls": recalls["jax"],
        "identical_recalls": same_recalls,
        "rank_mismatches": {"text_to_image": mismatch_t2i, "image_to_text": mismatch_i2t},
        "speedup_cold": speedup,
        "speedup_warm": npy["seconds"] / jx["seconds_warm"],
        "memory_ratio": mem_ratio,
    }

    mib = 1 << 20
    print(f"Recall@K, {args.images} images x {nt} captions, d = {args.dim} (cosine, exact ranks)")
    for side in ("numpy", "jax"):
        r = results[side]
        warm = f"  (warm {r['seconds_warm']:.2f} s)" if "seconds_warm" in r else " " * 15
        print(
            f"  {side:5s}: {r['seconds']:6.2f} s{warm}   peak extra RSS "
            f"{r['peak_extra_bytes_sampled'] / mib:7.1f} MiB sampled, "
            f"<= {r['peak_extra_bytes_upper'] / mib:7.1f} MiB (ru_maxrss)"
        )
    for d in ("text_to_image", "image_to_text"):
        vals = ", ".join(f"{k} {v * 100:.2f}" for k, v in recalls["jax"][d].items())
        print(f"  {d}: {vals} %")
    print(
        f"  identical recalls: {same_recalls}; rank mismatches t2i {mismatch_t2i}, "
        f"i2t {mismatch_i2t}; queries settled in float64 by jaxclip: "
        f"{jx['refined_queries'][0]} captions, {jx['refined_queries'][1]} images"
    )
    ok_speed = speedup >= TARGET_SPEEDUP
    ok_mem = jx["peak_extra_bytes_upper"] <= TARGET_PEAK_BYTES
    print(
        f"  speedup {speedup:.1f}x cold / {summary['speedup_warm']:.1f}x warm "
        f"(target >= {TARGET_SPEEDUP:.0f}x: {'PASS' if ok_speed else 'FAIL'}); "
        f"peak memory {mem_ratio:.1f}x smaller "
        f"(target <= 1 GiB: {'PASS' if ok_mem else 'FAIL'})"
    )
    if args.small:
        print("  (--small checks correctness only: the targets are for 5k x 25k)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if same_recalls else 1


if __name__ == "__main__":
    sys.exit(main())
