"""Benchmark: the exact decomposition of a batch against a plain `encode_image` of it.

Same random weights, same batch of normalised pixels, both jitted, timed after warm-up (median of
`--steps` calls). Memory is XLA's own account of the compiled computations (arguments excluded:
temporaries + outputs, `compiled.memory_analysis()`), so the ratio does not depend on the
allocator. Targets on CPU: time <= 2.5x, memory <= 2x; both ratios are printed.

Usage:
  python -m experiments.benchmark_inside                 # ViT-B/32, batch 32, float32
  python -m experiments.benchmark_inside --small         # tiny model, seconds
  python -m experiments.benchmark_inside --directions 20 # per-token scores on 20 directions too
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxclip.models.clip import CLIP
from jaxclip.models.decompose import decompose_vit
from jaxclip.models.variants import tiny, vit_b32

TARGET_TIME = 2.5
TARGET_MEMORY = 2.0


def _median_seconds(fn, steps: int) -> float:
    jax.block_until_ready(fn())  # warm-up (compiles)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _bytes(compiled) -> int | None:
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    return int(mem.temp_size_in_bytes + mem.output_size_in_bytes)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="tiny model (seconds)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--directions", type=int, default=0, help="K > 0: also token_scores")
    args = ap.parse_args(argv)
    config = tiny() if args.small else vit_b32()
    s = config.vision.image_size
    module = CLIP(config)
    rng = np.random.default_rng(0)
    pixels = jnp.asarray(rng.standard_normal((args.batch, s, s, 3)), jnp.float32)
    ids = jnp.zeros((1, 8), jnp.int32).at[:, -1].set(config.text.eos_token_id)
    params = jax.jit(module.init)(jax.random.key(0), pixels[:1], ids)["params"]
    u = (
        jnp.asarray(rng.standard_normal((args.directions, config.projection_dim)), jnp.float32)
        if args.directions
        else None
    )
    encode = jax.jit(lambda p, x: module.apply({"params": p}, x, method=CLIP.encode_image)[0])
    decompose = jax.jit(lambda p, x, d: decompose_vit(p, config, x, d))
    emb = encode(params, pixels)
    total = decompose(params, pixels, u)
    summed = total["heads"].sum((1, 2)) + total["mlps"].sum(1) + total["embed"] + total["bias"]
    rel = float(jnp.abs(summed - emb).max() / jnp.abs(emb).max())
    t_enc = _median_seconds(lambda: encode(params, pixels), args.steps)
    t_dec = _median_seconds(lambda: decompose(params, pixels, u), args.steps)
    m_enc = _bytes(encode.lower(params, pixels).compile())
    m_dec = _bytes(decompose.lower(params, pixels, u).compile())
    out = {
        "model": "tiny" if args.small else "vit_b32",
        "batch": args.batch,
        "directions": args.directions,
        "device": jax.devices()[0].device_kind,
        "exact_sum_max_rel_error": rel,
        "encode_s": t_enc,
        "decompose_s": t_dec,
        "time_ratio": t_dec / t_enc,
        "encode_bytes": m_enc,
        "decompose_bytes": m_dec,
        "memory_ratio": None if not m_enc or m_dec is None else m_dec / m_enc,
    }
    print(json.dumps(out, indent=2))
    print(f"time ratio {out['time_ratio']:.2f}x (target <= {TARGET_TIME}x)")
    if out["memory_ratio"] is not None:
        print(f"memory ratio {out['memory_ratio']:.2f}x (target <= {TARGET_MEMORY}x)")
    return out


if __name__ == "__main__":
    main()
