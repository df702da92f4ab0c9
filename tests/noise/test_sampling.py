"""The fast exact samplers of ``dropprior.noise._sampling`` against scipy: the vectorised
Marsaglia–Tsang gamma (with the α < 1 boost and the redraw of rejected entries), its implicit
reparametrization gradient, and the inverse-cdf Rayleigh and half-Cauchy draws in float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import special, stats

from dropprior.noise import Beta, HalfCauchy, InverseNakagami, Rayleigh
from dropprior.noise._sampling import log_standard_gamma, open_uniform, standard_gamma

ALPHA = 1e-3
SHAPES = [0.3, 0.5, 1.0, 2.5, 10.0]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _assert_fits_and_rejects_10pct(x: np.ndarray, cdf) -> None:
    assert stats.kstest(x, cdf).pvalue > ALPHA
    assert stats.kstest(x * 1.1, cdf).pvalue < ALPHA
    assert stats.kstest(x / 1.1, cdf).pvalue < ALPHA


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_standard_gamma_matches_scipy_gamma(shape: float, dtype: torch.dtype) -> None:
    alpha = torch.tensor(shape, dtype=dtype)
    g = standard_gamma(alpha, torch.Size((20_000,)), _gen(0))
    assert g.dtype == dtype
    assert bool((g > 0).all()) and bool(torch.isfinite(g).all())
    _assert_fits_and_rejects_10pct(g.double().numpy(), stats.gamma(shape).cdf)


@pytest.mark.parametrize("shape", SHAPES)
def test_log_standard_gamma_matches_scipy_loggamma(shape: float) -> None:
    """log G against scipy's ``loggamma`` family (log of a Gamma(α) variable)."""
    alpha = torch.tensor(shape, dtype=torch.float64)
    x = log_standard_gamma(alpha, torch.Size((20_000,)), _gen(1)).numpy()
    ref = stats.loggamma(shape)
    assert stats.kstest(x, ref.cdf).pvalue > ALPHA
    assert stats.kstest(x + np.log(1.1), ref.cdf).pvalue < ALPHA  # G off by 10%


def test_per_entry_concentrations_are_each_drawn_from_their_own_law() -> None:
    """α of batch shape (5,) broadcast over 8000 draws: every column fits its own Gamma(α_j)."""
    alpha = torch.tensor(SHAPES, dtype=torch.float64)
    g = standard_gamma(alpha, torch.Size((8000, len(SHAPES))), _gen(2))
    for j, shape in enumerate(SHAPES):
        assert stats.kstest(g[:, j].numpy(), stats.gamma(shape).cdf).pvalue > ALPHA
        assert stats.kstest(g[:, j].numpy() * 1.2, stats.gamma(shape).cdf).pvalue < ALPHA


def test_rejected_entries_are_redrawn_not_dropped() -> None:
    """α = 1 rejects ~5% of first proposals; with 2·10⁵ entries the redraw loop runs, and the
    result is still exact: mean and variance of Gamma(1) within 5 standard errors."""
    g = standard_gamma(torch.tensor(1.0, dtype=torch.float64), torch.Size((200_000,)), _gen(3))
    n = g.numel()
    assert abs(float(g.mean()) - 1.0) < 5 * (1.0 / n) ** 0.5
    # Var of the sample variance of Exp(1): (μ4 − σ⁴)/n = (9 − 1)/n
    assert abs(float(g.var()) - 1.0) < 5 * (8.0 / n) ** 0.5


def test_gamma_draws_are_reproducible_and_consume_the_generator() -> None:
    alpha = torch.tensor(0.7)
    a = standard_gamma(alpha, torch.Size((300, 7)), _gen(9))
    b = standard_gamma(alpha, torch.Size((300, 7)), _gen(9))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    gen = _gen(9)
    first = standard_gamma(alpha, torch.Size((300, 7)), gen)
    second = standard_gamma(alpha, torch.Size((300, 7)), gen)
    assert not torch.equal(first, second)


def _implicit_gradient_scipy(g: np.ndarray, a: float, h: float = 1e-6) -> np.ndarray:
    """dG/dα = −(∂F/∂α)(G; α)/p(G; α), with ∂F/∂α by central differences of scipy's
    regularized incomplete gamma."""
    dF = (special.gammainc(a + h, g) - special.gammainc(a - h, g)) / (2 * h)
    return -dF / stats.gamma(a).pdf(g)


