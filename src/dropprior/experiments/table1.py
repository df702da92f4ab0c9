"""The paper's Table 1 for every registered noise law, checked by Monte Carlo
(``dropprior priors``).

For each law (at the parameters that match a dropout rate, see ``match_dropout``; laws that cannot
match use the stated defaults) :func:`table_rows` computes the exact moments, the family of the
variance prior p(ξ²) and of the marginal prior p(w) of w = ξ·z, z ~ N(0, σ0²), and a one-sample KS
test of hierarchical draws (ξ from the law, then z) against the marginal's cdf. The spike-and-slab
cdf jumps at 0, so every draw is mapped through the randomised probability integral transform
u = F(w⁻) + V·(F(w) − F(w⁻)), V ~ U(0, 1), which is exactly U(0, 1) under the prior, and u is
KS-tested against U(0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from scipy import stats

from dropprior._validation import check_seed
from dropprior.noise import (
    Beta,
    Gaussian,
    HalfCauchy,
    NoiseLaw,
    Rayleigh,
    match_dropout,
    registered_laws,
)
from dropprior.priors import QuadratureMarginal, ScaleMixture, SpikeAndSlab

__all__ = ["table_rows", "PriorRow", "DEFAULT_RATE", "DEFAULT_SIGMA0", "DEFAULT_SAMPLES",
           "DEFAULT_SEED"]

DEFAULT_RATE = 0.5
DEFAULT_SIGMA0 = 1.0
DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 0

# Laws that cannot match a dropout rate (they raise in match_dropout) use these parameters.
_UNMATCHED: dict[str, tuple[str, Callable[[], NoiseLaw]]] = {
    "rayleigh": ("E[xi] = 1", lambda: Rayleigh.with_mean(1.0)),
    "half_cauchy": ("scale 1", lambda: HalfCauchy(1.0)),
    "beta": ("Beta(2, 2)", lambda: Beta(2.0, 2.0)),
}


@dataclass(frozen=True)
class PriorRow:
    """One line of the table: a law, its exact moments, the two families and the KS check."""

    name: str
    law: NoiseLaw
    how: str
    moments: dict[str, float]
    variance_prior: str
    marginal: str
    closed_form: bool
    ks_statistic: float
    ks_pvalue: float


def _laws(rate: float) -> list[tuple[str, NoiseLaw, str]]:
    laws: list[tuple[str, NoiseLaw, str]] = []
    for name in sorted(registered_laws()):
        try:
            laws.append((name, match_dropout(name, rate, dtype=torch.float64),
                         f"matched to p={rate:g}"))
        except ValueError as err:
            if name not in _UNMATCHED:
                raise ValueError(f"law {name!r} cannot match p={rate:g} ({err}) and has no "
                                 "default parameters in `dropprior priors`") from None
            how, build = _UNMATCHED[name]
            laws.append((name, build().to(dtype=torch.float64), how))
        if name == "gaussian":
            std = math.sqrt(rate / (1 - rate))
            laws.append(("gaussian", Gaussian(0.0, std).to(dtype=torch.float64),
                         f"mean 0, std {std:.4g}"))
    return laws


def _pit(marginal: ScaleMixture, w: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomised probability integral transform: U(0, 1) under the prior, atoms included."""
    upper = marginal.cdf(w)
    if isinstance(marginal, SpikeAndSlab):
        lower = torch.where(w == 0, upper - marginal.atom_mass, upper)
        v = torch.rand(w.shape, dtype=w.dtype, generator=generator)
        return lower + v * (upper - lower)
    return upper


def table_rows(rate: float = DEFAULT_RATE, sigma0: float = DEFAULT_SIGMA0,
               samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED) -> list[PriorRow]:
    """Compute every row of the table (see the module docstring)."""
    if not 0 <= rate < 1:
        raise ValueError(f"--rate must be a drop probability in [0, 1), got {rate}")
    if not (math.isfinite(sigma0) and sigma0 > 0):
        raise ValueError(f"--sigma0 must be finite and > 0, got {sigma0}")
    if samples < 10:
        raise ValueError(f"--samples must be >= 10, got {samples}")
    check_seed(seed, low=0)
    rows = []
    for name, law, how in _laws(rate):
        generator = torch.Generator().manual_seed(seed)
        marginal = law.marginal(sigma0)
        assert isinstance(marginal, ScaleMixture)
        xi = law.sample((samples,), generator=generator)  # type: ignore[call-arg]
        z = sigma0 * torch.randn(samples, dtype=torch.float64, generator=generator)
        u = _pit(marginal, xi * z, generator)
        ks = stats.kstest(u.numpy(), "uniform")
        moments = {
            "E[xi]": law.mean, "Var[xi]": law.variance, "E[xi^2]": law.second_moment,
            "E[xi^-2]": law.inverse_square_mean, "Var[xi^-2]": law.inverse_square_variance,
        }
        rows.append(PriorRow(
            name=name, law=law, how=how,
            moments={k: float(v) for k, v in moments.items()},
            variance_prior=_family(law.variance_prior()),
            marginal=type(marginal).__name__,
            closed_form=not isinstance(marginal, QuadratureMarginal),
            ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue),
        ))
    return rows


def _family(dist: torch.distributions.Distribution) -> str:
    """The family of a distribution: its class, or base ∘ transforms for a transformed one."""
    if type(dist) is torch.distributions.TransformedDistribution:  # not a named subclass
        steps = ", ".join(type(t).__name__.replace("Transform", "") for t in dist.transforms)
        return f"{_family(dist.base_dist)} -> {steps}"
    return type(dist).__name__
