# Sourced by scripts/gpu_session.sh and scripts/ptb_gpu.sh: the one spelling of their
# `dropprior ptb` call, and the packing of its records. The device tool does not bring back
# files whose names hold '=', as the PTB records' do, so they come back as one tar in $OUT.
#
#   ptb_cuda DIR [OPTION ...]   `dropprior ptb --device cuda --results DIR OPTION ...` from the
#                               checkout's own package (src/), installed on the machine or not
#   pack_ptb_records DIR        DIR/ptb/ into $OUT/ptb_records.tar (written whole, then renamed)
#   keep_packing_ptb_records DIR
#                               pack every 30 s in the background, and once more on exit

ptb_cuda() {
  local results=$1
  shift
  PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" python3 -c \
    'import sys; from dropprior.cli import main; sys.exit(main(sys.argv[1:]))' \
    ptb --device cuda --results "$results" "$@"
}

pack_ptb_records() {
  tar -cf "$OUT/ptb_records.tar.part" -C "$1" ptb && \
    mv "$OUT/ptb_records.tar.part" "$OUT/ptb_records.tar"
}

keep_packing_ptb_records() {
  ( while sleep 30; do pack_ptb_records "$1"; done ) &
  PTB_PACKER=$!
  trap 'kill $PTB_PACKER 2>/dev/null; pack_ptb_records "'"$1"'"' EXIT
}
