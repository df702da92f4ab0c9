"""The reference table of every registered noise law (after Pyro's distributions conftest).

Each :class:`Fixture` names a law, example parameters, an independent scipy reference for ξ (and,
where scipy has the family, for ξ²), parameters at the edges where a moment stops existing, and
bad parameters with the text the ValueError must quote.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from dropprior import noise


class ScaledBernoulliRef:
    """scipy's Bernoulli(π) on {0, c} (c = 1/π when inverted): the reference for Bernoulli noise."""

    def __init__(self, keep: float, inverted: bool = False) -> None:
        self.base = stats.bernoulli(keep)
        self.c = 1 / keep if inverted else 1.0

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        on_grid = (x == 0) | np.isclose(x, self.c, rtol=1e-15, atol=0)
        with np.errstate(divide="ignore"):
            return np.where(on_grid, self.base.logpmf(np.round(x / self.c)), -np.inf)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return self.base.cdf(np.asarray(x) / self.c)

    def ppf(self, q: np.ndarray) -> np.ndarray:
        return self.c * self.base.ppf(q)

    def mean(self) -> float:
        return self.c * self.base.mean()

    def var(self) -> float:
        return self.c**2 * self.base.var()

    def rvs(self, size: int, random_state: Any = None) -> np.ndarray:
        return self.c * self.base.rvs(size=size, random_state=random_state)


