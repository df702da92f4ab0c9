"""A law with one positive scale s: ξ = s·U, where U is the standard law's draw (s = 1).

Rayleigh and half-Cauchy noise are such laws. They share the constructor, the support ξ ≥ 0 and
the sampling: ``sample`` and ``rsample`` multiply one standard draw by s, so that the pathwise
gradient is ∂ξ/∂s = ξ/s. Each law supplies its standard draw ``_unit`` and its moments.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints

from dropprior._validation import as_param, check_positive
from dropprior.noise._base import NoiseLaw, SampleShape

__all__ = ["ScaleFamily"]


class ScaleFamily(NoiseLaw):
    """Abstract base of a law ξ = s·U ≥ 0 with one positive ``scale`` s; subclasses implement
    ``_unit`` (a fresh tensor of standard draws U, of the extended sample shape)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale: float | Tensor, validate_args: bool | None = None) -> None:
        self.scale = as_param(scale)
        if validate_args is not False:
            check_positive("scale", self.scale)
        super().__init__(self.scale.shape, validate_args=False)

    def _unit(self, sample_shape: SampleShape, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        """ξ = s·U without gradient (U scaled in place)."""
        with torch.no_grad():
            return self._unit(sample_shape, generator).mul_(self.scale)

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        """ξ = s·U: pathwise gradient ∂ξ/∂s = ξ/s."""
        return self.scale * self._unit(sample_shape, generator)
