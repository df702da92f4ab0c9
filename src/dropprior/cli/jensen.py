"""``dropprior jensen``: EP vs HP Jensen gaps of a trained network as the shrinkage grows."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dropprior.analysis import figure1_paths
from dropprior.cli._common import CLIError, add_data_dir_option, resolve_data_dir
from dropprior.cli._config import adopt

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
    adopt(parser)  # --config FILE for the options above
    parser.set_defaults(func=run)


def _levels(text: str) -> list[float]:
    try:
        levels = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--levels must be comma-separated numbers, got {text!r}") from None
    if not levels or any(not 0 < v for v in levels):
        raise CLIError(f"--levels must be positive E[xi^2] values, got {text!r}")
    return levels


def run(args: argparse.Namespace) -> int:
    from dropprior.data import load_uci
    from dropprior.experiments.jensen import jensen_sweep, markdown_table, path_for, write_jensen

    levels = _levels(args.levels)
    paths = [path_for(name) for name in args.law]
    for name, value in (("--hidden", args.hidden), ("--epochs", args.epochs),
                        ("--ep-samples", args.ep_samples), ("--hp-samples", args.hp_samples)):
        if value < (2 if "samples" in name else 1):
            raise CLIError(f"{name} must be a positive integer (>= 2 for samples), got {value}")
    data = load_uci(resolve_data_dir(args.data_dir), args.dataset)
    x_tr, y_tr, x_te, y_te = data.split(args.split)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    sd[sd == 0] = 1.0
    y_mu, y_sd = y_tr.mean(), y_tr.std()

    def tensor(a, m, s):  # noqa: ANN001, ANN202
        return torch.as_tensor((a - m) / s, dtype=torch.float32)

    torch.set_num_threads(1)
    rows = jensen_sweep(tensor(x_tr, mu, sd), tensor(y_tr, y_mu, y_sd).reshape(-1, 1),
                        tensor(x_te, mu, sd), tensor(y_te, y_mu, y_sd).reshape(-1, 1),
                        paths, levels, hidden=args.hidden, epochs=args.epochs,
                        sigma0=args.sigma0, ep_samples=args.ep_samples,
                        hp_samples=args.hp_samples, seed=args.seed)
    if not rows:
        raise CLIError(f"no level in {levels} lies on the paths {[p.key for p in paths]}")
    files = write_jensen(rows, args.out)
    print(markdown_table(rows))
    for kind, path in files.items():
        print(f"wrote {kind.upper()}: {path}")
    return 0
