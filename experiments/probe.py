"""Probes on frozen image embeddings: `python -m experiments.probe
--config=configs/probe.py:vit_b32,cifar100 --workdir=runs/probe`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["probe"])


if __name__ == "__main__":
    cli.main(run, "probe")
