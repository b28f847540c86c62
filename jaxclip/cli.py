"""The shared absl entry point: `python -m experiments.<name> --config=... --workdir=...`.

Each `experiments/<name>.py` defines `run(config, workdir) -> dict` and ends with
`if __name__ == "__main__": cli.main(run, "<name>")`. Flags, logging and the summary live here
once, so the experiments stay thin.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

from jaxclip.config_args import ConfigError

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _config_flag(argv: list[str]) -> str | None:
    """The value of --config in `argv` (either `--config=X` or `--config X`), if any."""
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            return a.split("=", 1)[1]
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def precheck_variant(argv: list[str]) -> None:
    """Exits with one line if --config names a bad variant.

    ml_collections' flag parser would report the same ConfigError, but inside a "Flags parsing
    error" with the whole traceback around it.
    """
    value = _config_flag(argv)
    if not value or ":" not in value:
        return
    path, arg = value.split(":", 1)
    spec = importlib.util.spec_from_file_location("_jaxclip_config_check", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        return  # let the flag parser report a missing file
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.get_config(arg)
    except ConfigError as e:
        sys.exit(f"config error: {e}")


def main(run: Callable[[Any, str], dict], name: str) -> None:
    """Defines --config / --workdir and runs `run(config, workdir)` under absl.

    A bad variant or config value ends the program with one line naming it and the valid
    choices (`ConfigError`), not a traceback.
    """
    precheck_variant(sys.argv)
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
        try:
            run(config_flag.value, workdir)
        except ConfigError as e:  # one line, not a traceback: the message names the fix
            raise SystemExit(f"config error: {e}") from None
        report = Path(workdir) / "report.md"
        print(f"{name}: wrote {report if report.exists() else workdir}", file=sys.stderr)

    app.run(_main)
