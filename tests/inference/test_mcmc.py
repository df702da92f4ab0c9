"""NUTS/HMC under the structured prior: exact moments in EP and HP, horseshoe vs Gibbs, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dropprior.inference import (
    LinearRegression,
    ScaleMixture1D,
    horseshoe_gibbs,
    run_mcmc,
    sample_scale_mixture,
    scale_mixture_model,
)
from dropprior.noise import Bernoulli, HalfCauchy, Rayleigh


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _mcse(draws: torch.Tensor, ess: torch.Tensor) -> float:
    return float(draws.std() / ess.clamp(min=1).sqrt())


@pytest.mark.parametrize("parametrization", ["ep", "hp"])
def test_nuts_recovers_exact_posterior_moments(parametrization):
    """ξ ~ Rayleigh(s) ⇒ w ~ Laplace(0, σ0 s) (Table 1); y_i ~ N(w, 1). E[w|y], E[w²|y] by
    quadrature of scipy's Laplace density times the likelihood. The data sit in the prior's tail,
    where a Laplace and a Gaussian prior of the same variance give posterior means 0.5 apart, so
    the check fails for a law with the right E[ξ²] but the wrong shape."""
    y = torch.tensor([3.0, 2.6, 3.4])
    s, sigma0 = 0.5, 1.0

    def moments(prior):
        def post(w, k):
            return w**k * prior.pdf(w) * np.exp(
                stats.norm(w, 1.0).logpdf(y.numpy()[:, None]).sum(0))

        z = integrate.quad(lambda w: post(np.atleast_1d(w), 0)[0], -20, 20, points=[0])[0]
        return [integrate.quad(lambda w, k=k: post(np.atleast_1d(w), k)[0], -20, 20,
                               points=[0])[0] / z for k in (1, 2)]

    m1, m2 = moments(stats.laplace(scale=sigma0 * s))
    wrong, _ = moments(stats.norm(scale=np.sqrt(2) * sigma0 * s))  # same variance, Gaussian
    assert abs(m1 - wrong) > 0.4

    target = ScaleMixture1D(Rayleigh(s), sigma0, y, 1.0, parametrization)
    r = run_mcmc(target, num_samples=300, warmup=150, num_chains=2, max_tree_depth=5,
                 generator=torch.Generator().manual_seed(0))
    w = r.samples["w.w"]
    ess = r.ess()["w.w"]
    assert r.summary(["w.w"])["max_rhat"] < 1.05
    assert abs(float(w.mean()) - m1) < 4 * _mcse(w, ess) + 0.01
    assert abs(float((w**2).mean()) - m2) < 4 * _mcse(w**2, ess) + 0.02
    assert (r.gradient_evaluations > 0).all()


def test_pyro_model_form_samples_the_marginal_prior():
    """With no data the posterior is the prior: the Pyro-model EP form gives Laplace(0, σ0 s)."""
    s, sigma0 = 1.0, 0.5
    r = run_mcmc(scale_mixture_model, None, Rayleigh(s), sigma0, 1.0, "ep",
                 num_samples=200, warmup=100, num_chains=2, max_tree_depth=5,
                 generator=torch.Generator().manual_seed(1))
    w = r.samples["w.w"]
    assert set(r.samples) == {"w.xi", "w.z", "w.w"}
    torch.testing.assert_close(w, r.samples["w.xi"] * r.samples["w.z"])
    ess = r.ess()["w.w"]
    # E|w| = b and E[w²] = 2b² for Laplace(0, b), b = σ0 s
    b = sigma0 * s
    assert abs(float(w.abs().mean()) - b) < 4 * _mcse(w.abs(), ess) + 0.01
    assert abs(float((w**2).mean()) - 2 * b**2) < 4 * _mcse(w**2, ess) + 0.02
    # the scale itself follows Rayleigh(s): a law with the same E[ξ²] but another shape (a
    # near-constant log-normal) fails this; every 5th draw, to thin the autocorrelation
    xi = r.samples["w.xi"][:, ::5].reshape(-1).numpy()
    assert stats.kstest(xi, stats.rayleigh(scale=s).cdf).pvalue > 1e-3
    assert stats.kstest(xi, stats.lognorm(0.05, scale=s * np.sqrt(2)).cdf).pvalue < 1e-6


def test_hmc_horseshoe_regression_agrees_with_gibbs():
    g = torch.Generator().manual_seed(2)
    N, D = 30, 3
    X = torch.randn(N, D, generator=g)
    y = X @ torch.tensor([1.5, 0.0, -0.5]) + torch.randn(N, generator=g)
    s, sigma0 = 0.5, 1.0
    gibbs = horseshoe_gibbs(X, y, tau=sigma0 * s, noise_std=1.0, num_samples=3000, warmup=300,
                            num_chains=2, generator=g)
    r = run_mcmc(LinearRegression(X, y, HalfCauchy(s), sigma0, 1.0, "hp"), num_samples=300,
                 warmup=200, num_chains=2, target_accept=0.9, max_tree_depth=6, generator=g)
    w_nuts, w_gibbs = r.samples["w.w"], gibbs.weights
    from dropprior.inference import bulk_ess

    se_nuts = w_nuts.std((0, 1)) / r.ess()["w.w"].sqrt()
    se_gibbs = w_gibbs.std((0, 1)) / bulk_ess(w_gibbs).sqrt()
    diff = (w_nuts.mean((0, 1)) - w_gibbs.mean((0, 1))).abs()
    assert (diff < 4 * (se_nuts**2 + se_gibbs**2).sqrt() + 0.01).all(), (diff, se_nuts, se_gibbs)
    # the reference itself: a clear signal is kept, the null coefficient shrunk
    assert float(w_gibbs[..., 0].mean()) > 1.0
    assert abs(float(w_gibbs[..., 1].mean())) < 0.2


def test_discrete_law_points_to_gibbs_sampler():
    with pytest.raises(ValueError, match="kuo_mallick"):
        ScaleMixture1D(Bernoulli(0.5))
    with pytest.raises(ValueError, match="kuo_mallick"):
        run_mcmc(scale_mixture_model, None, Bernoulli(0.5), 1.0, 1.0, "ep", num_samples=5,
                 warmup=5)


def test_unknown_parametrization_lists_ep_and_hp():
    with pytest.raises(ValueError, match=r"'ep', 'hp'"):
        ScaleMixture1D(Rayleigh(1.0), parametrization="centered")
    with pytest.raises(ValueError, match=r"'ep', 'hp'"):
        run_mcmc(scale_mixture_model, None, Rayleigh(1.0), 1.0, 1.0, "cp", num_samples=5,
                 warmup=5)
    with pytest.raises(ValueError, match="algorithm"):
        run_mcmc(ScaleMixture1D(Rayleigh(1.0)), algorithm="mala")


def test_sample_scale_mixture_checks_shapes():
    import pyro

    with pytest.raises(ValueError, match="broadcast"):
        with pyro.poutine.trace():
            sample_scale_mixture("w", Rayleigh(1.0), 1.0, (3, 2), (2, 3), "ep")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"step_size": -1.0, "algorithm": "hmc"}, "step_size must be a finite number > 0, got -1.0"),
    ({"num_steps": 0, "algorithm": "hmc"}, "num_steps must be an int >= 1, got 0"),
    ({"max_tree_depth": 0}, "max_tree_depth must be an int >= 1, got 0"),
    ({"target_accept": float("nan")}, r"target_accept must be a number in \(0, 1\), got nan"),
    ({"warmup": -1}, "warmup must be a non-negative int, got -1"),
])
def test_bad_sampler_settings_name_the_value(kwargs, match):
    """A negative HMC step froze the chain at its start (every draw equal) without a word."""
    with pytest.raises(ValueError, match=match):
        run_mcmc(ScaleMixture1D(Rayleigh(1.0)), num_samples=5, **{"warmup": 5, **kwargs})


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"warmup": -1}, "warmup must be a non-negative int, got -1"),
    ({"num_chains": 0}, "num_chains must be a positive int, got 0"),
    ({"y": torch.tensor([0.0, float("nan"), 1.0])},
     r"y holds 1 non-finite value\(s\) \(nan or ±inf\)"),
    ({"y": torch.zeros(2)}, r"need X of shape \(N, D\) and y of shape \(N,\), got \(3, 2\) and "
                            r"\(2,\)"),
])
def test_horseshoe_gibbs_refuses_bad_input(kwargs, match):
    """warmup = -1 returned uninitialised memory as draws; a nan target failed in Cholesky."""
    from dropprior.inference import horseshoe_gibbs

    args = {"X": torch.eye(3, 2, dtype=torch.float64), "y": torch.ones(3, dtype=torch.float64),
            "tau": 1.0, "noise_std": 1.0, "num_samples": 5, "warmup": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        horseshoe_gibbs(**args)


def test_linear_regression_chains_run_in_the_data_dtype():
    """float64 data under torch's float32 default (and integer data) sample without a dtype
    clash inside torch."""
    from dropprior.inference import LinearRegression, run_mcmc
    from dropprior.noise import Rayleigh

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        g = torch.Generator().manual_seed(0)
        X = torch.randn(20, 2, generator=g, dtype=torch.float64)
        y = X @ torch.tensor([1.0, 0.0], dtype=torch.float64)
        density = LinearRegression(X, y, Rayleigh(0.5), parametrization="hp")
        assert density.dtype == torch.float64
        r = run_mcmc(density, num_samples=5, warmup=5, num_chains=2,
                     generator=torch.Generator().manual_seed(1))
        assert r.samples["w.w"].dtype == torch.float64
        ints = LinearRegression(torch.ones(4, 1, dtype=torch.int64), torch.arange(4),
                                Rayleigh(1.0))
        assert ints.dtype == torch.float32 and ints.y.dtype == torch.float32
    finally:
        torch.set_default_dtype(previous)
