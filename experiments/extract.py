"""Feature extraction into the cache: `python -m experiments.extract
--config=configs/extract.py:vit_b32,cifar100 --workdir=runs/extract`.

The job itself is `jaxclip.features.job.run(config, workdir)`. Embeds every example of the configured splits (`config.splits`: roles "train" / "test", i.e.
`config.train_split` / `config.test_split`) with the configured model, and optionally the text
sets named in `config.texts`, into the feature cache (`jaxclip.features`). The studies read the
same cache entries, so running this first (e.g. once on a GPU box or a cluster) makes every
later study on this model × dataset a file read. Writes `results.json` (examples per split,
embedding size, cache folders, skipped undecodable images; deterministic), `metrics.csv`,
`timings.json` (throughput) and `report.md`.

Multi-host (SLURM, Open MPI, Cloud TPU pods): run the same command on every host with
`--config.distributed=True`; `jax.distributed.initialize()` then finds its peers, every process
feeds its slice of each global batch, and process 0 writes the cache and the workdir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxclip import cli


def run(config: Any, workdir: str | Path) -> dict[str, Any]:
    """Checks the config, trains the model first if it is trained here, then extracts."""
    from experiments.models import ensure_trained
    from jaxclip.features import job  # imports JAX: after the command line is checked

    job.check_config(config)
    job.check_writable_dirs(config, workdir)  # before training the model or extracting
    ensure_trained(config)
    return job.run(config, workdir)


if __name__ == "__main__":
    cli.main(run, "extract")
