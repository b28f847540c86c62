"""Inside the image tower (heads, MLPs, ablations, TextSpan, patch maps): `python -m
experiments.inside --config=configs/inside.py --workdir=runs/inside`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["inside"])


if __name__ == "__main__":
    cli.main(run, "inside")
