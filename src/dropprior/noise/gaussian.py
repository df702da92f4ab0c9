"""Gaussian noise ξ ~ N(μ, s²): Gaussian dropout (Srivastava et al.) for μ = 1, s² = p/(1−p).

Moments: E[ξ] = μ, Var[ξ] = s², E[ξ²] = μ² + s². E[ξ⁻²] = Var[ξ⁻²] = ∞ for every μ: the density
at ξ = 0 is positive, so ∫ ξ⁻² p(ξ) dξ diverges at 0.

Variance prior: ξ² ~ s²·χ²₁ for μ = 0, the scaled non-central χ²₁ with non-centrality μ²/s²
otherwise. Marginal prior: variance-gamma (K0 Bessel) for μ = 0; no closed form for μ ≠ 0.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import (
    AffineTransform,
    Chi2,
    Distribution,
    Normal,
    TransformedDistribution,
    constraints,
)

from dropprior._validation import check_finite, check_positive
from dropprior.noise._base import NoiseLaw, SampleShape, broadcast_params, inf_like
from dropprior.noise._registry import register_law
from dropprior.noise.squared import ScaledNoncentralChi2

__all__ = ["Gaussian"]


@register_law("gaussian")
class Gaussian(NoiseLaw):
    r"""Gaussian multiplicative noise.

    .. math:: p(\xi) = \frac{1}{s\sqrt{2\pi}} \exp\Big(-\frac{(\xi-\mu)^2}{2s^2}\Big)

    Args:
        mean: μ ∈ R (1 for Gaussian dropout). Stored as ``loc``; ``law.mean`` is E[ξ] = μ.
        std: s > 0.

    Shape:
        ``batch_shape`` is the broadcast shape of ``mean`` and ``std``.

    Example:
        >>> law = Gaussian(mean=1.0, std=0.5)
        >>> law.sample((2, 3), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3])
    """

    arg_constraints = {"mean": constraints.real, "std": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, mean: float | Tensor, std: float | Tensor,
                 validate_args: bool | None = None) -> None:
        self.loc, self.std = broadcast_params(mean, std)
        if validate_args is not False:
            check_finite("mean", self.loc)
            check_positive("std", self.std)
        super().__init__(self.loc.shape, validate_args=False)

    def params(self) -> dict[str, Tensor]:
        return {"mean": self.loc, "std": self.std}

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.std.square()

    @property
    def second_moment(self) -> Tensor:
        return self.loc.square() + self.std.square()

    @property
    def inverse_square_mean(self) -> Tensor:
        return inf_like(self.loc)

    @property
    def inverse_square_variance(self) -> Tensor:
        return inf_like(self.loc)

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self._empty(sample_shape).normal_(generator=generator).mul_(self.std).add_(
                self.loc)

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        """ξ = μ + s·ε, ε ~ N(0, 1): pathwise gradients to μ and s."""
        eps = self._empty(sample_shape).normal_(generator=generator)
        return torch.addcmul(self.loc, self.std, eps)

    def _torch_law(self) -> Distribution:
        return Normal(self.loc, self.std, validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.loc

    def cdf(self, value: Tensor) -> Tensor:
        return self._torch_law().cdf(self._cdf_value(value))

    def icdf(self, value: Tensor) -> Tensor:
        """μ + s·Φ⁻¹(q) (``torch.special.ndtri``, accurate in both tails)."""
        return self.loc + self.std * torch.special.ndtri(self._icdf_value(value))

    def variance_prior(self) -> Distribution:
        """s²·χ²₁ (torch ``Chi2`` under an ``AffineTransform``) when every μ = 0, else the scaled
        non-central χ²₁ (:class:`ScaledNoncentralChi2`)."""
        if bool(torch.all(self.loc == 0)):
            chi2 = Chi2(torch.ones_like(self.std), validate_args=False)
            return TransformedDistribution(chi2, [AffineTransform(0.0, self.std.square())],
                                           validate_args=False)
        return ScaledNoncentralChi2(self.loc, self.std)
