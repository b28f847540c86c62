"""What the speed benchmarks share: FLOP counts, the CPU's model and extensions, thread control
and each framework's matmul ceiling, measured in the benchmark's own run.

A throughput alone says little across machines (this project's machines change CPU kind over
time; PyTorch reaches Intel's AMX units through oneDNN, XLA:CPU does not). So the benchmarks
also print, from the same run, the CPU model, the extensions that matter (AVX2, AVX-512,
AVX512-BF16, AMX) and each framework's ceiling: the FLOP/s of one 2048 x 2048 by 2048 x 2048
product in the benchmark's dtype and thread count, against which the encode's FLOP/s (counted
from the model config by `image_flops` / `text_flops`) is a fraction.

Threads: `use_threads(n)` before JAX starts its CPU backend restricts the process to the first
`n` CPUs it may run on (XLA:CPU sizes its intra-op pool from the schedulable CPUs when the
backend starts) and sets `torch.set_num_threads(n)`, so both frameworks run `n` threads.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

# The instruction-set extensions that decide CPU matmul speed, as /proc/cpuinfo names them.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
CEILING_SIZE = 2048


# --- FLOP counts --------------------------------------------------------------------------------


def encoder_flops(width: int, mlp: int, layers: int, tokens: int) -> float:
    """FLOPs (2 x MACs) of a pre-LN transformer stack on one sequence of `tokens`.

    Per layer: q, k, v, out projections 4 T W^2, MLP 2 T W M, scores and mixing 2 T^2 W MACs.
    """
    macs = layers * (tokens * (4 * width * width + 2 * width * mlp) + 2 * tokens * tokens * width)
    return 2.0 * macs


def image_flops(cfg) -> float:
    """FLOPs per image: patch conv + encoder + projection (ViT-B/32 at 224 px: 8.8 GFLOP).

    ResNet / ConvNeXt towers: `resnet.image_flops` / `convnext.image_flops` (RN50: 11.6 GFLOP,
    ConvNeXt-Base: 30.7 GFLOP at 224 px; both equal torch's FlopCounterMode on the references).
    """
    from jaxclip.models import convnext, resnet
    from jaxclip.models.variants import ConvNeXtConfig, ResNetConfig

    if isinstance(cfg.vision, ResNetConfig):
        return resnet.image_flops(cfg.vision, cfg.projection_dim)
    if isinstance(cfg.vision, ConvNeXtConfig):
        return convnext.image_flops(cfg.vision, cfg.projection_dim)
    from jaxclip.models.variants import SiglipConfig

    v = cfg.vision
    n = v.num_patches
    patch = 2.0 * n * v.patch_size * v.patch_size * 3 * v.width
    if isinstance(cfg, SiglipConfig):  # no class token; MAP head: one query over n keys + MLP
        head = 2.0 * (4 * n * v.width * v.width + 2 * v.width * v.mlp_dim + 2 * n * v.width)
        return patch + encoder_flops(v.width, v.mlp_dim, v.layers, n) + head
    return (
        patch
        + encoder_flops(v.width, v.mlp_dim, v.layers, n + 1)
        + 2.0 * v.width * cfg.projection_dim
    )


def text_flops(cfg) -> float:
    """FLOPs per text of context_length tokens (ViT-B/32's text tower: 6.0 GFLOP)."""
    t = cfg.text
    return (
        encoder_flops(t.width, t.mlp_dim, t.layers, t.context_length)
        + 2.0 * t.width * cfg.projection_dim
    )


# --- the CPU --------------------------------------------------------------------------------------


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """The CPU model and matmul-relevant extensions from /proc/cpuinfo text (first processor).

    Returns {"model", "family", "model_id", "logical_cpus", "flags": {name: bool}}; the model
    name is "unknown" where the text has none (e.g. not Linux, or an ARM kernel's format).
    """
    first: dict[str, str] = {}
    logical = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            logical += 1
        if logical <= 1 and key not in first:
            first[key] = value
    flags = set(first.get("flags", "").split())
    return {
        "model": re.sub(r"\s+", " ", first.get("model name", "")) or "unknown",
        "family": first.get("cpu family"),
        "model_id": first.get("model"),
        "logical_cpus": logical,
        "flags": {f: f in flags for f in CPU_FLAGS},
    }


def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """`parse_cpuinfo` of this machine (model "unknown" where the file cannot be read)."""
    try:
        text = Path(path).read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text)


def describe_cpu(info: dict[str, Any]) -> str:
    """One line: model (family/model ids), and which matmul extensions it has and lacks."""
    ids = ""
    if info.get("family") is not None:
        ids = f" (family {info['family']}, model {info['model_id']})"
    has = [f for f, on in info["flags"].items() if on]
    lacks = [f for f, on in info["flags"].items() if not on]
    return (
        f"CPU {info['model']}{ids}; has {', '.join(has) or 'none of'}"
        f"{'; lacks ' + ', '.join(lacks) if lacks else ''}"
    )


def host_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def use_threads(n: int | None) -> int:
    """Both frameworks on `n` threads (None: every CPU this process may use); returns n.

    Call before JAX initialises its CPU backend: XLA:CPU sizes its intra-op thread pool from
    the CPUs the process may be scheduled on, so the affinity is narrowed to the first `n`.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if n is None:
        n = len(cpus) or (os.cpu_count() or 1)
    elif cpus and n < len(cpus):
        os.sched_setaffinity(0, cpus[:n])
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    return n


# --- matmul ceilings ------------------------------------------------------------------------------


def _median_rate(fn, flops: float, steps: int, budget_s: float = 20.0) -> float:
    """flops / median seconds of `fn` over up to `steps` calls after one warm-up call; stops
    early once the timed calls have taken `budget_s` (a CPU without native bf16 can take a
    minute for one 2048^3 product), always timing at least one."""
    fn()
    times: list[float] = []
    while len(times) < steps and sum(times) < budget_s:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return flops / statistics.median(times)


def jax_matmul_flops(dtype: str, n: int = CEILING_SIZE, steps: int = 5) -> float:
    """FLOP/s of one jitted n x n by n x n product in `dtype` (median of `steps` calls)."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0))
    a, b = (jax.random.normal(k, (n, n), jnp.float32).astype(dtype) for k in keys)
    f = jax.jit(jnp.matmul)
    return _median_rate(lambda: f(a, b).block_until_ready(), 2.0 * n**3, steps)


def torch_matmul_flops(dtype: str, n: int = CEILING_SIZE, steps: int = 5, device="cpu") -> float:
    """FLOP/s of one n x n by n x n torch product in `dtype` on torch's current thread count."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device, getattr(torch, dtype)) for _ in range(2))
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)

    def call():
        torch.mm(a, b)
        sync()

    with torch.inference_mode():
        return _median_rate(call, 2.0 * n**3, steps)


def fraction_line(name: str, flops_per_s: float, ceiling: float | None) -> str:
    """'name: X GFLOP/s = Y % of the Z GFLOP/s matmul ceiling' (ceiling None: no fraction)."""
    line = f"{name}: {flops_per_s / 1e9:.0f} GFLOP/s"
    if ceiling:
        line += f" = {100 * flops_per_s / ceiling:.0f} % of its {ceiling / 1e9:.3g} GFLOP/s ceiling"
    return line
