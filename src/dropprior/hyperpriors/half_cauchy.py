r"""Half-Cauchy(η) on the scale s: the horseshoe's hyperprior.

.. math:: p(s) = \frac{2}{\pi\eta\,(1 + s^2/\eta^2)},\qquad
          p(v) = \frac{p(\sqrt v)}{2\sqrt v}\ \ (v = s^2).

**Scale update.** With c = −log p(v) = ½ log v + log(1 + v/η²) + const, setting the derivative of
−(D/2) log v − S/(2v) − c to zero and multiplying by 2v²(η² + v) gives the quadratic

.. math:: (D + 3)\,v^2 - \big(S - (D + 1)\eta^2\big)\,v - S\eta^2 = 0,

whose positive root is the update (the product of the roots, −Sη²/(D+3), is ≤ 0, so there is
exactly one non-negative root). It is 0 at S = 0: the half-Cauchy can switch a group off.
Half-Cauchy(η) noise has this law on ξ (paper Table 1: the horseshoe).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import HalfCauchy as _TorchHalfCauchy

from dropprior.hyperpriors._base import ScaleHyperprior, on_support, positive_parameter

__all__ = ["HalfCauchyScale"]


class HalfCauchyScale(ScaleHyperprior):
    """Half-Cauchy(η) on s (scale η > 0)."""

    def __init__(self, eta: float) -> None:
        self.eta = positive_parameter("half-Cauchy scale eta", eta)

    def log_prob(self, s: Tensor) -> Tensor:
        return on_support(s, _TorchHalfCauchy(torch.tensor(self.eta, dtype=s.dtype),
                                              validate_args=False).log_prob)

    def log_prob_variance(self, v: Tensor) -> Tensor:
        def density(t: Tensor) -> Tensor:
            s = t.sqrt()
            return self.log_prob(s) - torch.log(2 * s)

        return on_support(v, density)

    def map_variance(self, sum_sq: Tensor, count: Tensor | float) -> Tensor:
        d = torch.as_tensor(count, dtype=sum_sq.dtype)
        eta2 = self.eta**2
        lin = sum_sq - (d + 1) * eta2
        return (lin + torch.sqrt(lin.square() + 4 * (d + 3) * sum_sq * eta2)) / (2 * (d + 3))

    def __repr__(self) -> str:
        return f"HalfCauchyScale(eta={self.eta:g})"
