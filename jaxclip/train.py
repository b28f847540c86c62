"""Contrastive training of small CLIPs (Radford et al. 2021) on a captioned dataset.

The recipe is CLIP's, shrunk: both towers are trained from scratch on (image, caption) pairs with
the symmetric InfoNCE loss `jaxclip.losses.clip_loss` over the whole global batch,

    ℓ = ½ [mean_j CE(L_j·, j) + mean_j CE(L_·j, j)],   L = exp(t) · v̂ t̂ᵀ,

where t is the learned log logit scale, clamped after every update to t ≤ ln 100 (CLIP §2.5).
With `loss="sigmoid"` the loss is SigLIP's pairwise sigmoid loss instead (Zhai et al. 2023,
Eq. 1; `jaxclip.losses.sigmoid_loss`), ℓ = −(1/N) Σ_j Σ_k log σ(z_jk (exp(t')·v̂_jᵀt̂_k + b)), with
a learned log scale t' and bias b initialised as the paper does (t' = log 10, b = −10; the model
then carries a `logit_bias` parameter, `CLIPConfig.logit_bias_init_value`) and no clamp on t'.
The optimiser is AdamW (Loshchilov & Hutter 2019) with decoupled weight decay applied only to
weight matrices (Dense and patch-conv kernels): biases, LayerNorm scales, embeddings (token,
position, class) and the logit scale are not decayed. The learning rate warms up linearly from 0
to `learning_rate` over `warmup_steps`, then follows a cosine to `end_lr_factor · learning_rate`
at `num_steps` (optax.warmup_cosine_decay_schedule). Gradients may be clipped by global norm.

Data: the whole training split is read into host memory once (uint8 images (N, H, W, 3) and
tokenized captions (N, C, L)). Which images and which of their C captions make up step s is a
pure function of (seed, s): the images follow a seeded permutation per epoch, the caption per
image is drawn from `default_rng([seed, 1, s])`. Pixels are normalised with CLIP's mean / std on
the device, inside the jitted step. No augmentation: flips would turn "left" captions into lies.
The data is any captioned `jaxclip.data` dataset: the built-in shapes, or a user's own
image-caption pairs (`dataset = "caption_pairs"`, `data_path` = a CSV / TSV / JSONL file,
`jaxclip.data.caption_pairs`; images of other or mixed sizes are resized and centre-cropped to
4 x patch_size px). Images with fewer captions than the most-captioned one repeat theirs
cyclically, so every image has C captions.
Token rows are cut after the dataset's last EOS position (`trim_to_eos`: shapes captions need
<= 18 of the 32 positions); this is exact, as the text tower is causal and pools at the first EOS.

Parallelism: one jitted step, data-parallel over a one-axis `jax.sharding.Mesh` ("data"): the
global batch is sharded over the devices, params and optimiser state are replicated, and the
loss sees the global batch (XLA inserts the all-gather / all-reduce), so N devices compute the
same function as one device, up to float summation order.

Checkpoints: `orbax.checkpoint.CheckpointManager` under `workdir/checkpoints`, every
`checkpoint_every` steps and at the end, keeping the last `keep_checkpoints`. Orbax writes a step
into `<step>.orbax-checkpoint-tmp-*` and renames it when complete, so a write cut by a kill -9
is never taken for a checkpoint (leftovers are removed on the next start); on resume a step
folder that fails to restore is skipped (with a warning) for the one before it, and removed.
Because XLA is deterministic for fixed shapes and the data order depends on (seed, step) only,
a run killed and resumed ends with parameters bit-identical to an uninterrupted run
(tests/test_train.py checks it).

Outputs in `workdir`: `train_config.json` (what the run is; a resume with a different config is
refused), `train_metrics.jsonl` (one JSON line per logging step, appended: loss, in-batch
accuracies, logit scale, learning rate, gradient norm averaged over the interval, steps/s; at
every `eval_every`-th step and the last, also the held-out evaluation `EVAL_KEYS` (see
`make_evaluator`); a resume first drops the lines past its checkpoint, atomically) and its copy
`train_metrics.csv`
(rewritten atomically when a run ends), `checkpoints/`, and at the end
`model/` (a transformers-compatible CLIPModel folder written by `jaxclip.models.load.save`, so
`jaxclip.load(workdir / "model")` opens it), `zero_shot.json` and `DONE.json` (written last).

`train_or_reuse(config, cache_dir)` trains into a folder named by a hash of the run's identity
(config fields that change the result + jaxclip version), or returns the finished model there.

References:
  Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", 2021.
  Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxclip import atomic
from jaxclip.losses import clip_logits, clip_loss, sigmoid_loss
from jaxclip.models.catalog import models_root, record_trained
from jaxclip.models.tokenizer import trim_to_eos
from jaxclip.version import __version__

log = logging.getLogger(__name__)

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps exp(t) at 100
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Zero-shot prompts per attribute of the shapes dataset ("{}" = the value's name).
ATTRIBUTE_PROMPTS: dict[str, str] = {
    "shape": "a photo of a {}",
    "color": "a {} shape",
    "size": "a {} shape",
}
# Config fields that do not change the trained parameters (beyond float summation order for
# num_devices): left out of the run identity, so changing them neither blocks a resume nor
# makes train_or_reuse train again.
LOSSES = ("softmax", "sigmoid")
# Fields of the sigmoid loss only: with the default loss ("softmax") they and `loss` itself stay
# out of the run identity, so a softmax run keeps the identity it had before they existed.
SIGMOID_FIELDS = ("sigmoid_logit_scale_init", "sigmoid_logit_bias_init")
NON_IDENTITY_FIELDS = frozenset(
    {
        "data_dir",
        "num_devices",
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "progress",
        "eval_batch_size",
        "eval_every",
        "eval_examples",
    }
)
METRICS_FILE = "train_metrics.jsonl"
METRICS_CSV = "train_metrics.csv"
CONFIG_FILE = "train_config.json"
DONE_FILE = "DONE.json"
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"


# --- data --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class CaptionedArrays:
    """A dataset split in memory.

    Attributes:
      images: uint8 (N, H, W, 3).
      captions: list of N lists of caption strings (may be empty lists for uncaptioned data).
      labels: attribute name -> int (N,) array ("shape" is the class label of shapes; every
        extra attribute of the dataset under its own name).
      classnames: attribute name -> names of its values (index = value).
      name: the dataset's name ("shapes/tiny") and split.
    """

    images: np.ndarray
    captions: list[list[str]]
    labels: dict[str, np.ndarray]
    classnames: dict[str, tuple[str, ...]]
    name: str

    def __len__(self) -> int:
        return len(self.images)


def read_split(
    source: Any, *, class_key: str = "shape", size: int | None = None
) -> CaptionedArrays:
    """Reads every item of a `jaxclip.data.DatasetSource` into a `CaptionedArrays`.

    The class label goes under `class_key` (for shapes: the shape), each extra attribute of
    `source.info.attributes` under its own name. With `size`, every image of another shape is
    resized (shortest side) and centre-cropped to (size, size) (`resize_crop_host`).
    """
    info = source.info
    n = len(source)
    if n == 0:
        raise ValueError(f"dataset {info.name!r} split {info.split!r} is empty")

    def image(item: dict[str, Any]) -> np.ndarray:
        if size is None or item["image"].shape[:2] == (size, size):
            return item["image"]
        from jaxclip.data.preprocess import resize_crop_host

        return resize_crop_host(item["image"], size)

    first = dict(source[0])
    first["image"] = image(first)
    images = np.empty((n, *first["image"].shape), np.uint8)
    labels = {
        class_key: np.empty(n, np.int64),
        **{k: np.empty(n, np.int64) for k in info.attributes},
    }
    captions: list[list[str]] = []
    for i in range(n):
        item = first if i == 0 else source[i]
        pixels = first["image"] if i == 0 else image(item)
        if pixels.shape != images.shape[1:]:
            raise ValueError(
                f"{info.name}: image {i} has shape {pixels.shape}, expected "
                f"{images.shape[1:]}; training needs one image size"
            )
        images[i] = pixels
        labels[class_key][i] = item["label"]
        for k in info.attributes:
            labels[k][i] = item[k]
        captions.append(list(item.get("captions", [])))
    classnames = {
        class_key: tuple(info.classnames),
        **{k: tuple(v) for k, v in info.attributes.items()},
    }
    return CaptionedArrays(images, captions, labels, classnames, f"{info.name}:{info.split}")


def tokenize_captions(captions: Sequence[Sequence[str]], tokenizer: Any) -> np.ndarray:
    """Tokenizes N lists of C captions each -> int32 (N, C, L) (each distinct caption once)."""
    counts = {len(c) for c in captions}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"every image needs the same, non-zero number of captions; got counts {sorted(counts)}"
        )
    (c,) = counts
    flat = [t for caps in captions for t in caps]
    unique = sorted(set(flat))
    ids = tokenizer(unique)
    row = {t: i for i, t in enumerate(unique)}
    index = np.fromiter((row[t] for t in flat), np.int64, len(flat))
    return ids[index].reshape(len(captions), c, ids.shape[1])


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 0, epoch]).permutation(n)


def batch_indices(
    seed: int, step: int, num_examples: int, batch_size: int, num_captions: int
) -> tuple[np.ndarray, np.ndarray]:
    """(image indices, caption indices), each int (batch_size,), of training step `step`.

    A pure function of its arguments: step s takes positions [s·B, (s+1)·B) of the endless
    sequence perm_0, perm_1, ... where perm_e = default_rng([seed, 0, e]).permutation(N)
    (every image once per epoch), and caption k_j ~ U{0..C-1} from default_rng([seed, 1, s]).
    """
    if num_examples < 1 or batch_size < 1 or num_captions < 1 or step < 0:
        raise ValueError(
            f"need num_examples, batch_size, num_captions >= 1 and step >= 0; got "
            f"{num_examples}, {batch_size}, {num_captions}, {step}"
        )
    start = step * batch_size
    epoch, offset = divmod(start, num_examples)
    parts, need = [], batch_size
    while need:
        perm = _epoch_permutation(seed, epoch, num_examples)
        take = perm[offset : offset + need]
        parts.append(take)
        need -= len(take)
        epoch, offset = epoch + 1, 0
    images = np.concatenate(parts)
    caps = np.random.default_rng([seed, 1, step]).integers(0, num_captions, size=batch_size)
    return images, caps


# --- model and optimiser -----------------------------------------------------------------------


def model_config(config: Any, image_size: int):
    """The `CLIPConfig` of `config.model` for images of side `image_size` (the dataset's)."""
    from jaxclip.models.variants import CLIPConfig, TextConfig, VisionConfig

    m = config.model
    try:
        return CLIPConfig(
            vision=VisionConfig(
                image_size=int(image_size),
                patch_size=m.patch_size,
                width=m.vision_width,
                layers=m.vision_layers,
                heads=m.vision_heads,
                mlp_dim=m.vision_mlp_dim,
                act=m.act,
            ),
            text=TextConfig(
                context_length=m.context_length,
                width=m.text_width,
                layers=m.text_layers,
                heads=m.text_heads,
                mlp_dim=m.text_mlp_dim,
                act=m.act,
            ),
            projection_dim=m.projection_dim,
            **_logit_inits(config),
        )
    except ValueError as e:
        raise ValueError(f"config.model does not give a valid CLIP: {e}") from e


def loss_name(config: Any) -> str:
    """The config's training loss: "softmax" (CLIP) or "sigmoid" (SigLIP); "softmax" if unset."""
    return str(config.get("loss", "softmax"))


def _logit_inits(config: Any) -> dict[str, float | None]:
    """`CLIPConfig` keywords of the initial log scale (and bias, for the sigmoid loss)."""
    if loss_name(config) == "sigmoid":
        return {
            "logit_scale_init_value": float(config.sigmoid_logit_scale_init),
            "logit_bias_init_value": float(config.sigmoid_logit_bias_init),
        }
    return {"logit_scale_init_value": float(config.logit_scale_init)}


def learning_rate_schedule(config: Any) -> optax.Schedule:
    """Linear warm-up 0 -> lr over warmup_steps, then cosine to end_lr_factor·lr at num_steps."""
    warmup = min(int(config.warmup_steps), int(config.num_steps))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=float(config.learning_rate),
        warmup_steps=warmup,
        decay_steps=max(int(config.num_steps), warmup + 1),
        end_value=float(config.learning_rate) * float(config.end_lr_factor),
    )


