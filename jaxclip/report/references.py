"""Published numbers printed beside ours when the model and dataset match.

Zero-shot top-1 accuracy (%) from the CLIP paper (Radford et al. 2021, Table 11 / Fig. 21) and
LAION's CLIP_benchmark, and COCO 5k Karpathy-test retrieval recalls of OpenAI ViT-B/32 from
CLIP_benchmark; the sources' own numbers (thesis, course report, slides) with HF
`openai/clip-vit-base-patch32`. Keys are jaxclip model and dataset names.
"""

from __future__ import annotations

# (model, dataset) -> {source: top-1 %}
ZERO_SHOT_TOP1: dict[tuple[str, str], dict[str, float]] = {
    ("vit_b32", "cifar10"): {"CLIP paper": 91.3, "CLIP_benchmark": 89.83, "thesis": 88.8},
    ("vit_b32", "cifar100"): {"CLIP paper": 65.1, "CLIP_benchmark": 64.23, "thesis": 61.71},
    ("vit_b32", "food101"): {"CLIP paper": 84.4, "CLIP_benchmark": 84.00},
    ("vit_b32", "eurosat"): {"CLIP paper": 49.4, "CLIP_benchmark": 50.44},
    ("vit_b32", "imagenet_folder"): {"CLIP paper": 63.2, "CLIP_benchmark": 63.32},
}

# (model, dataset) -> {source: test accuracy %} of the StandardScaler + linear SVC (C=1) probe.
LINEAR_PROBE: dict[tuple[str, str], dict[str, float]] = {
    ("vit_b32", "cifar10"): {"thesis (SVC C=1)": 93.24},
    ("vit_b32", "cifar100"): {"thesis (SVC C=1)": 78.01},
}

# (model, dataset) -> {direction: {k: recall %}}
RETRIEVAL: dict[tuple[str, str], dict[str, dict[int, float]]] = {
    ("vit_b32", "coco_captions"): {
        "text_to_image": {1: 30.44, 5: 55.94, 10: 66.87},
        "image_to_text": {1: 50.12, 5: 75.00, 10: 83.52},
    },
}

# Class-agnostic logit features on CIFAR-100 (thesis): generic32 prompts + linear SVC.
CLASS_AGNOSTIC: dict[tuple[str, str], dict[str, float]] = {
    ("vit_b32", "cifar100"): {
        "raw cosines, SVC": 29.30,
        "tau=0.5": 50.62,
        "tau=0.07": 62.95,
        "tau=0.03": 63.76,
        "tau=0.02": 63.45,
        "mean entropy at raw cosines": 3.4656,
    },
}

# Mean softmax entropy of the 32 generic-prompt cosines / τ, per τ (thesis Table 4.1, ViT-B/32,
# CIFAR-100); ln 32 = 3.4657.
CLASS_AGNOSTIC_TAU_ENTROPY: dict[tuple[str, str], dict[float, float]] = {
    ("vit_b32", "cifar100"): {0.5: 3.4649, 0.07: 3.4206, 0.03: 3.2099, 0.02: 2.8957},
}


def lookup(table: dict, model: str, dataset: str) -> dict:
    """The published numbers for (model, dataset), or {} when there are none."""
    return table.get((model, dataset.split("/")[0]), {})


# ---- Geometry study (Levi & Gilboa, "The Double-Ellipsoid Geometry of CLIP", 2025) ----------

# Published numbers of Levi & Gilboa (OpenAI ViT-B/32 on MS-COCO val, 5k images as one batch),
# printed beside ours when model and dataset match (keys as in `lookup`).
GEOMETRY_PAPER: dict[tuple[str, str], dict[str, float]] = {
    ("vit_b32", "coco_captions"): {
        "ratio_image": 0.94,  # ‖m_i‖/‖σ_i‖
        "ratio_text": 1.03,  # ‖m_t‖/‖σ_t‖
        "svm_accuracy": 1.0,  # linear SVM on features 93 and 134
        "shell_mean_norm_image": 7.5873,  # μ_norm = E‖v − m‖ of images
        "shell_var_norm_image": 0.1914,  # var(‖v − m‖) of images
        "shell_sqrt_trace_image": 7.6007,  # sqrt(E‖v − m‖²) = sqrt(tr C)
        "shell_rel_error_image": 0.0018,  # 0.18 %
        "conformity_pearson_image": 0.9998,  # raw-mean estimate, Eq. 11
        "conformity_pearson_text": 0.9998,
        "conformity_a_image": 1.461,
        "conformity_b_image": -0.002,
        "conformity_a_text": 1.411,
        "conformity_b_text": -0.008,
        "kl_at_0": 0.14,  # KL of the conformity distributions at α = 0 (Fig. 11)
        "n_tag_features": 9,  # features acting as modality "tags" (Sec. 4)
        "dimension": 512,
    }
}
# The paper's own setting, quoted in every geometry report whatever the model and dataset.
GEOMETRY_PAPER_COCO: dict[str, float] = GEOMETRY_PAPER[("vit_b32", "coco_captions")]
# KL(image ‖ text) of the histograms of the paper's most separating feature (nats).
GEOMETRY_PAPER_TOP_FEATURE = 93
GEOMETRY_PAPER_TOP_FEATURE_KL = 301
