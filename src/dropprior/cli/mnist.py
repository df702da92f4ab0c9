"""``dropprior mnist``: LeNet-300-100 or LeNet-5-Caffe with learned group scales, pruned by the
fit's own decisions; prints the test error, the kept architecture, parameters and FLOPs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dropprior.cli._common import resolve_data_dir
from dropprior.cli._config import command_line, recorded_command, resolve, settings_from
from dropprior.experiments.lenet import ARCHS, RULES, LenetSettings, run_and_record
from dropprior.hyperpriors import HYPERPRIORS
from dropprior.scales import INFERENCE
from dropprior.training import LR_SCHEDULES

_HELP = {
    "arch": "network", "inference": "vi (closed-form scales) or map (learned scales)",
    "hyperprior": "the scales' hyperprior", "epochs": "training epochs",
    "batch_size": "minibatch size", "lr": "Adam learning rate",
    "lr_schedule": "the training's learning rate: constant, or cosine (annealed from --lr "
    "towards 0 over --epochs)",
    "sigma0": "prior std of the weights", "init_std": "VI: initial posterior std",
    "keep": "Bernoulli keep probability of the layers' noise (MAP keeps it on)",
    "train_size": "training images (a random subset)", "seed": "subset, weights and draws",
    "rule": "which groups the fit switched off (VI: evidence, joint (evidence as a set), "
    "evidence-means (evidence with switched-off groups held at their means, pruned so) or "
    "snr; auto: VI evidence, MAP the scales' collapse)",
    "fine_tune_epochs": "epochs of fit on the pruned point network (0: none)",
    "fine_tune_lr": "learning rate of the fine-tune (0: --lr)",
    "fine_tune_schedule": "the fine-tune's learning rate: constant, or cosine (annealed "
    "towards 0 over --fine-tune-epochs)",
    "fine_tune_noise": "MAP: keep the layers' noise on in the fine-tune "
    "(--no-fine-tune-noise: train the pruned network without it; VI has no noise)",
    "fine_tune_patience": "stop the fine-tune after this many epochs without a better loss on "
    "a tenth of the training images held out, keeping the best epoch (0: run every epoch)",
    "prior_warmup": "epochs over which the prior's weight rises to 1 (0: none; a KL warm-up)",
    "local_reparam": "VI: draw the linear layers' outputs per example by the local "
    "reparametrization while training (convolutions keep one weight draw per minibatch)",
    "prior_weight": "β multiplying the prior (KL) term (1: the posterior; < 1 tempered)",
    "mean_replacement": "prune by mean replacement: hold each removed unit or channel at its "
    "mean over the training images (folded into the next map's bias) instead of at zero",
    "max_kept": "a size budget: comma-separated counts, one per pruned layer (LeNet-300-100: "
    "pixels,hidden 1,hidden 2; LeNet-5-Caffe: conv1 filters,conv2 filters,fc1 units), each "
    "layer keeping at most that many of the groups the fit kept, those with the highest "
    "learned scales (\"\": no cap)",
    "validation": "training images held out (disjoint from the training subset) for a "
    "validation error, unpruned, pruned and fine-tuned, to choose settings on; needs "
    "validation + train_size <= 60000",
}
_CHOICES = {"arch": list(ARCHS), "inference": list(INFERENCE), "rule": list(RULES),
            "fine_tune_schedule": list(LR_SCHEDULES), "lr_schedule": list(LR_SCHEDULES),
            "hyperprior": [k for k in HYPERPRIORS if k != "auto"]}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = recorded_command(
        subparsers, "mnist", help="LeNet-300-100 / LeNet-5-Caffe with learned group scales, pruned",
        description="Train a LeNet on MNIST with learned group scales (VI or type-II MAP), "
        "prune the groups the fit switched off, and print test error, the kept architecture, "
        "parameters and FLOPs before and after. The result record (JSON) goes to "
        "RESULTS/lenet/; a run whose record exists is read, not rerun.",
        settings_type=LenetSettings, helps=_HELP, choices=_CHOICES, run=run, data="mnist")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="training checkpoint: written every epoch, resumed if it exists "
                        "(default: none)")


def run(args: argparse.Namespace) -> int:
    values = resolve(args)
    settings = settings_from(values, LenetSettings)
    data_dir = resolve_data_dir(values["data_dir"], "mnist")
    record, fresh = run_and_record(settings, command_line(), data_dir, args.results,
                                   args.checkpoint)
    m = record["metrics"]
    print(f"{'ran' if fresh else 'read'}: {settings.arch}, {settings.inference} / "
          f"{settings.hyperprior}, {m['epochs_run']} epochs ({record['seconds']:.0f} s)")
    if "prune_error" in m:
        print(f"test error {100 * m['test_error']:.2f}%; not pruned: {m['prune_error']}")
        return 0
    print(f"test error {100 * m['test_error']:.2f}%, pruned {100 * m['test_error_pruned']:.2f}%")
    if "valid_error" in m:
        print(f"validation error {100 * m['valid_error']:.2f}%, pruned "
              f"{100 * m['valid_error_pruned']:.2f}%")
    if "test_error_fine_tuned" in m:
        epochs = m.get("fine_tune_epochs_run", settings.fine_tune_epochs)
        held = (f" (held-out loss {m['fine_tune_valid_loss']:.4f})"
                if "fine_tune_valid_loss" in m else "")
        valid = (f", validation {100 * m['valid_error_fine_tuned']:.2f}%"
                 if "valid_error_fine_tuned" in m else "")
        print(f"after {epochs} fine-tune epochs {100 * m['test_error_fine_tuned']:.2f}%{held}"
              f"{valid}")
    print(f"kept architecture {m['kept_architecture']}")
    print(f"parameters {m['params_before']} -> {m['params_after']}, "
          f"FLOPs {m['flops_before']} -> {m['flops_after']}")
    print(json.dumps(m))
    return 0
