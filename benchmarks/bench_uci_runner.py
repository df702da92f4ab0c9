"""Job time of the UCI runner's batched training and prediction against an earlier runner.

Run:  python benchmarks/bench_uci_runner.py [--baseline-rev REV] [--repeats 3] [--threads 1]
      [--structure unit|weight]

The baseline is ``src/dropprior/experiments/batched_mlp.py`` as it was at git revision
``--baseline-rev`` (loaded from ``git show``), the candidate the checked-out one. Both train the
same job, the shape of one UCI yacht job (G = 12 grid points × 5 splits = 60 networks of
6-50-1, the inner split's 221 rows, Bernoulli noise at the grid's 4 dropout rates on the
units or, with ``--structure weight``, on every weight per example (DropConnect), MC
objective), for ``--epochs`` epochs, then predict 1000 draws on the 56 validation rows. The
runs alternate baseline and candidate ``--repeats`` times; the medians and their ratio
(candidate / baseline) are printed, measured in the same run. Run it on an otherwise idle
machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

from dropprior.experiments import batched_mlp as candidate
from dropprior.noise import Bernoulli

ROOT = Path(__file__).resolve().parents[1]


def _baseline(rev: str) -> ModuleType:
    text = subprocess.run(["git", "show", f"{rev}:src/dropprior/experiments/batched_mlp.py"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_batched_mlp.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("baseline_batched_mlp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through it
    spec.loader.exec_module(module)
    return module


def _job(module: ModuleType, epochs: int, structure: str = "unit") -> tuple[float, float]:
    """(training seconds, prediction seconds) of one yacht-shaped job."""
    gen = torch.Generator().manual_seed(0)
    g_count, n, d = 60, 221, 6
    x = torch.randn(g_count, n, d, generator=gen)
    y = x.sum(dim=-1) + 0.1 * torch.randn(g_count, n, generator=gen)
    x_val = torch.randn(g_count, 56, d, generator=gen)
    law_of = {p: Bernoulli(1 - p, inverted=True) for p in (0.005, 0.01, 0.05, 0.1)}
    laws = [law_of[p] for p in law_of for _ in range(15)]
    precision = torch.rand(g_count, generator=gen) + 0.5
    decay = torch.full((g_count,), 1e-4)
    seeded = "seed" in inspect.signature(module.train_batched).parameters
    kwargs = {"seed": 0} if seeded else {"generator": torch.Generator().manual_seed(0)}
    start = time.perf_counter()
    model = module.train_batched(x, y, laws, precision, decay, hidden=(50,), epochs=epochs,
                                 batch_size=128, structure=structure, **kwargs)
    trained = time.perf_counter()
    if seeded:
        draws = module.predict_batched(model, x_val, samples=1000)
    else:
        draws = module.predict_batched(model, x_val, laws, samples=1000, structure=structure,
                                       generator=torch.Generator().manual_seed(1))
    for _ in draws:
        pass
    return trained - start, time.perf_counter() - trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="b352f98",
                        help="git revision of the baseline runner (default: the last one "
                        "with its own noisy MLP)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--structure", choices=["unit", "weight"], default="unit",
                        help="unit (dropout) or weight (exact per-example DropConnect) noise")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    baseline = _baseline(args.baseline_rev)
    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "candidate": []}
    _job(baseline, 2, args.structure)
    _job(candidate, 2, args.structure)  # warm-up: kernels compiled, pages touched
    for _ in range(args.repeats):
        times["baseline"].append(_job(baseline, args.epochs, args.structure))
        times["candidate"].append(_job(candidate, args.epochs, args.structure))
    medians = {k: (statistics.median(t for t, _ in v), statistics.median(p for _, p in v))
               for k, v in times.items()}
    print(f"threads={args.threads} epochs={args.epochs} repeats={args.repeats} "
          f"structure={args.structure} baseline={args.baseline_rev}")
    for k, (train, pred) in medians.items():
        print(f"{k:9s} train {train:.3f} s  predict {pred:.3f} s  total {train + pred:.3f} s")
    b, c = medians["baseline"], medians["candidate"]
    print(f"ratio candidate/baseline: train {c[0] / b[0]:.3f}  predict {c[1] / b[1]:.3f}  "
          f"total {(c[0] + c[1]) / (b[0] + b[1]):.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
