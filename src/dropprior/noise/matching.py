"""Matching a dropout rate across noise laws (Srivastava et al.'s Gaussian-dropout matching).

``match_dropout(name, p)`` takes torch's **drop** probability p and returns the law of the named
family with

.. math:: E[\\xi] = 1,\\qquad \\mathrm{Var}[\\xi] = \\frac{p}{1-p},

the first two moments of inverted dropout ξ ∈ {0, 1/(1−p)}. Per family (v = p/(1−p)):

* ``bernoulli``: keep = 1 − p, inverted;
* ``gaussian``: mean 1, std √v;
* ``uniform``: [1 − √(3v), 1 + √(3v)] (contains 0 once v ≥ 1/3, i.e. p ≥ 1/4);
* ``log_normal``: σ² = log(1 + v) = −log(1 − p), μ = −σ²/2;
* ``inverse_nakagami``: m > 1 solves Γ(m)²/((m − 1)Γ(m − ½)²) = 1 + v (brentq), then
  Ω = m·(Γ(m − ½)/Γ(m))² so that E[ξ] = 1;
* ``rayleigh`` raises: one parameter cannot fix two moments (use ``Rayleigh.with_mean``);
* ``half_cauchy`` raises: it has no mean;
* ``beta`` raises: ξ ≤ 1 forces E[ξ] < 1 unless ξ ≡ 1.

Continuous laws need p > 0 (p = 0 is no noise, which only Bernoulli(keep=1) expresses).
"""

from __future__ import annotations

import math
import numbers

import torch
from scipy import optimize, special

from dropprior.noise._base import NoiseLaw
from dropprior.noise._registry import law_by_name, registered_laws

__all__ = ["match_dropout", "inverse_nakagami_shape_for", "matching_table"]


def check_rate(p: float) -> float:
    """``p`` as a float if it is a drop probability in [0, 1); else an error quoting it."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number (the drop probability), got {p!r}")
    p = float(p)
    if not 0 <= p < 1:
        raise ValueError(f"p must be a drop probability in [0, 1), got {p!r}")
    return p


def _log_ratio(m: float) -> float:
    """log(E[ξ²]/E[ξ]²) for inverse-Nakagami shape m > 1 (Ω cancels):
    2·log(Γ(m)/Γ(m − ½)) − log(m − 1), with Γ(m)/Γ(m − ½) = poch(m − ½, ½) computed accurately."""
    return 2 * math.log(special.poch(m - 0.5, 0.5)) - math.log(m - 1)


def inverse_nakagami_shape_for(p: float) -> float:
    """The inverse-Nakagami shape m > 1 with Var[ξ]/E[ξ]² = p/(1−p), i.e. E[ξ²]/E[ξ]² = 1/(1−p).

    The ratio decreases from ∞ (m → 1⁺) to 1 (m → ∞), so a root exists for every p ∈ (0, 1).
    """
    p = check_rate(p)
    if p == 0:
        raise ValueError("p = 0 (no noise) has no inverse-Nakagami match: it needs m = ∞")
    target = -math.log1p(-p)

    def gap(m: float) -> float:
        return _log_ratio(m) - target

    low = 1.0 + 1e-12
    high = 2.0
    while gap(high) > 0:
        high *= 2
        if high > 1e15:
            raise ValueError(f"p={p!r} is too small to match with inverse-Nakagami noise")
    return float(optimize.brentq(gap, low, high, xtol=1e-14, rtol=1e-14, maxiter=500))


def match_dropout(name: str, p: float, dtype: torch.dtype | None = None) -> NoiseLaw:
    """The law of family ``name`` with E[ξ] = 1 and Var[ξ] = p/(1−p) for **drop** probability p.

    Args:
        name: a registered law name (see :func:`dropprior.noise.registered_laws`).
        p: the drop probability of the dropout to match, in [0, 1) (torch's ``p``; the keep
            probability is 1 − p).
        dtype: the parameters' dtype (default: torch's default dtype). In float32, p below
            ~1e-3 loses relative precision in Var[ξ] (keep = 1 − p rounds).

    Returns:
        A :class:`NoiseLaw` whose parameters are 0-dim tensors of ``dtype``.

    Raises:
        ValueError: unknown ``name``, ``p`` outside [0, 1), p = 0 for a continuous law, or a
            family that cannot match both moments (rayleigh, half_cauchy, beta), with the reason.

    Example:
        >>> law = match_dropout("gaussian", 0.5)
        >>> float(law.mean), float(law.variance)
        (1.0, 1.0)
    """
    law = _match(name, check_rate(p))
    return law.to(dtype=dtype or torch.get_default_dtype())


def _match(name: str, p: float) -> NoiseLaw:
    cls = law_by_name(name)
    kw: dict = {"dtype": torch.float64}
    variance = p / (1 - p)
    if name == "bernoulli":
        return cls(keep=torch.tensor(1 - p, **kw), inverted=True)
    if name == "rayleigh":
        raise ValueError(
            "Rayleigh noise has one parameter, so it cannot match both E[ξ] = 1 and "
            "Var[ξ] = p/(1-p): at E[ξ] = 1 its variance is fixed at 4/π - 1 ≈ 0.273 (p ≈ 0.215). "
            "Use Rayleigh.with_mean(1.0) to match the mean only."
        )
    if name == "half_cauchy":
        raise ValueError(
            "half-Cauchy noise has no mean (E[ξ] = ∞) and no variance, so it cannot match "
            "E[ξ] = 1 and Var[ξ] = p/(1-p); choose its scale directly, e.g. HalfCauchy(1.0)."
        )
    if name == "beta":
        raise ValueError(
            "Beta noise lies in [0, 1], so E[ξ] < 1 unless ξ ≡ 1; it cannot match E[ξ] = 1 and "
            "Var[ξ] = p/(1-p). Choose its concentrations directly, e.g. Beta(a, b)."
        )
    if p == 0:
        raise ValueError(
            f"p = 0 means no noise; the continuous law {name!r} needs p in (0, 1) "
            "(use match_dropout('bernoulli', 0.0) for the identity)"
        )
    if name == "gaussian":
        return cls(mean=torch.tensor(1.0, **kw), std=torch.tensor(math.sqrt(variance), **kw))
    if name == "uniform":
        half_width = math.sqrt(3 * variance)
        return cls(low=torch.tensor(1 - half_width, **kw),
                   high=torch.tensor(1 + half_width, **kw))
    if name == "log_normal":
        s2 = -math.log1p(-p)
        return cls(loc=torch.tensor(-s2 / 2, **kw), scale=torch.tensor(math.sqrt(s2), **kw))
    if name == "inverse_nakagami":
        m = inverse_nakagami_shape_for(p)
        spread = m / special.poch(m - 0.5, 0.5) ** 2
        return cls(shape=torch.tensor(m, **kw), spread=torch.tensor(spread, **kw))
    raise ValueError(
        f"no dropout matching is defined for the law {name!r}; laws with a matching rule: "
        f"{sorted(n for n in registered_laws() if n not in {'rayleigh', 'half_cauchy', 'beta'})}"
    )




def matching_table(rates: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)) -> str:
    """A Markdown table of the matched parameters of every registered law at ``rates``
    (docs/noise.md shows its output)."""
    lines = ["| law | " + " | ".join(f"p = {p}" for p in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for name in sorted(registered_laws()):
        cells = []
        for p in rates:
            try:
                law = match_dropout(name, p, dtype=torch.float64)
            except ValueError:
                cells.append("raises")
                continue
            cells.append(", ".join(f"{k}={float(v):.6g}" for k, v in law.params().items()))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
