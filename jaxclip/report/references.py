"""Published numbers printed beside ours when the model and dataset match.

Zero-shot top-1 accuracy (%) from the CLIP paper (Radford et al. 2021, Table 11 / Fig. 21) and
LAION's CLIP_benchmark, and COCO 5k Karpathy-test retrieval recalls of OpenAI ViT-B/32 from
CLIP_benchmark; for CLIP_benchmark's own datasets (`cb/<name>`) its benchmark/benchmark.csv
(top-1, VOC2007 multi-label mAP and retrieval Recall@5 of the four OpenAI ViTs); the sources'
own numbers (thesis, course report, slides) with HF `openai/clip-vit-base-patch32`. Keys are
jaxclip model and dataset names.
"""

from __future__ import annotations

from jaxclip.data.templates import IRRELEVANT_TEMPLATE

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

# CLIP_benchmark's zero-shot top-1 (%) of the OpenAI models on its datasets (benchmark/benchmark.csv,
# LAION-AI/CLIP_benchmark); keys are (model, "cb/<CLIP_benchmark name>"). Merged into ZERO_SHOT_TOP1.
CB_ZERO_SHOT_TOP1: dict[tuple[str, str], dict] = {
    ("vit_b32", "cb/cars"): {"CLIP_benchmark": 59.41},
    ("vit_b16", "cb/cars"): {"CLIP_benchmark": 64.46},
    ("vit_l14", "cb/cars"): {"CLIP_benchmark": 77.69},
    ("vit_l14_336", "cb/cars"): {"CLIP_benchmark": 79.31},
    ("vit_b32", "cb/country211"): {"CLIP_benchmark": 17.15},
    ("vit_b16", "cb/country211"): {"CLIP_benchmark": 22.8},
    ("vit_l14", "cb/country211"): {"CLIP_benchmark": 31.82},
    ("vit_l14_336", "cb/country211"): {"CLIP_benchmark": 34.55},
    ("vit_b32", "cb/fer2013"): {"CLIP_benchmark": 40.94},
    ("vit_b16", "cb/fer2013"): {"CLIP_benchmark": 45.82},
    ("vit_l14", "cb/fer2013"): {"CLIP_benchmark": 48.97},
    ("vit_l14_336", "cb/fer2013"): {"CLIP_benchmark": 48.01},
    ("vit_b32", "cb/fgvc_aircraft"): {"CLIP_benchmark": 19.71},
    ("vit_b16", "cb/fgvc_aircraft"): {"CLIP_benchmark": 24.18},
    ("vit_l14", "cb/fgvc_aircraft"): {"CLIP_benchmark": 31.71},
    ("vit_l14_336", "cb/fgvc_aircraft"): {"CLIP_benchmark": 32.94},
    ("vit_b32", "cb/gtsrb"): {"CLIP_benchmark": 33.11},
    ("vit_b16", "cb/gtsrb"): {"CLIP_benchmark": 43.63},
    ("vit_l14", "cb/gtsrb"): {"CLIP_benchmark": 50.18},
    ("vit_l14_336", "cb/gtsrb"): {"CLIP_benchmark": 51.64},
    ("vit_b32", "cb/imagenet-a"): {"CLIP_benchmark": 31.37},
    ("vit_b16", "cb/imagenet-a"): {"CLIP_benchmark": 50.07},
    ("vit_l14", "cb/imagenet-a"): {"CLIP_benchmark": 70.68},
    ("vit_l14_336", "cb/imagenet-a"): {"CLIP_benchmark": 77.39},
    ("vit_b32", "cb/imagenet-r"): {"CLIP_benchmark": 69.32},
    ("vit_b16", "cb/imagenet-r"): {"CLIP_benchmark": 77.67},
    ("vit_l14", "cb/imagenet-r"): {"CLIP_benchmark": 87.87},
    ("vit_l14_336", "cb/imagenet-r"): {"CLIP_benchmark": 89.12},
    ("vit_b32", "cb/imagenet1k"): {"CLIP_benchmark": 63.33},
    ("vit_b16", "cb/imagenet1k"): {"CLIP_benchmark": 68.35},
    ("vit_l14", "cb/imagenet1k"): {"CLIP_benchmark": 75.49},
    ("vit_l14_336", "cb/imagenet1k"): {"CLIP_benchmark": 76.55},
    ("vit_b32", "cb/imagenet_sketch"): {"CLIP_benchmark": 42.3},
    ("vit_b16", "cb/imagenet_sketch"): {"CLIP_benchmark": 48.14},
    ("vit_l14", "cb/imagenet_sketch"): {"CLIP_benchmark": 59.62},
    ("vit_l14_336", "cb/imagenet_sketch"): {"CLIP_benchmark": 61.05},
    ("vit_b32", "cb/imagenetv2"): {"CLIP_benchmark": 55.96},
    ("vit_b16", "cb/imagenetv2"): {"CLIP_benchmark": 61.88},
    ("vit_l14", "cb/imagenetv2"): {"CLIP_benchmark": 69.68},
    ("vit_l14_336", "cb/imagenetv2"): {"CLIP_benchmark": 70.74},
    ("vit_b32", "cb/mnist"): {"CLIP_benchmark": 48.55},
    ("vit_b16", "cb/mnist"): {"CLIP_benchmark": 49.55},
    ("vit_l14", "cb/mnist"): {"CLIP_benchmark": 76.79},
    ("vit_l14_336", "cb/mnist"): {"CLIP_benchmark": 78.71},
    ("vit_b32", "cb/objectnet"): {"CLIP_benchmark": 44.17},
    ("vit_b16", "cb/objectnet"): {"CLIP_benchmark": 55.44},
    ("vit_l14", "cb/objectnet"): {"CLIP_benchmark": 69.08},
    ("vit_l14_336", "cb/objectnet"): {"CLIP_benchmark": 71.78},
    ("vit_b32", "cb/renderedsst2"): {"CLIP_benchmark": 58.98},
    ("vit_b16", "cb/renderedsst2"): {"CLIP_benchmark": 61.12},
    ("vit_l14", "cb/renderedsst2"): {"CLIP_benchmark": 69.85},
    ("vit_l14_336", "cb/renderedsst2"): {"CLIP_benchmark": 70.68},
    ("vit_b32", "cb/stl10"): {"CLIP_benchmark": 97.08},
    ("vit_b16", "cb/stl10"): {"CLIP_benchmark": 98.28},
    ("vit_l14", "cb/stl10"): {"CLIP_benchmark": 99.38},
    ("vit_l14_336", "cb/stl10"): {"CLIP_benchmark": 99.42},
    ("vit_b32", "cb/sun397"): {"CLIP_benchmark": 62.47},
    ("vit_b16", "cb/sun397"): {"CLIP_benchmark": 64.35},
    ("vit_l14", "cb/sun397"): {"CLIP_benchmark": 67.53},
    ("vit_l14_336", "cb/sun397"): {"CLIP_benchmark": 68.65},
    ("vit_b32", "cb/voc2007"): {"CLIP_benchmark": 76.56},
    ("vit_b16", "cb/voc2007"): {"CLIP_benchmark": 78.44},
    ("vit_l14", "cb/voc2007"): {"CLIP_benchmark": 78.33},
    ("vit_l14_336", "cb/voc2007"): {"CLIP_benchmark": 78.25},
    ("vit_b32", "cb/vtab/caltech101"): {"CLIP_benchmark": 81.92},
    ("vit_b16", "cb/vtab/caltech101"): {"CLIP_benchmark": 82.54},
    ("vit_l14", "cb/vtab/caltech101"): {"CLIP_benchmark": 83.86},
    ("vit_l14_336", "cb/vtab/caltech101"): {"CLIP_benchmark": 83.79},
    ("vit_b32", "cb/vtab/cifar10"): {"CLIP_benchmark": 89.82},
    ("vit_b16", "cb/vtab/cifar10"): {"CLIP_benchmark": 90.83},
    ("vit_l14", "cb/vtab/cifar10"): {"CLIP_benchmark": 95.69},
    ("vit_l14_336", "cb/vtab/cifar10"): {"CLIP_benchmark": 94.97},
    ("vit_b32", "cb/vtab/cifar100"): {"CLIP_benchmark": 64.53},
    ("vit_b16", "cb/vtab/cifar100"): {"CLIP_benchmark": 66.91},
    ("vit_l14", "cb/vtab/cifar100"): {"CLIP_benchmark": 76.13},
    ("vit_l14_336", "cb/vtab/cifar100"): {"CLIP_benchmark": 74.64},
    ("vit_b32", "cb/vtab/clevr_closest_object_distance"): {"CLIP_benchmark": 17.16},
    ("vit_b16", "cb/vtab/clevr_closest_object_distance"): {"CLIP_benchmark": 15.83},
    ("vit_l14", "cb/vtab/clevr_closest_object_distance"): {"CLIP_benchmark": 16.07},
    ("vit_l14_336", "cb/vtab/clevr_closest_object_distance"): {"CLIP_benchmark": 15.82},
    ("vit_b32", "cb/vtab/clevr_count_all"): {"CLIP_benchmark": 23.52},
    ("vit_b16", "cb/vtab/clevr_count_all"): {"CLIP_benchmark": 20.44},
    ("vit_l14", "cb/vtab/clevr_count_all"): {"CLIP_benchmark": 18.95},
    ("vit_l14_336", "cb/vtab/clevr_count_all"): {"CLIP_benchmark": 19.9},
    ("vit_b32", "cb/vtab/diabetic_retinopathy"): {"CLIP_benchmark": 26.3},
    ("vit_b16", "cb/vtab/diabetic_retinopathy"): {"CLIP_benchmark": 6.33},
    ("vit_l14", "cb/vtab/diabetic_retinopathy"): {"CLIP_benchmark": 73.31},
    ("vit_l14_336", "cb/vtab/diabetic_retinopathy"): {"CLIP_benchmark": 73.26},
    ("vit_b32", "cb/vtab/dmlab"): {"CLIP_benchmark": 19.46},
    ("vit_b16", "cb/vtab/dmlab"): {"CLIP_benchmark": 15.9},
    ("vit_l14", "cb/vtab/dmlab"): {"CLIP_benchmark": 16.75},
    ("vit_l14_336", "cb/vtab/dmlab"): {"CLIP_benchmark": 15.92},
    ("vit_b32", "cb/vtab/dsprites_label_orientation"): {"CLIP_benchmark": 2.37},
    ("vit_b16", "cb/vtab/dsprites_label_orientation"): {"CLIP_benchmark": 1.98},
    ("vit_l14", "cb/vtab/dsprites_label_orientation"): {"CLIP_benchmark": 2.32},
    ("vit_l14_336", "cb/vtab/dsprites_label_orientation"): {"CLIP_benchmark": 2.43},
    ("vit_b32", "cb/vtab/dsprites_label_x_position"): {"CLIP_benchmark": 3.46},
    ("vit_b16", "cb/vtab/dsprites_label_x_position"): {"CLIP_benchmark": 2.95},
    ("vit_l14", "cb/vtab/dsprites_label_x_position"): {"CLIP_benchmark": 3.18},
    ("vit_l14_336", "cb/vtab/dsprites_label_x_position"): {"CLIP_benchmark": 3.14},
    ("vit_b32", "cb/vtab/dtd"): {"CLIP_benchmark": 44.26},
    ("vit_b16", "cb/vtab/dtd"): {"CLIP_benchmark": 44.57},
    ("vit_l14", "cb/vtab/dtd"): {"CLIP_benchmark": 55.11},
    ("vit_l14_336", "cb/vtab/dtd"): {"CLIP_benchmark": 55.69},
    ("vit_b32", "cb/vtab/eurosat"): {"CLIP_benchmark": 50.72},
    ("vit_b16", "cb/vtab/eurosat"): {"CLIP_benchmark": 55.59},
    ("vit_l14", "cb/vtab/eurosat"): {"CLIP_benchmark": 62.67},
    ("vit_l14_336", "cb/vtab/eurosat"): {"CLIP_benchmark": 61.91},
    ("vit_b32", "cb/vtab/flowers"): {"CLIP_benchmark": 66.3},
    ("vit_b16", "cb/vtab/flowers"): {"CLIP_benchmark": 71.36},
    ("vit_l14", "cb/vtab/flowers"): {"CLIP_benchmark": 79.17},
    ("vit_l14_336", "cb/vtab/flowers"): {"CLIP_benchmark": 78.35},
    ("vit_b32", "cb/vtab/kitti_closest_vehicle_distance"): {"CLIP_benchmark": 27.43},
    ("vit_b16", "cb/vtab/kitti_closest_vehicle_distance"): {"CLIP_benchmark": 27.0},
    ("vit_l14", "cb/vtab/kitti_closest_vehicle_distance"): {"CLIP_benchmark": 22.36},
    ("vit_l14_336", "cb/vtab/kitti_closest_vehicle_distance"): {"CLIP_benchmark": 26.86},
    ("vit_b32", "cb/vtab/pcam"): {"CLIP_benchmark": 62.19},
    ("vit_b16", "cb/vtab/pcam"): {"CLIP_benchmark": 50.63},
    ("vit_l14", "cb/vtab/pcam"): {"CLIP_benchmark": 51.6},
    ("vit_l14_336", "cb/vtab/pcam"): {"CLIP_benchmark": 61.28},
    ("vit_b32", "cb/vtab/pets"): {"CLIP_benchmark": 87.33},
    ("vit_b16", "cb/vtab/pets"): {"CLIP_benchmark": 88.93},
    ("vit_l14", "cb/vtab/pets"): {"CLIP_benchmark": 93.08},
    ("vit_l14_336", "cb/vtab/pets"): {"CLIP_benchmark": 93.81},
    ("vit_b32", "cb/vtab/resisc45"): {"CLIP_benchmark": 53.76},
    ("vit_b16", "cb/vtab/resisc45"): {"CLIP_benchmark": 58.51},
    ("vit_l14", "cb/vtab/resisc45"): {"CLIP_benchmark": 63.52},
    ("vit_l14_336", "cb/vtab/resisc45"): {"CLIP_benchmark": 63.71},
    ("vit_b32", "cb/vtab/smallnorb_label_azimuth"): {"CLIP_benchmark": 6.0},
    ("vit_b16", "cb/vtab/smallnorb_label_azimuth"): {"CLIP_benchmark": 5.59},
    ("vit_l14", "cb/vtab/smallnorb_label_azimuth"): {"CLIP_benchmark": 4.56},
    ("vit_l14_336", "cb/vtab/smallnorb_label_azimuth"): {"CLIP_benchmark": 4.76},
    ("vit_b32", "cb/vtab/smallnorb_label_elevation"): {"CLIP_benchmark": 11.79},
    ("vit_b16", "cb/vtab/smallnorb_label_elevation"): {"CLIP_benchmark": 11.86},
    ("vit_l14", "cb/vtab/smallnorb_label_elevation"): {"CLIP_benchmark": 11.43},
    ("vit_l14_336", "cb/vtab/smallnorb_label_elevation"): {"CLIP_benchmark": 11.23},
    ("vit_b32", "cb/vtab/svhn"): {"CLIP_benchmark": 12.37},
    ("vit_b16", "cb/vtab/svhn"): {"CLIP_benchmark": 30.48},
    ("vit_l14", "cb/vtab/svhn"): {"CLIP_benchmark": 57.07},
    ("vit_l14_336", "cb/vtab/svhn"): {"CLIP_benchmark": 55.35},
}

