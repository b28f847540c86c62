"""The main job: every study of one model × dataset in one report.

    python -m experiments.dissect [--config=configs/dissect.py:<model>,<dataset>] [--workdir=DIR]

With no flags it runs the offline default: the mini-CLIP trained on the built-in shapes dataset
(trained on first use, about 3 minutes on a 2-core CPU, then cached) dissected on shapes:
extraction, zero-shot, prompt study, probes, class-agnostic features with the temperature sweep,
retrieval and geometry. Outputs in DIR (default runs/dissect): report.md, results.json,
metrics.csv, timings.json, config.json and the PNGs the report shows; the console ends with the
report's "At a glance" table and its absolute path.
"""

from __future__ import annotations

from typing import Any

from experiments.models import run_studies
from jaxclip import cli
from jaxclip.config_args import ConfigError
from jaxclip.studies.runner import STUDIES


def study_names(config: Any) -> list[str]:
    """The studies named by `config.studies`, validated."""
    names = [n.strip() for n in str(config.studies).split(",") if n.strip()]
    bad = [n for n in names if n not in STUDIES]
    if bad or not names:
        raise ConfigError(
            f"config.studies={config.studies!r} is not valid; choose a comma-separated subset of: "
            f"{', '.join(STUDIES)}"
        )
    return names


def run(config: Any, workdir: str) -> dict:
    names = study_names(config)
    return run_studies(config, workdir, names)


if __name__ == "__main__":
    cli.main(run, "dissect")
