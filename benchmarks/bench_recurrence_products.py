"""The untied LSTM's recurrence, forward+backward, with its products through oneDNN (U packed
once per call for the per-step products, U's gradient through oneDNN's linear) against torch's
addmm / mm, at several layer sizes: the measurement behind
``dropprior.functional._bptt._PACK_MIN_MACS`` and ``_ONEDNN_GRAD_MIN_ELEMENTS``.

Run:  python benchmarks/bench_recurrence_products.py [--threads 2] [--repeats 30]

Prints, per (T, N, H): the median time of ``RecurrenceBPTT`` forward+backward with every product
through oneDNN (both sizes set to 0), with none (both sizes above the layer's), and with the
library's own sizes, over ``--repeats`` alternating blocks of 5 calls; then the ratios to the
all-oneDNN time (< 1: faster than it) and which paths the library's sizes take.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from bench_layers import round_robin  # benchmarks/ is on the path when run as a script

import dropprior.functional._bptt as bptt

SHAPES = [(20, 20, 128), (20, 32, 128), (20, 20, 200), (35, 20, 200), (20, 32, 200),
          (20, 64, 200), (35, 20, 256), (35, 20, 300), (35, 20, 400), (35, 20, 512),
          (35, 20, 650)]
_LIBRARY = (bptt._PACK_MIN_MACS, bptt._ONEDNN_GRAD_MIN_ELEMENTS)


def _call(t: int, n: int, hidden: int, sizes: tuple[int, int]) -> Callable[[], None]:
    proj = torch.randn(t, n, 4 * hidden, requires_grad=True)
    weight = (torch.randn(4 * hidden, hidden) * hidden ** -0.5).requires_grad_()
    h0, c0 = torch.zeros(n, hidden), torch.zeros(n, hidden)
    grad = torch.randn(t, n, hidden)

    def step() -> None:
        bptt._PACK_MIN_MACS, bptt._ONEDNN_GRAD_MIN_ELEMENTS = sizes
        try:
            out, _, _ = bptt.RecurrenceBPTT.apply(proj, weight, None, h0, c0, None)
            out.backward(grad)
        finally:
            bptt._PACK_MIN_MACS, bptt._ONEDNN_GRAD_MIN_ELEMENTS = _LIBRARY
    return step


def bench(t: int, n: int, hidden: int, repeats: int, block: int = 5) -> list[float]:
    never = (n * 4 * hidden * hidden + 1, 4 * hidden * hidden + 1)
    calls = [_call(t, n, hidden, sizes) for sizes in ((0, 0), never, _LIBRARY)]

    def blocked(call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(block):
                call()
        return run

    return [m / block for m in round_robin([blocked(c) for c in calls], repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=30, help="timed blocks (default 30)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} "
          "blocks of 5")
    print("T   N   H    oneDNN ms  torch ms  library ms  torch/oneDNN  library/oneDNN  "
          "library takes")
    for t, n, hidden in SHAPES:
        one, tor, lib = bench(t, n, hidden, args.repeats)
        weight = torch.empty(4 * hidden, hidden)  # the library's own rules, on U's shape
        packs = bptt._packs(True, weight, n)
        grad = bptt._grad_through_onednn(True, weight)
        takes = f"{'packed' if packs else 'addmm/mm'} steps, {'oneDNN' if grad else 'mm'} dU"
        print(f"{t:<3} {n:<3} {hidden:<4} {one * 1e3:9.2f} {tor * 1e3:9.2f} {lib * 1e3:11.2f} "
              f"{tor / one:13.2f} {lib / one:15.2f}  {takes}", flush=True)


if __name__ == "__main__":
    main()
