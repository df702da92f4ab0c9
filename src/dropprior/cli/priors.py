"""``dropprior priors``: the paper's Table 1 for every registered noise law, checked by Monte Carlo
(``dropprior.experiments.table1``): exact moments, the variance prior and marginal prior
families, and a KS test of hierarchical draws against the marginal's cdf."""

from __future__ import annotations

import argparse
import math

import torch

from dropprior.cli._config import adopt
from dropprior.experiments.table1 import (
    DEFAULT_RATE,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_SIGMA0,
    table_rows,
)

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "priors",
        help="print Table 1: every noise law, its variance prior and marginal prior, "
        "with a Monte Carlo KS check",
        description="For every registered noise law: exact moments, the family of the variance "
        "prior p(xi^2) and of the marginal prior p(w) of w = xi*z, z ~ N(0, sigma0^2), and a KS "
        "test of hierarchical samples (xi, then z) against the marginal's cdf.",
    )
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="dropout (drop) rate p the laws are matched to: E[xi] = 1, "
                        f"Var[xi] = p/(1-p) (default: {DEFAULT_RATE})")
    parser.add_argument("--sigma0", type=float, default=DEFAULT_SIGMA0,
                        help=f"prior std of the EP weights z (default: {DEFAULT_SIGMA0})")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help=f"hierarchical samples per law for the KS test "
                        f"(default: {DEFAULT_SAMPLES})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the samples (default: {DEFAULT_SEED})")
    adopt(parser)  # --config FILE for the options above
    parser.set_defaults(func=run)


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4g}"


def run(args: argparse.Namespace) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensor operations: one thread is fastest
    try:
        rows = table_rows(args.rate, args.sigma0, args.samples, args.seed)
    finally:
        torch.set_num_threads(threads)
    header = ["law", "parameters", "E[xi]", "Var[xi]", "E[xi^2]", "E[xi^-2]", "Var[xi^-2]",
              "variance prior", "marginal prior", "form", "KS D", "KS p"]
    lines = [header]
    for row in rows:
        lines.append([row.name, repr(row.law), *(_fmt(v) for v in row.moments.values()),
                      row.variance_prior, row.marginal,
                      "closed" if row.closed_form else "quadrature",
                      f"{row.ks_statistic:.4f}", f"{row.ks_pvalue:.3f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"Table 1: w = xi*z, z ~ N(0, {args.sigma0:g}^2); KS test of {args.samples} "
          f"hierarchical samples (seed {args.seed}) against the marginal's cdf")
    for i, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0
