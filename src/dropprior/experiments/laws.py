"""Which noise law a benchmark uses at a given dropout rate p.

The UCI protocol searches a grid of dropout rates p. Each law of Table 1 is set from p as follows:

=================== ====================================================================
law                 parametrization at dropout rate p
=================== ====================================================================
bernoulli           inverted dropout, keep = 1 − p: E[ξ] = 1, Var[ξ] = p/(1−p)
gaussian            Gaussian dropout N(1, p/(1−p)) (``match_dropout``)
inverse_nakagami    E[ξ] = 1, Var[ξ] = p/(1−p) (``match_dropout``)
rayleigh            one parameter: E[ξ] = 1 (scale √(2/π)); Var[ξ] = (4−π)/π whatever p
half_cauchy         no mean exists: scale 1 (median 1) whatever p
half_cauchy_trunc3  half-Cauchy(1) truncated at ξ ≤ 3 — a *different* prior (its marginal is
                    the quadrature one); u = 3 was chosen on MNIST validation data
                    (docs/heavy-tails.md). Not part of Table 1; the demo shows it beside the
                    untruncated law, which MC training cannot fit (heavy-tails.md).
=================== ====================================================================

For the last two, p still sets the weight decay l²(1−p)/(2Nτ), i.e. the scale σ0 of the Gaussian
on the EP weights and hence the scale σ0·s of the Laplace / horseshoe marginal.
"""

from __future__ import annotations

from dropprior._validation import check_choice
from dropprior.noise import NoiseLaw

__all__ = ["TABLE1_LAWS", "DEMO_LAWS", "dropout_law"]

#: The laws of the paper's Table 1, by registry name.
TABLE1_LAWS = ("bernoulli", "gaussian", "rayleigh", "inverse_nakagami", "half_cauchy")

#: Table 1 plus the truncated half-Cauchy that trains (see the module docstring).
DEMO_LAWS = (*TABLE1_LAWS, "half_cauchy_trunc3")


def dropout_law(name: str, p: float) -> NoiseLaw:
    """The noise law ``name`` set from dropout rate ``p`` ∈ (0, 1) (see the module's table)."""
    check_choice("law", name, DEMO_LAWS)
    if not 0.0 < p < 1.0:
        raise ValueError(f"dropout rate p={p!r} must lie in (0, 1)")
    import dropprior.noise as noise

    if name == "bernoulli":
        return noise.Bernoulli(keep=1.0 - p, inverted=True)
    if name == "rayleigh":
        return noise.Rayleigh.with_mean(1.0)
    if name == "half_cauchy":
        return noise.HalfCauchy(scale=1.0)
    if name == "half_cauchy_trunc3":
        from dropprior.truncation import Truncated

        return Truncated(noise.HalfCauchy(scale=1.0), upper=3.0)
    return noise.match_dropout(name, p)
