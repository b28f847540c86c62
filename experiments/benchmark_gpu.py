"""Benchmark on one GPU: encoders against PyTorch, end-to-end extraction, analyses; one run.

Every ratio is against a reference measured in the same run on the same machine. Parts:

  0  ceilings: a large bf16 matmul through JAX (the rate the encoder fractions refer to), an
     f32 matmul at Precision.HIGHEST (the exact analyses' matmuls) and a device-to-device copy.
  1  image encoders ViT-B/32 and ViT-L/14 (the real configs, random weights from the model's
     own initialisers), bf16, batch 1024: images/s, TFLOP/s (`benchmark_encode.image_flops`),
     fraction of the part-0 matmul rate, for each attention implementation
     (`CLIP(attn_implementation=None)`: XLA; "cudnn": cuDNN's fused attention); the same
     weights in transformers' PyTorch `CLIPModel` (sdpa) in float16 and bfloat16, in a
     subprocess of its own (`--torch_worker`, no JAX); each bf16 / fp16 output checked against
     PyTorch's float32 result of the same weights (TF32 off): relative error <= 1e-2.
  2  end to end: `extract_images` on a folder of 500x375 JPEGs generated here by a process
     pool (decode threads -> uint8 batches -> resize, crop, normalise on the device -> image
     tower -> cache shards), against the part-1 model-only rate and against the device work
     alone (the jitted extraction function on a batch already on the device); the host-only
     rate (`benchmark_extract.NoOpModel`) at several decode-thread counts says what limits it.
  3  analyses: the L2 sweep of `benchmark_probes` (50k x 512, 100 classes, 8 C values) against
     scikit-learn on the host; Recall@K (`analysis.retrieval.ranks`, blockwise, exact) on
     100k images x 500k captions, timed on as many captions as the time box allows and
     extrapolated, with a check against a float64 brute force and the matmul rate of each
     precision the device pass could use; exact conformity of 1M embeddings (closed form and
     blockwise brute force against the float64 closed form); the MLP grid vmapped vs a loop.

Time boxes: `--budget` seconds in all. Each part may use what is left minus the minimum the
later parts are promised (`PART_MIN_S`); each step first checks that its estimated time fits
its part's deadline and is otherwise skipped (recorded as such). Results go to
OUT/gpu_results.json after every step, so a run cut short keeps what it measured; a short table
is printed last (and written to OUT/gpu_table.md).

Usage:
  bash experiments/benchmark_gpu.sh                         # on the GPU machine (OUT=...)
  python -m experiments.benchmark_gpu --small --out /tmp/g  # tiny sizes on the CPU, ~2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

TARGETS = {
    "fraction_of_matmul": {"vit_l14": 0.50, "vit_b32": 0.35},
    "speedup_vs_torch": 1.5,
    "rel_err": 1e-2,
    "e2e_fraction_of_model": {"vit_l14": 0.80},
    "l2_sweep_vs_sklearn": 20.0,
    "mlp_vmap_vs_loop": 5.0,
}
# Seconds each part is promised whatever the parts before it used (the rest rolls forward).
PART_MIN_S = {0: 10.0, 1: 120.0, 2: 90.0, 3: 90.0}
FULL = {
    "models": ("vit_l14", "vit_b32"),
    "batch": 1024,
    "steps": 7,
    "images": 20_000,
    "unique_images": 2000,
    "image_wh": (500, 375),
    "probe": (50_000, 10_000, 512, 100),
    "retrieval": (100_000, 5),
    "conformity_n": 1_000_000,
    "mlp": {"hidden": (256,), "batch_size": 256, "epochs": 5},
}
SMALL = {
    "models": ("tiny",),
    "batch": 16,
    "steps": 3,
    "images": 96,
    "unique_images": 12,
    "image_wh": (160, 120),
    "probe": (4000, 1000, 64, 20),
    "retrieval": (2000, 5),
    "conformity_n": 5000,
    "mlp": {"hidden": (64,), "batch_size": 128, "epochs": 3},
}


# --- time boxes and results ----------------------------------------------------------------------


class Budget:
    """The run's time box; `deadline(part)` = end minus what the later parts are promised."""

    def __init__(self, seconds: float, parts: list[int]):
        self.start = time.perf_counter()
        self.end = self.start + seconds
        self.parts = parts
        # A box smaller than the promises scales them down alike.
        self.scale = min(1.0, seconds / max(1.0, sum(PART_MIN_S[p] for p in parts)))

    def left(self) -> float:
        return self.end - time.perf_counter()

    def deadline(self, part: int) -> float:
        later = sum(PART_MIN_S[p] for p in self.parts if p > part)
        return self.end - self.scale * later


class Recorder:
    """Holds the results; writes OUT/gpu_results.json after every step."""

    def __init__(self, out: Path, meta: dict[str, Any]):
        self.out = out
        self.results: dict[str, Any] = {"meta": meta}
        self.out.mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        from jaxclip import atomic
        from jaxclip.report.records import to_jsonable

        self.results["meta"]["elapsed_s"] = time.perf_counter() - _T0
        atomic.write_json(self.out / "gpu_results.json", to_jsonable(_plain(self.results)))

    def step(
        self, path: str, deadline: float, estimate_s: float, fn: Callable[[], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Runs fn() if its estimate fits before `deadline`; records its dict (or why not)."""
        left = deadline - time.perf_counter()
        if left < estimate_s:
            rec: dict[str, Any] = {
                "skipped": f"time box: {left:.0f} s left, needs ~{estimate_s:.0f} s"
            }
            print(f"[skip] {path}: {rec['skipped']}", flush=True)
            self._put(path, rec)
            self.save()
            return None
        print(f"[run ] {path} ({left:.0f} s left in this part)", flush=True)
        t0 = time.perf_counter()
        try:
            rec = fn()
        except Exception as e:  # recorded; the run goes on with the next step
            traceback.print_exc()
            rec = {"error": f"{type(e).__name__}: {e}"[:3000]}
        rec["step_seconds"] = time.perf_counter() - t0
        self._put(path, rec)
        self.save()
        print(f"[done] {path} in {rec['step_seconds']:.1f} s", flush=True)
        return None if "error" in rec else rec

    def _put(self, path: str, rec: dict[str, Any]) -> None:
        node = self.results
        keys = path.split("/")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = rec

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.results
        for k in path.split("/"):
            if not isinstance(node, dict) or k not in node:
                return default
            node = node[k]
        return node


def _plain(obj: Any) -> Any:
    """Drops what JSON cannot hold (objects returned by the reused benchmark sections)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool, int, float, np.generic, np.ndarray)):
        return obj
    if hasattr(obj, "__array__"):
        return np.asarray(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    return repr(obj)[:200]


_T0 = time.perf_counter()


# --- timing helpers ------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], Any], reps: int, warmup: int = 2) -> tuple[float, list[float]]:
    """Median wall seconds of fn() (its result blocked on) over `reps` calls after warm-up."""
    import jax

    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    """||out - ref|| / ||ref|| (Frobenius; NaN anywhere gives inf)."""
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    if not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.linalg.norm(out - ref) / np.linalg.norm(ref))


