"""The law of ξ² for a continuous ξ that may be negative; the scaled non-central χ²₁.

For a continuous ξ with density p, y = ξ² has the density of the two square-root branches

.. math:: p_{\\xi^2}(y) = \\frac{p(\\sqrt y) + p(-\\sqrt y)}{2\\sqrt y},\\qquad
          P(\\xi^2 \\le y) = F(\\sqrt y) - F(-\\sqrt y),

computed in log space (``logsumexp`` of the branches). ``PowerTransform(2)`` covers ξ ≥ 0 only;
this class covers Gaussian noise (whose square is the scaled non-central χ²₁ of Table 1) and
uniform noise on an interval that contains negative values.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal, constraints

from dropprior.noise._base import SampleShape, sample_size

__all__ = ["Squared", "ScaledNoncentralChi2"]


class Squared(Distribution):
    r"""The distribution of X² for a continuous, real-valued ``base`` law of X.

    .. math:: p(y) = \frac{p_X(\sqrt y) + p_X(-\sqrt y)}{2\sqrt y},\quad y > 0

    Args:
        base: a continuous ``torch.distributions.Distribution`` with ``log_prob`` and ``cdf``.

    Shape:
        ``batch_shape`` is the base's; ``log_prob(y)`` broadcasts ``y`` against it.
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.nonnegative

    def __init__(self, base: Distribution, validate_args: bool | None = None) -> None:
        self.base = base
        super().__init__(base.batch_shape, validate_args=False)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return bool(self.base.has_rsample)

    def log_prob(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value)
        root = value.clamp_min(0).sqrt()
        branches = torch.stack(torch.broadcast_tensors(self.base.log_prob(root),
                                                       self.base.log_prob(-root)))
        log_sum = torch.logsumexp(branches, dim=0)
        log_density = log_sum - math.log(2.0) - torch.log(root)
        ninf = torch.full_like(log_density, -float("inf"))
        # No mass at either root (or y < 0): the density is 0, not -inf - (-inf) = nan.
        return torch.where((value < 0) | (log_sum == -float("inf")), ninf, log_density)

    def cdf(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value)
        root = value.clamp_min(0).sqrt()
        return (self.base.cdf(root) - self.base.cdf(-root)).clamp(0, 1)

    def sample(self, sample_shape: SampleShape = ()) -> Tensor:
        return self.base.sample(sample_size(sample_shape)).square()

    def rsample(self, sample_shape: SampleShape = ()) -> Tensor:
        return self.base.rsample(sample_size(sample_shape)).square()

    def expand(self, batch_shape: torch.Size | tuple[int, ...],  # type: ignore[override]
               _instance: object = None) -> Squared:
        return Squared(self.base.expand(torch.Size(batch_shape)))

    def __repr__(self) -> str:
        return f"Squared({self.base!r})"


class ScaledNoncentralChi2(Squared):
    r"""ξ² for Gaussian noise ξ ~ N(μ, s²): s² times a non-central χ² with one degree of freedom
    and non-centrality λ = μ²/s² (``scipy.stats.ncx2(df=1, nc=λ, scale=s²)``).

    .. math:: p(y) = \frac{\phi\big((\sqrt y - \mu)/s\big) + \phi\big((\sqrt y + \mu)/s\big)}
                          {2 s \sqrt y}

    E[ξ²] = μ² + s², Var[ξ²] = 2s⁴ + 4μ²s². μ = 0 gives s²·χ²₁.

    Args:
        mean: μ, the Gaussian noise's mean.
        std: s > 0, its standard deviation.
    """

    def __init__(self, mean: Tensor, std: Tensor, validate_args: bool | None = None) -> None:
        self.loc, self.std = torch.broadcast_tensors(mean, std)
        super().__init__(Normal(self.loc, self.std, validate_args=False))

    @property
    def noncentrality(self) -> Tensor:
        """λ = μ²/s²."""
        return (self.loc / self.std).square()

    @property
    def mean(self) -> Tensor:
        return self.loc.square() + self.std.square()

    @property
    def variance(self) -> Tensor:
        s2 = self.std.square()
        return 2 * s2.square() + 4 * self.loc.square() * s2

    def expand(self, batch_shape: torch.Size | tuple[int, ...],  # type: ignore[override]
               _instance: object = None) -> ScaledNoncentralChi2:
        shape = torch.Size(batch_shape)
        return ScaledNoncentralChi2(self.loc.expand(shape), self.std.expand(shape))

    def __repr__(self) -> str:
        return f"ScaledNoncentralChi2(shape={tuple(self.batch_shape)})"
