"""The shared absl entry point: `python -m experiments.<name> --config=... --workdir=...`.

Each `experiments/<name>.py` defines `run(config, workdir) -> dict` and ends with
`if __name__ == "__main__": cli.main(run, "<name>")`. Flags, logging, the summary and the
error contract live here once, so the experiments stay thin.

The error contract: a user error (a `jaxclip.errors.UserError`, which `ConfigError` is; an
unknown or mistyped `--config.<key>`; an OSError of `jaxclip.errors.USER_ERRNOS`: permissions,
read-only file system, disk full) ends the program with one line on stderr naming the bad value
and the valid choices, and exit code 2. Anything else is a bug and keeps its traceback (exit 1).
"""

from __future__ import annotations

import importlib.util
import logging as pylogging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from absl import app, flags, logging
from ml_collections import config_flags

from jaxclip.atomic import check_writable
from jaxclip.config_args import ConfigError
from jaxclip.errors import UserError, one_line, user_oserror

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
USER_ERROR_EXIT = 2
CONFIG_FILE = "config.json"

# Third-party log lines that say nothing to a user of jaxclip: (logger, module file, message
# start). JAX probes every backend it knows at start-up and logs each one missing ("Unable to
# initialize backend 'tpu'"); TFDS warns that a dataset folder being generated has no
# dataset_info.json yet and that OpenCV is missing (PIL decodes our PNGs).
QUIET_RECORDS = (
    ("jax._src.xla_bridge", "xla_bridge.py", "Unable to initialize backend"),
    ("absl", "file_utils.py", "Variant folder"),
    ("absl", "image_feature.py", "OpenCV is not installed"),
)
# Environment defaults for the libraries' own C++ logging (a user's setting wins).
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}


class _DropRecords(pylogging.Filter):
    """Drops the records of one logger that come from `filename` and start with `prefix`."""

    def __init__(self, filename: str, prefix: str):
        super().__init__()
        self.filename, self.prefix = filename, prefix

    def filter(self, record: pylogging.LogRecord) -> bool:
        if record.levelno >= pylogging.ERROR or os.path.basename(record.pathname) != self.filename:
            return True
        return not str(record.msg).startswith(self.prefix)


def quiet_third_party() -> None:
    """Silences the third-party lines of `QUIET_RECORDS` and sets `QUIET_ENV` defaults.

    Targeted: only those messages are dropped (an error of the same modules still shows), and
    nothing is caught. Called once by `main` before any library is imported; idempotent.
    """
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for logger_name, filename, prefix in QUIET_RECORDS:
        logger = pylogging.getLogger(logger_name)
        if not any(
            isinstance(f, _DropRecords) and (f.filename, f.prefix) == (filename, prefix)
            for f in logger.filters
        ):
            logger.addFilter(_DropRecords(filename, prefix))


def write_config(config: Any, workdir: str | os.PathLike) -> Path:
    """Writes the run's config to `workdir/config.json` (atomically); returns its absolute path."""
    from jaxclip.atomic import write_json

    path = Path(workdir).resolve() / CONFIG_FILE
    config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    write_json(path, config_dict)
    return path


def summary(name: str, results: Any, workdir: str | os.PathLike) -> str:
    """What the console shows at the end of a run: the "At a glance" table of a study run
    (the report's rows) and the absolute path of the report (or of the workdir)."""
    lines = []
    if isinstance(results, dict) and "config" in results:
        from jaxclip.studies.runner import STUDIES, glance_text

        if any(k in STUDIES for k in results):
            table = glance_text(results)
            if table:
                lines.append(table)
    workdir = Path(workdir).resolve()
    report = workdir / "report.md"
    lines.append(f"{name}: report {report}" if report.exists() else f"{name}: wrote {workdir}")
    return "\n".join(lines)


def fail(message: str) -> NoReturn:
    """Prints `message` as one line on stderr and exits with code 2 (a user error)."""
    print(one_line(message), file=sys.stderr, flush=True)
    raise SystemExit(USER_ERROR_EXIT)


