r"""Horseshoe: the marginal prior of half-Cauchy noise (paper Table 1; Carvalho et al., 2009).

Generative definition: ξ ~ C⁺(0, s), z ~ N(0, σ0² I_D), w = ξ z, so σ0 ξ ~ C⁺(0, τ) with global
scale τ = σ0 s. For one weight the density has the closed form

.. math:: p(w) = \frac{e^{u} E_1(u)}{τ \sqrt{2π^3}},\qquad u = \frac{w^2}{2τ^2},

with E1 the exponential integral (log(e^u E1(u)) from ``scipy.special.exp1`` below u = 50, the
asymptotic series above, inside an autograd function). It has a logarithmic pole at w = 0 and
Cauchy-like tails p(w) ~ 2τ/(√(2π³) w²). The group horseshoe (D > 1) and the cdf have no
elementary form and use the one-dimensional quadrature over ξ of
:mod:`dropprior.priors._quadrature` (accurate to ~1e-12 relative in float64).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dropprior._validation import as_param, check_positive
from dropprior.noise import HalfCauchy, NoiseLaw
from dropprior.priors._base import ScaleMixture
from dropprior.priors._registry import register_marginal
from dropprior.priors._special import log_exp_e1

__all__ = ["Horseshoe"]


class Horseshoe(ScaleMixture):
    r"""The horseshoe prior with global scale τ.

    Args:
        scale: τ = σ0 s > 0.
        group_size: D, weights sharing one local scale.

    Shape:
        ``log_prob(w)``: ``w`` of shape ``(..., D)`` (``(...)`` for D = 1) → ``(...)``.

    Example:
        >>> prior = HalfCauchy(scale=0.1).marginal(sigma0=10.0)
        >>> float(prior.scale)
        1.0
    """

    def __init__(self, scale: float | Tensor = 1.0, group_size: int = 1,
                 validate_args: bool | None = None) -> None:
        scale = check_positive("scale", as_param(scale))
        super().__init__(HalfCauchy(torch.ones((), dtype=scale.dtype)), scale, group_size)

    def _check_law(self) -> None:
        if not isinstance(self.law, HalfCauchy):
            raise TypeError(f"Horseshoe needs half-Cauchy noise, got {self.law!r}")

    @property
    def scale(self) -> Tensor:
        """τ = σ0 s."""
        return (self.sigma0 * self.law.scale).expand(self.batch_shape)  # type: ignore[attr-defined]

    def _log_prob(self, value: Tensor) -> Tensor:
        if self.group_size > 1:
            return self._quadrature_log_prob(value)
        tau = self.scale.to(torch.float64)
        u = value.to(torch.float64).square() / (2 * tau.square())
        return log_exp_e1(u) - torch.log(tau) - 0.5 * math.log(2 * math.pi**3)

    def _cdf(self, value: Tensor) -> Tensor:
        return self._quadrature_cdf(value)


@register_marginal(HalfCauchy)
def _half_cauchy_marginal(law: NoiseLaw, sigma0: float | Tensor, group_size: int) -> ScaleMixture:
    return Horseshoe.from_law(law, sigma0, group_size)
