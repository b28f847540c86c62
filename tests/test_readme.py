"""README stays true: CI runs its install and test commands, and its Python example runs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_ci_runs_readme_install_and_test_commands():
    install = next(b for b in _blocks("bash") if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in install.splitlines() if line.strip()]
    assert commands[-1].startswith("pytest"), "the test command ends README's install block"
    for command in commands[1:]:  # the venv line differs only in that CI has its own steps
        assert command in ci, f".ci/run does not run README's {command!r}"
    ci_pytest = [line for line in ci if line.startswith("pytest")]
    assert ci_pytest == [commands[-1]], "CI must run exactly README's test command"


def test_python_example_runs_against_a_local_checkpoint(tiny_model, tmp_path):
    folder = tmp_path / "clip"
    tiny_model.save(folder)
    (example,) = _blocks("python")[:1]
    code = example.replace('"openai/clip-vit-base-patch32"', repr(str(folder)))
    assert code != example, "README's example no longer loads openai/clip-vit-base-patch32"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [r for r in out.stdout.splitlines() if r.strip()]
    values = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", " ".join(rows))]
    assert len(values) == 4 and all(-1.0 <= v <= 1.0 for v in values)
