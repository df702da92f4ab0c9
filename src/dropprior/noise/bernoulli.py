"""Bernoulli noise: ξ ∈ {0, 1} with keep probability π — standard (non-inverted) dropout.

Generative definition: ξ ~ Bernoulli(π), P(ξ = 1) = π. The paper's π is the **keep** probability;
torch's ``nn.Dropout(p)`` uses the **drop** probability p = 1 − π and inverted scaling, i.e. noise
ξ/π ∈ {0, 1/π}. Use ``Bernoulli(keep=1 - p)`` and ``inverted=True`` for torch's convention.

Moments (non-inverted, scale c = 1 or 1/π when inverted): E[ξ] = cπ, E[ξ²] = c²π,
Var[ξ] = c²π(1−π), E[ξ⁻²] = ∞ for π < 1 (ξ = 0 has positive mass).

Variance prior: ξ² ∈ {0, c²} with P(ξ² = c²) = π. Marginal prior: spike-and-slab
π N(0, c²σ0²) + (1−π) δ0 (Table 1).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints

from dropprior._validation import as_param, check_in_interval
from dropprior.noise._base import NoiseLaw
from dropprior.noise._registry import register_law

__all__ = ["Bernoulli"]


@register_law("bernoulli")
class Bernoulli(NoiseLaw):
    r"""Bernoulli multiplicative noise, parametrised by the keep probability π.

    .. math:: P(\xi = c) = \pi,\quad P(\xi = 0) = 1 - \pi,\quad c = 1 \text{ or } 1/\pi

    Args:
        keep: keep probability π ∈ (0, 1]. This is **not** torch's drop probability ``p``;
            ``keep = 1 - p``.
        inverted: if True, ξ ∈ {0, 1/π} so that E[ξ] = 1 (torch's ``nn.Dropout`` convention).

    Example:
        >>> law = Bernoulli(keep=0.8, inverted=True)
        >>> float(law.mean)
        1.0
    """

    arg_constraints = {"keep": constraints.half_open_interval(0.0, 1.0)}
    has_rsample = False
    is_discrete = True

    def __init__(self, keep: float | Tensor, inverted: bool = False,
                 validate_args: bool | None = None) -> None:
        self.keep = as_param(keep)
        if validate_args is not False:
            check_in_interval("keep", self.keep, 0.0, 1.0)
        self.inverted = bool(inverted)
        super().__init__(self.keep.shape, validate_args=False)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.boolean if not self.inverted else constraints.nonnegative

    @property
    def scale(self) -> Tensor:
        """The non-zero value c of ξ: 1, or 1/π when inverted."""
        return 1.0 / self.keep if self.inverted else torch.ones_like(self.keep)

    @property
    def mean(self) -> Tensor:
        return self.scale * self.keep

    @property
    def second_moment(self) -> Tensor:
        return self.scale**2 * self.keep

    @property
    def variance(self) -> Tensor:
        return self.scale**2 * self.keep * (1 - self.keep)

    @property
    def inverse_square_mean(self) -> Tensor:
        inf = torch.full_like(self.keep, float("inf"))
        return torch.where(self.keep < 1, inf, self.scale**-2)

    @property
    def inverse_square_variance(self) -> Tensor:
        inf = torch.full_like(self.keep, float("inf"))
        return torch.where(self.keep < 1, inf, torch.zeros_like(self.keep))

    def sample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size(),
               generator: torch.Generator | None = None) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        u = torch.rand(shape, dtype=self.keep.dtype, device=self.keep.device, generator=generator)
        return (u < self.keep).to(self.keep.dtype) * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        on = value != 0
        return torch.where(on, torch.log(self.keep), torch.log1p(-self.keep))

    def variance_prior(self) -> torch.distributions.Distribution:
        """ξ² ∈ {0, c²}: a Bernoulli(π) scaled by c² (a plain Bernoulli when not inverted)."""
        base = torch.distributions.Bernoulli(probs=self.keep, validate_args=False)
        if not self.inverted:
            return base
        return torch.distributions.TransformedDistribution(
            base, [torch.distributions.AffineTransform(0.0, self.scale**2)], validate_args=False
        )

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Bernoulli:
        return Bernoulli(self.keep.to(device=device, dtype=dtype), inverted=self.inverted,
                         validate_args=False)

    def expand(self, batch_shape, _instance=None) -> Bernoulli:  # type: ignore[override]
        return Bernoulli(self.keep.expand(torch.Size(batch_shape)), inverted=self.inverted,
                         validate_args=False)
