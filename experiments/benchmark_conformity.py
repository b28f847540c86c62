"""Benchmark: exact conformity of N × D embeddings, closed form vs brute force (Levi & Gilboa Eq. 10).

    python -m experiments.benchmark_conformity            # N = 100k, D = 512; naive at 20k
    python -m experiments.benchmark_conformity --naive-40k
    python -m experiments.benchmark_conformity --small    # seconds, for CI

Methods (each in its own subprocess, so peak memory is its own):
  closed_jax    `conformity` on a JAX array (float32, jit): C_j = (x_j·S − 1)/(N − 1)
  closed_np64   `conformity` on a NumPy array (float64): the reference for max differences
  blockwise     `conformity_blockwise` (JAX, jit, upper-triangle blocks of the N×N cosines)
  naive         NumPy float32: the full N×N cosine matrix, diagonal removed, row means

Peak extra memory = VmHWM − VmRSS, with the high-water mark reset (/proc/self/clear_refs) after
the data is made and the function compiled, so it counts only the computation (memory the
allocator already holds and reuses is not counted; the whole process's peak RSS, data and
compilation included, is reported beside it). JAX times are of the AOT-compiled call; compile
time is reported separately. Timings on a shared machine move with its load: compare methods
within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {"closed_s": 0.5, "blockwise_s": 30.0, "blockwise_extra_gb": 1.0, "max_diff": 1e-6}


def make_embeddings(n: int, d: int, seed: int = 0) -> np.ndarray:
    """CLIP-like float32 embeddings: an offset ellipsoid shell (‖m‖/‖σ‖ ≈ 1) with correlations."""
    rng = np.random.default_rng(seed)
    scales = (0.2 + 1.5 * np.exp(-np.arange(d) / (d / 8))).astype(np.float32)
    mean = rng.normal(size=d).astype(np.float32)
    mean *= np.linalg.norm(scales) / np.linalg.norm(mean)
    w = (rng.normal(size=(16, d)) * 0.3).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 16384):
        e = min(n, s + 16384)
        z = rng.standard_normal((e - s, d), dtype=np.float32) * scales
        out[s:e] = mean + z + rng.standard_normal((e - s, 16), dtype=np.float32) @ w
    return out


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker(method: str, n: int, d: int, block_size: int, out: str) -> dict:
    """Runs one method in this process; saves its result to `out` (.npy) and returns stats."""
    x_np = make_embeddings(n, d)
    compile_s = 0.0
    if method == "naive":

        def run():
            xn = x_np / np.linalg.norm(x_np, axis=1, keepdims=True)
            s = xn @ xn.T
            np.fill_diagonal(s, 0.0)
            return s.sum(axis=1, dtype=np.float64) / (n - 1)

    elif method == "closed_np64":
        from jaxclip.analysis.conformity import conformity

        def run():
            return conformity(x_np)

    else:
        import jax

        from jaxclip.analysis.conformity import conformity, conformity_blockwise

        x = jax.device_put(x_np)
        if method == "closed_jax":
            fn = jax.jit(conformity)
        elif method == "blockwise":
            fn = jax.jit(lambda a: conformity_blockwise(a, block_size=block_size))
        else:
            raise ValueError(f"unknown method {method!r}")
        t0 = time.perf_counter()
        compiled = fn.lower(x).compile()
        compile_s = time.perf_counter() - t0
        del x_np

        def run():
            return np.asarray(compiled(x).block_until_ready())

    base_kb = _status_kb("VmRSS")
    setup_peak_kb = _status_kb("VmHWM")  # data creation and compilation
    exact_peak = _reset_peak()
    t0 = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t0
    peak_kb = _status_kb("VmHWM")
    np.save(out, np.asarray(result, np.float64))
    return {
        "method": method,
        "n": n,
        "d": d,
        "seconds": seconds,
        "compile_seconds": compile_s,
        "extra_gb": (peak_kb - base_kb) / 2**20,
        "process_peak_gb": max(setup_peak_kb, peak_kb) / 2**20,
        "data_gb": n * d * 4 / 2**30,
        "peak_reset": exact_peak,
    }


def run_method(method: str, n: int, d: int, block_size: int, tmp: Path) -> tuple[dict, np.ndarray]:
    out = tmp / f"{method}_{n}.npy"
    cmd = [sys.executable, "-m", "experiments.benchmark_conformity", "--worker", method,
           "--n", str(n), "--d", str(d), "--block-size", str(block_size), "--worker-out", str(out)]  # fmt: skip
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {method} (n={n}) failed:\n{proc.stderr[-4000:]}")
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    return stats, np.load(out)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--small", action="store_true", help="N=5000, D=64, naive at 2000 (seconds)")
    p.add_argument("--n", type=int, default=100_000, help="rows for closed form and blockwise")
    p.add_argument("--d", type=int, default=512, help="embedding width")
    p.add_argument("--naive-n", type=int, default=20_000, help="rows for the naive N×N version")
    p.add_argument("--naive-40k", action="store_true", help="also run naive at N = 40000")
    p.add_argument("--block-size", type=int, default=2048, help="blockwise rows per block")
    p.add_argument("--json", type=str, default=None, help="write the results to this file")
    p.add_argument("--worker", type=str, default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=str, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        stats = worker(a.worker, a.n, a.d, a.block_size, a.worker_out)
        print(json.dumps(stats))
        return stats
    if a.small:
        a.n, a.d, a.naive_n = 5000, 64, 2000
    for name in ("n", "d", "naive_n", "block_size"):
        if getattr(a, name) < 2:
            p.error(f"--{name.replace('_', '-')} must be >= 2, got {getattr(a, name)}")

    rows, diffs = [], {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        naive_ns = [a.naive_n] + ([40_000] if a.naive_40k and not a.small else [])
        for n in [a.n, *naive_ns]:
            ref_stats, ref = run_method("closed_np64", n, a.d, a.block_size, tmp)
            rows.append(ref_stats)
            methods = ["closed_jax", "blockwise"] + (["naive"] if n != a.n else [])
            for m in methods:
                stats, res = run_method(m, n, a.d, a.block_size, tmp)
                stats["max_abs_diff_vs_np64"] = float(np.max(np.abs(res - ref)))
                rows.append(stats)
                diffs[f"{m}@{n}"] = stats["max_abs_diff_vs_np64"]
                print(json.dumps(stats), flush=True)

    print("\n| method | N | D | time (s) | compile (s) | peak extra (GB) | process peak (GB) "
          "| max |Δ| vs float64 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        diff = r.get("max_abs_diff_vs_np64", 0.0)
        print(f"| {r['method']} | {r['n']} | {r['d']} | {r['seconds']:.3f} | "
              f"{r['compile_seconds']:.2f} | {r['extra_gb']:.3f} | {r['process_peak_gb']:.2f} | "
              f"{diff:.2e} |")  # fmt: skip

    big = {r["method"]: r for r in rows if r["n"] == a.n}
    checks = {
        f"closed form at N={a.n} <= {TARGETS['closed_s']} s": min(
            big["closed_jax"]["seconds"], big["closed_np64"]["seconds"]
        )
        <= TARGETS["closed_s"],
        f"blockwise at N={a.n} <= {TARGETS['blockwise_s']} s": big["blockwise"]["seconds"]
        <= TARGETS["blockwise_s"],
        f"blockwise extra memory <= {TARGETS['blockwise_extra_gb']} GB": big["blockwise"][
            "extra_gb"
        ]
        <= TARGETS["blockwise_extra_gb"],
        f"all methods agree within {TARGETS['max_diff']}": max(diffs.values())
        <= TARGETS["max_diff"],
    }
    print()
    for k, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {k}")
    result = {"rows": rows, "checks": checks, "targets": TARGETS}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
