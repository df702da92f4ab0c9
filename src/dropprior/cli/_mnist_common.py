"""Options and the run shared by ``dropprior resnet`` and ``dropprior cnn``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from dropprior.cli._common import CLIError
from dropprior.cli._config import Options, resolve
from dropprior.experiments.laws import TABLE1_LAWS
from dropprior.experiments.mnist import SIZES


def add_mnist_options(parser: argparse.ArgumentParser, variants: tuple[str, ...],
                      out: str) -> None:
    """Declare the options of an MNIST architecture command."""
    small = SIZES["small"]
    opts = Options(parser)
    opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
             help="data root holding mnist/ (or the mnist/ folder itself)",
             shown="$DROPPRIOR_DATA_DIR")
    opts.add("--variant", default=list(variants), many=True, choices=list(variants),
             help="variants to train")
    opts.add("--size", default="small", choices=list(SIZES),
             help="preset: small (minutes on a CPU: "
             f"{small.train_size} training images, {small.epochs} epochs) or published "
             "(all 60000 images, 20 epochs, published widths)")
    opts.add("--epochs", default=None, kind=int, help="override the preset's epochs",
             shown="the preset's")
    opts.add("--train-size", default=None, kind=int,
             help="override the preset's number of training images", shown="the preset's")
    opts.add("--law", default=small.law, choices=list(TABLE1_LAWS),
             help="noise law of the dropprior variants")
    opts.add("--dropout", default=small.dropout, kind=float,
             help="dropout rate p the law is matched to (and of the baselines)")
    opts.add("--sigma0", default=small.sigma0, kind=float,
             help="std of the Gaussian prior on the weights")
    opts.add("--lr", default=small.lr, kind=float, help="Adam learning rate")
    opts.add("--threshold", default=small.threshold, kind=float,
             help="a group is off / pruned when its weight norm is below this fraction of the "
             "largest in its layer")
    opts.add("--seed", default=small.seed, kind=int, help="seed of the subset, weights, noise")
    opts.add("--workers", default=1, kind=int, help="parallel worker processes")
    opts.add("--out", default=Path(out), kind=Path, metavar="DIR",
             help="run directory (a rerun skips variants already in DIR/jobs)")
    opts.add("--progress", default=True, switch=True, help="show a progress bar")


def run_mnist_command(args: argparse.Namespace, architecture: str) -> tuple[list[Any], Any, Any]:
    """Resolve options, run every variant through the job runner; return (records, cfg, rundir)."""
    from dropprior.data import resolve_data_dir
    from dropprior.experiments.mnist import run_mnist_variant
    from dropprior.experiments.rundir import RunDirectory
    from dropprior.experiments.runner import Job, run_jobs
    from dropprior.experiments.store import ResultStore

    cfg = resolve(args)
    try:
        data_dir = resolve_data_dir(cfg["data_dir"], "mnist")
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    if cfg["workers"] < 1:
        raise CLIError(f"--workers={cfg['workers']!r} must be >= 1")
    preset = SIZES[cfg["size"]]
    changes = {k: cfg[k] for k in ("epochs", "train_size") if cfg[k] is not None}
    changes.update({k: cfg[k] for k in ("law", "dropout", "sigma0", "lr", "threshold", "seed")})
    settings = dataclasses.asdict(dataclasses.replace(preset, **changes))
    jobs = []
    for variant in dict.fromkeys(cfg["variant"]):
        params = {"data_dir": str(data_dir), "architecture": architecture, "variant": variant,
                  "settings": settings}
        key = f"{architecture}/{variant}/" + "-".join(f"{k}={v}" for k, v in
                                                      sorted(settings.items()))
        jobs.append(Job(key=key, params=params))
    rundir = RunDirectory(cfg["out"], architecture, {**cfg, "data_dir": str(data_dir)},
                          cfg["seed"])
    records = run_jobs(run_mnist_variant, jobs, ResultStore(rundir.path("jobs")),
                       workers=cfg["workers"], progress=cfg["progress"], desc=architecture)
    return records, settings, rundir
