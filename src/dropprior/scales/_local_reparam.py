r"""The local reparametrization (Kingma, Salimans & Welling, 2015) for variational linear maps.

With q(W) = N(μ_W, σ_W²) and q(b) = N(μ_b, σ_b²) mean-field, the output of one example x of a
linear map, y = x Wᵀ + b, is exactly Gaussian with mean x μ_Wᵀ + μ_b and variance
x² (σ_W²)ᵀ + σ_b², and its outputs are independent given x (they use disjoint rows of W). The
hook below draws y from that law for every example independently instead of drawing one W per
minibatch. Each example's output has the law it has under one weight draw, so the expected
log-likelihood — the ELBO — is the same; its minibatch estimate has less variance, since the
examples no longer share one draw.

It acts in training mode outside :func:`dropprior.nn.mc`, and in MC prediction with per-example
draws (:func:`dropprior.predict` with ``scope="example"`` and no seed, through
:func:`dropprior.nn.per_example_draws`): there too each input's output has exactly the law one
weight draw gives it, independently across inputs. Otherwise under ``mc`` (``scope="batch"`` or
``"function"``, or seeded draws) the weights are drawn whole, so that each MC sample stays one
network.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from dropprior.nn import NoisyLinear
from dropprior.scales._scale import GaussianTensor

__all__ = ["local_reparam_eligible", "register_local_reparam"]


def _gaussian(module: nn.Module, name: str) -> Any:
    if not parametrize.is_parametrized(module, name):
        return None
    plist = module.parametrizations[name]  # type: ignore[index,union-attr]
    found = [p for p in plist if isinstance(p, GaussianTensor)]
    return found[0] if found else None


def local_reparam_eligible(module: nn.Module) -> bool:
    """Whether ``module`` is a linear map whose weight is variational (a ``GaussianTensor``):
    ``nn.Linear``, or a ``NoisyLinear`` (whose noise :func:`variational` has switched off)."""
    return isinstance(module, (nn.Linear, NoisyLinear)) and _gaussian(module, "weight") is not None


def _hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
    weight = _gaussian(module, "weight")
    if weight is None or not weight.local_reparam_active():
        return output  # collapsed to its means, in eval mode, or inside mc
    x = args[0]
    var = F.linear(x.square(), weight.std().square().to(x.dtype))
    bias = _gaussian(module, "bias")
    if bias is not None:
        var = var + bias.std().square().to(x.dtype)
    eps = torch.randn(output.shape, dtype=output.dtype, device=output.device,
                      generator=weight.generator)
    # the clamp keeps the gradient finite for an all-zero input row without a bias
    return output + var.clamp_min(1e-30).sqrt() * eps


def register_local_reparam(module: nn.Module) -> None:
    """Make ``module``'s variational weight and bias return their means in training mode
    (outside ``mc``) and add the output noise of the local reparametrization (module docstring)
    instead."""
    for name in ("weight", "bias"):
        p = _gaussian(module, name)
        if p is not None:
            p.trains_by_local_reparam = True
    module.register_forward_hook(_hook)
