"""Class-agnostic logit features (generic prompts, entropy, temperature):
`python -m experiments.class_agnostic --config=configs/class_agnostic.py:vit_b32,cifar100
--workdir=runs/class_agnostic`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["class_agnostic"])


if __name__ == "__main__":
    cli.main(run, "class_agnostic")
