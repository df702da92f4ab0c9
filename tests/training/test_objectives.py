"""Objectives against exact enumeration of every Bernoulli mask on a tiny network, the σ0 ↔
weight_decay conversion against an explicit loss, and the HP prior against explicit densities."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from _training_models import MaskMLP
from torch import nn
from torch.testing import assert_close

from dropprior.likelihoods import Gaussian
from dropprior.noise import Bernoulli, Rayleigh
from dropprior.objectives import (
    ep_weight_penalty,
    gaussian_log_prior,
    hp_log_prior,
    log_likelihood_samples,
    marginal_log_likelihood,
    mc_log_likelihood,
    sigma0_from_weight_decay,
    weight_decay_from_sigma0,
)


@pytest.fixture()
def tiny() -> tuple[MaskMLP, torch.Tensor, torch.Tensor, Gaussian]:
    torch.manual_seed(0)
    model = MaskMLP(d_in=2, hidden=4, keep=0.6).double()
    with torch.no_grad():
        model.fc2.weight.mul_(4.0)
    x = torch.randn(5, 2, dtype=torch.float64)
    y = torch.randn(5, dtype=torch.float64)
    return model, x, y, Gaussian(noise_std=0.5).double()


def exact(model: MaskMLP, x: torch.Tensor, y: torch.Tensor, lik: Gaussian):
    """Per example: E_m[log p], Var_m[log p] and log E_m[p] over all 2^H masks."""
    masks, log_pm = model.all_masks()
    logp = torch.stack([lik.log_prob(model(x, m.expand(x.shape[0], -1)), y) for m in masks])
    pm = log_pm.exp().unsqueeze(1)
    mean = (pm * logp).sum(dim=0)
    var = (pm * (logp - mean) ** 2).sum(dim=0)
    marginal = torch.logsumexp(log_pm.unsqueeze(1) + logp, dim=0)
    return mean, var, marginal


@pytest.mark.parametrize("vectorize", [True, False])
def test_mc_objective_matches_enumeration(tiny, vectorize: bool) -> None:
    model, x, y, lik = tiny
    mean, var, _ = exact(model, x, y, lik)
    assert bool(torch.all(var > 1e-3))  # the masks matter, so a wrong law would show
    s = 20000 if vectorize else 4000
    torch.manual_seed(1)
    with torch.no_grad():
        mc = mc_log_likelihood(model, x, y, lik, samples=s, vectorize=vectorize)
    se = (var / s).sqrt()
    assert bool(torch.all((mc - mean).abs() < 4 * se)), (mc, mean, se)


def test_marginal_bound_dominates_mc_and_converges(tiny) -> None:
    model, x, y, lik = tiny
    _, _, marginal = exact(model, x, y, lik)
    gaps = {}
    with torch.no_grad():
        for s in (1, 4, 32, 256):
            vals = []
            for rep in range(40):
                torch.manual_seed(100 + rep)
                mc = mc_log_likelihood(model, x, y, lik, samples=s)
                torch.manual_seed(100 + rep)  # the same draws
                lme = marginal_log_likelihood(model, x, y, lik, samples=s)
                torch.manual_seed(100 + rep)
                logp = log_likelihood_samples(model, x, y, lik, samples=s)
                # mean-of-logs ≤ log-mean-exp ≤ max over the same draws (exact bounds)
                assert bool(torch.all(lme >= mc - 1e-12))
                assert bool(torch.all(lme <= logp.max(dim=0).values + 1e-12))
                vals.append(lme)
            gaps[s] = float((marginal - torch.stack(vals).mean(dim=0)).mean())
        # tightens monotonically in expectation and tends to log E p
        assert gaps[1] > gaps[4] > gaps[32] > gaps[256] > -0.01
        assert gaps[1] > 0.1
        torch.manual_seed(7)
        big = marginal_log_likelihood(model, x, y, lik, samples=20000)
    assert_close(big, marginal, atol=0.02, rtol=0)


def test_no_underflow_at_1000_samples(tiny) -> None:
    model, x, y, _ = tiny
    sharp = Gaussian(noise_std=1e-2).double()  # log-likelihoods of order -1e4
    torch.manual_seed(3)
    with torch.no_grad():
        logp = log_likelihood_samples(model, x, y + 3.0, sharp, samples=1000)
        torch.manual_seed(3)
        lme = marginal_log_likelihood(model, x, y + 3.0, sharp, samples=1000)
    assert float(logp.max()) < -1000  # exp() of these underflows to 0 in float64
    assert bool(torch.all(torch.isfinite(lme)))
    ref = logp.max(dim=0).values + torch.log(torch.exp(logp - logp.max(dim=0).values).mean(dim=0))
    assert_close(lme, ref)


def test_objective_gradients_flow(tiny) -> None:
    model, x, y, lik = tiny
    loss = -marginal_log_likelihood(model, x, y, lik, samples=8).mean()
    loss.backward()
    assert model.fc1.weight.grad is not None
    assert float(model.fc1.weight.grad.abs().sum()) > 0


def test_samples_and_batch_validation(tiny) -> None:
    model, x, y, lik = tiny
    with pytest.raises(ValueError, match="samples must be >= 1"):
        mc_log_likelihood(model, x, y, lik, samples=0)
    with pytest.raises(TypeError, match="samples must be an int"):
        marginal_log_likelihood(model, x, y, lik, samples=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same number of examples"):
        mc_log_likelihood(model, x, y[:3], lik)
    with pytest.raises(ValueError, match=r"y has shape \(5, 1\)"):
        mc_log_likelihood(model, x, y.unsqueeze(1), lik, samples=3)
    with pytest.raises(TypeError, match="likelihood must be"):
        mc_log_likelihood(model, x, y, nn.MSELoss())  # type: ignore[arg-type]


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_weight_decay_equals_explicit_prior(opt_name: str) -> None:
    torch.manual_seed(0)
    n, sigma0 = 50, 0.3
    x = torch.randn(n, 3, dtype=torch.float64)
    y = torch.randn(n, dtype=torch.float64)
    lik = Gaussian(1.0).double()
    a = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0)).double()
    b = copy.deepcopy(a)
    lam = weight_decay_from_sigma0(sigma0, n)
    assert lam == pytest.approx(1 / (n * sigma0**2))
    assert sigma0_from_weight_decay(lam, n) == pytest.approx(sigma0)
    make = {"sgd": lambda p, wd: torch.optim.SGD(p, lr=0.05, weight_decay=wd),
            "adam": lambda p, wd: torch.optim.Adam(p, lr=0.01, weight_decay=wd)}[opt_name]
    opt_a, opt_b = make(a.parameters(), lam), make(b.parameters(), 0.0)
    for _ in range(5):
        opt_a.zero_grad()
        (-lik.log_prob(a(x), y).mean()).backward()
        opt_a.step()
        opt_b.zero_grad()
        # the explicit loss: −(1/N) Σ log p + ‖W‖² / (2 N σ0²)
        explicit = sum((p**2).sum() for p in b.parameters()) / (2 * n * sigma0**2)
        assert_close(ep_weight_penalty(b, sigma0) / n, explicit)
        (-lik.log_prob(b(x), y).mean() + explicit).backward()
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert_close(pa, pb)


def test_prior_helpers_and_errors() -> None:
    w = [torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64)]
    ref = sum(torch.distributions.Normal(0.0, 0.8).log_prob(t).sum() for t in w)
    assert_close(gaussian_log_prior(w, 0.8), ref)
    assert float(ep_weight_penalty(w, math.inf)) == 0.0
    assert weight_decay_from_sigma0(math.inf, 10) == 0.0
    assert sigma0_from_weight_decay(0.0, 10) == math.inf
    with pytest.raises(ValueError, match="sigma0 must be > 0"):
        ep_weight_penalty(w, 0.0)
    with pytest.raises(ValueError, match="n_data must be an int >= 1"):
        weight_decay_from_sigma0(1.0, 0)
    with pytest.raises(ValueError, match="weight_decay must be finite and >= 0"):
        sigma0_from_weight_decay(-1.0, 10)


def test_hp_prior_matches_explicit_density_and_shows_prop_4_2() -> None:
    torch.manual_seed(0)
    weight = torch.randn(3, 4, dtype=torch.float64)  # nn.Linear(4, 3): groups = 4 input units
    law = Bernoulli(keep=torch.tensor(0.7, dtype=torch.float64))
    sigma0, s = 1.3, 64
    xi = law.sample((s, 4), generator=torch.Generator().manual_seed(5))
    jensen = hp_log_prior(weight, law, sigma0, samples=s, group_dim=1,
                          generator=torch.Generator().manual_seed(5))
    # ξ = 0 is drawn: the Jensen bound of the HP is −∞ — Prop. 4.2's Var[ξ⁻²] = ∞ made visible
    assert bool((xi == 0).any())
    assert float(jensen) == -math.inf
    lme = hp_log_prior(weight, law, sigma0, samples=s, group_dim=1, estimator="log_mean_exp",
                       generator=torch.Generator().manual_seed(5))
    # reference: log (1/S) Σ_s N(w_g; 0, σ0² ξ_s²) per group, from torch.distributions
    ref = 0.0
    for g in range(4):
        terms = []
        for k in range(s):
            if xi[k, g] == 0:
                terms.append(torch.tensor(-math.inf, dtype=torch.float64))
            else:
                normal = torch.distributions.Normal(0.0, sigma0 * xi[k, g])
                terms.append(normal.log_prob(weight[:, g]).sum())
        ref = ref + torch.logsumexp(torch.stack(terms), 0) - math.log(s)
    assert_close(lme, ref)
    # and it converges to the exact marginal log(π N(w; 0, σ0²)) per group
    big = hp_log_prior(weight, law, sigma0, samples=20000, group_dim=1,
                       estimator="log_mean_exp", generator=torch.Generator().manual_seed(6))
    exact = (torch.distributions.Normal(0.0, sigma0).log_prob(weight).sum(dim=0)
             + math.log(0.7)).sum()
    assert_close(big, exact, atol=0.03, rtol=0)
    # a law with positive noise: the Jensen bound is finite and strictly below log-mean-exp of
    # the same draws
    positive = Rayleigh(torch.tensor(1.0, dtype=torch.float64))
    j1 = hp_log_prior(weight, positive, sigma0, samples=8, group_dim=1,
                      generator=torch.Generator().manual_seed(9))
    l1 = hp_log_prior(weight, positive, sigma0, samples=8, group_dim=1, estimator="log_mean_exp",
                      generator=torch.Generator().manual_seed(9))
    assert bool(torch.isfinite(j1)) and float(j1) < float(l1) - 1e-6
    with pytest.raises(ValueError, match="estimator='median' is not valid"):
        hp_log_prior(weight, law, sigma0, estimator="median")


def test_reduce_draws_is_each_objective_by_an_independent_formula() -> None:
    import numpy as np
    import scipy.special
    import scipy.stats

    from dropprior.objectives import reduce_draws

    g = torch.Generator().manual_seed(0)
    logp = (torch.randn(7, 3, 5, generator=g, dtype=torch.float64) * 30).requires_grad_()
    a = logp.detach().numpy()
    torch.testing.assert_close(reduce_draws(logp, "mc"), torch.from_numpy(a.mean(0)))
    torch.testing.assert_close(reduce_draws(logp, "marginal"),
                               torch.from_numpy(scipy.special.logsumexp(a, 0) - np.log(7)))
    ranks = scipy.stats.rankdata(-a, axis=0, method="ordinal")  # 1 = the largest
    w = (1 / ranks) / (1 / np.arange(1, 8)).sum()
    got = reduce_draws(logp, "tail_adaptive")
    torch.testing.assert_close(got, torch.from_numpy((w * a).sum(0)))
    (grad,) = torch.autograd.grad(got.sum(), logp)  # the weights are constants in the gradient
    torch.testing.assert_close(grad, torch.from_numpy(w))
    with pytest.raises(ValueError, match=r"objective='elbo' is not valid; expected one of"):
        reduce_draws(logp, "elbo")
    with pytest.raises(ValueError, match=r"S >= 1 draws along dim 0, got \(0, 3\)"):
        reduce_draws(torch.zeros(0, 3), "mc")
    with pytest.raises(ValueError, match=r"S >= 1 draws along dim 0, got float"):
        reduce_draws(1.0, "mc")