# (model, dataset) -> {source: mean average precision %} (VOC2007 multi-label zero-shot).
MULTILABEL_MAP: dict[tuple[str, str], dict] = {
    ("vit_b32", "cb/voc2007_multilabel"): {"CLIP_benchmark": 76.01},
    ("vit_b16", "cb/voc2007_multilabel"): {"CLIP_benchmark": 78.88},
    ("vit_l14", "cb/voc2007_multilabel"): {"CLIP_benchmark": 79.04},
    ("vit_l14_336", "cb/voc2007_multilabel"): {"CLIP_benchmark": 80.36},
}

# CLIP_benchmark's Recall@5 (%) on its retrieval sets (Karpathy test splits). Merged into
# RETRIEVAL.
CB_RETRIEVAL: dict[tuple[str, str], dict] = {
    ("vit_b32", "cb/flickr30k"): {"text_to_image": {5: 83.38}, "image_to_text": {5: 94.9}},
    ("vit_b16", "cb/flickr30k"): {"text_to_image": {5: 85.54}, "image_to_text": {5: 96.3}},
    ("vit_l14", "cb/flickr30k"): {"text_to_image": {5: 87.16}, "image_to_text": {5: 97.4}},
    ("vit_l14_336", "cb/flickr30k"): {"text_to_image": {5: 88.9}, "image_to_text": {5: 98.1}},
    ("vit_b32", "cb/flickr8k"): {"text_to_image": {5: 80.54}, "image_to_text": {5: 91.4}},
    ("vit_b16", "cb/flickr8k"): {"text_to_image": {5: 82.86}, "image_to_text": {5: 91.4}},
    ("vit_l14", "cb/flickr8k"): {"text_to_image": {5: 86.34}, "image_to_text": {5: 94.1}},
    ("vit_l14_336", "cb/flickr8k"): {"text_to_image": {5: 87.96}, "image_to_text": {5: 93.9}},
    ("vit_b32", "cb/mscoco_captions"): {"text_to_image": {5: 55.85}, "image_to_text": {5: 74.82}},
    ("vit_b16", "cb/mscoco_captions"): {"text_to_image": {5: 58.37}, "image_to_text": {5: 76.82}},
    ("vit_l14", "cb/mscoco_captions"): {"text_to_image": {5: 61.08}, "image_to_text": {5: 79.18}},
    ("vit_l14_336", "cb/mscoco_captions"): {
        "text_to_image": {5: 61.55},
        "image_to_text": {5: 81.02},
    },
}

