"""Train a small CLIP contrastively on the shapes dataset (or on your own image-caption pairs);
report its zero-shot accuracies.

    python -m experiments.train_clip --workdir=runs/mini
    python -m experiments.train_clip --config=configs/train_clip.py:smoke --workdir=/tmp/smoke
    python -m experiments.train_clip --config.dataset=caption_pairs --config.data_path=pairs.csv

Interrupted runs resume from their newest checkpoint when started again with the same workdir.
Writes into the workdir: results.json, metrics.csv (scalar summary), train_metrics.jsonl and
train_metrics.csv (one row per logging step), training_curves.png, report.md, the checkpoints
and model/ (a transformers-compatible CLIPModel folder: `jaxclip.load(workdir + "/model")`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxclip import cli


def run(config: Any, workdir: str | Path) -> dict[str, Any]:
    """Trains (or resumes) as `config` says in `workdir`; writes the results and the report."""
    from jaxclip import train
    from jaxclip.report.training import write_run

    train.check_config(config)
    return write_run(config, train.train(config, Path(workdir)), workdir)


if __name__ == "__main__":
    cli.main(run, "train_clip")
