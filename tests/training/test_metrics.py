"""Metrics against hand-computed values and scikit-learn / numpy reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.metrics import accuracy_score, log_loss
from torch.testing import assert_close

from dropprior.metrics import (
    accuracy,
    adaptive_calibration_error,
    brier,
    expected_calibration_error,
    max_calibration_error,
    nll,
    reliability,
    rmse,
)
from dropprior.metrics import test_log_likelihood as mc_test_ll
from dropprior.plotting import reliability_diagram


def test_test_log_likelihood_hand_computed() -> None:
    # T = 2 draws, N = 2 points, τ = 2.
    samples = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0.0, 2.0], dtype=torch.float64)
    tau = 2.0
    const = -0.5 * math.log(2 * math.pi) + 0.5 * math.log(tau)
    # point 1: squared errors 0 and 1 → exponents 0 and −1; point 2: both 1 → −1, −1
    ll1 = math.log(math.exp(0.0) + math.exp(-1.0)) - math.log(2) + const
    ll2 = math.log(2 * math.exp(-1.0)) - math.log(2) + const
    assert float(mc_test_ll(samples, y, tau)) == pytest.approx((ll1 + ll2) / 2, abs=1e-12)


def test_test_log_likelihood_matches_gal_numpy_formula() -> None:
    rng = np.random.default_rng(0)
    yt_hat = rng.normal(size=(50, 20))
    y = rng.normal(size=20)
    tau = 3.7
    # Gal & Ghahramani's experiment code, verbatim up to variable names
    ll = (logsumexp(-0.5 * tau * (y[None] - yt_hat) ** 2.0, 0) - np.log(50)
          - 0.5 * np.log(2 * np.pi) + 0.5 * np.log(tau))
    ours = mc_test_ll(torch.from_numpy(yt_hat), torch.from_numpy(y), tau)
    assert float(ours) == pytest.approx(float(np.mean(ll)), rel=1e-12)
    # far-off predictions: no underflow
    far = mc_test_ll(torch.from_numpy(yt_hat) + 1e3, torch.from_numpy(y), tau)
    assert math.isfinite(float(far))


def test_rmse_and_classification_metrics_match_references() -> None:
    g = torch.Generator().manual_seed(0)
    pred, y = torch.randn(30, generator=g, dtype=torch.float64), torch.randn(30, generator=g,
                                                                             dtype=torch.float64)
    assert float(rmse(pred, y)) == pytest.approx(float(np.sqrt(np.mean((pred - y).numpy() ** 2))))
    probs = torch.softmax(torch.randn(40, 3, generator=g, dtype=torch.float64), dim=1)
    labels = torch.randint(0, 3, (40,), generator=g)
    assert float(accuracy(probs, labels)) == pytest.approx(
        accuracy_score(labels.numpy(), probs.argmax(1).numpy()))
    assert float(nll(probs, labels)) == pytest.approx(
        log_loss(labels.numpy(), probs.numpy(), labels=[0, 1, 2]))
    onehot = np.eye(3)[labels.numpy()]
    assert float(brier(probs, labels)) == pytest.approx(
        float(np.mean(np.sum((probs.numpy() - onehot) ** 2, axis=1))))


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_labels_of_any_integer_dtype_give_the_long_labels_metrics(dtype) -> None:
    """Every classification metric, given labels of another integer dtype, returns what it
    returns for the same labels as torch.long (Brier's one-hot wants a long index)."""
    g = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(25, 4, generator=g, dtype=torch.float64), dim=1)
    labels = torch.randint(0, 4, (25,), generator=g)
    for metric in (accuracy, nll, brier, expected_calibration_error,
                   adaptive_calibration_error, max_calibration_error):
        assert_close(metric(probs, labels.to(dtype)), metric(probs, labels))
    onehot = np.eye(4)[labels.numpy()]
    assert float(brier(probs, labels.to(dtype))) == pytest.approx(
        float(np.mean(np.sum((probs.numpy() - onehot) ** 2, axis=1))))


def test_ece_hand_computed_and_diagram(tmp_path) -> None:
    probs = torch.tensor([[0.85, 0.15], [0.25, 0.75], [0.65, 0.35], [0.05, 0.95]],
                         dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])  # correct, wrong, correct, correct
    ece = (abs(1 - 0.85) + abs(0 - 0.75) + abs(1 - 0.65) + abs(1 - 0.95)) / 4
    assert float(expected_calibration_error(probs, labels, n_bins=10)) == pytest.approx(ece)
    rel = reliability(probs, labels, n_bins=10)
    assert int(rel.counts.sum()) == 4
    assert_close(rel.confidence[8], torch.tensor(0.85, dtype=torch.float64))
    assert bool(torch.isnan(rel.accuracy[0]))
    path = tmp_path / "rel.png"
    reliability_diagram(rel, path=path)
    assert path.stat().st_size > 1000


def test_metric_bad_inputs() -> None:
    probs = torch.full((3, 2), 0.5)
    with pytest.raises(TypeError, match="labels y must be integers"):
        accuracy(probs, torch.zeros(3))
    with pytest.raises(ValueError, match=r"labels y of shape \(3, 1\) must have shape \(3,\)"):
        nll(probs, torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="probabilities"):
        brier(torch.ones(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="must match"):
        rmse(torch.zeros(3), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="tau must be a finite scalar > 0"):
        mc_test_ll(torch.zeros(2, 3), torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match=r"pred_samples must have shape \(T, N"):
        mc_test_ll(torch.zeros(3), torch.zeros(3), 1.0)
