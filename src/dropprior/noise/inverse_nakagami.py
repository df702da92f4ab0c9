"""Inverse-Nakagami noise: ξ = 1/η, η ~ Nakagami(m, Ω) — the noise of the Student-t prior.

Generative definition: η² ~ Gamma(m, rate m/Ω), so ξ² = 1/η² ~ InverseGamma(m, rate m/Ω), i.e.
ξ = (Ω G/m)^{−1/2} with G ~ Gamma(m, 1).

Moments (from E[η^k] = Γ(m + k/2)/Γ(m)·(Ω/m)^{k/2} with k → −k):

* E[ξ] = Γ(m − ½)/Γ(m)·√(m/Ω), finite for m > ½ (``inf`` at m = ½);
* E[ξ²] = (m/Ω)/(m − 1), finite for m > 1 (``inf`` for m ≤ 1: the tail p(ξ) ~ ξ^{−2m−1});
* Var[ξ] = E[ξ²] − E[ξ]², finite for m > 1;
* E[ξ⁻²] = E[η²] = Ω and Var[ξ⁻²] = Var[η²] = Ω²/m, always finite.

Variance prior: InverseGamma(m, rate m/Ω). Marginal prior: Student-t, ν = 2m, scale σ0/√Ω.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.distributions import (
    Distribution,
    InverseGamma,
    TransformedDistribution,
    constraints,
)

from dropprior._validation import check_at_least, check_positive
from dropprior.noise._base import (
    NoiseLaw,
    SampleShape,
    broadcast_params,
    inf_like,
    sample_size,
)
from dropprior.noise._gamma import draw_gammas, replay_gammas
from dropprior.noise._registry import register_law
from dropprior.noise._sampling import standard_gamma

__all__ = ["InverseNakagami"]

# log g's bracket for the icdf's bisection (float64's normal range) and the halvings that take
# its width of ~1450 below float64's resolution
_LOG_G_RANGE = (-708.0, 709.0)
_BISECTIONS = 64


@register_law("inverse_nakagami")
class InverseNakagami(NoiseLaw):
    r"""Inverse-Nakagami multiplicative noise, ξ = 1/η with η ~ Nakagami(m, Ω).

    .. math:: p(\xi) = \frac{2 m^m}{\Gamma(m)\,\Omega^m}\, \xi^{-2m-1}
              \exp\Big(-\frac{m}{\Omega \xi^2}\Big),\quad \xi > 0

    Args:
        shape: m ≥ ½, the Nakagami shape (``scipy.stats.nakagami(nu=m)``); ν = 2m is the
            Student-t marginal's degrees of freedom.
        spread: Ω > 0, the Nakagami spread E[η²] (``scipy.stats.nakagami(scale=√Ω)``).

    Shape:
        ``batch_shape`` is the broadcast shape of ``shape`` and ``spread``.

    Example:
        >>> law = InverseNakagami(shape=2.0, spread=1.0)
        >>> float(law.second_moment), float(law.inverse_square_mean)
        (2.0, 1.0)
    """

    arg_constraints = {"shape": constraints.greater_than_eq(0.5),
                       "spread": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, shape: float | Tensor, spread: float | Tensor,
                 validate_args: bool | None = None) -> None:
        self.shape, self.spread = broadcast_params(shape, spread)
        if validate_args is not False:
            check_at_least("shape", self.shape, 0.5)
            check_positive("spread", self.spread)
        super().__init__(self.shape.shape, validate_args=False)

    @property
    def _rate(self) -> Tensor:
        """m/Ω, the rate of η² ~ Gamma(m, m/Ω) and the scale of ξ² ~ InverseGamma(m, m/Ω)."""
        return self.shape / self.spread

    @property
    def mean(self) -> Tensor:
        m = self.shape
        safe = torch.where(m > 0.5, m, torch.ones_like(m))
        finite = torch.exp(torch.lgamma(safe - 0.5) - torch.lgamma(safe)) * (safe
                                                                             / self.spread).sqrt()
        return torch.where(m > 0.5, finite, inf_like(m))

    @property
    def second_moment(self) -> Tensor:
        m = self.shape
        safe = torch.where(m > 1, m, torch.full_like(m, 2.0))
        return torch.where(m > 1, self._rate / (safe - 1), inf_like(m))

    @property
    def variance(self) -> Tensor:
        m = self.shape
        finite = (self.second_moment - self.mean.square()).clamp_min(0)
        return torch.where(m > 1, finite, inf_like(m))

    @property
    def inverse_square_mean(self) -> Tensor:
        return self.spread.clone()

    @property
    def inverse_square_variance(self) -> Tensor:
        return self.spread.square() / self.shape

    def _gamma(self, sample_shape: SampleShape, generator: torch.Generator | None) -> Tensor:
        """G ~ Gamma(m, 1) of the extended shape (G > 0), with implicit reparametrized gradients
        to m: the vectorised exact Marsaglia–Tsang sampler of ``dropprior.noise._sampling``."""
        shape = self._extended_shape(sample_size(sample_shape))
        return standard_gamma(self.shape, shape, generator)

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self._gamma(sample_shape, generator).div_(self._rate).rsqrt_()

    def sample_with_record(self, sample_shape: SampleShape = (),
                           generator: torch.Generator | None = None
                           ) -> tuple[Tensor, tuple[Tensor, ...]]:
        shape = self._extended_shape(sample_size(sample_shape))
        with torch.no_grad():
            (g,), patch = draw_gammas([self.shape], shape, generator)
            return g.div_(self._rate).rsqrt_(), tuple(patch)

    def replay(self, sample_shape: SampleShape, generator: torch.Generator | None,
               record: tuple[Tensor, ...]) -> Tensor:
        shape = self._extended_shape(sample_size(sample_shape))
        with torch.no_grad():
            (g,) = replay_gammas([self.shape], shape, generator, record)
            return g.div_(self._rate).rsqrt_()

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        """ξ = √m · Ω^{−1/2} · G^{−1/2}, G ~ Gamma(m, 1) with implicit gamma gradients (torch's
        ``_standard_gamma_grad``). The three factors keep every gradient finite where the single
        (G/(m/Ω))^{−1/2} underflows (m/Ω squared in its gradient vanishes at Ω ≈ 1e30)."""
        return self.shape.sqrt() * self.spread.rsqrt() * torch.rsqrt(
            self._gamma(sample_shape, generator))

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(ξ) = log 2 + m log(m/Ω) − log Γ(m) − (2m + 1) log ξ − (m/Ω)/ξ², in closed form
        (about 8× faster than the composed torch law with its gradient, which matters inside
        NUTS); ``-inf`` for ξ ≤ 0, with a finite gradient."""
        m, rate = self.shape, self._rate
        value = torch.as_tensor(value, dtype=m.dtype, device=m.device)
        inside = value > 0
        safe = torch.where(inside, value, torch.ones_like(value))
        lp = (math.log(2.0) + m * torch.log(rate) - torch.lgamma(m)
              - (2 * m + 1) * torch.log(safe) - rate / safe.square())
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def _torch_law(self) -> Distribution:
        return TransformedDistribution(self.variance_prior(), [self._power(0.5)],
                                       validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.spread.rsqrt()

    def cdf(self, value: Tensor) -> Tensor:
        """P(ξ ≤ x) = P(η² ≥ 1/x²) = Q(m, (m/Ω)/x²), the regularized upper incomplete gamma."""
        value = self._cdf_value(value)
        positive = value > 0
        safe = torch.where(positive, value, torch.ones_like(value))
        q = torch.special.gammaincc(self.shape, self._rate / safe.square())
        return torch.where(positive, q, torch.zeros_like(q))

    def icdf(self, value: Tensor) -> Tensor:
        """√(r/g) with Q(m, g) = q, r = m/Ω: torch has no inverse incomplete gamma, so g is
        found by bisection on log g over float64's range (to its last bit); 0 at q = 0, ``inf``
        at q = 1. Differentiable in q (dx/dq = 1/p(x)) and in Ω (x ∝ Ω^{−1/2} at fixed m and
        q); a gradient in m raises NotImplementedError on backward, as torch's ``gammaincc``
        does in its first argument."""
        return _Quantile.apply(self._icdf_value(value), self.shape, self.spread)

    def variance_prior(self) -> Distribution:
        """ξ² ~ InverseGamma(concentration m, rate m/Ω) (torch's ``InverseGamma``)."""
        return InverseGamma(self.shape, self._rate, validate_args=False)


def _quantile(q: Tensor, m: Tensor, spread: Tensor) -> Tensor:
    """Inverse Nakagami's quantile function by bisection (see :meth:`InverseNakagami.icdf`)."""
    q64, m64 = torch.broadcast_tensors(q.double(), m.double())
    lo = torch.full_like(q64, _LOG_G_RANGE[0])  # Q(m, e^lo) ≥ q
    hi = torch.full_like(q64, _LOG_G_RANGE[1])  # Q(m, e^hi) ≤ q
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        above = torch.special.gammaincc(m64, mid.exp()) > q64
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    x = (m64 / spread.double() / ((lo + hi) / 2).exp()).sqrt()
    return torch.where(q64 == 0, 0.0, torch.where(q64 == 1, math.inf, x)).to(q.dtype)


class _Quantile(torch.autograd.Function):
    """The quantile function with its implicit gradients in q and Ω."""

    @staticmethod
    def forward(q: Tensor, m: Tensor, spread: Tensor) -> Tensor:  # type: ignore[override]
        return _quantile(q, m, spread)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        q, m, spread = inputs
        ctx.save_for_backward(output, m, spread)
        ctx.q_shape = q.shape

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, m, spread = ctx.saved_tensors
        if ctx.needs_input_grad[1]:
            raise NotImplementedError(
                "InverseNakagami.icdf has no derivative in shape (torch's gammaincc has none in "
                "its first argument); detach shape, or differentiate in q and spread only")
        grad_q = grad_spread = None
        if ctx.needs_input_grad[0]:
            inside = (x > 0) & torch.isfinite(x)
            law = InverseNakagami(m.detach(), spread.detach(), validate_args=False)
            density = torch.where(inside, law.log_prob(torch.where(inside, x, 1.0)).exp(), 0.0)
            grad_q = (grad / density).sum_to_size(ctx.q_shape)
        if ctx.needs_input_grad[2]:
            grad_spread = (grad * -x / (2 * spread)).sum_to_size(spread.shape)
        return grad_q, None, grad_spread
