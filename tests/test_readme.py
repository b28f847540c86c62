"""README stays true: CI runs its install and test commands, its Python example runs offline as
printed, and every experiment command it prints parses (config file, variants, fields, flags)."""

import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from jaxclip import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CLI_ENTRY_POINTS = sorted(
    p.stem for p in (ROOT / "experiments").glob("*.py") if "cli.main(run," in p.read_text()
)


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _lines(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_quick_start_is_install_then_main_job_then_tests_and_ci_runs_the_same():
    bash = _blocks("bash")
    install = next(b for b in bash if "pip install -e" in b)
    main_job = next(b for b in bash if _lines(b) == ["python -m experiments.dissect"])
    tests = next(b for b in bash if _lines(b)[0].startswith("pytest"))
    assert README.index(install) < README.index(main_job) < README.index(tests), (
        "README's quick start must install first, then run the main job, then the tests"
    )
    assert "repository root" in README[: README.index(install)]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = _lines(install)
    assert commands[0].startswith("python3 -m venv"), "the install block starts with the venv"
    ci_at = [ci.index(c) if c in ci else -1 for c in commands[1:]]  # CI makes its own venv
    missing = [c for c, i in zip(commands[1:], ci_at) if i < 0]
    assert not missing, f".ci/run does not run README's {missing}"
    assert ci_at == sorted(ci_at), ".ci/run runs README's install lines in another order"
    ci_pytest = [line for line in ci if line.startswith("pytest")]
    assert ci_pytest == _lines(tests), "CI must run exactly README's test command"
    assert "--index-url https://download.pytorch.org/whl/cpu" in README, "the CPU-only torch line"
    assert "--index-url" not in install, "CI installs what the install block says; keep it plain"


def test_python_example_runs_offline_as_printed(tmp_path, monkeypatch):
    """The first python block, executed unchanged in an empty folder: its printed cosines match
    transformers' PyTorch CLIP opened from the folder the example saves, and the model loaded
    back from that folder has exactly the parameters of the one that saved it."""
    (example,) = _blocks("python")[:1]
    assert 'jaxclip.load("tiny_random")' in example
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), namespace)
    values = [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", out.getvalue())]
    saved = tmp_path / "my_clip"
    assert (saved / "config.json").is_file() and (saved / "model.safetensors").is_file()
    np.testing.assert_allclose(np.reshape(values, (2, 2)), _reference_cosines(saved), atol=2e-4)
    from jaxclip.models.catalog import open_model

    reloaded = namespace["model"]  # the example ends by loading its saved folder back
    assert reloaded.name == str(saved.resolve())
    # The same parameters (hash of every tensor's bytes), compared without compiling again.
    assert reloaded.fingerprint == open_model("tiny_random").fingerprint


def _reference_cosines(folder: Path) -> np.ndarray:
    """The example's cosine matrix computed by transformers' PyTorch CLIP from the same folder."""
    import torch
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(folder).eval()
    images = np.random.default_rng(0).integers(0, 256, (2, 300, 400, 3), dtype=np.uint8)
    pixels = CLIPImageProcessor.from_pretrained(folder)(list(images), return_tensors="pt")
    tokens = CLIPTokenizer.from_pretrained(folder)(
        ["a photo of a cat", "a photo of a dog"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        img = model.get_image_features(**pixels).pooler_output.numpy().astype(np.float64)
        txt = model.get_text_features(**tokens).pooler_output.numpy().astype(np.float64)
    img /= np.linalg.norm(img, axis=-1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=-1, keepdims=True)
    return img @ txt.T


def _readme_commands() -> list[tuple[str, list[str]]]:
    """(entry point, arguments) of every `python -m experiments.X ...` in README's shell blocks
    and inline code, continuation lines joined, up to the end of the command (a comment, `&&`,
    `;`, a closing quote or backtick)."""
    text = README.replace("\\\n", " ")
    commands = []
    for m in re.finditer(r"python -m experiments\.(\w+)([^\n`#\"&;|]*)", text):
        commands.append((m.group(1), shlex.split(m.group(2))))
    return commands


README_COMMANDS = _readme_commands()


def test_readme_prints_the_commands_it_should():
    names = {name for name, _ in README_COMMANDS}
    assert {"dissect", "extract"} <= names, names
    assert any(args for name, args in README_COMMANDS if name == "extract")


@pytest.mark.parametrize(
    "name, args", README_COMMANDS, ids=[f"{n}:{' '.join(a)}"[:80] for n, a in README_COMMANDS]
)
def test_readme_command_parses(name, args, monkeypatch):
    """Config file, variants, fields and flags of the command load as the entry point would load
    them (the same parser, in fresh flag values); nothing runs."""
    monkeypatch.chdir(ROOT)
    assert (ROOT / "experiments" / f"{name}.py").is_file(), f"no experiments/{name}.py"
    argv = [f"experiments.{name}", *args]
    if name in CLI_ENTRY_POINTS and cli.wants_help(argv):
        assert "Config fields of" in cli.help_text(name, argv)
        return
    if name in CLI_ENTRY_POINTS:
        config, workdir = cli.parse_args(name, argv)
        for arg in args:
            if arg.startswith("--config."):
                key, _, value = arg.removeprefix("--config.").partition("=")
                assert str(cli.config_value(config, key)) == value, (
                    f"{arg} did not reach the config"
                )
        assert workdir
        return
    # Entry points with their own absl flags (experiments/report.py): every flag is one the
    # module defines, and its value parses.
    from absl import flags

    spec = importlib.util.find_spec(f"experiments.{name}")
    module_name = spec.name
    importlib.import_module(module_name)
    known = {f.name: f for f in flags.FLAGS.get_flags_for_module(module_name)}
    for arg in args:
        flag, _, value = arg.lstrip("-").partition("=")
        assert flag in known, f"experiments.{name} has no flag --{flag}; it has {sorted(known)}"
        known[flag].parser.parse(value)


def test_readme_config_fields_exist():
    """Every `--config.<field>=` README names in inline code is a field of some config file."""
    fields = set(re.findall(r"--config\.([\w.]+)=", README))
    assert {"model", "dataset", "data_path", "distributed"} <= fields
    keys: set[str] = set()
    for path in sorted((ROOT / "configs").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_readme_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "get_config"):
            keys.update(cli.config_keys(module.get_config()))
    assert not fields - keys, f"README names config fields no config has: {fields - keys}"
