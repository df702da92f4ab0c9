"""Training-step time of each experiment's noisy model against the same model with torch's own
dropout (or no noise), measured in the same run.

Run:  python benchmarks/bench_training_speed.py [--repeats 30] [--threads 1]

A step is what each experiment's training loop does per minibatch: zero the gradients, forward,
the loss, backward, the optimizer's step. Each case pairs the model the experiment trains with
dropprior's layers and its torch baseline of the same shapes; the two alternate in blocks of
steps, ``--repeats`` times, and the medians and their ratio (dropprior / torch; ≤ 1.15 is the
target of issue #21) are printed. Cases:

* ``uci-grid``: the UCI runner's step, G = 60 networks of 6 → 50 → 1 side by side
  (:class:`~dropprior.experiments.batched_mlp.BatchedMLP`, Bernoulli unit noise at four rates)
  against the same networks written in torch (``baddbmm``, masks from ``torch.bernoulli`` with
  each network's rate); batch 128, Adam.
* ``mlp-fit``: one 8 → 50 → 1 network (ReLU) as ``fit`` trains it, Bernoulli unit noise on both
  layers' inputs (``NoisyLinear``) against ``nn.Dropout`` before each ``nn.Linear``; batch 32,
  Adam.
* ``lenet-300-100``: the same structure at 784-300-100-10; batch 100, Adam.
* ``lenet-5-filter``: LeNet-5-Caffe with filter noise on both convolutions (``NoisyConv2d``,
  one draw per filter and image) against ``nn.Dropout2d`` on each convolution's output (the same
  law: a whole output channel per image); batch 100, Adam.
* ``conv-resnet-sd``: the ``conv-resnet`` network with stochastic depth (``Residual`` with
  Bernoulli depth noise) against torchvision's stochastic-depth rule written out
  (h + f(h) ⊙ Bernoulli(1 − p) / (1 − p), one draw per image); batch 128, Adam.
* ``ptb-tied``, ``ptb-untied``, ``ptb-gal``: the ``ptb`` language model at Zaremba's small shape
  (2 × 200, bptt 20, batch 20; one truncated-BPTT step with SGD and clipping) against the
  ``zaremba`` variant (torch's ``nn.Dropout``).

With ``--record RESULTS`` the run also writes its result record to RESULTS/benchmarks/. Run it
on an otherwise idle machine.
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
from torch import Tensor, nn

from dropprior.experiments.benchmark_records import record_benchmark
from dropprior.experiments.conv_resnet import build_conv_resnet
from dropprior.experiments.ptb import PTB_SIZES, LanguageModel, sequence_loss
from dropprior.experiments.rundir import now
from dropprior.nn import NoisyConv2d, NoisyLinear
from dropprior.noise import Bernoulli

Step = Callable[[], None]


def _classifier_step(model: nn.Module, x: Tensor, y: Tensor) -> Step:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return step


def _regression_step(model: nn.Module, x: Tensor, y: Tensor) -> Step:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return step


class _TorchBatchedMLP(nn.Module):
    """G ReLU MLPs side by side in plain torch: inverted Bernoulli masks on every layer's
    inputs, network g's drawn at keep[g]. Shape: (G, B, D) → (G, B)."""

    def __init__(self, sizes: list[int], keep: Tensor) -> None:
        super().__init__()
        g = keep.shape[0]
        self.keep = keep[:, None, None]
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(g, a, b) / a ** 0.5)
                                        for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(g, 1, b)) for b in sizes[1:])

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            mask = torch.bernoulli(self.keep.expand_as(h)) / self.keep
            h = torch.baddbmm(b, h * mask, w)
            if k < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)


def _grid_step(model: nn.Module, x: Tensor, y: Tensor) -> Step:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = (model(x) - y).pow(2).mean(1).sum() + 1e-4 * sum(
            p.pow(2).sum() for p in model.parameters())
        loss.backward()
        optimizer.step()
    return step


def _uci_grid() -> tuple[Step, Step]:
    from dropprior.experiments.batched_mlp import BatchedMLP

    keeps = [0.995, 0.99, 0.95, 0.9] * 15
    laws = [Bernoulli(k, inverted=True) for k in keeps]
    gens = [torch.Generator().manual_seed(g) for g in range(len(keeps))]
    x, y = torch.randn(len(keeps), 128, 6), torch.randn(len(keeps), 128)
    ours = BatchedMLP(len(keeps), 6, [50], laws, "unit", gens)
    theirs = _TorchBatchedMLP([6, 50, 1], torch.tensor(keeps))
    return _grid_step(ours, x, y), _grid_step(theirs, x, y)


