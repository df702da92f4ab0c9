"""The fused kernels' view of a noise law: which transform of the Philox words draws ξ
(:class:`LawId`) and with which constants (:class:`FusedPlan`), by law type.

A leaf module: the launcher (:mod:`dropprior.functional._fused`) and both kernels (the Triton
:mod:`~dropprior.functional._noise_kernels` and the Numba
:mod:`~dropprior.functional._cpu_kernels`) import it, and it imports only the laws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple

from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    NoiseLaw,
    Rayleigh,
    Uniform,
)

__all__ = ["LawId", "FusedPlan", "kernel_plan"]


class LawId(IntEnum):
    """Which transform of the Philox words gives ξ (the kernel's ``LAW`` constexpr)."""

    BERNOULLI = 0
    UNIFORM = 1
    GAUSSIAN = 2
    LOG_NORMAL = 3
    RAYLEIGH = 4
    HALF_CAUCHY = 5
    INVERSE_NAKAGAMI = 6
    BETA = 7
    BETA_TWO_TWO = 8  # Beta(2, 2) by its inverse CDF, from one word


class FusedPlan(NamedTuple):
    """A law as the kernel sees it: its id, four float parameters, and for the gamma-based laws
    2α of each gamma where α is a half-integer ≤ 8 (drawn as an exact sum; 0: by rejection) and
    whether the rejection sampler needs the boost for α < 1."""

    law: LawId
    params: tuple[float, float, float, float]
    twice_a: int = 0
    twice_b: int = 0
    boost: bool = False


# law type -> plan (None where the fused kernel does not apply to these parameter values).
_PLANS: dict[type, Callable[[Any], FusedPlan | None]] = {}


def _plan_for(law_type: type) -> Callable[[Callable[[Any], FusedPlan | None]],
                                          Callable[[Any], FusedPlan | None]]:
    def decorator(plan: Callable[[Any], FusedPlan | None]) -> Callable[[Any], FusedPlan | None]:
        _PLANS[law_type] = plan
        return plan

    return decorator


def _gamma_constants(alpha: float) -> tuple[float, float]:
    """Marsaglia–Tsang's d = α − 1/3 and c = 1/√(9d), for α ≥ 1."""
    d = alpha - 1.0 / 3.0
    return d, 1.0 / math.sqrt(9.0 * d)


def _twice_half_integer(alpha: float) -> int:
    """2α where α ∈ {½, 1, 3/2, ..., 8} (Gamma(α) is then an exact sum of α exponentials, or of
    α − ½ exponentials and half a χ²₁), else 0."""
    twice = 2.0 * alpha
    return int(twice) if twice == int(twice) and 1 <= twice <= 16 else 0


@_plan_for(Bernoulli)
def _bernoulli(law: Bernoulli) -> FusedPlan | None:
    keep = float(law.keep)
    if law.inverted and keep == 0.0:
        return None  # 0/0: left to the general path's own handling
    return FusedPlan(LawId.BERNOULLI, (keep, 1.0 / keep if law.inverted else 1.0, 0.0, 0.0))


@_plan_for(Uniform)
def _uniform(law: Uniform) -> FusedPlan:
    low = float(law.low)
    return FusedPlan(LawId.UNIFORM, (low, float(law.high) - low, 0.0, 0.0))


@_plan_for(Gaussian)
def _gaussian(law: Gaussian) -> FusedPlan:
    return FusedPlan(LawId.GAUSSIAN, (float(law.loc), float(law.std), 0.0, 0.0))


@_plan_for(LogNormal)
def _log_normal(law: LogNormal) -> FusedPlan:
    return FusedPlan(LawId.LOG_NORMAL, (float(law.loc), float(law.scale), 0.0, 0.0))


# The kernels fold the scale into one product, √(−2s² log V): s² must be a normal float32.
_RAYLEIGH_SCALES = (1e-18, 1e18)


@_plan_for(Rayleigh)
def _rayleigh(law: Rayleigh) -> FusedPlan | None:
    scale = float(law.scale)
    if not _RAYLEIGH_SCALES[0] <= scale <= _RAYLEIGH_SCALES[1]:
        return None  # s² would overflow or underflow: the general path's s·√(−2 log V)
    return FusedPlan(LawId.RAYLEIGH, (-2.0 * scale**2, 0.0, 0.0, 0.0))


@_plan_for(HalfCauchy)
def _half_cauchy(law: HalfCauchy) -> FusedPlan:
    return FusedPlan(LawId.HALF_CAUCHY, (float(law.scale), 0.0, 0.0, 0.0))


@_plan_for(InverseNakagami)
def _inverse_nakagami(law: InverseNakagami) -> FusedPlan:
    m, spread = float(law.shape), float(law.spread)
    twice = _twice_half_integer(m)
    if twice:
        return FusedPlan(LawId.INVERSE_NAKAGAMI, (0.0, 0.0, 0.0, m / spread), twice)
    boost = m < 1.0  # m ≥ 1/2: G(m) = G(m + 1)·V^{1/m}
    d, c = _gamma_constants(m + 1.0 if boost else m)
    return FusedPlan(LawId.INVERSE_NAKAGAMI, (d, c, 1.0 / m, m / spread), 0, 0, boost)


@_plan_for(Beta)
def _beta(law: Beta) -> FusedPlan | None:
    a, b = float(law.concentration1), float(law.concentration0)
    if a == b == 2.0:  # F(ξ) = 3ξ² − 2ξ³ inverts in closed form: one uniform, no gamma draws
        return FusedPlan(LawId.BETA_TWO_TWO, (0.0, 0.0, 0.0, 0.0))
    twice_a, twice_b = _twice_half_integer(a), _twice_half_integer(b)
    if (a < 1.0 and not twice_a) or (b < 1.0 and not twice_b):
        return None  # the general path's log-space form keeps tiny gamma draws from underflowing
    d_a, c_a = (0.0, 0.0) if twice_a else _gamma_constants(a)
    d_b, c_b = (0.0, 0.0) if twice_b else _gamma_constants(b)
    return FusedPlan(LawId.BETA, (d_a, c_a, d_b, c_b), twice_a, twice_b)


def kernel_plan(law: NoiseLaw) -> FusedPlan | None:
    """The kernel's view of ``law`` whatever the device, or None for a law or parameter values
    the kernel does not draw."""
    plan = _PLANS.get(type(law))
    return None if plan is None else plan(law)
