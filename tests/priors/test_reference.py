"""Marginal log-densities against independent references, in float64.

The reference for every law is ``scipy.integrate.quad`` of ∫ N(w; 0, σ0² ξ² I_D) p(ξ) dξ with
scipy's own density of ξ (not dropprior's), integrated over log ξ, split at the integrand's peak
and scaled by its maximum so that tails down to p(w) ~ 1e-1000 keep full relative precision.
Closed forms are also checked against scipy's ``laplace``, ``t``, ``multivariate_t`` and the
special-function formulas (K0, E1) evaluated by scipy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from dropprior.noise import (
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    Rayleigh,
    Uniform,
)
from dropprior.priors import (
    Horseshoe,
    Laplace,
    QuadratureMarginal,
    StudentT,
    VarianceGamma,
)

F64 = torch.float64
NORMS = [1e-6, 1e-4, 1e-2, 0.3, 1.0, 3.0, 10.0, 50.0]


def _folded(frozen):
    return lambda x: np.logaddexp(frozen.logpdf(x), frozen.logpdf(-x))


def _inverse_nakagami_logpdf(m, omega):
    eta = stats.nakagami(m, scale=math.sqrt(omega))
    return lambda x: eta.logpdf(1 / x) - 2 * np.log(x)


# id, law, scipy log-density of |ξ|, support of |ξ|, extra break points (kinks), expected class
LAWS = [
    ("gaussian_mean0", lambda: Gaussian(0.0, 0.7), _folded(stats.norm(0, 0.7)), (0, np.inf), [],
     VarianceGamma),
    ("gaussian_dropout", lambda: Gaussian(1.0, 0.5), _folded(stats.norm(1, 0.5)), (0, np.inf),
     [], QuadratureMarginal),
    ("rayleigh", lambda: Rayleigh(0.8), stats.rayleigh(scale=0.8).logpdf, (0, np.inf), [],
     Laplace),
    ("inverse_nakagami", lambda: InverseNakagami(1.5, 2.0), _inverse_nakagami_logpdf(1.5, 2.0),
     (0, np.inf), [], StudentT),
    ("half_cauchy", lambda: HalfCauchy(0.6), stats.halfcauchy(scale=0.6).logpdf, (0, np.inf),
     [], Horseshoe),
    ("beta", lambda: Beta(2.0, 3.0), stats.beta(2, 3).logpdf, (0, 1), [], QuadratureMarginal),
    ("beta_small", lambda: Beta(0.6, 1.5), stats.beta(0.6, 1.5).logpdf, (0, 1), [],
     QuadratureMarginal),
    ("uniform", lambda: Uniform(0.5, 1.5), stats.uniform(0.5, 1.0).logpdf, (0.5, 1.5), [],
     QuadratureMarginal),
    ("uniform_around_0", lambda: Uniform(-0.5, 2.0), _folded(stats.uniform(-0.5, 2.5)), (0, 2.0),
     [0.5], QuadratureMarginal),
    ("log_normal", lambda: LogNormal(-0.2, 0.6), stats.lognorm(0.6, scale=math.exp(-0.2)).logpdf,
     (0, np.inf), [], QuadratureMarginal),
]


def reference_log_marginal(log_q, support, kinks, r, sigma0, dim, kind="density"):
    """log ∫ N(r; 0, σ0²ξ² I_D) q(ξ) dξ (or log ∫ Φ(−r/(σ0 ξ)) q(ξ) dξ), scipy quad over log ξ."""
    lo, hi = support
    t_lo = math.log(lo) if lo > 0 else -745.0
    t_hi = math.log(hi) if np.isfinite(hi) else 300.0

    def g(t):
        t = np.asarray(t, dtype=np.float64)
        x = np.exp(t)
        with np.errstate(all="ignore"):
            if kind == "density":
                gauss = (-dim / 2 * math.log(2 * math.pi) - dim * (math.log(sigma0) + t)
                         - 0.5 * (r / (sigma0 * x)) ** 2)
            else:
                gauss = special.log_ndtr(-r / (sigma0 * x))
            out = gauss + log_q(x) + t
        return np.where(np.isnan(out), -np.inf, out)

    grid = np.linspace(t_lo, t_hi, 100_001)[1:-1]
    vals = g(grid)
    k = int(np.argmax(vals))
    top = vals[k]
    inside = np.nonzero(vals > top - 80)[0]
    a = grid[max(inside[0] - 1, 0)] if inside[0] > 0 else t_lo
    b = grid[min(inside[-1] + 1, len(grid) - 1)] if inside[-1] < len(grid) - 1 else t_hi
    points = sorted({grid[k]} | {math.log(p) for p in kinks if a < math.log(p) < b})
    edges = [a, *points, b]
    total, error = 0.0, 0.0
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            value, err = integrate.quad(lambda t: math.exp(float(g(t)) - top), left, right,
                                        epsabs=0.0, epsrel=1e-13, limit=2000)
        total += value
        error += err
    assert error < 1e-10 * total, "the reference itself did not converge"
    return math.log(total) + top


def _points(dim, seed=0):
    """Points w with the norms in NORMS, in a fixed random direction when D > 1."""
    norms = np.array(NORMS)
    if dim == 1:
        return np.concatenate([norms, -norms[[0, 4]]])[:, None]
    direction = np.random.default_rng(seed).normal(size=dim)
    direction /= np.linalg.norm(direction)
    return norms[:, None] * direction[None, :]


@pytest.mark.parametrize("dim", [1, 2, 3, 5])
@pytest.mark.parametrize("entry", LAWS, ids=[e[0] for e in LAWS])
def test_log_prob_matches_scipy_quadrature(entry, dim):
    _, build, log_q, support, kinks, expected = entry
    sigma0s = [0.5, 2.0] if dim == 1 else [1.3]
    for sigma0 in sigma0s:
        prior = build().to(dtype=F64).marginal(sigma0, group_size=dim)
        assert isinstance(prior, expected)
        w = _points(dim)
        got = prior.log_prob(torch.tensor(w if dim > 1 else w[:, 0], dtype=F64))
        r = np.linalg.norm(w, axis=1)
        ref = [reference_log_marginal(log_q, support, kinks, ri, sigma0, dim) for ri in r]
        # log-densities equal to 1e-8 absolute = densities equal to 1e-8 relative
        np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-8,
                                   err_msg=f"sigma0={sigma0}, |w|={r}")


@pytest.mark.parametrize("entry", LAWS, ids=[e[0] for e in LAWS])
def test_cdf_matches_scipy_quadrature(entry):
    _, build, log_q, support, kinks, _ = entry
    prior = build().to(dtype=F64).marginal(0.9)
    w = np.array([-50.0, -3.0, -1e-6, 0.0, 1e-4, 0.3, 10.0])
    got = prior.cdf(torch.tensor(w, dtype=F64)).numpy()
    tail = np.exp([reference_log_marginal(log_q, support, kinks, abs(x), 0.9, 1, kind="tail")
                   for x in w])
    ref = np.where(w < 0, tail, 1 - tail)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("sigma0, s", [(1.0, 0.3), (0.5, 2.0), (3.0, 1.0)])
def test_closed_forms_match_scipy(sigma0, s):
    w = torch.tensor([-50.0, -2.0, -1e-6, 1e-6, 1e-3, 0.4, 5.0, 50.0], dtype=F64)
    x = w.numpy()
    b = sigma0 * s
    laplace = Rayleigh(s).to(dtype=F64).marginal(sigma0)
    np.testing.assert_allclose(laplace.log_prob(w).numpy(), stats.laplace(scale=b).logpdf(x),
                               rtol=1e-12)
    np.testing.assert_allclose(laplace.cdf(w).numpy(), stats.laplace(scale=b).cdf(x), rtol=1e-12)
    for m, omega in [(0.5, 1.0), (1.5, s), (4.0, 2.0)]:
        t = InverseNakagami(m, omega).to(dtype=F64).marginal(sigma0)
        ref = stats.t(df=2 * m, scale=sigma0 / math.sqrt(omega))
        np.testing.assert_allclose(t.log_prob(w).numpy(), ref.logpdf(x), rtol=1e-12)
        np.testing.assert_allclose(t.cdf(w).numpy(), ref.cdf(x), rtol=1e-12)
    vg = Gaussian(0.0, s).to(dtype=F64).marginal(sigma0)
    np.testing.assert_allclose(vg.log_prob(w).numpy(),
                               np.log(special.k0(np.abs(x) / b) / (math.pi * b)), rtol=1e-12)
    horseshoe = HalfCauchy(s).to(dtype=F64).marginal(sigma0)
    u = x**2 / (2 * b**2)
    small = u < 700  # where e^u does not overflow, the textbook formula with scipy's exp1
    expected = np.log(np.exp(u[small]) * special.exp1(u[small]) / (b * math.sqrt(2 * math.pi**3)))
    np.testing.assert_allclose(horseshoe.log_prob(w).numpy()[small], expected, rtol=1e-12)


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_group_student_t_is_scipy_multivariate_t(dim):
    prior = InverseNakagami(1.5, 2.0).to(dtype=F64).marginal(0.8, group_size=dim)
    w = _points(dim, seed=dim)
    ref = stats.multivariate_t(loc=np.zeros(dim), shape=(0.8**2 / 2.0) * np.eye(dim), df=3.0)
    np.testing.assert_allclose(prior.log_prob(torch.tensor(w)).numpy(), ref.logpdf(w),
                               rtol=1e-12)


def test_horseshoe_far_tail_uses_the_asymptotic_series():
    # u = w²/(2τ²) > 700: e^u overflows, the density is still ~ 2τ/(√(2π³) w²) (1 − 2τ²/w² ...)
    tau = 1.0
    w = torch.tensor([60.0, 1e3, 1e6], dtype=F64)
    got = Horseshoe(tau).log_prob(w.to(torch.get_default_dtype())).double()
    u = w.square() / 2
    series = 1 / u - 1 / u**2 + 2 / u**3 - 6 / u**4
    expected = torch.log(series) - 0.5 * math.log(2 * math.pi**3)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    exact = Horseshoe(torch.tensor(tau, dtype=F64)).log_prob(w)
    torch.testing.assert_close(exact, expected, rtol=1e-12, atol=1e-12)