ZERO_SHOT_TOP1.update(CB_ZERO_SHOT_TOP1)
RETRIEVAL.update(CB_RETRIEVAL)


# ---------------------------------------------------------------------------------------------
# Zero-shot and prompt studies: the sources' numbers quoted in their prose (HF
# openai/clip-vit-base-patch32 unless said otherwise; top-1 accuracy).

#: IT5005 course report, an ImageNet subset: top-1 % per prompt template.
IT5005_TEMPLATE_TOP1: dict[str, float] = {
    "a photo of a {}": 58.85,
    "a picture of a {}": 58.75,
    "an image of a {}": 58.41,
    "{}": 53.96,
    "a wild animal: {}": 53.83,
    IRRELEVANT_TEMPLATE: 48.12,
}
#: DATA586 slides, "different prompts on satellite dataset" (ViT-B/32): top-1 % per template. The
#: slide's 157 batches and its 61.71 % for "a photo of a {}" match CIFAR-100's 10k test images
#: and the thesis's CIFAR-100 number, so the data may well be CIFAR-100.
DATA586_TEMPLATE_TOP1: dict[str, float] = {
    "a photo of a {}": 61.71,
    "a sketch of a {}": 58.91,
    "a drawing of a {}": 61.10,
    "a cartoon of a {}": 61.82,
    "an artistic rendering of a {}": 63.17,
    "a low-resolution photo of a {}": 63.23,
    "{}": 55.15,
}
#: IT5005 report, "Step 10": top-1 accuracy (a fraction) with the prompt "a photo of a {}",
#: scored by cosine similarity and by the raw dot product.
IT5005_SIMILARITY_TOP1: dict[str, float] = {"cosine": 0.5885, "dot": 0.1608}
#: IT5005 report, the ImageNet subset: linear probe vs zero-shot ("a photo of a {}") top-1 %.
IT5005_PROBE_TOP1 = 68.75
IT5005_ZERO_SHOT_TOP1 = IT5005_TEMPLATE_TOP1["a photo of a {}"]
#: The thesis, CIFAR-100 (ViT-B/32): linear SVC probe vs zero-shot top-1 %.
THESIS_CIFAR100_PROBE_TOP1 = LINEAR_PROBE[("vit_b32", "cifar100")]["thesis (SVC C=1)"]
THESIS_CIFAR100_ZERO_SHOT_TOP1 = ZERO_SHOT_TOP1[("vit_b32", "cifar100")]["thesis"]
# ---------------------------------------------------------------------------------------------


