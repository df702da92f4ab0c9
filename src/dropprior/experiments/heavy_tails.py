"""Heavy-tailed noise that trains: what makes half-Cauchy and small-m inverse-Nakagami noise
train? Two experiments, one result record per configuration (and seed) under
``results/heavy_tails/``, from which ``dropprior report`` builds ``docs/results/heavy_tails.md``.

``diabetes`` (:class:`DiabetesTailSettings`): an ARD MLP 20 → 32 → 1 on scikit-learn's diabetes
with 10 standard-normal noise features appended, the first layer a unit-structured
``NoisyLinear``; full-batch Adam, σ0 = 0.1; each seed draws its own noise features, 80/20 split
and initialisation. Recorded: whether the loss stayed finite, the test RMSE of the MC predictive
mean and of the per-draw median (original units), and whether the relevance ranks bmi, s5 and bp
above every noise feature.

``mnist`` (:class:`MnistTailSettings`): an MLP 784 → 256 → 256 → 10, every linear map a
unit-structured ``NoisyLinear`` with the same law; minibatch 128, σ0 = 0.1, a few epochs on part
of the training images; the error is computed on validation images carved from the training set
(never the test set) by MC prediction with 8 draws (class probabilities are bounded, so their MC
average exists for every law). It chooses the truncation points of
:mod:`dropprior.experiments.mnist_laws`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dropprior._validation import check_choice, check_int, check_seed, offset_seed
from dropprior.data.mnist import MNIST_TRAIN
from dropprior.noise import Bernoulli, HalfCauchy, InverseNakagami, NoiseLaw
from dropprior.truncation import Truncated

__all__ = ["TailConfig", "DIABETES", "MNIST", "DiabetesTailSettings", "MnistTailSettings",
           "run_diabetes", "run_mnist", "diabetes_table", "mnist_table"]


@dataclass(frozen=True)
class TailConfig:
    """One configuration: its label, the noise law, the objective, the draws S per step, the
    gradient-norm clip (None: none) and Adam's learning rate."""

    label: str
    law: Callable[[], NoiseLaw]
    objective: str
    samples: int
    clip: float | None
    lr: float


DIABETES: tuple[TailConfig, ...] = (
    TailConfig("bernoulli(0.8) MC S=1", lambda: Bernoulli(0.8, inverted=True), "mc", 1, None,
               0.01),
    TailConfig("half-Cauchy(1) MC S=1", lambda: HalfCauchy(1.0), "mc", 1, None, 0.01),
    TailConfig("half-Cauchy(1) MC S=1 clip 1", lambda: HalfCauchy(1.0), "mc", 1, 1.0, 0.01),
    TailConfig("half-Cauchy(1) marginal S=8", lambda: HalfCauchy(1.0), "marginal", 8, None,
               0.01),
    TailConfig("half-Cauchy(1) marginal S=8 clip 1", lambda: HalfCauchy(1.0), "marginal", 8,
               1.0, 0.01),
    TailConfig("half-Cauchy(1) truncated at 10, MC S=1",
               lambda: Truncated(HalfCauchy(1.0), 10.0), "mc", 1, None, 0.01),
    TailConfig("half-Cauchy(1) truncated at 10, marginal S=8",
               lambda: Truncated(HalfCauchy(1.0), 10.0), "marginal", 8, None, 0.01),
    TailConfig("inv-Nakagami(m=0.75) MC S=1", lambda: InverseNakagami(0.75, 1.0), "mc", 1,
               None, 0.01),
    TailConfig("inv-Nakagami(m=0.75) marginal S=8", lambda: InverseNakagami(0.75, 1.0),
               "marginal", 8, None, 0.01),
    TailConfig("inv-Nakagami(m=0.75) truncated at 5, MC S=1",
               lambda: Truncated(InverseNakagami(0.75, 1.0), 5.0), "mc", 1, None, 0.01),
)
"""The diabetes configurations, in table order."""

