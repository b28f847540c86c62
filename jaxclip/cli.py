"""The shared absl entry point: `python -m experiments.<name> --config=... --workdir=...`.

Each `experiments/<name>.py` defines `run(config, workdir) -> dict` and ends with
`if __name__ == "__main__": cli.main(run, "<name>")`. Flags, logging, the summary and the
error contract live here once, so the experiments stay thin.

Flags may come in any order: `--config.<field>=...` before `--config=...` works as after it
(`config_first` moves --config to the front before absl parses; ml_collections would stop at an
override that comes before the file defining it). `--help` (also `-h`, `--helpshort`) prints
the entry point's usage, the variants of its config file, the models (each with what it is) and
datasets, and every config field with its default, all read from the config file and the tables
(`help_text`); `--helpfull` is absl's list of every flag, its own included.

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
import textwrap
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


HELP_FLAGS = ("-h", "-help", "--help", "-helpshort", "--helpshort", "-?")


def config_first(argv: list[str]) -> list[str]:
    """`argv` with every `--config=X` / `--config X` moved right after the program name.

    ml_collections defines the `--config.<field>` flags when it parses `--config`, so absl
    rejects an override placed before it; the relative order of the --config flags (absl keeps
    the last) and of everything else is kept, and nothing after a `--` moves.
    """
    head, configs, rest = argv[:1], [], []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a.startswith(("--config=", "-config=")):
            configs.append(a)
        elif a in ("--config", "-config") and i + 1 < len(argv):
            configs.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(a)
        i += 1
    return head + configs + rest


def wants_help(argv: list[str]) -> bool:
    """Whether `argv` asks for the short help (before any `--`)."""
    for a in argv[1:]:
        if a == "--":
            return False
        if a in HELP_FLAGS:
            return True
    return False


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


def _load_config_file(value: str) -> tuple[Any, Any]:
    """(module, config) of a --config value "path[:variants]"; a bad path or variant exits with
    one line."""
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
    return module, config


def _short(value: Any, width: int = 72) -> str:
    text = repr(value.to_dict() if hasattr(value, "to_dict") else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _wrapped(head: str, items: list[str], indent: str = "      ") -> list[str]:
    return textwrap.wrap(
        head + ", ".join(items), width=100, subsequent_indent=indent, break_on_hyphens=False
    )


def _changes(base: Any, other: Any, limit: int = 8) -> str:
    """The fields whose value differs between two configs, as "field=value, ..."."""
    diffs = [
        f"{key}={_short(config_value(other, key), 40)}"
        for key in _leaves(other)
        if not _has_key(base, key) or config_value(base, key) != config_value(other, key)
    ]
    return ", ".join(diffs[:limit]) + (", ..." if len(diffs) > limit else "")


def _variant_lines(module: Any, spec: Any) -> list[str]:
    """The variant groups of `spec` (a `VariantSpec` recorded while `module.get_config` ran),
    with the name a value selects when it differs (`shapes128` = dataset shapes/128), and the
    fields each flag changes."""
    base = module.get_config()
    lines: list[str] = []
    if spec is not None:
        for group, values in spec.groups.items():
            items = []
            for v in values:
                try:
                    selected = module.get_config(v).get(group)
                except ConfigError:
                    selected = None
                same = not isinstance(selected, str) or selected == v
                items.append(v if same else f"{v} (= {selected})")
            default = spec.defaults.get(group, values[0])
            lines += _wrapped(f"  {group} (default {default}): ", items)
        for flag in spec.flags:
            lines += textwrap.wrap(
                f"  {flag}: sets {_changes(base, module.get_config(flag))}",
                width=100,
                subsequent_indent="      ",
            )
    return lines


def help_text(name: str, argv: list[str], doc: str | None = None) -> str:
    """`--help` of `python -m experiments.<name>`: usage, flags, the config file's variants, the
    model and dataset names, and every config field with its default.

    Everything listed is read from the config file (`--config` in `argv`, else
    configs/<name>.py) and the tables (`catalog.MODELS`, `datasets.DATASETS`), so it cannot
    drift from them; `doc` is the entry point's docstring.
    """
    from jaxclip.config_args import recording_variants
    from jaxclip.data.clip_benchmark import CLIP_BENCHMARK
    from jaxclip.data.datasets import DATASETS
    from jaxclip.models.catalog import MODELS

    default_file = f"configs/{name}.py"
    value = _config_flag(argv) or os.fspath(REPO_CONFIGS / f"{name}.py")
    with recording_variants() as specs:
        module, config = _load_config_file(value)
    spec = specs[0] if specs else None
    groups = spec.groups if spec is not None else {}
    example = (spec.flags or [v for vs in groups.values() for v in vs] or [""])[0] if spec else ""
    shown = _config_flag(argv) or default_file
    lines = [doc.strip(), ""] if doc and doc.strip() else []
    lines += [
        f"usage: python -m experiments.{name} [--config={default_file}[:variants]] "
        f"[--workdir=DIR] [--config.<field>=value ...]",
        "",
        "Flags (in any order):",
        f"  --config=FILE[:variants]  the config file (default {default_file}); variants after "
        "the colon, comma-separated",
        f"  --workdir=DIR             output folder (default runs/{name})",
        "  --config.<field>=value    change one field of the config (fields below)",
        "  --helpfull                also absl's own flags (logging, verbosity, ...)",
        "",
        f"Variants of {value.partition(':')[0] if _config_flag(argv) else default_file}"
        + (f", e.g. --config={default_file}:{example}:" if example else ": none"),
        *_variant_lines(module, spec),
    ]
    if set(MODELS) <= set(groups.get("model", ())):
        width = max(len(m) for m in MODELS)
        lines += [
            "",
            "Models (--config.model= or a model variant), jaxclip.models.catalog.MODELS:",
            *(f"  {m:<{width}}  {about}" for m, (about, _) in MODELS.items()),
            "  or a Hugging Face hub id (owner/name), an OpenCLIP name "
            "(ViT-B-32/laion2b_s34b_b79k), a local folder or a checkpoint file",
        ]
    if set(DATASETS) <= set(groups.get("dataset", ())):
        lines += [
            "",
            *_wrapped(
                "Datasets (--config.dataset=), jaxclip.data.DATASETS: ", list(DATASETS), "  "
            ),
            "  a config may follow a slash (shapes/128); "
            f"cb/<name> is one of the {len(CLIP_BENCHMARK)} CLIP_benchmark datasets, e.g. "
            f"{', '.join(f'cb/{n}' for n in list(CLIP_BENCHMARK)[:3])}",
        ]
    lines += ["", f"Config fields of {shown} with their defaults:"]
    lines += [f"  --config.{key}={_short(config_value(config, key))}" for key in _leaves(config)]
    return "\n".join(lines) + "\n"


def _leaves(config: Any) -> list[str]:
    """The dotted names of a config's values (not its sections): top-level fields first."""
    leaves = [k for k in config_keys(config) if not hasattr(config_value(config, k), "items")]
    return sorted(leaves, key=lambda k: "." in k)