def weight_decay_mask(params: Mapping[str, Any]) -> Any:
    """True for the leaves that get weight decay: weight matrices (leaves named "kernel").

    Biases, LayerNorm scale / bias, the token / position / class embeddings and the logit
    scale get none (as in CLIP and OpenCLIP, which exempt gains, biases and the scale).
    """

    def decays(path, _):
        last = path[-1]
        name = getattr(last, "key", getattr(last, "name", str(last)))
        return name == "kernel"

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(config: Any) -> optax.GradientTransformation:
    """[clip_by_global_norm] -> AdamW(schedule, b1, b2, eps, weight_decay, mask)."""
    adamw = optax.adamw(
        learning_rate_schedule(config),
        b1=float(config.b1),
        b2=float(config.b2),
        eps=float(config.eps),
        weight_decay=float(config.weight_decay),
        mask=weight_decay_mask,
    )
    if config.grad_clip_norm and config.grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(float(config.grad_clip_norm)), adamw)
    return adamw


def init_params(module: Any, seed: int) -> dict[str, Any]:
    """Fresh CLIP params from `jax.random.PRNGKey(seed)` (HF Flax layout, no outer "params")."""
    cfg = module.config
    s = cfg.vision.image_size
    ids = jnp.full((1, cfg.text.context_length), cfg.text.eos_token_id, jnp.int32)
    variables = jax.jit(module.init)(
        jax.random.PRNGKey(seed), jnp.zeros((1, s, s, 3), jnp.float32), ids
    )
    return variables["params"]


