#!/usr/bin/env bash
# The GPU check of the layers issue: the fused kernel's tests on CUDA, its launch configurations,
# then the layer benchmark at the anchor size (8192 x 8192 fp32), each step synchronised
# alone and 10 steps back to back, and at the CPU default size.
# Run from the repository root on a CUDA machine with torch and triton installed; writes to $OUT.
# Each layer benchmark also writes its result record; they come back in
# $OUT/benchmark_records.tar (their names hold "="): `tar -xf benchmark_records.tar -C results`,
# then `dropprior report` puts them on docs/results/benchmarks.md.
set -u
OUT=${OUT:-/tmp/gpu_check}
RESULTS=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" \
  | tee -a "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/nn/test_fused_noise.py 2>&1 \
  | grep -v DEBUG | tee "$OUT/pytest.txt" | tail -8
timeout 100 python3 benchmarks/bench_fused_kernel.py --pipelined 10 2>&1 | tee "$OUT/fused_kernel.txt"
quiet() { grep -v -e "RNN module weights" -e "out = torch.lstm" -e "out, h, c = torch.lstm"; }
timeout 100 python3 benchmarks/bench_layers.py --device cuda --size 8192 8192 \
  --record "$RESULTS" 2>&1 | quiet | tee "$OUT/bench_8192.txt"
timeout 100 python3 benchmarks/bench_layers.py --device cuda --size 8192 8192 --pipelined 10 \
  --record "$RESULTS" 2>&1 | quiet | tee "$OUT/bench_8192_pipelined.txt"
timeout 60 python3 benchmarks/bench_layers.py --device cuda --pipelined 10 --record "$RESULTS" \
  2>&1 | quiet | tee "$OUT/bench_default_pipelined.txt"
tar -cf "$OUT/benchmark_records.tar" -C "$RESULTS" benchmarks 2>/dev/null || true
date -u
