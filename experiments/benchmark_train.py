"""Benchmark: one training step of the mini-CLIP's recipe against a changed recipe, same run.

The cold first run of `python -m experiments.dissect` is mostly the mini-CLIP's 600 training
steps, so a faster recipe is where it can get shorter. This prints, for the default recipe
(`configs/train_clip.py`) and for the recipe with the `--set` overrides, XLA's FLOP count of
one compiled step, the median seconds per step (the two recipes timed in alternation, so a
change of machine load hits both alike), the FLOP/s as a fraction of JAX's fp32 matmul ceiling
measured in the same run, and the ratio of the two step times. Batches are random pixels and
token ids of the training shapes (captions trimmed to `--tokens`, as training trims them):
speed only. Whether a recipe keeps the mini-CLIP's zero-shot accuracy is a training run
(`python -m experiments.train_clip --workdir=DIR --config.<field>=...`, then DIR/zero_shot.json).

`--full-last-block` instead times the default recipe against itself with both towers' last
block computing every token, as it did before training computed only the pooled rows (the
class token, each caption's EOS; `jaxclip.models.clip._Layers`): the same loss and gradients,
so the ratio is what computing only those rows saves.

Usage:
  python -m experiments.benchmark_train       # default vs a 64-wide, 2-layer text tower
  python -m experiments.benchmark_train --full-last-block   # pooled rows only vs every row
  python -m experiments.benchmark_train --small --set model.text_layers=1   # seconds
  python -m experiments.benchmark_train --set model.vision_layers=2 --set num_steps=400
"""

from __future__ import annotations

import argparse
import statistics
import time

# The alternative measured by default: a text tower of width 64 (2 heads, MLP 256), 2 layers.
SMALL_TEXT = (
    "model.text_width=64",
    "model.text_heads=2",
    "model.text_mlp_dim=256",
    "model.text_layers=2",
)


def _config(overrides, small: bool = False):
    from configs.train_clip import get_config

    config = get_config("smoke" if small else None)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes FIELD=VALUE (e.g. model.text_width=64); got {item!r}")
        node, *path = [config, *key.split(".")]
        for name in path[:-1]:
            node = node[name] if name in node else {}
        if path[-1] not in node:
            raise SystemExit(f"--set {key}: no such field of configs/train_clip.py")
        node[path[-1]] = type(node[path[-1]])(value)
    return config


class _FullLastBlock:
    """The CLIP module with both towers' last block computing every token (hidden states
    requested, then dropped): the training step's work before it computed only pooled rows."""

    def __init__(self, module):
        self.module = module

    def apply(self, variables, pixels, input_ids):
        def both(m, pixels, input_ids):
            image, _ = m.encode_image(pixels, return_hidden=True)
            text, _ = m.encode_text(input_ids, return_hidden=True)
            return {"image_embeds": image, "text_embeds": text, "logit_scale": m.logit_scale}

        return self.module.apply(variables, pixels, input_ids, method=both)


def _step(config, batch: int, tokens: int, full_last_block: bool = False):
    """(step function on fixed random inputs, GFLOP per step)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxclip import train
    from jaxclip.data.preprocess import PreprocessConfig

    train.check_config(config)
    side = 4 * int(config.model.patch_size)
    mesh = train.make_mesh(1)
    preprocess = PreprocessConfig(image_size=side)
    module, optimizer, schedule, step = train._setup(
        train.model_config(config, side),
        config.compute_dtype,
        tuple((k, config[k]) for k in train.OPTIMIZER_FIELDS),
        tuple(mesh.devices.flat),
        preprocess,
        train.loss_name(config),
    )
    if full_last_block:
        step = train.make_train_step(
            _FullLastBlock(module), optimizer, schedule, mesh, preprocess, train.loss_name(config)
        )
    params = train.init_params(module, 0)
    state = {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "opt_state": optimizer.init(params),
    }
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (batch, side, side, 3), dtype=np.uint8))
    ids = rng.integers(1, 49406, (batch, tokens)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 49406, 49407  # SOT ... EOT
    ids = jnp.asarray(ids)
    cost = step.lower(state, images, ids).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    jax.block_until_ready(step(state, images, ids))  # compiles
    return (lambda: jax.block_until_ready(step(state, images, ids))), cost["flops"] / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=None, help="FIELD=VALUE (repeatable)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per recipe")
    parser.add_argument("--tokens", type=int, default=18, help="caption tokens (shapes: 18)")
    parser.add_argument("--small", action="store_true", help="the smoke model (seconds)")
    parser.add_argument(
        "--full-last-block",
        action="store_true",
        help="changed = the default recipe with every token through the last blocks",
    )
    args = parser.parse_args()
    if args.full_last_block and args.set:
        raise SystemExit("--full-last-block compares the default recipe with itself: no --set")
    overrides = () if args.full_last_block else tuple(args.set) if args.set else SMALL_TEXT

    from experiments import bench_util

    print(bench_util.describe_cpu(bench_util.cpu_info()))
    ceiling = bench_util.jax_matmul_flops("float32")
    recipes = {"default": _config((), args.small), "changed": _config(overrides, args.small)}
    steps, gflop = {}, {}
    for name, config in recipes.items():
        full = args.full_last_block and name == "changed"
        steps[name], gflop[name] = _step(config, int(config.batch_size), args.tokens, full)
    times = {name: [] for name in recipes}
    for _ in range(args.steps):
        for name, run in steps.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    print(
        "changed: every token through both towers' last block"
        if args.full_last_block
        else f"changed: {', '.join(overrides)}"
    )
    median = {name: statistics.median(t) for name, t in times.items()}
    for name in recipes:
        print(
            f"{name}: {gflop[name]:.2f} GFLOP/step, {median[name]:.3f} s/step "
            f"({1 / median[name]:.2f} steps/s); "
            + bench_util.fraction_line("step", gflop[name] * 1e9 / median[name], ceiling)
        )
    print(
        f"changed / default: {gflop['changed'] / gflop['default']:.2f}x the FLOPs, "
        f"{median['default'] / median['changed']:.2f}x the steps per second"
    )


if __name__ == "__main__":
    main()
