r"""Student-t: the marginal prior of inverse-Nakagami noise (paper Table 1).

Generative definition: ξ = 1/η, η ~ Nakagami(m, Ω), z ~ N(0, σ0² I_D), w = ξ z. The precision
η²/σ0² ~ Gamma(m, rate m σ0²/Ω), the classical Gamma precision mixture, so w is Student-t with
ν = 2m degrees of freedom and scale a = σ0/√Ω; for a group, the multivariate t:

.. math::
    p(w) = \frac{Γ((ν + D)/2)}{Γ(ν/2)\,(νπ)^{D/2} a^D}
           \Big(1 + \frac{‖w‖^2}{ν a^2}\Big)^{-(ν + D)/2}.

D = 1 uses ``torch.distributions.StudentT``; ``cdf`` is ``scipy.special.stdtr`` (float64, no
gradient). ν ≥ 1 (the law requires m ≥ ½).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special
from torch import Tensor

from dropprior._validation import as_param, check_positive
from dropprior.noise import InverseNakagami, NoiseLaw
from dropprior.priors._base import ScaleMixture
from dropprior.priors._registry import register_marginal

__all__ = ["StudentT"]


class StudentT(ScaleMixture):
    r"""Student-t with ``df`` = ν and ``scale`` = a; multivariate t for a group.

    Args:
        df: ν = 2m ≥ 1.
        scale: a = σ0/√Ω > 0.
        group_size: D, weights sharing one ξ.

    Shape:
        ``log_prob(w)``: ``w`` of shape ``(..., D)`` (``(...)`` for D = 1) → ``(...)``.

    Example:
        >>> prior = InverseNakagami(shape=1.5, spread=4.0).marginal(sigma0=2.0)
        >>> float(prior.df), float(prior.scale)
        (3.0, 1.0)
    """

    def __init__(self, df: float | Tensor, scale: float | Tensor = 1.0, group_size: int = 1,
                 validate_args: bool | None = None) -> None:
        df = as_param(df)
        if not bool(torch.all(torch.isfinite(df) & (df >= 1))):
            raise ValueError("df must be finite and >= 1 (inverse-Nakagami shape m = df/2 >= 1/2)"
                             f", got {df.tolist()!r}")
        scale = check_positive("scale", as_param(scale))
        super().__init__(InverseNakagami(df / 2, torch.ones((), dtype=df.dtype)), scale,
                         group_size)

    def _check_law(self) -> None:
        if not isinstance(self.law, InverseNakagami):
            raise TypeError(f"StudentT needs inverse-Nakagami noise, got {self.law!r}")

    @property
    def df(self) -> Tensor:
        """ν = 2m."""
        return (2 * self.law.shape).expand(self.batch_shape)  # type: ignore[attr-defined]

    @property
    def scale(self) -> Tensor:
        """a = σ0/√Ω."""
        spread = self.law.spread  # type: ignore[attr-defined]
        return (self.sigma0 / torch.sqrt(spread)).expand(self.batch_shape)

    def _log_prob(self, value: Tensor) -> Tensor:
        df = self.df.to(torch.float64)
        a = self.scale.to(torch.float64)
        if self.group_size == 1:
            t = torch.distributions.StudentT(df, torch.zeros_like(a), a, validate_args=False)
            return t.log_prob(value.to(torch.float64))
        dim = self.group_size
        r2 = self._norm(value).square()
        return (torch.lgamma((df + dim) / 2) - torch.lgamma(df / 2)
                - 0.5 * dim * (torch.log(df) + math.log(math.pi)) - dim * torch.log(a)
                - 0.5 * (df + dim) * torch.log1p(r2 / (df * a.square())))

    def _cdf(self, value: Tensor) -> Tensor:
        v = value.to(torch.float64)
        df, a, v = torch.broadcast_tensors(self.df.to(torch.float64),
                                           self.scale.to(torch.float64), v)
        out = special.stdtr(df.detach().cpu().numpy(), (v / a).detach().cpu().numpy())
        return torch.from_numpy(np.asarray(out, dtype=np.float64)).to(v.device)


@register_marginal(InverseNakagami)
def _inverse_nakagami_marginal(law: NoiseLaw, sigma0: float | Tensor,
                               group_size: int) -> ScaleMixture:
    return StudentT.from_law(law, sigma0, group_size)
