"""A two-point law on {0, c}: the variance prior ξ² of (inverted) Bernoulli noise.

``TransformedDistribution(Bernoulli, AffineTransform(0, c))`` would subtract log c from a
probability mass, which is wrong for a discrete law; this class keeps masses as masses:

.. math:: P(X = c) = \\pi,\\qquad P(X = 0) = 1 - \\pi.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from dropprior.noise._base import SampleShape, sample_size

__all__ = ["ScaledBernoulli"]


class ScaledBernoulli(Distribution):
    r"""X = c·B with B ~ Bernoulli(π): mass π at c > 0 and 1 − π at 0.

    Args:
        probs: π ∈ (0, 1], the probability of the value c.
        value: c > 0, the non-zero value.

    Shape:
        ``batch_shape`` is the broadcast shape of ``probs`` and ``value``.
    """

    arg_constraints = {"probs": constraints.unit_interval, "value": constraints.positive}
    support = constraints.nonnegative
    has_enumerate_support = False

    def __init__(self, probs: Tensor, value: Tensor, validate_args: bool | None = None) -> None:
        self.probs, self.value = torch.broadcast_tensors(probs, value)
        super().__init__(self.probs.shape, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.probs * self.value

    @property
    def variance(self) -> Tensor:
        return self.value.square() * self.probs * (1 - self.probs)

    def log_prob(self, value: Tensor) -> Tensor:
        """log P(X = value): log π at c, log(1 − π) at 0, −inf elsewhere. A value within a few
        ulps of c counts as c, so (1/π)² computed two ways is still recognised."""
        value = torch.as_tensor(value, dtype=self.probs.dtype, device=self.probs.device)
        eps = torch.finfo(self.probs.dtype).eps
        at_value = torch.isclose(value, self.value, rtol=8 * eps, atol=0)
        at_c = torch.log(self.probs).expand_as(self.probs)
        at_0 = torch.log1p(-self.probs).expand_as(self.probs)
        ninf = torch.full_like(self.probs, -float("inf"))
        return torch.where(at_value, at_c, torch.where(value == 0, at_0, ninf))

    def cdf(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.probs.dtype, device=self.probs.device)
        zero, one = torch.zeros_like(self.probs), torch.ones_like(self.probs)
        eps = torch.finfo(self.probs.dtype).eps
        below_c = value < self.value * (1 - 8 * eps)
        return torch.where(value < 0, zero, torch.where(below_c, 1 - self.probs, one))

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        shape = self._extended_shape(sample_size(sample_shape))
        draw = torch.empty(shape, dtype=self.probs.dtype, device=self.probs.device)
        return draw.bernoulli_(self.probs.expand(shape), generator=generator).mul_(self.value)

    def expand(self, batch_shape: torch.Size | tuple[int, ...],  # type: ignore[override]
               _instance: object = None) -> ScaledBernoulli:
        shape = torch.Size(batch_shape)
        return ScaledBernoulli(self.probs.expand(shape), self.value.expand(shape))
