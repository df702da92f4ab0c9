"""``dropprior uci``: the UCI regression benchmark (MC-dropout protocol) for any noise law."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dropprior.cli._common import CLIError
from dropprior.cli._config import Options, resolve
from dropprior.experiments.batched_mlp import BATCHED_STRUCTURES
from dropprior.experiments.laws import TABLE1_LAWS
from dropprior.experiments.runner import BACKENDS
from dropprior.experiments.uci import BASELINES, NO_NOISE
from dropprior.experiments.uci_scales import (
    HYPERPRIOR_CHOICES,
    LIBRARY_STRUCTURES,
    VI_INIT_STD,
    needs_library_path,
)
from dropprior.scales import INFERENCE
from dropprior.training import OBJECTIVES

EXAMPLE = """example:
  dropprior uci --data-dir ../shared/data --dataset yacht --law bernoulli rayleigh \\
      --objective mc marginal --workers 2 --out runs/uci-yacht
  (rerunning the same command skips the jobs already in runs/uci-yacht/jobs)
  dropprior uci --data-dir ../shared/data --dataset yacht --law none \\
      --objective map laplace --out runs/uci-yacht-baselines
  (the baselines: the same protocol without noise, scored as the trained network and by its
  last-layer Laplace posterior)
  dropprior uci --data-dir ../shared/data --dataset yacht --depth 8 --structure add \
      --hyperprior log_uniform --inference vi --splits 0 1 2 --out runs/uci-yacht-add
  (--depth, --hyperprior, --inference vi and the add / ard+add structures train dropprior's
  own layers with learned group scales through fit, one job per split, with fixed
  hyperparameters; the table gains the inputs, units and blocks the fit kept)"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "uci", help="UCI regression benchmark: every split, grid search on an inner 80/20 split",
        description="Run the MC-dropout UCI protocol (1 hidden layer of n_hidden.txt units, "
        "inputs and targets standardised on the training split, the dropout-rate x tau grid of "
        "the data set's files chosen on the last 20% of each training split, then a refit on "
        "the whole training split and one evaluation on the test split) for each noise law, "
        "structure and objective. Writes uci.md, uci.csv, uci.png and run.json into --out.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    opts = Options(parser)
    opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
             help="data root holding uci/ (or the uci/ folder itself)",
             shown="$DROPPRIOR_DATA_DIR")
    opts.add("--dataset", default=["all"], many=True, metavar="NAME",
             help="data set folder names under uci/, or 'all'")
    opts.add("--law", default=["bernoulli"], many=True, choices=[*TABLE1_LAWS, "all", NO_NOISE],
             help="noise laws of Table 1 ('all' = every one); see dropprior.experiments.laws for "
             f"how each is set from the dropout rate. '{NO_NOISE}': the baselines without noise "
             f"(alone, with --objective {' / '.join(BASELINES)})")
    opts.add("--structure", default=["unit"], many=True,
             choices=list(dict.fromkeys([*BATCHED_STRUCTURES, *LIBRARY_STRUCTURES])),
             help="noise structure: unit (dropout/ARD), weight (DropConnect), add (one scale per "
             "residual block) or ard+add (both; add and ard+add need --depth >= 1)")
    opts.add("--objective", default=["mc"], many=True, choices=[*OBJECTIVES, *BASELINES],
             help="training objective: mc (eq. 3), marginal (log-mean-exp bound, eq. 10) or "
             "tail_adaptive (rank-weighted draws; learned-scale path only); with --law "
             f"{NO_NOISE}: map (the trained network's Gaussian predictive) and laplace (its "
             "last-layer Laplace posterior's)")
    opts.add("--depth", default=None, kind=int, metavar="K",
             help="a ResNet MLP of K residual blocks of the data set's width (0: the standard "
             "network of one hidden layer, through dropprior's own layers)",
             shown="the batched standard network")
    opts.add("--hyperprior", default="none", choices=list(HYPERPRIOR_CHOICES),
             help="hyperprior of learned group scales (none: no scales)")
    opts.add("--inference", default="map", choices=list(INFERENCE),
             help="map (learned scales with the noise on) or vi (mean-field VI, closed-form "
             "scales; needs a hyperprior)")
    opts.add("--dropout", default=0.05, kind=float,
             help="learned-scale path: the dropout rate the law is matched to (no grid search)")
    opts.add("--validate", default=False, switch=True,
             help="learned-scale path: also fit each split's first 80%% of training rows and "
             "score the last 20%%, for the rows chosen on validation (twice the cost)")
    opts.add("--local-reparam", default=False, switch=True,
             help="learned-scale path, --inference vi: train the linear maps by the local "
             "reparametrization (one output draw per example instead of one weight draw per "
             "minibatch)")
    opts.add("--init-std", default=VI_INIT_STD, kind=float,
             help="learned-scale path, --inference vi: the posterior std every weight starts "
             "from (a group the data do not support stays at about this std)")
    opts.add("--joint-rule", default=False, switch=True,
             help="learned-scale path, --inference vi: prune by the set-wise evidence rule "
             "(kept_groups(joint=True)) instead of one group at a time")
    opts.add("--prior-weight", default=1.0, kind=_prior_weight,
             help="learned-scale path: β multiplying the prior term (1: the posterior; < 1 a "
             "tempered, KL-down-weighted fit; choose it with --validate), or 'per-weight': "
             "β = N / (the network's weights), the mean-KL objective of Nalisnick et al. 2019")
    opts.add("--sigma0", default=1.0, kind=float,
             help="learned-scale path: prior std of the weights on standardised data")
    opts.add("--splits", default=None, many=True, kind=int, metavar="K",
             help="split indices to run", shown="all splits in the folder")
    opts.add("--epochs", default=None, kind=int,
             help="training epochs", shown="n_epochs.txt x --epoch-multiplier")
    opts.add("--epoch-multiplier", default=100, kind=int,
             help="epochs = n_epochs.txt x this when --epochs is not given (100 gives the 4000 "
             "epochs of the 2018 grid-searched protocol)")
    opts.add("--batch-size", default=128, kind=int, help="minibatch size")
    opts.add("--lr", default=1e-3, kind=float, help="Adam learning rate")
    opts.add("--lengthscale", default=1e-2, kind=float,
             help="prior length-scale l of the weight decay l^2 (1-p) / (2 N tau)")
    opts.add("--hidden", default=None, kind=int, help="hidden units per layer",
             shown="n_hidden.txt")
    opts.add("--layers", default=1, kind=int, help="hidden layers")
    opts.add("--test-samples", default=10_000, kind=int,
             help="MC noise draws T for the test RMSE and log-likelihood")
    opts.add("--validation-samples", default=1_000, kind=int,
             help="MC noise draws for the validation log-likelihood of the grid search")
    opts.add("--train-samples", default=None, kind=int,
             help="noise draws per example and training step", shown="1 for mc, 5 for marginal")
    opts.add("--splits-per-job", default=5, kind=int,
             help="splits trained together in one batched network (one job)")
    opts.add("--workers", default=1, kind=int, help="parallel worker processes (local backend)")
    opts.add("--backend", default="local", choices=list(BACKENDS),
             help="job engine: local processes, or a Dask / Ray cluster (optional extras "
             "dropprior[dask] / dropprior[ray])")
    opts.add("--address", default=None, help="Dask scheduler / Ray cluster address",
             shown="start a local one")
    opts.add("--seed", default=0, kind=int,
             help="base seed (a job's seed is seed + first split, modulo 2**64)")
    opts.add("--out", default=Path("runs/uci"), kind=Path, metavar="DIR",
             help="run directory: tables, plot, run.json and the job store jobs/ (a rerun "
             "skips finished jobs)")
    opts.add("--progress", default=True, switch=True, help="show a progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.data import uci_datasets
    from dropprior.experiments.rundir import RunDirectory
    from dropprior.experiments.runner import run_jobs
    from dropprior.experiments.store import ResultStore
    from dropprior.experiments.uci import (
        plot_uci,
        run_uci_split,
        summarise_uci,
        uci_jobs,
        uci_scales_jobs,
        write_uci_tables,
    )
    from dropprior.experiments.uci_scales import run_uci_scales_split

    cfg = resolve(args)
    data_dir = _uci_root(cfg["data_dir"])
    available = uci_datasets(data_dir)
    datasets = available if "all" in cfg["dataset"] else list(dict.fromkeys(cfg["dataset"]))
    unknown = [name for name in datasets if name not in available]
    if unknown:
        raise CLIError(f"unknown data set(s) {unknown}; available in {str(data_dir)!r}: "
                       f"{available}")
    if not datasets:
        raise CLIError(f"no data sets (folders with data.txt) in {str(data_dir)!r}")
    laws = list(TABLE1_LAWS) if "all" in cfg["law"] else list(dict.fromkeys(cfg["law"]))
    for name in ("epoch_multiplier", "batch_size", "layers", "test_samples",
                 "validation_samples", "splits_per_job", "workers"):
        if cfg[name] < 1:
            raise CLIError(f"--{name.replace('_', '-')}={cfg[name]!r} must be >= 1")
    for name in ("epochs", "hidden", "train_samples"):
        if cfg[name] is not None and cfg[name] < 1:
            raise CLIError(f"--{name.replace('_', '-')}={cfg[name]!r} must be >= 1")
    library = any(needs_library_path(st, cfg["depth"], cfg["hyperprior"], cfg["inference"])
                  for st in cfg["structure"])
    if not library:
        specs = args._options.specs
        for dest in ("dropout", "sigma0", "prior_weight", "local_reparam", "joint_rule",
                     "init_std", "validate"):
            if cfg[dest] != specs[dest].default:
                raise CLIError(f"--{dest.replace('_', '-')}={cfg[dest]!r} applies to the "
                               "learned-scale path (--depth, --hyperprior, --inference vi or "
                               "--structure add / ard+add); the batched standard network does "
                               "not take it")
    if library:
        job_fn: Any = run_uci_scales_split
        jobs = uci_scales_jobs(
            str(data_dir), datasets, laws, cfg["structure"], cfg["objective"],
            depth=cfg["depth"], hyperprior=cfg["hyperprior"], inference=cfg["inference"],
            dropout=cfg["dropout"], seed=cfg["seed"], splits=cfg["splits"],
            validate=cfg["validate"], local_reparam=cfg["local_reparam"],
            prior_weight=cfg["prior_weight"], joint_rule=cfg["joint_rule"],
            init_std=cfg["init_std"],
            **{name: cfg[name] for name in ("epochs", "hidden", "lr", "batch_size", "sigma0",
                                            "test_samples", "train_samples")})
    else:
        job_fn = run_uci_split
        settings = {name: cfg[name] for name in (
            "epochs", "epoch_multiplier", "batch_size", "lr", "lengthscale", "hidden", "layers",
            "test_samples", "validation_samples", "train_samples")}
        jobs = uci_jobs(str(data_dir), datasets, laws, cfg["structure"], cfg["objective"],
                        seed=cfg["seed"], splits=cfg["splits"],
                        splits_per_job=cfg["splits_per_job"], **settings)
    rundir = RunDirectory(cfg["out"], "uci", {**cfg, "data_dir": str(data_dir)}, cfg["seed"])
    store = ResultStore(rundir.path("jobs"), required=("params", "result"))
    done = sum(store.has(job.key) for job in jobs)
    print(f"dropprior uci: {len(jobs)} jobs ({done} already finished in {store.root}), "
          f"{len(datasets)} data set(s) x {len(laws)} law(s) x {len(cfg['structure'])} "
          f"structure(s) x {len(cfg['objective'])} objective(s), {cfg['workers']} worker(s)")
    records = run_jobs(job_fn, jobs, store, workers=cfg["workers"],
                       backend=cfg["backend"], address=cfg["address"], progress=cfg["progress"],
                       desc="uci")
    summary = summarise_uci(records)
    table = write_uci_tables(summary, rundir.path("uci.md"), rundir.path("uci.csv"))
    plot_uci(summary, rundir.path("uci.png"))
    seconds = rundir.finish(jobs=len(jobs), jobs_run_now=len(jobs) - done)
    print(table)
    print(f"wrote {rundir.path('uci.md')}, uci.csv, uci.png and run.json in {seconds:.0f} s")
    return 0


def _prior_weight(text: str) -> float | str:
    from dropprior.experiments.uci_scales import PER_WEIGHT

    if text == PER_WEIGHT:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor "
                                         f"{PER_WEIGHT!r}") from None


def _uci_root(path: Path | None) -> Path:
    from dropprior.data import resolve_data_dir

    try:
        return resolve_data_dir(path, "uci")
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
