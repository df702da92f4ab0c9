"""Rayleigh noise ξ ~ Rayleigh(s): the noise whose scale mixture is the Laplace prior.

Generative definition: ξ = s·√(2E), E ~ Exponential(1); equivalently ξ² ~ Exponential with mean 2s².
Drawn as E = −log V, V ~ Uniform(0, 1] (inverse cdf).

Moments: E[ξ] = s√(π/2), Var[ξ] = (4−π)s²/2, E[ξ²] = 2s². E[ξ⁻²] = Var[ξ⁻²] = ∞: the density
p(ξ) = ξ/s² e^{−ξ²/2s²} is linear at 0, so ∫ ξ⁻²·ξ dξ diverges logarithmically at 0.

Variance prior: Exponential(rate 1/(2s²)). Marginal prior: Laplace(0, σ0·s).

A one-parameter family cannot match both E[ξ] = 1 and Var[ξ] = p/(1−p), so
``match_dropout("rayleigh", p)`` raises; :meth:`Rayleigh.with_mean` matches the mean only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import (
    Distribution,
    Exponential,
    TransformedDistribution,
)

from dropprior._validation import as_param, check_positive
from dropprior.noise._base import SampleShape, inf_like, sample_size
from dropprior.noise._registry import register_law
from dropprior.noise._sampling import rand
from dropprior.noise._scale_family import ScaleFamily

__all__ = ["Rayleigh"]


@register_law("rayleigh")
class Rayleigh(ScaleFamily):
    r"""Rayleigh multiplicative noise.

    .. math:: p(\xi) = \frac{\xi}{s^2} \exp\Big(-\frac{\xi^2}{2s^2}\Big),\quad \xi \ge 0

    Args:
        scale: s > 0 (``scipy.stats.rayleigh(scale=s)``).

    Shape:
        ``batch_shape`` is ``scale.shape``.

    Example:
        >>> law = Rayleigh.with_mean(1.0)
        >>> round(float(law.mean), 6)
        1.0
    """

    @classmethod
    def with_mean(cls, mean: float | Tensor = 1.0) -> Rayleigh:
        """The Rayleigh law with E[ξ] = ``mean``: s = mean/√(π/2). Its variance is then fixed at
        (4/π − 1)·mean² ≈ 0.273·mean², the Var[ξ] = p/(1−p) of dropout rate p = 1 − π/4."""
        mean_t = check_positive("mean", as_param(mean))
        return cls(mean_t / math.sqrt(math.pi / 2))

    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(math.pi / 2)

    @property
    def variance(self) -> Tensor:
        return (4 - math.pi) / 2 * self.scale.square()

    @property
    def second_moment(self) -> Tensor:
        return 2 * self.scale.square()

    @property
    def inverse_square_mean(self) -> Tensor:
        return inf_like(self.scale)

    @property
    def inverse_square_variance(self) -> Tensor:
        return inf_like(self.scale)

    def _unit(self, sample_shape: SampleShape, generator: torch.Generator | None,
              factor: float | Tensor = -2.0) -> Tensor:
        """√(factor·log V) with V = 1 − U ~ Uniform(0, 1], U = ``rand`` (log V = log1p(−U)):
        for the default factor −2, a standard Rayleigh draw √(2E), which ``sample`` and
        ``rsample`` multiply by s (not √(−2s² log V): s² would overflow for s ≳ 1e19 in float32).
        In place on one fresh tensor (torch's CPU ``exponential_`` is several times slower than
        ``rand``)."""
        shape = self._extended_shape(sample_size(sample_shape))
        return rand(shape, self.scale, generator).neg_().log1p_().mul_(factor).sqrt_()

    def _torch_law(self) -> Distribution:
        return TransformedDistribution(self.variance_prior(), [self._power(0.5)],
                                       validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.scale

    def cdf(self, value: Tensor) -> Tensor:
        value = self._cdf_value(value).clamp_min(0)
        return -torch.expm1(-(value / self.scale).square() / 2)

    def icdf(self, value: Tensor) -> Tensor:
        """s·√(−2 log(1 − q)); ``inf`` at q = 1."""
        return self.scale * (-2 * torch.log1p(-self._icdf_value(value))).sqrt()

    def variance_prior(self) -> Distribution:
        """ξ² ~ Exponential with rate 1/(2s²) (mean 2s²)."""
        return Exponential(0.5 / self.scale.square(), validate_args=False)
