r"""Laplace: the marginal prior of Rayleigh noise (paper Table 1).

Generative definition: ξ ~ Rayleigh(s), z ~ N(0, σ0² I_D), w = ξ z. Then ξ² ~ Exponential with
mean 2s², so the variance V = σ0² ξ² is Exponential with mean 2b², b = σ0 s, and

.. math::
    D = 1:\quad p(w) = \frac{1}{2b} e^{-|w|/b}\quad(\text{Laplace}(0, b));\qquad
    D ≥ 1:\quad p(w) = \frac{2β}{(2π)^{D/2}} \Big(\frac{x}{2β}\Big)^{1 - D/2} K_{D/2-1}(x),

with β = 1/(2b²), x = ‖w‖/b: the multivariate (symmetric) Laplace. D = 1 uses
``torch.distributions.Laplace``; D > 1 the Bessel form, ``scipy.special.kve`` in float64.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dropprior._validation import as_param, check_positive
from dropprior.noise import NoiseLaw, Rayleigh
from dropprior.priors._base import ScaleMixture
from dropprior.priors._registry import register_marginal
from dropprior.priors._special import log_gamma_variance_mixture

__all__ = ["Laplace"]


class Laplace(ScaleMixture):
    r"""Laplace(0, b) for one weight; the multivariate Laplace for a group.

    Args:
        scale: b = σ0 s > 0.
        group_size: D, weights sharing one ξ.

    Shape:
        ``log_prob(w)``: ``w`` of shape ``(..., D)`` (``(...)`` for D = 1) → ``(...)``.

    Example:
        >>> prior = Rayleigh(scale=0.5).marginal(sigma0=2.0)
        >>> float(prior.scale)
        1.0
    """

    def __init__(self, scale: float | Tensor = 1.0, group_size: int = 1,
                 validate_args: bool | None = None) -> None:
        scale = check_positive("scale", as_param(scale))
        super().__init__(Rayleigh(torch.ones((), dtype=scale.dtype)), scale, group_size)

    def _check_law(self) -> None:
        if not isinstance(self.law, Rayleigh):
            raise TypeError(f"Laplace needs Rayleigh noise, got {self.law!r}")

    @property
    def scale(self) -> Tensor:
        """b = σ0 s."""
        return (self.sigma0 * self.law.scale).expand(self.batch_shape)  # type: ignore[attr-defined]

    def _torch(self) -> torch.distributions.Laplace:
        b = self.scale.to(torch.float64)
        return torch.distributions.Laplace(torch.zeros_like(b), b, validate_args=False)

    def _log_prob(self, value: Tensor) -> Tensor:
        if self.group_size == 1:
            return self._torch().log_prob(value.to(torch.float64))
        rate = 0.5 / self.scale.to(torch.float64).square()
        return log_gamma_variance_mixture(self._norm(value), 1.0, rate, self.group_size)

    def _cdf(self, value: Tensor) -> Tensor:
        # ½e^{−|w|/b} below 0 and 1 − ½e^{−w/b} above, without torch's cancellation in the tail
        v = value.to(torch.float64)
        half_tail = 0.5 * torch.exp(-v.abs() / self.scale.to(torch.float64))
        return torch.where(v < 0, half_tail, 1 - half_tail)


@register_marginal(Rayleigh)
def _rayleigh_marginal(law: NoiseLaw, sigma0: float | Tensor, group_size: int) -> ScaleMixture:
    return Laplace.from_law(law, sigma0, group_size)
