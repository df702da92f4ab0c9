"""Network-level inclusion probabilities: exact enumeration against a hand-written one, Gibbs
against exact enumeration on a network of 10 Bernoulli groups, and bad input."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dropprior.inference import inclusion_probabilities
from dropprior.likelihoods import Gaussian as GaussianLikelihood
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, Rayleigh

f64 = torch.float64


def _data(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g, dtype=f64)
    y = x[:, :2] @ torch.tensor([1.0, -0.6], dtype=f64) + 0.5 * torch.randn(n, generator=g,
                                                                           dtype=f64)
    return x, y.unsqueeze(1)


def test_exact_matches_a_hand_written_enumeration() -> None:
    x, y = _data()
    torch.manual_seed(0)
    layer = NoisyLinear(6, 1, Bernoulli(0.7, inverted=True)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.9, -0.5, 0.1, 0.05, -0.2, 0.3]], dtype=f64))
    got = inclusion_probabilities(layer, x, y, GaussianLikelihood(0.5), method="exact")
    w, b = layer.weight.detach()[0], layer.bias.detach()
    logps, configs = [], []
    for c in itertools.product([0.0, 1.0], repeat=6):
        c = torch.tensor(c, dtype=f64)
        pred = x @ (w * c / 0.7) + b
        loglik = torch.distributions.Normal(pred, 0.5).log_prob(y[:, 0]).sum()
        prior = float(c.sum()) * math.log(0.7) + float(6 - c.sum()) * math.log(0.3)
        logps.append(float(loglik) + prior)
        configs.append(c)
    weights = torch.softmax(torch.tensor(logps, dtype=f64), 0)
    expected = (weights[:, None] * torch.stack(configs)).sum(0)
    assert_close(got.probabilities["<root>:unit"].reshape(-1), expected)


def test_gibbs_agrees_with_exact_enumeration_on_ten_groups() -> None:
    x, y = _data(15)  # few points and a broad likelihood: a posterior with real uncertainty
    torch.manual_seed(3)
    model = nn.Sequential(NoisyLinear(6, 4, Bernoulli(0.6, inverted=True)), nn.Tanh(),
                          NoisyLinear(4, 1, Bernoulli(0.8))).double()  # 6 + 4 groups
    lik = GaussianLikelihood(1.0)
    exact = inclusion_probabilities(model, x, y, lik, method="exact").probabilities
    gibbs = inclusion_probabilities(model, x, y, lik, sweeps=1500, burn_in=50,
                                    generator=torch.Generator().manual_seed(0)).probabilities
    assert set(exact) == {"0:unit", "2:unit"}
    e = torch.cat([exact["0:unit"].reshape(-1), exact["2:unit"].reshape(-1)])
    g = torch.cat([gibbs["0:unit"].reshape(-1), gibbs["2:unit"].reshape(-1)])
    assert ((e > 0.2) & (e < 0.8)).sum() >= 5
    assert_close(g, e, atol=0.04, rtol=0)


def test_bad_input() -> None:
    x, y = _data()
    rayleigh = NoisyLinear(6, 1, Rayleigh(1.0)).double()
    with pytest.raises(ValueError, match="needs groups with Bernoulli noise"):
        inclusion_probabilities(rayleigh, x, y, GaussianLikelihood(0.5))
    big = NoisyLinear(21, 1, Bernoulli(0.5)).double()
    with pytest.raises(ValueError, match="G <= 20 groups; this model has 21"):
        inclusion_probabilities(big, torch.zeros(3, 21, dtype=f64), torch.zeros(3, 1, dtype=f64),
                                GaussianLikelihood(0.5), method="exact")
    with pytest.raises(ValueError, match="sweeps must be an int >= 1, got 0"):
        inclusion_probabilities(rayleigh, x, y, GaussianLikelihood(0.5), sweeps=0)
    # nan targets gave nan probabilities; a missing likelihood failed on None.log_prob
    bernoulli = NoisyLinear(6, 1, Bernoulli(0.5)).double()
    bad = y.clone()
    bad[2] = float("nan")
    with pytest.raises(ValueError, match=r"y holds 1 non-finite value\(s\) .* example 2"):
        inclusion_probabilities(bernoulli, x, bad, GaussianLikelihood(0.5), sweeps=2)
    with pytest.raises(TypeError, match="likelihood must be a dropprior Likelihood, got NoneType"):
        inclusion_probabilities(bernoulli, x, y, None, sweeps=2)
