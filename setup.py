"""jaxclip: dissect CLIP vision-language models in JAX/Flax."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = {}
exec((ROOT / "jaxclip" / "version.py").read_text(), VERSION)

setup(
    name="jaxclip",
    version=VERSION["__version__"],
    description="Dissect CLIP vision-language models in JAX/Flax: embeddings, zero-shot, "
    "probes, class-agnostic features, retrieval and embedding geometry.",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["jaxclip", "jaxclip.*"]),
    package_data={"jaxclip": ["models/assets/*"]},
    install_requires=[
        "jax>=0.4.35",
        "flax>=0.10",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.10",
        "transformers>=4.45",
        "tokenizers>=0.20",
        "huggingface_hub>=0.25",
        "safetensors>=0.4",
        "tensorflow-datasets>=4.9.7",
        "array_record>=0.5",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "absl-py>=2.0",
        "ml_collections>=0.1.1",
        "pillow>=10.0",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "ftfy>=6.1",
    ],
    extras_require={
        # The PyTorch reference implementations the parity tests compare against. Install
        # torch first (`pip install torch==2.13.0`, a CPU wheel) or pip pulls a CUDA build.
        # sentencepiece + protobuf: transformers' SiglipTokenizer (the SigLIP text tests train
        # a small SentencePiece model).
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "ruff==0.17.6",
            "torch>=2.4",
            "sentencepiece>=0.2",
            "protobuf>=4",
        ],
        # Only needed to download-and-prepare public TFDS datasets (CIFAR, Food-101, ...).
        "tf": ["tensorflow-cpu>=2.16", "importlib_resources"],
    },
)