def _config_flag(argv: list[str]) -> str | None:
    """The value of the last --config in `argv` (`--config=X` or `--config X`; absl keeps the
    last), if any."""
    value = None
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a.startswith("--config="):
            value = a.split("=", 1)[1]
        elif a == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def _override_keys(argv: list[str]) -> Iterator[tuple[str, str]]:
    """(dotted key, argument) of every `--config.<key>[=value]` / `--noconfig.<key>` in argv."""
    for a in argv:
        if a == "--":
            return
        flag = a.lstrip("-")
        if not a.startswith("-") or not flag.startswith(("config.", "noconfig.")):
            continue
        name = flag.split("=", 1)[0].removeprefix("no")
        yield name.removeprefix("config."), a


def config_keys(config: Any, prefix: str = "") -> list[str]:
    """Every dotted field name of a ConfigDict (nested sections included), in its order."""
    keys = []
    for k, v in config.items():
        keys.append(prefix + k)
        if hasattr(v, "items") and callable(v.items):
            keys.extend(config_keys(v, prefix + k + "."))
    return keys


def _has_key(config: Any, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if not (hasattr(node, "keys") and part in node.keys()):
            return False
        node = node[part]
    return True


def precheck_variant(argv: list[str], name: str | None = None) -> None:
    """Exits with one line if --config names a bad variant or --config.<key> an unknown field.

    ml_collections' flag parser would report both inside tracebacks (a bad variant as a
    "Flags parsing error", an unknown key as three AttributeErrors) and without the valid keys.
    `name` is the entry point's name (its default config file when --config is not given).
    """
    value = _config_flag(argv)
    if value is None:
        if name is None:
            return
        value = os.fspath(REPO_CONFIGS / f"{name}.py")
    path, _, arg = value.partition(":")
    spec = importlib.util.spec_from_file_location("_jaxclip_config_check", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        fail(f"config error: --config={value!r}: no config file {path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        config = module.get_config(arg) if ":" in value else module.get_config()
    except ConfigError as e:
        fail(f"config error: {e}")
    keys = config_keys(config)
    for key, given in _override_keys(argv):
        if not _has_key(config, key):
            fail(
                f"config error: {given!r}: unknown config key {key!r}; valid keys: {', '.join(keys)}"
            )


def _is_secondary_process() -> bool:
    """True in processes other than 0 of a multi-process JAX run (they print no summary)."""
    jax = sys.modules.get("jax")
    return jax is not None and jax.process_count() > 1 and jax.process_index() != 0


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad value (e.g. --config.batch_size=abc) as one line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"flag error: {e}")


def run_and_report(run: Callable[[Any, str], dict], name: str, config: Any, workdir: str) -> Any:
    """What `main` does once the flags are parsed: writes the config to WORKDIR/config.json
    (one line on stdout says where), runs `run(config, workdir)` (its progress on stderr), then
    prints the summary (`summary`) on stdout. User errors end the program as the module
    docstring says.
    """
    quiet_third_party()
    try:
        check_writable(workdir, "--workdir")
        # stdout: a user error stays the one line on stderr.
        print(f"{name}: config in {write_config(config, workdir)}", flush=True)
        results = run(config, workdir)
    except ConfigError as e:  # one line, not a traceback: the message names the fix
        fail(f"config error: {e}")
    except UserError as e:
        fail(f"error: {e}")
    except OSError as e:
        line = user_oserror(e)
        if line is None:
            raise
        fail(f"error: {line}")
    if not _is_secondary_process():
        print(summary(name, results, workdir), flush=True)
    return results


def main(run: Callable[[Any, str], dict], name: str) -> None:
    """Defines --config / --workdir and runs `run(config, workdir)` under absl.

    User errors (see the module docstring) end the program with one line and exit code 2.
    See `run_and_report` for what the console shows.
    """
    quiet_third_party()
    precheck_variant(sys.argv, name)
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
            fail(f"unexpected arguments: {' '.join(argv[1:])}; flags are --config=, --workdir=")
        if not flags.FLAGS["verbosity"].present:
            # Warnings and errors only on stderr by default (`--verbosity=0` shows the INFO
            # logs: the cache folders, each study), so a user error is the one line there.
            logging.set_verbosity(logging.WARNING)
        run_and_report(run, name, config_flag.value, workdir_flag.value)

    app.run(_main, flags_parser=_parse_flags)
