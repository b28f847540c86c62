"""Config of the class-agnostic study (generic-prompt cosines as features, entropy, τ sweeps).

Variants after the colon: a model (`mini`, `tiny_random`, `vit_b32`, ...), a dataset (`shapes`,
`shapes32`, `shapes128`, `cifar100`, `imagenette`, ...) and `smoke`, e.g.
`configs/class_agnostic.py:vit_b32,cifar100` (the thesis's setting), `:mini,shapes128` (the
resolution question: one dataset per run, compare the reports) or `:smoke` (tiny random model
on shapes/tiny, seconds). Fields of the study: `study_config` below (checked by
`jaxclip.studies.class_agnostic.check_config`).
"""

from __future__ import annotations

import ml_collections

from configs import common
from configs.probe import add_mlp_fields
from jaxclip.probes import linear
from jaxclip.report.references import THESIS_TAUS


def study_config() -> ml_collections.ConfigDict:
    """The class-agnostic study's section of the config (`config.class_agnostic`)."""
    c = ml_collections.ConfigDict()
    c.prompts = "generic32"  # generic prompt set (PROMPT_SETS key): the K features
    # Probe features: "cosine" (the raw cosine similarities, as the thesis) or "model" (cosines
    # × the model's logit scale). Only the unstandardised SVC sees the difference.
    c.features = "cosine"
    c.val_fraction = 0.2  # share of the train split held out to choose L2 / MLP settings
    # The thesis's SVC(linear) on the K features, no scaler: only when the train split has at
    # most this many examples (0 = never).
    c.svc_max_train = 20_000
    c.svc_c = 1.0  # its C (the thesis: 1)
    c.svc_standardize = False  # StandardScaler before it (the thesis: none)
    # Extra SVC runs on logits / τ at these τ (the thesis's Table 4.1); equal to SVC(C / τ²)
    # on the logits, which libsvm solves slowly for small τ (τ = 0.02: C = 2500, about 100 s
    # on 10k × 32), hence off by default.
    c.svc_taus = ()
    c.l2_grid = tuple(linear.DEFAULT_L2_GRID)  # JAX logistic probe: L2 strengths to pick from
    c.max_iter = 100  # JAX logistic probe: most L-BFGS steps per fit
    add_mlp_fields(c, widths=(256,))  # an MLP probe on the K features
    c.ceiling = True  # the JAX logistic probe on the L2-normalised image embeddings too
    c.zero_shot_template = "a photo of a {}."  # class prompt of the zero-shot reference
    c.entropy_bins = 40  # histogram bins over [0, ln K]
    c.hist_taus = THESIS_TAUS  # temperatures whose per-image entropies are histogrammed
    c.num_taus = 32  # τ sweep: log-spaced temperatures ...
    c.tau_min = 1e-3  # ... from tau_min ...
    c.tau_max = 1.0  # ... to tau_max
    c.extra_taus = THESIS_TAUS  # added to the sweep grid (the thesis's temperatures)
    c.sweep_l2 = 1.0  # fixed L2 of the sweep's logistic probes (sklearn C = 1 / L2; thesis C = 1)
    # Feature scaling of the τ sweeps: "raw" (no scaler, the thesis's setting, where τ acts as
    # the regularisation) and/or "standardized" (StandardScaler per τ: (a) is then invariant).
    c.sweeps = ("raw", "standardized")
    c.sweep_max_iter = 300  # L-BFGS steps per sweep probe
    c.sweep_tol = 1e-5  # the sweep probes' stopping tolerance (tight: the identity is checked)
    c.equivalence_taus = (1.0, *THESIS_TAUS)  # τ of the numerical x/τ ≡ L2·τ² check
    c.equivalence_max_train = 2000  # training rows of that check (a seeded subset; 0 = all)
    c.prompt_count_set = "generic400"  # nested set whose prefixes the prompt-count sweep uses
    c.prompt_counts = (16, 32, 100, 200, 400)  # its prefix sizes K
    c.prompt_count_l2 = 1.0  # fixed L2 of the prompt-count probes (standardised features)
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = common.base_config(arg)
    config.class_agnostic = study_config()
    if config.smoke:
        c = config.class_agnostic
        c.prompts = "generic16"
        c.l2_grid = (0.1, 1.0, 10.0)
        c.max_iter = 30
        c.mlp_widths = (16,)
        c.mlp_weight_decays = (1e-4,)
        c.mlp_epochs = 3
        c.mlp_patience = 2
        c.mlp_batch_size = 16
        c.entropy_bins = 10
        c.hist_taus = (0.07,)
        c.num_taus = 4
        c.extra_taus = (0.07,)
        c.sweep_max_iter = 50
        c.sweep_tol = 1e-4
        c.equivalence_taus = (1.0, 0.07)
        c.prompt_count_set = "generic32"
        c.prompt_counts = (16, 32)
    return config
