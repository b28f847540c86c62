"""Geometry of the raw embedding space (Levi & Gilboa 2025): `python -m experiments.geometry
--config=configs/geometry.py:vit_b32,coco --workdir=runs/geometry`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["geometry"])


if __name__ == "__main__":
    cli.main(run, "geometry")
