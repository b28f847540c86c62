"""Benchmark: jaxclip's Flax CLIP encoders vs the PyTorch reference models, same weights.

Both sides get the SAME random weights: the PyTorch model is built from our config, randomly
initialised, and its state dict converted with our converter; a parity check on one batch proves
it. The reference per backbone:
  ViT (vit_b32, ...): transformers' `CLIPModel` (`to_hf_config`, `hf_torch_to_params`);
  rn50 (and rn101, rn50x4, ...): OpenAI's `clip/model.py` CLIP (ModifiedResNet), imported by file
       path; converted with `openai_to_params`;
  convnext_base: OpenCLIP's `CLIP` with its timm ConvNeXt `TimmModel`, `openai_to_params`.
  siglip_b16 (and siglip_so400m14_384, ...): transformers' `SiglipModel` (`to_hf_siglip_config`,
       `convert_siglip.hf_torch_to_params`); text rows are 64 random ids (SigLIP's padded length;
       its SentencePiece file cannot be built offline), against jaxclip's `Siglip`.
open_clip and timm import torchvision in their package __init__ and torchvision is not installed:
`reference_modules` imports just the needed submodules under fake parent packages, with a
one-name torchvision stub (`ops.misc.FrozenBatchNorm2d`, used only to freeze BatchNorm) present
only while they import (`tests/reference_models.py`, shared with the tests). Both sides run the same batch
of normalised NHWC / NCHW pixels and the same 77-token id rows, on the same device, in one process,
after warm-up; the numbers are throughputs over `--steps` timed calls (median of per-call times).

  CPU: float32 on both sides (`--dtype bfloat16`: bfloat16 on both), both frameworks on the
       same `--threads` (default: every CPU the process may use; `bench_util.use_threads`).
       The same run measures each framework's matmul ceiling in the dtype used (a 2048^2 by
       2048^2 product, same threads) and prints each side's encode FLOP/s as a fraction of
       it, with the CPU model and its AVX-512 / AMX extensions (`experiments/bench_util.py`).
  GPU: jaxclip bfloat16 vs PyTorch float16 with SDPA attention (`--dtype bfloat16`), and the
       achieved TFLOP/s against the dense bf16 peak of the GPU (ViT-B/32: 8.8 GFLOP per image).

Usage:
  python -m experiments.benchmark_encode                      # ViT-B/32, batch 32, float32
  python -m experiments.benchmark_encode --small              # tiny model, seconds
  python -m experiments.benchmark_encode --dtype bfloat16 --batch 1024   # on a GPU
  python -m experiments.benchmark_encode --model rn50         # OpenAI RN50 vs clip/model.py
  python -m experiments.benchmark_encode --model convnext_base --small   # tiny ConvNeXt, seconds
  python -m experiments.benchmark_encode --model siglip_b16   # SigLIP B/16 vs transformers
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

from experiments import bench_util
from experiments.bench_util import image_flops, text_flops
from tests.reference_models import (
    hf_clip_model,
    reference_modules,
    tiny_convnext_factory,
    torch_state_dict,
)

# On a CPU, both frameworks are bound by their own matmul kernels (which differ by CPU family:
# PyTorch's oneDNN uses AMX where there is one, XLA:CPU does not): the target is a fraction of
# JAX's own ceiling, the ratio to PyTorch is reported as measured.
TARGET_FRACTION_CPU = 0.85
CEILING = f"{bench_util.CEILING_SIZE}^2 matmul"
# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s, by substring of the device name.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def _time(fn, steps: int, sync) -> float:
    """Median seconds per call over `steps` calls (after the caller's warm-up)."""
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def small_variant(model: str) -> str:
    """The tiny variant of the same image-tower kind as `model` (the --small smoke test)."""
    from jaxclip.models.variants import SIGLIP_VARIANTS, ConvNeXtConfig, ResNetConfig, get_variant

    if model in SIGLIP_VARIANTS:
        return "tiny_siglip"
    vision = get_variant(model).vision
    if isinstance(vision, ResNetConfig):
        return "tiny_resnet"
    return "tiny_convnext" if isinstance(vision, ConvNeXtConfig) else "tiny"


def _perturb_norms(model) -> None:
    """BN / LN scales and ConvNeXt gammas off their init (1, zero-init bn3, 1e-6), BN statistics
    random, so the parity check exercises every branch."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.1 * torch.randn_like(p))
            elif ".bn" in name or "norm" in name or "downsample.1" in name:
                p.add_(0.1 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn_like(b))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand_like(b))


def torch_reference(cfg, seed: int):
    """(eval torch model, image fn(x), text fn(ids), our params) with the same random weights."""
    import torch

    from jaxclip.models import convert, convnext
    from jaxclip.models.variants import ConvNeXtConfig, ResNetConfig, SiglipConfig

    torch.manual_seed(seed)
    t = cfg.text
    if isinstance(cfg, SiglipConfig):
        from transformers import SiglipConfig as HFSiglipConfig
        from transformers import SiglipModel

        from jaxclip.models import convert_siglip
        from jaxclip.models.variants import to_hf_siglip_config

        hf_cfg = HFSiglipConfig(**to_hf_siglip_config(cfg))
        hf_cfg._attn_implementation = "sdpa"
        hf = SiglipModel(hf_cfg)
        model = hf.eval()
        params = convert_siglip.hf_torch_to_params(torch_state_dict(model, copy=False), cfg)
        image = lambda x: model.get_image_features(pixel_values=x).pooler_output
        text = lambda ids: model.get_text_features(input_ids=ids).pooler_output
        return model, image, text, params
    if isinstance(cfg.vision, (ResNetConfig, ConvNeXtConfig)):
        refs = reference_modules()
        if isinstance(cfg.vision, ResNetConfig):
            v = cfg.vision
            model = refs.openai.CLIP(
                cfg.projection_dim, v.image_size, v.layers, v.width, None,
                t.context_length, t.vocab_size, t.width, t.heads, t.layers,
            )  # fmt: skip
        else:
            v = cfg.vision
            name = convnext.timm_name(v)
            if name is None:  # the small mode's trunk (timm names no such size)
                create = refs.timm.create_model
                refs.timm.create_model = tiny_convnext_factory(refs)
            text_cfg = dict(
                context_length=t.context_length, vocab_size=t.vocab_size, width=t.width,
                heads=t.heads, layers=t.layers,
            )  # fmt: skip
            vision_cfg = dict(timm_model_name=name or "convnext_tiny", timm_pool="",
                              timm_proj="linear", image_size=v.image_size)  # fmt: skip
            try:
                model = refs.oc_model.CLIP(cfg.projection_dim, vision_cfg, text_cfg)
            finally:
                if name is None:
                    refs.timm.create_model = create
        model = model.eval()
        _perturb_norms(model)
        params = convert.openai_to_params(torch_state_dict(model, copy=False), cfg)[1]
        return model, model.encode_image, model.encode_text, params
    from jaxclip.models.variants import to_hf_config

    model = hf_clip_model(to_hf_config(cfg))
    params = convert.hf_torch_to_params(torch_state_dict(model, copy=False), cfg)
    image = lambda x: model.get_image_features(pixel_values=x).pooler_output
    text = lambda ids: model.get_text_features(input_ids=ids).pooler_output
    return model, image, text, params


def _parity(results, image_fn, text_fn, params, x_jax, ids_jax, tasks) -> None:
    """Parity on one batch: the same weights give the same embeddings."""
    ours = np.asarray(image_fn(params, x_jax), np.float32)
    ref = tasks["image"][1]().float().cpu().numpy()
    results["image_max_abs_diff"] = float(np.abs(ours - ref).max())
    results["image_rel_diff"] = float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))
    ours_t = np.asarray(text_fn(params, ids_jax), np.float32)
    ref_t = tasks["text"][1]().float().cpu().numpy()
    results["text_rel_diff"] = float(np.linalg.norm(ours_t - ref_t) / np.linalg.norm(ref_t))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import torch

    from jaxclip.models.clip import CLIP
    from jaxclip.models.siglip import Siglip
    from jaxclip.models.tokenizer import Tokenizer
    from jaxclip.models.variants import SIGLIP_VARIANTS, get_variant

    name = small_variant(args.model) if args.small else args.model
    siglip = name in SIGLIP_VARIANTS
    cfg = SIGLIP_VARIANTS[name]() if siglip else get_variant(name)
    platform = jax.default_backend()
    on_gpu = platform == "gpu" and torch.cuda.is_available()
    torch_device = "cuda" if on_gpu else "cpu"
    jax_dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[args.dtype]
    # bf16 on a CPU (oneDNN's AMX / AVX512-BF16 kernels where the CPU has them), fp16 on a GPU.
    torch_dtype = {
        "float32": torch.float32,
        "bfloat16": torch.float16 if on_gpu else torch.bfloat16,
    }[args.dtype]

    tmodel, torch_image, torch_text, params = torch_reference(cfg, args.seed)
    params = jax.device_put(params)
    tmodel = tmodel.to(torch_device, torch_dtype)
    module = (Siglip if siglip else CLIP)(cfg, dtype=jax_dtype)

    s, b = cfg.vision.image_size, args.batch
    rng = np.random.default_rng(args.seed)
    pixels = rng.standard_normal((b, s, s, 3), dtype=np.float32)
    texts = [f"a photo of a {w} number {i}" for i, w in enumerate(["cat", "dog", "car"] * b)][:b]
    if siglip:
        ids = rng.integers(0, cfg.text.vocab_size, (b, cfg.text.context_length), dtype=np.int32)
    else:
        ids = Tokenizer.openai(cfg.text.context_length)(texts)

    image_fn = jax.jit(lambda p, x: module.apply({"params": p}, x, method="encode_image")[0])
    text_fn = jax.jit(lambda p, t: module.apply({"params": p}, t, method="encode_text")[0])
    x_jax, ids_jax = jax.device_put(jnp.asarray(pixels)), jax.device_put(jnp.asarray(ids))
    x_torch = torch.tensor(pixels.transpose(0, 3, 1, 2)).to(torch_device, torch_dtype)
    ids_torch = torch.tensor(ids, dtype=torch.long, device=torch_device)

    def jsync(y):
        y.block_until_ready()

    def tsync(_):
        if on_gpu:
            torch.cuda.synchronize()

    results: dict[str, Any] = {
        "model": name,
        "batch": b,
        "steps": args.steps,
        "dtype_jax": args.dtype,
        "dtype_torch": str(torch_dtype).replace("torch.", ""),
        "device": str(jax.devices()[0].device_kind),
        "torch_threads": torch.get_num_threads(),
        "threads": args.threads,
        "cpu": bench_util.cpu_info(),
    }
    if not args.skip_ceiling:
        # Each framework's ceiling in the dtype it runs, same threads, same run.
        results["jax_ceiling_flops"] = bench_util.jax_matmul_flops(args.dtype)
        if not args.skip_torch:
            results["torch_ceiling_flops"] = bench_util.torch_matmul_flops(
                results["dtype_torch"], device=torch_device
            )
    with torch.inference_mode():
        tasks = {
            "image": (lambda: image_fn(params, x_jax), lambda: torch_image(x_torch)),
            "text": (lambda: text_fn(params, ids_jax), lambda: torch_text(ids_torch)),
        }
        if not args.skip_torch:
            _parity(results, image_fn, text_fn, params, x_jax, ids_jax, tasks)
        for task, (jfn, tfn) in tasks.items():
            if task == "text" and args.skip_text:
                continue
            for _ in range(args.warmup):
                jsync(jfn())
                if not args.skip_torch:
                    tsync(tfn())
            # Interleave the sides so that load from other processes hits both alike.
            tj, tt = [], []
            for _ in range(args.steps):
                tj.append(_time(jfn, 1, jsync))
                if not args.skip_torch:
                    tt.append(_time(tfn, 1, tsync))
            per_s_j = b / statistics.median(tj)
            results[f"{task}_per_s_jax"] = per_s_j
            flops = image_flops(cfg) if task == "image" else text_flops(cfg)
            results[f"{task}_gflop_each"] = flops / 1e9
            results[f"{task}_tflops_jax"] = per_s_j * flops / 1e12
            if tt:
                per_s_t = b / statistics.median(tt)
                results[f"{task}_per_s_torch"] = per_s_t
                results[f"{task}_speedup"] = per_s_j / per_s_t
                results[f"{task}_tflops_torch"] = per_s_t * flops / 1e12
            for side in ("jax", "torch"):
                ceiling = results.get(f"{side}_ceiling_flops")
                if ceiling and f"{task}_tflops_{side}" in results:
                    results[f"{task}_fraction_{side}"] = (
                        results[f"{task}_tflops_{side}"] * 1e12 / ceiling
                    )
    peak = next((v for k, v in BF16_PEAK.items() if k in results["device"]), None)
    if on_gpu and peak:
        results["bf16_peak_tflops"] = peak / 1e12
        results["image_fraction_of_peak"] = results["image_tflops_jax"] * 1e12 / peak
        results["image_per_s_at_peak"] = peak / image_flops(cfg)
    return results


def report(r: dict[str, Any]) -> str:
    lines = [
        f"model {r['model']}, batch {r['batch']}, {r['steps']} steps, device {r['device']}, "
        f"jax {r['dtype_jax']} vs torch {r['dtype_torch']} ({r['threads']} threads each; "
        f"torch reports {r['torch_threads']})",
        bench_util.describe_cpu(r["cpu"]),
    ]
    if "image_max_abs_diff" in r:
        lines.append(
            f"same weights: image max |diff| {r['image_max_abs_diff']:.2e} "
            f"(rel {r['image_rel_diff']:.1e}), text rel {r['text_rel_diff']:.1e}"
        )
    for task in ("image", "text"):
        if f"{task}_per_s_jax" not in r:
            continue
        line = f"{task + 's/s':>9}: jaxclip {r[f'{task}_per_s_jax']:10.1f}"
        if f"{task}_per_s_torch" in r:
            line += f"   torch {r[f'{task}_per_s_torch']:10.1f}   ratio {r[f'{task}_speedup']:.2f}x"
        line += f"   ({r[f'{task}_tflops_jax']:.3f} TFLOP/s at {r[f'{task}_gflop_each']:.2f} GFLOP each)"
        lines.append(line)
        for side, label in (("jax", "jaxclip"), ("torch", "torch")):
            if f"{task}_tflops_{side}" in r and f"{side}_ceiling_flops" in r:
                lines.append(
                    "    "
                    + bench_util.fraction_line(
                        f"{label} {task} encode",
                        r[f"{task}_tflops_{side}"] * 1e12,
                        r[f"{side}_ceiling_flops"],
                    )
                    + f" ({CEILING} {r[f'dtype_{side}']})"
                )
    if "image_fraction_of_peak" in r:
        lines.append(
            f"bf16 peak {r['bf16_peak_tflops']:.0f} TFLOP/s = {r['image_per_s_at_peak']:.0f} img/s; "
            f"achieved {100 * r['image_fraction_of_peak']:.1f} % of it"
        )
    elif "image_fraction_jax" in r and r["dtype_jax"] == "float32":
        frac = r["image_fraction_jax"]
        verdict = "meets" if frac >= TARGET_FRACTION_CPU else "misses"
        lines.append(
            f"CPU target: image encode >= {100 * TARGET_FRACTION_CPU:.0f} % of JAX's float32 "
            f"matmul ceiling: {verdict} it ({100 * frac:.0f} %)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--model",
        default="vit_b32",
        help="variant: vit_b32, vit_b16, vit_l14, rn50, convnext_base, siglip_b16, ... "
        "(--small: tiny size)",
    )
    p.add_argument("--batch", type=int, default=32, help="images / texts per call")
    p.add_argument("--steps", type=int, default=5, help="timed calls per side")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per side first")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16"],
        help="jaxclip compute dtype (torch: float32 / float16)",
    )
    p.add_argument(
        "--small",
        action="store_true",
        help="tiny model of the same kind (tiny, tiny_resnet, tiny_convnext): a smoke test",
    )
    p.add_argument("--skip_torch", action="store_true", help="time jaxclip only")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both frameworks (default: every CPU this process may use)",
    )
    p.add_argument("--skip_ceiling", action="store_true", help="do not measure the matmul ceilings")
    p.add_argument("--skip_text", action="store_true", help="time the image tower only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.batch <= 0 or args.steps <= 0:
        p.error(f"--batch={args.batch} and --steps={args.steps} must be positive")
    args.threads = bench_util.use_threads(args.threads)  # before JAX starts its CPU backend
    results = run(args)
    print(report(results))
    if args.json:
        from jaxclip import atomic

        atomic.write_json(args.json, results)
    print(json.dumps(results), file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
