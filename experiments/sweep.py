"""A sweep: chosen studies over models × datasets into one leaderboard.

    python -m experiments.sweep --config=configs/sweep.py:smoke --workdir=runs/sweep_smoke
    python -m experiments.sweep --config=configs/sweep.py:sources --config.dry_run=True

Each model × dataset × study runs once into WORKDIR/cells/<model>/<dataset>/<study>/ (skipped
on a rerun once its results.json exists; an interrupted sweep resumes); then
WORKDIR/leaderboard.csv, WORKDIR/comparisons.csv (model vs model on the same test images:
McNemar, paired bootstrap, Holm), WORKDIR/report.md and the heat map sweep_heatmap.png are
written from the finished cells. `--config.dry_run=True` lists the cells and their state
without opening anything.
"""

from __future__ import annotations

from typing import Any

from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    from experiments.models import ensure_trained
    from jaxclip import sweep

    result = sweep.run_sweep(config, workdir, prepare_model=ensure_trained)
    if config.dry_run:
        for row in result["dry_run"]:
            print(f"{row['model']}  {row['dataset']}  {row['study']}  {row['state']}")
        print(f"sweep: {result['cells']} cells (dry run: nothing was run)")
    else:
        print(
            f"sweep: {result['cells']} cells, {result['run']} run, {result['skipped']} finished "
            f"before; leaderboard {result['leaderboard']}, model vs model "
            f"{result['comparisons']}, report {result['report']}"
        )
    return result


if __name__ == "__main__":
    cli.main(run, "sweep")
