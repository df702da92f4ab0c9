"""Kuo–Mallick Gibbs against exact enumeration of all 2^D models (diabetes, D = 10)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.datasets import load_diabetes

from dropprior.inference import kuo_mallick


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()


def _log_marginal(X, y, g, sigma0, noise_std, a, b) -> float:
    """log p(y | γ) in closed form, with D×D algebra (matrix determinant lemma, Woodbury).

    Fixed σ: y | γ ~ N(0, σ² I + σ0² X_γ X_γᵀ). NIG: y | γ ~ Student-t_{2a}(0, (b/a) M),
    M = I + σ0² X_γ X_γᵀ.
    """
    N = X.shape[0]
    Xg = X[:, g]
    k = Xg.shape[1]
    s2 = 1.0 if noise_std is None else noise_std**2
    A = np.eye(k) / sigma0**2 + Xg.T @ Xg / s2
    bvec = Xg.T @ y / s2
    logdet = N * math.log(s2) + k * math.log(sigma0**2) + np.linalg.slogdet(A)[1]
    quad = y @ y / s2 - bvec @ np.linalg.solve(A, bvec)
    if noise_std is not None:
        return -0.5 * (N * math.log(2 * math.pi) + logdet + quad)
    nu = 2 * a
    logdet_s = N * math.log(b / a) + logdet
    return (math.lgamma((nu + N) / 2) - math.lgamma(nu / 2) - 0.5 * N * math.log(nu * math.pi)
            - 0.5 * logdet_s - 0.5 * (nu + N) * math.log1p(quad / (b / a) / nu))


def test_closed_form_marginal_matches_scipy(diabetes):
    X, y = diabetes
    X, y = X[:60], y[:60]
    g = np.array([1, 0, 1, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    cov = 0.49 * np.eye(60) + X[:, g] @ X[:, g].T
    ref = stats.multivariate_normal(np.zeros(60), cov).logpdf(y)
    assert abs(_log_marginal(X, y, g, 1.0, 0.7, 1.0, 1.0) - ref) < 1e-8
    shape = 2.0 * (np.eye(60) + 0.25 * X[:, g] @ X[:, g].T)
    ref = stats.multivariate_t(np.zeros(60), shape, df=3.0).logpdf(y)
    assert abs(_log_marginal(X, y, g, 0.5, None, 1.5, 3.0) - ref) < 1e-8


def _exact_inclusion(X, y, keep, sigma0, noise_std=None, a=1.0, b=1.0) -> np.ndarray:
    """p(ξ_j = 1 | y) by summing p(y | γ) p(γ) over all 2^D inclusion patterns γ."""
    D = X.shape[1]
    gammas = np.array(list(itertools.product([0, 1], repeat=D)), dtype=bool)
    log_post = np.array([
        g.sum() * math.log(keep) + (D - g.sum()) * math.log1p(-keep)
        + _log_marginal(X, y, g, sigma0, noise_std, a, b)
        for g in gammas
    ])
    w = np.exp(log_post - log_post.max())
    return (w / w.sum()) @ gammas


@pytest.mark.parametrize("noise_std", [0.7, None], ids=["fixed-sigma", "nig-sigma"])
def test_inclusion_probabilities_match_enumeration(diabetes, noise_std):
    X, y = diabetes
    keep, sigma0 = 0.5, 1.0
    exact = _exact_inclusion(X, y, keep, sigma0, noise_std)
    result = kuo_mallick(X, y, keep=keep, sigma0=sigma0, noise_std=noise_std,
                         num_samples=2500, warmup=200, num_chains=4,
                         generator=torch.Generator().manual_seed(0))
    p = result.inclusion_probabilities.numpy()
    # Tolerance from the chain: 4 Monte Carlo standard errors, sqrt(p(1-p)/ESS) with the
    # indicator's bulk ESS (plus 0.002 for indicators stuck at 0/1, whose MCSE is 0).
    tol = 4 * result.inclusion_mcse.numpy() + 0.002
    assert result.inclusion_probabilities.shape == (10,)
    assert np.all(np.abs(p - exact) <= tol), (p, exact, tol)
    assert np.abs(p - exact).max() < 0.05
    # the enumeration is not trivial: several features are genuinely uncertain
    assert np.sum((exact > 0.1) & (exact < 0.9)) >= 3


def test_probit_matches_quadrature():
    """Probit, D = 2: p(y | γ) by 2-D grid quadrature of ∏ Φ((2y−1) x_iᵀw) N(w; 0, σ0²)."""
    g = torch.Generator().manual_seed(1)
    N = 40
    X = torch.randn(N, 2, generator=g, dtype=torch.float64)
    y = (X[:, 0] * 1.0 + 0.5 * torch.randn(N, generator=g, dtype=torch.float64) > 0).double()
    Xn, yn = X.numpy(), y.numpy()
    sign = 2 * yn - 1
    keep, sigma0 = 0.5, 1.0
    grid = np.linspace(-6, 6, 241)
    dw = grid[1] - grid[0]
    prior_1d = stats.norm(0, sigma0).logpdf(grid)

    def loglik(w):  # w: (..., 2)
        return stats.norm.logcdf(sign * (w @ Xn.T)).sum(-1)

    logm = {}
    logm[(0, 0)] = loglik(np.zeros(2))
    for j in range(2):
        w = np.zeros((grid.size, 2))
        w[:, j] = grid
        logm[(j == 0, j == 1)] = np.log(dw) + np.logaddexp.reduce(loglik(w) + prior_1d)
    W1, W2 = np.meshgrid(grid, grid, indexing="ij")
    w = np.stack([W1, W2], -1)
    logm[(1, 1)] = 2 * np.log(dw) + np.logaddexp.reduce(
        (loglik(w) + prior_1d[:, None] + prior_1d[None, :]).ravel())
    keys = list(logm)
    lp = np.array([logm[k] for k in keys]) + 2 * math.log(0.5)
    post = np.exp(lp - lp.max())
    post /= post.sum()
    exact = np.array([sum(p for k, p in zip(keys, post, strict=True) if k[j]) for j in range(2)])

    result = kuo_mallick(X, y, keep=keep, sigma0=sigma0, noise_std=None, likelihood="probit",
                         num_samples=3000, warmup=300, num_chains=2, generator=g)
    p = result.inclusion_probabilities.numpy()
    tol = 4 * result.inclusion_mcse.numpy() + 0.002
    assert np.all(np.abs(p - exact) <= tol), (p, exact, tol)


def test_reproducible_with_generator(diabetes):
    X, y = diabetes
    a = kuo_mallick(X[:50], y[:50], num_samples=20, warmup=0,
                    generator=torch.Generator().manual_seed(3))
    b = kuo_mallick(X[:50], y[:50], num_samples=20, warmup=0,
                    generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.z, b.z)
    assert a.xi.shape == (2, 20, 10)
    torch.testing.assert_close(a.weights, a.xi * a.z)


@pytest.mark.parametrize("kwargs, match", [
    ({"keep": 1.5}, "keep"),
    ({"keep": 1.0}, "keep"),
    ({"sigma0": -1.0}, "sigma0"),
    ({"noise_std": 0.0}, "noise_std"),
    ({"likelihood": "logit"}, "likelihood"),
    ({"num_samples": 0}, "num_samples"),
])
def test_bad_input(diabetes, kwargs, match):
    X, y = diabetes
    with pytest.raises(ValueError, match=match):
        kuo_mallick(X, y, **kwargs)


def test_bad_shapes_and_probit_targets(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="shape"):
        kuo_mallick(X, y[:-1])
    with pytest.raises(ValueError, match="probit"):
        kuo_mallick(X, y, likelihood="probit", noise_std=None)
    with pytest.raises(ValueError, match="finite"):
        kuo_mallick(X, np.full_like(y, np.nan))
