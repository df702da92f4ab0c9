"""Uniform noise ξ ~ U(l, h) (Shen et al.'s continuous dropout uses an interval around 1).

Any l < h is accepted, including intervals that contain or lie below 0 (the sign of ξ does not
matter to the prior, as w = ξ·z with z symmetric).

Moments: E[ξ] = (l+h)/2, Var[ξ] = (h−l)²/12, E[ξ²] = (l² + lh + h²)/3. If 0 ∉ [l, h]:
E[ξ⁻²] = 1/(lh) and Var[ξ⁻²] = (h−l)²/(3l³h³); if 0 ∈ [l, h] both are ``inf`` (the density is
positive at 0, so ∫ ξ⁻² dξ diverges there).

Variance prior: ξ² via ``PowerTransform(2)`` when l ≥ 0, the two-branch :class:`Squared` law
otherwise. Marginal prior: numerical quadrature.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, TransformedDistribution, constraints
from torch.distributions import Uniform as TorchUniform

from dropprior._validation import check_finite, check_less
from dropprior.noise._base import NoiseLaw, SampleShape, broadcast_params, inf_like
from dropprior.noise._registry import register_law
from dropprior.noise.squared import Squared

__all__ = ["Uniform"]


@register_law("uniform")
class Uniform(NoiseLaw):
    r"""Uniform multiplicative noise.

    .. math:: p(\xi) = \frac{1}{h - l},\quad l \le \xi \le h

    Args:
        low: l, finite.
        high: h > l, finite (``scipy.stats.uniform(loc=l, scale=h-l)``).

    Shape:
        ``batch_shape`` is the broadcast shape of ``low`` and ``high``.

    Example:
        >>> law = Uniform(0.5, 1.5)
        >>> float(law.mean), round(float(law.inverse_square_mean), 6)  # 1 / (a b)
        (1.0, 1.333333)
    """

    arg_constraints = {"low": constraints.dependent(is_discrete=False, event_dim=0),
                       "high": constraints.dependent(is_discrete=False, event_dim=0)}
    has_rsample = True

    def __init__(self, low: float | Tensor, high: float | Tensor,
                 validate_args: bool | None = None) -> None:
        self.low, self.high = broadcast_params(low, high)
        if validate_args is not False:
            check_finite("low", self.low)
            check_finite("high", self.high)
            check_less("low", self.low, "high", self.high)
        super().__init__(self.low.shape, validate_args=False)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.interval(self.low, self.high)

    @property
    def mean(self) -> Tensor:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).square() / 12

    @property
    def second_moment(self) -> Tensor:
        lo, hi = self.low, self.high
        return (lo.square() + lo * hi + hi.square()) / 3

    @property
    def _excludes_zero(self) -> Tensor:
        return (self.low > 0) | (self.high < 0)

    @property
    def inverse_square_mean(self) -> Tensor:
        return torch.where(self._excludes_zero, 1 / (self.low * self.high), inf_like(self.low))

    @property
    def inverse_square_variance(self) -> Tensor:
        lo, hi = self.low, self.high
        finite = (hi - lo).square() / (3 * (lo * hi) ** 3)
        return torch.where(self._excludes_zero, finite, inf_like(lo))

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            draw = self._empty(sample_shape).uniform_(generator=generator)
            return draw.mul_(self.high - self.low).add_(self.low)

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        """ξ = l + (h − l)·U, U ~ U(0, 1): pathwise gradients to l and h."""
        u = self._empty(sample_shape).uniform_(generator=generator)
        return torch.addcmul(self.low, self.high - self.low, u)

    def _torch_law(self) -> Distribution:
        return TorchUniform(self.low, self.high, validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.mean

    def cdf(self, value: Tensor) -> Tensor:
        value = self._cdf_value(value)
        return ((value - self.low) / (self.high - self.low)).clamp(0, 1)

    def icdf(self, value: Tensor) -> Tensor:
        """a + q·(b − a)."""
        return self.low + self._icdf_value(value) * (self.high - self.low)

    def variance_prior(self) -> Distribution:
        """ξ²: ``PowerTransform(2)`` of the uniform when l ≥ 0, else :class:`Squared`."""
        if bool(torch.all(self.low >= 0)):
            return TransformedDistribution(self._torch_law(), [self._power(2.0)],
                                           validate_args=False)
        return Squared(self._torch_law())
