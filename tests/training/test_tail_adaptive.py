"""The tail-adaptive objective: rank weights against scipy's ranks, its gradient against the
γ-weighted sum of per-draw gradients, and a fit that trains with it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn
from torch.testing import assert_close

from dropprior import fit
from dropprior.likelihoods import Gaussian as GaussianLikelihood
from dropprior.nn import NoisyLinear
from dropprior.noise import Gaussian, Rayleigh
from dropprior.objectives import (
    log_likelihood_samples,
    mc_log_likelihood,
    tail_adaptive_log_likelihood,
    tail_adaptive_weights,
)

f64 = torch.float64


def test_weights_are_inverse_ranks_normalised() -> None:
    logp = torch.randn(7, 5, dtype=f64, generator=torch.Generator().manual_seed(0))
    got = tail_adaptive_weights(logp).numpy()
    for n in range(5):
        ranks = scipy.stats.rankdata(-logp[:, n].numpy(), method="ordinal")
        expected = (1 / ranks) / np.sum(1 / np.arange(1, 8))
        np.testing.assert_allclose(got[:, n], expected, rtol=1e-12)


def test_ties_keep_the_draw_order_and_one_draw_has_weight_one() -> None:
    w = tail_adaptive_weights(torch.tensor([[1.0], [1.0], [0.0]], dtype=f64))
    h = 1 + 1 / 2 + 1 / 3
    assert_close(w.reshape(-1), torch.tensor([1.0, 0.5, 1 / 3], dtype=f64) / h)
    assert_close(tail_adaptive_weights(torch.tensor([[-3.0, 2.0]])), torch.ones(1, 2))


def test_bad_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"logp must have shape \(S, N, ...\), got \(3,\)"):
        tail_adaptive_weights(torch.zeros(3))


def test_weights_of_a_batch_of_columns_are_each_columns_weights() -> None:
    logp = torch.randn(6, 3, 4, dtype=torch.float64)
    got = tail_adaptive_weights(logp)
    for j in range(3):
        torch.testing.assert_close(got[:, j], tail_adaptive_weights(logp[:, j]))


def _layer(seed: int) -> NoisyLinear:
    torch.manual_seed(3)
    return NoisyLinear(4, 1, Rayleigh(1.0), generator=torch.Generator().manual_seed(seed)).double()


def test_gradient_is_the_weighted_sum_of_per_draw_gradients() -> None:
    x = torch.randn(6, 4, dtype=f64)
    y = torch.randn(6, 1, dtype=f64)
    lik = GaussianLikelihood(0.5)
    layer = _layer(11)
    obj = tail_adaptive_log_likelihood(layer, x, y, lik, samples=5).sum()
    (grad,) = torch.autograd.grad(obj, layer.weight)
    replay = _layer(11)  # the same draws, differentiated one draw at a time
    logp = log_likelihood_samples(replay, x, y, lik, samples=5)
    ranks = np.stack([scipy.stats.rankdata(-logp[:, n].detach().numpy(), method="ordinal")
                      for n in range(6)], axis=1)
    gamma = torch.as_tensor((1 / ranks) / np.sum(1 / np.arange(1, 6)))
    expected = torch.zeros_like(grad)
    for s in range(5):
        for n in range(6):
            (g,) = torch.autograd.grad(logp[s, n], replay.weight, retain_graph=True)
            expected += gamma[s, n] * g
    assert_close(grad, expected)


def test_one_draw_is_the_mc_objective() -> None:
    x = torch.randn(6, 4, dtype=f64)
    y = torch.randn(6, 1, dtype=f64)
    lik = GaussianLikelihood(0.5)
    assert_close(tail_adaptive_log_likelihood(_layer(2), x, y, lik, samples=1),
                 mc_log_likelihood(_layer(2), x, y, lik, samples=1))


def test_fit_trains_with_the_tail_adaptive_objective() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    y = (x @ torch.tensor([1.0, -2.0, 0.5])).unsqueeze(1) + 0.1 * torch.randn(200, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(NoisyLinear(3, 16, Gaussian(1.0, 0.3)), nn.ReLU(), nn.Linear(16, 1))
    history = fit(model, GaussianLikelihood(0.1), x, y, objective="tail_adaptive", samples=4,
                  epochs=60, lr=1e-2, batch_size=50, progress=False)
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
