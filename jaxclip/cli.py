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


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad value (e.g. --config.batch_size=abc) as one line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"flag error: {e}")


def main(run: Callable[[Any, str], dict], name: str) -> None:
    """Defines --config / --workdir and runs `run(config, workdir)` under absl.

    User errors (see the module docstring) end the program with one line and exit code 2.
    """
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
            # logs: the config, the cache folders), so a user error is the one line there.
            logging.set_verbosity(logging.WARNING)
        workdir = workdir_flag.value
        try:
            check_writable(workdir, "--workdir")
            logging.info("config:\n%s", config_flag.value)
            run(config_flag.value, workdir)
        except ConfigError as e:  # one line, not a traceback: the message names the fix
            fail(f"config error: {e}")
        except UserError as e:
            fail(f"error: {e}")
        except OSError as e:
            line = user_oserror(e)
            if line is None:
                raise
            fail(f"error: {line}")
        report = Path(workdir) / "report.md"
        print(f"{name}: wrote {report if report.exists() else workdir}", file=sys.stderr)

    app.run(_main, flags_parser=_parse_flags)
