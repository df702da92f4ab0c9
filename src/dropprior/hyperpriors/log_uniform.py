r"""The log-uniform (scale-invariant, Jeffreys) hyperprior p(s) ∝ 1/s, improper.

In v = s² it is again p(v) ∝ 1/v, the a = b = 0 limit of inverse-gamma(a, b), and its update is

.. math:: \hat v = \frac{S}{D + 2},

which is 0 at S = 0 with no floor. Its density has a pole at s = 0: in type-II MAP (w = s·z with
z ~ N(0, σ0²)) only the product enters the likelihood, and minimising over the split leaves the
penalty log ‖w_g‖, which drives a group whose weights the data do not hold up all the way to 0.
That pole is what switches irrelevant groups off (and why the MAP objective is unbounded: report
the scales, not the objective's value).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dropprior.hyperpriors._base import ScaleHyperprior, on_support

__all__ = ["LogUniformScale"]


class LogUniformScale(ScaleHyperprior):
    """p(s) ∝ 1/s, equivalently p(v) ∝ 1/v (improper; log densities are up to a constant)."""

    proper = False

    def log_prob_variance(self, v: Tensor) -> Tensor:
        return on_support(v, lambda t: -torch.log(t))

    def log_prob(self, s: Tensor) -> Tensor:
        return on_support(s, lambda t: -torch.log(t))

    def map_variance(self, sum_sq: Tensor, count: Tensor | float) -> Tensor:
        return sum_sq / (count + 2)

    def __repr__(self) -> str:
        return "LogUniformScale()"
