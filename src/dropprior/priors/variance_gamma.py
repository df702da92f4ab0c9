r"""Variance-gamma: the marginal prior of zero-mean Gaussian noise (paper Table 1).

Generative definition: ξ ~ N(0, s²), z ~ N(0, σ0² I_D), w = ξ z. With b = σ0 s, the variance
V = σ0² ξ² ~ b² χ²₁ = Gamma(½, rate 1/(2b²)), so p(w) is a Gamma variance mixture of Gaussians
(the symmetric variance-gamma, a limit of the generalized hyperbolic family):

.. math::
    D = 1:\quad p(w) = \frac{K_0(|w|/b)}{π b};\qquad
    D ≥ 1:\quad p(w) = \frac{2 β^{1/2}}{(2π)^{D/2} Γ(½)} \Big(\frac{x}{2β}\Big)^{ν} K_ν(x),

with β = 1/(2b²), x = ‖w‖/b, ν = (1 − D)/2 (K_ν by ``scipy.special.kve`` in float64 inside an
autograd function). The density is infinite at w = 0 for every D (a logarithmic pole for D = 1).
``cdf`` (D = 1) is computed by the numerical quadrature of :mod:`dropprior.priors._quadrature`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dropprior._validation import as_param, check_positive
from dropprior.noise import Gaussian, NoiseLaw
from dropprior.priors._base import ScaleMixture
from dropprior.priors._registry import register_marginal
from dropprior.priors._special import log_gamma_variance_mixture

__all__ = ["VarianceGamma"]


class VarianceGamma(ScaleMixture):
    r"""p(w) = K0(|w|/b)/(π b): the product of two independent zero-mean Gaussians.

    Args:
        scale: b = σ0 s > 0.
        group_size: D, weights sharing one ξ.

    Shape:
        ``log_prob(w)``: ``w`` of shape ``(..., D)`` (``(...)`` for D = 1) → ``(...)``.

    Example:
        >>> prior = Gaussian(mean=0.0, std=0.5).marginal(sigma0=2.0)  # b = 1
        >>> float(prior.scale)
        1.0
    """

    def __init__(self, scale: float | Tensor = 1.0, group_size: int = 1,
                 validate_args: bool | None = None) -> None:
        scale = check_positive("scale", as_param(scale))
        one = torch.ones((), dtype=scale.dtype)
        super().__init__(Gaussian(0 * one, one), scale, group_size)

    def _check_law(self) -> None:
        if not isinstance(self.law, Gaussian) or not bool(torch.all(self.law.mean == 0)):
            raise TypeError(f"VarianceGamma needs zero-mean Gaussian noise, got {self.law!r}")

    @property
    def scale(self) -> Tensor:
        """b = σ0 s."""
        return (self.sigma0 * self.law.std).expand(self.batch_shape)  # type: ignore[attr-defined]

    def _log_prob(self, value: Tensor) -> Tensor:
        rate = 0.5 / self.scale.to(torch.float64).square()
        return log_gamma_variance_mixture(self._norm(value), 0.5, rate, self.group_size)

    def _cdf(self, value: Tensor) -> Tensor:
        return self._quadrature_cdf(value)


@register_marginal(Gaussian)
def _gaussian_marginal(law: NoiseLaw, sigma0: float | Tensor, group_size: int) -> ScaleMixture:
    """Zero-mean Gaussian noise has the closed-form variance-gamma marginal; μ ≠ 0 (Gaussian
    dropout) has none and gets the numerical-quadrature marginal."""
    from dropprior.priors.quadrature import QuadratureMarginal

    if bool(torch.all(law.mean == 0)):
        return VarianceGamma.from_law(law, sigma0, group_size)
    return QuadratureMarginal(law, sigma0, group_size)
