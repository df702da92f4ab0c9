"""``dropprior resnet`` and ``dropprior cnn``: the MNIST architecture commands, one table.

Each command trains its variants through :func:`dropprior.cli._mnist_common.run_mnist_command`
and differs only in the table it prints: :data:`COMMANDS` holds, per command, its help texts, its
variants and how a record becomes a row.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dropprior.cli._mnist_common import add_mnist_options, run_mnist_command
from dropprior.experiments.mnist import CNN_VARIANTS, RESNET_VARIANTS


def _resnet_row(variant: str, r: dict[str, Any], law: str) -> list[str]:
    law = law if variant in ("add", "ard+add") else (
        "bernoulli" if variant == "stochastic_depth" else "—")
    return [variant, law, f"{100 * r['error']:.2f}",
            f"{r['blocks_off']}/{len(r['block_norms'])}",
            " ".join(f"{n:.2f}" for n in r["block_norms"]), f"{r['seconds']:.0f}"]


def _cnn_row(variant: str, r: dict[str, Any], law: str) -> list[str]:
    law = "—" if variant == "plain" else ("bernoulli" if variant == "dropout2d" else law)
    pruned = ", ".join(f"{p}/{t}" for p, t in zip(r["filters_pruned"], r["filters"],
                                                  strict=False))
    return [variant, law, f"{100 * r['error']:.2f}", pruned, f"{100 * r['pruned_error']:.2f}",
            f"{r['seconds']:.0f}"]


@dataclass(frozen=True)
class _Command:
    help: str
    description: str
    example: str
    variants: tuple[str, ...]
    header: list[str]
    row: Callable[[str, dict[str, Any], str], list[str]]


COMMANDS = {
    "resnet": _Command(
        help="MNIST dense ResNet: ADD, ARD+ADD, plain, stochastic depth",
        description="Train a dense residual network on MNIST with automatic depth "
        "determination (ADD: one noise scale per block), ARD+ADD, no noise, and stochastic "
        "depth; report test error and the residual blocks the prior switched off. Writes "
        "resnet.md, resnet.csv and run.json into --out.",
        example="dropprior resnet --data-dir ../shared/data                 # small preset, "
        "a few minutes\n  dropprior resnet --data-dir ../shared/data --size published "
        "--workers 2",
        variants=RESNET_VARIANTS,
        header=["variant", "law", "test error %", "blocks switched off", "block weight norms",
                "time (s)"],
        row=_resnet_row),
    "cnn": _Command(
        help="MNIST CNN: channel / filter / channel+filter noise, plain, Dropout2d",
        description="Train a two-convolution network on MNIST with dropprior's channel, filter "
        "and channel+filter noise structures, no noise, and torch's Dropout2d; report test "
        "error, the filters pruned (weight norm below --threshold x the layer's largest) and "
        "the test error after pruning. Writes cnn.md, cnn.csv and run.json into --out.",
        example="dropprior cnn --data-dir ../shared/data                    # small preset, a "
        "few minutes\n  dropprior cnn --data-dir ../shared/data --variant filter "
        "channel+filter --law rayleigh",
        variants=CNN_VARIANTS,
        header=["variant", "law", "test error %", "filters pruned (conv1, conv2)",
                "test error % after pruning", "time (s)"],
        row=_cnn_row),
}
"""Command name → what distinguishes it."""


def register(subparsers: Any) -> None:
    for name, spec in COMMANDS.items():
        parser = subparsers.add_parser(
            name, help=spec.help, description=spec.description,
            epilog=f"example:\n  {spec.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter)
        add_mnist_options(parser, spec.variants, f"runs/{name}")
        parser.set_defaults(func=run, command_name=name)


def run(args: argparse.Namespace) -> int:
    from dropprior.experiments.tables import markdown_table, write_csv

    name = args.command_name
    spec = COMMANDS[name]
    records, settings, rundir = run_mnist_command(args, name)
    rows = [spec.row(record["params"]["variant"], record["result"], settings["law"])
            for record in records]
    table = markdown_table(spec.header, rows)
    rundir.path(f"{name}.md").write_text(table)
    write_csv(rundir.path(f"{name}.csv"), spec.header, rows)
    seconds = rundir.finish()
    print(table)
    print(f"wrote {name}.md, {name}.csv and run.json to {rundir.root} in {seconds:.0f} s")
    return 0
