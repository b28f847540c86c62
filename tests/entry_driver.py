"""Runs many `python -m <entry point> ARGS` command lines in one process, each in a forked child.

`python -m tests.entry_driver CASES.json OUT.json`: CASES.json is a list of
`{"name": ..., "module": "experiments.extract", "args": [...]}`. The driver imports the entry
points' libraries once (JAX, TFDS, transformers, jaxclip; no JAX backend is started), then for
each case forks a child that runs the module as `python -m` does (`runpy.run_module(...,
run_name="__main__", alter_sys=True)`), its stdout and stderr going to files at the file
descriptor level, and records the exit code, stdout and stderr in OUT.json. The child is the real
entry point with the import paid once; what the imports themselves print goes to the driver's
own stderr, which the caller checks separately (tests/test_reliability.py also runs a few cases
as real subprocesses).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
from pathlib import Path

PRELOAD = (
    "absl.app",
    "ml_collections.config_flags",
    "jax",
    "jax.numpy",
    "tensorflow_datasets",
    "transformers",
    "jaxclip.cli",
    "jaxclip.data.datasets",
    "jaxclip.models.catalog",
    "jaxclip.models.load",
    "jaxclip.features.job",
    "jaxclip.train",
    "experiments.models",
)


def _child(module: str, args: list[str], out: Path, err: Path) -> None:
    """In the forked child: stdout/stderr to files, run the module as __main__, exit with its
    code (an uncaught exception prints its traceback and exits 1, as the interpreter does)."""
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
    code = 0
    try:
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main(cases_path: str, out_path: str) -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    cases = json.loads(Path(cases_path).read_text())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            out, err = Path(tmp, f"{i}.out"), Path(tmp, f"{i}.err")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(case["module"], list(case["args"]), out, err)
            _, status = os.waitpid(pid, 0)
            results.append(
                {
                    "name": case["name"],
                    "returncode": os.waitstatus_to_exitcode(status),
                    "stdout": out.read_text(errors="replace") if out.exists() else "",
                    "stderr": err.read_text(errors="replace") if err.exists() else "",
                }
            )
    Path(out_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
