"""EP vs HP sampling efficiency under strong shrinkage (docs/inference.md), by
``dropprior.experiments.mcmc_stability``: NUTS on a sparse linear regression under three noise
laws, in both forms, for each seed. One result record per (law, form, seed) in
RESULTS/mcmc_stability/ (a rerun skips what is recorded); prints the table, and
``dropprior report`` builds docs/results/mcmc_stability.md from the records.

    python scripts/mcmc_stability.py --seeds 0 1 2 3 4 5 6 7 8 9
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from dropprior.experiments.mcmc_stability import (
    FORMS,
    LAWS,
    StabilitySettings,
    run_stability,
    stability_table,
)
from dropprior.experiments.records import run_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds: data from seed k, chains from k + 1 (default: 0)")
    parser.add_argument("--laws", nargs="+", default=list(LAWS), choices=list(LAWS),
                        metavar="LAW", help=f"some of {list(LAWS)} (default: all)")
    parser.add_argument("--warmup", type=int, default=150, help="warm-up steps (default 150)")
    parser.add_argument("--samples", type=int, default=150,
                        help="draws per chain (default 150)")
    parser.add_argument("--chains", type=int, default=2, help="chains (default 2)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of the result records (default: results)")
    args = parser.parse_args()
    try:
        settings = [StabilitySettings(law, form, seed=seed, warmup=args.warmup,
                                      samples=args.samples, chains=args.chains)
                    for seed in args.seeds for law in args.laws for form in FORMS]
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(1)
    command = "python " + shlex.join(sys.argv)
    records = []
    for s in settings:
        record = run_recorded("mcmc_stability", s, command, lambda s=s: run_stability(s),
                              args.results)[0]
        records.append(record)
        m = record["metrics"]
        print(f"{s.law:17s} {s.form} seed {s.seed}: ESS/grad {m['min_ess_per_gradient']:.2e} "
              f"div {m['divergences']} R-hat {m['max_rhat']:.3f} ({m['seconds']:.0f} s)",
              flush=True)
    print(stability_table(records))


if __name__ == "__main__":
    main()
