"""Makalic & Schmidt's (2016) Gibbs sampler for horseshoe linear regression, fixed τ and σ.

The model is the one half-Cauchy noise induces on the coefficients (paper Table 1):

.. math::

    w_j \\mid \\lambda_j \\sim N(0, \\tau^2 \\lambda_j^2),\\quad \\lambda_j \\sim C^+(0, 1),\\quad
    y \\mid X, w \\sim N(X w, \\sigma^2 I),

i.e. ξ_j = s λ_j ~ HalfCauchy(s) and τ = σ0 s. The half-Cauchy is written as a scale mixture of
inverse gammas, λ_j² | ν_j ~ InvGamma(1/2, 1/ν_j), ν_j ~ InvGamma(1/2, 1), which makes every full
conditional standard (Makalic & Schmidt, "A simple sampler for the horseshoe estimator", IEEE SPL
2016, eq. 7-9 with τ and σ held fixed):

* w | λ, y ~ N(A⁻¹ Xᵀy / σ², A⁻¹), A = XᵀX / σ² + diag(1 / (τ² λ²));
* λ_j² | w_j, ν_j ~ InvGamma(1, 1/ν_j + w_j² / (2τ²));
* ν_j | λ_j ~ InvGamma(1, 1 + 1/λ_j²).

It is the reference against which the HMC/NUTS horseshoe posterior is checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dropprior._validation import as_param, check_chain_lengths, check_positive, regression_data
from dropprior.inference._random import inverse_gamma

__all__ = ["HorseshoeGibbsResult", "horseshoe_gibbs"]


@dataclass(frozen=True)
class HorseshoeGibbsResult:
    """Draws of :func:`horseshoe_gibbs`: ``weights`` and local scales ``lam``, each (C, S, D)."""

    weights: Tensor
    lam: Tensor


def horseshoe_gibbs(
    X: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    tau: float,
    noise_std: float,
    num_samples: int = 2000,
    warmup: int = 500,
    num_chains: int = 2,
    generator: torch.Generator | None = None,
) -> HorseshoeGibbsResult:
    """Gibbs-sample horseshoe linear regression with fixed global scale τ and noise σ.

    Args:
        X: design, shape (N, D).
        y: targets, shape (N,) (no intercept: centre y).
        tau: global scale τ > 0 (τ = σ0·s for ξ ~ HalfCauchy(s)).
        noise_std: noise standard deviation σ > 0.
        num_samples, warmup: kept and discarded sweeps per chain.
        num_chains: independent chains, run vectorised.
        generator: the source of randomness.

    Shape:
        X: (N, D), y: (N,) → weights, lam: (num_chains, num_samples, D).
    """
    X_t, y_t = regression_data(X, y)
    check_positive("tau", as_param(tau))
    check_positive("noise_std", as_param(noise_std))
    check_chain_lengths(num_samples, warmup, num_chains)
    C, D = num_chains, X_t.shape[1]
    s2 = float(noise_std) ** 2
    gram = X_t.T @ X_t / s2
    xty = X_t.T @ y_t / s2
    ones = torch.ones(C, D, dtype=torch.float64)
    lam2 = ones.clone()
    nu = ones.clone()
    w_draws = torch.empty(C, num_samples, D, dtype=torch.float64)
    l_draws = torch.empty_like(w_draws)
    for t in range(warmup + num_samples):
        prec = gram + torch.diag_embed(1.0 / (tau**2 * lam2))
        chol = torch.linalg.cholesky(prec)
        mean = torch.cholesky_solve(xty.expand(C, D)[..., None], chol)[..., 0]
        eps = torch.randn(C, D, 1, dtype=torch.float64, generator=generator)
        w = mean + torch.linalg.solve_triangular(chol.mT, eps, upper=True)[..., 0]
        lam2 = inverse_gamma(ones, 1.0 / nu + w**2 / (2 * tau**2), generator=generator)
        nu = inverse_gamma(ones, 1.0 + 1.0 / lam2, generator=generator)
        if t >= warmup:
            w_draws[:, t - warmup] = w
            l_draws[:, t - warmup] = lam2.sqrt()
    return HorseshoeGibbsResult(weights=w_draws, lam=l_draws)