def _mlp(widths: list[int], p: float, noisy: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        if noisy:
            layers.append(NoisyLinear(a, b, Bernoulli(1 - p, inverted=True)))
        else:
            layers += [nn.Dropout(p), nn.Linear(a, b)]
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _lenet5(p: float, noisy: bool) -> nn.Sequential:
    def conv(a: int, b: int) -> list[nn.Module]:
        if noisy:
            return [NoisyConv2d(a, b, 5, Bernoulli(1 - p, inverted=True), "filter")]
        return [nn.Conv2d(a, b, 5), nn.Dropout2d(p)]
    return nn.Sequential(*conv(1, 20), nn.MaxPool2d(2), *conv(20, 50), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


class _TorchStochasticDepth(nn.Module):
    """h + f(h) ⊙ b / (1 − p), b ~ Bernoulli(1 − p) per example: torchvision's
    ``stochastic_depth(f(h), p, "row") + h`` written out."""

    def __init__(self, block: nn.Module, p: float) -> None:
        super().__init__()
        self.block, self.p = block, p

    def forward(self, h: Tensor) -> Tensor:
        out = self.block(h)
        if not self.training:
            return h + out
        keep = torch.empty(out.shape[0], *([1] * (out.dim() - 1)), dtype=out.dtype)
        return h + out * keep.bernoulli_(1 - self.p).div_(1 - self.p)


def _torch_resnet(p: float) -> nn.Sequential:
    model = build_conv_resnet("stochastic_depth", drop=p)
    for k, module in enumerate(model):
        if hasattr(module, "block"):
            model[k] = _TorchStochasticDepth(module.block, p)
    return model


def _ptb_step(variant: str) -> Step:
    s = PTB_SIZES["zaremba-small"]
    torch.manual_seed(0)
    model = LanguageModel(variant, 10_000, s).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    tokens = torch.randint(0, 10_000, (s.bptt + 1, s.batch_size))

    def step() -> None:
        logits, _ = model(tokens[:-1])
        loss = sequence_loss(logits, tokens[1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), s.clip)
        optimizer.step()
    return step


def cases() -> dict[str, tuple[Step, Step]]:
    """Case name → (dropprior step, torch step)."""
    torch.manual_seed(0)
    x_uci, y_uci = torch.randn(32, 8), torch.randn(32, 1)
    x_flat, y_mnist = torch.randn(100, 784), torch.randint(0, 10, (100,))
    x_img = torch.randn(100, 1, 28, 28)
    x_res, y_res = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    return {
        "uci-grid": _uci_grid(),
        "mlp-fit": (_regression_step(_mlp([8, 50, 1], 0.05, True), x_uci, y_uci),
                    _regression_step(_mlp([8, 50, 1], 0.05, False), x_uci, y_uci)),
        "lenet-300-100": (_classifier_step(_mlp([784, 300, 100, 10], 0.1, True), x_flat,
                                           y_mnist),
                          _classifier_step(_mlp([784, 300, 100, 10], 0.1, False), x_flat,
                                           y_mnist)),
        "lenet-5-filter": (_classifier_step(_lenet5(0.1, True), x_img, y_mnist),
                           _classifier_step(_lenet5(0.1, False), x_img, y_mnist)),
        "conv-resnet-sd": (_classifier_step(build_conv_resnet("stochastic_depth", drop=0.1),
                                            x_res, y_res),
                           _classifier_step(_torch_resnet(0.1), x_res, y_res)),
        "ptb-tied": (_ptb_step("tied"), _ptb_step("zaremba")),
        "ptb-untied": (_ptb_step("untied"), _ptb_step("zaremba")),
        "ptb-gal": (_ptb_step("gal"), _ptb_step("zaremba")),
    }


def paired_medians(ours: Step, theirs: Step, repeats: int, block: int) -> tuple[float, float]:
    """Median seconds per step of each, from ``repeats`` alternating blocks of ``block``
    steps (after a warm-up)."""
    for step in (ours, theirs):
        for _ in range(3):
            step()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for k, step in enumerate((ours, theirs)):
            start = time.perf_counter()
            for _ in range(block):
                step()
            times[k].append((time.perf_counter() - start) / block)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="alternating blocks (default 30)")
    parser.add_argument("--block", type=int, default=5, help="steps per block (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--case", nargs="*", default=None, help="cases to run (default: all)")
    parser.add_argument("--record", type=Path, default=None, metavar="RESULTS",
                        help="also write the run's result record to RESULTS/benchmarks/ "
                        "(dropprior report builds docs/results/benchmarks.md from it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s), median of "
          f"{args.repeats} alternating blocks of {args.block} steps")
    print(f"{'case':<16}{'dropprior ms':>14}{'torch ms':>10}{'ratio':>8}")
    start, started_at = time.perf_counter(), now()
    rows = []
    for name, (ours, theirs) in cases().items():
        if args.case and name not in args.case:
            continue
        a, b = paired_medians(ours, theirs, args.repeats, args.block)
        print(f"{name:<16}{a * 1e3:>14.3f}{b * 1e3:>10.3f}{a / b:>8.2f}", flush=True)
        rows.append({"case": name, "ms": a * 1e3, "baseline_ms": b * 1e3})
    if args.record is not None:

        config = {"repeats": args.repeats, "block": args.block, "threads": args.threads,
                  "case": args.case}
        print("wrote the result record", record_benchmark(
            "training_speed", "python " + shlex.join(sys.argv), config, {"steps": rows},
            started_at, time.perf_counter() - start, args.record))


if __name__ == "__main__":
    main()