def make_mesh(num_devices: int = 0) -> Mesh:
    """A one-axis ("data",) mesh over the first `num_devices` devices (0 = all)."""
    devices = jax.devices()
    if num_devices < 0 or num_devices > len(devices):
        raise ValueError(f"num_devices={num_devices}: expected 0 (all) to {len(devices)}")
    return Mesh(np.array(devices[: num_devices or len(devices)]), ("data",))


def make_train_step(
    module: Any,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    mesh: Mesh,
    preprocess: Any,
    loss: str = "softmax",
) -> Callable:
    """The jitted step: (state, images uint8 (B,H,W,3), input_ids (B,L)) -> (state, metrics).

    state = {"step": int32, "params": ..., "opt_state": ...}, replicated over the mesh; the
    batch is sharded over its "data" axis. Metrics (replicated scalars): loss, accuracy_i2t /
    accuracy_t2i (in-batch R@1), logit_scale (exp t, before the update), learning_rate,
    grad_norm; with loss="sigmoid" (SigLIP's loss, the module has a `logit_bias`) also
    logit_bias (b, before the update).
    """
    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r} is not valid; choose one of {LOSSES}")
    from jaxclip.data.preprocess import normalize

    replicated = NamedSharding(mesh, P())
    sharded = NamedSharding(mesh, P("data"))

    def loss_fn(params, images, input_ids):
        pixels = normalize(images, preprocess)
        out = module.apply({"params": params}, pixels, input_ids)
        scale = jnp.exp(out["logit_scale"])
        if loss == "sigmoid":
            bias = out["logit_bias"]
            value = sigmoid_loss(out["image_embeds"], out["text_embeds"], scale, bias)
        else:
            value = clip_loss(out["image_embeds"], out["text_embeds"], scale)
        # R@1 is the same for t·cos + b as for t·cos: the bias moves every logit alike.
        logits = jax.lax.stop_gradient(clip_logits(out["image_embeds"], out["text_embeds"], scale))
        idx = jnp.arange(logits.shape[0])
        aux = {
            "accuracy_i2t": jnp.mean(jnp.argmax(logits, axis=1) == idx),
            "accuracy_t2i": jnp.mean(jnp.argmax(logits, axis=0) == idx),
            "logit_scale": scale,
        }
        if loss == "sigmoid":
            aux["logit_bias"] = bias
        return value, aux

    def step(state, images, input_ids):
        (loss_value, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state["params"], images, input_ids
        )
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        if loss == "softmax":
            # CLIP §2.5: the temperature is clipped so that the logits are scaled by at most 100
            # (SigLIP does not clip its t).
            params["logit_scale"] = jnp.minimum(params["logit_scale"], MAX_LOGIT_SCALE)
        metrics = {
            "loss": loss_value,
            **aux,
            "learning_rate": schedule(state["step"]),
            "grad_norm": optax.tree.norm(grads),
        }
        new_state = {"step": state["step"] + 1, "params": params, "opt_state": opt_state}
        return new_state, metrics

    # No buffer donation: orbax's async save may still read the previous state's buffers (on
    # CPU they can alias host memory), and mini CLIPs are far too small for memory to matter.
    return jax.jit(
        step,
        in_shardings=(replicated, sharded, sharded),
        out_shardings=(replicated, replicated),
    )


# --- run identity, metrics log, checkpoints -----------------------------------------------------


def _to_dict(config: Any) -> dict[str, Any]:
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def run_identity(config: Any) -> dict[str, Any]:
    """The config fields that determine the trained params, plus the jaxclip version and, for
    the built-in shapes dataset, its version (a regenerated dataset means a new model).
    `data_path` enters only when set, so runs on named datasets keep their hash. The loss enters
    only when it is not the default: a "softmax" run leaves out `loss` and the sigmoid-only fields
    (so its identity is the one it had before the sigmoid loss existed); a "sigmoid" run keeps them
    and leaves out `logit_scale_init`, which it does not use."""
    d = {k: v for k, v in _to_dict(config).items() if k not in NON_IDENTITY_FIELDS}
    if not d.get("data_path"):
        d.pop("data_path", None)
    if loss_name(config) == "softmax":
        for k in ("loss", *SIGMOID_FIELDS):
            d.pop(k, None)
    else:
        d.pop("logit_scale_init", None)
    if str(d.get("dataset", "")).split("/")[0] == "shapes":
        from jaxclip.data.shapes import Shapes

        d["dataset_version"] = str(Shapes.VERSION)
    return {"jaxclip_version": __version__, **d}


