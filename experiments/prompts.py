"""Prompt engineering: `python -m experiments.prompts --config=configs/prompts.py:vit_b32,cifar100
--workdir=runs/prompts`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["prompts"])


if __name__ == "__main__":
    cli.main(run, "prompts")
