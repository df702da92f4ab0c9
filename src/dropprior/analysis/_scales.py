"""The noise scales of a model as a differentiable input, for Prop. 4.1's derivatives at μ_ξ.

Prop. 4.1 differentiates log p(y | X, W, Ξ) with respect to the scales at Ξ = E[Ξ]. For a
``structure="unit"`` :class:`~dropprior.nn.NoisyLinear` the scales multiply the layer's input
features (h Ξ W), so they can be fed in from outside: the layer's law is swapped for the
point mass at 1 (``Bernoulli(keep=1)``), the model runs in eval mode, and a forward pre-hook
multiplies the layer's input by a tensor ξ that autograd can differentiate. Everything is restored
on exit. Other structures raise a clear error (their MC gap is still available).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dropprior.likelihoods import Likelihood
from dropprior.noise import Bernoulli
from dropprior.objectives import model_output

if TYPE_CHECKING:
    from dropprior.nn import NoisyLinear, NoisyModule

__all__ = ["noisy_layers", "noise_moments", "model_log_likelihood_at"]


def noisy_layers(model: nn.Module) -> list[NoisyModule]:
    """The dropprior noisy layers of ``model``, in ``model.modules()`` order."""
    from dropprior.nn import NoisyModule

    return [m for m in model.modules() if isinstance(m, NoisyModule)]


def _series_layers(model: nn.Module) -> list[NoisyLinear]:
    from dropprior.nn import NoisyLinear

    layers = noisy_layers(model)
    if not layers:
        raise ValueError("model has no dropprior noisy layers (dropprior.nn.NoisyModule); "
                         "there is no noise whose Jensen gap could be computed")
    for layer in layers:
        if not isinstance(layer, NoisyLinear) or layer.structure != "unit":
            raise ValueError(
                "Prop. 4.1's series is implemented for NoisyLinear layers with structure='unit' "
                f"(noise on input features); got {type(layer).__name__} with structure="
                f"{getattr(layer, 'structure', None)!r}. Use series=False for the MC gap alone"
            )
    return [layer for layer in layers if isinstance(layer, NoisyLinear)]


def noise_moments(model: nn.Module, x: Tensor, joint: bool = False) -> tuple[Tensor, Tensor]:
    """E[ξ] and Var[ξ] of every noise coordinate, one row per example (or one row if ``joint``).

    Shape:
        x: (N, ...); results: (P, G), P = N (or 1), G = Σ in_features over noisy layers.
    """
    layers = _series_layers(model)
    rows = 1 if joint else x.shape[0]
    means, variances = [], []
    for layer in layers:
        g = layer.in_features
        means.append(layer.noise.mean.to(torch.float64).expand(rows, g))
        variances.append(layer.noise.variance.to(torch.float64).expand(rows, g))
    return torch.cat(means, dim=1), torch.cat(variances, dim=1)


@contextmanager
def _scales_as_input(model: nn.Module, xi: Tensor, joint: bool) -> Iterator[None]:
    layers = _series_layers(model)
    saved_laws = [layer.noise for layer in layers]
    modes = [m.training for m in model.modules()]
    handles = []
    start = 0
    for layer in layers:
        g = layer.in_features
        block = xi[:, start:start + g]
        start += g

        def hook(module: nn.Module, args: tuple[Tensor, ...], block: Tensor = block
                 ) -> tuple[Tensor, ...]:
            (h, *rest) = args
            scale = block.to(h.dtype)
            if not joint and h.dim() > 2:  # (N, ..., in): one row of scales per example
                scale = scale.reshape(scale.shape[0], *([1] * (h.dim() - 2)), scale.shape[1])
            return (h * scale, *rest)

        handles.append(layer.register_forward_pre_hook(hook))
        layer.noise = Bernoulli(torch.ones((), dtype=torch.float64))
    model.eval()
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for layer, law in zip(layers, saved_laws, strict=True):
            layer.noise = law
        for module, mode in zip(model.modules(), modes, strict=True):
            module.training = mode


def model_log_likelihood_at(model: nn.Module, x: Tensor, y: Tensor, likelihood: Likelihood,
                            joint: bool = False) -> Callable[[Tensor], Tensor]:
    """ξ ↦ log p(y | x, W, ξ) per example (or the batch total, shape (1,), if ``joint``).

    Shape:
        ξ: (P, G) as :func:`noise_moments`; result: (P,).
    """

    def log_likelihood(xi: Tensor) -> Tensor:
        with _scales_as_input(model, xi, joint):
            out = model_output(model, x)
        logp = likelihood.log_prob(out, y)
        return logp.sum().reshape(1) if joint else logp

    return log_likelihood
