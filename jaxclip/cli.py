"""The shared absl entry point: `python -m experiments.<name> --config=... --workdir=...`.

Each `experiments/<name>.py` defines `run(config, workdir) -> dict` and ends with
`if __name__ == "__main__": cli.main(run, "<name>")`. Flags, logging and the summary live here
once, so the experiments stay thin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main(run: Callable[[Any, str], dict], name: str) -> None:
    """Defines --config / --workdir and runs `run(config, workdir)` under absl."""
    config_flag = config_flags.DEFINE_config_file(
        "config",
        os.fspath(REPO_CONFIGS / f"{name}.py"),
        f"Config file, e.g. configs/{name}.py:smoke (variants after the colon).",
        lock_config=True,
    )
    workdir_flag = flags.DEFINE_string(
        "workdir", os.path.join("runs", name), "Output folder (results.json, report.md, plots)."
    )

    def _main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        workdir = workdir_flag.value
        Path(workdir).mkdir(parents=True, exist_ok=True)
        logging.info("config:\n%s", config_flag.value)
        run(config_flag.value, workdir)
        report = Path(workdir) / "report.md"
        print(f"{name}: wrote {report if report.exists() else workdir}", file=sys.stderr)

    app.run(_main)
