#!/usr/bin/env bash
# One lent-GPU session in one command, within a deadline: the fused kernel's CUDA tests and its
# benchmarks first (short), then PTB at Zaremba's medium size (2 x 650, 39 epochs) for the
# variants named, one after the other, with whatever time is left (the preset's settings, as
# scripts/ptb_gpu.sh runs them, so that the records join one table). Every PTB record is rewritten
# after each epoch, so a variant stopped by the deadline comes back as a partial record; the same
# command run again while the machine is still warm resumes it from its last epoch.
#
#   bash scripts/gpu_session.sh DATA_DIR SECONDS [VARIANT ...]     (default variant: tied)
#   CHECKS=0 bash scripts/gpu_session.sh ...                       (PTB only: no tests, benchmarks)
#   PTB_ARGS="--output-noise" bash scripts/gpu_session.sh ...      (more `dropprior ptb` options,
#                                                                    given to every variant)
#
# One medium variant takes about 8-9 minutes on an H200 (benchmarks/results/h200-2026-12-04/), so
# one 10-minute call finishes one variant with CHECKS=0, none after the checks (2-3 minutes); with
# SECONDS 0 the call runs the checks alone.
#
# Writes to $OUT (the device tool brings it back; at most 8 files, plain names): gpu.txt,
# pytest.txt, fused_kernel.txt, bench_unit_8192.txt, profile_unit.txt, ptb.log,
# benchmark_records.tar (the unit-noise benchmark's record) and ptb_records.tar, the PTB records
# (their names hold '=', which the tool does not bring back), refreshed every 30 s. Unpack both
# into results/ (`tar -xf ptb_records.tar -C results`) and run `dropprior report`.
set -u
DATA=$1
DEADLINE=$(( $(date +%s) + $2 ))
shift 2
VARIANTS=${*:-tied}
OUT=${OUT:-/tmp/gpu_session}
# kept between calls while the machine stays warm (runs/ is ignored, so the device tool leaves
# it in place): a variant stopped by one call's deadline resumes from its last epoch in the next
# call, and a finished one is read from its record, not rerun
RESULTS=$PWD/runs/gpu_session
mkdir -p "$OUT" "$RESULTS/ptb"
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
left() { echo $(( DEADLINE - $(date +%s) )); }

if [ "${CHECKS:-1}" != 0 ]; then
  { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
    date -u; } 2>&1 | tee "$OUT/gpu.txt"
  # the CUDA half of the kernel's tests (the interpreter half runs in CI)
  timeout 150 python3 -m pytest -p no:cacheprovider -k "not interpreter" \
    tests/nn/test_fused_noise.py 2>&1 | grep -v DEBUG > "$OUT/pytest.txt"
  tail -3 "$OUT/pytest.txt"
  timeout 60 python3 benchmarks/bench_fused_kernel.py --pipelined 10 --repeats 50 2>&1 \
    | tee "$OUT/fused_kernel.txt"
  timeout 60 python3 benchmarks/bench_layers.py --device cuda --size 8192 8192 --pipelined 10 \
    --repeats 50 --only unit --record "$RESULTS" 2>&1 | tee "$OUT/bench_unit_8192.txt"
  # its record (a name with "=") travels back in a tar, as the PTB records do
  tar -cf "$OUT/benchmark_records.tar" -C "$RESULTS" benchmarks 2>/dev/null || true
  # where the end-to-end step's time goes: host or device, and which kernels
  timeout 90 python3 benchmarks/profile_unit_step.py --laws bernoulli gaussian rayleigh 2>&1 \
    | grep -v USDT | tee "$OUT/profile_unit.txt"
  date -u | tee -a "$OUT/gpu.txt"
fi

source "$(dirname "$0")/_ptb_gpu.sh"
keep_packing_ptb_records "$RESULTS"
export -f ptb_cuda
for variant in $VARIANTS; do
  budget=$(left)
  [ "$budget" -gt 30 ] || break
  echo "ptb medium $variant: ${budget}s left" | tee -a "$OUT/ptb.log"
  # (timeout runs a command, not a shell function: the exported function runs in a bash child)
  timeout "$budget" bash -c 'ptb_cuda "$@"' _ "$RESULTS" --data-dir "$DATA" --size medium \
    --variant "$variant" --checkpoint-dir "$RESULTS/checkpoints" ${PTB_ARGS:-} \
    >> "$OUT/ptb.log" 2>&1
  echo "exit $? at $(date -u)" | tee -a "$OUT/ptb.log"
done
tail -5 "$OUT/ptb.log"
