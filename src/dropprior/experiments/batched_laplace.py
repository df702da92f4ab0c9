"""The last-layer Laplace predictive of every network of a :class:`BatchedMLP`.

The UCI protocol's Laplace baseline (:mod:`dropprior.experiments.uci`, ``--law none --objective
laplace``): each network, trained without noise, gets the post-hoc last-layer Laplace posterior
of :func:`dropprior.fit_last_layer_laplace` under its own homoscedastic Gaussian likelihood, with
its prior precision chosen by the marginal likelihood, and its predictive is returned as draws of
the linearised outputs, in the layout :func:`~dropprior.experiments.batched_mlp.score_batched`
scores MC-dropout draws in.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dropprior.experiments.batched_mlp import BatchedMLP, network_seed
from dropprior.last_layer_laplace import LastLayerLaplace, fit_last_layer_laplace
from dropprior.likelihoods import Gaussian
from dropprior.nn import NoisyLinear

__all__ = ["laplace_networks", "laplace_draws"]


def laplace_networks(model: BatchedMLP, x_train: Tensor, y_train: Tensor,
                     noise_std: Tensor) -> list[LastLayerLaplace]:
    """Network g's last-layer Laplace posterior on its own training rows (x_train[g],
    y_train[g]) under ``Gaussian(noise_std=noise_std[g])``, its prior precision chosen by the
    marginal likelihood.

    The network is :meth:`BatchedMLP.network` with its last layer copied into an ``nn.Linear``;
    the earlier layers run in eval mode, so they give the features only for networks whose noise
    has mean 1 in every unit (the deterministic networks of the baseline do).

    Shape:
        x_train: (G, N, D); y_train: (G, N); noise_std: (G,).
    """
    n_networks = model.layers[0].n_networks
    if x_train.shape[0] != n_networks or y_train.shape != x_train.shape[:2] \
            or noise_std.shape != (n_networks,):
        raise ValueError(f"laplace_networks needs x_train ({n_networks}, N, D), y_train "
                         f"({n_networks}, N) and noise_std ({n_networks},), got "
                         f"{tuple(x_train.shape)}, {tuple(y_train.shape)} and "
                         f"{tuple(noise_std.shape)}")
    posteriors = []
    for g in range(n_networks):
        *body, noisy = model.network(g)
        assert isinstance(noisy, NoisyLinear)
        last = nn.Linear(noisy.in_features, noisy.out_features, dtype=noisy.weight.dtype)
        with torch.no_grad():
            last.weight.copy_(noisy.weight)
            last.bias.copy_(noisy.bias)  # type: ignore[arg-type]  # the stack always has biases
        posteriors.append(fit_last_layer_laplace(
            nn.Sequential(*body, last), x_train[g], y_train[g][:, None],
            likelihood=Gaussian(noise_std=float(noise_std[g]))))
    return posteriors


def laplace_draws(posteriors: list[LastLayerLaplace], x_eval: Tensor, *, samples: int,
                  seed: int) -> Tensor:
    """``samples`` draws of each posterior's linearised output at its own rows x_eval[g]
    (:meth:`LastLayerLaplace.predict`), network g's drawn by a generator seeded with
    :func:`~dropprior.experiments.batched_mlp.network_seed` (seed, g).

    Shape:
        x_eval: (G, M, D) → (G, samples, M).
    """
    if x_eval.shape[0] != len(posteriors):
        raise ValueError(f"x_eval must hold one block of rows per posterior ({len(posteriors)}),"
                         f" got shape {tuple(x_eval.shape)}")
    draws = []
    for g, posterior in enumerate(posteriors):
        generator = torch.Generator().manual_seed(network_seed(seed, g))
        prediction = posterior.predict(x_eval[g], samples=samples, generator=generator)
        draws.append(prediction.sample_means[..., 0])  # type: ignore[union-attr]
    return torch.stack(draws)
