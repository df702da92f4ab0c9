"""``dropprior selection``: the synthetic check that learned group scales switch off what a
linear target does not need (12 inputs of which 3 matter, a 6-block ResNet MLP)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from dropprior.cli._config import Options, add_settings_options, resolve, settings_from
from dropprior.experiments.records import RESULTS_DIR
from dropprior.experiments.selection import SelectionSettings, run_and_record
from dropprior.hyperpriors import HYPERPRIORS
from dropprior.scales import INFERENCE
from dropprior.training import OBJECTIVES

_HELP = {
    "inference": "vi (mean-field VI, closed-form scales) or map (type-II MAP, learned scales)",
    "hyperprior": "the scales' hyperprior", "objective": "training objective",
    "samples": "noise (MAP) or weight (VI) draws per example and step",
    "inputs": "input dimension", "relevant": "inputs that enter the target",
    "blocks": "ADD residual blocks", "width": "hidden width", "n_train": "training examples",
    "n_test": "test examples", "noise_std": "target noise std (the likelihood's too)",
    "keep": "Bernoulli keep probability of the layers' noise (MAP keeps it on)",
    "sigma0": "prior std of the weights", "epochs": "training epochs",
    "batch_size": "minibatch size", "lr": "Adam learning rate",
    "init_std": "VI: initial posterior std", "seed": "data, initialisation and draws",
}
_CHOICES = {"inference": list(INFERENCE),
            "hyperprior": [k for k in HYPERPRIORS if k != "auto"],
            "objective": list(OBJECTIVES)}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "selection", help="synthetic check: do learned group scales switch off what is not needed",
        description="Fit a ResNet MLP with an ARD input layer and ADD blocks to a linear target "
        "of a few inputs, with learned group scales (VI or type-II MAP), and print which inputs "
        "and blocks the fit kept. The result record goes to RESULTS/selection/; a run whose "
        "record exists is read, not rerun.")
    opts = Options(parser)
    add_settings_options(opts, SelectionSettings, _HELP, _CHOICES)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help=f"folder of result records (default: {RESULTS_DIR})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    values = resolve(args)
    settings = settings_from(values, SelectionSettings)
    command = "dropprior " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    record, fresh = run_and_record(settings, command, args.results)
    m = record["metrics"]
    print(f"{'ran' if fresh else 'read'}: {settings.inference} / {settings.hyperprior}, "
          f"{settings.epochs} epochs ({record['seconds']:.0f} s)")
    print("input scales:", " ".join(f"{v:.3g}" for v in m["input_scales"]))
    print("block scales:", " ".join(f"{v:.3g}" for v in m["block_scales"]))
    if "input_snr" in m:
        print("input SNR:   ", " ".join(f"{v:.3g}" for v in m["input_snr"]))
        print("block SNR:   ", " ".join(f"{v:.3g}" for v in m["block_snr"]))
    print(f"inputs kept: {m['inputs_kept']} (relevant: {list(range(settings.relevant))})")
    print(f"blocks kept: {m['blocks_kept']} of {settings.blocks}")
    print(f"test RMSE {m['test_rmse']:.4f}, pruned {m['test_rmse_pruned']:.4f}")
    return 0
