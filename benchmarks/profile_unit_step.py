"""Where one forward+backward step of unit noise spends its time, against ``F.dropout``.

Run:  python benchmarks/profile_unit_step.py [--device cuda] [--size 8192 8192] [--steps 10]
      [--laws bernoulli gaussian]

For ``F.dropout(x, 0.5)`` and for ``multiplicative_noise(x, law)`` with each law named, it queues
``--steps`` forward+backward steps back to back (as ``bench_layers.py --pipelined`` does) and
prints, per step:

* ``issue ms``: the host's time to queue the steps (before the final synchronisation);
* ``total ms``: the time until the device has finished them. Where ``issue`` is close to
  ``total`` the step is bound by host-side work, else by device work;
* ``kernels``: device kernels launched per step, and ``device ms``, their summed time;

then the profiler's table of the device kernels (or, on CPU, the operators) of each, by self
time, so that an extra pass over memory or an extra launch shows up by name.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from dropprior.functional import multiplicative_noise
from dropprior.noise import example_laws


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], None], steps: int, device: torch.device) -> tuple[float, float]:
    """(issue, total) seconds per step of ``steps`` steps queued back to back."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    issued = time.perf_counter()
    _sync(device)
    done = time.perf_counter()
    return (issued - start) / steps, (done - start) / steps


def _device_kernels(prof: profile, device: torch.device) -> list[tuple[str, int, float]]:
    """(name, launches, self µs) of the device kernels (CPU: the operators), by self time."""
    rows = []
    for event in prof.key_averages():
        if device.type == "cuda":
            micros = getattr(event, "self_device_time_total", None)
            if micros is None:  # older torch
                micros = event.self_cuda_time_total
            if micros <= 0 or event.device_type != torch.autograd.DeviceType.CUDA:
                continue
        else:
            micros = event.self_cpu_time_total
            if micros <= 0:
                continue
        rows.append((event.key, event.count, float(micros)))
    return sorted(rows, key=lambda r: -r[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cuda (default where available) or cpu")
    parser.add_argument("--size", type=int, nargs=2, default=(8192, 8192),
                        metavar=("ROWS", "COLS"), help="x's shape (default 8192 8192)")
    parser.add_argument("--steps", type=int, default=10, help="steps queued (default 10)")
    parser.add_argument("--laws", nargs="+", default=["bernoulli", "gaussian"],
                        choices=sorted(example_laws()), help="laws (default bernoulli gaussian)")
    parser.add_argument("--rows", type=int, default=8, help="kernels listed per case (default 8)")
    args = parser.parse_args()
    if args.steps < 1 or min(args.size) < 1 or args.rows < 1:
        parser.error(f"--steps, --size and --rows must be positive, got {args.steps}, "
                     f"{args.size}, {args.rows}")
    device = torch.device(args.device)
    x = torch.randn(*args.size, device=device, requires_grad=True)
    grad = torch.randn(*args.size, device=device)
    laws = example_laws()
    cases: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "F.dropout": lambda t: F.dropout(t, 0.5)}
    for name in args.laws:
        cases[name] = lambda t, law=laws[name]: multiplicative_noise(t, law)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    print(f"torch {torch.__version__}, {device}, x {args.size[0]}x{args.size[1]} fp32, "
          f"{args.steps} forward+backward steps queued back to back")
    print(f"{'case':<12}{'issue ms':>10}{'total ms':>10}{'kernels':>9}{'device ms':>11}")
    tables = []
    for name, fn in cases.items():
        def step(fn: Callable[[torch.Tensor], torch.Tensor] = fn) -> None:
            x.grad = None
            fn(x).backward(grad)

        for _ in range(3):  # warm-up: compilation, allocator
            step()
        issue, total = _timed(step, args.steps, device)
        with profile(activities=activities) as prof:
            _timed(step, args.steps, device)
        kernels = _device_kernels(prof, device)
        launches = sum(count for _, count, _ in kernels) / args.steps
        busy = sum(micros for *_, micros in kernels) / args.steps / 1e3
        print(f"{name:<12}{issue * 1e3:>10.3f}{total * 1e3:>10.3f}{launches:>9.1f}{busy:>11.3f}")
        tables.append((name, kernels[:args.rows]))
    for name, kernels in tables:
        print(f"\n[{name}] per step: launches, self ms, "
              f"{'kernel' if device.type == 'cuda' else 'operator'}")
        for key, count, micros in kernels:
            print(f"{count / args.steps:>6.1f}{micros / args.steps / 1e3:>10.3f}  {key[:90]}")


if __name__ == "__main__":
    main()
