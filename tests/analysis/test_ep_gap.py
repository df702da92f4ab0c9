"""The EP Jensen gap (Prop. 4.1) against closed forms: Gaussian noise on a linear-Gaussian model
(the integral over ξ is Gaussian) and Bernoulli noise by exact enumeration of the masks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Normal
from torch.testing import assert_close

from dropprior.analysis import ep_gap, ep_gap_from_samples, ep_series
from dropprior.likelihoods import Gaussian as GaussianLikelihood
from dropprior.nn import NoisyLinear
from dropprior.noise import Bernoulli, Gaussian

TAU = 0.7
W = torch.tensor([[0.8, -1.2, 0.5]], dtype=torch.float64)


def linear_model(noise, seed: int = 0) -> NoisyLinear:
    layer = NoisyLinear(3, 1, noise, bias=False, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        layer.weight.copy_(W)
    return layer


def batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    return x, y


def gaussian_noise_exact_gap(x, y, mu: float, s: float) -> torch.Tensor:
    """y = Σ_j x_j ξ_j w_j + ε, ξ_j ~ N(μ, s²), ε ~ N(0, τ²):
    y | x ~ N(μ x·w, τ² + s² Σ_j (x_j w_j)²)."""
    w = W[0]
    m = mu * (x @ w)
    a = s**2 * ((x * w) ** 2).sum(1)
    log_e_p = Normal(m, torch.sqrt(TAU**2 + a)).log_prob(y[:, 0])
    e_log_p = -0.5 * math.log(2 * math.pi * TAU**2) - ((y[:, 0] - m) ** 2 + a) / (2 * TAU**2)
    return log_e_p - e_log_p


def test_gaussian_noise_gap_recovered_within_reported_error():
    x, y = batch()
    est = ep_gap(linear_model(Gaussian(1.0, 0.5)), x, y, GaussianLikelihood(TAU), samples=4000)
    exact = gaussian_noise_exact_gap(x, y, 1.0, 0.5)
    assert torch.all((est.parts - exact).abs() < 4 * est.parts_stderr), (est.parts, exact)
    assert abs(float(est.value - exact.sum())) < 4 * float(est.stderr)
    # the error bar is informative: a few percent of the gap, not a blanket
    assert torch.all(est.parts_stderr < 0.1 * exact)


def test_bernoulli_noise_gap_matches_enumeration_and_errors_are_calibrated():
    """Over 10 seeds the z-scores (estimate − exact) / reported s.e. of 6 examples have RMS ≈ 1
    and none is beyond 5: the reported error is the actual error, neither optimistic nor a
    blanket."""
    keep = 0.7
    x, y = batch()
    lik = Normal(torch.zeros((), dtype=torch.float64), TAU)
    logs, weights = [], []
    for mask in itertools.product([0.0, 1.0], repeat=3):
        m = torch.tensor(mask, dtype=torch.float64)
        logs.append(lik.log_prob(y[:, 0] - (x * m) @ W[0]))
        weights.append(math.prod(keep if b else 1 - keep for b in mask))
    logp = torch.stack(logs)  # (8, N)
    prob = torch.tensor(weights, dtype=torch.float64).unsqueeze(1)
    exact = torch.logsumexp(logp + prob.log(), 0) - (prob * logp).sum(0)
    z = []
    for seed in range(10):
        est = ep_gap(linear_model(Bernoulli(keep), seed), x, y, GaussianLikelihood(TAU),
                     samples=4000, series=False)
        z.append((est.parts - exact) / est.parts_stderr)
        z.append((est.value - exact.sum()).reshape(1) / est.stderr)
    zs = torch.cat(z)
    assert float(zs.abs().max()) < 5, zs
    assert 0.6 < float(zs.pow(2).mean().sqrt()) < 1.6, zs


def test_jackknife_removes_the_log_mean_exp_bias():
    # lognormal likelihood draws: log p ~ N(0, 1) gives log E p - E log p = 1/2 exactly
    g = torch.Generator().manual_seed(3)
    draws = torch.randn(50, 4000, generator=g, dtype=torch.float64)  # S = 50, 4000 replicas
    est = ep_gap_from_samples(draws)
    plugin_err = float(est.plugin / 4000 - 0.5)
    corrected_err = float(est.value / 4000 - 0.5)
    assert plugin_err < -0.005  # log of a mean of 50 draws: biased low by ≈ 1/(2·50)·(e−1)
    assert abs(corrected_err) < abs(plugin_err) / 3
    # the reported per-replica s.e. matches the spread over replicas
    spread = float(est.parts.std())
    assert 0.8 < float(est.parts_stderr.mean()) / spread < 1.25


def test_leading_term_matches_exact_gap_as_variance_shrinks():
    """Prop. 4.1: gap = ½ Var[ξ] ‖∇ log p‖² + O(Var²); relative error of the leading term falls
    like Var[ξ] along a sweep (exact gap in closed form; derivatives by autograd)."""
    x, y = batch()
    errors, per_example = [], []
    for s in (0.4, 0.2, 0.1, 0.05):
        est = ep_gap(linear_model(Gaussian(1.0, s)), x, y, GaussianLikelihood(TAU), samples=2000)
        exact = gaussian_noise_exact_gap(x, y, 1.0, s)
        errors.append(float((est.series.leading - exact.sum()).abs() / exact.sum()))
        per_example.append(((est.series.parts_leading - exact) / exact).abs())
        assert abs(float(est.value - exact.sum())) < 4 * float(est.stderr)
    assert all(b < a / 3 for a, b in itertools.pairwise(errors)), errors  # ~ ×4 per halving of s
    assert errors[-1] < 0.05, errors
    # every example's relative error shrinks too (slowest where the residual is near 0)
    assert all(bool(torch.all(b < a)) for a, b in itertools.pairwise(per_example))


def test_mc_gap_agrees_with_leading_term_on_a_nonlinear_network():
    """An MLP with tanh (no closed form): the MC gap (S = 20000) agrees with Prop. 4.1's leading
    term within its error, and both scale like Var[ξ] (×¼ per halving of the noise std)."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, dtype=torch.float64)
    y = torch.randn(4, 1, dtype=torch.float64)
    gaps = []
    for s in (0.2, 0.1, 0.05):
        torch.manual_seed(2)  # the same weights and biases at every noise level
        first = NoisyLinear(3, 8, Gaussian(1.0, s), dtype=torch.float64,
                            generator=torch.Generator().manual_seed(5))
        second = NoisyLinear(8, 1, Gaussian(1.0, s), dtype=torch.float64,
                             generator=torch.Generator().manual_seed(6))
        for layer in (first, second):
            torch.nn.init.normal_(layer.weight, std=0.5)
        model = torch.nn.Sequential(first, torch.nn.Tanh(), second)
        est = ep_gap(model, x, y, GaussianLikelihood(1.0), samples=20000, trace="exact")
        lead = float(est.series.leading)
        assert abs(float(est.value) - lead) < 4 * float(est.stderr) + 0.01 * lead
        assert est.series.converges
        gaps.append(float(est.value))
    for a, b in itertools.pairwise(gaps):
        assert 3.6 < a / b < 4.4, gaps


