"""Bernoulli noise: ξ ∈ {0, c} with keep probability π — dropout.

Generative definition: B ~ Bernoulli(π), ξ = c·B with c = 1, or c = 1/π when ``inverted``.
The paper's π is the **keep** probability; torch's ``nn.Dropout(p)`` uses the **drop**
probability p = 1 − π and inverted scaling, i.e. noise ξ ∈ {0, 1/π}. Use
``Bernoulli(keep=1 - p, inverted=True)`` (or ``match_dropout("bernoulli", p)``) for torch's
convention.

Moments: E[ξ] = cπ, E[ξ²] = c²π, Var[ξ] = c²π(1−π); E[ξ⁻²] = Var[ξ⁻²] = ∞ for π < 1 (ξ = 0
has positive mass); for π = 1, ξ ≡ c and E[ξ⁻²] = c⁻², Var[ξ⁻²] = 0.

Variance prior: ξ² ∈ {0, c²} with P(ξ² = c²) = π. Marginal prior: spike-and-slab
π N(0, c²σ0²) + (1−π) δ0 (Table 1); inverted scaling gives the slab scale σ0/π.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from dropprior._validation import as_param, check_bool, check_float_dtype, check_in_interval
from dropprior.noise._base import NoiseLaw, SampleShape, inf_like
from dropprior.noise._registry import register_law
from dropprior.noise.scaled_bernoulli import ScaledBernoulli

__all__ = ["Bernoulli"]


class _LeftOpenUnitInterval(constraints.Constraint):
    """(0, 1]: a keep probability (π = 0 would drop everything)."""

    def check(self, value: Tensor) -> Tensor:
        return (value > 0) & (value <= 1)

    def __repr__(self) -> str:
        return "LeftOpenUnitInterval()"


@register_law("bernoulli")
class Bernoulli(NoiseLaw):
    r"""Bernoulli multiplicative noise, parametrised by the keep probability π.

    .. math:: P(\xi = c) = \pi,\quad P(\xi = 0) = 1 - \pi,\quad c = 1 \text{ or } 1/\pi

    Args:
        keep: keep probability π ∈ (0, 1]. This is **not** torch's drop probability ``p``;
            ``keep = 1 - p``.
        inverted: if True, ξ ∈ {0, 1/π} so that E[ξ] = 1 (torch's ``nn.Dropout`` convention).

    Shape:
        ``batch_shape`` is ``keep.shape``; ``sample(S)`` has shape ``S + batch_shape``.

    Example:
        >>> law = Bernoulli(keep=0.8, inverted=True)
        >>> float(law.mean)
        1.0
    """

    arg_constraints = {"keep": _LeftOpenUnitInterval()}
    has_rsample = False
    is_discrete = True

    def __init__(self, keep: float | Tensor, inverted: bool = False,
                 validate_args: bool | None = None) -> None:
        check_bool("inverted", inverted)
        self.keep = as_param(keep)
        if validate_args is not False:
            check_in_interval("keep", self.keep, 0.0, 1.0)
        self.inverted = inverted
        # A scalar keep is also held as a Python float, read once here rather than at every draw
        # (no device sync per draw); ``bernoulli_(float)`` then draws exactly the mask that
        # ``F.dropout(x, 1 - keep)`` draws from the same random state.
        self._keep_float = float(keep) if self.keep.dim() == 0 else None
        super().__init__(self.keep.shape, validate_args=False)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.nonnegative if self.inverted else constraints.boolean

    def keep_in(self, dtype: torch.dtype, device: torch.device | str | None = None) -> Tensor:
        """π as a tensor of ``dtype``: for a scalar law from the exact Python number it was given
        (a float32 ``keep`` of 0.7 is 0.7 ± 3e-8, which a float64 input would otherwise inherit).
        """
        if self._keep_float is not None:
            return torch.tensor(self._keep_float, dtype=dtype, device=device)
        return self.keep.to(device=device, dtype=dtype)

    @property
    def scale(self) -> Tensor:
        """The non-zero value c of ξ: 1, or 1/π when inverted."""
        return 1.0 / self.keep if self.inverted else torch.ones_like(self.keep)

    @property
    def mean(self) -> Tensor:
        return torch.ones_like(self.keep) if self.inverted else self.keep

    @property
    def second_moment(self) -> Tensor:
        return self.scale.square() * self.keep

    @property
    def variance(self) -> Tensor:
        return self.scale.square() * self.keep * (1 - self.keep)

    @property
    def inverse_square_mean(self) -> Tensor:
        return torch.where(self.keep < 1, inf_like(self.keep), self.scale**-2)

    @property
    def inverse_square_variance(self) -> Tensor:
        return torch.where(self.keep < 1, inf_like(self.keep), torch.zeros_like(self.keep))

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        """Draw ξ: one ``bernoulli_`` into a fresh tensor, then an in-place scale if inverted."""
        with torch.no_grad():
            draw = self._empty(sample_shape)
            if self._keep_float is not None:
                draw.bernoulli_(self._keep_float, generator=generator)
                return draw.div_(self._keep_float) if self.inverted else draw
            draw.bernoulli_(self.keep.expand(draw.shape), generator=generator)
            return draw.div_(self.keep) if self.inverted else draw

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError(
            "Bernoulli noise is discrete and has no reparametrized sample; use sample(), or a "
            "continuous law (e.g. match_dropout('gaussian', p)) when gradients through ξ are needed"
        )

    def log_prob(self, value: Tensor) -> Tensor:
        """log P(ξ = value): log π at c, log(1 − π) at 0, −inf elsewhere."""
        return ScaledBernoulli(self.keep, self.scale).log_prob(value)

    def cdf(self, value: Tensor) -> Tensor:
        return ScaledBernoulli(self.keep, self.scale).cdf(self._cdf_value(value))

    def icdf(self, value: Tensor) -> Tensor:
        """inf{x : F(x) ≥ q}: 0 for q ≤ 1 − π (q = 0 included: the support's lower end), the
        non-zero value c above."""
        q = self._icdf_value(value)
        c = self.scale
        return torch.where(q <= 1 - self.keep, torch.zeros_like(c), c)

    def variance_prior(self) -> Distribution:
        """ξ² ∈ {0, c²} with P(ξ² = c²) = π: a Bernoulli(π) when not inverted, a
        :class:`ScaledBernoulli` on {0, 1/π²} when inverted."""
        if not self.inverted:
            return torch.distributions.Bernoulli(probs=self.keep, validate_args=False)
        return ScaledBernoulli(self.keep, self.scale.square())

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Bernoulli:
        check_float_dtype(dtype)
        moved = Bernoulli(self.keep.to(device=device, dtype=dtype), inverted=self.inverted,
                          validate_args=False)
        moved._keep_float = self._keep_float  # the exact keep, not its float32 rounding
        return moved

    def expand(self, batch_shape, _instance=None) -> Bernoulli:  # type: ignore[override]
        return Bernoulli(self.keep.expand(torch.Size(batch_shape)), inverted=self.inverted,
                         validate_args=False)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, inverted={self.inverted})"
