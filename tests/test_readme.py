"""README stays true: CI runs its install and test commands, and its Python example runs."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

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
    np.testing.assert_allclose(np.reshape(values, (2, 2)), _reference_cosines(folder), atol=2e-4)


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