@pytest.mark.parametrize("shape", [0.5, 1.0, 2.5, 10.0])
def test_gamma_gradient_is_the_implicit_reparametrization_gradient(shape: float) -> None:
    """Per draw (α of batch shape (50,), the per-entry path), ∂G/∂α equals −(∂F/∂α)/p(G)
    computed independently with scipy."""
    alpha = torch.full((50,), shape, dtype=torch.float64, requires_grad=True)
    g = standard_gamma(alpha, torch.Size((50,)), _gen(4))
    per_draw = torch.autograd.grad(g.sum(), alpha)[0]
    want = _implicit_gradient_scipy(g.detach().numpy(), shape)
    # torch's _standard_gamma_grad approximates the derivative to ~3e-4 relative
    np.testing.assert_allclose(per_draw.numpy(), want, rtol=2e-3, atol=1e-8)


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5])
def test_gamma_gradient_has_the_right_expectation(shape: float) -> None:
    """d/dα E[G] = 1 and d/dα E[log G] = ψ'(α) (trigamma), by Monte Carlo."""
    alpha = torch.tensor(shape, dtype=torch.float64, requires_grad=True)
    g = standard_gamma(alpha, torch.Size((100_000,)), _gen(5))
    d_mean = torch.autograd.grad(g.mean(), alpha, retain_graph=True)[0]
    d_log = torch.autograd.grad(g.log().mean(), alpha)[0]
    torch.testing.assert_close(float(d_mean), 1.0, rtol=0.02, atol=0)
    torch.testing.assert_close(float(d_log), float(special.polygamma(1, shape)), rtol=0.03, atol=0)


def test_log_gamma_boost_gradient_has_the_right_expectation() -> None:
    """The log-space boost log G(α+1) + log(U)/α: d/dα E[log G] = ψ'(α) for α = 0.2."""
    alpha = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    x = log_standard_gamma(alpha, torch.Size((100_000,)), _gen(6))
    got = torch.autograd.grad(x.mean(), alpha)[0]
    torch.testing.assert_close(float(got), float(special.polygamma(1, 0.2)), rtol=0.03, atol=0)


def test_inverse_nakagami_gradient_matches_torch_gamma_rsample_gradient() -> None:
    """d/dm E[log ξ] through our sampler, through torch's own ``Gamma.rsample`` (η² ~ Gamma(m,
    rate m/Ω), ξ = 1/η) and in closed form −½(ψ'(m) − 1/m) (E[log ξ] = −½(ψ(m) − log(m/Ω)))."""
    torch.manual_seed(0)  # torch's Gamma.rsample takes no generator
    m = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    ours = InverseNakagami(m, 1.0).rsample((100_000,), generator=_gen(7))
    g_ours = torch.autograd.grad(ours.log().mean(), m)[0]
    g_torch_draw = torch.distributions.Gamma(m, m).rsample((100_000,))  # η² = Gamma(m, rate m/Ω)
    g_torch = torch.autograd.grad((-0.5 * g_torch_draw.log()).mean(), m)[0]
    exact = -0.5 * (special.polygamma(1, 1.7) - 1 / 1.7)
    torch.testing.assert_close(float(g_ours), exact, rtol=0.03, atol=0)
    torch.testing.assert_close(float(g_ours), float(g_torch), rtol=0.05, atol=0)


def test_open_uniform_lies_in_the_half_open_unit_interval() -> None:
    v = open_uniform((100_000,), torch.empty((), dtype=torch.float32), _gen(8))
    assert bool((v > 0).all()) and bool((v <= 1).all())
    assert stats.kstest(v.double().numpy(), "uniform").pvalue > ALPHA


def test_float32_half_cauchy_is_nonnegative_finite_with_the_right_tail() -> None:
    """cot(πV/2) in float32: never negative or infinite; P(ξ > 100) = 1 − (2/π)atan(100)
    within 5 binomial standard errors (tail precision)."""
    n = 1_000_000
    x = HalfCauchy(torch.tensor(1.0)).sample((n,), generator=_gen(10))
    assert bool((x >= 0).all()) and bool(torch.isfinite(x).all())
    p = 1 - 2 / np.pi * np.arctan(100.0)
    frac = float((x > 100).double().mean())
    assert abs(frac - p) < 5 * (p * (1 - p) / n) ** 0.5


def test_float32_rayleigh_is_finite_and_fits_scipy() -> None:
    x = Rayleigh(torch.tensor(0.8)).sample((50_000,), generator=_gen(11))
    assert bool((x >= 0).all()) and bool(torch.isfinite(x).all())
    _assert_fits_and_rejects_10pct(x.double().numpy(), stats.rayleigh(scale=0.8).cdf)


@pytest.mark.parametrize(("a", "b"), [(2.0, 2.0), (0.3, 1.5), (1.0, 1.0)])
def test_float32_beta_fits_scipy_on_both_paths(a: float, b: float) -> None:
    """G₁/(G₁+G₀) (both concentrations ≥ 1) and the log-space form (one < 1), in float32."""
    law = Beta(torch.tensor(a), torch.tensor(b))
    for draw in (law.sample, law.rsample):
        x = draw((20_000,), generator=_gen(12)).detach().double().numpy()
        assert stats.kstest(x, stats.beta(a, b).cdf).pvalue > ALPHA
        assert stats.kstest(x, stats.beta(a * 1.1, b).cdf).pvalue < ALPHA


@pytest.mark.parametrize("shape", [0.6, 2.0])
def test_float32_inverse_nakagami_fits_scipy(shape: float) -> None:
    x = InverseNakagami(torch.tensor(shape), 1.0).sample((20_000,), generator=_gen(13))
    eta = 1 / x.double().numpy()  # η = 1/ξ ~ Nakagami(m, Ω = 1)
    _assert_fits_and_rejects_10pct(eta, stats.nakagami(shape).cdf)
