#!/bin/bash
# PTB on a lent GPU, every variant one after the other (and tied noise under the heavy-tailed
# inverse Nakagami law), one result record each.
#
#   bash scripts/ptb_gpu.sh [SIZE] [DATA_DIR]      (SIZE: zaremba-small (default) or medium)
#
# Records go to $OUT/results/ptb/ when $OUT is set (the device tool brings $OUT back), else to
# results/ptb/. A variant whose record exists there is read, not rerun, and one stopped by the
# command's time limit resumes from its last epoch (runs/ptb/ holds the checkpoints while the
# machine stays warm), so a rerun goes on. Run `dropprior report` after copying the records
# into results/ptb/.
set -euo pipefail
SIZE=${1:-zaremba-small}
DATA=${2:-${DROPPRIOR_DATA_DIR:-../shared/data}}
RESULTS=${OUT:+$OUT/results}
RESULTS=${RESULTS:-results}
mkdir -p "$RESULTS"
if [ -d results/ptb ] && [ "$RESULTS" != results ]; then
    mkdir -p "$RESULTS/ptb" && cp -n results/ptb/*.json "$RESULTS/ptb/" 2>/dev/null || true
fi
# the checkout's own package, whether or not it is installed on the machine
ptb() {
    PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" python -c \
        'import sys; from dropprior.cli import main; sys.exit(main(sys.argv[1:]))' \
        ptb --data-dir "$DATA" --size "$SIZE" --device cuda --results "$RESULTS" \
        --checkpoint-dir runs/ptb "$@"
}
ptb --variant none zaremba gal tied untied
# the heavy-tailed law (Student-t prior: inverse Nakagami noise) on the tied structure
ptb --variant tied --law inverse_nakagami
