#!/bin/bash
# PTB on a lent GPU, every variant one after the other (and tied noise under the heavy-tailed
# inverse Nakagami law), one result record each.
#
#   bash scripts/ptb_gpu.sh [SIZE] [DATA_DIR]      (SIZE: zaremba-small (default) or medium)
#
# Records go to results/ptb/, and, when $OUT is set (the device tool brings $OUT back), also to
# $OUT/ptb_records.tar, refreshed every 30 s (the records' names hold '=', which the tool does
# not bring back as files): unpack it with `tar -xf ptb_records.tar -C results`. A variant whose
# record exists in results/ptb/ is read, not rerun, and one stopped by the command's time limit
# resumes from its last epoch (runs/ptb/ holds the checkpoints while the machine stays warm), so
# a rerun goes on. Run `dropprior report` after unpacking. On an H200 one medium variant (2 x 650,
# 39 epochs) takes about 8-9 minutes (benchmarks/results/h200-2026-12-04/).
set -euo pipefail
SIZE=${1:-zaremba-small}
DATA=${2:-${DROPPRIOR_DATA_DIR:-../shared/data}}
mkdir -p results/ptb
source "$(dirname "$0")/_ptb_gpu.sh"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    keep_packing_ptb_records results
fi
ptb() {
    ptb_cuda results --data-dir "$DATA" --size "$SIZE" --checkpoint-dir runs/ptb "$@"
}
ptb --variant none zaremba gal tied untied
# the heavy-tailed law (Student-t prior: inverse Nakagami noise) on the tied structure
ptb --variant tied --law inverse_nakagami