class _InverseNakagamiGen(stats.rv_continuous):
    """ξ = 1/η, η ~ scipy's ``nakagami(nu)``; scale 1/√Ω gives η ~ Nakagami(ν, Ω)."""

    def _pdf(self, x: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return stats.nakagami.pdf(1 / x, nu) / x**2

    def _logpdf(self, x: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return stats.nakagami.logpdf(1 / x, nu) - 2 * np.log(x)

    def _cdf(self, x: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return stats.nakagami.sf(1 / x, nu)

    def _ppf(self, q: np.ndarray, nu: np.ndarray) -> np.ndarray:
        return 1 / stats.nakagami.isf(q, nu)

    def _rvs(self, nu: np.ndarray, size: Any = None, random_state: Any = None) -> np.ndarray:
        return 1 / stats.nakagami.rvs(nu, size=size, random_state=random_state)


inverse_nakagami_ref = _InverseNakagamiGen(a=0.0, name="inverse_nakagami")


@dataclass(frozen=True)
class Fixture:
    name: str
    law: type
    examples: list[dict[str, Any]]
    scipy: Callable[..., Any]                  # params -> frozen scipy law of ξ
    scipy_square: Callable[..., Any] | None    # params -> frozen scipy law of ξ² (named family)
    edges: list[dict[str, Any]] = field(default_factory=list)       # extremes: nan checks
    boundary: list[dict[str, Any]] = field(default_factory=list)    # a moment just stops existing
    bad: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    pathwise: bool = False   # rsample: an explicit transform of parameter-free noise

    @property
    def discrete(self) -> bool:
        return bool(self.law.is_discrete)


def _gaussian_square(mean: float, std: float) -> Any:
    if mean == 0:
        return stats.chi2(1, scale=std**2)
    return stats.ncx2(1, (mean / std) ** 2, scale=std**2)


FIXTURES = [
    Fixture(
        "bernoulli", noise.Bernoulli,
        examples=[{"keep": 0.7}, {"keep": 0.2, "inverted": True}, {"keep": 0.9, "inverted": True}],
        scipy=lambda keep, inverted=False: ScaledBernoulliRef(keep, inverted),
        scipy_square=None,
        edges=[{"keep": 1.0}, {"keep": 1.0, "inverted": True}, {"keep": 1e-6}],
        bad=[({"keep": 0.0}, "0.0"), ({"keep": 1.5}, "1.5"), ({"keep": -0.1}, "-0.1"),
             ({"keep": float("nan")}, "nan")],
    ),
    Fixture(
        "gaussian", noise.Gaussian,
        examples=[{"mean": 1.0, "std": 0.5}, {"mean": 0.0, "std": 2.0}, {"mean": -0.3, "std": 1.3}],
        scipy=lambda mean, std: stats.norm(mean, std),
        scipy_square=_gaussian_square,
        edges=[{"mean": 0.0, "std": 1e-3}, {"mean": 1e3, "std": 1e-3}],
        bad=[({"mean": 1.0, "std": 0.0}, "0.0"), ({"mean": 1.0, "std": -2.0}, "-2.0"),
             ({"mean": float("inf"), "std": 1.0}, "inf")],
        pathwise=True,
    ),
    Fixture(
        "rayleigh", noise.Rayleigh,
        examples=[{"scale": 1.0}, {"scale": 0.3}, {"scale": 2.5}],
        scipy=lambda scale: stats.rayleigh(scale=scale),
        scipy_square=lambda scale: stats.expon(scale=2 * scale**2),
        edges=[{"scale": 1e-4}, {"scale": 1e4}],
        bad=[({"scale": 0.0}, "0.0"), ({"scale": -1.0}, "-1.0")],
        pathwise=True,
    ),
    Fixture(
        "inverse_nakagami", noise.InverseNakagami,
        examples=[{"shape": 2.0, "spread": 1.0}, {"shape": 0.75, "spread": 2.0},
                  {"shape": 5.0, "spread": 0.5}, {"shape": 1.5, "spread": 3.0}],
        scipy=lambda shape, spread: inverse_nakagami_ref(shape, scale=1 / math.sqrt(spread)),
        scipy_square=lambda shape, spread: stats.invgamma(shape, scale=shape / spread),
        edges=[{"shape": 0.5, "spread": 1.0}, {"shape": 1.0, "spread": 1.0},
               {"shape": 1e6, "spread": 1.0}],
        boundary=[{"shape": 0.5, "spread": 1.0}, {"shape": 1.0, "spread": 2.0}],
        bad=[({"shape": 0.4, "spread": 1.0}, "0.4"), ({"shape": 2.0, "spread": 0.0}, "0.0"),
             ({"shape": 2.0, "spread": -3.0}, "-3.0")],
    ),
    Fixture(
        "half_cauchy", noise.HalfCauchy,
        examples=[{"scale": 1.0}, {"scale": 0.1}, {"scale": 3.0}],
        scipy=lambda scale: stats.halfcauchy(scale=scale),
        scipy_square=None,
        edges=[{"scale": 1e-6}],
        bad=[({"scale": 0.0}, "0.0"), ({"scale": -0.5}, "-0.5")],
        pathwise=True,
    ),
    Fixture(
        "beta", noise.Beta,
        examples=[{"concentration1": 2.0, "concentration0": 3.0},
                  {"concentration1": 0.5, "concentration0": 0.7},
                  {"concentration1": 6.0, "concentration0": 1.5}],
        scipy=lambda concentration1, concentration0: stats.beta(concentration1, concentration0),
        scipy_square=None,
        edges=[{"concentration1": 2.0, "concentration0": 1.0},
               {"concentration1": 4.0, "concentration0": 1.0},
               {"concentration1": 1e-3, "concentration0": 1e-3}],
        boundary=[{"concentration1": 2.0, "concentration0": 1.0},
                  {"concentration1": 4.0, "concentration0": 1.0}],
        bad=[({"concentration1": 0.0, "concentration0": 1.0}, "0.0"),
             ({"concentration1": 1.0, "concentration0": -1.0}, "-1.0")],
    ),
    Fixture(
        "uniform", noise.Uniform,
        examples=[{"low": 0.5, "high": 1.5}, {"low": -0.5, "high": 2.0}, {"low": 0.0, "high": 1.0},
                  {"low": -2.0, "high": -1.0}],
        scipy=lambda low, high: stats.uniform(loc=low, scale=high - low),
        scipy_square=None,
        edges=[{"low": 0.0, "high": 1e-6}, {"low": -1.0, "high": 0.0}],
        boundary=[{"low": -1.0, "high": 0.0}],
        bad=[({"low": 1.0, "high": 1.0}, "1.0"), ({"low": 2.0, "high": 1.0}, "2.0"),
             ({"low": float("-inf"), "high": 1.0}, "-inf")],
        pathwise=True,
    ),
    Fixture(
        "log_normal", noise.LogNormal,
        examples=[{"loc": 0.0, "scale": 0.5}, {"loc": -0.2, "scale": 0.6},
                  {"loc": 1.0, "scale": 1.5}],
        scipy=lambda loc, scale: stats.lognorm(s=scale, scale=math.exp(loc)),
        scipy_square=lambda loc, scale: stats.lognorm(s=2 * scale, scale=math.exp(2 * loc)),
        edges=[{"loc": 0.0, "scale": 1e-4}, {"loc": 0.0, "scale": 5.0}],
        bad=[({"loc": 0.0, "scale": 0.0}, "0.0"), ({"loc": 0.0, "scale": -1.0}, "-1.0"),
             ({"loc": float("nan"), "scale": 1.0}, "nan")],
        pathwise=True,
    ),
]

BY_NAME = {f.name: f for f in FIXTURES}


def cases(fixtures: list[Fixture] | None = None) -> list[tuple[Fixture, dict[str, Any]]]:
    """(fixture, example) pairs for ``pytest.mark.parametrize``."""
    return [(f, ex) for f in (fixtures or FIXTURES) for ex in f.examples]


def case_id(case: Any) -> str:
    if isinstance(case, Fixture):
        return case.name
    return ",".join(f"{k}={v}" for k, v in case.items())


def make(fixture: Fixture, params: dict[str, Any], dtype: Any = None) -> noise.NoiseLaw:
    """The law under test, its tensor parameters in ``dtype`` (float64 by default)."""
    import torch

    dtype = dtype or torch.float64
    kwargs = {k: (torch.tensor(v, dtype=dtype) if isinstance(v, float) else v)
              for k, v in params.items()}
    return fixture.law(**kwargs)
