"""``dropprior conv-resnet``: an MNIST residual CNN, plain, with stochastic depth, or with ADD /
ARD+ADD learned scales, pruned by the fit's own decisions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dropprior.cli._common import resolve_data_dir
from dropprior.cli._config import command_line, recorded_command, resolve, settings_from
from dropprior.experiments.conv_resnet import (
    CONV_RESNET_VARIANTS,
    ConvResnetSettings,
    run_and_record,
)
from dropprior.hyperpriors import HYPERPRIORS
from dropprior.training import LR_SCHEDULES

_HELP = {
    "variant": "plain (no noise), stochastic_depth (Huang et al.), add or ard+add (VI with "
    "learned block scales, and channel scales)",
    "blocks": "residual blocks (two 3x3 convolutions each, at 14x14)",
    "channels": "channels of every block", "epochs": "training epochs",
    "batch_size": "minibatch size", "lr": "Adam learning rate",
    "sigma0": "prior std of the weights", "drop": "stochastic depth's drop probability p",
    "hyperprior": "add / ard+add: the scales' hyperprior",
    "init_std": "add / ard+add: initial posterior std",
    "prior_weight": "add / ard+add: β multiplying the prior (KL) term (1: the posterior)",
    "rule": "add / ard+add: which groups the fit switched off (evidence, or joint: evidence "
    "deciding the switched-off groups as a set)",
    "mean_replacement": "add / ard+add: hold each removed block at its mean contribution over "
    "the training images instead of removing it at zero",
    "train_size": "training images (a random subset)", "seed": "subset, weights and draws",
    "lr_schedule": "constant, or cosine (annealed from lr towards 0 over the epochs)",
    "augment": "largest random shift in pixels of each training image (pad-and-crop at the "
    "background; 0: none)",
    "validation": "training images held out (disjoint from the training subset) for a "
    "validation error to choose settings on; needs validation + train_size <= 60000",
    "fine_tune_epochs": "add / ard+add: epochs of fit on the pruned point network, with the "
    "same random shifts (0: none); the training's checkpoint is shared with the run without it",
    "fine_tune_lr": "learning rate of the fine-tune (0: --lr)",
    "fine_tune_schedule": "the fine-tune's learning rate: constant, or cosine (annealed "
    "towards 0 over --fine-tune-epochs)",
}
_CHOICES = {"variant": list(CONV_RESNET_VARIANTS), "rule": ["evidence", "joint"],
            "lr_schedule": list(LR_SCHEDULES), "fine_tune_schedule": list(LR_SCHEDULES),
            "hyperprior": [k for k in HYPERPRIORS if k != "auto"]}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = recorded_command(
        subparsers, "conv-resnet",
        help="MNIST residual CNN: plain, stochastic depth, ADD / ARD+ADD learned scales, pruned",
        description="Train a residual CNN on MNIST (conv, pool, K residual blocks of two 3x3 "
        "convolutions, pool, linear) without noise, with stochastic depth, or with learned "
        "block (ADD) and channel (ARD+ADD) scales by VI; prune the blocks the fit switched "
        "off (then, optionally, fine-tune the pruned network), and print the test error "
        "before and after, the blocks kept, parameters, FLOPs "
        "and training images per second. The result record (JSON) goes to "
        "RESULTS/conv_resnet/, a partial one after every epoch; a run whose record exists is "
        "read, not rerun.",
        settings_type=ConvResnetSettings, helps=_HELP, choices=_CHOICES, run=run, data="mnist")
    parser.add_argument("--checkpoint-dir", type=Path, default=None, metavar="DIR",
                        help="keep the training state here after every epoch and resume from "
                        "it when the run is started again (default: none)")


def run(args: argparse.Namespace) -> int:
    values = resolve(args)
    settings = settings_from(values, ConvResnetSettings)
    data_dir = resolve_data_dir(values["data_dir"], "mnist")
    record, fresh = run_and_record(settings, command_line(), data_dir, args.results,
                                   args.checkpoint_dir)
    m = record["metrics"]
    print(f"{'ran' if fresh else 'read'}: {settings.variant}, {settings.blocks} blocks of "
          f"{settings.channels} channels, {m['epochs_run']} epochs ({record['seconds']:.0f} s)")
    line = f"test error {100 * m['test_error']:.2f}%"
    if "valid_error" in m:
        line += f" (validation {100 * m['valid_error']:.2f}%)"
    if "test_error_pruned" in m:
        line += (f", pruned {100 * m['test_error_pruned']:.2f}% with {m['blocks_kept']} of "
                 f"{m['blocks']} blocks kept; parameters {m['params_before']} -> "
                 f"{m['params_after']}, FLOPs {m['flops_before']} -> {m['flops_after']}")
    if "test_error_fine_tuned" in m:
        line += (f"; after {settings.fine_tune_epochs} fine-tune epochs "
                 f"{100 * m['test_error_fine_tuned']:.2f}%")
    print(line)
    print(json.dumps(m))
    return 0
