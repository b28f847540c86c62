"""`jaxclip.load`: open a CLIP checkpoint as Flax params with a tokenizer and encoders; `save`.

Accepted `name_or_path` (tried in this order):

1. a local folder: a transformers `CLIPModel` folder (config.json + model.safetensors, sharded
   model.safetensors.index.json, flax_model.msgpack, or pytorch_model.bin with
   allow_pickle=True), or an OpenCLIP hub folder (open_clip_config.json +
   open_clip_model.safetensors / open_clip_pytorch_model.safetensors /
   open_clip_pytorch_model.bin; a config.json that is not a CLIPModel config, e.g. timm's in
   the dual-use `timm/*` repos, is ignored);
2. a local file: an OpenAI / OpenCLIP state dict (.safetensors; .pt/.pth/.bin only with
   allow_pickle=True, read with `torch.load(weights_only=True)`, or, for OpenAI's TorchScript
   archives, `torch.jit.load(...).state_dict()`), or a transformers weights file beside its
   config.json;
3. a short name of the catalog (`jaxclip.models.catalog.MODELS`: "tiny_random", "mini", ...),
   opened as `catalog.open_model` opens it;
4. an OpenCLIP pretrained name ("ViT-B-32/laion2b_s34b_b79k", "RN50/openai", "convnext_base/
   laion400m_s13b_b51k", ... see `jaxclip.models.open_clip.PRETRAINED`; also "open_clip:<name>"),
   an alias (`ViT-B/32`, `vit_b32`, `RN50`, ... see HUB_ALIASES) or a Hugging Face hub id
   ("hf-hub:" prefix accepted), fetched with `huggingface_hub.snapshot_download` (only the
   weights format it will read, plus metadata; OpenCLIP files first when the repo has them).
   When the hub cannot be reached (HF_HUB_OFFLINE, or no connection within about a second),
   only the local hub cache is read, and a repo not in it fails at once with one line.

Image towers: ViT, OpenAI's ModifiedResNet (RN50, RN101, RN50x4, ...) and OpenCLIP's timm
ConvNeXt, read from the weights' shapes (`convert.infer_openai_config`). Options the weights do
not hold come from `open_clip_config.json` (`jaxclip.models.open_clip.parse_config`: activation,
heads, LayerNorm eps, text pooling and mask, preprocessing mean/std), else from the
`open_clip.PRETRAINED` entry of a named or known hub checkpoint; OpenCLIP options jaxclip does not
implement are refused with one error naming them.

Preprocessing follows the checkpoint's family (`PreprocessConfig.rule`): OpenAI / OpenCLIP
state dicts (OpenAI `.pt` files, OpenCLIP files and folders, OpenCLIP pretrained names) get
"torchvision", the transform their own code applies (OpenAI's `clip._transform`); transformers
folders and hub ids keep "hf", the `CLIPImageProcessor` rule (see `jaxclip.data.preprocess`).

Pickle files can run code when read, so they are refused unless `allow_pickle=True`.
The MLP activation is not stored in OpenAI / OpenCLIP weights: it comes from `hidden_act`, else
the OpenCLIP config / pretrained entry, else "quick_gelu" (OpenAI's) with a warning.

`save(folder, config, params, tokenizer)` writes, for ViT models transformers can express,
config.json + model.safetensors (HF PyTorch names) + tokenizer files + preprocessor_config.json:
a folder that `load` and transformers' `CLIPModel.from_pretrained` both open. Other models
(ResNet / ConvNeXt image towers, text towers with non-EOS pooling or no causal mask), or
`layout="open_clip"`, get an OpenCLIP folder instead: open_clip_config.json +
open_clip_model.safetensors (OpenAI/OpenCLIP names) + tokenizer files: what `load` and OpenCLIP's
`create_model("local-dir:...")` read (transformers has no ResNet/ConvNeXt CLIPModel; the tests
build OpenCLIP's `CLIP(**model_cfg)` from it and load the weights with strict=True).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxclip import atomic, hub
from jaxclip.data.preprocess import PreprocessConfig, preprocess_device, preprocess_host_batch
from jaxclip.errors import UserFileNotFoundError, UserPermissionError, UserValueError, one_line
from jaxclip.models import convert, convert_siglip
from jaxclip.models import open_clip as oc
from jaxclip.models.clip import CLIP
from jaxclip.models.decompose import Decomposition, decompose_batched
from jaxclip.models.siglip import Siglip
from jaxclip.models.siglip_text import SiglipTextTokenizer
from jaxclip.models.tokenizer import EOT_ID, OPENAI_PAD_ID, Tokenizer, trim_to_eos
from jaxclip.models.variants import (
    CLIPConfig,
    ConvNeXtConfig,
    SiglipConfig,
    from_hf_config,
    from_hf_siglip_config,
    hf_incompatibility,
    to_hf_config,
    to_hf_siglip_config,
)

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
PREPROCESS_MODES = ("host", "device")
HUB_ALIASES = {
    "ViT-B/32": "openai/clip-vit-base-patch32",
    "ViT-B/16": "openai/clip-vit-base-patch16",
    "ViT-L/14": "openai/clip-vit-large-patch14",
    "ViT-L/14@336px": "openai/clip-vit-large-patch14-336",
    "vit_b32": "openai/clip-vit-base-patch32",
    "vit_b16": "openai/clip-vit-base-patch16",
    "vit_l14": "openai/clip-vit-large-patch14",
    "vit_l14_336": "openai/clip-vit-large-patch14-336",
    # OpenAI's ResNet CLIPs: OpenCLIP names of their hub copies (timm/resnet*_clip.openai).
    "RN50": "RN50/openai",
    "RN101": "RN101/openai",
    "RN50x4": "RN50x4/openai",
    "RN50x16": "RN50x16/openai",
    "RN50x64": "RN50x64/openai",
    "rn50": "RN50/openai",
    "siglip_b16": "google/siglip-base-patch16-224",
    "siglip_b16_256": "google/siglip-base-patch16-256",
    "siglip_so400m14_384": "google/siglip-so400m-patch14-384",
    "siglip2_b16": "google/siglip2-base-patch16-224",
}
SAVE_LAYOUTS = ("auto", "transformers", "open_clip")
_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_META = [
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "open_clip_config.json",
    "spiece.model",  # SigLIP's SentencePiece model (SiglipTokenizer)
    "tokenizer.model",  # SigLIP 2's Gemma SentencePiece model
]


# --- the loaded model ----------------------------------------------------------------------------


def _bucket(n: int, batch_size: int) -> int:
    """Fixed batch shape: batch_size, or the next power of two >= n when n is smaller."""
    if n >= batch_size:
        return batch_size
    return min(batch_size, 1 << max(0, (n - 1).bit_length()))


def _run_batched(
    fn: Callable[[np.ndarray], jax.Array], x: np.ndarray, batch_size: int, out_dim: int
) -> np.ndarray:
    """Applies fn to fixed-shape chunks of x (the last one zero-padded); returns (N, out_dim)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be positive")
    n = len(x)
    if n == 0:
        return np.zeros((0, out_dim), np.float32)
    b = _bucket(n, batch_size)
    outs = []
    for start in range(0, n, b):
        chunk = x[start : start + b]
        if len(chunk) < b:
            pad = np.zeros((b - len(chunk), *chunk.shape[1:]), chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        outs.append(fn(chunk))
    out = np.concatenate([np.asarray(o, np.float32) for o in outs])
    return out[:n]


@dataclasses.dataclass(eq=False)
class LoadedCLIP:
    """A CLIP or SigLIP model ready to encode: module, params, tokenizer and preprocessing.

    Attributes:
      module: the Flax `CLIP`, or `Siglip` for a `SiglipConfig` (compute dtype = `dtype`,
        float32 params).
      params: the parameter tree in HF Flax layout (no outer {"params": ...}), on device.
      tokenizer: `Tokenizer` (texts -> int32 (N, 77)), or `SiglipTextTokenizer` (N, 64) for
        SigLIP; None when none is known (then only `encode_token_ids` encodes text).
      config: the `CLIPConfig` or `SiglipConfig`.
      name: the hub id, or the resolved local path (`catalog.open_model` names models trained
        here by their catalog name and keeps a local path as given: results.json and cache
        keys then hold no path of this machine).
      preprocess: the `PreprocessConfig` (image size, mean, std, and the rule of the
        checkpoint's family: "torchvision" for OpenAI / OpenCLIP files and folders, "hf" for
        transformers folders and SigLIP).
      dtype: compute dtype name, "float32" or "bfloat16".
    """

    module: CLIP | Siglip
    params: dict[str, Any]
    tokenizer: Tokenizer | SiglipTextTokenizer | None
    config: CLIPConfig | SiglipConfig
    name: str
    preprocess: PreprocessConfig
    dtype: str = "float32"

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 hex of every parameter (path, dtype, shape, bytes) in sorted path order."""
        h = hashlib.sha256()
        for path, x in sorted(convert.flatten(self.params).items()):
            a = np.array(x, order="C")
            h.update("/".join(path).encode())
            h.update(f"|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    # Jitted apply functions, built once per object.
    @functools.cached_property
    def _image_fn(self):
        return jax.jit(lambda p, x: self.module.apply({"params": p}, x, method="encode_image")[0])

    @functools.cached_property
    def _text_fn(self):
        return jax.jit(
            lambda p, ids: self.module.apply({"params": p}, ids, method="encode_text")[0]
        )

    @functools.cached_property
    def _device_image_fn(self):
        cfg = self.preprocess

        def fn(p, images):
            pixels = preprocess_device(images, cfg)
            return self.module.apply({"params": p}, pixels, method="encode_image")[0]

        return jax.jit(fn)

    def encode_pixels(self, pixels: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """float (N, S, S, 3) normalised NHWC pixels -> float32 (N, D) raw image embeddings."""
        pixels = np.asarray(pixels)
        s = self.config.vision.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (s, s, 3):
            raise ValueError(f"pixels must be (N, {s}, {s}, 3) NHWC; got shape {pixels.shape}")
        if not np.issubdtype(pixels.dtype, np.floating):
            raise TypeError(
                f"encode_pixels expects normalised float pixels, got {pixels.dtype}; "
                "use encode_image for uint8 images"
            )
        pixels = pixels.astype(np.float32, copy=False)
        fn = lambda x: self._image_fn(self.params, x)
        return _run_batched(fn, pixels, batch_size, self.config.projection_dim)

    def encode_image(
        self, images: Any, *, batch_size: int = 256, preprocess: str = "host"
    ) -> np.ndarray:
        """uint8 images -> float32 (N, D) raw image embeddings, CLIP preprocessing applied.

        Args:
          images: uint8 (N, H, W, 3) array; with preprocess="host" also a sequence of images
            of any sizes (uint8 HWC / HW arrays or PIL images, converted to RGB).
          batch_size: images per jitted call (the last batch is zero-padded).
          preprocess: "host" (PIL, exactly CLIPImageProcessor, or OpenAI's transform when
            `self.preprocess.rule` is "torchvision") or "device" (jitted resize, bit-identical
            to "host" by construction for RGB images, see jaxclip.data.preprocess).
        """
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(
                f"preprocess={preprocess!r} is not valid; choose one of {PREPROCESS_MODES}"
            )
        d = self.config.projection_dim
        if preprocess == "device":
            images = np.asarray(images)
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                raise ValueError(
                    "preprocess='device' needs a uint8 (N, H, W, 3) array; got "
                    f"{images.dtype} {images.shape}"
                )
            fn = lambda x: self._device_image_fn(self.params, x)
            return _run_batched(fn, images, batch_size, d)
        if isinstance(images, np.ndarray) and (images.ndim != 4 or images.dtype != np.uint8):
            raise ValueError(
                f"images must be uint8 (N, H, W, C) or a list of images; got {images.dtype} "
                f"{images.shape}"
            )
        n = len(images)
        if n == 0:
            return np.zeros((0, d), np.float32)
        b = _bucket(n, batch_size)
        outs = []
        for start in range(0, n, b):
            pixels = preprocess_host_batch(images[start : start + b], self.preprocess)
            outs.append(self.encode_pixels(pixels, batch_size=b))
        return np.concatenate(outs)

    def decompose_pixels(
        self,
        pixels: np.ndarray,
        *,
        directions: np.ndarray | None = None,
        batch_size: int = 64,
        devices: Sequence[jax.Device] | None = None,
    ) -> Decomposition:
        """Normalised float NHWC pixels -> `Decomposition` of their image embeddings into heads,
        MLPs, embedding path and bias (ViT towers only; `jaxclip.models.decompose`), data-parallel
        over `devices` (default: this process's)."""
        return decompose_batched(
            self.params,
            self.config,
            pixels,
            directions=directions,
            batch_size=batch_size,
            devices=devices,
        )

    def decompose_image(
        self,
        images: Any,
        *,
        directions: np.ndarray | None = None,
        batch_size: int = 64,
        preprocess: str = "host",
        devices: Sequence[jax.Device] | None = None,
    ) -> Decomposition:
        """uint8 images (as `encode_image` takes them) -> `Decomposition` (`decompose_pixels`)."""
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(
                f"preprocess={preprocess!r} is not valid; choose one of {PREPROCESS_MODES}"
            )
        if preprocess == "device":
            cfg = self.preprocess
            pixels = np.asarray(jax.jit(lambda x: preprocess_device(x, cfg))(np.asarray(images)))
        else:
            pixels = preprocess_host_batch(images, self.preprocess)
        return self.decompose_pixels(
            pixels, directions=directions, batch_size=batch_size, devices=devices
        )

    def token_ids(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids int32 (N, T) for the text tower, T <= context_length.

        With a causal text tower that pools at the first EOS (OpenAI CLIP and most OpenCLIP
        models), positions after the batch's last EOS cannot reach an embedding, so they are
        cut (T rounded up to a multiple of 8): exact, and several times faster for prompts.
        """
        if self.tokenizer is None:
            raise ValueError(
                f"{self.name} has no tokenizer; pass token ids to encode_token_ids instead"
            )
        ids = self.tokenizer(texts)
        vocab = self.config.text.vocab_size
        if ids.size and int(ids.max()) >= vocab:
            raise ValueError(
                f"tokenizer produced id {int(ids.max())} outside the model's vocabulary "
                f"({vocab}); the tokenizer does not belong to this model"
            )
        text = self.config.text
        if ids.size and text.causal and text.pool_type == "eos":
            ids = trim_to_eos(ids, self.tokenizer.eos_token_id, multiple=8)
        return np.asarray(ids, np.int32)

    def encode_text(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Strings -> float32 (N, D) raw text embeddings (tokenized by `token_ids`)."""
        return self.encode_token_ids(self.token_ids(texts), batch_size=batch_size)

    def encode_token_ids(self, ids: Any, *, batch_size: int = 256) -> np.ndarray:
        """int (N, L) token ids -> float32 (N, D) raw text embeddings, no tokenizer involved.

        L <= context_length; ids must lie in [0, vocab_size). CLIP pools at each row's first
        EOS; SigLIP pools at position L - 1 and was trained on L = 64 (pad to it).
        """
        ids = np.asarray(ids)
        t_max, vocab = self.config.text.context_length, self.config.text.vocab_size
        if ids.ndim != 2 or not 0 < ids.shape[1] <= t_max:
            raise ValueError(f"ids must be int (N, L) with 0 < L <= {t_max}; got shape {ids.shape}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids must be integers; got dtype {ids.dtype}")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {vocab})")
        ids = ids.astype(np.int32, copy=False)
        fn = lambda x: self._text_fn(self.params, x)
        return _run_batched(fn, ids, batch_size, self.config.projection_dim)

    def save(self, folder: str | os.PathLike, *, layout: str = "auto") -> None:
        """Writes a transformers or OpenCLIP folder (see `save`)."""
        save(folder, self.config, self.params, self.tokenizer, self.preprocess, layout=layout)

    def __repr__(self) -> str:
        return (
            f"LoadedCLIP(name={self.name!r}, dtype={self.dtype}, image_size="
            f"{self.config.vision.image_size}, projection_dim={self.config.projection_dim})"
        )


def from_params(
    config: CLIPConfig,
    params: Mapping[str, Any],
    *,
    tokenizer: Tokenizer | None = None,
    preprocess: PreprocessConfig | None = None,
    dtype: str = "float32",
    name: str = "<in memory>",
) -> LoadedCLIP:
    """Wraps a config and a param tree (e.g. freshly trained) as a LoadedCLIP.

    A `SiglipConfig` gives a `Siglip` module with SigLIP's preprocessing (no crop, mean = std =
    0.5) and the given tokenizer (None: text only through `encode_token_ids`).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not valid; choose one of {list(DTYPES)}")
    if isinstance(config, SiglipConfig):
        checked = convert_siglip.check_params(params, config, source=name)
        return LoadedCLIP(
            module=Siglip(config, dtype=DTYPES[dtype], param_dtype=jnp.float32),
            params=jax.device_put(checked),
            tokenizer=tokenizer,
            config=config,
            name=name,
            preprocess=preprocess or siglip_preprocess(config.vision.image_size),
            dtype=dtype,
        )
    checked = convert.check_params(params, config, source=name)
    return LoadedCLIP(
        module=CLIP(config, dtype=DTYPES[dtype], param_dtype=jnp.float32),
        params=jax.device_put(checked),
        tokenizer=tokenizer or Tokenizer.openai(config.text.context_length, pad_token_id=EOT_ID),
        config=config,
        name=name,
        preprocess=preprocess or PreprocessConfig(image_size=config.vision.image_size),
        dtype=dtype,
    )


# --- reading files ------------------------------------------------------------------------------


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    out: dict[str, np.ndarray] = {}
    try:
        with safe_open(str(path), framework="numpy") as f:
            for k in f.keys():
                out[k] = f.get_tensor(k)
        return out
    except (TypeError, ValueError) as e:  # bfloat16 has no numpy dtype: read through JAX.
        if "bf16" not in str(e).lower() and "bfloat16" not in str(e).lower():
            raise
    with safe_open(str(path), framework="flax") as f:
        return {k: np.asarray(f.get_tensor(k)).astype(np.float32) for k in f.keys()}


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def _read_pickle(path: Path, allow_pickle: bool) -> dict[str, np.ndarray]:
    if not allow_pickle:
        raise UserPermissionError(
            f"{path} is a pickle file ({path.suffix}); reading it can run arbitrary code. "
            "Pass allow_pickle=True if you trust it, or convert it to .safetensors"
        )
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a test dependency
        raise ImportError(f"reading {path} needs PyTorch (pip install torch)") from e
    if _is_torchscript(path):
        # OpenAI's released .pt files are TorchScript archives: weights_only cannot read them.
        sd = torch.jit.load(str(path), map_location="cpu").state_dict()
    else:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
        sd = convert.unwrap_state_dict(sd)
    return {
        k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
        for k, v in sd.items()
        if isinstance(v, torch.Tensor)
    }


def _read_weights(path: Path, allow_pickle: bool) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix in _PICKLE_SUFFIXES:
        return _read_pickle(path, allow_pickle)
    raise ValueError(
        f"cannot read weights file {path}: expected .safetensors, .msgpack, or "
        f"{'/'.join(_PICKLE_SUFFIXES)} (with allow_pickle=True)"
    )


def _read_msgpack(path: Path) -> dict[str, Any]:
    from flax.serialization import msgpack_restore

    return msgpack_restore(path.read_bytes())


def _preprocess_from_folder(folder: Path, config: CLIPConfig) -> PreprocessConfig:
    default = PreprocessConfig(image_size=config.vision.image_size)
    f = folder / "preprocessor_config.json"
    if not f.is_file():
        return default
    d = json.loads(f.read_text())
    crop = d.get("crop_size", config.vision.image_size)
    size = crop.get("height") if isinstance(crop, Mapping) else crop
    short = d.get("size")
    short = short.get("shortest_edge") if isinstance(short, Mapping) else short
    if short is not None and size is not None and short != size:
        warnings.warn(
            f"{f}: resize to {short} then crop {size} differs from CLIP's resize-to-crop; "
            f"jaxclip resizes the shortest side to {size}",
            stacklevel=3,
        )
    return PreprocessConfig(
        image_size=int(size or config.vision.image_size),
        mean=tuple(d.get("image_mean", default.mean)),
        std=tuple(d.get("image_std", default.std)),
    )


def _read_open_clip_config(folder: Path) -> dict[str, Any] | None:
    f = folder / oc.CONFIG_NAME
    return json.loads(f.read_text()) if f.is_file() else None


def _from_openai_state_dict(
    sd: Mapping[str, np.ndarray],
    path: Path,
    hidden_act: str | None,
    open_clip_config: Mapping[str, Any] | None = None,
    pretrained: oc.Pretrained | None = None,
) -> tuple[CLIPConfig, dict[str, Any], PreprocessConfig]:
    """OpenAI / OpenCLIP weights + optional OpenCLIP config / pretrained entry -> our model."""
    if open_clip_config is None:
        open_clip_config = _read_open_clip_config(path.parent)
    opts = None
    if open_clip_config is not None:
        opts = oc.parse_config(open_clip_config, source=f"{path.parent / oc.CONFIG_NAME}")
    act = hidden_act
    if act is None and pretrained is not None:
        quick = pretrained.quick_gelu or (opts is not None and opts.act == "quick_gelu")
        act = "quick_gelu" if quick else "gelu"
    if act is None and opts is not None:
        act = opts.act
    if act is None:
        act = "quick_gelu"
        lower = path.name.lower()
        known_openai = "quickgelu" in lower or "openai" in lower or _is_torchscript_file(path)
        if not known_openai:
            warnings.warn(
                f"{path}: OpenAI/OpenCLIP weights do not store their MLP activation; assuming "
                "'quick_gelu' (OpenAI models, OpenCLIP *-quickgelu). Pass hidden_act='gelu' for "
                "OpenCLIP models trained with GELU (e.g. the LAION ones)",
                stacklevel=3,
            )
    sd = convert.unwrap_state_dict(sd)
    config = convert.infer_openai_config(
        sd,
        act=act,
        head_width=opts.vision_head_width if opts else 64,
        text_heads=opts.text_heads if opts else None,
        image_size=opts.image_size if opts else None,
        source=str(path),
    )
    if opts is not None:
        config = oc.apply_options(config, opts)
    elif isinstance(config.vision, ConvNeXtConfig):
        warnings.warn(
            f"{path}: ConvNeXt weights do not fix the input size and there is no "
            f"{oc.CONFIG_NAME}; assuming {config.vision.image_size} px",
            stacklevel=3,
        )
    config, params = convert.openai_to_params(sd, config, source=str(path))
    default = PreprocessConfig()
    mean = (opts and opts.mean) or (pretrained and pretrained.mean) or default.mean
    std = (opts and opts.std) or (pretrained and pretrained.std) or default.std
    # OpenAI's and OpenCLIP's own transform (torchvision's Resize + CenterCrop, RGB last).
    pre = PreprocessConfig(
        image_size=config.vision.image_size, mean=mean, std=std, rule="torchvision"
    )
    return config, params, pre


def _matching_tokenizer(tok: Tokenizer, config: CLIPConfig) -> Tokenizer:
    """Without a causal mask padding is seen by the text tower: pad with the model's pad id."""
    if not config.text.causal:
        tok.pad_token_id = int(config.text.pad_token_id)
    return tok


def _is_torchscript_file(path: Path) -> bool:
    try:
        return path.suffix in _PICKLE_SUFFIXES and _is_torchscript(path)
    except OSError:
        return False


def _is_openai_format(sd: Mapping[str, Any]) -> bool:
    keys = convert.unwrap_state_dict({k: None for k in sd})
    return "visual.conv1.weight" in keys or "token_embedding.weight" in keys


def _hf_weights(folder: Path, config: CLIPConfig, allow_pickle: bool) -> dict[str, Any]:
    """The params of a transformers folder, from the first weights file present."""
    st = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    msgpack = folder / "flax_model.msgpack"
    pickle_file = folder / "pytorch_model.bin"
    if st.is_file():
        return convert.hf_torch_to_params(_read_safetensors(st), config, source=str(st))
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        sd: dict[str, np.ndarray] = {}
        for shard in shards:
            sd.update(_read_safetensors(folder / shard))
        return convert.hf_torch_to_params(sd, config, source=str(index))
    if msgpack.is_file():
        return convert.check_params(_read_msgpack(msgpack), config, source=str(msgpack))
    if pickle_file.is_file():
        sd = _read_pickle(pickle_file, allow_pickle)
        return convert.hf_torch_to_params(sd, config, source=str(pickle_file))
    present = sorted(p.name for p in folder.iterdir())
    raise FileNotFoundError(
        f"{folder} has config.json but no weights: tried model.safetensors, "
        f"model.safetensors.index.json, flax_model.msgpack, pytorch_model.bin; found {present}"
    )


def _is_hf_clip_config(d: Mapping[str, Any]) -> bool:
    """A transformers CLIPModel config.json (not, e.g., timm's config.json of a dual-use repo)."""
    towers = ("text_config", "vision_config", "text_config_dict", "vision_config_dict")
    return d.get("model_type", "clip") == "clip" and any(k in d for k in towers)


def _load_folder(
    folder: Path,
    name: str,
    allow_pickle: bool,
    hidden_act: str | None,
    pretrained: oc.Pretrained | None = None,
) -> tuple[CLIPConfig, dict[str, Any], Tokenizer, PreprocessConfig]:
    cfg_file = folder / "config.json"
    hf_cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else None
    if hf_cfg is not None and hf_cfg.get("model_type") == "siglip":
        return _load_siglip_folder(folder, hf_cfg, allow_pickle)
    is_hf = hf_cfg is not None and _is_hf_clip_config(hf_cfg)
    found = [folder / f for f in oc.WEIGHT_FILES if (folder / f).is_file()]
    readable = [f for f in found if allow_pickle or f.suffix == ".safetensors"]
    if is_hf and not (pretrained is not None and readable):
        config = from_hf_config(hf_cfg)  # type: ignore[arg-type]
        if hidden_act is not None:
            config = dataclasses.replace(
                config,
                vision=dataclasses.replace(config.vision, act=hidden_act),
                text=dataclasses.replace(config.text, act=hidden_act),
            )
        params = _hf_weights(folder, config, allow_pickle)
        pre = _preprocess_from_folder(folder, config)
    elif found:  # OpenCLIP (a pickle without allow_pickle raises PermissionError in the read)
        weights = (readable or found)[0]
        oc_config = _read_open_clip_config(folder)
        if oc_config is None and pretrained is not None:
            oc_config = {"model_cfg": oc.MODEL_CONFIGS.get(pretrained.model, {})}
        sd = _read_weights(weights, allow_pickle)
        config, params, pre = _from_openai_state_dict(
            sd, weights, hidden_act, oc_config, pretrained
        )
    elif hf_cfg is not None:
        from_hf_config(hf_cfg)  # raises the error naming what the config.json is
        raise ValueError(f"{cfg_file} is not a transformers CLIPModel config")  # pragma: no cover
    else:
        present = sorted(p.name for p in folder.iterdir())
        raise ModelNotFoundError(
            f"{folder} is not a CLIP checkpoint folder: tried config.json (transformers) and "
            f"{', '.join(oc.WEIGHT_FILES)} (OpenCLIP); found {present}"
        )
    # Padding as the checkpoint's own tokenizer: OpenCLIP's pads with 0, a transformers folder
    # with the pad token its tokenizer files name.
    pad = None if is_hf and not (pretrained is not None and readable) else OPENAI_PAD_ID
    tok = Tokenizer.from_folder(folder, config.text.context_length, pad_token_id=pad)
    return config, params, _matching_tokenizer(tok, config), pre


def siglip_preprocess(image_size: int) -> PreprocessConfig:
    """SigLIP's image preprocessing: both sides to S (bicubic, no crop), mean = std = 0.5."""
    return PreprocessConfig(image_size=image_size, mean=(0.5,) * 3, std=(0.5,) * 3, crop=False)


def _siglip_preprocess_from_folder(folder: Path, config: SiglipConfig) -> PreprocessConfig:
    default = siglip_preprocess(config.vision.image_size)
    f = folder / "preprocessor_config.json"
    if not f.is_file():
        return default
    d = json.loads(f.read_text())
    size = d.get("size") or {}
    side = size.get("height", config.vision.image_size) if isinstance(size, Mapping) else size
    if isinstance(size, Mapping) and size.get("width", side) != side:
        raise ValueError(f"{f}: non-square resize {size} is not supported")
    return PreprocessConfig(
        image_size=int(side),
        mean=tuple(d.get("image_mean", default.mean)),
        std=tuple(d.get("image_std", default.std)),
        crop=False,
    )


def _load_siglip_folder(
    folder: Path, hf_cfg: Mapping[str, Any], allow_pickle: bool
) -> tuple[SiglipConfig, dict[str, Any], SiglipTextTokenizer | None, PreprocessConfig]:
    """A transformers SiglipModel folder (config.json model_type "siglip" + weights)."""
    config = from_hf_siglip_config(hf_cfg)
    st = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    pickle_file = folder / "pytorch_model.bin"
    if st.is_file():
        sd, source = _read_safetensors(st), st
    elif index.is_file():
        sd, source = {}, index
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            sd.update(_read_safetensors(folder / shard))
    elif pickle_file.is_file():
        sd, source = _read_pickle(pickle_file, allow_pickle), pickle_file
    else:
        present = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(
            f"{folder} has a SigLIP config.json but no weights: tried model.safetensors, "
            f"model.safetensors.index.json, pytorch_model.bin; found {present}"
        )
    params = convert_siglip.hf_torch_to_params(sd, config, source=str(source))
    tok = SiglipTextTokenizer.from_folder(folder, config.text.context_length)
    return config, params, tok, _siglip_preprocess_from_folder(folder, config)


def _load_big_vision(
    path: Path,
) -> tuple[SiglipConfig, dict[str, Any], SiglipTextTokenizer | None, PreprocessConfig]:
    """A big_vision SigLIP .npz: a config.json beside it (transformers SiglipConfig) fixes the
    architecture; without one it is read from the shapes (`convert_siglip.infer_config`)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    cfg_file = path.parent / "config.json"
    if cfg_file.is_file():
        config = from_hf_siglip_config(json.loads(cfg_file.read_text()))
    else:
        config = convert_siglip.infer_config(arrays, source=str(path))
    params = convert_siglip.big_vision_to_params(arrays, config, source=str(path))
    tok = SiglipTextTokenizer.from_folder(path.parent, config.text.context_length)
    return config, params, tok, _siglip_preprocess_from_folder(path.parent, config)


def _load_file(
    path: Path, allow_pickle: bool, hidden_act: str | None
) -> tuple[CLIPConfig, dict[str, Any], Tokenizer, PreprocessConfig]:
    if path.suffix == ".npz":
        return _load_big_vision(path)
    if path.suffix == ".msgpack" or path.suffix not in (".safetensors", *_PICKLE_SUFFIXES):
        if (path.parent / "config.json").is_file() and path.suffix == ".msgpack":
            config = from_hf_config(json.loads((path.parent / "config.json").read_text()))
            params = convert.check_params(_read_msgpack(path), config, source=str(path))
            pre = _preprocess_from_folder(path.parent, config)
            tok = Tokenizer.from_folder(path.parent, config.text.context_length)
            return config, params, tok, pre
        raise UserValueError(
            f"cannot read {path}: expected an OpenAI/OpenCLIP state dict (.safetensors, or "
            f"{'/'.join(_PICKLE_SUFFIXES)} with allow_pickle=True), or a transformers weights "
            "file beside its config.json"
        )
    sd = _read_weights(path, allow_pickle)
    if _is_openai_format(sd):
        config, params, pre = _from_openai_state_dict(sd, path, hidden_act)
        tok = _matching_tokenizer(Tokenizer.openai(config.text.context_length), config)
        return config, params, tok, pre
    if any(k.startswith(("vision_model.", "text_model.")) for k in sd):
        cfg_file = path.parent / "config.json"
        if not cfg_file.is_file():
            raise UserValueError(
                f"{path} holds transformers CLIPModel weights but there is no config.json beside "
                "it to give the architecture (heads, activation); load its folder instead"
            )
        config = from_hf_config(json.loads(cfg_file.read_text()))
        params = convert.hf_torch_to_params(sd, config, source=str(path))
        pre = _preprocess_from_folder(path.parent, config)
        return config, params, Tokenizer.from_folder(path.parent, config.text.context_length), pre
    raise convert.checkpoint_error(
        str(path),
        missing=["visual.conv1.weight (OpenAI/OpenCLIP) or vision_model.* (transformers)"],
        unexpected=list(sd)[:50],
        hint="Not a CLIP state dict (OpenAI / OpenCLIP or transformers names)",
    )


class ModelNotFoundError(UserFileNotFoundError):
    """No CLIP checkpoint under that name, path or hub id (the message lists what was tried)."""


class _NoReadableWeights(ModelNotFoundError):
    """The hub repo exists but holds no weights format we read."""


def _download(
    repo_id: str, allow_pickle: bool, prefer_open_clip: bool = False, *, online: bool = True
) -> Path:
    """Fetches only metadata + the one weights format `load` will read; cache-only offline.

    OpenCLIP weights come first when the repo has OpenCLIP files (or `prefer_open_clip`); HF
    CLIPModel weights are used otherwise, or when the only OpenCLIP weights are a pickle and
    `allow_pickle` is False and the repo's config.json is a CLIPModel config. With
    `online=False` (the hub cannot be reached) only the local hub cache is read, so nothing
    waits on huggingface_hub's connection retries. The hub cache is HF_HUB_CACHE as set now.
    """
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    cache_dir = os.environ.get("HF_HUB_CACHE") or None

    preference = [
        ["model.safetensors"],
        ["model.safetensors.index.json", "model-*.safetensors"],
        ["flax_model.msgpack"],
    ]
    if allow_pickle:
        preference += [["pytorch_model.bin"]]
    files, listing_error = None, None
    if online:
        try:
            files = set(HfApi().list_repo_files(repo_id))
        except Exception as e:  # no such repo, no access, a dropped connection: try the cache.
            listing_error = e
    if files is not None:
        oc_files = [f for f in oc.WEIGHT_FILES if f in files]
        oc_readable = [f for f in oc_files if allow_pickle or f.endswith(".safetensors")]
        if oc_readable and (
            prefer_open_clip or oc.CONFIG_NAME in files or "config.json" not in files
        ):
            return Path(
                snapshot_download(
                    repo_id, allow_patterns=_HUB_META + oc_readable[:1], cache_dir=cache_dir
                )
            )
        for patterns in preference:
            if patterns[0] in files:
                if oc_files or oc.CONFIG_NAME in files:  # a dual-use repo: is config.json CLIP's?
                    cfg_path = hf_hub_download(repo_id, "config.json", cache_dir=cache_dir)
                    cfg = json.loads(Path(cfg_path).read_text())
                    if not _is_hf_clip_config(cfg):
                        break
                return Path(
                    snapshot_download(
                        repo_id, allow_patterns=_HUB_META + patterns, cache_dir=cache_dir
                    )
                )
        if oc_readable:
            return Path(
                snapshot_download(
                    repo_id, allow_patterns=_HUB_META + oc_readable[:1], cache_dir=cache_dir
                )
            )
        weights = sorted(f for f in files if f.endswith((".safetensors", ".msgpack", ".bin")))
        raise _NoReadableWeights(
            f"hub repo {repo_id} has no weights jaxclip can read; it has {weights}"
            + ("" if allow_pickle else " (pickle .bin files need allow_pickle=True)")
        )
    patterns = _HUB_META + [p for group in preference for p in group] + list(oc.WEIGHT_FILES)
    try:
        return Path(
            snapshot_download(
                repo_id, allow_patterns=patterns, local_files_only=True, cache_dir=cache_dir
            )
        )
    except Exception:
        if listing_error is not None:  # the hub's answer says more than "not in the cache"
            raise listing_error from None
        raise


def warn_non_finite(params: Any, source: str) -> int:
    """Warns (naming up to five tensors) if any parameter is NaN or infinite; returns the count.

    Such weights load and run but every embedding they touch is NaN: a broken conversion or
    a truncated download, never a usable model.
    """
    bad: list[tuple[str, int]] = []
    for path, x in sorted(convert.flatten(params).items()):
        a = np.asarray(x)
        if np.issubdtype(a.dtype, np.floating):
            n = int(a.size - np.count_nonzero(np.isfinite(a)))
            if n:
                bad.append(("/".join(path), n))
    total = sum(n for _, n in bad)
    if total:
        named = ", ".join(f"{p} ({n})" for p, n in bad[:5])
        warnings.warn(
            f"{source}: {total} parameter value(s) are NaN or infinite in {len(bad)} tensor(s), "
            f"e.g. {named}; its embeddings will be NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    return total


def _catalog_names() -> list[str]:
    """Short names of `jaxclip.models.catalog.MODELS` that `load` opens through the catalog
    (those that are not also `HUB_ALIASES`: "mini", "tiny_random", the LAION entries, ...)."""
    from jaxclip.models.catalog import MODELS

    return [n for n in MODELS if n not in HUB_ALIASES]


def load(
    name_or_path: str | os.PathLike,
    *,
    dtype: str = "float32",
    allow_pickle: bool = False,
    hidden_act: str | None = None,
    step: int | None = None,
) -> LoadedCLIP:
    """Opens a CLIP checkpoint (see the module docstring for the accepted formats).

    Args:
      name_or_path: local folder or file, a short name of `jaxclip.models.catalog.MODELS`
        ("tiny_random", "mini", "vit_b32", "laion_vit_b32", ...), OpenCLIP pretrained name
        ("ViT-B-32/laion2b_s34b_b79k"), alias (HUB_ALIASES) or Hugging Face hub id. A catalog
        name opens as the configs open it (`catalog.open_model`): "mini" is the mini-CLIP
        trained here, or ModelNotTrained saying how to train it; the LAION entries allow their
        pickle files.
      dtype: compute dtype, "float32" or "bfloat16" (params stay float32; outputs float32).
      allow_pickle: allow reading pickle files (.bin / .pt), which can run code.
      hidden_act: override the MLP activation ("quick_gelu", "gelu"); needed for OpenCLIP GELU
        models given as a bare state dict.
      step: with a `train_clip` run folder, the orbax checkpoint step to open
        (`jaxclip.models.steps`); a step folder `RUN/checkpoints/<step>` opens without it.

    Returns:
      LoadedCLIP with module, params, tokenizer, config, preprocess and encoders.

    Raises:
      ModelNotFoundError (a FileNotFoundError): nothing found under that name, an empty or
        foreign folder (the message lists what was tried), or a hub id that is not in the local
        hub cache while the hub cannot be reached (HF_HUB_OFFLINE, or no connection within
        about a second: `jaxclip.hub.unavailable`); one line, within about a second.
      UserPermissionError (a PermissionError): a pickle file without allow_pickle=True.
      CheckpointError: weights that do not fit the architecture (all mismatches named).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not valid; choose one of {list(DTYPES)}")
    raw = os.fspath(name_or_path)
    path = Path(raw).expanduser()
    from jaxclip.models import steps

    if step is not None or steps.is_step_folder(path):
        return steps.load_step(path, step, dtype=dtype)
    tried: list[str] = []
    if path.is_dir():
        config, params, tok, pre = _load_folder(path, raw, allow_pickle, hidden_act)
        name = str(path.resolve())
    elif path.is_file():
        config, params, tok, pre = _load_file(path, allow_pickle, hidden_act)
        name = str(path.resolve())
    elif raw in _catalog_names():
        from jaxclip.models.catalog import MODELS

        return MODELS[raw][1](dtype=dtype)
    else:
        tried.append(f"local path {path.resolve()} (does not exist)")
        target = HUB_ALIASES.get(raw, raw)
        if raw in HUB_ALIASES:
            tried.append(f"alias {raw!r} -> {target}")
        pretrained = oc.resolve(target)
        if pretrained is not None:
            repo_id = pretrained.hub
            tried.append(f"OpenCLIP {pretrained.name} -> hub {repo_id}")
        else:
            repo_id = target.removeprefix("hf-hub:")
            pretrained = oc.by_hub(repo_id)
        looks_like_file = Path(repo_id).suffix in (".safetensors", ".msgpack", *_PICKLE_SUFFIXES)
        if not _HUB_ID.match(repo_id) or looks_like_file:
            why = "a missing weights file" if looks_like_file else "not of the form owner/name"
            tried.append(f"hub id {repo_id!r} ({why})")
            raise ModelNotFoundError(
                f"cannot find CLIP checkpoint {raw!r}; tried: "
                + "; ".join(tried)
                + f". Catalog names: {', '.join(_catalog_names())}; aliases: "
                + f"{', '.join(HUB_ALIASES)}; OpenCLIP names: "
                + ", ".join(oc.PRETRAINED)
            )
        why_offline = hub.unavailable()  # about a second at most, instead of ~25 s of retries
        try:
            folder = _download(
                repo_id,
                allow_pickle,
                prefer_open_clip=pretrained is not None,
                online=not why_offline,
            )
        except _NoReadableWeights:
            raise
        except Exception as e:  # offline, not cached, no such repo, no network, ...
            if why_offline:
                tried.append(
                    f"Hugging Face hub {repo_id!r} (not in the local hub cache, and the hub is "
                    f"offline or unreachable: {why_offline})"
                )
                raise ModelNotFoundError(
                    f"cannot find CLIP checkpoint {raw!r}; tried: "
                    + "; ".join(tried)
                    + ". Download it once with network access (same HF_HOME / HF_HUB_CACHE as "
                    'here), or give a local folder: jaxclip.load("/path/to/folder")'
                ) from None
            tried.append(f"Hugging Face hub {repo_id!r} ({type(e).__name__}: {one_line(e)})")
            raise ModelNotFoundError(
                f"cannot find CLIP checkpoint {raw!r}; tried: " + "; ".join(tried)
            ) from e
        config, params, tok, pre = _load_folder(
            folder, repo_id, allow_pickle, hidden_act, pretrained
        )
        name = repo_id
    warn_non_finite(params, name)
    module_cls = Siglip if isinstance(config, SiglipConfig) else CLIP
    return LoadedCLIP(
        module=module_cls(config, dtype=DTYPES[dtype], param_dtype=jnp.float32),
        params=jax.device_put(params),
        tokenizer=tok,
        config=config,
        name=name,
        preprocess=pre,
        dtype=dtype,
    )


# --- saving -------------------------------------------------------------------------------------


def preprocessor_config(pre: PreprocessConfig) -> dict[str, Any]:
    """A transformers CLIPImageProcessor config for `pre` (resize shortest side, crop, normalise)."""
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": pre.image_size},
        "resample": 3,  # PIL bicubic
        "do_center_crop": True,
        "crop_size": {"height": pre.image_size, "width": pre.image_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(pre.mean),
        "image_std": list(pre.std),
        "do_convert_rgb": True,
    }


def save(
    folder: str | os.PathLike,
    config: CLIPConfig,
    params: Mapping[str, Any],
    tokenizer: Tokenizer | None = None,
    preprocess: PreprocessConfig | None = None,
    *,
    layout: str = "auto",
) -> Path:
    """Writes a transformers CLIPModel folder or an OpenCLIP folder; returns its path.

    layout "transformers": config.json (`to_hf_config`), model.safetensors (HF PyTorch names,
    float32), tokenizer files, preprocessor_config.json; `jaxclip.load(folder)` and
    `CLIPModel.from_pretrained(folder)` both read it. Only for ViT models transformers can express.
    layout "open_clip": open_clip_config.json (`open_clip.to_open_clip_config`, with the
    preprocessing mean/std), open_clip_model.safetensors (OpenAI/OpenCLIP names,
    `convert.params_to_openai`), tokenizer files: the files `jaxclip.load(folder)` and OpenCLIP's
    `create_model("local-dir:" + folder)` read.
    layout "auto" (default): "transformers" when the model has a transformers twin
    (`variants.hf_incompatibility`), else "open_clip" (ResNet / ConvNeXt image towers, ...).
    The tokenizer defaults to OpenAI's when the vocabulary is CLIP's 49408 tokens.
    A `SiglipConfig` always gives a transformers `SiglipModel` folder (`_save_siglip`).
    The folder's format, not `preprocess.rule`, fixes the rule `load` gives it back: "hf" for a
    transformers folder, "torchvision" for an OpenCLIP one.
    """
    from safetensors.numpy import save as st_save

    if layout not in SAVE_LAYOUTS:
        raise ValueError(f"layout={layout!r} is not valid; choose one of {SAVE_LAYOUTS}")
    if isinstance(config, SiglipConfig):
        return _save_siglip(Path(folder), config, params, tokenizer, preprocess, layout)
    if layout == "auto":
        layout = "transformers" if hf_incompatibility(config) is None else "open_clip"
    folder = Path(folder)
    checked = convert.check_params(jax.device_get(params), config, source="params to save")
    pre = preprocess or PreprocessConfig(image_size=config.vision.image_size)
    if layout == "transformers":
        hf_config = to_hf_config(config)  # raises for models transformers cannot express
        folder.mkdir(parents=True, exist_ok=True)
        state_dict = convert.params_to_hf_torch(checked)
        atomic.write_bytes(
            folder / "model.safetensors", st_save(state_dict, metadata={"format": "pt"})
        )
        atomic.write_json(folder / "config.json", hf_config)
        atomic.write_json(folder / "preprocessor_config.json", preprocessor_config(pre))
    else:
        oc_config = oc.to_open_clip_config(config, pre.mean, pre.std)
        folder.mkdir(parents=True, exist_ok=True)
        state_dict = convert.params_to_openai(checked, config)
        atomic.write_bytes(
            folder / oc.WEIGHT_FILES[0], st_save(state_dict, metadata={"format": "pt"})
        )
        atomic.write_json(folder / oc.CONFIG_NAME, oc_config)
    if tokenizer is None and config.text.vocab_size == 49408:
        tokenizer = Tokenizer.openai(config.text.context_length)
    if tokenizer is not None:
        tokenizer.save(folder)
    return folder


def _save_siglip(
    folder: Path,
    config: SiglipConfig,
    params: Mapping[str, Any],
    tokenizer: SiglipTextTokenizer | None,
    preprocess: PreprocessConfig | None,
    layout: str,
) -> Path:
    """A transformers SiglipModel folder: config.json, model.safetensors, SiglipImageProcessor
    preprocessor_config.json, tokenizer files (when known)."""
    from safetensors.numpy import save as st_save

    if layout == "open_clip":
        raise ValueError("layout='open_clip' is not available for SigLIP; use 'transformers'")
    pre = preprocess or siglip_preprocess(config.vision.image_size)
    state_dict = convert_siglip.params_to_hf_torch(jax.device_get(params), config)
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(folder / "model.safetensors", st_save(state_dict, metadata={"format": "pt"}))
    atomic.write_json(folder / "config.json", to_hf_siglip_config(config))
    processor = {
        "image_processor_type": "SiglipImageProcessor",
        "do_resize": True,
        "size": {"height": pre.image_size, "width": pre.image_size},
        "resample": 3,  # PIL bicubic
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(pre.mean),
        "image_std": list(pre.std),
    }
    atomic.write_json(folder / "preprocessor_config.json", processor)
    if tokenizer is not None:
        tokenizer.save(folder)
    return folder
