r"""Noise laws truncated from above: ξ | ξ ≤ u, a heavy-tailed law with every moment.

Half-Cauchy noise has no mean and inverse-Nakagami noise with m ≤ 1 no variance; in a wide
layer a sum of such draws does not average out (it stays heavy-tailed whatever the fan-in), and
training stalls (``docs/heavy-tails.md``). Truncating ξ at an upper bound u keeps the law's shape
below u — in particular its density at ξ → 0, which is what gives the horseshoe its pole at
w = 0 — and removes the tail that breaks training.

**A truncation changes the prior.** With base density p and cdf F,

.. math::
    p_u(\xi) = \frac{p(\xi)}{F(u)}\,\mathbf 1[0 \le \xi \le u], \qquad
    p_u(w) = \int_0^u N(w; 0, \sigma_0^2\xi^2)\, p_u(\xi)\, d\xi,

so the marginal prior on w = ξz keeps the base marginal's behaviour near w = 0 but has Gaussian
tails beyond ≈ σ0·u instead of the base's heavy ones (a truncated horseshoe is no longer a
horseshoe in the tails). ``Truncated(law, u).marginal(sigma0)`` returns that marginal: no closed
form is registered for it, so it is served by the numerical-quadrature fallback registered for
:class:`~dropprior.noise.NoiseLaw` in :mod:`dropprior.priors` (where that fallback exists).

Moments are exact up to quadrature error: :math:`E[\xi^k] = \int_0^u \xi^k p(\xi)\,d\xi / F(u)`,
by adaptive quadrature (``scipy.integrate.quad``) of the base law's own density, in float64.
E[ξ⁻²] and Var[ξ⁻²] are ``inf`` exactly where the base law's are (truncating the upper tail
does not change the behaviour at ξ → 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from scipy import integrate
from torch import Tensor
from torch.distributions import Distribution, constraints

from dropprior._validation import as_param, check_float_dtype, check_positive
from dropprior.noise import NoiseLaw, SampleShape, sample_size

__all__ = ["Truncated"]

MIN_REJECTION_MASS = 1e-6
"""The least mass F(upper) a truncation of a law without an inverse cdf may keep: it is sampled by
rejection from the base law, at 1/F(upper) draws per accepted one."""
_MAX_REJECTION_ROUNDS = 1000


def _nonnegative_support(law: NoiseLaw) -> bool:
    support = law.support
    if support in (constraints.nonnegative, constraints.positive):
        return True
    lower = getattr(support, "lower_bound", None)
    return lower is not None and bool(torch.all(torch.as_tensor(lower) >= 0))


def _quadrature_moments(base: NoiseLaw, upper: Tensor) -> dict[str, Tensor]:
    """E[ξ], E[ξ²], E[ξ⁻²], E[ξ⁻⁴] of the truncated law by adaptive quadrature, as float64
    tensors on the CPU."""
    law = base.to(dtype=torch.float64)
    u = float(upper)
    log_z = float(torch.log(law.cdf(torch.tensor(u, dtype=torch.float64))))

    def density(x: float) -> float:
        return math.exp(float(law.log_prob(torch.tensor(x, dtype=torch.float64))) - log_z)

    finite = {"im2": bool(torch.isfinite(base.inverse_square_mean)),
              "im4": bool(torch.isfinite(base.inverse_square_variance))}
    out = {}
    for key, k in (("m1", 1.0), ("m2", 2.0), ("im2", -2.0), ("im4", -4.0)):
        if not finite.get(key, True):
            out[key] = math.inf
            continue
        value, _ = integrate.quad(lambda x, k=k: x ** k * density(x), 0.0, u, limit=200,
                                  epsabs=0.0, epsrel=1e-11)
        out[key] = value
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}


def _torch_icdf(base: NoiseLaw) -> Callable[[Tensor], Tensor] | None:
    """The base law's inverse cdf from its torch form, or None where torch has none."""
    try:
        torch_law = base._torch_law()
        torch_law.icdf(torch.full(base.batch_shape, 0.5, dtype=base.mean.dtype))
    except NotImplementedError:
        return None
    return torch_law.icdf


