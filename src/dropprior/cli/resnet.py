"""``dropprior resnet``: ADD and ARD+ADD residual priors vs plain and stochastic depth, MNIST."""

from __future__ import annotations

import argparse
from typing import Any

from dropprior.cli._mnist_common import add_mnist_options, run_mnist_command
from dropprior.experiments.mnist import RESNET_VARIANTS

EXAMPLE = """example:
  dropprior resnet --data-dir ../shared/data                 # small preset, a few minutes
  dropprior resnet --data-dir ../shared/data --size published --workers 2"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "resnet", help="MNIST dense ResNet: ADD, ARD+ADD, plain, stochastic depth",
        description="Train a dense residual network on MNIST with automatic depth "
        "determination (ADD: one noise scale per block), ARD+ADD, no noise, and stochastic "
        "depth; report test error and the residual blocks the prior switched off. Writes "
        "resnet.md, resnet.csv and run.json into --out.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_mnist_options(parser, RESNET_VARIANTS, "runs/resnet")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.experiments.tables import markdown_table, write_csv

    records, settings, rundir = run_mnist_command(args, "resnet")
    header = ["variant", "law", "test error %", "blocks switched off", "block weight norms",
              "time (s)"]
    rows = []
    for record in records:
        r, variant = record["result"], record["params"]["variant"]
        law = settings["law"] if variant in ("add", "ard+add") else (
            "bernoulli" if variant == "stochastic_depth" else "—")
        rows.append([variant, law, f"{100 * r['error']:.2f}",
                     f"{r['blocks_off']}/{len(r['block_norms'])}",
                     " ".join(f"{n:.2f}" for n in r["block_norms"]), f"{r['seconds']:.0f}"])
    table = markdown_table(header, rows)
    rundir.path("resnet.md").write_text(table)
    write_csv(rundir.path("resnet.csv"), header, rows)
    seconds = rundir.finish()
    print(table)
    print(f"wrote resnet.md, resnet.csv and run.json to {rundir.root} in {seconds:.0f} s")
    return 0
