r"""MNIST uncertainty side by side: dropout laws, learned scales, a deterministic net, a deep
ensemble and a last-layer Laplace posterior, under rotation and pixel noise.

One run trains, on the same images and with the same budget (``epochs``, Adam at ``lr``, a
N(0, ``sigma0``²) prior), five predictors built on the MLP 784-300-100-10 (ReLU), and with
``laplace`` a sixth made post hoc from the deterministic net:

* ``deterministic``: plain ``nn.Linear`` layers;
* ``bernoulli``: unit noise (dropout) on every layer's inputs, Bernoulli at rate ``dropout``;
* the heavy-tailed law ``heavy_law`` (Table 1, matched to the same rate by
  :func:`dropprior.experiments.laws.dropout_law`) in the same places;
* ``learned_scales``: ARD on every layer's inputs with variational weights and closed-form
  scales under a log-uniform hyperprior (:func:`dropprior.scales.variational`), #8's model,
  optionally trained by the local reparametrization (``vi_local_reparam``) and with its KL
  weighted by ``vi_prior_weight``;
* ``ensemble``: ``members`` deterministic nets from :func:`dropprior.fit_ensemble`;
* ``laplace`` (with ``laplace``): the deterministic net with a Gaussian posterior on its last
  layer, :func:`dropprior.fit_last_layer_laplace` on the training images, its prior precision
  chosen by the marginal likelihood; its training time is the deterministic net's plus the fit.

Each is evaluated by :func:`dropprior.experiments.evaluate.evaluate_classifier` with
``samples`` draws (one for the deterministic net; ``samples`` per member for the ensemble) on
the MNIST test set, rotated by 15°–60° and with pixel noise. The hyperparameters are fixed,
not searched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dropprior._validation import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_prior_weight,
)
from dropprior.experiments.records import added_setting

__all__ = ["UncertaintySettings", "VARIANTS", "PAGE_METRICS", "run_uncertainty", "run_and_record",
           "metric_values", "group_seeds", "summarise_seeds"]

VARIANTS = ("deterministic", "bernoulli", "heavy", "learned_scales", "ensemble", "laplace")
"""Every predictor; ``laplace`` is run only with ``UncertaintySettings.laplace``."""

PAGE_METRICS = (("mnist", "accuracy", True, "accuracy"), ("mnist", "nll", False, "NLL"),
                ("mnist", "ece", False, "ECE"), ("mnist", "brier", False, "Brier"),
                ("mnist", "aurc", False, "AURC"), ("rotate45", "accuracy", True, "accuracy, 45°"),
                ("rotate30", "auroc_entropy", True, "AUROC 30°"),
                ("rotate60", "auroc_entropy", True, "AUROC 60°"),
                ("noise", "auroc_entropy", True, "AUROC noise"))
"""The metrics a run is reported by: (condition, metric, whether higher is better, title)."""


@dataclass(frozen=True)
class UncertaintySettings:
    """One comparison run (module docstring)."""

    epochs: int = 10
    train_size: int = 60_000
    batch_size: int = 128
    lr: float = 1e-3
    sigma0: float = 1.0
    dropout: float = 0.2
    heavy_law: str = "inverse_nakagami"
    samples: int = 50
    members: int = 5
    seed: int = 0
    vi_local_reparam: bool = False
    vi_prior_weight: float = 1.0
    laplace: bool = added_setting(False)

    def __post_init__(self) -> None:
        from dropprior.experiments.laws import TABLE1_LAWS

        check_bool("laplace", self.laplace)
        check_prior_weight(self.vi_prior_weight, "vi_prior_weight")
        check_number("lr", self.lr)
        check_number("sigma0", self.sigma0)
        for name in ("epochs", "train_size", "batch_size", "samples", "members"):
            check_int(name, getattr(self, name), 1)
        check_choice("heavy_law", self.heavy_law,
                     [law for law in TABLE1_LAWS if law not in ("bernoulli", "half_cauchy")])
        check_number("dropout", self.dropout, 0.0, 1.0)


def run_uncertainty(s: UncertaintySettings, data_dir: str | Path | None) -> dict[str, Any]:
    """Train the five predictors (six with ``laplace``) and evaluate them; the metrics of a
    result record: ``{variant: {"rows": evaluation rows, "train_seconds": s}}``."""
    from dropprior import (
        fit,
        fit_ensemble,
        fit_last_layer_laplace,
        predict,
        predict_ensemble,
        scales,
    )
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist
    from dropprior.experiments.evaluate import evaluate_classifier
    from dropprior.experiments.laws import dropout_law
    from dropprior.experiments.lenet import lenet_300_100
    from dropprior.likelihoods import Categorical

    x, y = load_mnist(data_dir, "train")
    x_test, y_test = load_mnist(data_dir, "test")
    pick = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    x, y = x[pick[:s.train_size]], y[pick[:s.train_size]]
    standard = (x - MNIST_MEAN) / MNIST_STD
    common: dict[str, Any] = {"epochs": s.epochs, "lr": s.lr, "batch_size": s.batch_size,
                              "sigma0": s.sigma0, "progress": False}
    out: dict[str, Any] = {}
    trained: dict[str, list[nn.Module]] = {}
    for variant in VARIANTS:
        if variant == "laplace" and not s.laplace:
            continue
        torch.manual_seed(s.seed)
        start = time.perf_counter()
        posterior = None
        if variant == "laplace":  # post hoc, on the deterministic net
            models = trained["deterministic"]
            posterior = fit_last_layer_laplace(models[0], standard, y)
        elif variant == "ensemble":
            models = fit_ensemble(lambda: lenet_300_100(None), s.members, Categorical(),
                                  standard, y, seed=s.seed, **common)
        else:
            law = {"deterministic": None, "bernoulli": dropout_law("bernoulli", s.dropout),
                   "heavy": dropout_law(s.heavy_law, s.dropout),
                   "learned_scales": dropout_law("bernoulli", s.dropout)}[variant]
            model = lenet_300_100(law)
            learned = variant == "learned_scales"
            if learned:
                scales.variational(model, "log_uniform", init_std=0.01,
                                   local_reparam=s.vi_local_reparam)
            fit(model, Categorical(), standard, y, seed=s.seed,
                prior_weight=s.vi_prior_weight if learned else 1.0, **common)
            models = [model]
        trained[variant] = models
        seconds = time.perf_counter() - start
        if variant == "laplace":
            seconds += out["deterministic"]["train_seconds"]

        def predict_fn(images: torch.Tensor, models: list[nn.Module] = models,
                       posterior: Any = posterior) -> Any:
            inputs = (images - MNIST_MEAN) / MNIST_STD
            if posterior is not None:
                return posterior.predict(inputs, samples=s.samples)
            if len(models) > 1:
                return predict_ensemble(models, inputs, Categorical(), samples=s.samples,
                                        batch_size=2000)
            return predict(models[0], inputs, samples=s.samples, likelihood=Categorical(),
                           batch_size=2000)

        torch.manual_seed(s.seed)
        rows, _ = evaluate_classifier(predict_fn, x_test, y_test, seed=s.seed)
        out[variant] = {"rows": rows, "train_seconds": round(seconds, 1)}
    return out


def run_and_record(s: UncertaintySettings, command: str, data_dir: str | Path | None,
                   root: str | Path | None = None) -> tuple[dict[str, Any], bool]:
    """The run's record from ``results/uncertainty/`` if it is there, else run and write it.
    Returns (record, whether it was run now)."""
    from dropprior.experiments.records import run_recorded

    return run_recorded("uncertainty", s, command, lambda: run_uncertainty(s, data_dir), root)


def metric_values(result: dict[str, Any]) -> list[float]:
    """One predictor's :data:`PAGE_METRICS` from its entry of a record's ``metrics``."""
    rows = {row["condition"]: row for row in result["rows"]}
    return [float(rows[condition][metric]) for condition, metric, _, _ in PAGE_METRICS]


def group_seeds(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records grouped by their settings but the seed, each group by seed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        key = repr(sorted((k, v) for k, v in r["config"].items() if k != "seed"))
        groups.setdefault(key, []).append(r)
    return [sorted(g, key=lambda r: r["config"]["seed"]) for _, g in sorted(groups.items())]


def summarise_seeds(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per predictor that every record has: the mean and standard error over the records (one
    per seed) of each of :data:`PAGE_METRICS` (``"metrics"``: a list of (mean, se)), and the
    mean training seconds."""
    from dropprior.experiments.tables import mean_se

    out = {}
    for variant in VARIANTS:
        if not all(variant in r["metrics"] for r in records):
            continue
        values = [metric_values(r["metrics"][variant]) for r in records]
        out[variant] = {"metrics": [mean_se(column) for column in zip(*values, strict=True)],
                        "train_seconds": sum(r["metrics"][variant]["train_seconds"]
                                             for r in records) / len(records)}
    return out