MNIST: tuple[TailConfig, ...] = (
    TailConfig("bernoulli(0.5) marginal S=2 clip 10 (reference)",
               lambda: Bernoulli(0.5, inverted=True), "marginal", 2, 10.0, 1e-3),
    TailConfig("half-Cauchy(1) MC S=1 clip 10", lambda: HalfCauchy(1.0), "mc", 1, 10.0, 1e-3),
    TailConfig("half-Cauchy(1) marginal S=2 clip 10", lambda: HalfCauchy(1.0), "marginal", 2,
               10.0, 1e-3),
    TailConfig("half-Cauchy(1) marginal S=8 clip 10", lambda: HalfCauchy(1.0), "marginal", 8,
               10.0, 1e-3),
    TailConfig("half-Cauchy(1) marginal S=2 clip 1", lambda: HalfCauchy(1.0), "marginal", 2,
               1.0, 1e-3),
    TailConfig("half-Cauchy(1) marginal S=2 clip 10 lr 1e-4", lambda: HalfCauchy(1.0),
               "marginal", 2, 10.0, 1e-4),
    TailConfig("half-Cauchy(0.1) marginal S=2 clip 10", lambda: HalfCauchy(0.1), "marginal", 2,
               10.0, 1e-3),
    TailConfig("half-Cauchy(1) truncated at 10, marginal S=2 clip 10",
               lambda: Truncated(HalfCauchy(1.0), 10.0), "marginal", 2, 10.0, 1e-3),
    TailConfig("half-Cauchy(1) truncated at 3, marginal S=2 clip 10",
               lambda: Truncated(HalfCauchy(1.0), 3.0), "marginal", 2, 10.0, 1e-3),
    TailConfig("inv-Nakagami(m=0.75) marginal S=2 clip 10", lambda: InverseNakagami(0.75, 1.0),
               "marginal", 2, 10.0, 1e-3),
    TailConfig("inv-Nakagami(m=0.75) truncated at 5, marginal S=2 clip 10",
               lambda: Truncated(InverseNakagami(0.75, 1.0), 5.0), "marginal", 2, 10.0, 1e-3),
)
"""The MNIST configurations, in table order."""

_STRONG = ("bmi", "s5", "bp")
_NOISE_FEATURES = 10
_TRAIN_ROWS = 354  # of diabetes' 442: an 80/20 split


def _config(configs: Sequence[TailConfig], label: str) -> TailConfig:
    check_choice("configuration", label, [c.label for c in configs])
    return next(c for c in configs if c.label == label)


@dataclass(frozen=True)
class DiabetesTailSettings:
    """One diabetes run: the configuration (a label of :data:`DIABETES`), the seed (noise
    features, split, initialisation and noise draws), the full-batch epochs and the MC draws
    at test time."""

    configuration: str
    seed: int = 0
    epochs: int = 300
    test_samples: int = 200

    def __post_init__(self) -> None:
        _config(DIABETES, self.configuration)
        check_seed(self.seed, low=0)
        check_int("epochs", self.epochs, 1)
        check_int("test_samples", self.test_samples, 1)


@dataclass(frozen=True)
class MnistTailSettings:
    """One MNIST selection run: the configuration (a label of :data:`MNIST`), the training
    images used, the epochs, the validation images carved from the training set, and the seed
    (carving, initialisation and noise)."""

    configuration: str
    train_size: int = 20_000
    epochs: int = 2
    val_size: int = 5_000
    seed: int = 0

    def __post_init__(self) -> None:
        _config(MNIST, self.configuration)
        check_int("train_size", self.train_size, 1)
        check_int("epochs", self.epochs, 1)
        check_int("val_size", self.val_size, 1)
        check_seed(self.seed, low=0)
        if self.train_size + self.val_size > MNIST_TRAIN:
            raise ValueError(f"train_size + val_size must be <= {MNIST_TRAIN} (MNIST's "
                             f"training images), got {self.train_size} + {self.val_size}")


def run_diabetes(s: DiabetesTailSettings) -> dict[str, Any]:
    """Train and score one diabetes configuration at one seed (module docstring)."""
    from dropprior import relevance
    from dropprior.data import load_diabetes
    from dropprior.likelihoods import Gaussian
    from dropprior.nn import NoisyLinear
    from dropprior.prediction import RegressionPrediction, predict
    from dropprior.training import fit

    config = _config(DIABETES, s.configuration)
    X, y, names = load_diabetes()
    rng = np.random.default_rng(s.seed)
    Xn = np.concatenate([X, rng.normal(size=(X.shape[0], _NOISE_FEATURES))], axis=1)
    Xn = (Xn - Xn.mean(0)) / Xn.std(0)
    ys = (y - y.mean()) / y.std()
    perm = rng.permutation(len(y))
    tr, te = perm[:_TRAIN_ROWS], perm[_TRAIN_ROWS:]
    xt = torch.tensor(Xn, dtype=torch.float32)
    yt = torch.tensor(ys, dtype=torch.float32)
    start = time.perf_counter()
    torch.manual_seed(s.seed)
    model = nn.Sequential(NoisyLinear(Xn.shape[1], 32, config.law()), nn.ReLU(),
                          nn.Linear(32, 1), nn.Flatten(0))
    likelihood = Gaussian(0.7, learn=True)
    history = fit(model, likelihood, xt[tr], yt[tr], objective=config.objective,
                  samples=config.samples, sigma0=0.1, lr=config.lr, epochs=s.epochs,
                  grad_clip=config.clip, seed=s.seed, progress=False, on_nonfinite="stop")
    torch.manual_seed(offset_seed(s.seed, 1000))
    pred = predict(model, xt[te], samples=s.test_samples, likelihood=likelihood)
    assert isinstance(pred, RegressionPrediction)
    scale = float(y.std())
    scores = relevance(model)["0"]
    strong = [names.index(f) for f in _STRONG]
    return {"finite": not history.diverged,
            "rmse_mean": float(((pred.mean - yt[te]) ** 2).mean().sqrt()) * scale,
            "rmse_median": float(((pred.median - yt[te]) ** 2).mean().sqrt()) * scale,
            "ranked": bool(scores[strong].min() > scores[X.shape[1]:].max()),
            "seconds": round(time.perf_counter() - start, 2)}


