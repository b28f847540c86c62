"""Config of the geometry study (double-ellipsoid analysis of the raw embedding space).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`coco`, `cifar100`, ...) and `smoke`, e.g. `configs/geometry.py:vit_b32,coco` (the paper's
setting: OpenAI ViT-B/32 on the COCO test split as one batch) or `configs/geometry.py:smoke`
(tiny random model on shapes/tiny, seconds). The study (and `check_config` of these fields):
`jaxclip.studies.geometry`.

`siglip_vs_clip` runs the study on two models, each into WORKDIR/<model>/, and writes
WORKDIR/report.md and comparison.json with their numbers side by side
(`jaxclip.studies.geometry_compare`): the mini-CLIP (`mini`, softmax loss) and the mini-SigLIP
(`mini_siglip`, the same recipe trained with SigLIP's sigmoid loss; both are trained on first
use). With `smoke`: the random `tiny_random` and `tiny_random_sigmoid` on shapes/tiny.
"""

from __future__ import annotations

import ml_collections

from configs import common


def study_config() -> ml_collections.ConfigDict:
    """The geometry study's section of the config (`config.geometry`), with its defaults."""
    c = ml_collections.ConfigDict()
    c.split = "test"  # split role analysed, "test" or "train" (the paper: all of COCO val)
    # Captioned datasets: the caption paired with each image: "first", a 0-based index ("2"),
    # or "all" (every caption, its image repeated once per caption in the loss and KL/loss
    # sweeps' pairs; image statistics still count each image once).
    c.caption = "first"
    c.class_template = "a photo of a {}."  # no captions: the text paired with each image
    c.max_pairs = 0  # > 0: a seeded random subset of this many images (0 = all, as the paper)
    c.alpha_min = -1.0  # α grid of the shift v' = v − α·m (Eq. 9): lower end
    c.alpha_max = 1.0  # upper end (α = 1 centres the shifted modality at the origin)
    c.num_alphas = 21  # grid points, evenly spaced; α = 0 (CLIP as trained) is always added
    c.sides = ("image", "text")  # which modality is shifted, one sweep each (loss and KL)
    c.logit_scale = 0.0  # s = 1/τ of the loss; 0 = the model's own learned `ctx.logit_scale`
    c.loss_memory_mb = 256  # memory budget of the blockwise loss sweep (rows per block follow)
    c.top_k = 10  # rows of the table of most separating features
    c.hist_features = 3  # most separating features drawn as per-modality histograms
    c.feature_kl_bins = 60  # bins of the per-feature image-vs-text histogram KL in the Sep table
    c.svm_c = 1.0  # C of the linear SVM on the two most separating features
    c.kl_method = "histogram"  # conformity KL: "histogram" (binned) or "gaussian" (fitted)
    c.kl_bins = 100  # bins of the conformity histograms (KL and the distribution plot)
    c.kl_smoothing = 0.5  # additive smoothing of histogram counts (0.5 = Jeffreys prior)
    c.max_scatter_points = 5000  # points drawn in scatter plots (SVM, conformity); seeded
    c.examples = 3  # most / least conforming captions listed (captioned datasets)
    return c


# The comparison variant: its models, full and smoke.
COMPARISONS = {"siglip_vs_clip": (("mini", "mini_siglip"), ("tiny_random", "tiny_random_sigmoid"))}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    tokens = [t.strip() for t in (arg or "").split(",") if t.strip()]
    compare = [t for t in tokens if t in COMPARISONS]
    config = common.base_config(",".join(t for t in tokens if t not in COMPARISONS))
    # Two or more models: the study runs on each into WORKDIR/<model>/ and WORKDIR/report.md
    # puts their numbers side by side (config.model is then the first); () = config.model only.
    config.compare_models = ()
    if compare:
        full, smoke = COMPARISONS[compare[0]]
        config.compare_models = smoke if config.smoke else full
        config.model = config.compare_models[0]
    config.geometry = study_config()
    if config.smoke:
        g = config.geometry
        g.num_alphas = 5  # α in {-1, -0.5, 0, 0.5, 1}
        g.top_k = 5
        g.hist_features = 2
        g.feature_kl_bins = 20
        g.kl_bins = 20
        g.max_scatter_points = 500
        g.loss_memory_mb = 16
        g.examples = 2
    return config
