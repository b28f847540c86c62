"""Benchmark: jitted bootstrap (`jaxclip.analysis.bootstrap`) vs a numpy loop over the same resamples.

Both sides resample the same index rows (`bootstrap.resample_indices`): jaxclip draws them and
sums the resampled correctness vector inside one jitted kernel per chunk; the reference is what a
notebook does, one `values[idx].mean()` per resample in a Python loop, given the index rows
(drawing them is not counted against the loop). The run checks that both give exactly the same
resampled accuracies and the same interval, and prints the time ratio (target >= 20x). Times are
wall clock of one warm call; the cold call (tracing + compilation) is printed beside it.

Data: a seeded 0/1 correctness vector of `--examples` entries with rate 0.64.

Usage:
  python -m experiments.benchmark_bootstrap            # 10 000 examples x 10 000 resamples
  python -m experiments.benchmark_bootstrap --small    # 1 000 x 1 000, seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np

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
    t0 = time.perf_counter()
    bootstrap.mean_samples(values, args.resamples, args.seed)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = bootstrap.mean_samples(values, args.resamples, args.seed)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref, loop_s = numpy_loop(values, args.resamples, args.seed)
    loop_total = time.perf_counter() - t0

    same = bool(np.array_equal(ours, ref))
    ci_ours = bootstrap.percentile_interval(ours)
    ci_ref = bootstrap.percentile_interval(ref)
    ratio = loop_s / warm
    print(f"{args.examples} examples x {args.resamples} resamples")
    print(f"jaxclip bootstrap: {warm:.3f} s warm ({cold:.3f} s cold, with compilation)")
    print(
        f"numpy loop:        {loop_s:.3f} s (same index rows; {loop_total:.3f} s with drawing them)"
    )
    print(
        f"ratio: {ratio:.1f}x ({'meets' if ratio >= TARGET_SPEEDUP else 'misses'} the "
        f"{TARGET_SPEEDUP:.0f}x target)"
    )
    print(
        f"resampled accuracies {'identical' if same else 'DIFFER'}; interval "
        f"[{ci_ours[0]:.6f}, {ci_ours[1]:.6f}] vs [{ci_ref[0]:.6f}, {ci_ref[1]:.6f}]"
    )
    return 0 if same and ci_ours == ci_ref else 1


if __name__ == "__main__":
    raise SystemExit(main())