def use_repo_tests_package() -> None:
    """Makes `tests` this repository's folder (where `tests.reference_models` lives, which
    `benchmark_encode` imports), even if some installed distribution ships a `tests` package."""
    import types

    folder = str(Path(__file__).resolve().parents[1] / "tests")
    if folder not in list(getattr(sys.modules.get("tests"), "__path__", [])):
        package = types.ModuleType("tests")
        package.__path__ = [folder]
        sys.modules["tests"] = package


def host_cores() -> int:
    from experiments.benchmark_extract import host_cores as cores

    return cores()


# --- part 0: ceilings ----------------------------------------------------------------------------


def bench_ceilings(small: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    n = 512 if small else 8192
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    # Random data (zeros run faster than real data on this hardware).
    a = jax.random.normal(k1, (n, n), jnp.bfloat16)
    b = jax.random.normal(k2, (n, n), jnp.bfloat16)
    mm = jax.jit(lambda x, y: x @ y)
    t_bf16, _ = median_seconds(lambda: mm(a, b), reps=10, warmup=3)
    a32, b32 = a.astype(jnp.float32), b.astype(jnp.float32)
    mm32 = jax.jit(lambda x, y: jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
    t_f32, _ = median_seconds(lambda: mm32(a32, b32), reps=5, warmup=2)
    flop = 2.0 * n**3
    m = (1 << 22) if small else (1 << 28)  # float32 elements: 16 MiB / 1 GiB
    x = jax.random.normal(k1, (m,), jnp.float32)
    add = jax.jit(lambda v: v + 1.0)
    t_copy, _ = median_seconds(lambda: add(x), reps=10, warmup=2)
    return {
        "matmul_n": n,
        "bf16_matmul_tflops": flop / t_bf16 / 1e12,
        "f32_highest_matmul_tflops": flop / t_f32 / 1e12,
        "copy_tb_s": 2 * 4 * m / t_copy / 1e12,
    }


# --- part 1: encoders ----------------------------------------------------------------------------


def init_params(cfg, seed: int):
    """Random parameters from the model's own initialisers (realistic activation scales)."""
    import jax
    import jax.numpy as jnp

    from jaxclip.models.clip import CLIP

    s = cfg.vision.image_size
    return jax.jit(CLIP(cfg).init)(
        jax.random.PRNGKey(seed),
        jnp.zeros((1, s, s, 3), jnp.float32),
        jnp.full((1, cfg.text.context_length), cfg.text.eos_token_id, jnp.int32),
    )["params"]


def pixels_for(cfg, batch: int, seed: int) -> np.ndarray:
    """The benchmark's normalised NHWC pixels; the torch worker draws the same ones."""
    s = cfg.vision.image_size
    return np.random.default_rng(seed).standard_normal((batch, s, s, 3), dtype=np.float32)


def _encode_fn(module):
    from jaxclip.models.clip import CLIP

    def fn(params, x):
        return module.apply({"params": params}, x, method=CLIP.encode_image)[0]

    return fn


def bench_jax_encoder(
    cfg, params, x, impl: str | None, steps: int, n_check: int, matmul_tflops: float | None
):
    """One attention implementation: compile time, images/s, TFLOP/s, the first rows' output."""
    import jax
    import jax.numpy as jnp

    from experiments.benchmark_encode import image_flops
    from jaxclip.models.clip import CLIP

    module = CLIP(cfg, dtype=jnp.bfloat16, attn_implementation=impl)
    t0 = time.perf_counter()
    compiled = jax.jit(_encode_fn(module)).lower(params, x).compile()
    compile_s = time.perf_counter() - t0
    t, times = median_seconds(lambda: compiled(params, x), reps=steps)
    out = np.asarray(compiled(params, x)[:n_check], np.float32)
    b = x.shape[0]
    tflops = b / t * image_flops(cfg) / 1e12
    rec = {
        "attn_implementation": impl or "xla (default)",
        "compile_s": compile_s,
        "seconds_per_batch": t,
        "times": times,
        "images_per_s": b / t,
        "tflops": tflops,
    }
    if matmul_tflops:
        rec["fraction_of_matmul"] = tflops / matmul_tflops
    return rec, out


def bench_jax_fp32(cfg, params, x_check):
    """The JAX model in float32 at Precision.HIGHEST on the check rows (a second fp32 result)."""
    import jax
    import jax.numpy as jnp

    from jaxclip.models.clip import CLIP

    with jax.default_matmul_precision("highest"):
        fn = jax.jit(_encode_fn(CLIP(cfg, dtype=jnp.float32)))
        return np.asarray(fn(params, x_check), np.float32)


def run_torch_worker(spec: dict[str, Any], tmp: Path, timeout: float) -> dict[str, Any]:
    """`torch_worker` in a fresh interpreter (no JAX in it); its JSON result."""
    spec_path = tmp / f"torch-spec-{spec['model']}.json"
    spec_path.write_text(json.dumps(spec))
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "experiments.benchmark_gpu", "--torch_worker", str(spec_path)]
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=max(10.0, timeout)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"torch worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_worker(spec_path: str) -> None:
    """transformers' CLIPModel (sdpa) with the given weights: fp32 result of the check rows
    (TF32 off), then images/s and the check rows' output per low-precision dtype."""
    import torch
    import transformers
    from safetensors.numpy import load_file

    from tests.reference_models import hf_clip_model

    spec = json.loads(Path(spec_path).read_text())
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    t0 = time.perf_counter()
    with torch.device(dev):
        model = hf_clip_model(spec["hf_config"], load_file(spec["weights"]))
    res: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if dev == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "build_s": time.perf_counter() - t0,
        "jax_imported": "jax" in sys.modules,
    }
    b, n = spec["batch"], spec["n_check"]
    pixels = np.random.default_rng(spec["seed"]).standard_normal(
        (b, spec["image_size"], spec["image_size"], 3), dtype=np.float32
    )
    x32 = torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))).to(dev)
    del pixels

    def image(m, x):
        out = m.get_image_features(pixel_values=x)
        return out if torch.is_tensor(out) else out.pooler_output

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        np.save(spec["out_prefix"] + "-float32.npy", image(model, x32[:n]).float().cpu().numpy())
        for name in spec["dtypes"]:
            try:
                dtype = getattr(torch, name)
                m = copy.deepcopy(model).to(dtype)
                x = x32.to(dtype)
                np.save(spec["out_prefix"] + f"-{name}.npy", image(m, x[:n]).float().cpu().numpy())
                for _ in range(2):
                    image(m, x)
                sync()
                times = []
                for _ in range(spec["steps"]):
                    t0 = time.perf_counter()
                    image(m, x)
                    sync()
                    times.append(time.perf_counter() - t0)
                t = statistics.median(times)
                res[name] = {"seconds_per_batch": t, "times": times, "images_per_s": b / t}
                del m, x
                if dev == "cuda":
                    torch.cuda.empty_cache()
            except Exception as e:
                res[name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
    print(json.dumps(res))


def part_encoders(rec: Recorder, budget: Budget, cfgs: dict, ctx: dict, args) -> None:
    import jax
    import jax.numpy as jnp
    from safetensors.numpy import save_file

    from jaxclip.models import convert
    from jaxclip.models.variants import to_hf_config

    deadline = budget.deadline(1)
    on_gpu = jax.default_backend() == "gpu"
    matmul = rec.get("ceilings/bf16_matmul_tflops")
    impls = [None, "cudnn"]  # on a CPU the cuDNN attempt fails at once (recorded)
    n_check = min(128, args.batch)
    tmp: Path = ctx["tmp"]
    # Rough seconds per model (compile both implementations + timing + torch), for the box.
    est = {"vit_l14": 100.0, "vit_b32": 45.0}
    for name, cfg in cfgs.items():
        key = f"encode/{name}"
        scale = 1.0 if not args.small else 0.1

        def build(name=name, cfg=cfg):
            t0 = time.perf_counter()
            params = init_params(cfg, args.seed)
            jax.block_until_ready(params)
            ctx.setdefault("params", {})[name] = params
            return {"init_s": time.perf_counter() - t0}

        if rec.step(f"{key}/build", deadline, 15 * scale, build) is None:
            continue
        params = ctx["params"][name]
        x = jax.device_put(jnp.asarray(pixels_for(cfg, args.batch, args.seed)))
        outs: dict[str, np.ndarray] = {}
        for impl in impls:
            label = impl or "xla"

            def one(impl=impl, label=label, cfg=cfg, params=params, x=x, outs=outs):
                r, out = bench_jax_encoder(cfg, params, x, impl, args.steps, n_check, matmul)
                outs[label] = out
                return r

            rec.step(f"{key}/jax_{label}", deadline, est.get(name, 20.0) * 0.3 * scale, one)
        del x
        timed = {
            label: rec.get(f"{key}/jax_{label}/images_per_s")
            for label in ("xla", "cudnn")
            if rec.get(f"{key}/jax_{label}/images_per_s")
        }
        if timed:
            best = max(timed, key=timed.get)
            ctx.setdefault("best_impl", {})[name] = None if best == "xla" else best
            ctx.setdefault("model_only", {})[name] = timed[best]
            rec.results["encode"][name]["best"] = {"attn": best, "images_per_s": timed[best]}

        prefix = str(tmp / f"torch-{name}")

        def torch_side(name=name, cfg=cfg, params=params, prefix=prefix):
            weights = tmp / f"weights-{name}.safetensors"
            save_file(convert.params_to_hf_torch(params), str(weights))
            spec = {
                "model": name,
                "hf_config": to_hf_config(cfg),
                "weights": str(weights),
                "image_size": cfg.vision.image_size,
                "batch": args.batch,
                "seed": args.seed,
                "n_check": n_check,
                "steps": args.steps,
                "dtypes": ["float16", "bfloat16"],
                "out_prefix": prefix,
            }
            r = run_torch_worker(spec, tmp, deadline - time.perf_counter())
            weights.unlink()
            return r

        torch_rec = rec.step(
            f"{key}/torch", deadline, est.get(name, 20.0) * 0.3 * scale, torch_side
        )

        def checks(cfg=cfg, params=params, prefix=prefix, outs=outs):
            ref_path = Path(prefix + "-float32.npy")
            if not ref_path.exists():
                return {"error": "no float32 reference (the torch side did not run)"}
            ref = np.load(ref_path)
            out: dict[str, Any] = {"reference": "torch float32 (TF32 off), same weights"}
            for label, y in outs.items():
                out[f"jax_bf16_{label}"] = rel_err(y, ref)
            for dt in ("float16", "bfloat16"):
                p = Path(prefix + f"-{dt}.npy")
                if p.exists():
                    out[f"torch_{dt}"] = rel_err(np.load(p), ref)
            if not on_gpu or args.fp32_check:
                x_check = jnp.asarray(pixels_for(cfg, args.batch, args.seed)[:n_check])
                out["jax_float32_highest"] = rel_err(bench_jax_fp32(cfg, params, x_check), ref)
            errs = [v for k, v in out.items() if k.startswith(("jax_bf16", "torch_"))]
            out["all_within_tolerance"] = bool(errs) and max(errs) <= TARGETS["rel_err"]
            return out

        rec.step(f"{key}/rel_err", deadline, 5.0 * scale, checks)
        if torch_rec and timed:
            rates = {
                dt: torch_rec[dt]["images_per_s"]
                for dt in ("float16", "bfloat16")
                if isinstance(torch_rec.get(dt), dict) and "images_per_s" in torch_rec[dt]
            }
            if rates:
                best_t = max(rates, key=rates.get)
                rec.results["encode"][name]["speedup_vs_torch"] = {
                    "jax_best_images_per_s": timed[best],
                    "torch_best": best_t,
                    "torch_best_images_per_s": rates[best_t],
                    "ratio": timed[best] / rates[best_t],
                    **{f"ratio_vs_{dt}": timed[best] / r for dt, r in rates.items()},
                }
                rec.save()


# --- part 2: end to end --------------------------------------------------------------------------


def _jpeg_worker(job: tuple[str, int, list[int], int, int, int, int]) -> int:
    """Writes JPEGs `idx` (natural-looking content from benchmark_extract.natural_png)."""
    from PIL import Image

    from experiments.benchmark_extract import natural_png

    folder, seed, idx, width, height, classes, quality = job
    rng = np.random.default_rng([seed, idx[0]])
    for i in idx:
        with Image.open(io.BytesIO(natural_png(rng, width, height))) as im:
            path = Path(folder) / f"class{i % classes}" / f"img{i:06d}.jpg"
            im.convert("RGB").save(path, "JPEG", quality=quality)
    return len(idx)


def make_jpeg_folder(
    root: Path, n: int, unique: int, wh: tuple[int, int], seed: int = 0, classes: int = 10
) -> dict[str, Any]:
    """`unique` JPEGs made by a process pool (all cores), the other n - unique files hard links
    to them (decoding costs the same per file); `classes` class folders."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    root.mkdir(parents=True, exist_ok=True)
    for c in range(classes):
        (root / f"class{c}").mkdir(exist_ok=True)
    unique = max(1, min(unique, n))
    procs = max(1, min(host_cores(), unique))
    chunk = -(-unique // (4 * procs))
    jobs = [
        (str(root), seed, list(range(s, min(unique, s + chunk))), *wh, classes, 90)
        for s in range(0, unique, chunk)
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
        done = sum(pool.map(_jpeg_worker, jobs))
    gen_s = time.perf_counter() - t0
    for i in range(unique, n):
        src = root / f"class{(i % unique) % classes}" / f"img{i % unique:06d}.jpg"
        dst = root / f"class{i % classes}" / f"img{i:06d}.jpg"
        try:
            os.link(src, dst)
        except OSError:
            dst.write_bytes(src.read_bytes())
    sizes = [p.stat().st_size for p in root.glob("class*/img*.jpg")]
    return {
        "images": len(sizes),
        "unique": done,
        "size": f"{wh[0]}x{wh[1]}",
        "processes": procs,
        "generate_s": gen_s,
        "total_s": time.perf_counter() - t0,
        "mean_kb": float(np.mean(sizes) / 1024),
    }


def part_e2e(rec: Recorder, budget: Budget, cfgs: dict, ctx: dict, args) -> None:
    import jax

    from experiments.benchmark_extract import NoOpModel, host_breakdown, time_jaxclip
    from jaxclip.data.datasets import FolderSource
    from jaxclip.data.subset import SubsetSource
    from jaxclip.features.extract import _cached_apply, image_encode_fn
    from jaxclip.models.load import from_params
    from jaxclip.models.tokenizer import Tokenizer

    deadline = budget.deadline(2)
    scale = 0.1 if args.small else 1.0
    tmp: Path = ctx["tmp"]
    folder = tmp / "jpegs"
    workers = args.workers or host_cores()
    sizes = SMALL if args.small else FULL
    made = rec.step(
        "e2e/jpegs",
        deadline,
        25 * scale,
        lambda: make_jpeg_folder(folder, args.images, args.unique_images, sizes["image_wh"]),
    )
    if made is None:
        return
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    source = FolderSource(
        folder, name="jpeg", split="all", classes=classes, classnames=classes, cache_dir=None
    )

    def verify():
        t0 = time.perf_counter()
        n = len(source)  # the one-off decode check of every file (threads), not in the rates
        paths = [str(folder / rel) for rel in source.files[:64]]
        size = next(iter(cfgs.values())).vision.image_size
        return {
            "images": n,
            "verify_s": time.perf_counter() - t0,
            "image_shape": source.info.image_shape,
            "host_ms_single_thread": host_breakdown(paths, size),
        }

    if rec.step("e2e/folder", deadline, 10 * scale, verify) is None:
        return
    tokenizer = Tokenizer.openai(77)
    est = {"vit_l14": 70.0, "vit_b32": 30.0}
    noop_base = None
    for name, cfg in cfgs.items():
        params = ctx.get("params", {}).get(name)
        if params is None:
            params = init_params(cfg, args.seed)
        model = from_params(cfg, params, tokenizer=tokenizer, name=f"{name}-random")
        impl = ctx.get("best_impl", {}).get(name)
        model = dataclasses.replace(model, module=model.module.clone(attn_implementation=impl))
        model.__dict__["fingerprint"] = f"random-{name}-seed{args.seed}"  # skip hashing
        if noop_base is None:
            noop_base = model
        ns = SimpleNamespace(batch=args.batch, workers=workers, dtype="bfloat16")

        def e2e(name=name, model=model, ns=ns):
            r = time_jaxclip(model, source, ns, tmp / f"cache-{name}", host_resize=False)
            out = {
                "images": len(source),
                "attn_implementation": model.module.attn_implementation or "xla (default)",
                "decode_threads": workers,
                "batch": args.batch,
                "images_per_s": r["images_per_s"],
                "seconds": r["seconds"],
                "warmup_compile_s": r["warmup_seconds"],
                "resized_on": r["resized_on"],
            }
            # The device work alone: the same compiled extraction function on a uint8 batch
            # already on the device (resize + crop + normalise + tower).
            apply = _cached_apply(
                model,
                ("image", "device", "bfloat16"),
                lambda: image_encode_fn(model, "device", "bfloat16"),
                jax.devices(),
            )
            first = np.stack([source[i]["image"] for i in range(min(64, len(source)))])
            batch = np.resize(first, (args.batch, *first.shape[1:]))
            t0 = time.perf_counter()
            xb = jax.block_until_ready(jax.device_put(batch, apply.data))
            out["h2d_gb_s"] = batch.nbytes / (time.perf_counter() - t0) / 1e9
            t, _ = median_seconds(lambda: apply._fn(apply.params, xb), reps=args.steps)
            out["device_only_images_per_s"] = args.batch / t
            out["fraction_of_device_only"] = r["images_per_s"] / out["device_only_images_per_s"]
            model_only = ctx.get("model_only", {}).get(name)
            if model_only:
                out["model_only_images_per_s"] = model_only
                out["fraction_of_model_only"] = r["images_per_s"] / model_only
            return out

        rec.step(f"e2e/{name}", deadline, est.get(name, 20.0) * scale, e2e)

    # What the host reaches: the same pipeline with the tower replaced by a no-op (the device
    # still resizes every pixel), at the default thread count on everything, then a sweep.
    noop = NoOpModel(noop_base)

    def host_only(threads: int, n: int):
        sub = source if n >= len(source) else SubsetSource(source, np.arange(n))
        ns = SimpleNamespace(batch=args.batch, workers=threads, dtype="bfloat16")
        r = time_jaxclip(noop, sub, ns, tmp / f"noop-{threads}-{n}", host_resize=False)
        return {"threads": threads, "images": n, "images_per_s": r["images_per_s"]}

    rec.step("e2e/host_only", deadline, 10 * scale, lambda: host_only(workers, len(source)))
    n_sweep = min(len(source), 4 * args.batch if args.small else 6144)
    for threads in sorted({max(1, workers // 4), max(1, workers // 2), workers, 2 * workers}):
        rec.step(
            f"e2e/host_threads/{threads}",
            deadline,
            5 * scale,
            lambda t=threads: host_only(t, n_sweep),
        )


# --- part 3: analyses ----------------------------------------------------------------------------


def bench_l2(sizes, reps: int) -> dict[str, Any]:
    from experiments.benchmark_probes import bench_l2_sweep, make_isotropic

    n_tr, n_te, dim, n_cls = sizes
    r = bench_l2_sweep(
        "isotropic", make_isotropic(n_tr, n_te, dim, n_cls), np.logspace(-3, 4, 8), reps
    )
    r.pop("figure", None)
    return {
        "sizes": {"train": n_tr, "test": n_te, "dim": dim, "classes": n_cls, "C values": 8},
        "sklearn_s": r["sklearn"]["seconds"],
        "jax_warm_s": r["jax"]["warm_s"],
        "jax_cold_s": r["jax"]["cold_s"],
        "speedup": r["speedup_vs_sklearn"],
        "speedup_cold": r["speedup_vs_sklearn_cold"],
        "best_acc_sklearn": float(np.max(r["sklearn"]["test_acc"])),
        "best_acc_jax": float(np.max(r["jax"]["test_acc"])),
        "best_acc_gap_points": r["best_acc_gap_points"],
        "solver_batched_vs_loop": {
            k: r["solver_batched_vs_loop"][k] for k in ("ratio_tol", "ratio_fixed")
        },
        "host_cores": host_cores(),
    }


def bench_retrieval(sizes, block: int, seconds: float, f32_tflops: float | None) -> dict[str, Any]:
    """Exact ranks on Ni images x as many of the Ni * cpi captions as `seconds` allows."""
    import jax
    import jax.numpy as jnp

    from experiments.benchmark_retrieval import make_data
    from jaxclip.analysis import retrieval

    ni, cpi = sizes
    dim = 512
    images, texts, t2i = make_data(ni, cpi, dim, 0.3, 0)
    nt = len(texts)
    out: dict[str, Any] = {"images": ni, "captions": nt, "dim": dim, "block_rows": block}
    # Matmul rate of one caption block against the gallery, per precision the pass could use,
    # and the worst error against float64 (the pass settles comparisons outside the margin).
    img = images / np.linalg.norm(images, axis=1, keepdims=True)
    txt = texts[:block] / np.linalg.norm(texts[:block], axis=1, keepdims=True)
    g, q = jax.device_put(jnp.asarray(img)), jax.device_put(jnp.asarray(txt))
    ref = txt[:64].astype(np.float64) @ img.astype(np.float64).T
    out["margin"] = retrieval.rounding_margin(dim)
    presets = {"highest": jax.lax.Precision.HIGHEST, "default": jax.lax.Precision.DEFAULT}
    algo = getattr(jax.lax, "DotAlgorithmPreset", None)
    if algo is not None:
        for name in ("BF16_BF16_F32_X6", "TF32_TF32_F32_X3", "BF16_BF16_F32_X3"):
            if hasattr(algo, name):
                presets[name.lower()] = getattr(algo, name)
    rates = {}
    for name, prec in presets.items():
        try:
            f = jax.jit(lambda a, b, p=prec: jnp.matmul(a, b.T, precision=p))
            t, _ = median_seconds(lambda f=f, q=q, g=g: f(q, g), reps=3, warmup=1)
            err = float(np.max(np.abs(np.asarray(f(q[:64], g), np.float64) - ref)))
            rates[name] = {"tflops": 2.0 * block * ni * dim / t / 1e12, "max_abs_err": err}
        except Exception as e:
            rates[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
    out["block_matmul"] = rates
    g = q = None  # free the device copies
    # How many captions fit the time box (the pass is ~linear in them): from the HIGHEST rate.
    tf = rates.get("highest", {}).get("tflops") or f32_tflops or 1.0
    per_caption_s = 2.0 * ni * dim / (tf * 1e12) * 1.3  # + counting and host work
    nq = int(min(nt, max(block, seconds / per_caption_s)))
    rng = np.random.default_rng(1)
    sub = np.sort(rng.choice(nt, nq, replace=False))
    t0 = time.perf_counter()
    r = retrieval.ranks(images, texts[sub], t2i[sub], block_size=block)
    out["cold_s"] = time.perf_counter() - t0
    out["queries_timed"] = nq
    if out["cold_s"] < seconds / 2:
        t0 = time.perf_counter()
        retrieval.ranks(images, texts[sub], t2i[sub], block_size=block)
        out["warm_s"] = time.perf_counter() - t0
    t = out.get("warm_s", out["cold_s"])
    out["captions_per_s"] = nq / t
    out["pairs_per_s"] = nq * ni / t
    out["full_problem_estimate_s"] = t * nt / nq
    out["refined_queries"] = [r.refined_text_queries, r.refined_image_queries]
    out["recall_text_to_image"] = retrieval.recall_from_ranks(r.text_to_image)
    has = r.image_to_text >= 0
    out["recall_image_to_text"] = retrieval.recall_from_ranks(r.image_to_text[has])
    # Exactness: float64 brute force on some queries of each direction.
    txt_sub = texts[sub] / np.linalg.norm(texts[sub], axis=1, keepdims=True)
    img64, txt64 = img.astype(np.float64), txt_sub.astype(np.float64)
    qs = np.arange(min(256, nq))
    s = txt64[qs] @ img64.T
    true = s[np.arange(qs.size), t2i[sub][qs]][:, None]
    t2i_ok = np.array_equal(np.sum(s > true, axis=1), r.text_to_image[qs])
    owners = np.flatnonzero(has)[:64]
    s = img64[owners] @ txt64.T
    own = t2i[sub][None, :] == owners[:, None]
    top = np.max(np.where(own, s, -np.inf), axis=1, keepdims=True)
    i2t_ok = np.array_equal(np.sum(s > top, axis=1), r.image_to_text[owners])
    out["exact_vs_float64"] = {"text_to_image": bool(t2i_ok), "image_to_text": bool(i2t_ok)}
    # Device working memory of the blockwise pass (compiled), independent of Nt beyond rows.
    try:
        lowered = retrieval._device_pass.lower(
            jnp.zeros((nq, dim), jnp.float32),
            jnp.zeros((ni, dim), jnp.float32),
            jnp.zeros((nq,), jnp.int32),
            jnp.zeros((ni,), jnp.float32),
            jnp.float32(0.0),
            block=retrieval._block_size(nq, ni, block),
        )
        mem = lowered.compile().memory_analysis()
        out["device_temp_gb"] = getattr(mem, "temp_size_in_bytes", 0) / 1e9
    except Exception as e:
        out["device_temp_gb"] = f"n/a ({type(e).__name__})"
    return out


def bench_conformity(n: int, block: int, left: Callable[[], float], f32_tflops) -> dict[str, Any]:
    import jax

    from experiments.benchmark_conformity import make_embeddings
    from jaxclip.analysis.conformity import conformity, conformity_blockwise

    d = 512
    x_np = make_embeddings(n, d)
    t0 = time.perf_counter()
    ref = conformity(x_np)  # numpy float64, the exact reference
    out: dict[str, Any] = {"n": n, "d": d, "numpy_float64_closed_s": time.perf_counter() - t0}
    x = jax.device_put(x_np)
    del x_np
    closed = jax.jit(conformity)
    t0 = time.perf_counter()
    c = closed.lower(x).compile()
    out["jax_closed_compile_s"] = time.perf_counter() - t0
    t, _ = median_seconds(lambda: c(x), reps=5)
    out["jax_closed_s"] = t
    out["jax_closed_max_abs_diff"] = float(np.max(np.abs(np.asarray(c(x), np.float64) - ref)))
    flop = n * n * d  # the upper triangle of blocks: N^2 / 2 pairs x 2 D
    for prec in ("highest", "default"):
        est = flop / ((f32_tflops or 1.0) * 1e12) * (1.0 if prec == "highest" else 0.3) + 10
        if left() < est:
            out[f"blockwise_{prec}"] = {"skipped": f"needs ~{est:.0f} s, {left():.0f} s left"}
            continue
        with jax.default_matmul_precision(prec):
            fn = jax.jit(lambda a: conformity_blockwise(a, block_size=block))
            t0 = time.perf_counter()
            cb = fn.lower(x).compile()
            comp = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = np.asarray(jax.block_until_ready(cb(x)), np.float64)
            secs = time.perf_counter() - t0
        out[f"blockwise_{prec}"] = {
            "block": block,
            "compile_s": comp,
            "seconds": secs,
            "tflops": flop / secs / 1e12,
            "max_abs_diff": float(np.max(np.abs(res - ref))),
        }
    return out


def bench_mlp(sizes, kw: dict, reps: int) -> dict[str, Any]:
    from experiments.benchmark_probes import _logit_features, bench_mlp_seeds, make_clip_like

    n_tr, n_te, dim, n_cls = sizes
    z = _logit_features(make_clip_like(n_tr, n_te, dim, n_cls), 32)
    r = bench_mlp_seeds(z, reps, kw)
    return {
        "members": 16,
        "features": "32 prompt cosines of clip_like",
        **kw,
        "vmap_s": r["times"]["vmap"]["warm_s"],
        "loop_s": r["times"]["loop"]["warm_s"],
        "ratio": r["ratio"],
        "max_val_acc_diff": r["max_val_acc_diff"],
    }


def part_analyses(rec: Recorder, budget: Budget, args) -> None:
    deadline = budget.deadline(3)
    sizes = SMALL if args.small else FULL
    scale = 0.1 if args.small else 1.0
    f32 = rec.get("ceilings/f32_highest_matmul_tflops")
    rec.step("analyses/l2_sweep", deadline, 40 * scale, lambda: bench_l2(sizes["probe"], 2))
    rec.step(
        "analyses/retrieval",
        deadline,
        25 * scale,
        lambda: bench_retrieval(
            sizes["retrieval"],
            args.retrieval_block,
            max(2.0, min(args.retrieval_seconds, (deadline - time.perf_counter()) / 3)),
            f32,
        ),
    )
    rec.step(
        "analyses/conformity",
        deadline,
        15 * scale,
        lambda: bench_conformity(
            sizes["conformity_n"],
            args.conformity_block,
            lambda: deadline - time.perf_counter() - 20 * scale,
            f32,
        ),
    )
    rec.step(
        "analyses/mlp_grid",
        deadline,
        20 * scale,
        lambda: bench_mlp(sizes["probe"], sizes["mlp"], 2),
    )


# --- report --------------------------------------------------------------------------------------


def _f(x: Any, spec: str = ".1f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) and x == x else "-"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("MET" if ok else "MISSED")


def report(rec: Recorder) -> str:
    r = rec.results
    m = r["meta"]
    lines = [
        f"{m.get('device')} | jax {m.get('jax')} | {m.get('host_cores')} host cores | "
        f"{m.get('date')} | run {_f(m.get('elapsed_s'), '.0f')} s of a {m.get('budget_s')} s box",
    ]
    c = r.get("ceilings", {})
    lines.append(
        f"ceilings: bf16 matmul {_f(c.get('bf16_matmul_tflops'))} TFLOP/s (n={c.get('matmul_n')}), "
        f"f32 HIGHEST {_f(c.get('f32_highest_matmul_tflops'))} TFLOP/s, copy "
        f"{_f(c.get('copy_tb_s'), '.2f')} TB/s"
    )
    rows = []
    for name, e in r.get("encode", {}).items():
        tor = e.get("torch", {})
        for label in ("xla", "cudnn"):
            j = e.get(f"jax_{label}", {})
            if "images_per_s" not in j:
                rows.append(
                    f"  {name:8s} {label:5s} {j.get('skipped') or j.get('error', '-')[:90]}"
                )
                continue
            tgt = TARGETS["fraction_of_matmul"].get(name)
            frac = j.get("fraction_of_matmul")
            ok = None if tgt is None or frac is None else frac >= tgt
            rows.append(
                f"  {name:8s} {label:5s} {j['images_per_s']:9.0f} img/s {j['tflops']:7.1f} TFLOP/s "
                f"{100 * frac if frac else float('nan'):5.1f} % of matmul (target "
                f"{_f(100 * tgt if tgt else None, '.0f')} %: {_verdict(ok)}), compile "
                f"{j['compile_s']:.0f} s"
            )
        for dt in ("float16", "bfloat16"):
            t = tor.get(dt, {})
            if "images_per_s" in t:
                rows.append(f"  {name:8s} torch {dt}: {t['images_per_s']:9.0f} img/s (sdpa)")
            elif tor:
                rows.append(
                    f"  {name:8s} torch {dt}: {t.get('error', tor.get('error', tor.get('skipped', '-')))[:90]}"
                )
        s = e.get("speedup_vs_torch")
        if s:
            rows.append(
                f"  {name:8s} best jax ({e['best']['attn']}) / best torch ({s['torch_best']}) = "
                f"{s['ratio']:.2f}x (target {TARGETS['speedup_vs_torch']}x: "
                f"{_verdict(s['ratio'] >= TARGETS['speedup_vs_torch'])})"
            )
        er = e.get("rel_err", {})
        errs = {k: v for k, v in er.items() if k.startswith(("jax_", "torch_"))}
        if errs:
            rows.append(
                f"  {name:8s} rel err vs fp32: "
                + ", ".join(f"{k} {v:.1e}" for k, v in errs.items())
                + f" (<= 1e-2: {_verdict(er.get('all_within_tolerance'))})"
            )
    if rows:
        lines.append("[1] image encoders, bf16, batch " + str(m.get("batch")))
        lines += rows
    e2e = r.get("e2e", {})
    if e2e:
        f = e2e.get("folder", {})
        j = e2e.get("jpegs", {})
        host = f.get("host_ms_single_thread", {})
        lines.append(
            f"[2] end to end: {j.get('images')} JPEGs {j.get('size')} ({_f(j.get('mean_kb'), '.0f')} KB, "
            f"{j.get('unique')} unique), single-thread decode {_f(host.get('decode_ms'), '.2f')} ms/img"
        )
        for name in r.get("encode", {}) or m.get("models", []):
            x = e2e.get(name, {})
            if "images_per_s" not in x:
                lines.append(f"  {name:8s} {x.get('skipped') or x.get('error', '-')[:100]}")
                continue
            frac = x.get("fraction_of_model_only")
            tgt = TARGETS["e2e_fraction_of_model"].get(name)
            ok = None if tgt is None or frac is None else frac >= tgt
            lines.append(
                f"  {name:8s} e2e {x['images_per_s']:7.0f} img/s with {x['decode_threads']} decode "
                f"threads = {_f(100 * frac if frac else None, '.0f')} % of model-only "
                f"{_f(x.get('model_only_images_per_s'), '.0f')} (target {_f(100 * tgt if tgt else None, '.0f')} %: "
                f"{_verdict(ok)}); device work alone {x['device_only_images_per_s']:.0f} img/s; "
                f"H2D {x['h2d_gb_s']:.1f} GB/s"
            )
        h = e2e.get("host_only", {})
        sweep = e2e.get("host_threads", {})
        if "images_per_s" in h or sweep:
            lines.append(
                f"  host only (no-op tower): {_f(h.get('images_per_s'), '.0f')} img/s at "
                f"{h.get('threads')} threads; by threads: "
                + ", ".join(f"{k}: {_f(v.get('images_per_s'), '.0f')}" for k, v in sweep.items())
            )
    a = r.get("analyses", {})
    if a:
        lines.append("[3] analyses")
        l2 = a.get("l2_sweep", {})
        if "speedup" in l2:
            lines.append(
                f"  L2 sweep: sklearn {l2['sklearn_s']:.1f} s ({l2['host_cores']} cores) vs jax "
                f"{l2['jax_warm_s']:.2f} s warm ({l2['jax_cold_s']:.1f} s cold) = {l2['speedup']:.1f}x "
                f"(target {TARGETS['l2_sweep_vs_sklearn']:.0f}x: "
                f"{_verdict(l2['speedup'] >= TARGETS['l2_sweep_vs_sklearn'])}), best acc "
                f"{100 * l2['best_acc_sklearn']:.2f} / {100 * l2['best_acc_jax']:.2f} %"
            )
        else:
            lines.append(f"  L2 sweep: {l2.get('skipped') or l2.get('error', '-')[:100]}")
        rt = a.get("retrieval", {})
        if "cold_s" in rt:
            lines.append(
                f"  retrieval {rt['images']} x {rt['captions']}: timed {rt['queries_timed']} captions "
                f"in {rt.get('warm_s', rt['cold_s']):.1f} s ({rt['pairs_per_s'] / 1e9:.1f} G pairs/s) "
                f"-> full ~{rt['full_problem_estimate_s']:.0f} s; exact {rt['exact_vs_float64']}; "
                f"device temp {_f(rt.get('device_temp_gb'), '.2f')} GB; block matmul TFLOP/s "
                + ", ".join(
                    f"{k} {_f(v.get('tflops'), '.0f')}" for k, v in rt["block_matmul"].items()
                )
            )
        else:
            lines.append(f"  retrieval: {rt.get('skipped') or rt.get('error', '-')[:100]}")
        cf = a.get("conformity", {})
        if "jax_closed_s" in cf:
            bw = cf.get("blockwise_highest", {})
            lines.append(
                f"  conformity N={cf['n']}: closed form jax {1e3 * cf['jax_closed_s']:.1f} ms (max diff "
                f"{cf['jax_closed_max_abs_diff']:.1e}) vs numpy float64 {cf['numpy_float64_closed_s']:.2f} s; "
                f"blockwise HIGHEST {_f(bw.get('seconds'))} s (max diff {_f(bw.get('max_abs_diff'), '.1e')})"
            )
        else:
            lines.append(f"  conformity: {cf.get('skipped') or cf.get('error', '-')[:100]}")
        ml = a.get("mlp_grid", {})
        if "ratio" in ml:
            lines.append(
                f"  MLP grid 16 members: vmap {ml['vmap_s']:.2f} s vs loop {ml['loop_s']:.2f} s = "
                f"{ml['ratio']:.1f}x (target {TARGETS['mlp_vmap_vs_loop']:.0f}x: "
                f"{_verdict(ml['ratio'] >= TARGETS['mlp_vmap_vs_loop'])})"
            )
        else:
            lines.append(f"  MLP grid: {ml.get('skipped') or ml.get('error', '-')[:100]}")
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--small", action="store_true", help="tiny sizes (CPU debugging, ~2 min)")
    p.add_argument("--out", default=os.environ.get("OUT", "gpu_out"), help="results folder")
    p.add_argument("--budget", type=float, default=380.0, help="seconds for the whole run")
    p.add_argument("--parts", default="0,1,2,3", help="comma-separated parts to run")
    p.add_argument("--models", default="", help="comma-separated variants (default per mode)")
    p.add_argument("--batch", type=int, default=0, help="encoder / extraction batch")
    p.add_argument("--steps", type=int, default=0, help="timed calls per measurement")
    p.add_argument("--images", type=int, default=0, help="JPEGs for the end-to-end part")
    p.add_argument("--unique_images", type=int, default=0, help="distinct JPEGs among them")
    p.add_argument("--workers", type=int, default=0, help="decode threads (default: cores)")
    p.add_argument("--fp32_check", action="store_true", help="also the JAX fp32 result on GPU")
    p.add_argument("--retrieval_block", type=int, default=0, help="caption rows per block")
    p.add_argument("--retrieval_seconds", type=float, default=30.0, help="time for the ranks")
    p.add_argument("--conformity_block", type=int, default=0, help="rows per block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch_worker", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    use_repo_tests_package()
    if args.torch_worker:
        torch_worker(args.torch_worker)
        return {}
    sizes = SMALL if args.small else FULL
    args.batch = args.batch or sizes["batch"]
    args.steps = args.steps or sizes["steps"]
    args.images = args.images or sizes["images"]
    args.unique_images = args.unique_images or sizes["unique_images"]
    args.retrieval_block = args.retrieval_block or (256 if args.small else 4096)
    args.conformity_block = args.conformity_block or (1024 if args.small else 8192)
    parts = sorted(int(s) for s in args.parts.split(",") if s.strip())
    models = tuple(s for s in args.models.split(",") if s) or sizes["models"]

    import jax

    from jaxclip.models.variants import get_variant

    budget = Budget(args.budget, parts)
    dev = jax.devices()[0]
    meta = {
        "date": datetime.date.today().isoformat(),
        "device": getattr(dev, "device_kind", str(dev)),
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "host_cores": host_cores(),
        "python": platform.python_version(),
        "budget_s": args.budget,
        "parts": parts,
        "models": list(models),
        "batch": args.batch,
        "small": args.small,
    }
    with contextlib.suppress(Exception):
        import flax

        meta["flax"] = flax.__version__
    rec = Recorder(Path(args.out), meta)
    rec.save()
    print(json.dumps(meta), flush=True)
    cfgs = {name: get_variant(name) for name in models}
    with tempfile.TemporaryDirectory(prefix="jaxclip-gpu-") as tmpdir:
        ctx: dict[str, Any] = {"tmp": Path(tmpdir)}
        if 0 in parts:
            rec.step("ceilings", budget.deadline(0), 3, lambda: bench_ceilings(args.small))
        if 1 in parts:
            part_encoders(rec, budget, cfgs, ctx, args)
        if 2 in parts:
            part_e2e(rec, budget, cfgs, ctx, args)
        if 3 in parts:
            part_analyses(rec, budget, args)
    rec.save()
    table = report(rec)
    (Path(args.out) / "gpu_table.md").write_text(table + "\n")
    print("\n" + table, flush=True)
    return rec.results


if __name__ == "__main__":
    main()
