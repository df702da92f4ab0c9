"""MNIST MLP with unit-structured (ARD) noise of several laws (docs/mnist.md): test error per law
and the pruning curve, by ``dropprior.experiments.mnist_laws``. One result record per law in
RESULTS/mnist_laws/ (a rerun skips what is recorded); prints the table, and ``dropprior report``
builds docs/results/mnist_laws.md from the records.

Usage::

    python scripts/mnist_laws.py --data-dir ../shared/data --epochs 3

Reads the data directory from ``--data-dir`` or ``$DROPPRIOR_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from dropprior.data.mnist import MNIST_MEAN, MNIST_STD
from dropprior.experiments.mnist_laws import (
    LAWS,
    MnistLawsSettings,
    errors_table,
    run_mnist_laws,
)
from dropprior.experiments.records import run_recorded

_D = MnistLawsSettings("bernoulli")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="data root holding mnist/ (default: $DROPPRIOR_DATA_DIR)")
    parser.add_argument("--width", type=int, default=_D.width,
                        help=f"hidden width (default: {_D.width})")
    parser.add_argument("--epochs", type=int, default=_D.epochs,
                        help=f"max epochs (default: {_D.epochs})")
    parser.add_argument("--batch-size", type=int, default=_D.batch_size,
                        help=f"minibatch (default: {_D.batch_size})")
    parser.add_argument("--samples", type=int, default=_D.samples,
                        help=f"noise draws S per step (default: {_D.samples})")
    parser.add_argument("--lr", type=float, default=_D.lr,
                        help=f"Adam learning rate (default: {_D.lr:g})")
    parser.add_argument("--sigma0", type=float, default=_D.sigma0,
                        help=f"prior std of the EP weights (default: {_D.sigma0:g})")
    parser.add_argument("--grad-clip", type=float, default=_D.grad_clip,
                        help=f"gradient-norm clip (default: {_D.grad_clip:g})")
    parser.add_argument("--test-samples", type=int, default=_D.test_samples,
                        help=f"MC draws at test time (default: {_D.test_samples})")
    parser.add_argument("--val-size", type=int, default=_D.val_size,
                        help=f"validation images carved from train (default: {_D.val_size})")
    parser.add_argument("--laws", nargs="*", default=list(LAWS), choices=LAWS, metavar="LAW",
                        help=f"laws to run, some of {list(LAWS)} (default: all)")
    parser.add_argument("--keep", type=float, nargs="+", default=list(_D.keep),
                        help="fractions of hidden units kept (default: 1 .5 .25 .1 .05)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--seed", type=int, default=_D.seed, help="seed (default: 0)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of the result records (default: results)")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    try:
        settings = [MnistLawsSettings(
            law, width=args.width, epochs=args.epochs, batch_size=args.batch_size,
            samples=args.samples, lr=args.lr, sigma0=args.sigma0, grad_clip=args.grad_clip,
            test_samples=args.test_samples, val_size=args.val_size, keep=tuple(args.keep),
            seed=args.seed) for law in dict.fromkeys(args.laws)]
        from dropprior.data import load_mnist

        x, y = load_mnist(args.data_dir, "train")
        x_test, y_test = load_mnist(args.data_dir, "test")
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    train, test = ((x - MNIST_MEAN) / MNIST_STD, y), ((x_test - MNIST_MEAN) / MNIST_STD, y_test)
    command = "python " + shlex.join(sys.argv)
    records = []
    for s in settings:
        records.append(run_recorded("mnist_laws", s, command,
                                    lambda s=s: run_mnist_laws(s, train, test),
                                    args.results)[0])
        print(errors_table(records[-1:]).splitlines()[-1], flush=True)
    print(errors_table(records))


if __name__ == "__main__":
    main()
