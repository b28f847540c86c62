"""The speed benchmarks' shared helpers: FLOP counts and the /proc/cpuinfo parser (no timing)."""

from __future__ import annotations

import pytest

from experiments import bench_util
from jaxclip.models.variants import tiny, vit_b32

# Two processors of a 2-core Intel Xeon with AVX-512 and AMX, abridged.
XEON = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512bw avx512_bf16 avx512_fp16 amx_bf16 \
amx_tile amx_int8

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512bw avx512_bf16 avx512_fp16 amx_bf16 \
amx_tile amx_int8
"""
EPYC = "processor\t: 0\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx fma avx2\n"


def test_vit_image_flops_hand_count():
    # tiny: 32 px, 8 px patches -> 16 patches + class token = 17 tokens, width 64, MLP 256,
    # 2 layers, projection 64. MACs per layer: q, k, v, out 4 * 17 * 64^2 = 278528; MLP
    # 2 * 17 * 64 * 256 = 557056; scores + mixing 2 * 17^2 * 64 = 36992.
    layer = 278528 + 557056 + 36992
    patch = 16 * (8 * 8 * 3) * 64
    projection = 64 * 64
    assert bench_util.image_flops(tiny()) == 2.0 * (2 * layer + patch + projection)


def test_vit_b32_flops_and_text_hand_count():
    assert bench_util.image_flops(vit_b32()) == pytest.approx(8.8e9, rel=0.01)
    # tiny text: 77 tokens, width 64, MLP 256, 2 layers, projection 64.
    layer = 4 * 77 * 64**2 + 2 * 77 * 64 * 256 + 2 * 77**2 * 64
    assert bench_util.text_flops(tiny()) == 2.0 * (2 * layer + 64 * 64)


def test_parse_cpuinfo_xeon_with_amx():
    info = bench_util.parse_cpuinfo(XEON)
    assert info["model"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert (info["family"], info["model_id"], info["logical_cpus"]) == ("6", "143", 2)
    assert all(info["flags"].values())  # AVX2, FMA, AVX-512 (F, BF16, FP16), AMX tile + bf16
    line = bench_util.describe_cpu(info)
    assert "Xeon" in line and "amx_bf16" in line and "lacks" not in line


def test_parse_cpuinfo_epyc_without_avx512_and_empty():
    info = bench_util.parse_cpuinfo(EPYC)
    assert info["model"] == "AMD EPYC" and info["logical_cpus"] == 1
    assert info["flags"]["avx2"] and info["flags"]["fma"]
    assert not info["flags"]["avx512f"] and not info["flags"]["amx_tile"]
    assert "lacks avx512f" in bench_util.describe_cpu(info)
    empty = bench_util.parse_cpuinfo("")
    assert empty["model"] == "unknown" and not any(empty["flags"].values())
