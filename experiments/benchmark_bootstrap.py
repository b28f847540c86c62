"""Benchmark: the bootstrap of an accuracy (`jaxclip.analysis.bootstrap`) vs a numpy loop.

The reference is what a notebook does: one `values[idx].mean()` per resample in a Python loop,
over the index rows of `bootstrap.resample_indices` (drawing them is not counted against the
loop). Two jaxclip paths are timed against it:

- counts (what the studies use, `mean_samples`' default): the number of ones in a resample is
  drawn directly, Binomial(n, k / n), which is exact in distribution but not the same draws;
  the run checks that its resampled accuracies have the loop's law (two-sample KS test on the
  resampled counts) and prints both intervals. The headline ratio (target >= 20x) is this one.
- indices (`method="indices"`): the same index rows, drawn and summed in one jitted kernel per
  chunk; the run checks that it gives exactly the loop's resampled accuracies and interval.

Times are wall clock of one warm call; the cold call (tracing + compilation) is printed beside it.

Data: a seeded 0/1 correctness vector of `--examples` entries with rate 0.64.

Usage:
  python -m experiments.benchmark_bootstrap            # 10 000 examples x 10 000 resamples
  python -m experiments.benchmark_bootstrap --small    # 1 000 x 1 000, seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

TARGET_SPEEDUP = 20.0


def numpy_loop(values: np.ndarray, num_resamples: int, seed: int) -> tuple[np.ndarray, float]:
    """Resampled means by a Python loop; returns them and the seconds spent in the loop only."""
    from jaxclip.analysis import bootstrap

    out, seconds = [], 0.0
    for idx in bootstrap.resample_indices(values.size, num_resamples, seed):
        t0 = time.perf_counter()
        out.extend(values[row].mean(dtype=np.float64) for row in idx)
        seconds += time.perf_counter() - t0
    return np.array(out), seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--examples", type=int, default=10_000)
    p.add_argument("--resamples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true", help="1 000 examples x 1 000 resamples")
    args = p.parse_args(argv)
    if args.small:
        args.examples, args.resamples = 1_000, 1_000

    from jaxclip.analysis import bootstrap

    values = np.random.default_rng(args.seed).random(args.examples) < 0.64
    n, b = args.examples, args.resamples
    times = {}
    samples = {}
    for method in ("counts", "indices"):
        t0 = time.perf_counter()
        bootstrap.mean_samples(values, b, args.seed, method=method)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        samples[method] = bootstrap.mean_samples(values, b, args.seed, method=method)
        times[method] = (time.perf_counter() - t0, cold)
    t0 = time.perf_counter()
    ref, loop_s = numpy_loop(values, b, args.seed)
    loop_total = time.perf_counter() - t0

    same = bool(np.array_equal(samples["indices"], ref))
    ci = {m: bootstrap.percentile_interval(s) for m, s in samples.items()}
    ci_ref = bootstrap.percentile_interval(ref)
    ks = stats.ks_2samp(np.round(samples["counts"] * n), np.round(ref * n)).pvalue
    ratio = loop_s / times["counts"][0]
    print(f"{n} examples x {b} resamples")
    print(
        f"numpy loop:        {loop_s:.3f} s (index rows given; {loop_total:.3f} s with drawing them)"
    )
    for m, (warm, cold) in times.items():
        print(
            f"jaxclip {m + ':':8s}  {warm:.4f} s warm ({cold:.3f} s cold), "
            f"{loop_s / warm:.1f}x the loop"
        )
    print(
        f"ratio: {ratio:.1f}x, counts path vs the numpy loop "
        f"({'meets' if ratio >= TARGET_SPEEDUP else 'misses'} the {TARGET_SPEEDUP:.0f}x target)"
    )
    print(
        f"indices path: resampled accuracies {'identical to' if same else 'DIFFER from'} the "
        f"loop's; interval [{ci['indices'][0]:.6f}, {ci['indices'][1]:.6f}] vs "
        f"[{ci_ref[0]:.6f}, {ci_ref[1]:.6f}]"
    )
    same_law = ks > 1e-3
    print(
        f"counts path: interval [{ci['counts'][0]:.6f}, {ci['counts'][1]:.6f}]; KS test of its "
        f"resampled counts against the loop's: p = {ks:.3g} "
        f"({'same law' if same_law else 'DIFFERENT law'} at the 0.001 level)"
    )
    return 0 if same and ci["indices"] == ci_ref and same_law else 1


if __name__ == "__main__":
    raise SystemExit(main())
