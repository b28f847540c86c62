"""Config of `experiments/train_clip.py`: contrastive training of a small CLIP on shapes.

    python -m experiments.train_clip --workdir=runs/mini                      # the "mini" CLIP
    python -m experiments.train_clip --config=configs/train_clip.py:smoke     # seconds
    python -m experiments.train_clip --config=configs/train_clip.py:shapes128 --config.num_steps=900

The base fields (each with its comment) are `jaxclip.train.base_config()`: the "mini" CLIP that
`jaxclip.models.catalog` trains on first use (4 x 4 patches of 16 px on 64 px images, width
128, 3 + 3 layers, 600 steps of 256 pairs: under 3 minutes on 2 CPU cores). Variants after the
colon, comma-separated:

  dataset: shapes (default, 64 px), shapes128 (128 px, patch side doubled: the same 4 x 4 token
           grid), shapes32 (32 px, patch side halved), tiny (shapes/tiny: 32 px, 256 / 128 images)
  flags:   smoke (tiny model (width 64, 2 + 2 layers) on shapes/tiny unless a dataset is named,
           6 steps: seconds, for tests)

Fields can be overridden on the command line (`--config.num_steps=900`); `check_config` then
rejects impossible values with one line naming the field.
"""

from __future__ import annotations

import ml_collections

from jaxclip import train
from jaxclip.config_args import parse_variants

# Dataset variant -> (dataset name, patch side that keeps mini's 4 x 4 token grid).
DATASETS = {
    "shapes": ("shapes", 16),
    "shapes128": ("shapes/128", 32),
    "shapes32": ("shapes/32", 8),
    "tiny": ("shapes/tiny", 8),
}
SMOKE_STEPS = 6


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The training config for the variant string `arg` (see the module docstring)."""
    parsed = parse_variants(arg, {"dataset": list(DATASETS)}, {"dataset": "shapes"})
    tokens = [t.strip() for t in (arg or "").split(",")]
    c = train.base_config()
    variant = parsed["dataset"]
    if parsed["smoke"] and "shapes" not in tokens:
        variant = "tiny" if variant == "shapes" else variant
    c.dataset, c.model.patch_size = DATASETS[variant]
    c.name = "mini" if variant == "shapes" else f"mini-{variant}"
    if parsed["smoke"]:
        c.name = "smoke"
        # The size of jaxclip.models.variants.tiny(): width 64, 2 layers, 2 heads.
        c.model.vision_width = c.model.text_width = c.model.projection_dim = 64
        c.model.vision_layers = c.model.text_layers = 2
        c.model.vision_heads = c.model.text_heads = 2
        c.model.vision_mlp_dim = c.model.text_mlp_dim = 256
        c.batch_size = 32  # of the 256 training images
        c.num_steps = SMOKE_STEPS
        c.warmup_steps = 2
        c.learning_rate = 3e-3
        c.checkpoint_every = 2
        c.log_every = 1
        c.eval_batch_size = 128
    return c


def check_config(config: ml_collections.ConfigDict) -> None:
    """Validates a config after --config.x overrides (`jaxclip.train.check_config`)."""
    train.check_config(config)
