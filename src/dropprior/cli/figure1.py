"""``dropprior figure1``: the paper's Figure 1 (noise variances) as PNG, SVG and CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from dropprior.analysis import FIGURE1_POINTS, figure1_paths, write_figure1
from dropprior.cli._config import adopt


def register(subparsers: argparse._SubParsersAction) -> None:
    paths = ", ".join(p.key for p in figure1_paths())
    parser = subparsers.add_parser(
        "figure1",
        help="plot Var[xi] and Var[xi^-2] against E[xi^2] for every noise law (paper Fig. 1)",
        description="Write figure1.png, figure1.svg and figure1.csv: exact Var[xi] (solid) and "
        "Var[xi^-2] (dashed) against E[xi^2] along one-parameter paths of each noise law "
        f"({paths}); infinite moments are drawn in a band at the top.",
    )
    parser.add_argument("--out", type=Path, default=Path("figure1"),
                        help="output directory (default: ./figure1)")
    parser.add_argument("--points", type=int, default=FIGURE1_POINTS,
                        help=f"grid points per path (default: {FIGURE1_POINTS})")
    parser.add_argument("--xscale", choices=["log", "linear"], default="log",
                        help="x-axis scale (default: log)")
    adopt(parser)  # --config FILE for the options above
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.points < 2:
        raise ValueError(f"--points must be >= 2, got {args.points}")
    files = write_figure1(args.out, points=args.points, xscale=args.xscale)
    for kind, path in files.items():
        print(f"wrote {kind.upper()}: {path}")
    return 0
