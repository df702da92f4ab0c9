"""Launch configurations of the fused CUDA noise kernel against F.dropout (needs a CUDA GPU).

Run:  python benchmarks/bench_fused_kernel.py [--size 8192 8192] [--repeats 20] [--pipelined 10]

For each law, the forward+backward time of the fused path is two launches of the kernel (the
backward is the same kernel on the gradient); this times one launch per configuration
(lanes per program, warps per program, approximate or accurate transcendental functions), doubles
it, and divides by the forward+backward time of ``F.dropout`` (its forward kernel, then its
backward mask product) measured in the same run. A ratio < 1 is faster than ``F.dropout``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dropprior.functional import _fused
from dropprior.noise import (
    Beta,
    InverseNakagami,
    example_laws,
)

LAWS = {
    **example_laws(),  # one of every registered law, shared with the tests
    # the anchor laws: Beta(2, 2) (one word, inverse CDF) and m = 2 (an exact sum)
    "beta(2,2)": Beta(2.0, 2.0),
    "inverse_nakagami m=2": InverseNakagami(shape=2.0, spread=1.0),
    # gamma shapes that are not half-integers: rejection sampling
    "inverse_nakagami m=2.3": InverseNakagami(shape=2.3, spread=1.0),
    "beta(2.5,1.7)": Beta(2.5, 1.7),
}
CONFIGS = [(256, 4), (512, 4), (128, 4), (256, 8)]  # (lanes, warps)


def median_time(step: Callable[[], object], repeats: int, pipelined: int) -> float:
    """Median over ``repeats`` of the time of ``pipelined`` steps queued back to back, per step."""
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(pipelined):
            step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / pipelined)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(8192, 8192),
                        metavar=("ROWS", "COLS"), help="x's shape (default 8192 8192)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs (default 20)")
    parser.add_argument("--pipelined", type=int, default=1, metavar="K",
                        help="steps queued back to back per timed run (default 1)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("this benchmark needs a CUDA GPU")
    x = torch.randn(*args.size, device="cuda", requires_grad=True)
    grad = torch.randn(*args.size, device="cuda")
    seed = torch.zeros(1, dtype=torch.int64, device="cuda")

    def dropout_step() -> None:
        x.grad = None
        F.dropout(x, 0.5).backward(grad)

    base = median_time(dropout_step, args.repeats, args.pipelined)
    print(f"{torch.cuda.get_device_name()}, x {args.size[0]}x{args.size[1]} fp32; "
          f"{args.pipelined} step(s) per timed run; F.dropout forward+backward "
          f"{base * 1e3:.3f} ms; ratio = 2 x one launch / that")
    configs = [(lanes, warps, True) for lanes, warps in CONFIGS] + [(256, 4, False)]
    header = "".join(f"{f'{lanes}/{warps}' + ('' if fast else ' acc'):>12}"
                     for lanes, warps, fast in configs)
    print(f"{'law':<24}{header}")
    data = x.detach()
    for name, law in LAWS.items():
        plan = _fused.fused_plan(law, data)
        assert plan is not None, name
        cells = []
        for lanes, warps, fast in configs:
            def step(plan: _fused.FusedPlan = plan, lanes: int = lanes, warps: int = warps,
                     fast: bool = fast) -> object:
                return _fused.launch(data, plan, seed, lanes, warps, fast)

            t = median_time(step, args.repeats, args.pipelined)
            cells.append(f"{2 * t / base:>12.2f}")
        print(f"{name:<24}{''.join(cells)}")


if __name__ == "__main__":
    main()
