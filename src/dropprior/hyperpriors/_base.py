r"""The contract of a hyperprior on a group's scale (DESIGN §4).

A group g of weights shares one scale: w_g = s_g · ξ_g · z_g in EP, or w_g ~ N(0, σ0² v_g I) with
v_g = s_g² in the hierarchical reading. A hyperprior is a prior on that scale, stated on the
variance v = s² (``log_prob_variance``) and on the scale s itself (``log_prob``):

.. math:: \log p_s(s) = \log p_v(s^2) + \log 2s.

Its closed-form **scale update** is the maximiser over v of the expected log joint of a group of D
weights whose posterior second moments sum to S = Σ_i E[w_i²]/σ0² (VI: Σ(μ² + σ²)/σ0²):

.. math:: \hat v = \arg\max_v\; -\tfrac D2 \log v - \tfrac{S}{2v} + \log p_v(v),

the M-step of the follow-up's variational EM (Nalisnick et al., ICML 2019).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor

from dropprior._validation import as_param, check_positive

__all__ = ["ScaleHyperprior", "group_objective", "positive_parameter", "on_support"]


def positive_parameter(name: str, value: object) -> float:
    """A hyperprior parameter as a float64-exact Python float; TypeError for a bool, a string or
    another non-number, ValueError naming the value unless it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(f"{name} must be a number > 0, got {value!r}")
    return float(check_positive(name, as_param(value, torch.float64)))


def on_support(x: Tensor, log_density: Callable[[Tensor], Tensor]) -> Tensor:
    """``log_density(x)`` where x ≥ 0, ``-inf`` where x < 0 or nan (a scale or variance is
    never negative), never nan there; ``log_density`` only sees x ≥ 0."""
    inside = x >= 0
    out = log_density(torch.where(inside, x, torch.ones_like(x)))
    return torch.where(inside, out, torch.full_like(out, -math.inf))


class ScaleHyperprior(ABC):
    """Abstract base of a hyperprior on a group scale s ≥ 0 (v = s²).

    Attributes:
        proper: whether the density integrates to 1 (log-uniform does not).
    """

    proper: bool = True

    @abstractmethod
    def log_prob_variance(self, v: Tensor) -> Tensor:
        """log p(v) of the variance v = s² > 0 (up to a constant where improper).

        Shape:
            v: any; result: as v.
        """

    @abstractmethod
    def map_variance(self, sum_sq: Tensor, count: Tensor | float) -> Tensor:
        """The closed-form scale update v̂(S, D) (module docstring).

        Args:
            sum_sq: S ≥ 0, the group's summed second moments over σ0².
            count: D ≥ 1, the number of weights in the group.

        Shape:
            sum_sq: any; count: broadcastable to it; result: their broadcast shape.
        """

    def log_prob(self, s: Tensor) -> Tensor:
        """log p(s) of the scale s = √v > 0 (up to a constant where improper); ``-inf`` for
        s < 0 or nan.

        Shape:
            s: any; result: as s.
        """
        return on_support(s, lambda t: self.log_prob_variance(t.square()) + math.log(2.0)
                          + torch.log(t))


def group_objective(prior: ScaleHyperprior, v: Tensor, sum_sq: Tensor,
                    count: Tensor | float) -> Tensor:
    r"""The objective the scale update maximises,
    :math:`-\tfrac D2\log v - \tfrac{S}{2v} + \log p_v(v)` (tests check the update against a
    numerical maximiser of this).

    Shape:
        all broadcastable; result: their broadcast shape.
    """
    return -0.5 * count * torch.log(v) - sum_sq / (2 * v) + prior.log_prob_variance(v)
