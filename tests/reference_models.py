"""The PyTorch reference models that tests and benchmarks compare jaxclip against, in one place.

  OpenAI's `clip/model.py` (ViT and ModifiedResNet CLIP), imported by file path;
  OpenCLIP's `open_clip.model` / `open_clip.pretrained` and timm's `timm.models.convnext`,
      imported without torchvision (`reference_modules`);
  transformers' `CLIPModel` built from a config dict (`hf_clip_model`), randomly initialised or
      with given weights.

Only tests/ and the benchmarks in experiments/ use this module: jaxclip itself never imports torch, open_clip or
timm. Importing it imports neither torch nor JAX (each function imports what it needs), so the
benchmark's reference process, which must not import JAX, can use it too.

torchvision is not installed and both open_clip's and timm's package `__init__` import it, so
`reference_modules` imports the needed submodules under "fake parent packages" (a module object
named `open_clip` / `timm` / `timm.data` / `timm.models` whose __path__ is the installed folder,
so the real __init__ never runs), with a three-module torchvision stub standing in only while
they import: `torchvision.ops.misc.FrozenBatchNorm2d`, the one name that chain touches (timm's
norm layers and open_clip's utils import it to *freeze* BatchNorm, which nothing here does; using
the stub raises). transformers is imported first so that its "is torchvision available" answer
is made without the stub.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# The trunk of `jaxclip.models.variants.tiny_convnext` (timm names no such size).
TINY_CONVNEXT = dict(depths=(1, 1, 1, 1), dims=(16, 32, 48, 64))


def package_dir(name: str) -> Path:
    """The folder of the installed top-level package `name`, found without importing it (or
    the folder of the package already in sys.modules, e.g. a fake parent package)."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__path__", None):
        return Path(next(iter(module.__path__)))
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name!r} is not installed")
    return Path(spec.submodule_search_locations[0])


def module_from_file(name: str, path: str | Path) -> types.ModuleType:
    """Executes the Python file `path` as a module called `name` (not put in sys.modules), so
    that its package's `__init__` never runs."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def openai_clip_module() -> types.ModuleType:
    """OpenAI's `clip/model.py` (its package `__init__` needs torchvision), once per process."""
    return module_from_file("openai_clip_model", package_dir("clip") / "model.py")


def tiny_openai_clip(**sizes: int):
    """A tiny OpenAI-format CLIP (OpenAI's clip/model.py `CLIP(**sizes)`) in eval mode, seeded
    (torch seed 0), with LayerNorms and biases randomised too (they start at 1 / 0)."""
    import torch

    torch.manual_seed(0)
    model = openai_clip_module().CLIP(**sizes).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or "bias" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


@functools.cache
def open_clip_metadata() -> types.ModuleType:
    """OpenCLIP's `zero_shot_metadata.py` (ImageNet class names and the OpenAI templates)."""
    return module_from_file(
        "open_clip_zero_shot_metadata", package_dir("open_clip") / "zero_shot_metadata.py"
    )


@contextlib.contextmanager
def _torchvision_stub():
    class FrozenBatchNorm2d:  # only used to freeze BatchNorm layers (never here)
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision stub: FrozenBatchNorm2d is not available")

    names = ("torchvision", "torchvision.ops", "torchvision.ops.misc")
    for name in names:
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
    sys.modules["torchvision.ops.misc"].FrozenBatchNorm2d = FrozenBatchNorm2d
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)


def _fake_package(name: str, folder: Path) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    module.__package__ = name
    sys.modules[name] = module
    return module


def reference_modules() -> types.SimpleNamespace:
    """OpenAI's clip/model.py (`openai`), `open_clip.model` (`oc_model`), `open_clip.pretrained`
    (`oc_pretrained`), the fake `timm` package (`timm`, with `create_model`) and
    `timm.models.convnext` (`convnext`), all imported without torchvision."""
    import transformers  # noqa: F401  (decides that torchvision is absent, before the stub)

    if "open_clip.model" not in sys.modules:
        timm_dir, open_clip_dir = package_dir("timm"), package_dir("open_clip")
        with _torchvision_stub():
            timm = _fake_package("timm", timm_dir)
            timm.__version__ = importlib.import_module("timm.version").__version__
            data = _fake_package("timm.data", timm_dir / "data")
            constants = importlib.import_module("timm.data.constants")
            data.__dict__.update({k: v for k, v in vars(constants).items() if k.isupper()})
            _fake_package("timm.models", timm_dir / "models")
            importlib.import_module("timm.models.convnext")
            timm.create_model = importlib.import_module("timm.models._factory").create_model
            _fake_package("open_clip", open_clip_dir)
            importlib.import_module("open_clip.model")
            importlib.import_module("open_clip.pretrained")
    left = sorted(k for k in sys.modules if k.startswith("torchvision"))
    if left:
        raise RuntimeError(f"the torchvision stub was left in sys.modules: {left}")
    return types.SimpleNamespace(
        openai=openai_clip_module(),
        oc_model=sys.modules["open_clip.model"],
        oc_pretrained=sys.modules["open_clip.pretrained"],
        timm=sys.modules["timm"],
        convnext=sys.modules["timm.models.convnext"],
    )


def tiny_convnext_factory(refs: types.SimpleNamespace) -> Callable[..., Any]:
    """A `timm.create_model` for open_clip's TimmModel that builds `convnext_tiny` with the trunk
    of `variants.tiny_convnext` whatever name it is given (set it as `refs.timm.create_model`)."""
    return lambda name, pretrained=False, **kw: refs.convnext._create_convnext(
        "convnext_tiny", **TINY_CONVNEXT, **kw
    )


def torch_state_dict(model, *, copy: bool = True) -> dict[str, np.ndarray]:
    """A torch module's state dict as NumPy arrays (copies, unless `copy=False`: then views of
    the tensors' memory)."""
    out = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return {k: v.copy() for k, v in out.items()} if copy else out


def torch_encode(model, x: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`encode_image` of NHWC pixels and `encode_text` of token ids, for an OpenAI / OpenCLIP
    torch CLIP, without gradients."""
    import torch

    with torch.no_grad():
        img = model.encode_image(torch.tensor(x.transpose(0, 3, 1, 2))).numpy()
        txt = model.encode_text(torch.tensor(ids, dtype=torch.long)).numpy()
    return img, txt


def hf_clip_model(
    hf_config: dict[str, Any],
    state_dict: dict[str, np.ndarray] | None = None,
    *,
    attn_implementation: str | None = "sdpa",
):
    """transformers' PyTorch `CLIPModel` for a config dict (`variants.to_hf_config`), in eval
    mode: random weights from torch's current seed, or `state_dict` (NumPy arrays, e.g. from
    `convert.params_to_hf_torch`; only `position_ids` buffers may be missing from it).
    `attn_implementation=None` keeps transformers' default attention."""
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(**hf_config)
    if attn_implementation is not None:
        cfg._attn_implementation = attn_implementation
    model = CLIPModel(cfg).eval()
    if state_dict is not None:
        import torch

        sd = {k: torch.from_numpy(v) for k, v in state_dict.items()}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(f"torch state dict mismatch: missing {missing}, extra {unexpected}")
    return model
