"""The UCI runner's batched network against the library's own path: network g of a grid, trained
by ``train_batched`` and predicted by ``predict_batched``, equals ``BatchedMLP.network(g)`` (a
Sequential of NoisyLinear maps with g's initial weights, law and generator) trained by
``dropprior.fit`` and predicted by ``dropprior.predict`` with the same seed and draws."""

from __future__ import annotations

import math

import pytest
import torch

from dropprior import fit, metrics, predict
from dropprior.experiments.batched_mlp import (
    BatchedMLP,
    network_seed,
    predict_batched,
    score_batched,
    train_batched,
)
from dropprior.likelihoods import Gaussian
from dropprior.noise import Bernoulli, Rayleigh

SEED = 7


@pytest.mark.parametrize("objective, samples", [("mc", 1), ("marginal", 3)])
def test_every_grid_cell_equals_fit_and_predict_of_its_network(objective, samples) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 * torch.randn(40, generator=gen)
    x_test = torch.randn(9, 3, generator=gen)
    laws = [Bernoulli(0.9, inverted=True), Bernoulli(0.7, inverted=True), Rayleigh(1.0)]
    precision = torch.tensor([2.0, 5.0, 1.0])
    decay = torch.tensor([1e-2, 1e-3, 5e-2])
    common = dict(hidden=(6,), epochs=3, batch_size=16, lr=1e-2, objective=objective,
                  samples=samples)
    batched = train_batched(x, y, laws, precision, decay, seed=SEED, **common)
    draws = torch.cat(list(predict_batched(batched, x_test, samples=20)), dim=1)  # (G, T, N)
    initial = BatchedMLP(3, 3, (6,), laws, "unit",
                         [torch.Generator().manual_seed(network_seed(SEED, g)) for g in range(3)],
                         [torch.Generator().manual_seed(network_seed(SEED, g, "init"))
                          for g in range(3)])
    for g in range(3):
        net = initial.network(g)
        tau = float(precision[g])
        sigma0 = math.sqrt(1.0 / (40 * tau * float(decay[g])))
        fit(net, Gaussian(noise_std=tau**-0.5), x, y[:, None], objective=objective,
            samples=samples, sigma0=sigma0, lr=1e-2, epochs=3, batch_size=16, seed=SEED,
            progress=False)
        for k, layer in enumerate(batched.layers):
            torch.testing.assert_close(layer.weight[g], net[2 * k].weight, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(layer.bias[g], net[2 * k].bias, rtol=1e-4, atol=1e-5)
        reference = predict(net, x_test, samples=20, likelihood=None).sample_means[..., 0]
        torch.testing.assert_close(draws[g], reference, rtol=1e-4, atol=1e-5)
    # the scores are the metrics' on those draws (original units: mean 1, std 2, τ / 4)
    scores = score_batched([draws], y[:9] * 2 + 1, torch.tensor(1.0), torch.tensor(2.0),
                           precision / 4)
    for g in range(3):
        pred = draws[g].double() * 2 + 1
        target = (y[:9] * 2 + 1).double()
        torch.testing.assert_close(scores.rmse[g], metrics.rmse(pred.mean(0), target))
        torch.testing.assert_close(scores.log_likelihood[g],
                                   metrics.test_log_likelihood(pred, target,
                                                               float(precision[g]) / 4))


def test_the_networks_draw_differently_and_the_grid_does_not_couple_them() -> None:
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(1))
    y = x.sum(dim=1)
    law = Bernoulli(0.8, inverted=True)
    three = train_batched(x, y, [law] * 3, torch.ones(3), torch.full((3,), 1e-3), hidden=(4,),
                          epochs=2, seed=0)
    one = train_batched(x, y, [law], torch.ones(1), torch.full((1,), 1e-3), hidden=(4,),
                        epochs=2, seed=0)
    # network 0 of the grid is network 0 alone: same init, shuffles and noise generator
    torch.testing.assert_close(three.layers[0].weight[0], one.layers[0].weight[0])
    # networks 0 and 1 share law and init law but not their draws
    draws = torch.cat(list(predict_batched(three, x, samples=50)), dim=1)
    assert not torch.allclose(draws[0], draws[1])
