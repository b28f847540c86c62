"""Text-image retrieval: `python -m experiments.retrieval --config=configs/retrieval.py:vit_b32,coco
--workdir=runs/retrieval`."""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["retrieval"])


if __name__ == "__main__":
    cli.main(run, "retrieval")
