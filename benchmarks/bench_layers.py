"""Forward+backward time and saved-activation memory of dropprior's noise layers against torch.

Run:  python benchmarks/bench_layers.py [--repeats 20] [--threads 1]
            [--only unit dropconnect conv lstm embedding]
      python benchmarks/bench_layers.py --device cuda --size 8192 8192

Prints, measured in the same run on this machine:
* every law at structure "unit" vs ``F.dropout`` (x of 2048 x 1024 fp32 by default; inverse
  Nakagami and Beta also at gamma shapes that need rejection sampling), plus the naive
  ``x * law.sample(shape)`` for comparison, and the bytes per element saved for backward; each
  law's three steps timed in turn, so that its ratios are against an ``F.dropout`` time taken
  alongside it;
* DropConnect (exact per-example, and Gaussian local reparametrization) vs ``nn.Linear``;
* convolutional DropConnect (``NoisyConv2d``, structure ``"weight"``, per example) for every
  law vs ``nn.Conv2d`` (64 x 16 x 28 x 28 -> 16 filters of 3 x 3), each law timed in turn with
  ``nn.Conv2d``;
* tied and untied ``NoisyLSTM`` vs ``nn.LSTM`` (T=35, B=20, 200 units), the three timed in
  turn; then tied noise with ``recurrent_weight_noise`` (AWD-LSTM's WeightDrop) timed in turn
  with ``nn.LSTM``;
* ``NoisyEmbedding`` (Bernoulli word-type noise per sequence, per batch and per token) vs
  ``nn.Embedding`` (10 000 × 200, tokens 35 × 20, PTB's shape), each timed in turn with it.
With ``--record RESULTS`` the run also writes its result record (every case's times) to
RESULTS/benchmarks/. Times are medians over ``--repeats`` runs (on CUDA each run is synchronised
before and after, and ``--pipelined K`` times K steps queued back to back per run); ratios < 1
mean faster than the torch baseline.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dropprior.experiments.benchmark_records import record_benchmark
from dropprior.experiments.rundir import now
from dropprior.functional import multiplicative_noise
from dropprior.nn import NoisyConv2d, NoisyEmbedding, NoisyLinear, NoisyLSTM
from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    InverseNakagami,
    example_laws,
)

LAWS = {
    **example_laws(),  # one of every registered law, shared with the tests
    # the GPU issue's anchor laws: Beta(2, 2) (one word, inverse CDF) and m = 2 (an exact sum)
    "beta_2_2": Beta(2.0, 2.0),
    "inv_nakagami_2": InverseNakagami(shape=2.0, spread=1.0),
    # gamma shapes that are not half-integers: rejection sampling (the general path on CPU)
    "inv_nakagami_2.3": InverseNakagami(shape=2.3, spread=1.0),
    "beta_2.5_1.7": Beta(2.5, 1.7),
}


DEVICE = torch.device("cpu")


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


PIPELINED = 1  # steps timed back to back between synchronisations (--pipelined on CUDA)


def median_time(step: Callable[[], None], repeats: int) -> float:
    """Median time of one step (:func:`round_robin` of the step alone)."""
    return round_robin([step], repeats)[0]


def round_robin(steps: list[Callable[[], None]], repeats: int) -> list[float]:
    """Median time of one step of each, the steps timed in turn ``repeats`` times (after three
    warm-up steps each). On CUDA with ``--pipelined K``, a sample is K steps queued back to
    back (the CPU's launch overhead then overlaps the GPU's work, as in training) over K."""
    for step in steps:
        for _ in range(3):
            step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for k, step in enumerate(steps):
            synchronize()
            start = time.perf_counter()
            for _ in range(PIPELINED):
                step()
            synchronize()
            times[k].append((time.perf_counter() - start) / PIPELINED)
    return [statistics.median(t) for t in times]


def saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Bytes autograd keeps for backward beyond the input itself (saved_tensors_hooks)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if t is not x:
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return total


def bench_unit(repeats: int, rows: int, cols: int) -> list[dict[str, object]]:
    x = torch.randn(rows, cols, device=DEVICE, requires_grad=True)
    grad = torch.randn(rows, cols, device=DEVICE)

    def run(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def step() -> None:
            x.grad = None
            fn(x).backward(grad)
        return step

    dropout = run(lambda t: F.dropout(t, 0.5))
    base_mem = saved_bytes(lambda t: F.dropout(t, 0.5), x) / x.numel()
    print(f"\n[unit noise vs F.dropout] x {rows}x{cols} fp32, forward+backward; "
          f"F.dropout saves {base_mem:.2f} B/element; each law timed in turn with F.dropout "
          f"(its own 'dropout ms'), ratios against that")
    print(f"{'law':<18}{'ms':>8}{'dropout ms':>12}{'ratio':>8}{'naive ratio':>13}"
          f"{'B/element':>11}")
    out: list[dict[str, object]] = []
    for name, law in LAWS.items():
        on_device = law.to(DEVICE)
        base, ours, naive = round_robin(
            [dropout, run(lambda t, law=law: multiplicative_noise(t, law)),
             run(lambda t, law=on_device: t * law.sample(t.shape))], repeats)
        mem = saved_bytes(lambda t, law=law: multiplicative_noise(t, law), x) / x.numel()
        print(f"{name:<18}{ours * 1e3:>8.2f}{base * 1e3:>12.2f}{ours / base:>8.2f}"
              f"{naive / base:>13.2f}{mem:>11.2f}")
        out.append({"case": name, "ms": ours * 1e3, "baseline_ms": base * 1e3,
                    "naive_ms": naive * 1e3, "bytes_per_element": mem,
                    "baseline_bytes_per_element": base_mem})
    return out


def bench_dropconnect(repeats: int) -> list[dict[str, object]]:
    x = torch.randn(64, 512, device=DEVICE, requires_grad=True)
    linear = nn.Linear(512, 512).to(DEVICE)
    exact = NoisyLinear(512, 512, Gaussian(1.0, 0.5), "weight").to(DEVICE)
    local = NoisyLinear(512, 512, Gaussian(1.0, 0.5), "weight", local_reparam=True).to(DEVICE)

    def run(module: nn.Module) -> Callable[[], None]:
        def step() -> None:
            module.zero_grad()
            module(x).sum().backward()
        return step

    base = median_time(run(linear), repeats)
    print(f"\n[DropConnect vs nn.Linear] 64 x 512 -> 512 fp32; nn.Linear: {base * 1e3:.3f} ms")
    out: list[dict[str, object]] = []
    for label, module in (("exact per-example", exact), ("local reparam", local)):
        t = median_time(run(module), max(3, repeats // 4) if module is exact else repeats)
        print(f"{label:<20}{t * 1e3:>10.3f} ms{t / base:>10.2f}x")
        out.append({"case": label, "ms": t * 1e3, "baseline_ms": base * 1e3})
    return out


def bench_conv(repeats: int) -> list[dict[str, object]]:
    x = torch.randn(64, 16, 28, 28, device=DEVICE, requires_grad=True)
    conv = nn.Conv2d(16, 16, 3, padding=1).to(DEVICE)

    def run(module: nn.Module) -> Callable[[], None]:
        def step() -> None:
            x.grad = None
            module.zero_grad()
            module(x).sum().backward()
        return step

    print("\n[conv DropConnect vs nn.Conv2d] 64 x 16 x 28 x 28 -> 16 x 3 x 3, padding 1, fp32, "
          "forward+backward; each law timed in turn with nn.Conv2d (its own 'conv ms')")
    print(f"{'law':<18}{'ms':>8}{'conv ms':>10}{'ratio':>8}")
    out: list[dict[str, object]] = []
    for name, law in LAWS.items():
        noisy = NoisyConv2d(16, 16, 3, law, "weight", padding=1).to(DEVICE)
        base, ours = round_robin([run(conv), run(noisy)], max(3, repeats // 2))
        print(f"{name:<18}{ours * 1e3:>8.2f}{base * 1e3:>10.2f}{ours / base:>8.2f}")
        out.append({"case": name, "ms": ours * 1e3, "baseline_ms": base * 1e3})
    return out


def bench_lstm(repeats: int) -> list[dict[str, object]]:
    x = torch.randn(35, 20, 200, device=DEVICE)
    law = Bernoulli(0.5, inverted=True)
    torch_lstm = nn.LSTM(200, 200).to(DEVICE)
    tied = NoisyLSTM(200, 200, noise=law, gates="tied").to(DEVICE)
    untied = NoisyLSTM(200, 200, noise=law, gates="untied").to(DEVICE)

    def run(module: nn.Module) -> Callable[[], None]:
        def step() -> None:
            module.zero_grad()
            module(x)[0].sum().backward()  # (output, (h_n, c_n)) from all three
        return step

    # nn.LSTM, tied and untied take turns, so that a drift in the machine's speed reaches all
    # three alike
    base, *ours = round_robin([run(torch_lstm), run(tied), run(untied)],
                              repeats)
    print(f"\n[LSTM vs nn.LSTM] T=35, B=20, 200 -> 200 fp32, taking turns; "
          f"nn.LSTM: {base * 1e3:.2f} ms")
    out: list[dict[str, object]] = []
    for label, t in zip(("tied", "untied"), ours, strict=True):
        print(f"{label:<20}{t * 1e3:>10.2f} ms{t / base:>10.2f}x")
        out.append({"case": label, "ms": t * 1e3, "baseline_ms": base * 1e3})
    # AWD-LSTM's pair: tied input noise and DropConnect on U, each timed in turn with nn.LSTM
    weight_drop = NoisyLSTM(200, 200, noise=law, gates="tied",
                            recurrent_weight_noise=law).to(DEVICE)
    base_wd, wd = round_robin([run(torch_lstm), run(weight_drop)], repeats)
    print(f"{'tied + weight drop':<20}{wd * 1e3:>10.2f} ms{wd / base_wd:>10.2f}x   "
          f"(timed in turn with nn.LSTM: {base_wd * 1e3:.2f} ms)")
    out.append({"case": "tied + weight drop", "ms": wd * 1e3, "baseline_ms": base_wd * 1e3})
    # Rejected exact alternatives for untied noise that keep torch's fused sequence kernel.
    w_ih, w_hh = untied.weight_ih_l0, untied.weight_hh_l0
    b_ih, b_hh = untied.bias_ih_l0, untied.bias_hh_l0
    zeros = x.new_zeros(1, 20, 200)
    eye = torch.eye(800, device=DEVICE)

    def block_diagonal() -> None:
        """Input widened to 4·D (x ⊙ ξ_g per gate) with a block-diagonal input weight."""
        untied.zero_grad()
        xi = law.sample((20, 4, 200)).to(DEVICE)
        wide = (x.unsqueeze(2) * xi).reshape(35, 20, 800)
        weight = torch.block_diag(*w_ih.view(4, 200, 200))
        out = torch.lstm(wide, (zeros, zeros), [weight, w_hh, b_ih, b_hh], True, 1, 0.0, True,
                         False, False)[0]
        out.sum().backward()

    def identity_input() -> None:
        """Precomputed per-gate projections fed through an identity input weight."""
        from dropprior.functional import gate_projections

        untied.zero_grad()
        proj = gate_projections(x, w_ih, b_ih, law.sample((4, 20, 200)).to(DEVICE))
        out = torch.lstm(proj, (zeros, zeros), [eye, w_hh, eye.new_zeros(800), b_hh],
                         True, 1, 0.0, True, False, False)[0]
        out.sum().backward()

    for label, step in (("untied, block-diag", block_diagonal),
                        ("untied, identity W", identity_input)):
        t = median_time(step, repeats)
        print(f"{label:<20}{t * 1e3:>10.2f} ms{t / base:>10.2f}x   (rejected alternative)")
        out.append({"case": f"{label} (rejected)", "ms": t * 1e3, "baseline_ms": base * 1e3})
    return out


def bench_embedding(repeats: int) -> list[dict[str, object]]:
    tokens = torch.randint(0, 10000, (35, 20), device=DEVICE)
    grad = torch.randn(35, 20, 200, device=DEVICE)
    law = Bernoulli(0.9, inverted=True)
    torch_embed = nn.Embedding(10000, 200).to(DEVICE)

    def run(module: nn.Module) -> Callable[[], None]:
        def step() -> None:
            module.zero_grad()
            module(tokens).backward(grad)
        return step

    print("\n[NoisyEmbedding vs nn.Embedding] 10000 x 200, tokens 35 x 20, forward+backward; "
          "each granularity timed in turn with nn.Embedding (its own 'embedding ms')")
    print(f"{'granularity':<18}{'ms':>8}{'embedding ms':>14}{'ratio':>8}")
    out: list[dict[str, object]] = []
    for granularity in ("sequence", "batch", "example"):
        noisy = NoisyEmbedding(10000, 200, law, granularity).to(DEVICE)
        base, ours = round_robin([run(torch_embed), run(noisy)], repeats)
        print(f"{granularity:<18}{ours * 1e3:>8.3f}{base * 1e3:>14.3f}{ours / base:>8.2f}")
        out.append({"case": granularity, "ms": ours * 1e3, "baseline_ms": base * 1e3})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--only", nargs="+",
                        choices=("unit", "dropconnect", "conv", "lstm", "embedding"),
                        default=None, help="the comparisons to run (default: all)")
    parser.add_argument("--device", default="cpu",
                        help="where to run: cpu (default), cuda or cuda:N")
    parser.add_argument("--size", type=int, nargs=2, default=(2048, 1024), metavar=("ROWS", "COLS"),
                        help="x of the unit-noise case (default 2048 1024; the issue's GPU "
                             "anchors use 8192 8192)")
    parser.add_argument("--pipelined", type=int, default=1, metavar="K",
                        help="on CUDA, time K steps queued back to back per sample (default 1: "
                             "each step synchronised alone, launch overhead included)")
    parser.add_argument("--record", type=Path, default=None, metavar="RESULTS",
                        help="also write the run's result record to RESULTS/benchmarks/ "
                        "(dropprior report builds docs/results/benchmarks.md from it)")
    args = parser.parse_args()
    global DEVICE, PIPELINED
    DEVICE = torch.device(args.device)
    PIPELINED = args.pipelined if DEVICE.type == "cuda" else 1
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} thread(s)"
    pipelined = f", {PIPELINED} steps back to back per run" if PIPELINED > 1 else ""
    print(f"torch {torch.__version__}, {where}, median of {args.repeats} runs{pipelined}")
    start, started_at = time.perf_counter(), now()
    rows: dict[str, list[dict[str, object]]] = {}
    for name, bench in (("unit", lambda: bench_unit(args.repeats, *args.size)),
                        ("dropconnect", lambda: bench_dropconnect(args.repeats)),
                        ("conv", lambda: bench_conv(args.repeats)),
                        ("lstm", lambda: bench_lstm(args.repeats)),
                        ("embedding", lambda: bench_embedding(args.repeats))):
        if args.only is None or name in args.only:
            rows[name] = bench()
    if args.record is not None:
        config = {"repeats": args.repeats, "threads": args.threads, "only": args.only,
                  "device": where, "size": list(args.size), "pipelined": PIPELINED}
        print("wrote the result record", record_benchmark(
            "layers", "python " + shlex.join(sys.argv), config, rows,
            started_at, time.perf_counter() - start, args.record))


if __name__ == "__main__":
    main()
