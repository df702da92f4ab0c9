"""``dropprior report``: rebuild the results pages under docs/ from the committed records."""

from __future__ import annotations

import argparse
from pathlib import Path

from dropprior.cli._config import adopt
from dropprior.experiments.report import write_pages


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild the results pages under docs/ from the records in results/",
        description="Regenerate every results page (docs/results/*.md) from the JSON result "
        "records under results/. Run it at the repository root.")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the repository root (default: .)")
    adopt(parser)  # --config FILE for the options above
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in write_pages(args.root):
        print(f"wrote {path}")
    return 0