def test_hutchinson_trace_agrees_with_exact_trace():
    torch.manual_seed(0)
    first = NoisyLinear(6, 16, Gaussian(1.0, 0.3), dtype=torch.float64)
    second = NoisyLinear(16, 1, Gaussian(1.0, 0.3), dtype=torch.float64)
    model = torch.nn.Sequential(first, torch.nn.Tanh(), second)
    x, y = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    exact = ep_gap(model, x, y, GaussianLikelihood(0.5), samples=2, trace="exact")
    hutch = ep_gap(model, x, y, GaussianLikelihood(0.5), samples=2, trace="hutchinson",
                   probes=3000, generator=torch.Generator().manual_seed(0))
    assert exact.series.trace_method == "exact" and hutch.series.trace_method == "hutchinson"
    assert_close(hutch.series.parts_leading, exact.series.parts_leading)  # gradient is exact
    assert_close(hutch.series.parts_ratio, exact.series.parts_ratio, rtol=0.1, atol=0.02)


def test_series_flags_divergence_and_infinite_variance():
    # x = ½ Var (g² + h) with log p = −(5ξ)²: g = −50ξ, h = −50; at ξ = 1, Var = 0.1: x ≫ 1
    approx = ep_series(lambda xi: -(5 * xi) ** 2 @ torch.ones(1, dtype=torch.float64),
                       torch.ones(1, 1, dtype=torch.float64), torch.tensor(0.1))
    assert not approx.converges and float(approx.max_ratio) > 1
    assert_close(approx.leading, torch.tensor(0.5 * 0.1 * 50.0**2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"variance \(Prop. 4.1 needs Var\[xi\] < inf\) must be "
                                         r"finite and >= 0.0, got inf"):
        ep_series(lambda xi: xi.sum(1), torch.ones(1, 1), torch.tensor(float("inf")))


def test_bad_inputs_raise_clear_errors():
    x, y = batch()
    model = linear_model(Gaussian(1.0, 0.5))
    with pytest.raises(ValueError, match="samples must be >= 2"):
        ep_gap(model, x, y, GaussianLikelihood(TAU), samples=1)
    with pytest.raises(ValueError, match="trace='diag'"):
        ep_gap(model, x, y, GaussianLikelihood(TAU), samples=4, trace="diag")
    bad = x.clone()
    bad[1, 0] = math.nan  # was reported as a nan log-likelihood, not as the data's
    with pytest.raises(ValueError, match=r"x holds 1 non-finite value\(s\) .* example 1"):
        ep_gap(model, bad, y, GaussianLikelihood(TAU), samples=4)
    with pytest.raises(ValueError, match="shape \\(S, N\\)"):
        ep_gap_from_samples(torch.zeros(5))
    with pytest.raises(ValueError, match="-inf"):
        ep_gap_from_samples(torch.tensor([[0.0], [-math.inf]]))
