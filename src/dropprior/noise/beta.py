"""Beta noise ξ ~ Beta(a, b) on [0, 1] (Tomczak's "dropping" with Beta noise).

Moments: E[ξ] = a/(a+b), Var[ξ] = ab/((a+b)²(a+b+1)), E[ξ²] = a(a+1)/((a+b)(a+b+1));
E[ξ^{−k}] = B(a−k, b)/B(a, b) = Π_{i=1..k} (a+b−i)/(a−i) exists only for a > k, so E[ξ⁻²] is
finite for a > 2 and Var[ξ⁻²] for a > 4 (the density ~ ξ^{a−1} at 0).

Variance prior: ξ² via ``PowerTransform(2)``. Marginal prior: numerical quadrature.

ξ ≤ 1 forces E[ξ] < 1 unless ξ ≡ 1, so ``match_dropout("beta", p)`` raises.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Beta as TorchBeta
from torch.distributions import Distribution, TransformedDistribution, constraints

from dropprior._validation import check_positive
from dropprior.noise._base import (
    NoiseLaw,
    SampleShape,
    broadcast_params,
    inf_like,
    sample_size,
)
from dropprior.noise._gamma import draw_gammas, replay_gammas
from dropprior.noise._registry import register_law
from dropprior.noise._sampling import log_standard_gamma, needs_boost, with_gamma_gradient

__all__ = ["Beta"]


@register_law("beta")
class Beta(NoiseLaw):
    r"""Beta multiplicative noise.

    .. math:: p(\xi) = \frac{\xi^{a-1}(1-\xi)^{b-1}}{B(a, b)},\quad 0 \le \xi \le 1

    Args:
        concentration1: a > 0 (``scipy.stats.beta(a, b)``).
        concentration0: b > 0.

    Shape:
        ``batch_shape`` is the broadcast shape of the two concentrations.

    Example:
        >>> float(Beta(2.0, 2.0).mean)
        0.5
    """

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1: float | Tensor, concentration0: float | Tensor,
                 validate_args: bool | None = None) -> None:
        self.concentration1, self.concentration0 = broadcast_params(concentration1,
                                                                    concentration0)
        if validate_args is not False:
            check_positive("concentration1", self.concentration1)
            check_positive("concentration0", self.concentration0)
        super().__init__(self.concentration1.shape, validate_args=False)

    @property
    def _total(self) -> Tensor:
        return self.concentration1 + self.concentration0

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / self._total

    @property
    def variance(self) -> Tensor:
        a, b, t = self.concentration1, self.concentration0, self._total
        return a * b / (t.square() * (t + 1))

    @property
    def second_moment(self) -> Tensor:
        a, t = self.concentration1, self._total
        return a * (a + 1) / (t * (t + 1))

    def _inverse_moment(self, k: int) -> Tensor:
        """E[ξ^{−k}] = Π_{i=1..k} (a+b−i)/(a−i) for a > k, else ``inf``."""
        a = self.concentration1
        safe = torch.where(a > k, a, torch.full_like(a, k + 1.0))
        t = safe + self.concentration0
        value = torch.ones_like(safe)
        for i in range(1, k + 1):
            value = value * (t - i) / (safe - i)
        return torch.where(a > k, value, inf_like(a))

    @property
    def inverse_square_mean(self) -> Tensor:
        return self._inverse_moment(2)

    @property
    def inverse_square_variance(self) -> Tensor:
        a = self.concentration1
        finite = (self._inverse_moment(4) - self._inverse_moment(2).square()).clamp_min(0)
        return torch.where(a > 4, finite, inf_like(a))

    def _needs_log_form(self) -> bool:
        """Some concentration < 1, or tracing under ``torch.compile`` (see ``_gammas``)."""
        return torch.compiler.is_compiling() or needs_boost(self.concentration1.detach()) or \
            needs_boost(self.concentration0.detach())

    def _gammas(self, sample_shape: SampleShape, generator: torch.Generator | None
                ) -> tuple[Tensor, Tensor] | None:
        """(G₁, G₀) ~ Gamma(a) ⊗ Gamma(b), or None where the log-space form is needed (some
        concentration < 1, whose gamma draws can underflow; or under ``torch.compile``, where
        the branch on the parameters' values would break the graph)."""
        if self._needs_log_form():
            return None
        shape = self._extended_shape(sample_size(sample_shape))
        with torch.no_grad():  # the very draws of ``sample``, so sample and rsample agree
            (g1, g0), _ = draw_gammas([self.concentration1.detach(),
                                       self.concentration0.detach()], shape, generator)
        return (with_gamma_gradient(self.concentration1, g1),
                with_gamma_gradient(self.concentration0, g0))

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        """ξ = G₁/(G₁ + G₀) = σ(log G₁ − log G₀), G₁ ~ Gamma(a), G₀ ~ Gamma(b): implicit gamma
        gradients.

        The gammas come from the exact vectorised Marsaglia–Tsang sampler of
        ``dropprior.noise._sampling``. When a concentration is < 1 the log form is used, with
        log G = log G(α + 1) + log(U)/α: float32 Gamma(0.1) draws underflow to 0 with
        probability ~1e-4, their logarithms do not."""
        gammas = self._gammas(sample_shape, generator)
        if gammas is not None:
            g1, g0 = gammas
            return g1 / (g1 + g0)
        shape = self._extended_shape(sample_size(sample_shape))
        log_g1 = log_standard_gamma(self.concentration1, shape, generator)
        log_g0 = log_standard_gamma(self.concentration0, shape, generator)
        return torch.sigmoid(log_g1 - log_g0)

    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        if self._needs_log_form():
            with torch.no_grad():
                return self.rsample(sample_shape, generator)
        return self.sample_with_record(sample_shape, generator)[0]

    def sample_with_record(self, sample_shape: SampleShape = (),
                           generator: torch.Generator | None = None
                           ) -> tuple[Tensor, tuple[Tensor, ...]]:
        if self._needs_log_form():
            return super().sample_with_record(sample_shape, generator)
        shape = self._extended_shape(sample_size(sample_shape))
        with torch.no_grad():
            (g1, g0), patch = draw_gammas([self.concentration1, self.concentration0], shape,
                                          generator)
            return g1.div_(g0.add_(g1)), tuple(patch)

    def replay(self, sample_shape: SampleShape, generator: torch.Generator | None,
               record: tuple[Tensor, ...]) -> Tensor:
        if self._needs_log_form():
            return super().replay(sample_shape, generator, record)
        shape = self._extended_shape(sample_size(sample_shape))
        with torch.no_grad():
            g1, g0 = replay_gammas([self.concentration1, self.concentration0], shape, generator,
                                   record)
            return g1.div_(g0.add_(g1))

    def cdf(self, value: Tensor) -> Tensor:
        """Not provided: torch has no regularized incomplete beta function. A NotImplementedError
        naming scipy's, which computes it outside autograd."""
        raise NotImplementedError(
            "Beta.cdf: torch has no regularized incomplete beta function; "
            "scipy.stats.beta(concentration1, concentration0).cdf computes it outside autograd")

    def icdf(self, value: Tensor) -> Tensor:
        """Not provided (no cdf, see :meth:`cdf`); a NotImplementedError naming scipy's."""
        raise NotImplementedError(
            "Beta.icdf: torch has no inverse regularized incomplete beta function; "
            "scipy.stats.beta(concentration1, concentration0).ppf computes it outside autograd")

    def _torch_law(self) -> Distribution:
        return TorchBeta(self.concentration1, self.concentration0, validate_args=False)

    def _inside_point(self) -> Tensor:
        return self.mean

    def variance_prior(self) -> Distribution:
        """ξ² via ``TransformedDistribution(Beta(a, b), PowerTransform(2))``."""
        return TransformedDistribution(self._torch_law(), [self._power(2.0)],
                                       validate_args=False)
