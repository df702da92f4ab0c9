"""``dropprior uncertainty``: MNIST uncertainty side by side — Bernoulli dropout, a heavy-tailed
law, learned scales, a deterministic net and a deep ensemble — under rotation and pixel noise."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dropprior.cli._common import resolve_data_dir
from dropprior.cli._config import Options, add_settings_options, resolve, settings_from
from dropprior.experiments.records import RESULTS_DIR
from dropprior.experiments.uncertainty import VARIANTS, UncertaintySettings, run_and_record

_HELP = {
    "epochs": "training epochs of every predictor", "train_size": "training images",
    "batch_size": "minibatch size", "lr": "Adam learning rate",
    "sigma0": "prior std of the weights", "dropout": "dropout rate the noise laws match",
    "heavy_law": "the heavy-tailed law (Table 1)", "samples": "draws per prediction",
    "members": "deep-ensemble members", "seed": "subset, initialisation and draws",
}
_CHOICES = {"heavy_law": ["gaussian", "rayleigh", "inverse_nakagami"]}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "uncertainty", help="MNIST: dropout laws, learned scales, deterministic, ensemble",
        description="Train five predictors on MNIST with the same budget (an MLP "
        "784-300-100-10 with Bernoulli dropout, with a heavy-tailed law, with learned ARD "
        "scales under VI, without noise, and a deep ensemble of deterministic nets), and print "
        "accuracy, NLL, ECE, Brier, AURC and shift AUROCs on MNIST, rotated MNIST and noisy "
        "MNIST. The result record goes to RESULTS/uncertainty/; a run whose record exists is "
        "read, not rerun.")
    opts = Options(parser)
    opts.add("--data-dir", default=None, kind=Path, metavar="DIR",
             help="data root holding mnist/ (or the mnist/ folder itself)",
             shown="$DROPPRIOR_DATA_DIR")
    add_settings_options(opts, UncertaintySettings, _HELP, _CHOICES)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help=f"folder of result records (default: {RESULTS_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dropprior.experiments.evaluate import table

    values = resolve(args)
    settings = settings_from(values, UncertaintySettings)
    data_dir = resolve_data_dir(values["data_dir"], "mnist")
    command = "dropprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    record, fresh = run_and_record(settings, command, data_dir, args.results)
    print(f"{'ran' if fresh else 'read'}: {settings.epochs} epochs, {record['seconds']:.0f} s")
    for variant in VARIANTS:
        result = record["metrics"][variant]
        print(f"\n{variant} ({result['train_seconds']} s of training)")
        print(table(result["rows"]), end="")
    return 0
