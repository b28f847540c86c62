"""Config of `experiments/train_clip.py`: contrastive training of a small CLIP on shapes.

    python -m experiments.train_clip --workdir=runs/mini                      # the "mini" CLIP
    python -m experiments.train_clip --config=configs/train_clip.py:smoke     # seconds
    python -m experiments.train_clip --config=configs/train_clip.py:shapes128 --config.num_steps=900
    python -m experiments.train_clip --config.dataset=caption_pairs --config.data_path=pairs.csv

The base fields (each with its comment) are `mini_config()` below: the "mini" CLIP that the
experiments train on first use (4 x 4 patches of 16 px on 64 px images, width
128, 3 + 3 layers, 600 steps of 256 pairs: 3 to 10 minutes on 2 CPU cores, by CPU). Variants after the
colon, comma-separated:

  dataset: shapes (default, 64 px), shapes128 (128 px, patch side doubled: the same 4 x 4 token
           grid), shapes32 (32 px, patch side halved), tiny (shapes/tiny: 32 px, 256 / 128 images)
  flags:   smoke (tiny model (width 64, 2 + 2 layers) on shapes/tiny unless a dataset is named,
           6 steps: seconds, for tests); sigmoid (SigLIP's sigmoid loss, `loss = "sigmoid"`,
           named "mini_siglip": the model `jaxclip.load("mini_siglip")` opens)

Fields can be overridden on the command line (`--config.num_steps=900`); `check_config` then
rejects impossible values with one line naming the field.
"""

from __future__ import annotations

import math

import ml_collections

from jaxclip.config_args import parse_variants

# Dataset variant -> (dataset name, patch side that keeps mini's 4 x 4 token grid).
DATASETS = {
    "shapes": ("shapes", 16),
    "shapes128": ("shapes/128", 32),
    "shapes32": ("shapes/32", 8),
    "tiny": ("shapes/tiny", 8),
}
SMOKE_STEPS = 6


def mini_config() -> ml_collections.ConfigDict:
    """The default run: the "mini" CLIP on the 64 px shapes dataset; `get_config(arg)` starts
    from it and applies its variants."""
    c = ml_collections.ConfigDict()
    c.name = "mini"  # a label for logs and reports (part of the identity hash)
    # Data.
    # A captioned jaxclip.data dataset: shapes (64 px), shapes/128, shapes/32, shapes/tiny, or
    # caption_pairs (with data_path).
    c.dataset = "shapes"
    c.data_dir = ""  # TFDS data dir ("" = $JAXCLIP_DATA_DIR or ~/.cache/jaxclip/tfds for shapes)
    # A file or folder the dataset reads: dataset "caption_pairs" trains on your own image,
    # caption rows (a CSV / TSV / JSONL file; images of other or mixed sizes are resized and
    # centre-cropped to 4 x patch_size px). Part of the identity hash only when set.
    c.data_path = ""
    c.train_split = "train"  # split trained on (read into memory once)
    c.test_split = "test"  # split of the final zero-shot attribute evaluation
    # Architecture (image_size is the dataset's resolution; vocabulary: OpenAI's 49408 BPE tokens).
    c.model = ml_collections.ConfigDict()
    c.model.patch_size = 16  # ViT patch side in pixels (64 px images -> 4 x 4 patches)
    c.model.vision_width = 128  # image transformer width
    c.model.vision_layers = 3  # image transformer blocks
    c.model.vision_heads = 4  # image attention heads (width / heads = 32 per head)
    c.model.vision_mlp_dim = 512  # image MLP hidden size (4 x width)
    c.model.text_width = 128  # text transformer width
    c.model.text_layers = 3  # text transformer blocks
    c.model.text_heads = 4  # text attention heads
    c.model.text_mlp_dim = 512  # text MLP hidden size
    c.model.context_length = 32  # text positions; shapes captions take <= 18 with SOT and EOT
    c.model.projection_dim = 128  # shared embedding size D
    c.model.act = "gelu"  # MLP activation: quick_gelu | gelu | gelu_new | gelu_pytorch_tanh | relu
    c.compute_dtype = "float32"  # float32 | bfloat16 (params and optimiser state stay float32)
    c.logit_scale_init = math.log(1 / 0.07)  # initial t; logits are scaled by exp(t) <= 100
    # Loss: "softmax" (CLIP's symmetric InfoNCE) or "sigmoid" (SigLIP's pairwise sigmoid loss
    # with a learned scale and bias; the model then carries a logit_bias). The loss and the two
    # sigmoid fields enter the identity hash only for "sigmoid".
    c.loss = "softmax"
    c.sigmoid_logit_scale_init = math.log(10.0)  # sigmoid: initial t' (t = exp t'; SigLIP: log 10)
    c.sigmoid_logit_bias_init = -10.0  # sigmoid: initial logit bias b (SigLIP: -10)
    # Optimisation.
    c.seed = 0  # params init and the data order (a pure function of seed and step)
    c.batch_size = 256  # global batch (pairs per contrastive loss), split over the devices
    c.num_steps = 600  # optimiser steps
    c.learning_rate = 2e-3  # peak learning rate (after warm-up)
    c.warmup_steps = 50  # linear warm-up from 0
    c.end_lr_factor = 0.0  # the cosine ends at end_lr_factor * learning_rate
    c.weight_decay = 0.1  # decoupled (AdamW) decay on weight matrices only
    c.b1 = 0.9  # Adam beta1
    c.b2 = 0.98  # Adam beta2 (CLIP's value, steadier for contrastive losses)
    c.eps = 1e-6  # Adam epsilon
    c.grad_clip_norm = 1.0  # clip the gradient's global norm to this (0 = off)
    # Bookkeeping (not part of the identity hash: they do not change the trained params).
    c.num_devices = 0  # devices of the data-parallel mesh (0 = all)
    c.checkpoint_every = 100  # save a checkpoint every this many steps (and at the end)
    c.keep_checkpoints = 3  # keep this many newest checkpoints
    c.log_every = 10  # append a metrics line every this many steps
    c.progress = True  # progress with loss and in-batch accuracy (a bar on a terminal, else lines)
    c.eval_batch_size = 256  # images per encoder call in the zero-shot evaluation
    # Held-out evaluation during training (zero-shot per attribute, retrieval R@1 / R@5 on the
    # first eval_examples test images, logged to train_metrics.jsonl): every eval_every steps
    # and at the last step; 0 = off. One evaluation is a forward pass of 512 images, 512
    # captions and 19 prompts: about 2/3 of a training step's FLOPs, so its 12 runs add ~1.3 %.
    c.eval_every = 50
    c.eval_examples = 512  # test images evaluated (the first ones of test_split)
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The training config for the variant string `arg` (see the module docstring)."""
    parsed = parse_variants(
        arg, {"dataset": list(DATASETS)}, {"dataset": "shapes"}, flags=("smoke", "sigmoid")
    )
    tokens = [t.strip() for t in (arg or "").split(",")]
    c = mini_config()
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
        c.eval_every = 0  # off: smoke runs in tests stay as fast as they were
    if parsed["sigmoid"]:
        c.loss = "sigmoid"
        c.name = c.name.replace("mini", "mini_siglip")  # "smoke" stays "smoke"
    return c


def check_config(config: ml_collections.ConfigDict) -> None:
    """Validates a config after --config.x overrides (`jaxclip.train.check_config`)."""
    from jaxclip import train  # imports JAX: not needed to build a config

    train.check_config(config)
