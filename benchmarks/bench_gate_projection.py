"""The untied LSTM's input projections, forward+backward, through oneDNN (``GateProjection``)
against one batched torch product, at several layer sizes: the measurement behind
``dropprior.functional._lstm._ONEDNN_MIN_MACS``.

Run:  python benchmarks/bench_gate_projection.py [--threads 1] [--repeats 25]

Prints, per (T, N, D, H, G): the median time of each path over ``--repeats`` alternating calls
and their ratio (batched / oneDNN; < 1: the batched product is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dropprior.functional._lstm import GateProjection, batched_gate_projections

SHAPES = [(20, 20, 200, 200, 4), (35, 20, 200, 200, 4), (20, 20, 200, 200, 1),
          (35, 20, 300, 300, 4), (20, 20, 400, 400, 4), (35, 20, 400, 400, 4),
          (35, 20, 650, 650, 4), (35, 20, 650, 650, 1), (20, 32, 128, 128, 4)]


def bench(t: int, n: int, d: int, hidden: int, groups: int, repeats: int) -> tuple[float, float]:
    x = torch.randn(t, n, d, requires_grad=True)
    w = torch.randn(4 * hidden, d, requires_grad=True)
    b = torch.randn(4 * hidden, requires_grad=True)
    noise = (torch.rand(groups, n, d) < 0.8).float() / 0.8
    grad = torch.randn(t, n, 4 * hidden)

    def onednn() -> None:
        GateProjection.apply(x, w, b, noise).backward(grad)

    def batched() -> None:
        batched_gate_projections(x, w, b, noise).backward(grad)

    steps = (onednn, batched)
    for step in steps:
        for _ in range(3):
            step()
    times: list[list[float]] = [[], []]
    for _ in range(repeats):
        for k, step in enumerate(steps):
            start = time.perf_counter()
            step()
            times[k].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=25, help="timed calls (default 25)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    print("T   N   D    H    G   oneDNN ms  batched ms  ratio")
    for shape in SHAPES:
        one, bat = bench(*shape, repeats=args.repeats)
        print("{:<3} {:<3} {:<4} {:<4} {:<3}".format(*shape)
              + f" {one * 1e3:9.2f} {bat * 1e3:11.2f} {bat / one:6.2f}", flush=True)


if __name__ == "__main__":
    main()
