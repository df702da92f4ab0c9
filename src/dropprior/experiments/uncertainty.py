r"""MNIST uncertainty side by side: dropout laws, learned scales, a deterministic net, a deep
ensemble, a last-layer Laplace posterior and temperature scaling, under rotation and pixel
noise.

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
not searched, unless ``validate`` is set: then the last sixth of the training images is held out
(10 000 of 60 000), every value of one hyperparameter per tunable predictor is trained on the
rest and scored by its mean predictive NLL on the held-out images (:func:`dropprior.metrics.nll`),
and the value of the lowest NLL is trained again on all the training images:

* ``bernoulli`` and ``heavy``: the dropout rate, from :data:`DROPOUT_GRID`;
* ``learned_scales``: β, the KL weight, from :data:`PRIOR_WEIGHT_GRID`.

The deterministic net and the ensemble have no such hyperparameter, and the Laplace posterior
chooses its prior precision by the marginal likelihood. ``validate`` also adds a predictor that
needs held-out images, ``temperature``: the deterministic net trained on all but the held-out
sixth, its logits divided by the temperature of the lowest NLL on that sixth
(:func:`dropprior.fit_temperature`; Guo et al., 2017). The test images are never seen before the
last step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
    check_seed,
)
from dropprior.experiments.records import added_setting

__all__ = ["UncertaintySettings", "VARIANTS", "PAGE_METRICS", "DROPOUT_GRID", "PRIOR_WEIGHT_GRID",
           "run_uncertainty", "run_and_record", "choose_on_validation", "choice_scores",
           "metric_values", "group_seeds", "summarise_seeds"]

VARIANTS = ("deterministic", "bernoulli", "heavy", "learned_scales", "ensemble", "laplace",
            "temperature")
"""Every predictor; ``laplace`` is run only with ``UncertaintySettings.laplace``,
``temperature`` only with ``UncertaintySettings.validate``."""

PAGE_METRICS = (("mnist", "accuracy", True, "accuracy"), ("mnist", "nll", False, "NLL"),
                ("mnist", "ece", False, "ECE"), ("mnist", "brier", False, "Brier"),
                ("mnist", "aurc", False, "AURC"), ("rotate45", "accuracy", True, "accuracy, 45°"),
                ("rotate30", "auroc_entropy", True, "AUROC 30°"),
                ("rotate60", "auroc_entropy", True, "AUROC 60°"),
                ("noise", "auroc_entropy", True, "AUROC noise"))
"""The metrics a run is reported by: (condition, metric, whether higher is better, title)."""

DROPOUT_GRID = (0.05, 0.1, 0.2, 0.3, 0.5)
"""The dropout rates ``validate`` tries for ``bernoulli`` and ``heavy``."""

PRIOR_WEIGHT_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
"""The KL weights β ``validate`` tries for ``learned_scales``."""

TUNED = {"bernoulli": ("dropout", DROPOUT_GRID), "heavy": ("dropout", DROPOUT_GRID),
         "learned_scales": ("vi_prior_weight", PRIOR_WEIGHT_GRID)}
"""Per predictor that ``validate`` tunes: the setting it chooses and the values it tries."""


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
    validate: bool = added_setting(False)

    def __post_init__(self) -> None:
        from dropprior.experiments.laws import TABLE1_LAWS

        check_bool("laplace", self.laplace)
        check_bool("validate", self.validate)
        check_prior_weight(self.vi_prior_weight, "vi_prior_weight")
        check_number("lr", self.lr)
        check_number("sigma0", self.sigma0)
        for name in ("epochs", "train_size", "batch_size", "samples", "members"):
            check_int(name, getattr(self, name), 1)
        check_seed(self.seed, low=0)
        check_choice("heavy_law", self.heavy_law,
                     [law for law in TABLE1_LAWS if law not in ("bernoulli", "half_cauchy")])
        check_number("dropout", self.dropout, 0.0, 1.0)
        if self.validate and self.train_size < 12:
            raise ValueError(f"validate holds out a sixth of train_size, which needs "
                             f"train_size >= 12, got {self.train_size}")


def run_uncertainty(s: UncertaintySettings, data_dir: str | Path | None) -> dict[str, Any]:
    """Train the five predictors (and ``laplace`` with ``laplace``, ``temperature`` with
    ``validate``) and evaluate them; the metrics of a
    result record: ``{variant: {"rows": evaluation rows, "train_seconds": s}}``, and with
    ``validate`` also ``"validation"``: :func:`choose_on_validation`'s record per tuned
    predictor, and ``temperature``'s (the held-out NLL at T = 1 and at its T). A tuned
    predictor's ``train_seconds`` include its validation runs."""
    from dropprior import fit_last_layer_laplace
    from dropprior.data.mnist import MNIST_MEAN, MNIST_STD, load_mnist
    from dropprior.experiments.evaluate import evaluate_classifier

    x, y = load_mnist(data_dir, "train")
    x_test, y_test = load_mnist(data_dir, "test")
    pick = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    x, y = x[pick[:s.train_size]], y[pick[:s.train_size]]
    standard = (x - MNIST_MEAN) / MNIST_STD
    out: dict[str, Any] = {}
    chosen: dict[str, Any] = {}
    trained: dict[str, list[nn.Module]] = {}
    for variant in VARIANTS:
        if (variant == "laplace" and not s.laplace) or (variant == "temperature"
                                                         and not s.validate):
            continue
        start = time.perf_counter()
        posterior = None
        settings = s
        if s.validate and variant in TUNED:
            name, grid = TUNED[variant]
            record = choose_on_validation(variant, s, standard, y, name, grid)
            chosen[variant] = record
            settings = replace(s, **{name: record["chosen"]})
        if variant == "laplace":  # post hoc, on the deterministic net
            models = trained["deterministic"]
            posterior = fit_last_layer_laplace(models[0], standard, y)
        elif variant == "temperature":
            chosen[variant], models = _temperature_scaled(s, standard, y)
        else:
            models = _train(variant, settings, standard, y)
        trained[variant] = models
        seconds = time.perf_counter() - start
        if variant == "laplace":
            seconds += out["deterministic"]["train_seconds"]
        predict_fn = _predictor(models, posterior, s.samples,
                                lambda images: (images - MNIST_MEAN) / MNIST_STD)
        torch.manual_seed(s.seed)
        rows, _ = evaluate_classifier(predict_fn, x_test, y_test, seed=s.seed)
        out[variant] = {"rows": rows, "train_seconds": round(seconds, 1)}
    if s.validate:
        out["validation"] = chosen
    return out


