r"""Gamma(α, β) on the variance v = s² (shape α > 0, rate β > 0).

.. math:: p(v) = \frac{\beta^\alpha}{\Gamma(\alpha)} v^{\alpha-1} e^{-\beta v},\qquad
          \hat v = \frac{(\alpha - 1 - D/2) + \sqrt{(\alpha - 1 - D/2)^2 + 2\beta S}}{2\beta}.

The update is the positive root of β v² + (D/2 + 1 − α) v − S/2 = 0 (set the derivative of the
group objective to zero and multiply by v²). Table 1's laws with a gamma variance prior:

* Rayleigh(s): ξ² ~ Exponential with mean 2s², i.e. Gamma(1, 1/(2s²)) (the Laplace prior);
* Gaussian N(0, s²): ξ² ~ s²χ²₁ = Gamma(½, 1/(2s²)) (the variance-gamma prior).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Gamma as _TorchGamma

from dropprior.hyperpriors._base import ScaleHyperprior, on_support, positive_parameter

__all__ = ["GammaScale"]


class GammaScale(ScaleHyperprior):
    """Gamma(α, β) on v = s² (shape α > 0, rate β > 0)."""

    def __init__(self, alpha: float, beta: float) -> None:
        self.alpha = positive_parameter("gamma shape alpha", alpha)
        self.beta = positive_parameter("gamma rate beta", beta)

    def log_prob_variance(self, v: Tensor) -> Tensor:
        law = _TorchGamma(torch.tensor(self.alpha, dtype=v.dtype),
                          torch.tensor(self.beta, dtype=v.dtype), validate_args=False)
        return on_support(v, law.log_prob)

    def map_variance(self, sum_sq: Tensor, count: Tensor | float) -> Tensor:
        c = self.alpha - 1 - 0.5 * torch.as_tensor(count, dtype=sum_sq.dtype)
        return (c + torch.sqrt(c.square() + 2 * self.beta * sum_sq)) / (2 * self.beta)

    def __repr__(self) -> str:
        return f"GammaScale(alpha={self.alpha:g}, beta={self.beta:g})"
