"""Heavy-tailed noise that trains (docs/heavy-tails.md): the diabetes and MNIST experiments of
``dropprior.experiments.heavy_tails``, one result record per configuration (and seed) in
RESULTS/heavy_tails_diabetes/ or RESULTS/heavy_tails_mnist/; a rerun skips what is recorded.
Prints the table; ``dropprior report`` builds docs/results/heavy_tails.md from the records.

Usage::

    python scripts/heavy_tails.py diabetes --seeds 0 1 2
    python scripts/heavy_tails.py mnist --data-dir ../shared/data --train-size 20000 --epochs 2
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from dropprior.experiments.heavy_tails import (
    DIABETES,
    MNIST,
    DiabetesTailSettings,
    MnistTailSettings,
    diabetes_table,
    mnist_table,
    run_diabetes,
    run_mnist,
)
from dropprior.experiments.records import run_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=["diabetes", "mnist"], help="which experiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="diabetes: seeds (features, split, init) (default: 0 1 2)")
    parser.add_argument("--data-dir", default=None,
                        help="mnist: data root holding mnist/ (default: $DROPPRIOR_DATA_DIR)")
    parser.add_argument("--train-size", type=int, default=20000,
                        help="mnist: training images used (default: 20000)")
    parser.add_argument("--epochs", type=int, default=2, help="mnist: epochs (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="mnist: seed (default: 0)")
    parser.add_argument("--only", type=int, nargs="*", default=None,
                        help="run only these configuration rows (0-based; default: all)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of the result records (default: results)")
    args = parser.parse_args()
    configs = DIABETES if args.experiment == "diabetes" else MNIST
    if args.only is not None and not set(args.only) <= set(range(len(configs))):
        parser.error(f"--only takes row numbers 0..{len(configs) - 1}, got {args.only}")
    chosen = [c for k, c in enumerate(configs) if args.only is None or k in args.only]
    command = "python " + shlex.join(sys.argv)
    torch.set_num_threads(1)
    records = []
    try:
        if args.experiment == "diabetes":
            for config in chosen:
                for seed in args.seeds:
                    s = DiabetesTailSettings(config.label, seed=seed)
                    records.append(run_recorded("heavy_tails_diabetes", s, command,
                                                lambda s=s: run_diabetes(s), args.results)[0])
            print(diabetes_table(records))
        else:
            from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist

            x, y = load_mnist(args.data_dir, "train")
            data = ((x - MNIST_MEAN) / MNIST_STD, y)
            for config in chosen:
                s = MnistTailSettings(config.label, train_size=args.train_size,
                                      epochs=args.epochs, seed=args.seed)
                records.append(run_recorded("heavy_tails_mnist", s, command,
                                            lambda s=s: run_mnist(s, data), args.results)[0])
                print(mnist_table(records[-1:]).splitlines()[-1], flush=True)
            print(mnist_table(records))
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
