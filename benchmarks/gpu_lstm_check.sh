#!/usr/bin/env bash
# The untied LSTM on CUDA (cuDNN through untied_lstm_fused): its tests and the LSTM benchmark.
export PYTHONPATH=$PWD/src:$PWD/benchmarks PYTHONUNBUFFERED=1
date -u
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/nn/test_nn_layers.py -k "lstm" 2>&1 | tail -4
for k in 1 10; do timeout 60 python3 -c "
import torch, bench_layers as b
b.DEVICE = torch.device('cuda'); b.PIPELINED = $k; torch.manual_seed(0)
print('pipelined', b.PIPELINED); b.bench_lstm(20)" 2>&1 | grep -v -e "RNN module" -e "torch.lstm"; done
date -u
