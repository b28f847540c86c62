"""Config of the probe study (SVC / LinearSVC / logistic / MLP probes, few-shot vs zero-shot).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`cifar10`, `cifar100`, ...) and `smoke`, e.g. `configs/probe.py:vit_b32,cifar100` (the thesis's
setting; its SVC baseline is skipped on the 50k CIFAR train split unless
`--config.probe.svc_max_train=50000`) or `configs/probe.py:smoke` (tiny random model on
shapes/tiny, seconds). Fields of the study: `study_config` below (checked by
`jaxclip.studies.probe.check_config`).
"""

from __future__ import annotations

import ml_collections

from configs import common
from jaxclip.probes import linear


def add_mlp_fields(c: ml_collections.ConfigDict, widths: tuple[int, ...]) -> None:
    """The MLP probe's grid fields (`mlp`, `mlp_widths`, ... `mlp_batch_size`), in this order;
    the probe and class-agnostic studies differ only in the default widths."""
    c.mlp = True  # train the MLP probe
    c.mlp_widths = widths  # hidden widths (grid axis); each width is one vmapped run
    c.mlp_layers = 1  # hidden layers of that width
    c.mlp_learning_rates = (1e-3,)  # adamw learning rates (grid axis)
    c.mlp_weight_decays = (1e-4, 1e-2)  # adamw weight decays (grid axis)
    c.mlp_dropouts = (0.0,)  # dropout after each hidden layer (grid axis)
    c.mlp_seeds = (0, 1)  # initialisation seeds (grid axis)
    c.mlp_epochs = 30  # most epochs (early stopping on validation accuracy)
    c.mlp_patience = 5  # epochs without a better validation accuracy before a member stops
    c.mlp_batch_size = 256  # minibatch size


def study_config() -> ml_collections.ConfigDict:
    """The probe study's section of the config (`config.probe`)."""
    c = ml_collections.ConfigDict()
    # Linear-probe protocol (jaxclip.probes.protocols): "jaxclip" = the study's own probes
    # (the thesis's protocol, unchanged); "clip_paper" = the CLIP paper's L-BFGS logistic
    # probe, lambda from 25 log-spaced values 1e-6 ... 1e6 on a validation split of train,
    # refit on all train rows, 1000 iterations; "clip_benchmark" = CLIP_benchmark's AdamW probe
    # on L2-normalised features with its coarse-to-fine weight-decay search.
    c.protocol = "jaxclip"
    c.normalize = False  # L2-normalise embeddings first (the sources probe the raw features)
    c.val_fraction = 0.2  # share of the train split held out to choose C / L2 / MLP settings
    # SVC(linear) baseline of the thesis: run only when the train split has at most this many
    # examples (0 = never; raise it to force the SVC on a large split).
    c.svc_max_train = 20_000
    c.svc_c = 1.0  # C of the SVC baseline (the thesis: 1)
    c.linear_svc = True  # StandardScaler + LinearSVC (liblinear, one-vs-rest)
    c.linear_svc_c = 1.0  # its C
    c.sklearn_logistic = True  # scikit-learn LogisticRegression, CLIP protocol
    c.sklearn_cs = (1e-2, 1e-1, 1.0, 10.0)  # its C grid (log-spaced; the JAX path spans more)
    c.sklearn_max_iter = 100  # most lbfgs iterations per fit (scikit-learn's default)
    c.l2_grid = tuple(linear.DEFAULT_L2_GRID)  # JAX logistic: L2 strengths (= 1 / C) to pick from
    c.max_iter = 100  # JAX logistic: most L-BFGS steps per fit
    add_mlp_fields(c, widths=(128, 512))
    # Few-shot curve: labelled examples per class (the rest of the train split is the "all"
    # point); shot counts above the rarest class's count in the training part are skipped.
    c.shots = (1, 2, 4, 8, 16)
    c.shot_repeats = 3  # random draws of the k-shot training set per k (mean ± std)
    c.zero_shot_template = "a photo of a {}."  # class prompt of the zero-shot reference line
    c.attributes = True  # datasets with extra labels (shapes): one JAX logistic probe each
    c.save_probe = True  # save the best JAX probe (logistic or MLP) into the workdir
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.probe = study_config()
    if config.smoke:
        p = config.probe
        p.sklearn_cs = (0.1, 1.0, 10.0)
        p.l2_grid = (0.1, 1.0, 10.0, 100.0)
        p.max_iter = 30
        p.mlp_widths = (16, 32)
        p.mlp_weight_decays = (1e-4,)
        p.mlp_epochs = 3
        p.mlp_patience = 2
        p.mlp_batch_size = 16
        p.shots = (1, 2)
        p.shot_repeats = 2
    return config
