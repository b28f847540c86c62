#!/usr/bin/env bash
# Runs experiments/benchmark_gpu.py on a GPU machine inside a time box; logs and results go
# to $OUT (gpu_results.json after every step, gpu_table.md, gpu_log.txt, nvidia_smi.csv).
#
#   OUT=/some/folder BUDGET=380 bash experiments/benchmark_gpu.sh [benchmark_gpu.py options]
#
# Wheels in .whl/ (packages the machine lacks) are installed into /tmp/site first. The script
# gets BUDGET seconds (its parts skip what no longer fits); `timeout` stops it 40 s later
# whatever happens, so whatever it wrote is still there.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
BUDGET="${BUDGET:-380}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# JAX takes 60 % of the GPU memory up front; the PyTorch reference runs in a process of its
# own and uses the rest.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}"
query=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw,temperature.gpu
nvidia-smi --query-gpu="$query" --format=csv > "$OUT/nvidia_smi.csv" 2>&1 || true
python3 - <<'EOF' 2>&1 | tee "$OUT/gpu_log.txt"
import importlib
for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "transformers", "sklearn", "PIL"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:  # the benchmark reports what it cannot run
        print(name, "MISSING", type(e).__name__, e)
EOF
timeout -k 15 $((${BUDGET%.*} + 40)) \
  python3 -m experiments.benchmark_gpu --budget "$BUDGET" --out "$OUT" "$@" 2>&1 \
  | tee -a "$OUT/gpu_log.txt"
rc=$?
nvidia-smi --query-gpu="$query" --format=csv,noheader >> "$OUT/nvidia_smi.csv" 2>&1 || true
exit $rc
