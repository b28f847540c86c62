"""Text-image retrieval: `python -m experiments.retrieval --config=configs/retrieval.py:vit_b32,coco
--workdir=runs/retrieval`."""

from __future__ import annotations

from typing import Any

from jaxclip import cli
from jaxclip.studies.runner import run_studies


def run(config: Any, workdir: str) -> dict:
    return run_studies(config, workdir, ["retrieval"])


if __name__ == "__main__":
    cli.main(run, "retrieval")