def run_mnist(s: MnistTailSettings, data: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """Train one MNIST configuration on ``data`` (the training images standardised, their
    labels) and score it on the carved validation images (module docstring)."""
    from dropprior.likelihoods import Categorical
    from dropprior.metrics import accuracy
    from dropprior.nn import NoisyLinear
    from dropprior.prediction import predict
    from dropprior.training import fit

    config = _config(MNIST, s.configuration)
    x, y = data
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(s.seed))
    val, tr = perm[:s.val_size], perm[s.val_size:s.val_size + s.train_size]
    law = config.law()
    torch.manual_seed(s.seed)
    model = nn.Sequential(NoisyLinear(x.shape[1], 256, law), nn.ReLU(),
                          NoisyLinear(256, 256, law), nn.ReLU(), NoisyLinear(256, 10, law))
    start = time.perf_counter()
    history = fit(model, Categorical(), x[tr], y[tr], objective=config.objective,
                  samples=config.samples, sigma0=0.1, lr=config.lr, epochs=s.epochs,
                  batch_size=128, grad_clip=config.clip, seed=s.seed, progress=False,
                  on_nonfinite="stop")
    seconds = time.perf_counter() - start
    torch.manual_seed(offset_seed(s.seed, 1))
    pred = predict(model, x[val], samples=8, likelihood=Categorical(), batch_size=2500)
    error = 100.0 * (1.0 - float(accuracy(pred.probs, y[val])))  # type: ignore[union-attr]
    return {"finite": not history.diverged,
            "last_train_loss": history.train_loss[-1] if history.train_loss else None,
            "val_error": error, "seconds": round(seconds, 2)}


def _order(configs: Sequence[TailConfig], record: Mapping[str, Any]) -> int:
    labels = [c.label for c in configs]
    label = record["config"]["configuration"]
    return labels.index(label) if label in labels else len(labels)


def _mean_sd(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    from dropprior.experiments.tables import format_spread

    return format_spread(values, fmt, spread="sd")


def diabetes_table(records: Sequence[Mapping[str, Any]]) -> str:
    """The diabetes records as a Markdown table, one row per configuration and schedule, over
    the seeds recorded: RMSEs as mean ± sample sd over the seeds, counts as k/n."""
    from dropprior.experiments.tables import format_seeds, markdown_table

    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (_order(DIABETES, r), r["config"]["seed"])):
        c = r["config"]
        groups.setdefault((c["configuration"], c["epochs"], c["test_samples"]), []).append(r)
    rows = []
    for (label, epochs, draws), group in groups.items():
        m = [r["metrics"] for r in group]
        n = len(m)
        rows.append([label, epochs, draws, format_seeds(r["config"]["seed"] for r in group),
                     f"{sum(x['finite'] for x in m)}/{n}",
                     _mean_sd([x["rmse_mean"] for x in m]),
                     _mean_sd([x["rmse_median"] for x in m]),
                     f"{sum(x['ranked'] for x in m)}/{n}"])
    return markdown_table(["configuration", "epochs", "test draws", "seeds", "finite loss",
                           "RMSE MC mean", "RMSE median", "bmi, s5, bp > all noise"], rows)


def mnist_table(records: Sequence[Mapping[str, Any]]) -> str:
    """The MNIST selection records as a Markdown table, one row per configuration and schedule
    over the seeds recorded: validation error and last training loss as mean ± sample sd over
    the seeds, the finite losses as k/n, the median training seconds."""
    from dropprior.experiments.tables import format_seeds, markdown_table

    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (_order(MNIST, r), r["config"]["seed"])):
        c = r["config"]
        groups.setdefault((c["configuration"], c["train_size"], c["epochs"]), []).append(r)
    rows = []
    for (label, train_size, epochs), group in groups.items():
        m = [r["metrics"] for r in group]
        losses = [x["last_train_loss"] for x in m if x["last_train_loss"] is not None]
        rows.append([label, train_size, epochs,
                     format_seeds(r["config"]["seed"] for r in group),
                     f"{sum(x['finite'] for x in m)}/{len(m)}",
                     _mean_sd(losses, "{:.3g}") if losses else "n/a",
                     _mean_sd([x["val_error"] for x in m], "{:.2f}"),
                     f"{float(np.median([x['seconds'] for x in m])):.0f}"])
    return markdown_table(["configuration", "training images", "epochs", "seeds",
                           "finite loss", "last train loss", "val error MC-8 (%)",
                           "training seconds (median)"], rows)
