"""Zero-shot classification: `python -m experiments.zero_shot
--config=configs/zero_shot.py:vit_b32,cifar100 --workdir=runs/zero_shot`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["zero_shot"])


if __name__ == "__main__":
    cli.main(run, "zero_shot")
