r"""Lightning integration (the ``lightning`` extra: ``pip install 'dropprior[lightning]'``).

:class:`NoisyLightningModule` wraps any dropprior model (noisy layers, learned scales, a model
converted by ``apply_noise``) and its likelihood as a ``LightningModule``:

* ``training_step`` minimises :func:`dropprior.objectives.training_loss`, the same per-example
  loss as :func:`dropprior.fit`, under the MC, marginal or tail-adaptive objective, with the
  prior scaled by the number of training examples;
* ``validation_step`` / ``test_step`` predict with :func:`dropprior.predict` (S draws, batch
  norm in eval mode) and collect the predictions; at the end of the epoch the metrics of
  :mod:`dropprior.metrics` are computed on the whole set and logged as ``val/...`` or
  ``test/...``: accuracy, NLL, Brier and ECE for a classifier, RMSE, test log-likelihood and
  CRPS for a Gaussian regression.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

try:
    import lightning.pytorch as pl
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("dropprior.lightning needs Lightning: pip install 'dropprior[lightning]'"
                      ) from err

from dropprior._validation import check_choice, check_number, check_prior_weight, type_name
from dropprior.likelihoods import Likelihood
from dropprior.nn import excluded_modules
from dropprior.objectives import OBJECTIVE_FUNCTIONS, check_samples, check_sigma0, training_loss
from dropprior.prediction import ClassificationPrediction, RegressionPrediction, predict

__all__ = ["NoisyLightningModule"]


class NoisyLightningModule(pl.LightningModule):
    """A dropprior model trained and evaluated by Lightning (module docstring).

    Args:
        model: the network.
        likelihood: :class:`~dropprior.likelihoods.Categorical`, ``Bernoulli`` or ``Gaussian``
            (a learned noise std is trained too).
        n_train: the number of training examples N (scales the prior).
        objective: "mc", "marginal" or "tail_adaptive".
        samples: noise draws per example per training step.
        sigma0: the prior σ0 (∞: no prior; learned scales need a finite one).
        lr: Adam's learning rate (override ``configure_optimizers`` for another optimizer).
        eval_samples: draws per prediction in validation and test.
        prior_weight: β multiplying the prior term (1: the posterior; see ``fit``).
        eval_exclude: submodules (names, or the modules) held at their mean in the validation
            and test predictions (``predict``'s ``exclude``); they still draw in training.

    Shape:
        batches: (x, y) pairs as the likelihood takes them.
    """

    def __init__(self, model: nn.Module, likelihood: Likelihood, n_train: int,
                 objective: str = "mc", samples: int = 1, sigma0: float = math.inf,
                 lr: float = 1e-3, eval_samples: int = 16, prior_weight: float = 1.0,
                 eval_exclude: Iterable[str | nn.Module] = ()) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type_name(model)}")
        if not isinstance(likelihood, Likelihood):
            raise TypeError(f"likelihood must be a dropprior Likelihood, got "
                            f"{type_name(likelihood)}")
        if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
            raise ValueError(f"n_train must be the number of training examples (an int >= 1), "
                             f"got {n_train!r}")
        check_number("lr", lr)
        check_sigma0(sigma0)
        self.model, self.likelihood = model, likelihood
        self.n_train = n_train
        self.objective = check_choice("objective", objective, OBJECTIVE_FUNCTIONS)
        self.samples = check_samples(samples)
        self.eval_samples = check_samples(eval_samples, "eval_samples")
        self.sigma0, self.lr = sigma0, float(lr)
        self.prior_weight = check_prior_weight(prior_weight)
        # resolved (and checked) once: the modules, each with everything below it
        self.eval_exclude = excluded_modules(model, eval_exclude, "NoisyLightningModule")
        self._outputs: list[tuple[Any, Tensor]] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = training_loss(self.model, x, y, self.likelihood, self.objective, self.samples,
                             self.sigma0, self.n_train, prior_weight=self.prior_weight)
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        return loss

    def _collect(self, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        pred = predict(self.model, x, samples=self.eval_samples, likelihood=self.likelihood,
                       exclude=self.eval_exclude)
        self._outputs.append((pred, y))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        outputs, self._outputs = self._outputs, []
        if not outputs:
            return
        for name, value in evaluation_metrics(outputs).items():
            self.log(f"{stage}/{name}", value)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def evaluation_metrics(outputs: list[tuple[Any, Tensor]]) -> dict[str, float]:
    """The metrics of a set from its per-batch (prediction, y) pairs: accuracy, NLL, Brier and
    ECE for classification; RMSE, test log-likelihood (the mixture's, per example) and CRPS (per
    output entry) for Gaussian regression."""
    from dropprior import metrics

    y = torch.cat([t for _, t in outputs])
    first = outputs[0][0]
    if isinstance(first, ClassificationPrediction):
        return metrics.classification_scores(torch.cat([p.probs for p, _ in outputs]), y)
    assert isinstance(first, RegressionPrediction)
    mean = torch.cat([p.mean for p, _ in outputs])
    out = {"rmse": float(metrics.rmse(mean, y))}
    if first.sample_stds is not None:
        out["log_likelihood"] = float(torch.cat([p.log_density(t) for p, t in outputs]).mean())
        means = torch.cat([p.sample_means for p, _ in outputs], dim=1)
        stds = torch.cat([p.sample_stds for p, _ in outputs], dim=1)  # type: ignore[misc]
        s = means.shape[0]  # CRPS per output entry, averaged
        out["crps"] = float(metrics.crps(means.reshape(s, -1), stds.reshape(s, -1),
                                         y.reshape(-1)).mean())
    return out
