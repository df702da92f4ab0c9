"""Half-Cauchy noise ξ ~ C⁺(0, s): the noise whose scale mixture is the horseshoe prior.

Generative definition: ξ = s·|C|, C ~ Cauchy(0, 1).

Moments: none of E[ξ], Var[ξ], E[ξ²], E[ξ⁻²], Var[ξ⁻²] exists; all are ``inf``. The tail
p(ξ) ~ 2s/(πξ²) makes ∫ ξ p(ξ) dξ diverge at ∞, and the positive density 2/(πs) at ξ = 0 makes
∫ ξ⁻² p(ξ) dξ diverge at 0.

Variance prior: the square of a half-Cauchy (the paper's "unnamed" law), via
``PowerTransform(2)``. Marginal prior: horseshoe with global scale τ = σ0·s.

With no mean, ``match_dropout("half_cauchy", p)`` raises.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, TransformedDistribution
from torch.distributions import HalfCauchy as TorchHalfCauchy

from dropprior.noise._base import SampleShape, inf_like, sample_size
from dropprior.noise._registry import register_law
from dropprior.noise._sampling import open_uniform
from dropprior.noise._scale_family import ScaleFamily

__all__ = ["HalfCauchy"]


@register_law("half_cauchy")
class HalfCauchy(ScaleFamily):
    r"""Half-Cauchy multiplicative noise.

    .. math:: p(\xi) = \frac{2}{\pi s \,(1 + \xi^2/s^2)},\quad \xi \ge 0

    Args:
        scale: s > 0 (``scipy.stats.halfcauchy(scale=s)``).

    Shape:
        ``batch_shape`` is ``scale.shape``.

    Example:
        >>> HalfCauchy(1.0).mean
        tensor(inf)
    """

    @property
    def mean(self) -> Tensor:
        return inf_like(self.scale)

    @property
    def variance(self) -> Tensor:
        return inf_like(self.scale)

    @property
    def second_moment(self) -> Tensor:
        return inf_like(self.scale)

    @property
    def inverse_square_mean(self) -> Tensor:
        return inf_like(self.scale)

    @property
    def inverse_square_variance(self) -> Tensor:
        return inf_like(self.scale)

    def _unit(self, sample_shape: SampleShape, generator: torch.Generator | None) -> Tensor:
        """|C| = cot(πV/2), V ~ Uniform(0, 1]: the inverse cdf of the standard half-Cauchy, in
        place on one fresh tensor (torch's CPU ``cauchy_`` is several times slower than ``rand``).

        cot(πV/2) rather than tan(πU/2): the angle πV/2 carries a relative rounding error, so
        the tail (small V) keeps full relative precision; ``abs_`` maps the rounded V = 1 (angle
        just above π/2, cot ≈ −4e-8) to the nearby nonnegative value."""
        shape = self._extended_shape(sample_size(sample_shape))
        v = open_uniform(shape, self.scale, generator)
        return v.mul_(math.pi / 2).tan_().reciprocal_().abs_()

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(ξ) = log(2/π) − log s − log(1 + r²), r = ξ/s; for r > 1 written as
        2 log r + log1p(r⁻²), so that it stays finite (with a finite gradient) where r² overflows
        (torch's ``HalfCauchy.log_prob`` gives ``-inf`` there and a nan gradient). ``-inf`` for
        ξ < 0."""
        s = self.scale
        value = torch.as_tensor(value, dtype=s.dtype, device=s.device)
        inside = value >= 0
        r = torch.where(inside, value, torch.zeros_like(value)) / s
        big = r > 1
        r_big = torch.where(big, r, torch.ones_like(r))  # each branch on safe inputs only
        r_small = torch.where(big, torch.zeros_like(r), r)
        log_tail = torch.where(big, 2 * torch.log(r_big) + torch.log1p(r_big.reciprocal().square()),
                               torch.log1p(r_small.square()))
        lp = math.log(2 / math.pi) - torch.log(s) - log_tail
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def _torch_law(self) -> Distribution:
        return TorchHalfCauchy(self.scale, validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.scale

    def cdf(self, value: Tensor) -> Tensor:
        value = self._cdf_value(value).clamp_min(0)
        return 2 / math.pi * torch.atan(value / self.scale)

    def icdf(self, value: Tensor) -> Tensor:
        """s·tan(πq/2) below the median, s / tan(π(1 − q)/2) above it (each tail keeps its
        precision); 0 at q = 0, ``inf`` at q = 1."""
        q = self._icdf_value(value)
        return torch.where(q < 0.5, self.scale * torch.tan(math.pi / 2 * q),
                           self.scale / torch.tan(math.pi / 2 * (1 - q)))

    def variance_prior(self) -> Distribution:
        """ξ² with ξ half-Cauchy: ``TransformedDistribution(HalfCauchy(s), PowerTransform(2))``."""
        return TransformedDistribution(self._torch_law(), [self._power(2.0)],
                                       validate_args=False)
