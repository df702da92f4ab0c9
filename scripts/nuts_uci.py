"""The UCI NUTS benchmark of docs/inference.md, as resumable jobs of the experiment runner.

Boston, Yacht and Energy, every standard split, one hidden layer of 50 units, NUTS in EP under
two priors (Gaussian noise -> variance-gamma, inverse-Nakagami noise -> Student-t, both matched
to dropout rate p = 0.05), beside MC-dropout MAP (p = 0.05, 400 epochs). Every hyperparameter is
fixed here, before any test split is read. Six jobs (3 datasets x 2 priors), ``--workers`` at a
time; each finished job is one record in OUT/jobs, and a rerun skips them. Then:

    python scripts/nuts_uci_table.py runs/nuts-uci/jobs/*.json

usage: python scripts/nuts_uci.py DATA_DIR [--out runs/nuts-uci] [--workers 2]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

from dropprior.experiments.mcmc_uci import McmcSettings, run_mcmc_job
from dropprior.experiments.runner import Job, run_jobs
from dropprior.experiments.store import ResultStore

SETTINGS = replace(McmcSettings(), p=0.05, sigma0=1.0, epochs=400, warmup=150, num_samples=100,
                   chains=2, max_tree_depth=6)
RUNS = [(dataset, law, methods) for dataset in ("yacht", "bostonHousing", "energy")
        for law, methods in (("gaussian", ["mc-dropout", "nuts-ep"]),
                             ("inverse_nakagami", ["nuts-ep"]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="data root holding uci/")
    parser.add_argument("--out", type=Path, default=Path("runs/nuts-uci"),
                        help="run folder; the job store is OUT/jobs (default: runs/nuts-uci)")
    parser.add_argument("--workers", type=int, default=2, help="parallel jobs (default: 2)")
    args = parser.parse_args()
    root = args.data_dir / "uci" if (args.data_dir / "uci").is_dir() else args.data_dir
    jobs = [Job(key=f"{dataset}/{law}/{'+'.join(methods)}",
                params={"data_dir": str(root), "dataset": dataset, "law": law,
                        "methods": methods, "splits": None, "seed": 0, **asdict(SETTINGS)})
            for dataset, law, methods in RUNS]
    store = ResultStore(args.out / "jobs", required=("params", "result"))
    run_jobs(run_mcmc_job, jobs, store, workers=args.workers, desc="nuts-uci")
    print(f"{len(jobs)} jobs recorded in {store.root}")


if __name__ == "__main__":
    main()
