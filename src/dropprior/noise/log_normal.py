"""Log-normal noise ξ = exp(μ + σε), ε ~ N(0, 1).

Moments: E[ξ^k] = exp(kμ + k²σ²/2) for every real k, so E[ξ] = e^{μ+σ²/2},
Var[ξ] = (e^{σ²} − 1)e^{2μ+σ²}, E[ξ²] = e^{2μ+2σ²}, E[ξ⁻²] = e^{−2μ+2σ²},
Var[ξ⁻²] = (e^{4σ²} − 1)e^{−4μ+4σ²}: all finite (``inf`` only where the float overflows).

Variance prior: ξ² ~ LogNormal(2μ, 2σ). Marginal prior: numerical quadrature.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions import LogNormal as TorchLogNormal

from dropprior._validation import check_finite, check_positive
from dropprior.noise._base import NoiseLaw, SampleShape, broadcast_params
from dropprior.noise._registry import register_law

__all__ = ["LogNormal"]


@register_law("log_normal")
class LogNormal(NoiseLaw):
    r"""Log-normal multiplicative noise.

    .. math:: p(\xi) = \frac{1}{\xi\sigma\sqrt{2\pi}}
              \exp\Big(-\frac{(\log\xi - \mu)^2}{2\sigma^2}\Big),\quad \xi > 0

    Args:
        loc: μ ∈ R, the mean of log ξ.
        scale: σ > 0, the standard deviation of log ξ
            (``scipy.stats.lognorm(s=σ, scale=exp(μ))``).

    Shape:
        ``batch_shape`` is the broadcast shape of ``loc`` and ``scale``.

    Example:
        >>> law = LogNormal(loc=-0.125, scale=0.5)
        >>> float(law.mean)
        1.0
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc: float | Tensor, scale: float | Tensor,
                 validate_args: bool | None = None) -> None:
        self.loc, self.scale = broadcast_params(loc, scale)
        if validate_args is not False:
            check_finite("loc", self.loc)
            check_positive("scale", self.scale)
        super().__init__(self.loc.shape, validate_args=False)

    def _raw_moment(self, k: float) -> Tensor:
        return torch.exp(k * self.loc + k * k * self.scale.square() / 2)

    @property
    def mean(self) -> Tensor:
        return self._raw_moment(1)

    @property
    def variance(self) -> Tensor:
        s2 = self.scale.square()
        return torch.expm1(s2) * torch.exp(2 * self.loc + s2)

    @property
    def second_moment(self) -> Tensor:
        return self._raw_moment(2)

    @property
    def inverse_square_mean(self) -> Tensor:
        return self._raw_moment(-2)

    @property
    def inverse_square_variance(self) -> Tensor:
        s2 = self.scale.square()
        return torch.expm1(4 * s2) * torch.exp(-4 * self.loc + 4 * s2)

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            draw = self._empty(sample_shape).normal_(generator=generator)
            return draw.mul_(self.scale).add_(self.loc).exp_()

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        """ξ = exp(μ + σε): pathwise gradients to μ and σ."""
        eps = self._empty(sample_shape).normal_(generator=generator)
        return torch.exp(torch.addcmul(self.loc, self.scale, eps))

    def _torch_law(self) -> Distribution:
        return TorchLogNormal(self.loc, self.scale, validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.loc.exp()

    def cdf(self, value: Tensor) -> Tensor:
        value = self._cdf_value(value)
        positive = value > 0
        safe = torch.where(positive, value, torch.ones_like(value))
        phi = torch.special.ndtr((safe.log() - self.loc) / self.scale)
        return torch.where(positive, phi, torch.zeros_like(phi))

    def icdf(self, value: Tensor) -> Tensor:
        """exp(μ + σ·Φ⁻¹(q)) (``torch.special.ndtri``): 0 at q = 0, ``inf`` at q = 1."""
        return torch.exp(self.loc + self.scale * torch.special.ndtri(self._icdf_value(value)))

    def variance_prior(self) -> Distribution:
        """ξ² = exp(2μ + 2σε) ~ LogNormal(2μ, 2σ)."""
        return TorchLogNormal(2 * self.loc, 2 * self.scale, validate_args=False)