def identity_hash(config: Any) -> str:
    """16 hex digits of sha256 over the JSON of `run_identity(config)` (key order ignored)."""
    blob = json.dumps(run_identity(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a metrics JSON-lines file; a torn last line (killed mid-write) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def write_metrics_csv(path: str | os.PathLike, records: Sequence[Mapping[str, Any]]) -> None:
    """Writes the metric records as a CSV table (one row per logging step), atomically."""
    import csv
    import io

    keys = list(dict.fromkeys(k for r in records for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    atomic.write_text(path, buf.getvalue())


def _keep_metrics_until(path: Path, step: int) -> None:
    """Rewrites the metrics log atomically without records past `step` (they will be redone)."""
    if not path.exists():
        return
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    atomic.write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


class _DropOrbaxInfo(logging.Filter):
    """Drops orbax's INFO chatter (dozens of lines per save) from the absl logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or "orbax" not in record.pathname


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    """Within the block, orbax logs only warnings and errors."""
    absl_logger = logging.getLogger("absl")
    f = _DropOrbaxInfo()
    absl_logger.addFilter(f)
    try:
        yield
    finally:
        absl_logger.removeFilter(f)


def _checkpoint_manager(directory: Path, keep: int):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=max(1, int(keep)),
        create=True,
        cleanup_tmp_directories=True,  # leftovers of a write cut short by a kill
        enable_async_checkpointing=True,
    )
    return ocp.CheckpointManager(directory.absolute(), options=options)


def restore_latest(directory: Path, abstract_state: Any, keep: int):
    """(manager, state or None, step): the newest step folder that restores; broken ones go.

    Orbax only lists finalised step folders (a write in progress lives in a *.orbax-checkpoint-
    tmp-* folder); a listed folder that still fails to restore (e.g. files lost after it was
    finalised) is skipped for the previous step, and deleted so a new save can take its number.
    """
    import orbax.checkpoint as ocp

    mngr = _checkpoint_manager(directory, keep)
    broken = []
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            state = mngr.restore(step, args=ocp.args.StandardRestore(abstract_state))
        except Exception as e:  # orbax / tensorstore raise many types for unreadable data
            log.warning(
                "checkpoint step %d in %s does not restore (%s); trying older", step, directory, e
            )
            broken.append(step)
            continue
        if int(state["step"]) != step:
            log.warning("checkpoint folder %d holds step %d; skipping it", step, int(state["step"]))
            broken.append(step)
            continue
        break
    else:
        state, step = None, 0
    if broken:
        mngr.close()
        for b in broken:
            shutil.rmtree(directory / str(b), ignore_errors=True)
        mngr = _checkpoint_manager(directory, keep)
    return mngr, state, step


# --- training ----------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
      workdir: the run folder.
      model_dir: `workdir/model` (None if the run was stopped early).
      config: the `CLIPConfig` trained.
      params: the final params (host numpy tree).
      start_step: the step the run resumed from (0 for a fresh run).
      num_steps: the step the run reached.
      metrics: every logged record (this run and the earlier runs it resumed).
      zero_shot: `evaluate_zero_shot_attributes` on the test split ({} if skipped).
      timing: seconds: "load" (data, tokenizer), "compile" (init or restore, compilation and
        the first step), "train" (the steps after the first),
        "eval", "total"; "eval_during_training" (the held-out evaluations inside the loop, left
        out of "train"); "steps_per_s" (after the first step of this run; None if this call ran
        fewer than two steps).
    """

    workdir: Path
    model_dir: Path | None
    config: Any
    params: Any
    start_step: int
    num_steps: int
    metrics: list[dict[str, Any]]
    zero_shot: dict[str, Any]
    timing: dict[str, float | None]


def check_config(config: Any) -> None:
    """Rejects impossible training settings with one line (ConfigError) naming the bad value."""
    from jaxclip.config_args import ConfigError, check_choice
    from jaxclip.data.datasets import check_dataset_name

    check_dataset_name(config.dataset)
    positive = ("batch_size", "num_steps", "learning_rate", "checkpoint_every", "log_every")
    for field in positive:
        if not config[field] > 0:
            raise ConfigError(f"config.{field}={config[field]!r} must be > 0")
    for field in ("warmup_steps", "weight_decay", "grad_clip_norm", "end_lr_factor", "eps"):
        if not config[field] >= 0:
            raise ConfigError(f"config.{field}={config[field]!r} must be >= 0")
    for field in ("b1", "b2"):
        if not 0 <= config[field] < 1:
            raise ConfigError(f"config.{field}={config[field]!r} must be in [0, 1)")
    if config.keep_checkpoints < 1:
        raise ConfigError(f"config.keep_checkpoints={config.keep_checkpoints} must be >= 1")
    if config.eval_batch_size < 1:
        raise ConfigError(f"config.eval_batch_size={config.eval_batch_size} must be >= 1")
    if config.get("eval_every", 0) < 0:
        raise ConfigError(f"config.eval_every={config.eval_every} must be >= 0 (0 = off)")
    if config.get("eval_examples", 1) < 1:
        raise ConfigError(f"config.eval_examples={config.eval_examples} must be >= 1")
    check_choice("compute_dtype", config.compute_dtype, COMPUTE_DTYPES)
    check_choice("loss", loss_name(config), LOSSES)
    if loss_name(config) == "sigmoid":
        for field in SIGMOID_FIELDS:
            if not math.isfinite(float(config[field])):
                raise ConfigError(f"config.{field}={config[field]!r} must be finite")
    if not config.logit_scale_init <= MAX_LOGIT_SCALE:
        raise ConfigError(
            f"config.logit_scale_init={config.logit_scale_init} exceeds ln 100 = "
            f"{MAX_LOGIT_SCALE:.4f} (the clamp)"
        )
    if config.model.context_length < 2:
        raise ConfigError(
            f"config.model.context_length={config.model.context_length} must be >= 2 (SOT, EOT)"
        )
    try:  # widths, heads, activation (the image size is only known once the data is read)
        model_config(config, config.model.patch_size)
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from e


def _load_data(config: Any, split: str, tokenizer: Any | None):
    from jaxclip.data import load_dataset

    path = config.get("data_path") or None  # a file or folder: the TFDS data_dir is not used
    source = load_dataset(
        config.dataset, split, data_dir=None if path else config.data_dir or None, path=path
    )
    if tokenizer is not None and not source.info.has_captions:
        from jaxclip.config_args import ConfigError

        raise ConfigError(
            f"config.dataset={config.dataset!r} has no captions; CLIP training needs them "
            "(shapes, shapes/128, shapes/32, shapes/tiny have)"
        )
    # One square image size: a source of other or mixed sizes (a user's pairs) is resized to
    # 4 patches a side (mini's 4 x 4 token grid).
    shape = source.info.image_shape
    size = None if shape and shape[0] == shape[1] else 4 * int(config.model.patch_size)
    data = read_split(source, size=size)
    if tokenizer is None:
        return data
    return dataclasses.replace(data, captions=equal_caption_counts(data.captions))


def equal_caption_counts(captions: Sequence[Sequence[str]]) -> list[list[str]]:
    """Each image's captions repeated cyclically up to the largest count (a user's pairs file
    may give images different numbers of captions; training draws one of C per image)."""
    c = max((len(caps) for caps in captions), default=0)
    if c == 0 or any(len(caps) == 0 for caps in captions):
        from jaxclip.errors import UserValueError

        empty = next((i for i, caps in enumerate(captions) if not caps), 0)
        raise UserValueError(f"image {empty} has no caption; CLIP training needs one per image")
    return [[caps[j % len(caps)] for j in range(c)] for caps in captions]


OPTIMIZER_FIELDS = (
    "learning_rate",
    "warmup_steps",
    "num_steps",
    "end_lr_factor",
    "weight_decay",
    "b1",
    "b2",
    "eps",
    "grad_clip_norm",
)


@functools.lru_cache(maxsize=8)
def _setup(
    clip_config: Any,
    compute_dtype: str,
    optimizer_fields: tuple[tuple[str, Any], ...],
    devices: tuple[Any, ...],
    preprocess: Any,
    loss: str = "softmax",
):
    """(module, optimizer, schedule, jitted step), cached: runs in one process (tests,
    train_or_reuse after an interruption) reuse the compiled step."""
    from types import SimpleNamespace

    from jaxclip.models.clip import CLIP

    opt = SimpleNamespace(**dict(optimizer_fields))
    module = CLIP(clip_config, dtype=COMPUTE_DTYPES[compute_dtype])
    optimizer = make_optimizer(opt)
    schedule = learning_rate_schedule(opt)
    mesh = Mesh(np.array(devices), ("data",))
    return (
        module,
        optimizer,
        schedule,
        make_train_step(module, optimizer, schedule, mesh, preprocess, loss),
    )


@functools.lru_cache(maxsize=8)
def _embed_fn(clip_config: Any, compute_dtype: str, preprocess: Any) -> Callable:
    """`make_embed_fn` of the CLIP built like `_setup`'s, cached (one compilation per shape)."""
    from jaxclip.models.clip import CLIP

    return make_embed_fn(CLIP(clip_config, dtype=COMPUTE_DTYPES[compute_dtype]), preprocess)


def _write_identity(workdir: Path, config: Any, clip_config: Any) -> None:
    from jaxclip.models.variants import to_hf_config

    identity = run_identity(config)
    record = {
        "identity": identity,
        "hash": identity_hash(config),
        "model": to_hf_config(clip_config),
    }
    path = workdir / CONFIG_FILE
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("identity") != json.loads(json.dumps(identity, default=str)):
            diff = sorted(
                k
                for k in set(old.get("identity", {})) | set(identity)
                if old.get("identity", {}).get(k)
                != json.loads(json.dumps(identity.get(k), default=str))
            )
            from jaxclip.errors import UserValueError

            raise UserValueError(
                f"{workdir} holds a run with a different config (fields {diff}); resume it with "
                "its own config or use another workdir"
            )
        return
    atomic.write_json(path, json.loads(json.dumps(record, default=str)))


def train(
    config: Any,
    workdir: str | os.PathLike,
    *,
    stop_after: int | None = None,
    evaluate: bool = True,
) -> TrainResult:
    """Trains (or resumes training) a CLIP as `config` says, in `workdir`.

    Args:
      config: a ConfigDict as `configs/train_clip.py:get_config` returns.
      workdir: run folder; an existing run there (same config) is resumed from its newest
        complete checkpoint.
      stop_after: stop abruptly after this many steps of this call, as a kill would (no final
        checkpoint, no model, no evaluation); for tests and demos.
      evaluate: run the zero-shot attribute evaluation on `config.test_split` at the end.

    Returns:
      a `TrainResult`.
    """
    with quiet_orbax():
        return _train(config, workdir, stop_after, evaluate)


def _train(
    config: Any, workdir: str | os.PathLike, stop_after: int | None, evaluate: bool
) -> TrainResult:
    from jaxclip.config_args import ConfigError
    from jaxclip.data.preprocess import PreprocessConfig
    from jaxclip.models.load import from_params, save
    from jaxclip.models.tokenizer import EOT_ID, Tokenizer

    check_config(config)
    t_start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = make_mesh(int(config.num_devices))
    n_dev = mesh.devices.size
    if config.batch_size % n_dev:
        raise ConfigError(
            f"config.batch_size={config.batch_size} is not divisible by the {n_dev} devices"
        )

    # EOT padding, as jaxclip's saved tokenizer files state (positions after EOT never reach
    # the embedding of the causal tower).
    tokenizer = Tokenizer.openai(int(config.model.context_length), pad_token_id=EOT_ID)
    data = _load_data(config, config.train_split, tokenizer)
    if len(data) < config.batch_size:
        raise ConfigError(
            f"config.batch_size={config.batch_size} exceeds the {len(data)} training examples"
        )
    tokens = trim_to_eos(tokenize_captions(data.captions, tokenizer), tokenizer.eos_token_id)
    image_size = data.images.shape[1]
    if data.images.shape[1] != data.images.shape[2]:
        raise ValueError(f"training images must be square; got {data.images.shape[1:3]}")
    clip_config = model_config(config, image_size)
    preprocess = PreprocessConfig(image_size=image_size)
    _write_identity(workdir, config, clip_config)
    t_loaded = time.perf_counter()

    module, optimizer, _, train_step = _setup(
        clip_config,
        config.compute_dtype,
        tuple((k, config[k]) for k in OPTIMIZER_FIELDS),
        tuple(mesh.devices.flat),
        preprocess,
        loss_name(config),
    )
    replicated = NamedSharding(mesh, P())
    sharded = NamedSharding(mesh, P("data"))

    def fresh_state():
        params = init_params(module, int(config.seed))
        return {
            "step": jnp.zeros((), jnp.int32),
            "params": params,
            "opt_state": optimizer.init(params),
        }

    abstract = jax.eval_shape(fresh_state)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract
    )
    mngr, state, start = restore_latest(
        workdir / CHECKPOINT_DIR, abstract, int(config.keep_checkpoints)
    )
    if state is None:
        state = jax.device_put(fresh_state(), replicated)
    else:
        log.info("resuming %s from step %d", workdir, start)
    metrics_path = workdir / METRICS_FILE
    _keep_metrics_until(metrics_path, start)

    test = None
    evaluator = None
    if int(config.get("eval_every", 0)) > 0:
        test = _load_data(config, config.test_split, tokenizer)
        eval_set = make_eval_set(test, tokenizer, int(config.eval_examples))
        embed_fn = _embed_fn(clip_config, config.compute_dtype, preprocess)
        evaluator = make_evaluator(embed_fn, eval_set, replicated)

    num_steps = int(config.num_steps)
    end = num_steps if stop_after is None else min(num_steps, start + int(stop_after))
    state, t_first, t_trained, t_evals = _run_steps(
        config,
        state,
        train_step,
        data.images,
        tokens,
        sharded,
        mngr,
        metrics_path,
        start,
        end,
        evaluator,
    )

    params = jax.device_get(state["params"])
    reached = int(state["step"])
    steps_run = reached - start
    timed = steps_run - 1  # steps after the first (which includes the compilation)
    timing = {
        "load": t_loaded - t_start,
        "compile": (t_first - t_loaded) if t_first else 0.0,
        "train": (t_trained - t_first - t_evals) if t_first else 0.0,
        "eval_during_training": t_evals,
        # None (JSON null), not NaN, when this call ran fewer than 2 steps (a rerun of a
        # finished or nearly finished run): DONE.json and results.json are strict JSON.
        "steps_per_s": (timed / (t_trained - t_first - t_evals) if t_first and timed > 0 else None),
    }
    records = read_metrics(metrics_path)
    if records:
        write_metrics_csv(workdir / METRICS_CSV, records)
    result = TrainResult(
        workdir=workdir,
        model_dir=None,
        config=clip_config,
        params=params,
        start_step=start,
        num_steps=reached,
        metrics=records,
        zero_shot={},
        timing=timing,
    )
    if reached < num_steps:  # stopped early: like a kill, leave only the checkpoints
        timing["total"] = time.perf_counter() - t_start
        return result
    model_dir = workdir / MODEL_DIR
    save(model_dir, clip_config, params, tokenizer, preprocess)
    result.model_dir = model_dir
    if evaluate:
        t_eval = time.perf_counter()
        loaded = from_params(
            clip_config, params, tokenizer=tokenizer, preprocess=preprocess, name=str(model_dir)
        )
        test = test if test is not None else _load_data(config, config.test_split, None)
        result.zero_shot = evaluate_zero_shot_attributes(
            loaded, test, batch_size=int(config.eval_batch_size)
        )
        atomic.write_json(workdir / "zero_shot.json", result.zero_shot)
        timing["eval"] = time.perf_counter() - t_eval
    timing["total"] = time.perf_counter() - t_start
    atomic.write_json(
        workdir / DONE_FILE,
        {"step": reached, "hash": identity_hash(config), "steps_run": steps_run, "timing": timing},
    )
    return result


def _run_steps(
    config: Any,
    state: Any,
    train_step: Callable,
    images: np.ndarray,
    tokens: np.ndarray,
    sharded: NamedSharding,
    mngr: Any,
    metrics_path: Path,
    start: int,
    end: int,
    evaluator: Callable[[Any], dict[str, float]] | None = None,
) -> tuple[Any, float | None, float, float]:
    """Steps `start`..`end` of the training loop: batches, metrics lines, checkpoints, the
    progress bar, and `evaluator(params)` every `config.eval_every` steps and at the last step
    (merged into that step's metrics line, which is then written even off the `log_every` grid).
    Returns (state, time after the first step or None, time after the last, seconds spent in
    `evaluator`)."""
    from jaxclip import progress

    num_steps = int(config.num_steps)
    n_caps = tokens.shape[1]
    pending: list[dict[str, jax.Array]] = []
    eval_every = int(config.get("eval_every", 0)) if evaluator is not None else 0
    t_first, t_evals = None, 0.0
    last_log_t, last_log_step = time.perf_counter(), start
    bar = progress.bar(
        total=num_steps, initial=start, desc="train_clip", unit="step", disable=not config.progress
    )
    try:
        for step in range(start, end):
            img_idx, cap_idx = batch_indices(
                int(config.seed), step, len(images), int(config.batch_size), n_caps
            )
            batch_images = jax.device_put(images[img_idx], sharded)
            ids = jax.device_put(tokens[img_idx, cap_idx], sharded)
            state, metrics = train_step(state, batch_images, ids)
            pending.append(metrics)
            done = step + 1
            if t_first is None:
                jax.block_until_ready(state)
                t_first = time.perf_counter()
            eval_now = eval_every > 0 and (done % eval_every == 0 or done == num_steps)
            if done % config.log_every == 0 or done == num_steps or eval_now:
                host = jax.device_get(pending)
                pending = []
                now = time.perf_counter()
                rec = {"step": done}
                rec.update({k: float(np.mean([m[k] for m in host])) for k in host[0]})
                rec["steps_per_s"] = (done - last_log_step) / max(now - last_log_t, 1e-9)
                last_log_t, last_log_step = now, done
                if eval_now:
                    rec.update(evaluator(state["params"]))
                    took = time.perf_counter() - now
                    t_evals += took
                    last_log_t += took  # steps/s counts training only
                with open(metrics_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")
                bar.set_postfix(
                    loss=f"{rec['loss']:.3f}",
                    acc=f"{rec['accuracy_i2t']:.2f}",
                    scale=f"{rec['logit_scale']:.1f}",
                )
            if done % config.checkpoint_every == 0 or done == num_steps:
                import orbax.checkpoint as ocp

                mngr.save(done, args=ocp.args.StandardSave(state), force=True)
            bar.update(1)
        jax.block_until_ready(state)
        t_trained = time.perf_counter()
        mngr.wait_until_finished()
    finally:
        bar.close()
        mngr.close()  # waits for a save in flight
    return state, t_first, t_trained, t_evals


# --- evaluation during training -----------------------------------------------------------------

# Retrieval cut-offs logged during training.
EVAL_KS = (1, 5)


def eval_keys(attributes: Sequence[str]) -> list[str]:
    """The metric names an evaluation during training adds to a metrics record: zero-shot
    accuracy per attribute ("eval_zero_shot_<attribute>") and retrieval recall both ways
    ("eval_i2t_R@K", "eval_t2i_R@K" for K in EVAL_KS); all fractions in [0, 1]."""
    return [f"eval_zero_shot_{a}" for a in attributes] + [
        f"eval_{d}_R@{k}" for d in ("i2t", "t2i") for k in EVAL_KS
    ]


@dataclasses.dataclass(frozen=True, eq=False)
class EvalSet:
    """The fixed held-out subset evaluated during training, tokenised once.

    Attributes:
      images: uint8 (N, H, W, 3), the first N images of the test split.
      caption_ids: int32 (N, T) the first caption of each image (retrieval: caption i <-> image i).
      prompt_ids: int32 (P, T') every class prompt, attribute after attribute.
      prompt_slices: attribute -> (start, stop) rows of `prompt_ids`.
      labels: attribute -> int (N,) labels.
      classnames: attribute -> names of its values.
    """

    images: np.ndarray
    caption_ids: np.ndarray
    prompt_ids: np.ndarray
    prompt_slices: dict[str, tuple[int, int]]
    labels: dict[str, np.ndarray]
    classnames: dict[str, tuple[str, ...]]


def make_eval_set(
    split: CaptionedArrays,
    tokenizer: Any,
    num_examples: int,
    prompts: Mapping[str, str] | None = None,
) -> EvalSet:
    """The first `num_examples` items of `split` (all of them if fewer) and the zero-shot prompts
    of its attributes (`ATTRIBUTE_PROMPTS` by default), tokenised once (rows cut after the last
    EOS, `trim_to_eos`, which leaves every embedding unchanged)."""
    if num_examples < 1:
        raise ValueError(f"num_examples={num_examples} must be >= 1")
    n = min(int(num_examples), len(split))
    prompts = dict(ATTRIBUTE_PROMPTS if prompts is None else prompts)
    texts, slices = [], {}
    for attr, template in prompts.items():
        if attr in split.labels:
            names = split.classnames[attr]
            slices[attr] = (len(texts), len(texts) + len(names))
            texts += [template.format(name) for name in names]
    if not slices:
        raise ValueError(f"{split.name} has none of the attributes {sorted(prompts)}")
    captions = tokenize_captions([caps[:1] for caps in split.captions[:n]], tokenizer)[:, 0]
    eos = tokenizer.eos_token_id
    return EvalSet(
        images=split.images[:n],
        caption_ids=trim_to_eos(captions, eos).astype(np.int32),
        prompt_ids=trim_to_eos(np.asarray(tokenizer(texts)), eos).astype(np.int32),
        prompt_slices=slices,
        labels={a: split.labels[a][:n] for a in slices},
        classnames={a: split.classnames[a] for a in slices},
    )


def make_embed_fn(module: Any, preprocess: Any) -> Callable:
    """jit (params, images uint8, caption_ids, prompt_ids) -> raw (image, caption, prompt)
    embeddings, float32, computed with the model's own `encode_image` / `encode_text`."""
    from jaxclip.data.preprocess import normalize

    def embed(params, images, caption_ids, prompt_ids):
        variables = {"params": params}
        img, _ = module.apply(variables, normalize(images, preprocess), method="encode_image")
        cap, _ = module.apply(variables, caption_ids, method="encode_text")
        prm, _ = module.apply(variables, prompt_ids, method="encode_text")
        return img, cap, prm

    return jax.jit(embed)


def make_evaluator(embed_fn: Callable, eval_set: EvalSet, sharding: Any) -> Callable:
    """params -> {EVAL_KEYS: value}: zero-shot accuracy per attribute and retrieval recall.

    The images and tokens are put on the device once; each call encodes them with the current
    params (`embed_fn`, on the device) and scores them with the analysis functions the studies
    use: `jaxclip.analysis.zero_shot` (class weights = normalised prompt embedding, top-1 =
    argmax of the cosine, as `evaluate_zero_shot_attributes`) and
    `jaxclip.analysis.retrieval.recall_at_k` (exact ranks; caption i belongs to image i). It
    reads the params only: the training state and data order are untouched.
    """
    from jaxclip.analysis import retrieval, zero_shot

    arrays = jax.device_put((eval_set.images, eval_set.caption_ids, eval_set.prompt_ids), sharding)
    pairs = np.arange(len(eval_set.images))

    def evaluate(params: Any) -> dict[str, float]:
        img, cap, prm = embed_fn(params, *arrays)
        out: dict[str, float] = {}
        for attr, (a, b) in eval_set.prompt_slices.items():
            weights = zero_shot.class_text_embeddings(prm[a:b])
            res = zero_shot.evaluate_zero_shot(
                img, eval_set.labels[attr], weights, eval_set.classnames[attr]
            )
            out[f"eval_zero_shot_{attr}"] = float(res.top1)
        rec = retrieval.recall_at_k(img, cap, pairs, ks=EVAL_KS)
        for d, key in (("i2t", "image_to_text"), ("t2i", "text_to_image")):
            for k in EVAL_KS:
                out[f"eval_{d}_R@{k}"] = float(rec[key][f"R@{k}"])
        return out

    return evaluate


# --- zero-shot evaluation ----------------------------------------------------------------------


def evaluate_zero_shot_attributes(
    model: Any,
    split: Any,
    *,
    prompts: Mapping[str, str] | None = None,
    batch_size: int = 256,
    dataset: str = "shapes",
    data_dir: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]]:
    """Zero-shot accuracy of `model` on each attribute of a labelled split.

    For attribute a with values c = 1..K and prompt template p_a, the prediction for image x is
    argmax_c cos(f(x), g(p_a(name_c))) (Radford et al. 2021 §3.1.2), accuracy the fraction
    predicted right; chance is 1/K.

    Args:
      model: a `LoadedCLIP` (`jaxclip.load(...)` or `from_params`).
      split: a split name of `dataset` ("test"), a `jaxclip.data.DatasetSource` or a
        `CaptionedArrays` (sources are read into memory).
      prompts: attribute -> template with "{}" (default `ATTRIBUTE_PROMPTS`: "a photo of a {}",
        "a {} shape", "a {} shape" for shape, color, size). Attributes the split lacks are
        skipped.
      batch_size: images per encoder call.
      dataset, data_dir: where a split given by name is read from (`jaxclip.data.load_dataset`).

    Returns:
      {attribute: {"accuracy", "chance", "num_classes", "prompt", "per_class" (accuracy per
      value name), "num_examples"}}.
    """
    if isinstance(split, str):
        from jaxclip.data import load_dataset

        split = load_dataset(dataset, split, data_dir=data_dir)
    data = split if isinstance(split, CaptionedArrays) else read_split(split)
    prompts = dict(ATTRIBUTE_PROMPTS if prompts is None else prompts)
    for attr, template in prompts.items():
        if "{}" not in template:
            raise ValueError(f"prompt for {attr!r} must contain '{{}}'; got {template!r}")
    if not any(a in data.labels and data.classnames[a] for a in prompts):
        return {}  # no labelled attribute (e.g. a user's caption pairs)
    image_emb = model.encode_image(data.images, batch_size=batch_size, preprocess="device")
    image_emb = image_emb / np.linalg.norm(image_emb, axis=1, keepdims=True)
    out: dict[str, dict[str, Any]] = {}
    for attr, template in prompts.items():
        if attr not in data.labels or not data.classnames[attr]:
            continue  # e.g. the "shape" of caption pairs: no labels, no class names
        names = data.classnames[attr]
        text_emb = model.encode_text([template.format(n) for n in names])
        text_emb = text_emb / np.linalg.norm(text_emb, axis=1, keepdims=True)
        pred = np.argmax(image_emb @ text_emb.T, axis=1)
        truth = data.labels[attr]
        correct = pred == truth
        out[attr] = {
            "accuracy": float(np.mean(correct)),
            "chance": 1.0 / len(names),
            "num_classes": len(names),
            "prompt": template,
            "per_class": {
                n: float(np.mean(correct[truth == k])) if np.any(truth == k) else None
                for k, n in enumerate(names)
            },
            "num_examples": len(data),
        }
    return out


# --- train once, reuse after -------------------------------------------------------------------


def is_finished(workdir: str | os.PathLike) -> bool:
    """Whether `workdir` holds a finished run (DONE.json, written last, and the model)."""
    workdir = Path(workdir)
    return (workdir / DONE_FILE).is_file() and (workdir / MODEL_DIR / "config.json").is_file()


def run_folder(config: Any, cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder `train_or_reuse` trains `config` into (finished when `is_finished`)."""
    return models_root(cache_dir) / f"train_clip-{identity_hash(config)}"


def train_or_reuse(config: Any, cache_dir: str | os.PathLike | None = None) -> Path:
    """The model folder of a finished run of `config`, training it first if needed.

    The run lives in `models_root(cache_dir) / "train_clip-<identity_hash(config)>"`; a
    finished run there is reused as it is, an interrupted one is resumed, and parallel callers
    wait on a file lock so the model is trained once.

    The finished model is recorded under its `config.name` in the catalog
    (`jaxclip.models.catalog.record_trained`), so `jaxclip.load("mini")` opens it.

    Args:
      config: a train_clip ConfigDict (`configs/train_clip.py`; its default is the "mini" CLIP).
      cache_dir: cache root (see `jaxclip.models.catalog.models_root`).

    Returns:
      the model folder (open it with `jaxclip.load`).
    """
    workdir = run_folder(config, cache_dir)
    if not is_finished(workdir):
        with atomic.file_lock(workdir.parent / f".{workdir.name}.lock"):
            if not is_finished(workdir):
                log.info("training %s into %s", config.get("name", "CLIP"), workdir)
                train(config, workdir)
    if config.get("name"):
        record_trained(str(config.name), workdir / MODEL_DIR, cache_dir)
    return workdir / MODEL_DIR
