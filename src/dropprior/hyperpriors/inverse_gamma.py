r"""Inverse-gamma(a, b) on the variance v = s²: the follow-up's default hyperprior.

.. math:: p(v) = \frac{b^a}{\Gamma(a)} v^{-a-1} e^{-b/v},\qquad
          \hat v = \frac{2b + S}{D + 2a + 2}.

It is the variance prior p(ξ²) of inverse-Nakagami(m, Ω) noise with a = m, b = m/Ω (paper Table 1:
the Student-t prior). Its update has the floor 2b/(D + 2a + 2) > 0, so with b > 0 a group's scale
cannot reach 0 however small its weights: a proper inverse-gamma does not switch groups off.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import InverseGamma as _TorchInverseGamma

from dropprior.hyperpriors._base import ScaleHyperprior, on_support, positive_parameter

__all__ = ["InverseGammaScale"]


class InverseGammaScale(ScaleHyperprior):
    """Inverse-gamma(a, b) on v = s² (shape a > 0, scale b > 0).

    Example:
        >>> InverseGammaScale(3.0, 3.0).map_variance(torch.tensor(0.0), 50)  # the floor
        tensor(0.1034)
    """

    def __init__(self, a: float, b: float) -> None:
        self.a = positive_parameter("inverse-gamma shape a", a)
        self.b = positive_parameter("inverse-gamma scale b", b)

    def log_prob_variance(self, v: Tensor) -> Tensor:
        law = _TorchInverseGamma(torch.tensor(self.a, dtype=v.dtype),
                                 torch.tensor(self.b, dtype=v.dtype), validate_args=False)
        return on_support(v, law.log_prob)

    def map_variance(self, sum_sq: Tensor, count: Tensor | float) -> Tensor:
        return (2 * self.b + sum_sq) / (count + 2 * self.a + 2)

    def __repr__(self) -> str:
        return f"InverseGammaScale(a={self.a:g}, b={self.b:g})"
