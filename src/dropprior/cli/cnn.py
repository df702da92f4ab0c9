"""``dropprior cnn``: channel / filter / channel+filter noise vs plain and Dropout2d, MNIST."""

from __future__ import annotations

import argparse
from typing import Any

from dropprior.cli._mnist_common import add_mnist_options, run_mnist_command
from dropprior.experiments.mnist import CNN_VARIANTS

EXAMPLE = """example:
  dropprior cnn --data-dir ../shared/data                    # small preset, a few minutes
  dropprior cnn --data-dir ../shared/data --variant filter channel+filter --law rayleigh"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cnn", help="MNIST CNN: channel / filter / channel+filter noise, plain, Dropout2d",
        description="Train a two-convolution network on MNIST with dropprior's channel, filter "
        "and channel+filter noise structures, no noise, and torch's Dropout2d; report test "
        "error, the filters pruned (weight norm below --threshold x the layer's largest) and "
        "the test error after pruning. Writes cnn.md, cnn.csv and run.json into --out.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_mnist_options(parser, CNN_VARIANTS, "runs/cnn")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.experiments.tables import markdown_table, write_csv

    records, settings, rundir = run_mnist_command(args, "cnn")
    header = ["variant", "law", "test error %", "filters pruned (conv1, conv2)",
              "test error % after pruning", "time (s)"]
    rows = []
    for record in records:
        r, variant = record["result"], record["params"]["variant"]
        law = "—" if variant == "plain" else ("bernoulli" if variant == "dropout2d"
                                              else settings["law"])
        pruned = ", ".join(f"{p}/{t}" for p, t in
                           zip(r["filters_pruned"], r["filters"], strict=False))
        rows.append([variant, law, f"{100 * r['error']:.2f}", pruned,
                     f"{100 * r['pruned_error']:.2f}", f"{r['seconds']:.0f}"])
    table = markdown_table(header, rows)
    rundir.path("cnn.md").write_text(table)
    write_csv(rundir.path("cnn.csv"), header, rows)
    seconds = rundir.finish()
    print(table)
    print(f"wrote cnn.md, cnn.csv and run.json to {rundir.root} in {seconds:.0f} s")
    return 0
