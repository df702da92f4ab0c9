"""``dropprior selection``: the synthetic check that learned group scales switch off what a
linear target does not need (12 inputs of which 3 matter, a 6-block ResNet MLP)."""

from __future__ import annotations

import argparse

from dropprior.cli._config import command_line, recorded_command, resolve, settings_from
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
    recorded_command(
        subparsers, "selection",
        help="synthetic check: do learned group scales switch off what is not needed",
        description="Fit a ResNet MLP with an ARD input layer and ADD blocks to a linear target "
        "of a few inputs, with learned group scales (VI or type-II MAP), and print which inputs "
        "and blocks the fit kept. The result record goes to RESULTS/selection/; a run whose "
        "record exists is read, not rerun.",
        settings_type=SelectionSettings, helps=_HELP, choices=_CHOICES, run=run)


def run(args: argparse.Namespace) -> int:
    values = resolve(args)
    settings = settings_from(values, SelectionSettings)
    record, fresh = run_and_record(settings, command_line(), args.results)
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
