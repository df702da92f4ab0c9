r"""Point and calibration metrics for regression and classification.

Regression:

* :func:`rmse` — :math:`\sqrt{\frac1N\sum_n \|y_n-\hat y_n\|^2/D}`;
* :func:`test_log_likelihood` — the MC-dropout papers' (Gal & Ghahramani 2016) predictive
  log-likelihood, exactly:

  .. math:: \frac1N\sum_n\Big[\operatorname{logsumexp}_{t}
            \big(-\tfrac\tau2\|y_n-\hat y_{nt}\|^2\big)
            - \log T - \tfrac D2\log 2\pi + \tfrac D2\log\tau\Big]

  the log of the mixture :math:`\frac1T\sum_t\mathcal N(y_n;\hat y_{nt},\tau^{-1}I)`, averaged over
  test points.

Classification (on predicted probabilities, shape (N, C)):

* :func:`accuracy`, :func:`nll` (:math:`-\frac1N\sum_n\log p_{n,y_n}`), :func:`brier`
  (:math:`\frac1N\sum_n\sum_c(p_{nc}-[y_n=c])^2`);
* :func:`expected_calibration_error` — :math:`\sum_b \frac{|B_b|}N|\mathrm{acc}(B_b)-
  \mathrm{conf}(B_b)|` over equal-width confidence bins, and :func:`reliability` for the diagram
  (drawn by :func:`dropprior.plotting.reliability_diagram`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dropprior._validation import check_int, class_labels

__all__ = [
    "rmse",
    "test_log_likelihood",
    "accuracy",
    "nll",
    "brier",
    "expected_calibration_error",
    "adaptive_calibration_error",
    "max_calibration_error",
    "reliability",
    "Reliability",
    "classification_scores",
]


def _as_tensor(name: str, value: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _check_regression(pred: Tensor, y: Tensor) -> None:
    _as_tensor("prediction", pred)
    _as_tensor("y", y)
    if not (pred.is_floating_point() and y.is_floating_point()):
        raise TypeError(f"regression metrics need floating tensors, got {pred.dtype} and {y.dtype}")
    if pred.shape != y.shape:
        raise ValueError(
            f"prediction of shape {tuple(pred.shape)} and y of shape {tuple(y.shape)} must match"
        )
    if y.numel() == 0:
        raise ValueError("metrics need at least one example, got an empty y")


def rmse(pred_mean: Tensor, y: Tensor) -> Tensor:
    r"""Root mean squared error :math:`\sqrt{\operatorname{mean}((y-\hat y)^2)}` over all entries.

    Shape:
        pred_mean, y: (N,) or (N, D); result: scalar.
    """
    _check_regression(pred_mean, y)
    return torch.sqrt(((y - pred_mean) ** 2).mean())


def test_log_likelihood(pred_samples: Tensor, y: Tensor, tau: float | Tensor) -> Tensor:
    r"""The MC-dropout test log-likelihood (log-mean-exp over T predictive samples), exactly.

    For each test point the log density of the equally weighted mixture of T Gaussians
    N(ŷ_t, τ⁻¹ I) at y, then averaged over points (module docstring). Matches Gal's
    ``logsumexp(-0.5*tau*(y - Yt_hat)**2, 0) - log T - 0.5 log 2π + 0.5 log τ`` for D = 1.
    Pass predictions and targets in the same (original) units and τ in those units.

    Args:
        pred_samples: network outputs for T noise draws.
        y: targets.
        tau: the observation precision τ > 0 (a scalar).

    Shape:
        pred_samples: (T, N) or (T, N, D); y: (N,) or (N, D); result: scalar.
    """
    _as_tensor("pred_samples", pred_samples)
    if pred_samples.dim() < 2:
        raise ValueError(
            f"pred_samples must have shape (T, N[, D]) (T samples first), got "
            f"{tuple(pred_samples.shape)}"
        )
    _check_regression(pred_samples[0], y)
    tau_t = torch.as_tensor(tau, dtype=pred_samples.dtype)
    if tau_t.numel() != 1 or not bool(torch.isfinite(tau_t) & (tau_t > 0)):
        raise ValueError(f"tau must be a finite scalar > 0, got {tau!r}")
    t = pred_samples.shape[0]
    sq = ((y.unsqueeze(0) - pred_samples) ** 2).reshape(t, y.shape[0], -1)
    d = sq.shape[-1]
    log_mix = torch.logsumexp(-0.5 * tau_t * sq.sum(dim=-1), dim=0) - math.log(t)
    per_point = log_mix - 0.5 * d * math.log(2 * math.pi) + 0.5 * d * torch.log(tau_t)
    return per_point.mean()


def _check_classification(probs: Tensor, y: Tensor) -> Tensor:
    """``y`` as torch.long after checking ``probs`` (rows of probabilities) and ``y`` (one label
    in [0, C − 1] per row)."""
    _as_tensor("probs", probs)
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, C), got {tuple(probs.shape)}")
    y = class_labels(y, tuple(probs.shape[:1]), probs.shape[1])
    if y.numel() == 0:
        raise ValueError("metrics need at least one example, got an empty y")
    if bool(torch.any(probs < 0)) or not bool(
        torch.allclose(probs.sum(dim=1), torch.ones((), dtype=probs.dtype), atol=1e-4)
    ):
        raise ValueError("probs must be probabilities: non-negative rows summing to 1 "
                         "(apply softmax to logits first)")
    return y


def accuracy(probs: Tensor, y: Tensor) -> Tensor:
    """Fraction of examples whose most probable class is the label.

    Shape:
        probs: (N, C); y: (N,) integer; result: scalar.
    """
    y = _check_classification(probs, y)
    return (probs.argmax(dim=1) == y).to(probs.dtype).mean()


def nll(probs: Tensor, y: Tensor) -> Tensor:
    r"""Mean negative log predictive probability :math:`-\frac1N\sum_n \log p_{n,y_n}` (inf if 0).

    Shape:
        probs: (N, C); y: (N,) integer; result: scalar.
    """
    y = _check_classification(probs, y)
    return -torch.log(probs.gather(1, y.unsqueeze(1))).mean()


def brier(probs: Tensor, y: Tensor) -> Tensor:
    r"""Brier score :math:`\frac1N\sum_n\sum_c (p_{nc} - [y_n = c])^2` (0 is perfect, 2 worst).

    Shape:
        probs: (N, C); y: (N,) integer; result: scalar.
    """
    y = _check_classification(probs, y)
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(dim=1).mean()


@dataclass(frozen=True)
class Reliability:
    """Per-bin statistics of a reliability diagram (equal-width confidence bins on [0, 1]).

    Attributes:
        edges: bin edges, shape (B + 1,).
        confidence: mean confidence per bin (nan for an empty bin), shape (B,).
        accuracy: accuracy per bin (nan for an empty bin), shape (B,).
        counts: examples per bin, shape (B,).
        ece: the expected calibration error.
    """

    edges: Tensor
    confidence: Tensor
    accuracy: Tensor
    counts: Tensor
    ece: float


def reliability(probs: Tensor, y: Tensor, n_bins: int = 15) -> Reliability:
    """Bin the top-class confidence into ``n_bins`` equal-width bins;
    accuracy and confidence per bin.

    Shape:
        probs: (N, C); y: (N,) integer.
    """
    y = _check_classification(probs, y)
    check_int("n_bins", n_bins, 1)
    conf, pred = probs.max(dim=1)
    correct = (pred == y).to(probs.dtype)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=probs.dtype)
    # bin b holds confidences in (edges[b], edges[b+1]]; confidence 0 cannot occur for C >= 1.
    index = torch.clamp(torch.bucketize(conf, edges[1:-1], right=False), 0, n_bins - 1)
    counts = torch.bincount(index, minlength=n_bins).to(probs.dtype)
    conf_sum = torch.zeros(n_bins, dtype=probs.dtype).index_add_(0, index, conf)
    acc_sum = torch.zeros(n_bins, dtype=probs.dtype).index_add_(0, index, correct)
    nonempty = counts > 0
    nan = torch.full_like(counts, math.nan)
    mean_conf = torch.where(nonempty, conf_sum / counts.clamp_min(1), nan)
    mean_acc = torch.where(nonempty, acc_sum / counts.clamp_min(1), nan)
    ece = float(((conf_sum - acc_sum).abs()).sum() / probs.shape[0])
    return Reliability(edges, mean_conf, mean_acc, counts.long(), ece)


def expected_calibration_error(probs: Tensor, y: Tensor, n_bins: int = 15) -> Tensor:
    r"""ECE :math:`\sum_b \frac{|B_b|}{N}|\mathrm{acc}(B_b)-\mathrm{conf}(B_b)|`
    over equal-width bins.

    Shape:
        probs: (N, C); y: (N,) integer; result: scalar.
    """
    return torch.tensor(reliability(probs, y, n_bins).ece, dtype=probs.dtype)


def max_calibration_error(probs: Tensor, y: Tensor, n_bins: int = 15) -> Tensor:
    """MCE: the largest |acc(B_b) − conf(B_b)| over the non-empty equal-width bins.

    Shape:
        probs: (N, C); y: (N,) integer; result: scalar.
    """
    rel = reliability(probs, y, n_bins)
    gaps = (rel.accuracy - rel.confidence).abs()
    return gaps[rel.counts > 0].max()


def adaptive_calibration_error(probs: Tensor, y: Tensor, n_bins: int = 15) -> Tensor:
    r"""Adaptive ECE: the ECE over ``n_bins`` bins of (near) equal counts of the top-class
    confidence, sorted (the first N mod B bins hold one more), so sparse confidence regions get
    bins of their own (Nixon et al., 2019).

    Shape:
        probs: (N, C); y: (N,) integer; result: scalar.
    """
    y = _check_classification(probs, y)
    check_int("n_bins", n_bins, 1)
    conf, pred = probs.max(dim=1)
    order = torch.argsort(conf, stable=True)
    gaps = (conf - (pred == y).to(probs.dtype))[order]
    total = torch.zeros((), dtype=probs.dtype)
    for part in torch.tensor_split(gaps, min(n_bins, gaps.numel())):
        total = total + part.sum().abs()
    return total / probs.shape[0]


def classification_scores(probs: Tensor, y: Tensor) -> dict[str, float]:
    """The usual table of a classifier's predictive: ``accuracy``, ``nll``, ``brier`` and
    ``ece`` (:func:`expected_calibration_error`, 15 bins), as floats.

    Shape:
        probs: (N, C); y: (N,).
    """
    return {"accuracy": float(accuracy(probs, y)), "nll": float(nll(probs, y)),
            "brier": float(brier(probs, y)),
            "ece": float(expected_calibration_error(probs, y))}
