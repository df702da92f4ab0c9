"""``dropprior mcmc``: MAP training vs NUTS under the same prior on a UCI regression dataset.

For each train/test split (targets and inputs standardised on the training part), each method
(``mc-map``, ``marginal-map`` and ``mc-dropout`` MAP fits; ``nuts-ep`` / ``nuts-hp`` NUTS in the
EP and HP forms; ``sgld-ep`` minibatch SGLD, the sampler for networks too large for full-batch
NUTS; see ``dropprior.experiments.mcmc_uci``) prints and writes (``--out``, JSON) test RMSE and
test log-likelihood per method and split in original units, and, for NUTS, the sampling
efficiency (min bulk ESS per gradient evaluation, divergences, max R-hat over the latent sites)
and the R-hat and bulk ESS of the training log-likelihood and the noise precision, which the
hidden units' permutation symmetry leaves identifiable. All hyperparameters are the options'
values, fixed before any test split is read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from dropprior.cli._common import CLIError, add_data_dir_option, resolve_data_dir
from dropprior.cli._config import adopt
from dropprior.experiments.mcmc_uci import METHODS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mcmc", help="compare MAP training with NUTS under the same prior on a UCI dataset",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_dir_option(p)
    p.add_argument("--dataset", default="bostonHousing",
                   help="UCI folder name under DATA_DIR/uci (default: bostonHousing)")
    p.add_argument("--splits", type=int, default=None,
                   help="use only the first N splits (default: all of the dataset's splits)")
    p.add_argument("--hidden", type=int, default=50, help="hidden units (default: 50)")
    p.add_argument("--law", default="gaussian",
                   help="continuous noise law for the prior, matched to dropout rate --p via "
                        "match_dropout (default: gaussian)")
    p.add_argument("--p", type=float, default=0.05,
                   help="dropout (drop) probability to match (default: 0.05)")
    p.add_argument("--sigma0", type=float, default=1.0,
                   help="σ0 of the Gaussian prior on EP weights z (default: 1.0)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (default: all)")
    p.add_argument("--epochs", type=int, default=400, help="MAP training epochs (default: 400)")
    p.add_argument("--samples", type=int, default=10,
                   help="noise draws per example for the MAP objectives (default: 10)")
    p.add_argument("--warmup", type=int, default=200, help="NUTS warm-up steps (default: 200)")
    p.add_argument("--num-samples", type=int, default=200,
                   help="NUTS draws kept per chain (default: 200)")
    p.add_argument("--chains", type=int, default=2, help="NUTS chains (default: 2)")
    p.add_argument("--max-tree-depth", type=int, default=7,
                   help="NUTS maximum tree depth (default: 7)")
    p.add_argument("--sgld-step-size", type=float, default=3e-5,
                   help="SGLD step size ε (default: 3e-5, the best of {3e-4, 1e-4, 3e-5, 1e-5} "
                        "by validation log-likelihood on an inner 80/20 split of Yacht split "
                        "0's training part)")
    p.add_argument("--sgld-warmup", type=int, default=20000,
                   help="SGLD steps discarded first (default: 20000)")
    p.add_argument("--sgld-samples", type=int, default=200,
                   help="SGLD draws kept (default: 200)")
    p.add_argument("--sgld-thin", type=int, default=50,
                   help="keep every N-th SGLD step after warm-up (default: 50)")
    p.add_argument("--sgld-batch", type=int, default=32,
                   help="SGLD minibatch size (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="write results as JSON to this file (default: print only)")
    p.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="also write the run as a run directory DIR (run.json, config.toml and "
                   "its record in DIR/jobs); `dropprior report` puts the run directories under "
                   "results/mcmc-methods/ on docs/results/mcmc_uci.md (default: none)")
    adopt(p)  # --config FILE for the options above
    p.set_defaults(func=run, out_is_file=True)


def run(args: argparse.Namespace) -> int:
    import time

    from dropprior.data import load_uci
    from dropprior.experiments.mcmc_uci import (
        McmcSettings,
        method_rows,
        record_mcmc_run,
        summarise_methods,
    )
    from dropprior.experiments.records import git_commit
    from dropprior.experiments.rundir import now
    from dropprior.noise import law_by_name, match_dropout

    torch.set_num_threads(1)
    data_dir = resolve_data_dir(args.data_dir)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise CLIError(f"unknown method(s) {bad}; expected a subset of {list(METHODS)}")
    law_by_name(args.law)  # clear error for an unknown law name
    settings = McmcSettings(**{f.name: getattr(args, f.name)
                               for f in dataclasses.fields(McmcSettings)})
    if args.splits is not None and args.splits < 1:
        raise CLIError(f"--splits must be >= 1, got {args.splits}")
    ds = load_uci(data_dir, args.dataset)
    n_splits = len(ds.splits) if args.splits is None else min(args.splits, len(ds.splits))
    law = match_dropout(args.law, args.p, dtype=torch.float64)
    rows = []
    start = time.perf_counter()
    started = (git_commit(), now())
    for scores in method_rows(ds, law, methods, settings, args.seed, range(n_splits)):
        rows.append(scores)
        k, method = scores["split"], scores["method"]
        print(f"split {k:2d} {method:13s} RMSE {scores['rmse']:.3f} "
              f"LL {scores['test_ll']:.3f}"
              + (f"  ESS/grad {scores['min_ess_per_gradient']:.2e} "
                 f"div {scores['divergences']} R-hat {scores['max_rhat']:.3f} "
                 f"(train LL {scores['rhat_train_ll']:.3f})"
                 if method.startswith("nuts") else "")
              + f"  ({scores['seconds']:.0f}s)", flush=True)
    summary = summarise_methods(rows, methods)
    print(f"\n{args.dataset}, {n_splits} split(s), law {args.law} matched to p={args.p}")
    for m, s in summary.items():
        print(f"{m:13s} RMSE {s['rmse']:.3f} ± {s['rmse_se']:.3f}   "
              f"LL {s['test_ll']:.3f} ± {s['test_ll_se']:.3f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()
                                                 if k != "func"},
                                        "rows": rows, "summary": summary}, indent=2))
    if args.results is not None:
        params = {"dataset": args.dataset, "law": args.law, "methods": methods,
                  "splits": list(range(n_splits)), "seed": args.seed,
                  **dataclasses.asdict(settings)}
        print("wrote the run record", record_mcmc_run(
            args.results, params, rows, time.perf_counter() - start, started))
    return 0
