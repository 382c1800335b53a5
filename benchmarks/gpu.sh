#!/bin/bash
# The GPU session's script (docs/training.md "GPU"): the CUDA tests, then the replica/graph throughput table.
# Run from the repository root on the device machine; logs go to ${OUT:-results/gpu}/ (device runs: $OUT).
# Usage: bash benchmarks/gpu.sh [--quick]   (--quick: m = 1 only and R up to 32, about a minute)
set -uo pipefail
out="${OUT:-results/gpu}"
mkdir -p "$out"
python=${PYTHON:-python}
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
$python -m pytest -q tests/test_cuda.py 2>&1 | tee "$out/test_cuda.log"
if [ "${1:-}" = "--quick" ]; then
    $python benchmarks/gpu.py --samples 1 --replicas 1,8,32 2>&1 | tee "$out/gpu-throughput.md"
else
    $python benchmarks/gpu.py 2>&1 | tee "$out/gpu-throughput.md"
fi
# train --compile on the GPU, at m = 1 (compiling each configuration takes 10-60 s)
$python benchmarks/gpu.py --compile --models 200H-784V --samples 1 --replicas 1,32 2>&1 | tee "$out/gpu-compiled.md"
