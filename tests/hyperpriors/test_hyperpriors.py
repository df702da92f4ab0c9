"""Scale hyperpriors against scipy: densities, the closed-form updates against a numerical
maximiser of the same objective, and the reading of Table 1's noise laws as hyperpriors (KS)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import torch

from dropprior.hyperpriors import (
    GammaScale,
    HalfCauchyScale,
    InverseGammaScale,
    LogUniformScale,
    group_objective,
    hyperprior_from_noise,
    resolve_hyperprior,
)
from dropprior.noise import Bernoulli, Gaussian, HalfCauchy, InverseNakagami, Rayleigh

f64 = torch.float64
V = torch.tensor([1e-4, 0.03, 0.5, 1.0, 2.7, 40.0], dtype=f64)

PROPER = {
    "inverse_gamma": (InverseGammaScale(2.5, 1.7), scipy.stats.invgamma(2.5, scale=1.7), "v"),
    "gamma": (GammaScale(0.5, 3.0), scipy.stats.gamma(0.5, scale=1 / 3.0), "v"),
    "half_cauchy": (HalfCauchyScale(0.6), scipy.stats.halfcauchy(scale=0.6), "s"),
}


@pytest.mark.parametrize("name", list(PROPER))
def test_log_prob_matches_scipy(name) -> None:
    prior, ref, space = PROPER[name]
    if space == "v":
        np.testing.assert_allclose(prior.log_prob_variance(V).numpy(), ref.logpdf(V.numpy()),
                                   rtol=1e-12)
    else:
        s = V.sqrt()
        np.testing.assert_allclose(prior.log_prob(s).numpy(), ref.logpdf(s.numpy()), rtol=1e-12)


@pytest.mark.parametrize("name", list(PROPER))
def test_both_densities_are_the_law_of_s_and_of_s_squared(name) -> None:
    """Quadrature of each density against scipy's cdf in the other variable: P(s ≤ t) from
    exp(log_prob) and P(v ≤ t²) from exp(log_prob_variance) agree with the reference law."""
    prior, ref, space = PROPER[name]
    for t in (0.2, 1.0, 3.0):
        mass_s = scipy.integrate.quad(
            lambda s: math.exp(float(prior.log_prob(torch.tensor(s, dtype=f64)))), 0, t)[0]
        mass_v = scipy.integrate.quad(
            lambda v: math.exp(float(prior.log_prob_variance(torch.tensor(v, dtype=f64)))),
            0, t * t, limit=200)[0]
        expected = ref.cdf(t * t) if space == "v" else ref.cdf(t)
        assert mass_s == pytest.approx(expected, abs=1e-7)
        assert mass_v == pytest.approx(expected, abs=1e-7)


def test_log_uniform_is_scipy_loguniform_up_to_its_constant() -> None:
    ref = scipy.stats.loguniform(1e-5, 1e3)
    s = V.sqrt()
    ours = LogUniformScale().log_prob(s).numpy()
    theirs = ref.logpdf(s.numpy())
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], atol=1e-12)
    ours_v = LogUniformScale().log_prob_variance(V).numpy()
    theirs_v = ref.logpdf(V.numpy())
    np.testing.assert_allclose(ours_v - ours_v[0], theirs_v - theirs_v[0], atol=1e-12)


ALL = [InverseGammaScale(3.0, 3.0), InverseGammaScale(0.5, 0.01), GammaScale(1.0, 2.0),
       GammaScale(0.5, 0.2), GammaScale(4.0, 1.0), HalfCauchyScale(1.0), HalfCauchyScale(0.05),
       LogUniformScale()]


@pytest.mark.parametrize("prior", ALL, ids=repr)
@pytest.mark.parametrize(("sum_sq", "count"), [(0.02, 1), (3.0, 6), (40.0, 50), (1e-3, 500),
                                               (700.0, 12)])
def test_closed_form_update_is_the_numerical_maximiser(prior, sum_sq, count) -> None:
    def neg(log_v: float) -> float:
        v = torch.tensor(math.exp(log_v), dtype=f64)
        return -float(group_objective(prior, v, torch.tensor(sum_sq, dtype=f64), count))

    best = scipy.optimize.minimize_scalar(neg, bounds=(-40, 15), method="bounded",
                                          options={"xatol": 1e-10})
    update = float(prior.map_variance(torch.tensor(sum_sq, dtype=f64), count))
    assert math.log(update) == pytest.approx(best.x, abs=1e-5)
    assert neg(math.log(update)) <= best.fun + 1e-9


def test_updates_at_zero_second_moment() -> None:
    zero = torch.tensor(0.0, dtype=f64)
    assert float(LogUniformScale().map_variance(zero, 10)) == 0.0
    assert float(HalfCauchyScale(1.0).map_variance(zero, 10)) == 0.0
    # inverse-gamma's floor 2b / (D + 2a + 2): it cannot switch a group off
    assert float(InverseGammaScale(3.0, 3.0).map_variance(zero, 50)) == pytest.approx(6 / 58)


def test_log_uniform_is_the_inverse_gamma_limit() -> None:
    s = torch.tensor([0.0, 0.3, 12.0], dtype=f64)
    for eps in (1e-3, 1e-6):
        torch.testing.assert_close(InverseGammaScale(eps, eps).map_variance(s, 7),
                                   LogUniformScale().map_variance(s, 7), atol=eps,
                                   rtol=eps)


# ---- Table 1's laws as hyperpriors ---------------------------------------------------------

def _ks(samples: torch.Tensor, ref) -> float:
    return scipy.stats.kstest(samples.numpy(), ref.cdf).pvalue


CASES = {
    "inverse_nakagami": (InverseNakagami(2.0, 0.5), "v",
                         lambda h: scipy.stats.invgamma(h.a, scale=h.b),
                         lambda h: scipy.stats.invgamma(h.a, scale=1.1 * h.b)),
    "half_cauchy": (HalfCauchy(0.7), "s", lambda h: scipy.stats.halfcauchy(scale=h.eta),
                    lambda h: scipy.stats.halfcauchy(scale=1.1 * h.eta)),
    "rayleigh": (Rayleigh(0.8), "v", lambda h: scipy.stats.gamma(h.alpha, scale=1 / h.beta),
                 lambda h: scipy.stats.gamma(h.alpha, scale=1.1 / h.beta)),
    "gaussian": (Gaussian(0.0, 1.3), "v", lambda h: scipy.stats.gamma(h.alpha, scale=1 / h.beta),
                 lambda h: scipy.stats.gamma(h.alpha, scale=1.1 / h.beta)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_noise_law_is_its_hyperprior(name) -> None:
    law, space, ref, wrong = CASES[name]
    prior = hyperprior_from_noise(law)
    xi = law.to(dtype=f64).sample((20000,), generator=torch.Generator().manual_seed(7)).abs()
    draws = xi.square() if space == "v" else xi
    assert _ks(draws, ref(prior)) > 1e-3
    assert _ks(draws, wrong(prior)) < 1e-6  # a 10% wrong scale is caught


def test_inverse_nakagami_parameters_are_m_and_m_over_omega() -> None:
    prior = hyperprior_from_noise(InverseNakagami(3.0, 2.0))
    assert (prior.a, prior.b) == (3.0, 1.5)


# ---- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("make", "match"), [
    (lambda: InverseGammaScale(0.0, 1.0), "shape a must be finite and > 0, got 0.0"),
    (lambda: InverseGammaScale(1.0, -2.0), "scale b must be finite and > 0, got -2.0"),
    (lambda: GammaScale(1.0, 0.0), "rate beta must be finite and > 0, got 0.0"),
    (lambda: HalfCauchyScale(-1.0), "eta must be finite and > 0, got -1.0"),
    (lambda: HalfCauchyScale(float("nan")), "eta must be finite and > 0, got nan"),
])
def test_non_positive_parameters_are_refused(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_resolve_names_and_errors() -> None:
    assert isinstance(resolve_hyperprior("log_uniform", None), LogUniformScale)
    assert isinstance(resolve_hyperprior("auto", HalfCauchy(1.0)), HalfCauchyScale)
    with pytest.raises(ValueError, match=r"hyperprior='horseshoe' is not valid; expected one of"):
        resolve_hyperprior("horseshoe", None)
    with pytest.raises(ValueError, match=r"Bernoulli.*no variance prior.*hyperprior="):
        resolve_hyperprior("auto", Bernoulli(0.8))
    with pytest.raises(ValueError, match="mean 1 ≠ 0"):
        resolve_hyperprior("auto", Gaussian(1.0, 0.5))


@pytest.mark.parametrize("value", [True, "1.0", None])
def test_bools_and_strings_are_not_parameters(value) -> None:
    with pytest.raises(TypeError, match=rf"eta must be a number > 0, got {value!r}"):
        HalfCauchyScale(value)


@pytest.mark.parametrize("prior", [p for p, _, _ in PROPER.values()] + [LogUniformScale()],
                         ids=[*PROPER, "log_uniform"])
def test_negative_or_nan_scale_has_log_density_minus_inf(prior) -> None:
    """A scale or variance is never negative: its log-density there (and at nan) is -inf, as
    the noise laws' log_prob outside their support, where it was nan; the gradient at the
    points inside stays finite."""
    x = torch.tensor([-1.0, math.nan, 0.7], dtype=f64, requires_grad=True)
    for log_density in (prior.log_prob, prior.log_prob_variance):
        out = log_density(x)
        assert out[:2].detach().tolist() == [-math.inf, -math.inf]
        assert math.isfinite(out[2].detach().item())
        (grad,) = torch.autograd.grad(out[2], x)
        assert math.isfinite(float(grad[2])) and grad[:2].tolist() == [0.0, 0.0]
