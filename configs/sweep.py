"""Config of a sweep, `experiments/sweep.py`: chosen studies over models × datasets.

    python -m experiments.sweep --config=configs/sweep.py:smoke --workdir=runs/sweep_smoke
    python -m experiments.sweep --config=configs/sweep.py:sources --config.dry_run=True

Grids after the colon (`GRIDS`): `smoke` (the tiny random model on shapes/tiny and
shapes/tiny64, zero-shot and probes without the MLP and attribute probes; about a minute of
CPU time) and `sources` (the seven models
of the sources' slide deck × CIFAR-100, Food-101, EuroSAT and an ImageNet folder, zero-shot
top-1 / top-5 and linear probes; needs the models and datasets downloaded, and
`--config.data_path=` for the ImageNet folder). The common fields (dtype, max_examples,
cache_dir, ...) and each study's section are those of the studies' own configs; each cell gets
the dataset's default train / test splits.
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs.dissect import STUDY_CONFIGS
from jaxclip.config_args import parse_variants

# The seven backbones of the sources' grid (jaxclip.models.catalog names).
SOURCE_MODELS = (
    "vit_b32",
    "vit_b16",
    "rn50",
    "laion_vit_b32",
    "laion_vit_b16",
    "laion_vit_l14",
    "laion_convnext_base",
)
# grid -> (models, datasets, studies, variant of the study configs)
GRIDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str]] = {
    "smoke": (("tiny_random",), ("shapes/tiny", "shapes/tiny64"), ("zero_shot", "probe"), "smoke"),
    "sources": (
        SOURCE_MODELS,
        ("cifar100", "food101", "eurosat", "imagenet_folder"),
        ("zero_shot", "probe"),
        "",
    ),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    parsed = parse_variants(arg, {"grid": list(GRIDS)}, {"grid": "smoke"}, flags=())
    grid = parsed["grid"]
    models, datasets, studies, variant = GRIDS[grid]
    config = common.base_config(variant or None)
    for key in ("model", "dataset", "train_split", "test_split"):  # set per cell
        del config[key]
    config.grid = grid  # the grid this config was built from (informative)
    # Models: comma-separated catalog names (jaxclip.models.catalog.MODELS), hub ids, OpenCLIP
    # names or local paths (a train_clip checkpoint step folder: RUN/checkpoints/STEP).
    config.models = ",".join(models)
    config.datasets = ",".join(datasets)  # comma-separated jaxclip.data.DATASETS names
    # Studies run in every cell (jaxclip.studies.runner.STUDIES); retrieval only on datasets
    # with captions.
    config.studies = ",".join(studies)
    # train_clip run folders whose orbax checkpoint steps join the models (comma-separated).
    config.train_runs = ""
    config.train_steps = ""  # the steps of those runs to take, comma-separated ("" = all)
    # The metric of the heat map (a leaderboard.csv metric, e.g. zero_shot.top1,
    # probe.jax_logistic.top1, retrieval.text_to_image.R@5).
    config.headline_metric = "zero_shot.top1"
    config.dry_run = False  # True: list the cells and their state, run nothing, open nothing
    # Draw each cell's report.md and figures (seconds to a minute each on a CPU); False: the
    # cells' files only (`python -m experiments.report --workdir=CELL` draws one later).
    config.cell_reports = grid != "smoke"
    for name, module in STUDY_CONFIGS.items():
        config[name] = module.get_config(variant or None)[name]
    if grid == "smoke":  # the probes' slowest parts off (MLP grid, attribute probes)
        config.probe.mlp = False
        config.probe.attributes = False
        config.probe.shots = (1,)
        config.probe.shot_repeats = 1
    return config