def choose_on_validation(variant: str, s: UncertaintySettings, x: torch.Tensor, y: torch.Tensor,
                         name: str, grid: tuple[float, ...]) -> dict[str, Any]:
    """Train ``variant`` on all but the last sixth of (x, y) once per value of setting ``name``
    in ``grid``, and score each by the mean predictive NLL (``s.samples`` draws) on that last
    sixth. Returns ``{"setting": name, "values": grid, "nll": [...], "chosen": value}``, the
    chosen value the one of the lowest NLL (the first of equals)."""
    from dropprior.metrics import nll

    fit_x, fit_y, val_x, val_y = _held_out(x, y)
    scores = []
    for value in grid:
        tried: dict[str, Any] = {name: value}
        models = _train(variant, replace(s, **tried), fit_x, fit_y)
        torch.manual_seed(s.seed)
        probs = _predictor(models, None, s.samples, lambda images: images)(val_x).probs
        scores.append(float(nll(probs, val_y)))
    best = min(range(len(grid)), key=scores.__getitem__)
    return {"setting": name, "values": list(grid), "nll": scores, "chosen": grid[best]}


def choice_scores(choice: dict[str, Any], bold_chosen: bool = False) -> str:
    """One :func:`choose_on_validation` record's held-out NLL per value tried, as
    ``"value: NLL, ..."`` (the chosen value's pair in Markdown bold with ``bold_chosen``)."""
    return ", ".join(f"**{v:g}: {n:.4f}**" if bold_chosen and v == choice["chosen"]
                     else f"{v:g}: {n:.4f}"
                     for v, n in zip(choice["values"], choice["nll"], strict=True))


