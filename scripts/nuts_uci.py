"""The UCI MCMC benchmark (docs/results/mcmc_uci.md), as resumable jobs of the experiment runner.

Boston, Yacht and Energy, every standard split, one hidden layer of 50 units, NUTS in EP under
two priors (Gaussian noise -> variance-gamma, inverse-Nakagami noise -> Student-t, both matched
to dropout rate p = 0.05), beside MC-dropout MAP (p = 0.05, 400 epochs), and minibatch SGLD under
the Gaussian-noise prior on Yacht. Every hyperparameter is fixed here, before any test split is
read. One job per (data set, law, methods) and group of ``--splits-per-job`` splits (split k is
seeded k whatever its group), ``--workers`` at a time, Yacht's first; each finished job is one
record in OUT/jobs, a rerun skips them, and OUT/run.json records the command. Then
``dropprior report`` builds the page from the records.

usage: python scripts/nuts_uci.py DATA_DIR [--out results/mcmc-uci] [--workers 2]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

from dropprior.experiments.mcmc_uci import McmcSettings, run_mcmc_job
from dropprior.experiments.rundir import RunDirectory
from dropprior.experiments.runner import Job, run_jobs
from dropprior.experiments.store import ResultStore

SETTINGS = replace(McmcSettings(), p=0.05, sigma0=1.0, epochs=400, warmup=150, num_samples=100,
                   chains=2, max_tree_depth=6)
RUNS = [(dataset, law, methods) for dataset in ("yacht", "bostonHousing", "energy")
        for law, methods in (("gaussian", ["mc-dropout", "nuts-ep"]),
                             ("inverse_nakagami", ["nuts-ep"]))]
RUNS.append(("yacht", "gaussian", ["sgld-ep"]))
N_SPLITS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="data root holding uci/")
    parser.add_argument("--out", type=Path, default=Path("results/mcmc-uci"),
                        help="run folder: run.json and the job store OUT/jobs "
                        "(default: results/mcmc-uci)")
    parser.add_argument("--workers", type=int, default=2, help="parallel jobs (default: 2)")
    parser.add_argument("--splits-per-job", type=int, default=5,
                        help="splits per job (default: 5)")
    args = parser.parse_args()
    if args.workers < 1 or not 1 <= args.splits_per_job <= N_SPLITS:
        parser.error(f"--workers must be >= 1 and --splits-per-job in [1, {N_SPLITS}], got "
                     f"{args.workers} and {args.splits_per_job}")
    root = args.data_dir / "uci" if (args.data_dir / "uci").is_dir() else args.data_dir
    groups = [list(range(start, min(start + args.splits_per_job, N_SPLITS)))
              for start in range(0, N_SPLITS, args.splits_per_job)]
    jobs = [Job(key=f"{dataset}/{law}/{'+'.join(methods)}/splits={group[0]}-{group[-1]}",
                params={"data_dir": str(root), "dataset": dataset, "law": law,
                        "methods": methods, "splits": group, "seed": 0, **asdict(SETTINGS)})
            for dataset, law, methods in RUNS for group in groups]
    rundir = RunDirectory(args.out, "nuts_uci", {"data_dir": str(args.data_dir),
                                                 "splits_per_job": args.splits_per_job,
                                                 "workers": args.workers, **asdict(SETTINGS)},
                          seed=0)
    store = ResultStore(args.out / "jobs", required=("params", "result"))
    run_jobs(run_mcmc_job, jobs, store, workers=args.workers, desc="nuts-uci")
    rundir.finish(jobs=len(jobs))
    print(f"{len(jobs)} jobs recorded in {store.root}; `dropprior report` builds the page")


if __name__ == "__main__":
    main()
