"""Re-renders a finished run's report from its files, without recomputing anything:

    python -m experiments.report --workdir=runs/dissect

Reads DIR/results.json, DIR/arrays.npz and DIR/timings.json, draws every figure again and
writes DIR/report.md (the same report the run wrote). Image grids re-read their images from the
run's dataset by index.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

from jaxclip.studies.runner import render_run

_WORKDIR = flags.DEFINE_string("workdir", "runs/dissect", "A finished run's output folder.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    workdir = Path(_WORKDIR.value)
    if not (workdir / "results.json").is_file():
        raise SystemExit(f"error: {workdir} has no results.json (is it a run's --workdir?)")
    path = render_run(workdir)
    print(f"report: wrote {path.resolve()}", file=sys.stderr)


if __name__ == "__main__":
    app.run(main)