class Truncated(NoiseLaw):
    r"""A continuous non-negative noise law conditioned on ξ ≤ ``upper``.

    .. math:: p_u(\xi) = p(\xi)/F(u),\quad 0 \le \xi \le u

    Args:
        base: a scalar continuous :class:`~dropprior.noise.NoiseLaw` on ξ ≥ 0 (e.g.
            :class:`~dropprior.noise.HalfCauchy`, :class:`~dropprior.noise.InverseNakagami`)
            with a ``cdf``.
        upper: the scalar truncation point u > 0; it must keep some mass, F(u) > 0.

    Sampling is by the inverse cdf where torch has the base law's ``icdf`` (half-Cauchy), else
    by rejection from the base law (acceptance rate F(u)); both take ``generator``.
    ``rsample`` is not provided (the accepted draws' pathwise gradient in the base parameters
    would be biased).

    Shape:
        ``batch_shape`` is () (``expand`` broadcasts it, as torch distributions do).

    Example:
        >>> from dropprior.noise import HalfCauchy
        >>> law = Truncated(HalfCauchy(1.0), upper=10.0)
        >>> round(float(law.mean), 4)  # ln(1 + u²) / (2 atan u)
        1.5686
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    has_rsample = False

    def __init__(self, base: NoiseLaw, upper: float | Tensor,
                 validate_args: bool | None = None) -> None:
        if not isinstance(base, NoiseLaw):
            raise TypeError(f"base must be a dropprior NoiseLaw, got {base!r}")
        if isinstance(base, Truncated):
            raise TypeError("base is already Truncated; truncate the original law once, at the "
                            "smaller bound")
        if base.is_discrete:
            raise ValueError(f"Truncated needs a continuous law, got the discrete {base!r}")
        if not _nonnegative_support(base):
            raise ValueError(f"Truncated needs a law on ξ ≥ 0 (scale noise), got {base!r} with "
                             f"support {base.support}")
        if base.batch_shape != torch.Size():
            raise ValueError(f"Truncated takes a scalar law (as the layers do), got batch_shape "
                             f"{tuple(base.batch_shape)}")
        upper_t = as_param(upper).to(base.mean.dtype)
        if upper_t.dim() != 0:
            raise ValueError(f"upper must be a scalar, got shape {tuple(upper_t.shape)}")
        check_positive("upper", upper_t)
        log_mass = torch.log(base.cdf(upper_t))
        if not bool(torch.isfinite(log_mass)):
            raise ValueError(f"upper={upper!r} leaves no mass of {base!r} (F(upper) = 0)")
        if _torch_icdf(base) is None and float(log_mass.exp()) < MIN_REJECTION_MASS:
            raise ValueError(
                f"upper={upper!r} keeps F(upper) = {float(log_mass.exp()):.3g} of {base!r}; "
                f"sampling it by rejection needs F(upper) >= {MIN_REJECTION_MASS:g} (about "
                f"1/{1 / MIN_REJECTION_MASS:g} base draws per accepted one): raise upper")
        self._assemble(base, upper_t, _quadrature_moments(base, upper_t))

    def _assemble(self, base: NoiseLaw, upper: Tensor, moments64: dict[str, Tensor]) -> None:
        self.base, self.upper, self._moments64 = base, upper, moments64
        # log F(u) in the law's own dtype (a float32 value cast up would be off by ~1e-8)
        self._log_mass = torch.log(base.cdf(upper))
        self._moments = {k: v.to(device=upper.device, dtype=upper.dtype).expand(upper.shape)
                         for k, v in moments64.items()}
        self._icdf = _torch_icdf(base)
        Distribution.__init__(self, upper.shape, validate_args=False)

    # ---- parameters ----------------------------------------------------------------------
    def params(self) -> dict[str, Tensor]:
        return {"upper": self.upper, **self.base.params()}

    def _param_like(self) -> Tensor:
        return self.upper

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return constraints.interval(torch.zeros_like(self.upper), self.upper)

    def _moved(self, convert: Any) -> Truncated:
        """A copy whose tensors are ``convert(t)`` (no new quadrature)."""
        out = Truncated.__new__(Truncated)
        out._assemble(convert(self.base), convert(self.upper), self._moments64)
        return out

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Truncated:
        check_float_dtype(dtype)
        if (device is None or torch.device(device) == self.upper.device) and (
                dtype is None or dtype == self.upper.dtype):
            return self
        return self._moved(lambda t: t.to(device, dtype) if isinstance(t, NoiseLaw)
                           else t.to(device=device, dtype=dtype))

    def expand(self, batch_shape: Any, _instance: Any = None) -> Truncated:
        shape = torch.Size(batch_shape)
        return self._moved(lambda t: t.expand(shape))

    def __repr__(self) -> str:
        u = self.upper
        shown = f"{u.item():.4g}" if u.numel() == 1 else f"tensor(shape={tuple(u.shape)})"
        return f"Truncated({self.base!r}, upper={shown})"

    @property
    def mean(self) -> Tensor:
        return self._moments["m1"]

    @property
    def second_moment(self) -> Tensor:
        return self._moments["m2"]

    @property
    def variance(self) -> Tensor:
        return (self._moments["m2"] - self._moments["m1"].square()).clamp_min(0)

    @property
    def inverse_square_mean(self) -> Tensor:
        return self._moments["im2"]

    @property
    def inverse_square_variance(self) -> Tensor:
        im2, im4 = self._moments["im2"], self._moments["im4"]
        finite = torch.isfinite(im2) & torch.isfinite(im4)
        return torch.where(finite, (im4 - im2.square()).clamp_min(0),
                           torch.full_like(im4, math.inf))

    # ---- densities -----------------------------------------------------------------------
    def log_prob(self, value: Tensor) -> Tensor:
        """log p(ξ) − log F(u) on [0, u]; ``-inf`` above u and below 0."""
        value = torch.as_tensor(value, dtype=self.upper.dtype, device=self.upper.device)
        inside = (value >= 0) & (value <= self.upper)
        lp = self.base.log_prob(torch.where(inside, value, self.upper)) - self._log_mass
        return torch.where(inside, lp, torch.full_like(lp, -math.inf))

    def cdf(self, value: Tensor) -> Tensor:
        """F(min(x, u)) / F(u); a ValueError naming ``Truncated.cdf`` at nan."""
        value = self._cdf_value(value)
        clipped = torch.minimum(value.clamp_min(0), self.upper)
        return (self.base.cdf(clipped) / self._log_mass.exp()).clamp(0, 1)

    def icdf(self, value: Tensor) -> Tensor:
        """F⁻¹(q·F(u)) by the base law's ``icdf``, within [0, u]; a ValueError naming
        ``Truncated.icdf`` for a q that is no probability."""
        q = self._icdf_value(value)
        return self._kept_quantile(self.base.icdf, q)

    def _kept_quantile(self, base_icdf: Callable[[Tensor], Tensor], q: Tensor) -> Tensor:
        """F⁻¹(q·F(u)) by ``base_icdf`` (the base law's quantile function), within [0, u]."""
        return base_icdf(q * self._log_mass.exp()).clamp(min=0).minimum(self.upper)

    def _inside_point(self) -> Tensor:
        return self.upper / 2

    # ---- sampling ------------------------------------------------------------------------
    def sample(self, sample_shape: SampleShape = (),
               generator: torch.Generator | None = None) -> Tensor:
        """Inverse-cdf sampling ξ = F⁻¹(U·F(u)) where the base law's torch form has an
        ``icdf`` (half-Cauchy), else rejection from the base law (draws above u are discarded).
        Both use only ``generator``."""
        shape = self._extended_shape(sample_size(sample_shape))
        with torch.no_grad():
            if self._icdf is not None:
                p = self.upper.new_empty(shape).uniform_(generator=generator)
                return self._kept_quantile(self._icdf, p)
            return self._rejection(sample_size(sample_shape), shape, generator)

    def _rejection(self, sample_shape: torch.Size, shape: torch.Size,
                   generator: torch.Generator | None) -> Tensor:
        if self.base.batch_shape != torch.Size():  # an expanded law: redraw in place
            draw = self.base.sample(sample_shape, generator=generator)  # type: ignore[call-arg]
            upper = self.upper.expand(shape)
            for _ in range(_MAX_REJECTION_ROUNDS):
                reject = draw > upper
                if not bool(reject.any()):
                    return draw
                fresh = self.base.sample(sample_shape, generator=generator)  # type: ignore
                draw = torch.where(reject, fresh, draw)
        else:  # a scalar law: draw a flat batch sized by the acceptance rate, keep the accepted
            need = shape.numel()
            accept = float(self._log_mass.exp())
            kept: list[Tensor] = []
            for _ in range(_MAX_REJECTION_ROUNDS):
                if need <= 0:
                    return torch.cat(kept)[:shape.numel()].reshape(shape)
                flat = self.base.sample((math.ceil(need / accept * 1.05) + 16,),
                                        generator=generator)  # type: ignore[call-arg]
                flat = flat[flat <= self.upper]
                kept.append(flat)
                need -= flat.numel()
        raise RuntimeError(f"{self!r}: rejection sampling did not finish in "
                           f"{_MAX_REJECTION_ROUNDS} rounds (F(upper) is too small)")

    def rsample(self, sample_shape: SampleShape = (),
                generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError(
            f"{self!r} has no reparametrized sampler; use sample() (the layers do when the "
            "law's parameters need no gradient)"
        )

    def variance_prior(self) -> Distribution:
        raise NotImplementedError(
            "the variance prior of a truncated law (ξ² truncated at u²) has no closed form here; "
            "use Truncated(...).log_prob with the change of variable ξ = √v"
        )