# ------------------------------------------------------------------ probe / class-agnostic prose
# Numbers the probe and class-agnostic reports quote in their text, whatever the run's model and
# dataset (the tables above are printed only when model and dataset match).
THESIS_SVC_CIFAR10: float = LINEAR_PROBE[("vit_b32", "cifar10")]["thesis (SVC C=1)"]
THESIS_SVC_CIFAR100: float = LINEAR_PROBE[("vit_b32", "cifar100")]["thesis (SVC C=1)"]
THESIS_ZERO_SHOT_CIFAR100: float = ZERO_SHOT_TOP1[("vit_b32", "cifar100")]["thesis"]
# The thesis's class-agnostic numbers quoted in the text (ViT-B/32, CIFAR-100, generic32).
THESIS_CLASS_AGNOSTIC: dict[str, float] = CLASS_AGNOSTIC[("vit_b32", "cifar100")]
THESIS_TAU_ENTROPY: dict[float, float] = CLASS_AGNOSTIC_TAU_ENTROPY[("vit_b32", "cifar100")]
THESIS_TAUS: tuple[float, ...] = tuple(THESIS_TAU_ENTROPY)  # its Table 4.1: 0.5 … 0.02


def lookup(table: dict, model: str, dataset: str) -> dict:
    """The published numbers for (model, dataset), or {} when there are none.

    The full dataset name is tried first ("cb/vtab/caltech101"), then its base ("shapes/128"
    -> "shapes").
    """
    return table.get((model, dataset)) or table.get((model, dataset.split("/")[0]), {})


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
