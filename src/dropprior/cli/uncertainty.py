"""``dropprior uncertainty``: MNIST uncertainty side by side — Bernoulli dropout, a heavy-tailed
law, learned scales, a deterministic net, a deep ensemble, and optionally a last-layer Laplace
posterior and a temperature-scaled net — under rotation and pixel noise."""

from __future__ import annotations

import argparse

from dropprior.cli._common import resolve_data_dir
from dropprior.cli._config import command_line, recorded_command, resolve, settings_from
from dropprior.experiments.uncertainty import (
    DROPOUT_GRID,
    PRIOR_WEIGHT_GRID,
    VARIANTS,
    UncertaintySettings,
    choice_scores,
    run_and_record,
)

_HELP = {
    "epochs": "training epochs of every predictor", "train_size": "training images",
    "batch_size": "minibatch size", "lr": "Adam learning rate",
    "sigma0": "prior std of the weights", "dropout": "dropout rate the noise laws match",
    "heavy_law": "the heavy-tailed law (Table 1)", "samples": "draws per prediction",
    "members": "deep-ensemble members", "seed": "subset, initialisation and draws",
    "vi_local_reparam": "learned scales: train the linear maps by the local reparametrization",
    "vi_prior_weight": "learned scales: β multiplying the KL term (1: the ELBO)",
    "laplace": "also a last-layer Laplace posterior on the deterministic net (post hoc)",
    "validate": "choose the dropout rate of bernoulli and heavy "
                f"({', '.join(map(str, DROPOUT_GRID))}) and the learned scales' β "
                f"({', '.join(f'{b:g}' for b in PRIOR_WEIGHT_GRID)}) by the NLL on the last "
                "sixth of the training images, trained on the rest, then train the chosen "
                "values on all of them; and add a temperature-scaled deterministic net, its "
                "temperature fitted on that sixth",
}
_CHOICES = {"heavy_law": ["gaussian", "rayleigh", "inverse_nakagami"]}


def register(subparsers: argparse._SubParsersAction) -> None:
    recorded_command(
        subparsers, "uncertainty",
        help="MNIST: dropout laws, learned scales, deterministic, ensemble",
        description="Train five predictors on MNIST with the same budget (an MLP "
        "784-300-100-10 with Bernoulli dropout, with a heavy-tailed law, with learned ARD "
        "scales under VI, without noise, and a deep ensemble of deterministic nets), with "
        "--laplace a sixth (a last-layer Laplace posterior on the net without noise), with "
        "--validate the noisy predictors' hyperparameter chosen on held-out training images, "
        "and print "
        "accuracy, NLL, ECE, Brier, AURC and shift AUROCs on MNIST, rotated MNIST and noisy "
        "MNIST. The result record goes to RESULTS/uncertainty/; a run whose record exists is "
        "read, not rerun.",
        settings_type=UncertaintySettings, helps=_HELP, choices=_CHOICES, run=run,
        data="mnist")


def run(args: argparse.Namespace) -> int:
    from dropprior.experiments.evaluate import table

    values = resolve(args)
    settings = settings_from(values, UncertaintySettings)
    data_dir = resolve_data_dir(values["data_dir"], "mnist")
    record, fresh = run_and_record(settings, command_line(), data_dir, args.results)
    print(f"{'ran' if fresh else 'read'}: {settings.epochs} epochs, {record['seconds']:.0f} s")
    for variant in (v for v in VARIANTS if v in record["metrics"]):
        result = record["metrics"][variant]
        print(f"\n{variant} ({result['train_seconds']} s of training)")
        print(table(result["rows"]), end="")
    for variant, choice in record["metrics"].get("validation", {}).items():
        print(f"\n{variant}: {choice['setting']} = {choice['chosen']:g} chosen on validation "
              f"(NLL {choice_scores(choice)})")
    return 0
