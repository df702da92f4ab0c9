"""``dropprior jensen``: EP vs HP Jensen gaps of a trained network as the shrinkage grows."""

from __future__ import annotations

import argparse
from pathlib import Path

from dropprior.analysis import figure1_paths
from dropprior.cli._common import CLIError, add_data_dir_option, resolve_data_dir
from dropprior.cli._config import adopt, command_line

DEFAULT_LEVELS = "0.9,0.3,0.05"


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = sorted({p.key for p in figure1_paths()} | {p.law_name for p in figure1_paths()})
    parser = subparsers.add_parser(
        "jensen",
        help="train a small network per noise level and report the EP and HP Jensen gaps",
        description="For each law and each target E[xi^2], train a one-hidden-layer ARD network "
        "(noise on the input units of both layers) on one UCI split by the MC objective, then "
        "estimate the EP gap (Prop. 4.1) on the test split and the HP gap (Prop. 4.2) of the "
        "prior on the trained weights. Writes jensen.csv, jensen.md and jensen.png.",
    )
    add_data_dir_option(parser)
    parser.add_argument("--dataset", required=True,
                        help="UCI data set folder under DATA_DIR/uci (e.g. energy); required")
    parser.add_argument("--law", nargs="+", required=True, metavar="NAME",
                        help=f"noise laws or Figure 1 paths, one or more of {keys}; a law name "
                        "takes its first path (see `dropprior figure1`); required")
    parser.add_argument("--levels", default=DEFAULT_LEVELS,
                        help=f"comma-separated target E[xi^2] values (default: {DEFAULT_LEVELS})")
    parser.add_argument("--split", type=int, default=0, help="UCI split index (default: 0)")
    parser.add_argument("--hidden", type=int, default=50, help="hidden units (default: 50)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs (default: 40)")
    parser.add_argument("--sigma0", type=float, default=1.0,
                        help="sigma0 of the Gaussian prior on the EP weights (default: 1.0)")
    parser.add_argument("--ep-samples", type=int, default=1000,
                        help="noise draws for the EP gap (default: 1000)")
    parser.add_argument("--hp-samples", type=int, default=10000,
                        help="noise draws for the HP gap (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("jensen"),
                        help="output directory (default: ./jensen)")
    parser.add_argument("--results", type=Path, default=None, metavar="DIR",
                        help="also write the sweep's result record to DIR/jensen/ (replacing "
                        "the record of the same settings); `dropprior report` builds "
                        "docs/results/jensen.md from results/jensen/ (default: no record)")
    adopt(parser)  # --config FILE for the options above
    parser.set_defaults(func=run)


def _levels(text: str) -> list[float]:
    try:
        levels = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--levels must be comma-separated numbers, got {text!r}") from None
    if not levels or any(not 0 < v < float("inf") for v in levels):
        raise CLIError(f"--levels must be positive finite E[xi^2] values, got {text!r}")
    return levels


def run(args: argparse.Namespace) -> int:
    import time

    from dropprior.experiments.jensen import (
        JensenSettings,
        markdown_table,
        record_jensen,
        run_jensen,
        write_jensen,
    )
    from dropprior.experiments.records import git_commit

    levels = _levels(args.levels)
    # JensenSettings checks every value (by its field name) before any data is read
    settings = JensenSettings(dataset=args.dataset, laws=tuple(args.law), levels=tuple(levels),
                              split=args.split, hidden=args.hidden, epochs=args.epochs,
                              sigma0=args.sigma0, ep_samples=args.ep_samples,
                              hp_samples=args.hp_samples, seed=args.seed)
    data_dir = resolve_data_dir(args.data_dir)
    commit = git_commit() if args.results is not None else None
    start = time.perf_counter()
    rows = run_jensen(data_dir, settings)
    seconds = time.perf_counter() - start
    files = write_jensen(rows, args.out)
    print(markdown_table(rows))
    for kind, path in files.items():
        print(f"wrote {kind.upper()}: {path}")
    if args.results is not None:
        print("wrote the result record",
              record_jensen(settings, rows, seconds, command_line(), commit, args.results))
    return 0
