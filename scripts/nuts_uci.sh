#!/usr/bin/env bash
# The UCI NUTS benchmark of docs/inference.md: Boston, Yacht and Energy, every standard split,
# one hidden layer of 50 units, NUTS in EP under two priors (Gaussian noise -> variance-gamma,
# inverse-Nakagami noise -> Student-t, both matched to dropout rate p = 0.05), beside MC-dropout
# MAP (p = 0.05, 400 epochs). Every hyperparameter is fixed here, before any test split is read.
# Six independent runs (3 datasets x 2 priors), two at a time on the local cores; each writes
# one JSON file. Then: python scripts/nuts_uci_table.py runs/nuts-uci/*.json
#
#   usage: scripts/nuts_uci.sh DATA_DIR [OUT_DIR] [JOBS]
set -euo pipefail
DATA_DIR=${1:?usage: scripts/nuts_uci.sh DATA_DIR [OUT_DIR] [JOBS]}
OUT=${2:-runs/nuts-uci}
JOBS=${3:-2}
mkdir -p "$OUT"
for dataset in yacht bostonHousing energy; do
  echo "$dataset gaussian mc-dropout,nuts-ep"
  echo "$dataset inverse_nakagami nuts-ep"
done | xargs -P "$JOBS" -L 1 bash -c '
  dropprior mcmc --data-dir "'"$DATA_DIR"'" --dataset "$0" --law "$1" --methods "$2" \
    --p 0.05 --sigma0 1.0 --epochs 400 --warmup 150 --num-samples 100 --chains 2 \
    --max-tree-depth 6 --seed 0 --out "'"$OUT"'/$0-$1.json" > "'"$OUT"'/$0-$1.log" 2>&1
  echo "done $0 $1"'