def _held_out(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(x, y) without their last sixth, then that sixth: (fit x, fit y, held-out x, held-out y)."""
    held = x.shape[0] // 6
    return x[:-held], y[:-held], x[-held:], y[-held:]


def _temperature_scaled(s: UncertaintySettings, x: torch.Tensor, y: torch.Tensor
                        ) -> tuple[dict[str, Any], list[nn.Module]]:
    """The deterministic net trained on all but the last sixth of (x, y), its temperature
    fitted on that sixth: the validation record (the held-out NLL at T = 1 and at the fitted T)
    and the scaled net."""
    from dropprior import TemperatureScaled, fit_temperature
    from dropprior.metrics import nll

    fit_x, fit_y, val_x, val_y = _held_out(x, y)
    (model,) = _train("deterministic", s, fit_x, fit_y)
    model.eval()
    with torch.no_grad():
        logits = model(val_x)
    t = fit_temperature(logits, val_y)
    scores = [float(nll(torch.softmax(logits / value, -1), val_y)) for value in (1.0, t)]
    return ({"setting": "temperature", "values": [1.0, t], "nll": scores, "chosen": t},
            [TemperatureScaled(model, t)])


def _train(variant: str, s: UncertaintySettings, x: torch.Tensor,
           y: torch.Tensor) -> list[nn.Module]:
    """The trained model(s) of one predictor but ``laplace``, on standardised images x."""
    from dropprior import fit, fit_ensemble, scales
    from dropprior.experiments.laws import dropout_law
    from dropprior.experiments.lenet import lenet_300_100
    from dropprior.likelihoods import Categorical

    common: dict[str, Any] = {"epochs": s.epochs, "lr": s.lr, "batch_size": s.batch_size,
                              "sigma0": s.sigma0, "progress": False}
    torch.manual_seed(s.seed)
    if variant == "ensemble":
        return fit_ensemble(lambda: lenet_300_100(None), s.members, Categorical(), x, y,
                            seed=s.seed, **common)
    law = {"deterministic": None, "bernoulli": dropout_law("bernoulli", s.dropout),
           "heavy": dropout_law(s.heavy_law, s.dropout),
           "learned_scales": dropout_law("bernoulli", s.dropout)}[variant]
    model = lenet_300_100(law)
    learned = variant == "learned_scales"
    if learned:
        scales.variational(model, "log_uniform", init_std=0.01, local_reparam=s.vi_local_reparam)
    fit(model, Categorical(), x, y, seed=s.seed,
        prior_weight=s.vi_prior_weight if learned else 1.0, **common)
    return [model]


def _predictor(models: list[nn.Module], posterior: Any, samples: int,
               standardise: Callable[[torch.Tensor], torch.Tensor]
               ) -> Callable[[torch.Tensor], Any]:
    """The predictive of a model, an ensemble or a Laplace posterior on raw images."""
    from dropprior import predict, predict_ensemble
    from dropprior.likelihoods import Categorical

    def predict_fn(images: torch.Tensor) -> Any:
        inputs = standardise(images)
        if posterior is not None:
            return posterior.predict(inputs, samples=samples)
        if len(models) > 1:
            return predict_ensemble(models, inputs, Categorical(), samples=samples,
                                    batch_size=2000)
        return predict(models[0], inputs, samples=samples, likelihood=Categorical(),
                       batch_size=2000)

    return predict_fn


def run_and_record(s: UncertaintySettings, command: str, data_dir: str | Path | None,
                   root: str | Path | None = None) -> tuple[dict[str, Any], bool]:
    """The run's record from ``results/uncertainty/`` if it is there, else run and write it.
    Returns (record, whether it was run now). A record chosen on validation over other values
    than :data:`TUNED`'s (the grids are not part of a record's key) is an error, not a
    result."""
    from dropprior.experiments.records import run_recorded

    record, fresh = run_recorded("uncertainty", s, command, lambda: run_uncertainty(s, data_dir),
                                 root)
    for variant, choice in record["metrics"].get("validation", {}).items():
        if variant in TUNED and choice["values"] != list(TUNED[variant][1]):
            raise ValueError(f"the recorded run chose {variant}'s {choice['setting']} from "
                             f"{choice['values']}, but this code tries {list(TUNED[variant][1])}; "
                             "move that record out of the results folder to rerun it")
    return record, fresh


def metric_values(result: dict[str, Any]) -> list[float]:
    """One predictor's :data:`PAGE_METRICS` from its entry of a record's ``metrics``."""
    rows = {row["condition"]: row for row in result["rows"]}
    return [float(rows[condition][metric]) for condition, metric, _, _ in PAGE_METRICS]


def group_seeds(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records grouped by their settings but the seed, each group by seed. Records chosen
    on validation over different values of a :data:`TUNED` setting (the grids are not part of
    a record's settings) fall in different groups, so no section pools them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        grids = sorted((variant, choice["values"])
                       for variant, choice in r["metrics"].get("validation", {}).items()
                       if variant in TUNED)
        key = repr((sorted((k, v) for k, v in r["config"].items() if k != "seed"), grids))
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
