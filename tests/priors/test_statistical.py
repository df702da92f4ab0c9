"""Hierarchical samples against each marginal: KS tests, absolute moments, cdf vs density.

ξ is drawn by scipy (independently of dropprior's samplers) and z by numpy; w = ξ·z must follow
the marginal's cdf, and the same marginal with σ0 off by 10% must be rejected by the same test.
Seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from dropprior.noise import (
    Bernoulli,
    Beta,
    Gaussian,
    HalfCauchy,
    InverseNakagami,
    LogNormal,
    Rayleigh,
    Uniform,
)

N = 4000
N_KS = 50_000
ALPHA = 1e-3


def _inverse_nakagami(m, omega):
    class _Xi:
        def rvs(self, size, random_state):
            eta = stats.nakagami(m, scale=math.sqrt(omega)).rvs(size=size,
                                                                 random_state=random_state)
            return 1 / eta

        def expect(self, f):
            return stats.nakagami(m, scale=math.sqrt(omega)).expect(lambda e: f(1 / e))

    return _Xi()


# id, law, scipy law of ξ (rvs and expect)
CONTINUOUS = [
    ("gaussian_mean0", lambda: Gaussian(0.0, 0.7), stats.norm(0, 0.7)),
    ("gaussian_dropout", lambda: Gaussian(1.0, 0.5), stats.norm(1, 0.5)),
    ("rayleigh", lambda: Rayleigh(0.8), stats.rayleigh(scale=0.8)),
    ("inverse_nakagami", lambda: InverseNakagami(1.5, 2.0), _inverse_nakagami(1.5, 2.0)),
    ("half_cauchy", lambda: HalfCauchy(0.6), stats.halfcauchy(scale=0.6)),
    ("beta", lambda: Beta(2.0, 3.0), stats.beta(2, 3)),
    ("uniform_around_0", lambda: Uniform(-0.5, 2.0), stats.uniform(-0.5, 2.5)),
    ("log_normal", lambda: LogNormal(-0.2, 0.6), stats.lognorm(0.6, scale=math.exp(-0.2))),
]
IDS = [c[0] for c in CONTINUOUS]
SIGMA0 = 1.3


def _hierarchical(xi_law, n, seed, dim=1):
    rng = np.random.default_rng(seed)
    xi = xi_law.rvs(size=n, random_state=rng)
    z = rng.normal(scale=SIGMA0, size=(n, dim))
    return xi[:, None] * z


def ks_on_quantile_grid(w, cdf, points=400):
    """KS test of ``w`` against ``cdf`` with the supremum taken over ``points`` sample quantiles.

    The statistic is at most the full KS statistic, so its p-value from the exact KS law
    (``scipy.stats.kstwo``) is conservative; evaluating the cdf at a few hundred points instead
    of every sample lets N be large enough to detect a 10% scale error.
    """
    w = np.sort(w)
    n = len(w)
    idx = np.unique(np.linspace(0, n - 1, points).astype(int))
    f = cdf(w[idx])
    # empirical cdf just below and at each grid point
    d = max(np.max(np.abs((idx + 1) / n - f)), np.max(np.abs(idx / n - f)))
    return stats.kstwo.sf(d, n)


@pytest.mark.parametrize("entry", CONTINUOUS, ids=IDS)
def test_ks_hierarchical_samples_and_wrong_scale_is_rejected(entry):
    _, build, xi_law = entry
    w = _hierarchical(xi_law, N_KS, seed=1)[:, 0]
    law = build()
    right = law.marginal(SIGMA0)
    wrong = law.marginal(1.1 * SIGMA0)
    p_right = ks_on_quantile_grid(w, lambda x: right.cdf(torch.as_tensor(x)).numpy())
    p_wrong = ks_on_quantile_grid(w, lambda x: wrong.cdf(torch.as_tensor(x)).numpy())
    assert p_right > ALPHA, p_right
    assert p_wrong < ALPHA, p_wrong


def test_spike_and_slab_samples_atom_and_slab():
    keep = 0.7
    rng = np.random.default_rng(2)
    xi = stats.bernoulli(keep).rvs(size=N, random_state=rng) / keep  # inverted dropout
    w = xi * rng.normal(scale=SIGMA0, size=N)
    prior = Bernoulli(keep, inverted=True).marginal(SIGMA0)
    zeros = int((w == 0).sum())
    assert stats.binomtest(zeros, N, float(prior.atom_mass)).pvalue > ALPHA
    slab = w[w != 0]

    def slab_cdf(prior):
        def cdf(x):
            x = torch.as_tensor(x)
            jump = prior.atom_mass * (x >= 0)
            return ((prior.cdf(x) - jump) / prior.keep).numpy()
        return cdf

    assert stats.kstest(slab, slab_cdf(prior)).pvalue > ALPHA
    assert stats.kstest(slab, slab_cdf(Bernoulli(keep, inverted=True).marginal(
        1.1 * SIGMA0))).pvalue < ALPHA
    # the non-inverted law has slab scale σ0, not σ0/π: it must be rejected too
    assert stats.kstest(slab, slab_cdf(Bernoulli(keep).marginal(SIGMA0))).pvalue < ALPHA


@pytest.mark.parametrize("entry", CONTINUOUS, ids=IDS)
def test_marginal_sample_follows_its_cdf(entry):
    _, build, _ = entry
    prior = build().marginal(SIGMA0)
    w = prior.sample((2000,), generator=torch.Generator().manual_seed(3))
    assert stats.kstest(w.numpy(), lambda x: prior.cdf(torch.as_tensor(x)).numpy()).pvalue > ALPHA


@pytest.mark.parametrize("entry", CONTINUOUS, ids=IDS)
def test_group_samples_share_one_scale(entry):
    # a group's coordinates are each distributed as the D = 1 marginal, and share one ξ:
    # the ratio of two coordinates is Cauchy(0, 1) whatever the law
    _, build, _ = entry
    group = build().marginal(SIGMA0, group_size=3)
    w = group.sample((2000,), generator=torch.Generator().manual_seed(4))
    single = build().marginal(SIGMA0)
    assert stats.kstest(w[:, 0].numpy(),
                        lambda x: single.cdf(torch.as_tensor(x)).numpy()).pvalue > ALPHA
    assert stats.kstest((w[:, 1] / w[:, 2]).numpy(), stats.cauchy().cdf).pvalue > ALPHA


@pytest.mark.parametrize("entry", CONTINUOUS, ids=IDS)
def test_absolute_moment_of_samples(entry):
    # E|w|^a = σ0^a E|ξ|^a E|z|^a with a = 1/4: finite for every law, horseshoe included
    # (its variance is infinite), with a finite variance so that a CLT test applies.
    _, build, xi_law = entry
    a = 0.25
    abs_z = 2 ** (a / 2) * special.gamma((a + 1) / 2) / math.sqrt(math.pi)
    exact = SIGMA0**a * xi_law.expect(lambda x: abs(x) ** a) * abs_z
    prior = build().marginal(SIGMA0)
    draws = prior.sample((200_000,), generator=torch.Generator().manual_seed(5)).abs() ** a
    mean, se = float(draws.mean()), float(draws.std()) / math.sqrt(len(draws))
    assert abs(mean - exact) < 4 * se
    assert abs(mean - 1.1**a * exact) > 4 * se  # σ0 10% off is detected


@pytest.mark.parametrize("entry", CONTINUOUS, ids=IDS)
def test_cdf_differences_equal_quadrature_of_the_density(entry):
    _, build, _ = entry
    prior = build().marginal(SIGMA0)

    def density(x):
        return torch.exp(prior.log_prob(torch.as_tensor(x))).numpy()

    for lo, hi in [(-4.0, -0.5), (0.01, 2.0), (3.0, 30.0)]:
        # Gauss-Legendre of the (smooth, away from 0) density; 150 vs 300 nodes agree first
        coarse = integrate.fixed_quad(density, lo, hi, n=150)[0]
        expected = integrate.fixed_quad(density, lo, hi, n=300)[0]
        assert coarse == pytest.approx(expected, rel=1e-11)
        got = float(prior.cdf(torch.tensor(hi)) - prior.cdf(torch.tensor(lo)))
        assert got == pytest.approx(expected, rel=1e-8)