def config_value(config: Any, dotted: str) -> Any:
    """The value of the dotted field `dotted` ("zero_shot.k_best") of a ConfigDict."""
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


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
    _, config = _load_config_file(value)
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


def define_flags(
    name: str, flag_values: flags.FlagValues = flags.FLAGS, argv: list[str] | None = None
) -> tuple[Any, Any]:
    """Defines --config (default configs/<name>.py) and --workdir (default runs/<name>) in
    `flag_values`; returns their flag holders. ml_collections reads the `--config.<field>`
    overrides from `argv` (None: sys.argv at parse time), not from what absl is given."""
    config_flag = config_flags.DEFINE_config_file(
        "config",
        os.fspath(REPO_CONFIGS / f"{name}.py"),
        f"Config file, e.g. configs/{name}.py:smoke (variants after the colon).",
        flag_values=flag_values,
        lock_config=True,
        sys_argv=argv,
    )
    workdir_flag = flags.DEFINE_string(
        "workdir",
        os.path.join("runs", name),
        "Output folder (results.json, report.md, plots).",
        flag_values=flag_values,
    )
    return config_flag, workdir_flag


def parse_args(name: str, argv: list[str]) -> tuple[Any, str]:
    """(config, workdir) of `python -m experiments.<name> argv[1:]`, parsed as `main` parses
    them (order-free, the same checks) into fresh flag values, running nothing. A bad flag,
    file, variant or field exits with one line (SystemExit 2)."""
    argv = config_first(argv)
    precheck_variant(argv, name)
    values = flags.FlagValues()
    config_flag, workdir_flag = define_flags(name, values, argv)
    try:
        rest = values(argv)
    except flags.Error as e:
        fail(f"flag error: {e}")
    if len(rest) > 1:
        fail(f"unexpected arguments: {' '.join(rest[1:])}; flags are --config=, --workdir=")
    return config_flag.value, workdir_flag.value


def main(run: Callable[[Any, str], dict], name: str) -> None:
    """Defines --config / --workdir and runs `run(config, workdir)` under absl.

    `--help` prints `help_text` and exits; flags may come in any order (`config_first`).
    User errors (see the module docstring) end the program with one line and exit code 2.
    See `run_and_report` for what the console shows.
    """
    quiet_third_party()
    argv = config_first(sys.argv)
    if wants_help(argv):
        print(help_text(name, argv, getattr(sys.modules.get("__main__"), "__doc__", None)))
        raise SystemExit(0)
    precheck_variant(argv, name)
    config_flag, workdir_flag = define_flags(name, argv=argv)

    def _main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected arguments: {' '.join(argv[1:])}; flags are --config=, --workdir=")
        if not flags.FLAGS["verbosity"].present:
            # Warnings and errors only on stderr by default (`--verbosity=0` shows the INFO
            # logs: the cache folders, each study), so a user error is the one line there.
            logging.set_verbosity(logging.WARNING)
        run_and_report(run, name, config_flag.value, workdir_flag.value)

    app.run(_main, argv=argv, flags_parser=_parse_flags)
