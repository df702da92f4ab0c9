"""``dropprior demo``: every law of Table 1 on scikit-learn's diabetes and digits (no download)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dropprior.cli._config import Options, command_line, resolve
from dropprior.experiments.demo import DemoSettings
from dropprior.experiments.laws import DEMO_LAWS

_D = DemoSettings()

EXAMPLE = """example:
  dropprior demo                       # about half a minute (the first run also compiles kernels)
  dropprior demo --law bernoulli rayleigh --epochs-classification 80 --out runs/demo2
  dropprior demo --results results     # also record it for docs/results/demo.md"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="train one network under every noise law on diabetes and digits",
        description="Train the same MLP (unit-structured noise on every layer's inputs, i.e. "
        "dropout/ARD) under every noise law of the paper's Table 1 on scikit-learn's diabetes "
        "(regression) and digits (classification) data - no download. Prints a results table "
        "(test RMSE / log-likelihood, test error / NLL / ECE, time per law) and writes it with "
        "a calibration plot and a relevance plot (per input feature / pixel) into --out.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    opts = Options(parser)
    opts.add("--law", default=list(_D.laws), many=True, choices=[*DEMO_LAWS, "all"],
             help="noise laws to compare ('all' = every law of Table 1 and half-Cauchy "
             "truncated at 3)")
    opts.add("--dropout", default=_D.dropout, kind=float,
             help="dropout rate p every law is matched to (see dropprior.experiments.laws)")
    opts.add("--hidden", default=_D.hidden, kind=int, help="hidden units")
    opts.add("--epochs-regression", default=_D.epochs_regression, kind=int,
             help="training epochs on diabetes")
    opts.add("--epochs-classification", default=_D.epochs_classification, kind=int,
             help="training epochs on digits")
    opts.add("--batch-size", default=_D.batch_size, kind=int, help="minibatch size")
    opts.add("--lr", default=_D.lr, kind=float, help="Adam learning rate")
    opts.add("--sigma0", default=_D.sigma0, kind=float,
             help="std of the Gaussian prior on the EP weights (weight decay)")
    opts.add("--samples", default=_D.samples, kind=int, help="MC noise draws at test time")
    opts.add("--seed", default=_D.seed, kind=int, help="seed of the split, weights and noise")
    opts.add("--out", default=Path("runs/demo"), kind=Path, metavar="DIR",
             help="run directory for demo.md, demo.csv, calibration.png, relevance.png, run.json")
    opts.add("--progress", default=True, switch=True, help="show a progress bar")
    parser.add_argument("--results", type=Path, default=None, metavar="DIR",
                        help="also write the run's result record to DIR/demo/ (replacing the "
                        "record of the same settings); `dropprior report` builds "
                        "docs/results/demo.md from results/demo/ (default: no record)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from dropprior.experiments.demo import record_demo, run_demo, write_demo_outputs
    from dropprior.experiments.records import git_commit
    from dropprior.experiments.rundir import RunDirectory

    cfg = resolve(args)
    laws = list(DEMO_LAWS) if "all" in cfg["law"] else list(dict.fromkeys(cfg["law"]))
    settings = DemoSettings(laws=laws, dropout=cfg["dropout"], hidden=cfg["hidden"],
                            epochs_regression=cfg["epochs_regression"],
                            epochs_classification=cfg["epochs_classification"],
                            batch_size=cfg["batch_size"], lr=cfg["lr"], sigma0=cfg["sigma0"],
                            samples=cfg["samples"], seed=cfg["seed"])
    rundir = RunDirectory(cfg["out"], "demo", cfg, cfg["seed"])
    commit = git_commit() if args.results is not None else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run_demo(settings, progress=cfg["progress"])
    finally:
        torch.set_num_threads(threads)
    table = write_demo_outputs(results, rundir.root)
    seconds = rundir.finish()
    print(table)
    print(f"wrote demo.md, demo.csv, calibration.png, relevance.png and run.json to "
          f"{rundir.root} in {seconds:.0f} s")
    if args.results is not None:
        print("wrote the result record",
              record_demo(settings, results, seconds, command_line(), commit, args.results))
    return 0
